/*
 * tests/fuzz/fuzz_analyze.c - fuzz target: lexer + analyzer.
 *
 * Any bytes must give a decision that satisfies analyze.h's contract (never
 * a crash, a read past the input, or a result with an impossible field),
 * and the lexer's tokens must tile the input in order. Checked for both key
 * types. Violations abort(), which libFuzzer and the replay runner report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/analyze.h"
#include "protocol/scope.h"
#include "protocol/lex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_result(const struct analyze_result *r, size_t size)
{
    switch (r->kind) {
    case ANALYZE_ROUTE:
        if (r->param_index >= (int)r->n_params)
            abort();
        if (r->param_index < 0 && (r->key_len == 0 || r->key_len > ANALYZE_KEY_MAX))
            abort();
        if (r->param_index < 0 && r->key_params)
            abort();
        if (r->param_index >= 0 && r->param_index < 64 &&
            (!(r->key_params >> r->param_index & 1) ||
             (r->key_params & (((uint64_t)1 << r->param_index) - 1))))
            abort();        /* param_index is the lowest key '?' */
        if (r->n_params < 64 && (r->key_params >> r->n_params))
            abort();
        break;
    case ANALYZE_REJECT:
        if (!r->msg || strncmp(r->msg, "shardwire: ", 11) != 0 || r->offset > size ||
            r->err_no == 0 || strlen(r->sqlstate) != 5)
            abort();
        break;
    case ANALYZE_SESSION:
    case ANALYZE_LOCAL:
        break;
    default:
        abort();
    }
}

static void fuzz_check_lex(const char *sql, size_t size)
{
    struct lex lx;
    struct lex_token t;
    size_t prev_end = 0;
    lex_init(&lx, sql, size);
    for (;;) {
        int r = lex_next(&lx, &t);
        if (r < 0) {
            if (t.off > size || t.op == LEX_ERR_NONE)
                abort();
            return;
        }
        if (t.off < prev_end || (size_t)t.off + t.len > size)
            abort();
        if (r == 0)
            return;
        if (t.len == 0)
            abort();
        prev_end = (size_t)t.off + t.len;
    }
}

/* The canonical key of a routed literal is a fixed point of
 * analyze_canon_key() (integers within 2^53; binary strings always). */
static void fuzz_check_key(enum analyze_key_type type, const struct analyze_result *r)
{
    char out[ANALYZE_KEY_MAX];
    if (r->kind != ANALYZE_ROUTE || r->param_index >= 0)
        return;
    int n = analyze_canon_key(type, r->key, r->key_len, out);
    /* an unquoted integer may exceed 2^53, which text keys cannot carry;
     * anything under 10^15 must survive */
    if (n < 0 && type == ANALYZE_KEY_INT && r->key_len > 15)
        return;
    if (n != (int)r->key_len || memcmp(out, r->key, r->key_len) != 0)
        abort();
}

/* Same input, same answer: nothing leaks from one statement into the next
 * through the reused scratch. */
static void fuzz_check_same(const struct analyze_result *x, const struct analyze_result *y)
{
    if (x->kind != y->kind || x->stmt != y->stmt || x->n_params != y->n_params ||
        x->param_index != y->param_index || x->key_len != y->key_len ||
        memcmp(x->key, y->key, x->key_len) != 0 || x->is_write != y->is_write ||
        x->pins_session != y->pins_session || x->allowable != y->allowable ||
        x->sets_autocommit != y->sets_autocommit || x->err_no != y->err_no ||
        x->msg != y->msg || x->offset != y->offset)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct analyze *a_int, *a_str;
    if (!a_int) {
        struct analyze_config cfg;
        analyze_config_default(&cfg);
        strcpy(cfg.database, "app");
        a_int = analyze_new(&cfg);
        cfg.key_type = ANALYZE_KEY_STRING;
        strcpy(cfg.key_columns[1], "owner_id");
        cfg.n_key_columns = 2;
        cfg.multi_param_key = 1;
        a_str = analyze_new(&cfg);
        if (!a_int || !a_str)
            abort();
    }
    /* a copy of exactly <size> bytes, so ASan sees any read past the end */
    char *sql = malloc(size ? size : 1);
    if (!sql)
        return 0;
    memcpy(sql, data, size);
    struct analyze_result r, again;
    static const char other[] = "SELECT a FROM t JOIN u ON u.userid = t.userid WHERE t.userid = 7";
    fuzz_check_lex(sql, size);
    if (analyze_statement(a_int, sql, size, &r) == 0) {
        fuzz_check_result(&r, size);
        fuzz_check_key(ANALYZE_KEY_INT, &r);
        analyze_statement(a_int, other, sizeof(other) - 1, &again);
        analyze_statement(a_int, sql, size, &again);
        fuzz_check_same(&r, &again);
    }
    if (analyze_statement(a_str, sql, size, &r) == 0) {
        fuzz_check_result(&r, size);
        fuzz_check_key(ANALYZE_KEY_STRING, &r);
    }
    /* scoped to user 42: a rewrite is only ever sent routed to 42, and the
     * same bytes read under PIPES_AS_CONCAT break no contract either */
    static struct scope_buf sbuf;
    int v = scope_apply(a_int, sql, size, "42", 2, false, &sbuf, &r);
    if (v == SCOPE_REWRITTEN &&
        (r.kind != ANALYZE_ROUTE || r.param_index >= 0 || r.key_len != 2 ||
         memcmp(r.key, "42", 2) != 0 || sbuf.len <= size))
        abort();
    if (v == SCOPE_ASIS && r.kind == ANALYZE_ROUTE && r.param_index < 0 &&
        (r.key_len != 2 || memcmp(r.key, "42", 2) != 0))
        abort();
    if (v != SCOPE_REWRITTEN)
        fuzz_check_result(&r, size);
    /* prepared: a key '?' reads as 42 and is listed for the EXECUTE check;
     * what routes, routes to 42, and only '?'s of the statement are listed */
    v = scope_apply(a_int, sql, size, "42", 2, true, &sbuf, &r);
    if (r.kind == ANALYZE_ROUTE &&
        (r.param_index >= 0 || r.key_len != 2 || memcmp(r.key, "42", 2) != 0 ||
         (r.n_params < 64 && (r.scope_params >> r.n_params) != 0)))
        abort();
    if (r.kind != ANALYZE_ROUTE && r.scope_params)
        abort();
    if (v != SCOPE_REWRITTEN)
        fuzz_check_result(&r, size);
    char key[ANALYZE_KEY_MAX];
    int kl = scope_comment(sql, size, ANALYZE_KEY_INT, key);
    if (kl > ANALYZE_KEY_MAX || kl < -1)
        abort();
    analyze_set_sql_mode(a_int, ANALYZE_MODE_PIPES_AS_CONCAT);
    if (analyze_statement(a_int, sql, size, &r) == 0)
        fuzz_check_result(&r, size);
    analyze_set_sql_mode(a_int, 0);
    free(sql);
    return 0;
}
