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
        a_str = analyze_new(&cfg);
        if (!a_int || !a_str)
            abort();
    }
    /* a copy of exactly <size> bytes, so ASan sees any read past the end */
    char *sql = malloc(size ? size : 1);
    if (!sql)
        return 0;
    memcpy(sql, data, size);
    struct analyze_result r;
    fuzz_check_lex(sql, size);
    if (analyze_statement(a_int, sql, size, &r) == 0)
        fuzz_check_result(&r, size);
    if (analyze_statement(a_str, sql, size, &r) == 0)
        fuzz_check_result(&r, size);
    free(sql);
    return 0;
}
