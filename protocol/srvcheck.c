/*
 * protocol/srvcheck.c - the server settings the analyzer's proof rests on.
 *
 * The query uses only single-quoted literals without backslashes and no
 * `||`, so every sql_mode reads it the same way: it must run correctly on
 * exactly the servers it is meant to catch.
 */
#include "protocol/srvcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "protocol/analyze.h"
#include "protocol/packet.h"

/* Key column types whose comparison with the analyzer's canonical key is
 * exact: integer columns for ANALYZE_KEY_INT (MariaDB converts an integer or
 * quoted-integer constant to the column's integer type), byte-wise columns
 * for ANALYZE_KEY_STRING (binary types or a _bin collation). */
static const char srvcheck_int_ok[] =
    "DATA_TYPE IN ('bigint','int','mediumint','smallint','tinyint')";
static const char srvcheck_string_ok[] =
    "(DATA_TYPE IN ('binary','varbinary','tinyblob','blob','mediumblob','longblob')"
    " OR RIGHT(COLLATION_NAME, 4) = '_bin')";

size_t srvcheck_query(const struct analyze_config *cfg, char *out, size_t cap)
{
    char names[ANALYZE_MAX_KEY_COLS * (ANALYZE_NAME_MAX + 4)];
    size_t nl = 0;
    const char *ok = cfg->key_type == ANALYZE_KEY_STRING ? srvcheck_string_ok : srvcheck_int_ok;
    int n;

    for (unsigned k = 0; k < cfg->n_key_columns && k < ANALYZE_MAX_KEY_COLS; k++) {
        const char *c = cfg->key_columns[k];
        size_t cl = strnlen(c, ANALYZE_NAME_MAX);

        /* Names with quotes or backslashes would read differently under
         * NO_BACKSLASH_ESCAPES; no real column name needs them. */
        if (cl == 0 || cl == ANALYZE_NAME_MAX || strpbrk(c, "'\\"))
            return 0;
        names[nl++] = k ? ',' : ' ';
        names[nl++] = '\'';
        memcpy(names + nl, c, cl);
        nl += cl;
        names[nl++] = '\'';
    }
    names[nl] = 0;
    n = snprintf(out, cap,
                 "SELECT @@version, @@sql_mode, @@lower_case_table_names,"
                 " @@character_set_client, @@character_set_connection,"
                 " (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE"
                 " TABLE_SCHEMA = DATABASE() AND COLUMN_NAME IN (%s) AND NOT %s),"
                 " (SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME, ' ', COLUMN_TYPE, ' ',"
                 " IFNULL(COLLATION_NAME, '')) FROM information_schema.COLUMNS WHERE"
                 " TABLE_SCHEMA = DATABASE() AND COLUMN_NAME IN (%s) AND NOT %s"
                 " ORDER BY TABLE_NAME LIMIT 1)",
                 names, ok, names, ok);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

int srvcheck_parse_row(const uint8_t *p, size_t len, struct srvcheck_value vals[SRVCHECK_N_COLS])
{
    struct packet_reader r;

    packet_reader_init(&r, p, len);
    for (int i = 0; i < SRVCHECK_N_COLS; i++) {
        if (r.pos < len && p[r.pos] == 0xfb) {       /* NULL */
            vals[i].off = r.pos;
            vals[i].len = 0;
            vals[i].is_null = 1;
            r.pos++;
            continue;
        }
        vals[i].is_null = 0;
        if (packet_get_lenenc_str(&r, &vals[i].off, &vals[i].len) < 0)
            return -1;
    }
    return packet_remaining(&r) == 0 ? 0 : -1;
}

static int srvcheck_fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int srvcheck_fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static int srvcheck_is(const uint8_t *p, const struct srvcheck_value *v, const char *want)
{
    return !v->is_null && v->len == strlen(want) && memcmp(p + v->off, want, v->len) == 0;
}

/* Whether <v> starts with "10.11." and names MariaDB: the dialect whose
 * lexer, keywords and executable-comment versions the analyzer follows. */
static int srvcheck_version_ok(const uint8_t *p, const struct srvcheck_value *v)
{
    const char *s = (const char *)p + v->off;
    static const char maria[] = "MariaDB";

    if (v->is_null || v->len < 6 || memcmp(s, "10.11.", 6) != 0)
        return 0;
    for (size_t i = 0; i + sizeof(maria) - 1 <= v->len; i++)
        if (memcmp(s + i, maria, sizeof(maria) - 1) == 0)
            return 1;
    return 0;
}

int srvcheck_verify(const struct analyze_config *cfg, const uint8_t *p,
                    const struct srvcheck_value vals[SRVCHECK_N_COLS], char *err, size_t err_cap)
{
    const struct srvcheck_value *v;
    const char *s;

#define SRVCHECK_SHOW(x) (int)((x)->len > 120 ? 120 : (x)->len), (const char *)p + (x)->off
    v = &vals[SRVCHECK_VERSION];
    if (!srvcheck_version_ok(p, v))
        return srvcheck_fail(err, err_cap, "server version '%.*s' is not MariaDB 10.11, whose "
                             "SQL dialect the analyzer reads", SRVCHECK_SHOW(v));
    v = &vals[SRVCHECK_SQL_MODE];
    if (v->is_null || !analyze_sql_mode_safe((const char *)p + v->off, v->len))
        return srvcheck_fail(err, err_cap, "sql_mode '%.*s' has a mode that changes how "
                             "statements are read (e.g. ANSI_QUOTES, PIPES_AS_CONCAT, "
                             "NO_BACKSLASH_ESCAPES, HIGH_NOT_PRECEDENCE, IGNORE_SPACE, ORACLE); "
                             "set the server's global sql_mode without it", SRVCHECK_SHOW(v));
    v = &vals[SRVCHECK_LCTN];
    if (!srvcheck_is(p, v, "0") && !srvcheck_is(p, v, "1"))
        return srvcheck_fail(err, err_cap, "lower_case_table_names=%.*s; the analyzer supports "
                             "0 and 1", SRVCHECK_SHOW(v));
    v = &vals[SRVCHECK_CS_CLIENT];
    if (!srvcheck_is(p, v, "utf8mb4"))
        return srvcheck_fail(err, err_cap, "character_set_client is '%.*s' after login with "
                             "utf8mb4 (skip-character-set-client-handshake or init_connect?); "
                             "it must be utf8mb4", SRVCHECK_SHOW(v));
    v = &vals[SRVCHECK_CS_CONNECTION];
    if (!srvcheck_is(p, v, "utf8mb4"))
        return srvcheck_fail(err, err_cap, "character_set_connection is '%.*s' after login "
                             "with utf8mb4; it must be utf8mb4", SRVCHECK_SHOW(v));
    v = &vals[SRVCHECK_BAD_KEYS];
    if (!srvcheck_is(p, v, "0")) {
        const struct srvcheck_value *first = &vals[SRVCHECK_FIRST_BAD_KEY];

        s = cfg->key_type == ANALYZE_KEY_STRING
                ? "a binary type or a _bin collation (shard_key_type = string)"
                : "an integer type (shard_key_type = int)";
        return srvcheck_fail(err, err_cap, "%.*s shard key column(s) of the database are not %s, "
                             "so the server would compare keys differently from the router; "
                             "first: %.*s", SRVCHECK_SHOW(v), s, SRVCHECK_SHOW(first));
    }
#undef SRVCHECK_SHOW
    return 0;
}
