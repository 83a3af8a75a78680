/*
 * protocol/srvcheck.h - the server settings the analyzer's proof rests on,
 * checked on every new backend connection.
 *
 * The analyzer reads statements as MariaDB 10.11 does with a utf8mb4 client
 * character set and a sql_mode that does not change lexing or precedence
 * (no ANSI_QUOTES, PIPES_AS_CONCAT, NO_BACKSLASH_ESCAPES, HIGH_NOT_PRECEDENCE,
 * IGNORE_SPACE, ORACLE, ...), and it proves confinement from key values
 * compared the way an integer (or binary) key column compares them. A shard
 * whose settings differ would read the same bytes differently, so the router
 * asks every new connection for those settings (one query, before the
 * connection is used) and refuses to use a server where any differs.
 *
 * Pure: builds the query text, reads the one-row text reply, judges it. The
 * router sends and receives (router/backend.c).
 */
#ifndef SHARDWIRE_PROTOCOL_SRVCHECK_H
#define SHARDWIRE_PROTOCOL_SRVCHECK_H

#include <stddef.h>
#include <stdint.h>

struct analyze_config;

enum srvcheck_col {
    SRVCHECK_VERSION,         /* @@version */
    SRVCHECK_SQL_MODE,        /* @@session.sql_mode right after login */
    SRVCHECK_LCTN,            /* @@lower_case_table_names */
    SRVCHECK_CS_CLIENT,       /* @@character_set_client */
    SRVCHECK_CS_CONNECTION,   /* @@character_set_connection */
    SRVCHECK_BAD_KEYS,        /* key columns of the app database with a wrong type */
    SRVCHECK_FIRST_BAD_KEY,   /* "table.column type collation" of one of them, or NULL */
    SRVCHECK_N_COLS,
};

/* One column of the row: <off>/<len> into the row payload; <is_null>. */
struct srvcheck_value {
    size_t off, len;
    int    is_null;
};

/*
 * Writes the check query for <cfg> (its key columns and key type) as a
 * NUL-terminated string at <out>. Returns its length, or 0 if <cap> is too
 * small (4096 bytes always suffice).
 */
size_t srvcheck_query(const struct analyze_config *cfg, char *out, size_t cap);

/*
 * Reads a text-protocol row of SRVCHECK_N_COLS values from <p>/<len> into
 * <vals>. Returns 0, or -1 if the packet is not such a row.
 */
int srvcheck_parse_row(const uint8_t *p, size_t len, struct srvcheck_value vals[SRVCHECK_N_COLS]);

/*
 * Judges the row <p> (values <vals>) against what the analyzer assumes for
 * <cfg>. Returns 0 if the server may be used; otherwise -1 with a message
 * naming the setting, its value and what is required written to <err>
 * (at most <err_cap> bytes, NUL-terminated).
 */
int srvcheck_verify(const struct analyze_config *cfg, const uint8_t *p,
                    const struct srvcheck_value vals[SRVCHECK_N_COLS], char *err, size_t err_cap);

#endif
