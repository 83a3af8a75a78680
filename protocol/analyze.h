/*
 * protocol/analyze.h - one SQL statement -> routing decision.
 *
 * Pure: text in, decision out. No sockets, threads, clock, globals or
 * logging. A struct analyze is set up once per thread (or per tool run) and
 * reused, so the common path allocates nothing per statement. Used by the
 * router (COM_QUERY, COM_STMT_PREPARE), by `shardctl explain`, and by the
 * fuzzers.
 */
#ifndef SHARDWIRE_PROTOCOL_ANALYZE_H
#define SHARDWIRE_PROTOCOL_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANALYZE_KEY_MAX       256   /* canonical key bytes, at most */
#define ANALYZE_MAX_KEY_COLS  8
#define ANALYZE_NAME_MAX      64

enum analyze_key_type {
    ANALYZE_KEY_INT,        /* signed 64-bit integer; canonical form is its decimal text */
    ANALYZE_KEY_STRING,     /* compared as binary bytes; canonical form is the bytes */
};

struct analyze_config {
    char                  key_columns[ANALYZE_MAX_KEY_COLS][ANALYZE_NAME_MAX];
    unsigned              n_key_columns;  /* >= 1; any of them is the shard key */
    enum analyze_key_type key_type;
    char                  database[ANALYZE_NAME_MAX];  /* the one database apps may USE */
    unsigned              max_depth;      /* nesting bound (parentheses/subqueries); 0 = 256,
                                             at most 1000; each level may use ~700 bytes
                                             of the caller's C stack (~180 KB at 256) */
    unsigned              multi_param_key; /* 1: the key may be given by several '?' (all
                                              in <key_params>, which the router must
                                              check are equal at execute time); 0 (the
                                              default): such statements are refused */
};

enum analyze_kind {
    ANALYZE_ROUTE,      /* goes to the shard that owns the key */
    ANALYZE_SESSION,    /* needs no shard: runs on the session's backend, or any one */
    ANALYZE_LOCAL,      /* the router answers it itself (see <stmt>) */
    ANALYZE_REJECT,     /* refused: <err_no>, <sqlstate>, <msg> */
};

/* What the statement is, for the router's session bookkeeping. */
enum analyze_stmt {
    ANALYZE_STMT_OTHER,
    ANALYZE_STMT_SELECT,      /* SELECT (with tables: ROUTE; without: SESSION) */
    ANALYZE_STMT_INSERT,      /* INSERT / REPLACE */
    ANALYZE_STMT_UPDATE,
    ANALYZE_STMT_DELETE,
    ANALYZE_STMT_BEGIN,       /* BEGIN [WORK], START TRANSACTION [...] */
    ANALYZE_STMT_COMMIT,      /* COMMIT [WORK] [AND [NO] CHAIN] [[NO] RELEASE] */
    ANALYZE_STMT_ROLLBACK,    /* ROLLBACK [WORK] (not ROLLBACK TO SAVEPOINT) */
    ANALYZE_STMT_SAVEPOINT,   /* SAVEPOINT x, RELEASE SAVEPOINT x, ROLLBACK TO [SAVEPOINT] x */
    ANALYZE_STMT_SET,         /* session SET: variables, NAMES, CHARACTER SET, TRANSACTION */
    ANALYZE_STMT_USE,         /* USE <configured database>: LOCAL */
    ANALYZE_STMT_SHOW,        /* SHOW WARNINGS / VARIABLES / COLLATION / ... */
    ANALYZE_STMT_DO,          /* DO expr (no tables) */
};

/*
 * The decision. Which fields mean something depends on <kind>:
 *   ROUTE:   <param_index> >= 0 when the key is the value bound to that '?'
 *            (0-based, prepared statements); otherwise <key>/<key_len> hold
 *            the canonical key (for ANALYZE_KEY_INT: decimal, no '+', no
 *            leading zeros, "-" only for negatives; e.g. 042 -> "42").
 *   SESSION, LOCAL: <stmt> says what it is; for SET, <sets_autocommit> and
 *            <autocommit> say whether and how it changes autocommit.
 *   REJECT:  <err_no> (a MySQL errno), <sqlstate> (5 chars + NUL), <msg>
 *            (a static string naming the broken rule and how to fix it) and
 *            <offset> (byte offset in the statement where the problem is).
 */
struct analyze_result {
    enum analyze_kind kind;
    enum analyze_stmt stmt;
    unsigned          n_params;        /* '?' placeholders in the statement */

    int               param_index;     /* ROUTE: -1, or the '?' that carries the key */
    uint64_t          key_params;      /* ROUTE by '?': bit i for every '?' i < 64 that
                                          carries the key (the lowest is <param_index>; 0
                                          when that '?' is beyond 63); more than one bit
                                          only with cfg.multi_param_key, and then all must
                                          canonicalise to the same key */
    uint64_t          scope_params;    /* ROUTE with a key given as a literal, under
                                          analyze_set_param_key(): bit i for every '?'
                                          i that stands where the key goes; the router
                                          must check at EXECUTE that each binds a value
                                          whose canonical key is <key> */
    char              key[ANALYZE_KEY_MAX];
    size_t            key_len;

    unsigned          is_write:1;      /* INSERT/UPDATE/DELETE/REPLACE */
    unsigned          sets_autocommit:1;
    unsigned          autocommit:1;    /* valid when sets_autocommit */
    unsigned          pins_session:1;  /* user @variables, GET_LOCK & co. (any spelling),
                                          LAST_INSERT_ID(expr), SQL_CALC_FOUND_ROWS,
                                          FOUND_ROWS(): state the router cannot move
                                          between backend connections */
    unsigned          allowable:1;     /* REJECT only for the statement's kind (SHOW
                                          PROCESSLIST, FLUSH, KILL, SET sql_log_bin, ...):
                                          it reads and writes no table rows, so an operator
                                          `allow` rule (router/rules.h) may run it as SESSION */
    unsigned          sets_sql_mode:1; /* SET sql_mode: <sql_mode> is the session's new
                                          ANALYZE_MODE_* bits, once the SET succeeds */
    unsigned          scope:2;         /* LOCAL SET @shardwire_user (ANALYZE_SCOPE_SESSION) or
                                          @shardwire_txn_user (ANALYZE_SCOPE_TXN): the user
                                          is <key>/<key_len>, or the value bound to '?'
                                          <param_index> (>= 0; prepared), or none when
                                          <scope_clear> */
    unsigned          scope_clear:1;
    unsigned          locks_rows:1;    /* FOR UPDATE / LOCK IN SHARE MODE */
    unsigned          unconfined:1;    /* REJECT only because some table is not limited
                                          to one user (the whole statement was read):
                                          analyze_scope_tables() can say where a key
                                          condition for each table would go */
    unsigned          reads_prev_stmt:1; /* reads what the connection's previous
                                          statement left: SHOW WARNINGS/ERRORS (not
                                          cleared by statements without tables),
                                          FOUND_ROWS(), ROW_COUNT(), @@warning_count,
                                          @@error_count; or an earlier one: LAST_INSERT_ID(),
                                          @@identity, @@last_insert_id. On a connection the session
                                          does not hold yet, that is another session's
                                          statement: the router resets it first */

    unsigned          sql_mode;        /* ANALYZE_MODE_*, valid when sets_sql_mode */

    uint16_t          err_no;
    char              sqlstate[6];
    const char       *msg;
    size_t            offset;
};

enum analyze_scope {
    ANALYZE_SCOPE_NONE,
    ANALYZE_SCOPE_SESSION,  /* SET @shardwire_user = K: the session's user */
    ANALYZE_SCOPE_TXN,      /* SET @shardwire_txn_user = K: until COMMIT/ROLLBACK */
};

struct analyze;   /* reusable scratch (token array etc.), opaque */

/* sql_mode bits that change how statements are read and that the analyzer
 * follows (everything else that would is refused): */
#define ANALYZE_MODE_PIPES_AS_CONCAT 0x1u   /* || is concatenation (only removes an OR) */

/* Returns a new analyzer for <cfg> (copied), or NULL when out of memory.
 * Free with analyze_free(). One per thread: not thread-safe. */
struct analyze *analyze_new(const struct analyze_config *cfg);
void analyze_free(struct analyze *a);

/* The configuration <a> was made with (its own copy). */
const struct analyze_config *analyze_config_of(const struct analyze *a);

/* Reads the following statements as under a session sql_mode with the
 * ANALYZE_MODE_* bits <modes> (0 at analyze_new()): the router sets its
 * session's mode before each analyze_statement(). */
void analyze_set_sql_mode(struct analyze *a, unsigned modes);

/* Reads every '?' of the following statements that gives the shard key as
 * the key <key>/<len> (canonical), noting it in <scope_params>: a prepared
 * statement on a session scoped to that user, whose bound values the router
 * checks at EXECUTE. <len> 0 ends it (the default). */
void analyze_set_param_key(struct analyze *a, const char *key, size_t len);

/*
 * Analyses the statement <sql>/<len> (not NUL-terminated; may hold any bytes)
 * into <*out>. Always fills <*out>; bad SQL is a REJECT, never a crash.
 * Returns 0, or -1 only when scratch memory could not grow (then <*out> is a
 * REJECT with ER_OUT_OF_RESOURCES).
 */
int analyze_statement(struct analyze *a, const char *sql, size_t len,
                      struct analyze_result *out);

/* Where a tenant scope's key condition goes for one table reference
 * (protocol/scope.c writes it): byte offsets into the statement. */
struct analyze_scope_table {
    uint32_t qual_off, qual_len;  /* the alias or table name to qualify the key with */
    uint32_t at, close;           /* the condition [at, close) to AND it with, or
                                     (at == close) where a new WHERE goes */
    uint8_t  where;               /* 1: its block's WHERE; 0: the ON of the outer join
                                     that NULL-extends it (outer joins keep their
                                     meaning) */
};

/*
 * After analyze_statement() gave a REJECT with <unconfined> set: every
 * reference of a table of the database the statement reads or changes (each
 * join, subquery, derived table body, UNION part; not an INSERT's target), in
 * statement order, into <out> (at most <max>). Returns how many, or -1 when
 * one has no place where a condition keeps the statement's meaning (NATURAL
 * joins, an outer join by USING, no alias to qualify with) or <max> is too
 * small. Reads <a>'s state of that last statement.
 */
int analyze_scope_tables(const struct analyze *a, struct analyze_scope_table *out,
                         unsigned max);

/* Fills <cfg> with defaults: key column "userid", integer keys, database "". */
void analyze_config_default(struct analyze_config *cfg);

/* Canonicalises a key value sent as text (e.g. a string-typed '?' parameter
 * of a prepared statement, or a quoted literal) by the rules of <type>.
 * Writes at most ANALYZE_KEY_MAX bytes to <out>. Returns the canonical length,
 * or -1 when the value is not a valid key (not an integer in int64 range for
 * ANALYZE_KEY_INT, too long, ...).
 * ANALYZE_KEY_INT: [+|-]digits only (no spaces, dots, exponents), in the
 * signed 64-bit range: MariaDB compares a BIGINT key column with a quoted
 * integer exactly over that whole range (key columns must be BIGINT/INT, not
 * DECIMAL or DOUBLE: docs/query-rules.md section 9). Integer-typed parameters
 * are not text: format them in decimal first.
 * ANALYZE_KEY_STRING: 1..ANALYZE_KEY_MAX bytes, no trailing space. */
int analyze_canon_key(enum analyze_key_type type, const char *val, size_t len,
                      char out[ANALYZE_KEY_MAX]);

/* Whether the comma-separated sql_mode value <modes>/<len> (as @@sql_mode
 * shows it) holds only modes that leave the analyzer's reading of statements
 * unchanged; the router checks every shard's session sql_mode with it. */
bool analyze_sql_mode_safe(const char *modes, size_t len);

#endif
