/*
 * tests/unit/test_srvcheck.c - the server-settings check: the query text,
 * reading its row, and the verdict for each setting the analyzer relies on.
 */
#include "protocol/srvcheck.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "protocol/analyze.h"

/* Encodes <vals> (NULL = SQL NULL) as a text-protocol row at <out>. */
static size_t make_row(uint8_t *out, const char *const vals[SRVCHECK_N_COLS])
{
    size_t n = 0;

    for (int i = 0; i < SRVCHECK_N_COLS; i++) {
        if (!vals[i]) {
            out[n++] = 0xfb;
            continue;
        }
        size_t l = strlen(vals[i]);
        out[n++] = (uint8_t)l;          /* every test value is < 251 bytes */
        memcpy(out + n, vals[i], l);
        n += l;
    }
    return n;
}

/* 0 or -1 from srvcheck_verify() for a row of <vals>; its message in <err>. */
static int judge(const struct analyze_config *cfg, const char *const vals[SRVCHECK_N_COLS],
                 char *err, size_t cap)
{
    uint8_t row[1024];
    struct srvcheck_value v[SRVCHECK_N_COLS];
    size_t n = make_row(row, vals);

    err[0] = 0;
    if (srvcheck_parse_row(row, n, v) < 0)
        return -2;
    return srvcheck_verify(cfg, row, v, err, cap);
}

static const char *const good[SRVCHECK_N_COLS] = {
    "10.11.6-MariaDB-0+deb12u1", "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION", "0", "utf8mb4", "utf8mb4", "0", NULL,
};

static void test_good_server(void)
{
    struct analyze_config cfg;
    char err[400];
    const char *v[SRVCHECK_N_COLS];

    analyze_config_default(&cfg);
    CHECK_EQ(judge(&cfg, good, err, sizeof(err)), 0);
    memcpy(v, good, sizeof(v));
    v[SRVCHECK_SQL_MODE] = "";
    CHECK_EQ(judge(&cfg, v, err, sizeof(err)), 0);
    v[SRVCHECK_LCTN] = "1";
    CHECK_EQ(judge(&cfg, v, err, sizeof(err)), 0);
out:;
}

static void test_each_setting_refused(void)
{
    static const struct {
        int         col;
        const char *val;
        const char *in_msg;
    } cases[] = {
        { SRVCHECK_VERSION, "8.0.36", "not MariaDB 10.11" },
        { SRVCHECK_VERSION, "11.4.2-MariaDB", "not MariaDB 10.11" },
        { SRVCHECK_VERSION, "10.11.6-MySQL", "not MariaDB 10.11" },
        { SRVCHECK_VERSION, NULL, "not MariaDB 10.11" },
        { SRVCHECK_SQL_MODE, "ANSI_QUOTES", "ANSI_QUOTES" },
        { SRVCHECK_SQL_MODE, "STRICT_TRANS_TABLES,PIPES_AS_CONCAT", "PIPES_AS_CONCAT" },
        { SRVCHECK_SQL_MODE, "NO_BACKSLASH_ESCAPES", "sql_mode" },
        { SRVCHECK_SQL_MODE, "HIGH_NOT_PRECEDENCE", "sql_mode" },
        { SRVCHECK_SQL_MODE, "IGNORE_SPACE", "sql_mode" },
        { SRVCHECK_SQL_MODE, "PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ORACLE", "sql_mode" },
        { SRVCHECK_SQL_MODE, "SOME_FUTURE_MODE", "sql_mode" },
        { SRVCHECK_LCTN, "2", "lower_case_table_names=2" },
        { SRVCHECK_CS_CLIENT, "latin1", "character_set_client is 'latin1'" },
        { SRVCHECK_CS_CONNECTION, "utf16", "character_set_connection is 'utf16'" },
        { SRVCHECK_BAD_KEYS, "2", "orders.userid varchar(20)" },
    };
    struct analyze_config cfg;
    char err[400];

    analyze_config_default(&cfg);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const char *v[SRVCHECK_N_COLS];

        memcpy(v, good, sizeof(v));
        v[cases[k].col] = cases[k].val;
        if (cases[k].col == SRVCHECK_BAD_KEYS)
            v[SRVCHECK_FIRST_BAD_KEY] = "orders.userid varchar(20) utf8mb4_general_ci";
        CHECK_EQ(judge(&cfg, v, err, sizeof(err)), -1);
        if (!strstr(err, cases[k].in_msg)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", k, err, cases[k].in_msg);
            CHECK(0);
        }
    }
out:;
}

static void test_parse_row_bounds(void)
{
    uint8_t row[512];
    struct srvcheck_value v[SRVCHECK_N_COLS];
    size_t n = make_row(row, good);

    CHECK_EQ(srvcheck_parse_row(row, n, v), 0);
    CHECK_EQ(v[SRVCHECK_FIRST_BAD_KEY].is_null, 1);
    /* Every truncation, and a trailing byte, is not a row. */
    for (size_t cut = 0; cut < n; cut++)
        CHECK_EQ(srvcheck_parse_row(row, cut, v), -1);
    row[n] = 0;
    CHECK_EQ(srvcheck_parse_row(row, n + 1, v), -1);
    /* A length running past the end. */
    row[0] = 250;
    CHECK_EQ(srvcheck_parse_row(row, n, v), -1);
out:;
}

static void test_query_text(void)
{
    struct analyze_config cfg;
    char q[4096];

    analyze_config_default(&cfg);
    snprintf(cfg.key_columns[1], ANALYZE_NAME_MAX, "%s", "tenant");
    cfg.n_key_columns = 2;
    CHECK(srvcheck_query(&cfg, q, sizeof(q)) > 0);
    CHECK(strstr(q, "IN ( 'userid','tenant')") != NULL);
    CHECK(strstr(q, "'bigint'") != NULL);
    CHECK(strchr(q, '\\') == NULL);
    CHECK(strstr(q, "||") == NULL);
    cfg.key_type = ANALYZE_KEY_STRING;
    CHECK(srvcheck_query(&cfg, q, sizeof(q)) > 0);
    CHECK(strstr(q, "'varbinary'") != NULL && strstr(q, "'_bin'") != NULL);
    CHECK_EQ(srvcheck_query(&cfg, q, 100), 0);
    snprintf(cfg.key_columns[1], ANALYZE_NAME_MAX, "%s", "a'b");
    CHECK_EQ(srvcheck_query(&cfg, q, sizeof(q)), 0);
out:;
}

int main(void)
{
    RUN(test_good_server);
    RUN(test_each_setting_refused);
    RUN(test_parse_row_bounds);
    RUN(test_query_text);
    return check_exit();
}
