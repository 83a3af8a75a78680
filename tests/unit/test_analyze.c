/*
 * tests/unit/test_analyze.c - analyzer: the data-driven corpus
 * (tests/corpus/analyze.txt, format described at its top) plus generated
 * cases that are too big for a text file: 1 MB statements, 10,000 nested
 * parentheses, many placeholders, and analyze_canon_key() vectors.
 */
#include "protocol/analyze.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *const stmt_names[] = {
    [ANALYZE_STMT_OTHER] = "OTHER",   [ANALYZE_STMT_SELECT] = "SELECT",
    [ANALYZE_STMT_INSERT] = "INSERT", [ANALYZE_STMT_UPDATE] = "UPDATE",
    [ANALYZE_STMT_DELETE] = "DELETE", [ANALYZE_STMT_BEGIN] = "BEGIN",
    [ANALYZE_STMT_COMMIT] = "COMMIT", [ANALYZE_STMT_ROLLBACK] = "ROLLBACK",
    [ANALYZE_STMT_SAVEPOINT] = "SAVEPOINT", [ANALYZE_STMT_SET] = "SET",
    [ANALYZE_STMT_USE] = "USE",       [ANALYZE_STMT_SHOW] = "SHOW",
    [ANALYZE_STMT_DO] = "DO",
};

static const char *const kind_names[] = {"route", "session", "local", "reject"};

/* Checks invariants every result must satisfy, whatever the input. */
static int result_sane(const struct analyze_result *r, size_t len)
{
    if (r->kind == ANALYZE_REJECT) {
        if (!r->msg || strncmp(r->msg, "shardwire: ", 11) != 0 || r->err_no == 0 ||
            strlen(r->sqlstate) != 5 || r->offset > len)
            return 0;
    }
    if (r->kind == ANALYZE_ROUTE) {
        if (r->param_index >= (int)r->n_params)
            return 0;
        if (r->param_index < 0 && (r->key_len == 0 || r->key_len > ANALYZE_KEY_MAX))
            return 0;
    }
    return 1;
}

/* Formats <r> like a corpus expectation, for failure messages. */
static void describe(const struct analyze_result *r, char *buf, size_t cap)
{
    switch (r->kind) {
    case ANALYZE_ROUTE:
        if (r->param_index >= 0)
            snprintf(buf, cap, "route ?%d", r->param_index);
        else
            snprintf(buf, cap, "route %.*s", (int)r->key_len, r->key);
        break;
    case ANALYZE_SESSION:
    case ANALYZE_LOCAL:
        snprintf(buf, cap, "%s %s", kind_names[r->kind], stmt_names[r->stmt]);
        break;
    default:
        snprintf(buf, cap, "reject %u at %zu: %s", r->err_no, r->offset, r->msg ? r->msg : "");
        break;
    }
    size_t l = strlen(buf);
    snprintf(buf + l, cap - l, " [pins=%d write=%d]", r->pins_session, r->is_write);
}

/* Checks one corpus case; returns 1 when it matches. */
static int corpus_case(struct analyze *a, const char *expect, const char *sql, int lineno)
{
    struct analyze_result r;
    char words[8][64];
    int nw = 0;
    const char *p = expect;
    while (*p && nw < 8) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t l = strcspn(p, " ");
        snprintf(words[nw++], sizeof(words[0]), "%.*s", (int)l, p);
        p += l;
    }
    size_t len = strlen(sql);
    analyze_statement(a, sql, len, &r);
    int ok = nw > 0 && result_sane(&r, len);
    int w = 1;
    if (ok && !strcmp(words[0], "route")) {
        ok = r.kind == ANALYZE_ROUTE && nw > 1;
        if (ok && words[1][0] == '?') {
            /* ?<n>[+<m>...]: param_index n, key_params exactly {n, m, ...} */
            uint64_t want = 0;
            char *q = words[1] + 1;
            ok = r.param_index == atoi(q);
            for (;;) {
                int b = atoi(q);
                if (b < 64)
                    want |= (uint64_t)1 << b;
                q = strchr(q, '+');
                if (!q)
                    break;
                q++;
            }
            ok = ok && (r.param_index >= 64 || r.key_params == want);
        }
        else if (ok)
            ok = r.param_index < 0 && r.key_len == strlen(words[1]) &&
                 memcmp(r.key, words[1], r.key_len) == 0;
        w = 2;
    } else if (ok && (!strcmp(words[0], "session") || !strcmp(words[0], "local"))) {
        ok = r.kind == (!strcmp(words[0], "session") ? ANALYZE_SESSION : ANALYZE_LOCAL) &&
             nw > 1 && !strcmp(stmt_names[r.stmt], words[1]);
        w = 2;
    } else if (ok && !strcmp(words[0], "reject")) {
        ok = r.kind == ANALYZE_REJECT && nw > 1 && r.err_no == atoi(words[1]);
        w = 2;
    } else {
        ok = 0;
    }
    for (; ok && w < nw; w++) {
        if (!strcmp(words[w], "pins"))
            ok = r.pins_session;
        else if (!strcmp(words[w], "nopins"))
            ok = !r.pins_session;
        else if (!strcmp(words[w], "prev"))
            ok = r.reads_prev_stmt;
        else if (!strcmp(words[w], "noprev"))
            ok = !r.reads_prev_stmt;
        else if (!strcmp(words[w], "write"))
            ok = r.is_write;
        else if (!strcmp(words[w], "read"))
            ok = !r.is_write;
        else if (!strcmp(words[w], "locks"))
            ok = r.locks_rows;
        else if (!strcmp(words[w], "nolocks"))
            ok = !r.locks_rows;
        else if (!strcmp(words[w], "allowable"))
            ok = r.allowable;
        else if (!strcmp(words[w], "notallowable"))
            ok = !r.allowable;
        else if (!strcmp(words[w], "ac=0"))
            ok = r.sets_autocommit && !r.autocommit;
        else if (!strcmp(words[w], "ac=1"))
            ok = r.sets_autocommit && r.autocommit;
        else if (!strcmp(words[w], "mode=pipes"))
            ok = r.sets_sql_mode && r.sql_mode == ANALYZE_MODE_PIPES_AS_CONCAT;
        else if (!strcmp(words[w], "mode=0"))
            ok = r.sets_sql_mode && r.sql_mode == 0;
        else
            ok = 0;
    }
    if (!ok) {
        char got[512];
        describe(&r, got, sizeof(got));
        fprintf(stderr, "corpus line %d: expected '%s', got '%s'\n    %s\n", lineno, expect,
                got, sql);
    }
    return ok;
}

static void test_corpus(void)
{
    const char *root = getenv("SW_SOURCE_ROOT");
    char path[4096];
    FILE *f = NULL;
    struct analyze *a = NULL;
    struct analyze_config cfg;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, n_cases = 0, n_bad = 0;
    unsigned modes = 0;

    CHECK(root != NULL);        /* the meson test sets it */
    snprintf(path, sizeof(path), "%s/tests/corpus/analyze.txt", root);
    f = fopen(path, "r");
    CHECK(f != NULL);
    analyze_config_default(&cfg);
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = 0;
        if (n == 0 || line[0] == '#')
            continue;
        if (line[0] == '@') {
            char arg[256] = "";
            sscanf(line, "%*s %255s", arg);
            if (!strncmp(line, "@db", 3)) {
                snprintf(cfg.database, sizeof(cfg.database), "%s", arg);
            } else if (!strncmp(line, "@keys", 5)) {
                cfg.n_key_columns = 0;
                for (char *tok = strtok(arg, ","); tok && cfg.n_key_columns < ANALYZE_MAX_KEY_COLS;
                     tok = strtok(NULL, ","))
                    snprintf(cfg.key_columns[cfg.n_key_columns++], ANALYZE_NAME_MAX, "%s", tok);
            } else if (!strncmp(line, "@keytype", 8)) {
                cfg.key_type = !strcmp(arg, "string") ? ANALYZE_KEY_STRING : ANALYZE_KEY_INT;
            } else if (!strncmp(line, "@multiparam", 11)) {
                cfg.multi_param_key = atoi(arg) ? 1 : 0;
            } else if (!strncmp(line, "@pipes", 6)) {
                modes = atoi(arg) ? ANALYZE_MODE_PIPES_AS_CONCAT : 0;
            } else if (!strncmp(line, "@reset", 6)) {
                analyze_config_default(&cfg);
                modes = 0;
            } else {
                fprintf(stderr, "corpus line %d: unknown directive\n", lineno);
                n_bad++;
            }
            analyze_free(a);
            a = analyze_new(&cfg);
            CHECK(a != NULL);
            analyze_set_sql_mode(a, modes);
            continue;
        }
        char *bar = strstr(line, " |");
        if (!bar) {
            fprintf(stderr, "corpus line %d: no ' |'\n", lineno);
            n_bad++;
            continue;
        }
        *bar = 0;
        const char *sql = bar + 2;
        if (*sql == ' ')
            sql++;
        n_cases++;
        if (!corpus_case(a, line, sql, lineno))
            n_bad++;
    }
    fprintf(stderr, "corpus: %d cases, %d failed\n", n_cases, n_bad);
    CHECK(n_cases >= 300);
    CHECK_EQ(n_bad, 0);
out:
    free(line);
    if (f)
        fclose(f);
    analyze_free(a);
}

static struct analyze *new_default(void)
{
    struct analyze_config cfg;
    analyze_config_default(&cfg);
    snprintf(cfg.database, sizeof(cfg.database), "app");
    return analyze_new(&cfg);
}

/* A 1 MB statement: a long IN list of the same user and a long string. */
static void test_one_megabyte(void)
{
    struct analyze *a = new_default();
    size_t cap = (1u << 20) + 4096, len = 0;
    char *sql = malloc(cap);
    struct analyze_result r;
    CHECK(a && sql);
    len += (size_t)sprintf(sql, "SELECT * FROM orders WHERE userid IN (42");
    while (len < (1u << 19))
        len += (size_t)sprintf(sql + len, ", 42");
    len += (size_t)sprintf(sql + len, ") AND note = '");
    while (len < (1u << 20))
        sql[len++] = 'x';
    len += (size_t)sprintf(sql + len, "'");
    CHECK(len > (1u << 20));
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    CHECK_EQ(r.key_len, 2);
    CHECK(memcmp(r.key, "42", 2) == 0);

    /* the same with a second user at the very end */
    len -= 1;
    len += (size_t)sprintf(sql + len, "' AND userid = 43");
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
    CHECK_EQ(r.err_no, 1235);
    CHECK_EQ(r.offset, len - 2);
out:
    free(sql);
    analyze_free(a);
}

/* 10,000 nested parentheses: a reject, not a stack overflow; also right at
 * the configured bound. */
static void test_deep_nesting(void)
{
    struct analyze *a = new_default();
    struct analyze_config cfg;
    struct analyze_result r;
    size_t depth = 10000, len = 0;
    char *sql = malloc(depth * 2 + 256);
    CHECK(a && sql);
    len += (size_t)sprintf(sql, "SELECT * FROM orders WHERE ");
    for (size_t i = 0; i < depth; i++)
        sql[len++] = '(';
    len += (size_t)sprintf(sql + len, "userid = 42");
    for (size_t i = 0; i < depth; i++)
        sql[len++] = ')';
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
    CHECK_EQ(r.err_no, 1235);
    CHECK(strstr(r.msg, "nested too deeply") != NULL);

    /* unbalanced, deep */
    analyze_statement(a, sql, len - 1, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);

    /* within the bound: 200 levels route */
    len = (size_t)sprintf(sql, "SELECT * FROM orders WHERE ");
    for (size_t i = 0; i < 200; i++)
        sql[len++] = '(';
    len += (size_t)sprintf(sql + len, "userid = 42");
    for (size_t i = 0; i < 200; i++)
        sql[len++] = ')';
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);

    /* nested subqueries, each fixed: 100 levels route; a huge max_depth
     * is clamped so 10,000 levels still reject */
    len = (size_t)sprintf(sql, "SELECT * FROM t WHERE userid = 1");
    for (int i = 0; i < 100; i++)
        len += (size_t)sprintf(sql + len, " AND x IN (SELECT x FROM t WHERE userid = 1");
    for (int i = 0; i < 100; i++)
        sql[len++] = ')';
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);

    /* at the largest bound (1000) the deepest accepted nesting runs on the
     * C stack: 999 parentheses, and 490 nested subqueries */
    analyze_config_default(&cfg);
    cfg.max_depth = 1000;
    analyze_free(a);
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    len = (size_t)sprintf(sql, "SELECT * FROM orders WHERE ");
    for (size_t i = 0; i < 999; i++)
        sql[len++] = '(';
    len += (size_t)sprintf(sql + len, "userid = 42");
    for (size_t i = 0; i < 999; i++)
        sql[len++] = ')';
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    free(sql);
    sql = malloc(64 * 1000);
    CHECK(sql != NULL);
    len = (size_t)sprintf(sql, "SELECT * FROM t WHERE userid = 1");
    for (int i = 0; i < 490; i++)
        len += (size_t)sprintf(sql + len, " AND x IN (SELECT x FROM t WHERE userid = 1");
    for (int i = 0; i < 490; i++)
        sql[len++] = ')';
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    free(sql);
    sql = malloc(depth * 2 + 256);
    CHECK(sql != NULL);

    analyze_config_default(&cfg);
    cfg.max_depth = 1000000;
    analyze_free(a);
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    len = 0;
    for (size_t i = 0; i < depth; i++)
        sql[len++] = '(';
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
    len = 0;
    for (size_t i = 0; i < 3000; i++)
        len += (size_t)sprintf(sql + len, "(");
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
out:
    free(sql);
    analyze_free(a);
}

/* Many placeholders and many tables: counts and limits. */
static void test_many(void)
{
    struct analyze *a = new_default();
    struct analyze_result r;
    size_t len = 0;
    char *sql = malloc(1 << 20);
    CHECK(a && sql);
    len = (size_t)sprintf(sql, "SELECT * FROM t WHERE x IN (?");
    for (int i = 1; i < 70000; i++)
        len += (size_t)sprintf(sql + len, ",?");
    len += (size_t)sprintf(sql + len, ") AND userid = ?");
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.n_params, 70001);
    /* the key's '?' is beyond what a 16-bit ordinal holds: never guessed */
    CHECK_EQ(r.kind, ANALYZE_REJECT);

    len = (size_t)sprintf(sql, "SELECT * FROM t0");
    for (int i = 1; i < 2000; i++)
        len += (size_t)sprintf(sql + len, " JOIN t%d ON t%d.userid = t%d.userid", i, i, i - 1);
    len += (size_t)sprintf(sql + len, " WHERE t0.userid = 5");
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
    CHECK(strstr(r.msg, "too many") != NULL);

    len = (size_t)sprintf(sql, "SELECT * FROM t0");
    for (int i = 1; i < 60; i++)
        len += (size_t)sprintf(sql + len, " JOIN t%d ON t%d.userid = t%d.userid", i, i, i - 1);
    len += (size_t)sprintf(sql + len, " WHERE t0.userid = 5");
    analyze_statement(a, sql, len, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
out:
    free(sql);
    analyze_free(a);
}

static void test_canon_key(void)
{
    static const struct {
        enum analyze_key_type type;
        const char *in;
        const char *out;    /* NULL: invalid */
    } v[] = {
        {ANALYZE_KEY_INT, "42", "42"},
        {ANALYZE_KEY_INT, "042", "42"},
        {ANALYZE_KEY_INT, "+42", "42"},
        {ANALYZE_KEY_INT, "-42", "-42"},
        {ANALYZE_KEY_INT, "-0", "0"},
        {ANALYZE_KEY_INT, "0000", "0"},
        {ANALYZE_KEY_INT, "9007199254740992", "9007199254740992"},
        {ANALYZE_KEY_INT, "-9007199254740992", "-9007199254740992"},
        {ANALYZE_KEY_INT, "9007199254740993", "9007199254740993"},
        {ANALYZE_KEY_INT, "-9007199254740993", "-9007199254740993"},
        {ANALYZE_KEY_INT, "9223372036854775807", "9223372036854775807"},
        {ANALYZE_KEY_INT, "-9223372036854775808", "-9223372036854775808"},
        {ANALYZE_KEY_INT, "+09223372036854775807", "9223372036854775807"},
        {ANALYZE_KEY_INT, "9223372036854775808", NULL},
        {ANALYZE_KEY_INT, "-9223372036854775809", NULL},
        {ANALYZE_KEY_INT, "18446744073709551615", NULL},
        {ANALYZE_KEY_INT, "", NULL},
        {ANALYZE_KEY_INT, "-", NULL},
        {ANALYZE_KEY_INT, " 42", NULL},
        {ANALYZE_KEY_INT, "42 ", NULL},
        {ANALYZE_KEY_INT, "42abc", NULL},
        {ANALYZE_KEY_INT, "4.2e1", NULL},
        {ANALYZE_KEY_INT, "42.0", NULL},
        {ANALYZE_KEY_INT, "0x2a", NULL},
        {ANALYZE_KEY_INT, "++42", NULL},
        {ANALYZE_KEY_STRING, "alice", "alice"},
        {ANALYZE_KEY_STRING, "Alice", "Alice"},
        {ANALYZE_KEY_STRING, "alice ", NULL},
        {ANALYZE_KEY_STRING, "", NULL},
    };
    char out[ANALYZE_KEY_MAX];
    char big[ANALYZE_KEY_MAX + 1];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        int n = analyze_canon_key(v[i].type, v[i].in, strlen(v[i].in), out);
        if (!v[i].out) {
            if (n >= 0)
                fprintf(stderr, "canon '%s' should be invalid\n", v[i].in);
            CHECK(n < 0);
        } else {
            if (n < 0)
                fprintf(stderr, "canon '%s' should be valid\n", v[i].in);
            CHECK_EQ(n, strlen(v[i].out));
            CHECK(memcmp(out, v[i].out, (size_t)n) == 0);
        }
    }
    memset(big, 'k', sizeof(big));
    CHECK_EQ(analyze_canon_key(ANALYZE_KEY_STRING, big, ANALYZE_KEY_MAX, out), ANALYZE_KEY_MAX);
    CHECK(analyze_canon_key(ANALYZE_KEY_STRING, big, ANALYZE_KEY_MAX + 1, out) < 0);
out:
    return;
}

/* A string key of exactly ANALYZE_KEY_MAX bytes routes; one more rejects. */
static void test_string_key_len(void)
{
    struct analyze_config cfg;
    struct analyze *a;
    struct analyze_result r;
    char sql[1024];
    analyze_config_default(&cfg);
    cfg.key_type = ANALYZE_KEY_STRING;
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    int len = sprintf(sql, "SELECT * FROM t WHERE userid = '");
    for (int i = 0; i < ANALYZE_KEY_MAX; i++)
        sql[len++] = 'k';
    len += sprintf(sql + len, "'");
    analyze_statement(a, sql, (size_t)len, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    CHECK_EQ(r.key_len, ANALYZE_KEY_MAX);
    len = sprintf(sql, "SELECT * FROM t WHERE userid = '");
    for (int i = 0; i < ANALYZE_KEY_MAX + 1; i++)
        sql[len++] = 'k';
    len += sprintf(sql + len, "'");
    analyze_statement(a, sql, (size_t)len, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
    /* escapes count after unescaping: 2 * 200 source bytes -> 200 bytes */
    len = sprintf(sql, "SELECT * FROM t WHERE userid = '");
    for (int i = 0; i < 200; i++)
        len += sprintf(sql + len, "\\n");
    len += sprintf(sql + len, "'");
    analyze_statement(a, sql, (size_t)len, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    CHECK_EQ(r.key_len, 200);
    CHECK_EQ(r.key[0], '\n');
out:
    analyze_free(a);
}

/* Bytes a text corpus cannot hold: NUL, and statements not NUL-terminated. */
static void test_bytes(void)
{
    struct analyze *a = new_default();
    struct analyze_result r;
    static const char nul_out[] = "SELECT * FROM t WHERE x = 1 \0 AND userid = 5";
    static const char nul_in[] = "SELECT * FROM t WHERE userid = 5 AND x = 'a\0b'";
    static const char nul_comment[] = "SELECT * FROM t WHERE userid = 5 /* \0 */";
    CHECK(a != NULL);
    analyze_statement(a, nul_out, sizeof(nul_out) - 1, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
    CHECK_EQ(r.err_no, 1064);
    CHECK_EQ(r.offset, 28);
    analyze_statement(a, nul_in, sizeof(nul_in) - 1, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    analyze_statement(a, nul_comment, sizeof(nul_comment) - 1, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
    /* the length is what counts, not a terminator: "userid = 55" cut to 5 */
    analyze_statement(a, "SELECT * FROM t WHERE userid = 55", 32, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    CHECK_EQ(r.key_len, 1);
    CHECK_EQ(r.key[0], '5');
    /* reuse after errors: the same analyzer still routes */
    analyze_statement(a, "'", 1, &r);
    CHECK_EQ(r.kind, ANALYZE_REJECT);
    analyze_statement(a, "SELECT * FROM t WHERE userid = ?", 32, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    CHECK_EQ(r.param_index, 0);
    CHECK_EQ(r.n_params, 1);
out:
    analyze_free(a);
}

int main(void)
{
    RUN(test_corpus);
    RUN(test_one_megabyte);
    RUN(test_deep_nesting);
    RUN(test_many);
    RUN(test_canon_key);
    RUN(test_string_key_len);
    RUN(test_bytes);
    return check_exit();
}
