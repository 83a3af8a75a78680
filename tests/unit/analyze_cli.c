/*
 * tests/unit/analyze_cli.c - test-only: statements on stdin, decisions out.
 *
 * One statement per input line; prints one JSON object per line:
 *   {"sql":"...","decision":"route","userid":"42","param":-1,...}
 * Used by tests/e2e/test_confinement.py, tests/difffuzz/ and for poking at
 * the analyzer by hand. Options: --db NAME (USE-able database), --key COL
 * (repeatable), --string-keys, -0 (statements end with a NUL byte instead
 * of a newline, so they may hold newlines and carriage returns verbatim;
 * nothing is stripped), --user K (each statement as on a session scoped to
 * user K, protocol/scope.h: a rewritten statement adds "rewritten":"..." to
 * its line, and the decision is the rewrite's). Never linked into the
 * router.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/analyze.h"
#include "protocol/scope.h"

static void cli_json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    struct analyze_config cfg;
    analyze_config_default(&cfg);
    int n_keys = 0;
    int delim = '\n';
    const char *user = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) {
            snprintf(cfg.database, sizeof(cfg.database), "%s", argv[++i]);
        } else if (!strcmp(argv[i], "--key") && i + 1 < argc && n_keys < ANALYZE_MAX_KEY_COLS) {
            snprintf(cfg.key_columns[n_keys++], ANALYZE_NAME_MAX, "%s", argv[++i]);
            cfg.n_key_columns = (unsigned)n_keys;
        } else if (!strcmp(argv[i], "--string-keys")) {
            cfg.key_type = ANALYZE_KEY_STRING;
        } else if (!strcmp(argv[i], "-0")) {
            delim = '\0';
        } else if (!strcmp(argv[i], "--user") && i + 1 < argc) {
            user = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--db NAME] [--key COL]... [--string-keys] [-0] "
                    "[--user K]\n", argv[0]);
            return 2;
        }
    }
    struct analyze *a = analyze_new(&cfg);
    if (!a)
        return 1;
    char ukey[ANALYZE_KEY_MAX];
    int ulen = user ? analyze_canon_key(cfg.key_type, user, strlen(user), ukey) : 0;
    if (ulen < 0) {
        fprintf(stderr, "--user %s: not a valid key\n", user);
        analyze_free(a);
        return 2;
    }
    struct scope_buf sbuf = {0};
    static const char *const kinds[] = {"route", "session", "local", "reject"};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getdelim(&line, &cap, delim, stdin)) >= 0) {
        if (delim == '\0') {
            if (n > 0 && line[n - 1] == '\0')
                n--;
        } else {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                n--;
        }
        struct analyze_result r;
        int v = SCOPE_ASIS;
        if (ulen > 0)
            v = scope_apply(a, line, (size_t)n, ukey, (size_t)ulen, false, &sbuf, &r);
        else
            analyze_statement(a, line, (size_t)n, &r);
        printf("{\"sql\":");
        cli_json_str(line, (size_t)n);
        if (v == SCOPE_REWRITTEN) {
            printf(",\"rewritten\":");
            cli_json_str(sbuf.p, sbuf.len);
        }
        printf(",\"decision\":\"%s\",\"stmt\":%d,\"params\":%u", kinds[r.kind], (int)r.stmt,
               r.n_params);
        if (r.kind == ANALYZE_ROUTE) {
            printf(",\"param\":%d,\"userid\":", r.param_index);
            if (r.param_index >= 0)
                printf("null");
            else
                cli_json_str(r.key, r.key_len);
        }
        if (r.kind == ANALYZE_REJECT) {
            printf(",\"errno\":%u,\"sqlstate\":\"%s\",\"offset\":%zu,\"msg\":", r.err_no,
                   r.sqlstate, r.offset);
            cli_json_str(r.msg, strlen(r.msg));
        }
        printf(",\"write\":%d,\"pins\":%d", r.is_write, r.pins_session);
        if (r.sets_autocommit)
            printf(",\"autocommit\":%d", r.autocommit);
        printf("}\n");
    }
    free(line);
    scope_buf_fini(&sbuf);
    analyze_free(a);
    return 0;
}
