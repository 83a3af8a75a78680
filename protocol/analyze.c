/*
 * protocol/analyze.c - one SQL statement -> routing decision (see analyze.h).
 *
 * Not a full SQL parser: it lexes the statement (lex.c), then walks the
 * token array with just enough structure to know every table the statement
 * reads or writes, which SELECT block each belongs to, and which top-level
 * AND terms of WHERE/ON fix a table's key column to a value. A statement is
 * routed only when every real table is provably limited to one user; every
 * construct we do not understand ends in a REJECT, never in a guess. The
 * exact rules are documented for app developers in docs/query-rules.md.
 *
 * Assumptions (docs/query-rules.md): every table reached through shardwire
 * has the key column; unique keys include it; backends are MariaDB >= 10.11
 * without ANSI_QUOTES/NO_BACKSLASH_ESCAPES/PIPES_AS_CONCAT in the global
 * sql_mode; no stored functions read other users' rows.
 *
 * Memory: struct analyze owns a token array that only grows, so after the
 * first few statements nothing is allocated. Everything else is fixed-size.
 */
#include "protocol/analyze.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/lex.h"
#include "protocol/wire.h"

#define ANALYZE_MAX_TABLES   512     /* table references per statement */
#define ANALYZE_MAX_BLOCKS   512     /* SELECT blocks per statement */
#define ANALYZE_MAX_EDGES    2048    /* key equalities between tables */
#define ANALYZE_MAX_FIXES    1024    /* pending fixes while walking OR/AND terms */
#define ANALYZE_MAX_CTE      64      /* WITH names in scope */
#define ANALYZE_MAX_SEPS     4096    /* top-level AND/OR of the conditions being walked */
#define ANALYZE_DEPTH_CAP    1000    /* cfg.max_depth is clamped to this (C stack) */
#define ANALYZE_ER_OUT_OF_RESOURCES 1041

/* Reject messages: static, start with "shardwire: ", name the rule and the fix. */
#define ANALYZE_M_EMPTY      "shardwire: empty query"
#define ANALYZE_M_MULTI      "shardwire: multiple statements in one query are not allowed; send one statement per query"
#define ANALYZE_M_DEPTH      "shardwire: statement nested too deeply (parentheses or subqueries); simplify it"
#define ANALYZE_M_PAREN      "shardwire: syntax error: unbalanced parentheses"
#define ANALYZE_M_TOO_LONG   "shardwire: statement too long"
#define ANALYZE_M_OOM        "shardwire: out of memory while analysing the statement"
#define ANALYZE_M_DDL        "shardwire: DDL (CREATE/ALTER/DROP/TRUNCATE/RENAME) is not allowed through shardwire; run schema changes on every shard with the migration tooling"
#define ANALYZE_M_LOAD       "shardwire: LOAD DATA/LOAD XML is not allowed through shardwire; use INSERT ... VALUES"
#define ANALYZE_M_OUTFILE    "shardwire: SELECT ... INTO OUTFILE/DUMPFILE and LOAD_FILE() are not allowed through shardwire"
#define ANALYZE_M_LOCK       "shardwire: LOCK/UNLOCK TABLES is not allowed through shardwire; use a transaction with SELECT ... FOR UPDATE"
#define ANALYZE_M_ADMIN      "shardwire: administrative statements (GRANT, REVOKE, FLUSH, KILL, RESET, PURGE, replication, plugins, ...) are not allowed through shardwire"
#define ANALYZE_M_HANDLER    "shardwire: HANDLER is not allowed through shardwire; use SELECT with the shard key"
#define ANALYZE_M_CALL       "shardwire: CALL (stored procedures) is not allowed through shardwire"
#define ANALYZE_M_PREPARE    "shardwire: SQL-level PREPARE/EXECUTE/DEALLOCATE is not allowed; use the binary protocol's prepared statements"
#define ANALYZE_M_UNKNOWN    "shardwire: this kind of statement is not supported through shardwire (see docs/query-rules.md)"
#define ANALYZE_M_GRAMMAR    "shardwire: syntax error: this token is not understood here by shardwire's analyzer (its grammar is a strict subset of MariaDB's; see docs/query-rules.md); rewrite the condition"
#define ANALYZE_M_SYNTAX     "shardwire: statement not understood by shardwire's analyzer; rewrite it in the subset of docs/query-rules.md"
#define ANALYZE_M_FEATURE    "shardwire: LATERAL, JSON_TABLE, PROCEDURE, VALUES/TABLE statements and WITH before UPDATE/DELETE are not supported through shardwire"
#define ANALYZE_M_TOO_BIG    "shardwire: statement has too many tables or subqueries for shardwire's analyzer"
#define ANALYZE_M_NO_KEY     "shardwire: statement is not limited to one user: add '<key column> = <value>' (e.g. userid = 42) as a top-level AND condition of WHERE"
#define ANALYZE_M_UNFIXED    "shardwire: a table is not limited to the statement's user: give every table (each JOIN, subquery, derived table and UNION part) its own '<table>.userid = <value>' condition, or join it ON <table>.userid = <fixed table>.userid"
#define ANALYZE_M_TWO_USERS  "shardwire: statement names two different users (shard key values); a statement may touch only one user's rows"
#define ANALYZE_M_FAR_PARAM  "shardwire: on a scoped session a '?' beyond the 64th may not give the shard key; name the user as a literal there"
#define ANALYZE_M_TWO_PARAMS "shardwire: the shard key is given by two different '?' placeholders, or by a placeholder and a literal; give it once, or as literals"
#define ANALYZE_M_KEY_INT    "shardwire: the shard key must be an integer in the signed 64-bit range written as 42, -42, '42' or ?; decimals, hex, spaces or trailing text are compared differently by MariaDB"
#define ANALYZE_M_KEY_STR    "shardwire: the shard key must be a single-quoted string literal (utf8mb4 or binary, 1-256 bytes, no trailing space) or ?"
#define ANALYZE_M_KEY_UPDATE "shardwire: UPDATE may not change the shard key column (only assign it the statement's own key, a no-op); moving rows between users is not supported"
#define ANALYZE_M_KEY_ODKU   "shardwire: ON DUPLICATE KEY UPDATE may not change the shard key column (only userid = VALUES(userid), userid = userid or the inserted key)"
#define ANALYZE_M_INS_COLS   "shardwire: INSERT/REPLACE needs an explicit column list (or SET) that includes the shard key column"
#define ANALYZE_M_INS_KEY    "shardwire: INSERT/REPLACE must give the shard key as a literal or ? in every row"
#define ANALYZE_M_INS_SELECT "shardwire: INSERT ... SELECT must be one SELECT fixed to the user whose key it selects (the key column of a fixed table, or the same literal/?)"
#define ANALYZE_M_INS_ROWS   "shardwire: INSERT row has a different number of values than the column list"
#define ANALYZE_M_OTHER_DB   "shardwire: tables of other databases are not reachable through shardwire; use unqualified table names"
#define ANALYZE_M_USE_DB     "shardwire: access denied: only the configured database can be selected with USE"
#define ANALYZE_M_SET_GLOBAL "shardwire: SET GLOBAL/PERSIST is not allowed through shardwire; ask an operator to change server settings"
#define ANALYZE_M_SET_OTHER  "shardwire: SET PASSWORD/ROLE/DEFAULT ROLE/STATEMENT is not allowed through shardwire"
#define ANALYZE_M_SET_SUBQ   "shardwire: SET values may not read tables (no subqueries); read the value with a SELECT first"
#define ANALYZE_M_SQL_MODE   "shardwire: sql_mode may only be set to known modes (PIPES_AS_CONCAT is followed; no ANSI, ANSI_QUOTES, NO_BACKSLASH_ESCAPES, HIGH_NOT_PRECEDENCE, IGNORE_SPACE, ORACLE, ...), once per SET, as literals or CONCAT/CONCAT_WS/REPLACE of @@sql_mode whose effect on PIPES_AS_CONCAT is certain"
#define ANALYZE_M_CHARSET    "shardwire: only the utf8mb4, utf8, ascii and binary character sets are allowed for the client and connection (utf8mb4 and binary with string keys), named explicitly (not DEFAULT); others change how quotes, backslashes, spaces or keys are read; other character_set_*/collation_* settings cannot be changed"
#define ANALYZE_M_AUTOCOMMIT "shardwire: autocommit must be set to 0, 1, ON, OFF, TRUE or FALSE"
#define ANALYZE_M_SET_COMPAT "shardwire: old_mode, old and lower_case_* change how names and character sets are read and cannot be changed through shardwire"
#define ANALYZE_M_SET_VAR    "shardwire: this session variable cannot be changed through shardwire (replication or server identity)"
#define ANALYZE_M_TXN        "shardwire: unsupported transaction statement option (RELEASE, NOT ATOMIC, ...)"
#define ANALYZE_M_SHOW_SUBQ  "shardwire: SHOW ... WHERE may not read tables (no subqueries)"
#define ANALYZE_M_SHOW       "shardwire: this SHOW statement is not allowed through shardwire (it shows other users' data or server internals); allowed: WARNINGS, ERRORS, VARIABLES, STATUS, COLLATION, CHARACTER SET, ENGINES, TABLES, COLUMNS, INDEX, CREATE TABLE, DATABASES, GRANTS"
#define ANALYZE_M_DO_SUBQ    "shardwire: DO may not read tables"
#define ANALYZE_M_SEQUENCE   "shardwire: sequences (NEXTVAL, SETVAL, LASTVAL, NEXT VALUE FOR, PREVIOUS VALUE FOR) are shared by all users and not allowed through shardwire"
#define ANALYZE_M_OTHER_ROUTINE "shardwire: tables and routines of other databases are not reachable through shardwire; use unqualified names"
#define ANALYZE_M_SHOW_SYNTAX "shardwire: SHOW statement not understood by shardwire's analyzer (allowed tails: LIKE 'pattern', WHERE expr, FROM/IN the configured database)"
#define ANALYZE_M_SHOW_GRANTS "shardwire: SHOW GRANTS is allowed only for the current user"
#define ANALYZE_M_OTHER_DB_SHOW "shardwire: other databases are not reachable through shardwire; SHOW and DESCRIBE may name only the configured database"
#define ANALYZE_M_EXPLAIN    "shardwire: EXPLAIN/DESCRIBE/ANALYZE is allowed of a SELECT (analysed like the SELECT itself) and DESCRIBE <table> [column]; EXPLAIN of UPDATE/DELETE/INSERT/REPLACE is not supported"
#define ANALYZE_M_EXPLAIN_FMT "shardwire: EXPLAIN FORMAT must be JSON or TRADITIONAL"
#define ANALYZE_M_CATALOG    "shardwire: information_schema is reachable only for the app database: the tables TABLES, COLUMNS, STATISTICS, KEY_COLUMN_USAGE, TABLE_CONSTRAINTS, REFERENTIAL_CONSTRAINTS, CHECK_CONSTRAINTS, VIEWS, TRIGGERS, ROUTINES, PARAMETERS, SCHEMATA (each limited by <table>.TABLE_SCHEMA = '<database>' or = DATABASE(), as a top-level AND of WHERE or ON) and CHARACTER_SETS, COLLATIONS, COLLATION_CHARACTER_SET_APPLICABILITY, ENGINES, KEYWORDS, SQL_FUNCTIONS; not mixed with the app's tables"
#define ANALYZE_M_SCOPE_SET  "shardwire: SET @shardwire_user / @shardwire_txn_user must be alone in its SET and give a key literal (e.g. 42 or '42'), NULL, or (prepared) one '?'"
#define ANALYZE_M_EXPLAIN_CONN "shardwire: EXPLAIN/SHOW EXPLAIN/SHOW ANALYZE FOR CONNECTION shows other sessions' statements and is not allowed through shardwire"

struct analyze_table {
    int32_t  qual;        /* token of the qualifier (alias or table name); -1: none */
    int32_t  block;
    int32_t  next;        /* next table of the same block, -1 */
    uint32_t tok;         /* where the reference starts (reject offset) */
    unsigned base:1;      /* a real table, not a derived table or CTE */
    unsigned keyed:1;     /* its key column is known to be the statement's key */
    unsigned target:1;    /* the table an INSERT writes (limited by its values) */
    unsigned nullable:1;  /* NULL-extended by an outer join: a scope condition goes
                             into that join's ON [on_s, on_e) (on_s == on_e: USING) */
    unsigned noscope:1;   /* where a scope condition would go is unknown (NATURAL) */
    uint32_t on_s, on_e;
};

struct analyze_block {
    int32_t  parent;      /* enclosing block, -1 at the top */
    int32_t  head;        /* first table, -1 */
    uint32_t n_tables;
    uint32_t sel_s, sel_e; /* select list tokens [sel_s, sel_e) */
    /* where a scope condition goes (analyze_scope_tables()): the WHERE
     * condition [where_s, where_e), or (no WHERE) a new one before token
     * <where_s> == <where_e>; spot 0: the block has no such place */
    uint32_t where_s, where_e;
    uint8_t  spot;
};

struct analyze_edge {
    int32_t from, to;     /* from keyed implies to keyed */
};

struct analyze_val {
    int      param;       /* '?' ordinal, or -1 */
    int      len;
    char     buf[ANALYZE_KEY_MAX];
};

struct analyze {
    struct analyze_config cfg;
    unsigned              modes;    /* ANALYZE_MODE_*: the session's sql_mode */
    size_t                param_key_len;  /* > 0: a key '?' stands for <param_key> */
    char                  param_key[ANALYZE_KEY_MAX];
    size_t                key_col_len[ANALYZE_MAX_KEY_COLS];
    size_t                db_len;
    unsigned              max_depth;

    struct lex_token     *tok;      /* tok[n] is LEX_END; grows, never shrinks */
    int32_t              *pair;     /* '(' -> index of its ')' */
    size_t                cap;

    /* per statement; always: n_tables <= ANALYZE_MAX_TABLES etc. */
    const char           *sql;
    uint32_t              n;
    struct analyze_result *out;
    int                   rejected;
    unsigned              depth;
    struct analyze_table  tables[ANALYZE_MAX_TABLES];
    uint32_t              n_tables;
    struct analyze_block  blocks[ANALYZE_MAX_BLOCKS];
    uint32_t              n_blocks;
    struct analyze_edge   edges[ANALYZE_MAX_EDGES];
    uint32_t              n_edges;
    int32_t               fixes[ANALYZE_MAX_FIXES];
    uint32_t              n_fixes;
    uint32_t              cte[ANALYZE_MAX_CTE];
    uint32_t              n_cte;

    int                   catalog;          /* a query of information_schema: the "key"
                                               is the schema column, the value must
                                               be the configured database */
    enum analyze_key_type key_type;         /* cfg.key_type, or STRING for a catalog
                                               query */
    int                   have_value;
    int                   value_param;      /* -1: literal in out->key */
    uint32_t              value_tok;
    uint32_t              seps[ANALYZE_MAX_SEPS];  /* token | ANALYZE_SEP_OR */
    uint32_t              n_seps;
    int                   px_assign;        /* the condition parsed has an := */
    struct analyze_val    param_val;        /* analyze_note_value()'s, likewise */
    struct analyze_val    atom_val;         /* analyze_atom()'s, off the C stack that
                                               nesting deepens */
};

/* ---- small token helpers ---- */

/* Helpers take any index: at or past the end they see LEX_END. */
static inline int analyze_kw(const struct analyze *a, uint32_t i)
{
    return i < a->n && a->tok[i].type == LEX_IDENT ? a->tok[i].op : LEX_KW_NONE;
}

static inline int analyze_op(const struct analyze *a, uint32_t i, unsigned op)
{
    return i < a->n && a->tok[i].type == LEX_OP && a->tok[i].op == op;
}

static inline int analyze_is_name(const struct analyze *a, uint32_t i)
{
    return i < a->n && (a->tok[i].type == LEX_IDENT || a->tok[i].type == LEX_QIDENT);
}

static int analyze_upper(int c)
{
    return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

/* Whether the IDENT token <i> is the word <w> (upper case), any case,
 * read as a keyword by the server: a word touching a qualifier dot never
 * is (LEX_F_QUALIFIED). */
static int analyze_word(const struct analyze *a, uint32_t i, const char *w)
{
    if (i >= a->n)
        return 0;
    const struct lex_token *t = &a->tok[i];
    size_t wl = strlen(w);
    if (t->type != LEX_IDENT || t->len != wl || (t->flags & LEX_F_QUALIFIED))
        return 0;
    const char *s = a->sql + t->off;
    for (size_t k = 0; k < wl; k++)
        if (analyze_upper((unsigned char)s[k]) != w[k])
            return 0;
    return 1;
}

/* The unquoted text of name token <i>: a bare word, or `quoted` content
 * (doubled backticks left doubled; callers compare such names raw). */
static const char *analyze_name(const struct analyze *a, uint32_t i, size_t *len)
{
    const struct lex_token *t = &a->tok[i];
    if (t->type == LEX_QIDENT) {
        *len = t->len - 2;
        return a->sql + t->off + 1;
    }
    *len = t->len;
    return a->sql + t->off;
}

/* Table names and aliases: compared exactly (case-sensitive, as on Linux
 * with lower_case_table_names=0: never makes two different tables equal). */
static int analyze_name_eq(const struct analyze *a, uint32_t i, uint32_t j)
{
    size_t li, lj;
    const char *si = analyze_name(a, i, &li), *sj = analyze_name(a, j, &lj);
    return li == lj && memcmp(si, sj, li) == 0;
}

static int analyze_ci_eq(const char *s, size_t n, const char *w, size_t wl)
{
    if (n != wl)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (analyze_upper((unsigned char)s[k]) != analyze_upper((unsigned char)w[k]))
            return 0;
    return 1;
}

/* Whether name token <i> is one of the configured key columns (column
 * names are case-insensitive in MySQL). */
static int analyze_is_key_name(const struct analyze *a, uint32_t i)
{
    if (!analyze_is_name(a, i))
        return 0;
    size_t l;
    const char *s = analyze_name(a, i, &l);
    if (a->catalog) {
        /* the columns holding a catalogue row's own database; never
         * REFERENCED_TABLE_SCHEMA or UNIQUE_CONSTRAINT_SCHEMA */
        static const char *const cols[] = {
            "TABLE_SCHEMA", "CONSTRAINT_SCHEMA", "INDEX_SCHEMA", "SCHEMA_NAME",
            "ROUTINE_SCHEMA", "TRIGGER_SCHEMA", "EVENT_OBJECT_SCHEMA", "SPECIFIC_SCHEMA",
        };
        for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++)
            if (analyze_ci_eq(s, l, cols[k], strlen(cols[k])))
                return 1;
        return 0;
    }
    for (unsigned k = 0; k < a->cfg.n_key_columns; k++)
        if (analyze_ci_eq(s, l, a->cfg.key_columns[k], a->key_col_len[k]))
            return 1;
    return 0;
}

static int analyze_reject(struct analyze *a, uint16_t err_no, const char *msg, uint32_t tok_i)
{
    if (a->rejected)
        return -1;
    a->rejected = 1;
    struct analyze_result *o = a->out;
    o->kind = ANALYZE_REJECT;
    o->err_no = err_no;
    memcpy(o->sqlstate, "42000", 6);
    o->msg = msg;
    o->offset = tok_i <= a->n ? a->tok[tok_i].off : 0;
    return -1;
}

#define ANALYZE_REJ(a, msg, i) analyze_reject((a), WIRE_ER_NOT_SUPPORTED_YET, (msg), (i))

/* A reject for the statement's kind alone: it touches no table rows, so
 * an operator's allow rule may let it through (analyze_result.allowable). */
static int analyze_reject_kind(struct analyze *a, const char *msg, uint32_t tok_i)
{
    int was = a->rejected;
    ANALYZE_REJ(a, msg, tok_i);
    if (!was)
        a->out->allowable = 1;
    return -1;
}

/* Index just past the parenthesised group opened at <i>, or i+1. */
static inline uint32_t analyze_skip(const struct analyze *a, uint32_t i)
{
    if (analyze_op(a, i, '('))
        return (uint32_t)a->pair[i] + 1;
    return i + 1;
}

/* First token in [i, e) at this nesting level that is the keyword <kw>, or e. */
static uint32_t analyze_find_kw(const struct analyze *a, uint32_t i, uint32_t e, int kw)
{
    while (i < e && analyze_kw(a, i) != kw)
        i = analyze_skip(a, i);
    return i < e ? i : e;
}

/* First top-level ',' in [i, e), or e. */
static uint32_t analyze_find_comma(const struct analyze *a, uint32_t i, uint32_t e)
{
    while (i < e && !analyze_op(a, i, ','))
        i = analyze_skip(a, i);
    return i < e ? i : e;
}

/* ---- key values ---- */

/* Canonical decimal form of the integer <neg> <digits>/<n>, in the signed
 * 64-bit range. MariaDB compares a BIGINT key column with an integer, and
 * also with a quoted integer string, exactly over that whole range (checked
 * end-to-end: '9007199254740993' matches only that row), so a quoted value
 * gets the same range as an unquoted one. Returns the length written to
 * <out>, or -1 when it is not a valid key. */
static int analyze_canon_digits(int neg, const char *d, size_t n, char *out)
{
    if (n == 0)
        return -1;
    for (size_t k = 0; k < n; k++)
        if (d[k] < '0' || d[k] > '9')
            return -1;
    while (n > 1 && d[0] == '0') {
        d++;
        n--;
    }
    const char *max = neg ? "9223372036854775808" : "9223372036854775807";
    size_t ml = strlen(max);
    if (n > ml || (n == ml && memcmp(d, max, n) > 0))
        return -1;
    if (n == 1 && d[0] == '0')
        neg = 0;
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    memcpy(out + o, d, n);
    return (int)(o + n);
}

int analyze_canon_key(enum analyze_key_type type, const char *val, size_t len,
                      char out[ANALYZE_KEY_MAX])
{
    if (type == ANALYZE_KEY_INT) {
        int neg = 0;
        if (len > 0 && (val[0] == '+' || val[0] == '-')) {
            neg = val[0] == '-';
            val++;
            len--;
        }
        return analyze_canon_digits(neg, val, len, out);
    }
    /* binary string keys: the bytes themselves; a trailing space would
     * compare equal to the shorter key under PAD SPACE collations */
    if (len == 0 || len > ANALYZE_KEY_MAX || val[len - 1] == ' ')
        return -1;
    memcpy(out, val, len);
    return (int)len;
}

/* Unescapes the body of the string token <i> into <buf> (MySQL rules:
 * backslash escapes, doubled quotes). Returns the length, or -1 when it
 * does not fit in ANALYZE_KEY_MAX bytes. */
static int analyze_unescape(const struct analyze *a, uint32_t i, char *buf)
{
    const struct lex_token *t = &a->tok[i];
    size_t s = t->off + ((t->flags & LEX_F_NATIONAL) ? 2 : 1);
    size_t e = t->off + t->len - 1;
    char q = a->sql[e];
    size_t o = 0;
    for (size_t p = s; p < e; p++) {
        char c = a->sql[p];
        if (o >= ANALYZE_KEY_MAX)
            return -1;
        if (c == '\\' && p + 1 < e) {
            char d = a->sql[++p];
            switch (d) {
            case '0': c = 0; break;
            case 'b': c = 8; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'Z': c = 26; break;
            case '%':
            case '_':
                buf[o++] = '\\';      /* kept: they are LIKE escapes */
                if (o >= ANALYZE_KEY_MAX)
                    return -1;
                c = d;
                break;
            default: c = d; break;
            }
        } else if (c == q && p + 1 < e && a->sql[p + 1] == q) {
            p++;
        }
        buf[o++] = c;
    }
    return (int)o;
}

/* How the introducer token <i> (_charset, LEX_F_INTRO) treats the bytes
 * of a key literal: 2 when every byte is kept as it is (utf8mb4, binary),
 * 1 when ASCII bytes are (utf8mb3/utf8, ascii, latin1: ASCII-compatible,
 * single byte for ASCII), 0 for every other character set (ucs2, utf16,
 * utf16le, utf32 read the bytes as wide characters, filename decodes @xxxx,
 * the 7-bit national sets and the multi-byte Asian sets differ from ASCII
 * somewhere): such a key is refused, since MariaDB compares other bytes
 * than the router hashed. */
static int analyze_introducer_ok(const struct analyze *a, uint32_t i)
{
    if (analyze_word(a, i, "_UTF8MB4") || analyze_word(a, i, "_BINARY"))
        return 2;
    if (analyze_word(a, i, "_UTF8") || analyze_word(a, i, "_UTF8MB3") ||
        analyze_word(a, i, "_ASCII") || analyze_word(a, i, "_LATIN1"))
        return 1;
    return 0;
}


/*
 * Reads a key value starting at <i>: [+|-] integer, [_charset] 'string',
 * N'string' or '?'. Returns 1 with <*next> past it and <*v> filled, 0 when
 * the tokens are not such a literal (an expression: no fix), or -1 after a
 * reject (a literal MySQL would compare differently from the routed key).
 */
static int analyze_value(struct analyze *a, uint32_t i, uint32_t e, uint32_t *next,
                         struct analyze_val *v)
{
    int neg = 0, signed_ = 0;
    uint32_t intro = UINT32_MAX;
    v->param = -1;
    if (i >= e)
        return 0;
    if (analyze_op(a, i, '+') || analyze_op(a, i, '-')) {
        neg = analyze_op(a, i, '-');
        signed_ = 1;
        i++;
        if (i >= e)
            return 0;
    }
    const struct lex_token *t = &a->tok[i];
    /* a catalogue query may name the database as DATABASE() or SCHEMA(): the
     * configured one, the only one a session can select */
    if (a->catalog && !signed_ && (analyze_word(a, i, "DATABASE") || analyze_word(a, i, "SCHEMA")) &&
        analyze_op(a, i + 1, '(') && a->pair[i + 1] == (int32_t)(i + 2) && i + 2 < e) {
        memcpy(v->buf, a->cfg.database, a->db_len);
        v->len = (int)a->db_len;
        *next = i + 3;
        return 1;
    }
    if (a->catalog && t->type == LEX_PARAM)
        return ANALYZE_REJ(a, ANALYZE_M_CATALOG, i);
    /* only a real introducer (the lexer knows MariaDB's character sets):
     * "_foo 'x'" is column _foo with alias 'x', not a value */
    if (t->type == LEX_IDENT && (t->flags & LEX_F_INTRO) && i + 1 < e &&
        a->tok[i + 1].type == LEX_STRING && !(a->tok[i + 1].flags & LEX_F_NATIONAL) && !signed_) {
        intro = i;
        if (!analyze_introducer_ok(a, intro))
            return ANALYZE_REJ(a, a->key_type == ANALYZE_KEY_INT ? ANALYZE_M_KEY_INT
                                                                     : ANALYZE_M_KEY_STR,
                               i);
        i++;
        t = &a->tok[i];
    }
    switch (t->type) {
    case LEX_PARAM:
        if (signed_ || t->op == 0xffff)
            return 0;
        v->param = t->op;
        *next = i + 1;
        return 1;
    case LEX_INTEGER:
        if (a->key_type != ANALYZE_KEY_INT)
            return ANALYZE_REJ(a, ANALYZE_M_KEY_STR, i);
        v->len = analyze_canon_digits(neg, a->sql + t->off, t->len, v->buf);
        if (v->len < 0)
            return ANALYZE_REJ(a, ANALYZE_M_KEY_INT, i);
        *next = i + 1;
        return 1;
    case LEX_DECIMAL:
    case LEX_HEX:
    case LEX_BIT:
        return ANALYZE_REJ(
            a, a->key_type == ANALYZE_KEY_INT ? ANALYZE_M_KEY_INT : ANALYZE_M_KEY_STR, i);
    case LEX_STRING: {
        if (signed_)
            return 0;       /* -'42': an expression */
        char tmp[ANALYZE_KEY_MAX];
        int n = analyze_unescape(a, i, tmp);
        if (a->key_type == ANALYZE_KEY_INT) {
            if (n < 0)
                return ANALYZE_REJ(a, ANALYZE_M_KEY_INT, i);
            int sneg = 0, off = 0;
            if (n > 0 && (tmp[0] == '+' || tmp[0] == '-')) {
                sneg = tmp[0] == '-';
                off = 1;
            }
            v->len = analyze_canon_digits(sneg, tmp + off, (size_t)(n - off), v->buf);
            if (v->len < 0)
                return ANALYZE_REJ(a, ANALYZE_M_KEY_INT, i);
        } else {
            if (n <= 0 || (t->flags & LEX_F_DQUOTE))
                return ANALYZE_REJ(a, ANALYZE_M_KEY_STR, i);
            /* non-ASCII bytes only where they stay as they are (N'..' is
             * utf8mb3: no 4-byte characters) */
            if ((intro != UINT32_MAX && analyze_introducer_ok(a, intro) < 2) ||
                (t->flags & LEX_F_NATIONAL))
                for (int k = 0; k < n; k++)
                    if ((unsigned char)tmp[k] >= 0x80)
                        return ANALYZE_REJ(a, ANALYZE_M_KEY_STR, i);
            v->len = analyze_canon_key(ANALYZE_KEY_STRING, tmp, (size_t)n, v->buf);
            if (v->len < 0)
                return ANALYZE_REJ(a, ANALYZE_M_KEY_STR, i);
        }
        *next = i + 1;
        return 1;
    }
    default:
        return 0;
    }
}

/* Records that the statement names the key <v> (at token <i>): all must be
 * the same. Returns 0, or -1 after a reject. */
static int analyze_note_value(struct analyze *a, const struct analyze_val *v, uint32_t i)
{
    struct analyze_result *o = a->out;
    if (v->param >= 0 && a->param_key_len) {
        /* a scoped prepared statement: the '?' is read as the scope's key,
         * and the router checks at EXECUTE that it binds exactly that */
        if (v->param >= 64)
            return ANALYZE_REJ(a, ANALYZE_M_FAR_PARAM, i);
        o->scope_params |= (uint64_t)1 << v->param;
        struct analyze_val *k = &a->param_val;
        k->param = -1;
        k->len = (int)a->param_key_len;
        memcpy(k->buf, a->param_key, a->param_key_len);
        v = k;
    }
    if (!a->have_value) {
        a->have_value = 1;
        a->value_param = v->param;
        a->value_tok = i;
        if (v->param >= 0 && v->param < 64)
            o->key_params = (uint64_t)1 << v->param;
        if (v->param < 0) {
            memcpy(o->key, v->buf, (size_t)v->len);
            o->key_len = (size_t)v->len;
        }
        return 0;
    }
    if (a->value_param >= 0 || v->param >= 0) {
        if (a->value_param == v->param)
            return 0;
        /* several '?': only when the router checks them all at execute */
        if (a->cfg.multi_param_key && a->value_param >= 0 && a->value_param < 64 &&
            v->param >= 0 && v->param < 64) {
            o->key_params |= (uint64_t)1 << v->param;
            return 0;
        }
        return ANALYZE_REJ(a, ANALYZE_M_TWO_PARAMS, i);
    }
    if (o->key_len == (size_t)v->len && memcmp(o->key, v->buf, o->key_len) == 0)
        return 0;
    return ANALYZE_REJ(a, ANALYZE_M_TWO_USERS, i);
}

/* ---- tables, blocks and resolution ---- */

static int analyze_new_block(struct analyze *a, int parent, uint32_t at)
{
    if (a->n_blocks >= ANALYZE_MAX_BLOCKS)
        return ANALYZE_REJ(a, ANALYZE_M_TOO_BIG, at);
    struct analyze_block *b = &a->blocks[a->n_blocks];
    b->parent = parent;
    b->head = -1;
    b->n_tables = 0;
    b->sel_s = b->sel_e = at;
    b->where_s = b->where_e = at;
    b->spot = 0;
    return (int)a->n_blocks++;
}

static int analyze_add_table(struct analyze *a, int block, int32_t qual, uint32_t at, int base)
{
    if (a->n_tables >= ANALYZE_MAX_TABLES)
        return ANALYZE_REJ(a, ANALYZE_M_TOO_BIG, at);
    int t = (int)a->n_tables++;
    struct analyze_table *tb = &a->tables[t];
    struct analyze_block *b = &a->blocks[block];
    tb->qual = qual;
    tb->block = block;
    tb->tok = at;
    tb->base = base ? 1 : 0;
    tb->keyed = 0;
    tb->target = tb->nullable = tb->noscope = 0;
    tb->on_s = tb->on_e = 0;
    tb->next = -1;
    /* append, keeping the block's list in statement order */
    if (b->head < 0) {
        b->head = t;
    } else {
        int32_t x = b->head;
        while (a->tables[x].next >= 0)
            x = a->tables[x].next;
        a->tables[x].next = t;
    }
    b->n_tables++;
    return t;
}

/* Byte length of the UTF-8 character at <s>[<p>] (1 for ASCII or a stray
 * byte), within <n>. */
static size_t analyze_utf8_len(const char *s, size_t p, size_t n)
{
    size_t k = 1;
    if ((unsigned char)s[p] < 0x80)
        return 1;
    while (p + k < n && ((unsigned char)s[p + k] & 0xc0) == 0x80)
        k++;
    return k;
}

/* Whether the UTF-8 character <c>/<len> is one without case (CJK, Hangul):
 * no other character folds to it. */
static int analyze_caseless(const char *c, size_t len)
{
    if (len != 3)
        return 0;
    unsigned cp = ((unsigned)(c[0] & 0x0f) << 12) | ((unsigned)(c[1] & 0x3f) << 6) |
                  (unsigned)(c[2] & 0x3f);
    return (cp >= 0x3000 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7a3);
}

enum { ANALYZE_NAME_DIFF, ANALYZE_NAME_MAYBE, ANALYZE_NAME_SAME };

/*
 * Compares the table names or aliases <i> and <j> as the server might:
 * SAME when the bytes are equal (the same under every setting), MAYBE when
 * they differ but could be one name to a server with
 * lower_case_table_names=1 (it compares aliases and table names character
 * by character after case folding, utf8mb3_general_ci: ASCII letters in any
 * case, and also non-ASCII letters such as U+017F that fold to ASCII), DIFF
 * when no case folding makes them equal. Characters that differ and are not
 * both ASCII count as possibly equal unless one of them has no case.
 */
static int analyze_name_cmp(const struct analyze *a, uint32_t i, uint32_t j)
{
    size_t li, lj;
    const char *si = analyze_name(a, i, &li), *sj = analyze_name(a, j, &lj);
    if (li == lj && memcmp(si, sj, li) == 0)
        return ANALYZE_NAME_SAME;
    size_t p = 0, q = 0;
    while (p < li && q < lj) {
        size_t cp = analyze_utf8_len(si, p, li), cq = analyze_utf8_len(sj, q, lj);
        if (cp == cq && memcmp(si + p, sj + q, cp) == 0) {
            /* the same character */
        } else if (cp == 1 && cq == 1) {
            if (analyze_upper((unsigned char)si[p]) != analyze_upper((unsigned char)sj[q]))
                return ANALYZE_NAME_DIFF;
        } else if (analyze_caseless(si + p, cp) || analyze_caseless(sj + q, cq)) {
            return ANALYZE_NAME_DIFF;
        }
        p += cp;
        q += cq;
    }
    return p == li && q == lj ? ANALYZE_NAME_MAYBE : ANALYZE_NAME_DIFF;
}

/*
 * The table a column qualified by name token <qual> (or unqualified: -1)
 * refers to from <block>, searching outwards; -1 when unknown or
 * ambiguous. Unqualified names resolve only in a block with one table.
 * Whether MariaDB compares aliases with or without case depends on
 * lower_case_table_names, so a qualifier resolves only where that makes no
 * difference: the first block (innermost) holding a table that is or might
 * be <qual> must hold exactly one table of exactly that name and none that
 * differs only by case; otherwise the reference is ambiguous (-1: it proves
 * nothing).
 */
static int analyze_resolve(const struct analyze *a, int32_t qual, int block)
{
    for (int b = block; b >= 0; b = a->blocks[b].parent) {
        const struct analyze_block *bl = &a->blocks[b];
        if (qual < 0) {
            if (bl->n_tables == 1)
                return bl->head;
            if (bl->n_tables > 1)
                return -1;
            continue;
        }
        int found = -1, n_same = 0, n_maybe = 0;
        for (int32_t t = bl->head; t >= 0; t = a->tables[t].next) {
            if (a->tables[t].qual < 0)
                continue;
            int c = analyze_name_cmp(a, (uint32_t)a->tables[t].qual, (uint32_t)qual);
            if (c == ANALYZE_NAME_SAME) {
                found = t;
                n_same++;
            } else if (c == ANALYZE_NAME_MAYBE) {
                n_maybe++;
            }
        }
        if (n_same == 1 && n_maybe == 0)
            return found;
        if (n_same || n_maybe)
            return -1;
    }
    return -1;
}

static void analyze_add_edge(struct analyze *a, int from, int to)
{
    if (a->n_edges < ANALYZE_MAX_EDGES) {   /* dropping one only loses a proof */
        a->edges[a->n_edges].from = from;
        a->edges[a->n_edges].to = to;
        a->n_edges++;
    }
}

/*
 * Parses a column reference at <i>: name [. name [. name]]. Returns the
 * index past it (0 when there is none), with <*qual> the table-part token
 * (-1 if unqualified) and <*col> the column token.
 */
static uint32_t analyze_colref(const struct analyze *a, uint32_t i, uint32_t e, int32_t *qual,
                          uint32_t *col)
{
    uint32_t parts[3];
    unsigned np = 0;
    while (i < e && analyze_is_name(a, i) && np < 3) {
        parts[np++] = i++;
        if (i < e && analyze_op(a, i, '.') && np < 3 && i + 1 < e && analyze_is_name(a, i + 1))
            i++;
        else
            break;
    }
    if (np == 0)
        return 0;
    if (i < e && analyze_op(a, i, '.'))
        return 0;
    *col = parts[np - 1];
    *qual = np >= 2 ? (int32_t)parts[np - 2] : -1;
    return i;
}

/* ---- expressions ---- */

static int analyze_query(struct analyze *a, uint32_t i, uint32_t e, int parent);

static int analyze_enter(struct analyze *a, uint32_t at)
{
    if (++a->depth > a->max_depth)
        return ANALYZE_REJ(a, ANALYZE_M_DEPTH, at);
    return 0;
}

/* Whether a query starts at <i>: SELECT, or WITH [RECURSIVE] name ... (not
 * GROUP BY ... WITH ROLLUP). */
static int analyze_is_query(const struct analyze *a, uint32_t i)
{
    int k = analyze_kw(a, i);
    if (k == LEX_KW_SELECT)
        return 1;
    if (k != LEX_KW_WITH)
        return 0;
    return analyze_kw(a, i + 1) == LEX_KW_RECURSIVE ||
           (analyze_is_name(a, i + 1) &&
            (analyze_kw(a, i + 2) == LEX_KW_AS || analyze_op(a, i + 2, '(')));
}

/* Walks the expression [s, e) for subqueries, analysing each as a SELECT
 * block inside <block>. Returns 0, or -1 after a reject. */
static int analyze_scan_expr(struct analyze *a, uint32_t s, uint32_t e, int block)
{
    for (uint32_t i = s; i < e; i++) {
        if (analyze_op(a, i, '(')) {
            uint32_t c = (uint32_t)a->pair[i];
            int r;
            if (analyze_enter(a, i) < 0)
                return -1;
            if (analyze_is_query(a, i + 1))
                r = analyze_query(a, i + 1, c, block);
            else
                r = analyze_scan_expr(a, i + 1, c, block);
            a->depth--;
            if (r < 0)
                return -1;
            i = c;
            continue;
        }
        if (analyze_is_query(a, i))
            return analyze_query(a, i, e, block);
    }
    return 0;
}

/*
 * One term of an AND chain, [s, e). Exact key comparisons add the fixed
 * table to a->fixes (and the value to the statement's key); an equality of
 * two key columns adds edges (unless <in_or>: inside an OR it proves
 * nothing). Anything else fixes nothing.
 */
static int analyze_or_expr(struct analyze *a, uint32_t s, uint32_t e, int block, int in_or);

static void analyze_push_fix(struct analyze *a, int t)
{
    if (t >= 0 && a->n_fixes < ANALYZE_MAX_FIXES)
        a->fixes[a->n_fixes++] = t;
}

#define ANALYZE_MAX_ROW 16     /* row constructor elements read for a key */

/* Splits [s, e) at its top-level commas: element k is [at[k], at[k + 1] - 1).
 * Returns the count, or 0 when there are more than ANALYZE_MAX_ROW (<at>
 * holds ANALYZE_MAX_ROW + 1 entries). */
static unsigned analyze_split(const struct analyze *a, uint32_t s, uint32_t e, uint32_t *at)
{
    unsigned n = 0;
    at[n++] = s;
    for (uint32_t i = s; i < e; i++) {
        if (analyze_op(a, i, '(')) {
            i = (uint32_t)a->pair[i];
            continue;
        }
        if (analyze_op(a, i, ',')) {
            if (n == ANALYZE_MAX_ROW)
                return 0;
            at[n++] = i + 1;
        }
    }
    at[n] = e + 1;
    return n;
}

/* The row constructor at <i> (`(x, y)` or `ROW(x, y)`) ending at e - 1:
 * its '(' index, or 0 when there is none. */
static uint32_t analyze_row_at(const struct analyze *a, uint32_t i, uint32_t e)
{
    if (analyze_kw(a, i) == LEX_KW_ROW)
        i++;
    if (i < e && analyze_op(a, i, '(') && (uint32_t)a->pair[i] == e - 1)
        return i;
    return 0;
}

/*
 * A row comparison on the key, [s, e): `(userid, x) IN ((42, 1), (42, 2))`
 * or `(userid, x) = (42, 1)` (the ROW keyword allowed). A key column element
 * fixes its table when the same element of every row on the right is a key
 * value (all must name one user, as in a plain IN list): a row matches only
 * if that element equals it. Returns 1 when [s, e) is such a comparison (its
 * keys noted), 0 when it is not, -1 after a reject.
 */
static int analyze_row_cmp(struct analyze *a, uint32_t s, uint32_t e, int block)
{
    uint32_t lo = analyze_kw(a, s) == LEX_KW_ROW ? s + 1 : s;
    if (!analyze_op(a, lo, '('))
        return 0;
    uint32_t lc = (uint32_t)a->pair[lo], rs;
    if (lc + 2 >= e)
        return 0;
    int in = analyze_kw(a, lc + 1) == LEX_KW_IN;
    if (in) {
        if (!analyze_op(a, lc + 2, '(') || (uint32_t)a->pair[lc + 2] != e - 1)
            return 0;
        rs = lc + 3;
    } else if (analyze_op(a, lc + 1, '=')) {
        rs = lc + 2;
    } else {
        return 0;
    }
    uint32_t cols[ANALYZE_MAX_ROW + 1], el[ANALYZE_MAX_ROW + 1];
    unsigned n = analyze_split(a, lo + 1, lc, cols);
    if (n < 2)
        return 0;                       /* not a row (or too wide to read) */
    struct analyze_val *v = &a->atom_val;
    for (unsigned k = 0; k < n; k++) {
        int32_t q;
        uint32_t c, ce = cols[k + 1] - 1;
        if (analyze_colref(a, cols[k], ce, &q, &c) != ce || !analyze_is_key_name(a, c))
            continue;
        int all = 1;
        unsigned n_rows = 0;
        uint32_t r = rs;
        uint32_t list_e = in ? e - 1 : e;
        while (all && r < list_e) {
            /* one row [r, re) of the list */
            uint32_t re = r, ro;
            while (re < list_e && !analyze_op(a, re, ',')) {
                if (analyze_op(a, re, '('))
                    re = (uint32_t)a->pair[re];
                re++;
            }
            ro = analyze_row_at(a, r, re);
            if (!ro || analyze_split(a, ro + 1, re - 1, el) != n) {
                all = 0;
                break;
            }
            uint32_t nx, vs = el[k], ve = el[k + 1] - 1;
            int rv = analyze_value(a, vs, ve, &nx, v);
            if (rv < 0)
                return -1;
            if (rv == 0 || nx != ve) {
                all = 0;
                break;
            }
            if (analyze_note_value(a, v, vs) < 0)
                return -1;
            n_rows++;
            r = re + 1;
        }
        if (all && n_rows > 0)
            analyze_push_fix(a, analyze_resolve(a, q, block));
    }
    return 1;
}

static int analyze_atom(struct analyze *a, uint32_t s, uint32_t e, int block, int in_or)
{
    if (s >= e)
        return 0;
    {
        int r = analyze_row_cmp(a, s, e, block);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    if (analyze_op(a, s, '(') && (uint32_t)a->pair[s] == e - 1) {
        if (analyze_enter(a, s) < 0)
            return -1;
        int r = analyze_or_expr(a, s + 1, e - 1, block, in_or);
        a->depth--;
        return r;
    }
    int32_t q1, q2;
    uint32_t c1, c2, p;
    struct analyze_val *v = &a->atom_val;

    p = analyze_colref(a, s, e, &q1, &c1);
    if (p && p < e && analyze_is_key_name(a, c1)) {
        if (analyze_op(a, p, '=') || analyze_op(a, p, LEX_OP_NSEQ)) {
            uint32_t nx;
            int r = analyze_value(a, p + 1, e, &nx, v);
            if (r < 0)
                return -1;
            if (r > 0 && nx == e) {
                if (analyze_note_value(a, v, p + 1) < 0)
                    return -1;
                analyze_push_fix(a, analyze_resolve(a, q1, block));
                return 0;
            }
            uint32_t p2 = analyze_colref(a, p + 1, e, &q2, &c2);
            if (p2 == e && analyze_is_key_name(a, c2) && !in_or) {
                int t1 = analyze_resolve(a, q1, block), t2 = analyze_resolve(a, q2, block);
                if (t1 >= 0 && t2 >= 0 && t1 != t2) {
                    int b1 = a->tables[t1].block, b2 = a->tables[t2].block;
                    /* same block: both ways; an outer table's key only
                     * flows inwards (NOT EXISTS must not fix the outer) */
                    if (b1 == block)
                        analyze_add_edge(a, t2, t1);
                    if (b2 == block)
                        analyze_add_edge(a, t1, t2);
                }
            }
            return 0;
        }
        if (analyze_kw(a, p) == LEX_KW_IN && p + 1 < e && analyze_op(a, p + 1, '(') &&
            (uint32_t)a->pair[p + 1] == e - 1) {
            uint32_t i = p + 2, ce = e - 1;
            if (i == ce)
                return 0;
            int n_vals = 0;
            while (i < ce) {
                uint32_t nx;
                int r = analyze_value(a, i, ce, &nx, v);
                if (r < 0)
                    return -1;
                if (r == 0 || (nx != ce && !analyze_op(a, nx, ',')))
                    return 0;
                if (analyze_note_value(a, v, i) < 0)
                    return -1;
                n_vals++;
                i = nx == ce ? ce : nx + 1;
            }
            if (n_vals > 0)
                analyze_push_fix(a, analyze_resolve(a, q1, block));
            return 0;
        }
        return 0;
    }
    /* value = column: a value is at most three tokens (sign or
     * introducer, literal) */
    for (p = s + 1; p < e && p <= s + 2; p++) {
        if (!(analyze_op(a, p, '=') || analyze_op(a, p, LEX_OP_NSEQ)))
            continue;
        if (analyze_colref(a, p + 1, e, &q1, &c1) != e || !analyze_is_key_name(a, c1))
            return 0;
        uint32_t nx;
        int r = analyze_value(a, s, p, &nx, v);
        if (r < 0)
            return -1;
        if (r > 0 && nx == p) {
            if (analyze_note_value(a, v, s) < 0)
                return -1;
            analyze_push_fix(a, analyze_resolve(a, q1, block));
        }
        return 0;
    }
    return 0;
}

/* ---- the expression grammar (a strict subset of sql_yacc.yy's expr) ----
 *
 * WHERE and ON conditions are parsed in full before any key term is
 * believed: the top-level OR/XOR and AND connectives come from this parse,
 * never from scanning for the words, and any token the grammar below does
 * not place is refused (1064, naming it). Levels, loosest first, as the
 * %left/%right list and the expr/boolean_test/predicate/bit_expr/simple_expr
 * rules of MariaDB 10.11's sql_yacc.yy group them:
 *
 *   OR ||            (SET_VAR := binds looser still: it swallows the rest)
 *   XOR
 *   AND &&
 *   NOT              prefix, operand up to the next AND/OR/XOR
 *   IS [NOT] TRUE|FALSE|UNKNOWN|NULL, = <=> <> != < > <= >= [ALL|ANY|SOME (subquery)]
 *   [NOT] IN, [NOT] BETWEEN x AND y (the AND is BETWEEN's), [NOT] LIKE [ESCAPE],
 *   [NOT] REGEXP|RLIKE, SOUNDS LIKE
 *   | then & then << >> then + - then * / % DIV MOD then ^ (+/- INTERVAL x unit)
 *   unary - + ~ ! BINARY, then COLLATE
 *
 * Function arguments are not parsed (only their parentheses matched): they
 * cannot change the grouping outside the call, and subqueries inside are
 * found by analyze_scan_expr(). Parenthesised expressions, row constructors,
 * CASE, EXISTS and INTERVAL are parsed. */

#define ANALYZE_SEP_OR  0x80000000u   /* a->seps entry: OR/XOR/||; else AND/&& */

/* Whether IDENT keyword <kw> may be an identifier: MariaDB 10.11 does not
 * reserve it (sql_yacc.yy keyword_sp and friends; or it is no keyword of
 * MariaDB at all). Reserved words are never identifiers unless quoted. */
static int analyze_kw_unreserved(int kw)
{
    switch (kw) {
    case LEX_KW_NONE:
    case LEX_KW_BEGIN: case LEX_KW_END: case LEX_KW_COMMIT: case LEX_KW_ROLLBACK:
    case LEX_KW_SAVEPOINT: case LEX_KW_START: case LEX_KW_TRANSACTION: case LEX_KW_WORK:
    case LEX_KW_GLOBAL: case LEX_KW_SESSION: case LEX_KW_LOCAL: case LEX_KW_PERSIST:
    case LEX_KW_PERSIST_ONLY: case LEX_KW_NAMES: case LEX_KW_CHARSET: case LEX_KW_SHARE:
    case LEX_KW_MODE: case LEX_KW_ESCAPE: case LEX_KW_VALUE: case LEX_KW_ROW:
    case LEX_KW_SOUNDS: case LEX_KW_MEMBER: case LEX_KW_FULL: case LEX_KW_DUPLICATE:
    case LEX_KW_ANY: case LEX_KW_SOME: case LEX_KW_LATERAL: case LEX_KW_DUMPFILE:
    case LEX_KW_DO:
        return 1;
    default:
        return 0;
    }
}

static int analyze_px_or(struct analyze *a, uint32_t *ip, uint32_t e, int rec);

static int analyze_px_fail(struct analyze *a, uint32_t i)
{
    return analyze_reject(a, WIRE_ER_PARSE, ANALYZE_M_GRAMMAR, i);
}

/* Whether IDENT <i> is one of the INTERVAL units. */
static int analyze_px_unit(const struct analyze *a, uint32_t i)
{
    static const char *const u[] = {
        "MICROSECOND", "SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR",
        "SECOND_MICROSECOND", "MINUTE_MICROSECOND", "MINUTE_SECOND", "HOUR_MICROSECOND",
        "HOUR_SECOND", "HOUR_MINUTE", "DAY_MICROSECOND", "DAY_SECOND", "DAY_MINUTE",
        "DAY_HOUR", "YEAR_MONTH",
    };
    if (i >= a->n || a->tok[i].type != LEX_IDENT || a->tok[i].op != LEX_KW_NONE)
        return 0;
    for (size_t k = 0; k < sizeof(u) / sizeof(u[0]); k++)
        if (analyze_word(a, i, u[k]))
            return 1;
    return 0;
}

/* A parenthesised group at <*ip> (opened by '(' before <e>): a subquery
 * (left to analyze_scan_expr) or a list of expressions. */
static int analyze_px_group(struct analyze *a, uint32_t *ip, uint32_t e)
{
    uint32_t i = *ip;
    if (!analyze_op(a, i, '(') || (uint32_t)a->pair[i] >= e)
        return analyze_px_fail(a, i);
    uint32_t c = (uint32_t)a->pair[i];
    uint32_t k = i + 1;
    while (analyze_op(a, k, '('))
        k++;
    if (!analyze_is_query(a, k)) {
        if (analyze_enter(a, i) < 0)
            return -1;
        uint32_t x = i + 1;
        for (;;) {
            if (analyze_px_or(a, &x, c, 0) < 0)
                return -1;
            if (x < c && analyze_op(a, x, ',')) {
                x++;
                continue;
            }
            break;
        }
        a->depth--;
        if (x != c)
            return analyze_px_fail(a, x);
    }
    *ip = c + 1;
    return 0;
}

/* Skips a string literal and the plain strings concatenated to it. */
static uint32_t analyze_px_strings(const struct analyze *a, uint32_t i, uint32_t e)
{
    i++;
    while (i < e && a->tok[i].type == LEX_STRING && !(a->tok[i].flags & LEX_F_NATIONAL))
        i++;
    return i;
}

/* simple_expr: a primary with its prefixes and COLLATE suffixes. */
static int analyze_px_simple(struct analyze *a, uint32_t *ip, uint32_t e)
{
    uint32_t i = *ip;
    if (i >= e)
        return analyze_px_fail(a, i);
    const struct lex_token *t = &a->tok[i];
    int kw = t->type == LEX_IDENT ? t->op : LEX_KW_NONE;
    if ((t->type == LEX_OP && (t->op == '-' || t->op == '+' || t->op == '~' || t->op == '!')) ||
        kw == LEX_KW_BINARY) {
        int r;
        if (analyze_enter(a, i) < 0)
            return -1;
        i++;
        r = analyze_px_simple(a, &i, e);
        a->depth--;
        if (r < 0)
            return -1;
        *ip = i;
        return 0;
    }
    switch (t->type) {
    case LEX_INTEGER: case LEX_DECIMAL: case LEX_HEX: case LEX_BIT: case LEX_PARAM:
    case LEX_SYSVAR:
        i++;
        break;
    case LEX_STRING:
        i = analyze_px_strings(a, i, e);
        break;
    case LEX_USERVAR:
        i++;
        if (analyze_op(a, i, LEX_OP_ASSIGN)) {
            /* @v := expr takes everything after it (SET_VAR is the
             * loosest level); the caller's condition proves nothing */
            a->px_assign = 1;
            i++;
            if (analyze_px_or(a, &i, e, 0) < 0)
                return -1;
        }
        break;
    case LEX_OP:
        if (t->op != '(')
            return analyze_px_fail(a, i);
        if (analyze_px_group(a, &i, e) < 0)
            return -1;
        break;
    case LEX_QIDENT:
    case LEX_IDENT:
        if (kw == LEX_KW_NONE && !(t->flags & LEX_F_INTRO))
            goto name;          /* the common case: a column or function name */
        if (t->type == LEX_IDENT && (t->flags & LEX_F_INTRO)) {
            /* _charset 'string' or _charset X'hex': UNDERSCORE_CHARSET */
            i++;
            if (i < e && a->tok[i].type == LEX_STRING && !(a->tok[i].flags & LEX_F_NATIONAL))
                i = analyze_px_strings(a, i, e);
            else if (i < e && (a->tok[i].type == LEX_HEX || a->tok[i].type == LEX_BIT))
                i++;
            else
                return analyze_px_fail(a, i);
            break;
        }
        if (kw == LEX_KW_NULL || kw == LEX_KW_TRUE || kw == LEX_KW_FALSE) {
            i++;
            break;
        }
        if (kw == LEX_KW_EXISTS) {
            i++;
            if (!analyze_op(a, i, '(') || !analyze_is_query(a, i + 1))
                return analyze_px_fail(a, i);
            if (analyze_px_group(a, &i, e) < 0)
                return -1;
            break;
        }
        if (kw == LEX_KW_CASE) {
            if (analyze_enter(a, i) < 0)
                return -1;
            i++;
            if (analyze_kw(a, i) != LEX_KW_WHEN && analyze_px_or(a, &i, e, 0) < 0)
                return -1;
            if (i >= e || analyze_kw(a, i) != LEX_KW_WHEN)
                return analyze_px_fail(a, i);
            while (i < e && analyze_kw(a, i) == LEX_KW_WHEN) {
                i++;
                if (analyze_px_or(a, &i, e, 0) < 0)
                    return -1;
                if (i >= e || analyze_kw(a, i) != LEX_KW_THEN)
                    return analyze_px_fail(a, i);
                i++;
                if (analyze_px_or(a, &i, e, 0) < 0)
                    return -1;
            }
            if (i < e && analyze_kw(a, i) == LEX_KW_ELSE) {
                i++;
                if (analyze_px_or(a, &i, e, 0) < 0)
                    return -1;
            }
            if (i >= e || analyze_kw(a, i) != LEX_KW_END)
                return analyze_px_fail(a, i);
            i++;
            a->depth--;
            break;
        }
        if (kw == LEX_KW_INTERVAL) {
            /* INTERVAL expr unit + expr; INTERVAL(n, n1, ...) is a function */
            if (i + 1 < e && analyze_op(a, i + 1, '(') && (uint32_t)a->pair[i + 1] < e &&
                !analyze_px_unit(a, (uint32_t)a->pair[i + 1] + 1)) {
                i = (uint32_t)a->pair[i + 1] + 1;
                break;
            }
            if (analyze_enter(a, i) < 0)
                return -1;
            i++;
            if (analyze_px_or(a, &i, e, 0) < 0)
                return -1;
            if (i + 1 >= e || !analyze_px_unit(a, i) || !analyze_op(a, i + 1, '+'))
                return analyze_px_fail(a, i);
            i += 2;
            if (analyze_px_simple(a, &i, e) < 0)
                return -1;
            a->depth--;
            break;
        }
        /* reserved words that are functions when a '(' follows */
        if (t->type == LEX_IDENT && !analyze_kw_unreserved(kw) &&
            !((kw == LEX_KW_LEFT || kw == LEX_KW_RIGHT || kw == LEX_KW_REPLACE ||
               kw == LEX_KW_INSERT || kw == LEX_KW_MOD || kw == LEX_KW_DEFAULT ||
               kw == LEX_KW_VALUES || kw == LEX_KW_CHARACTER) &&
              analyze_op(a, i + 1, '(')))
            return analyze_px_fail(a, i);
    name:
        {
            /* name [. name [. name]] [( args ) [OVER ...]] */
            uint32_t first = i;
            i++;
            /* a part after a spaced dot is read as a keyword if it is one
             * (t . where): only quoted, unreserved or dot-touching words */
            for (int parts = 1; parts < 3 && i + 1 < e && analyze_op(a, i, '.') &&
                                analyze_is_name(a, i + 1) &&
                                (a->tok[i + 1].type == LEX_QIDENT ||
                                 analyze_kw_unreserved(a->tok[i + 1].op));
                 parts++)
                i += 2;
            if (i < e && analyze_op(a, i, '.'))
                return analyze_px_fail(a, i);
            if (i < e && analyze_op(a, i, '(')) {
                if ((uint32_t)a->pair[i] >= e)
                    return analyze_px_fail(a, i);
                i = (uint32_t)a->pair[i] + 1;
                if (analyze_word(a, i, "WITHIN") && analyze_kw(a, i + 1) == LEX_KW_GROUP &&
                    analyze_op(a, i + 2, '(') && (uint32_t)a->pair[i + 2] < e)
                    i = (uint32_t)a->pair[i + 2] + 1;
                if (i < e && analyze_word(a, i, "OVER")) {
                    i++;
                    if (analyze_op(a, i, '(') && (uint32_t)a->pair[i] < e)
                        i = (uint32_t)a->pair[i] + 1;
                    else if (i < e && analyze_is_name(a, i) &&
                             (a->tok[i].type == LEX_QIDENT || a->tok[i].op == LEX_KW_NONE))
                        i++;
                    else
                        return analyze_px_fail(a, i);
                }
            } else if (i == first + 1 && i < e && a->tok[i].type == LEX_STRING &&
                       (analyze_word(a, first, "DATE") || analyze_word(a, first, "TIME") ||
                        analyze_word(a, first, "TIMESTAMP"))) {
                /* DATE/TIME/TIMESTAMP 'literal' (the server shifts the
                 * typed literal); after any other name a string is an
                 * alias, which only a select list accepts (the lexer knows
                 * every MariaDB introducer, so "_foo 'x'" is one too) */
                i++;
            }
        }
        break;
    default:
        return analyze_px_fail(a, i);
    }
    while (i < e && a->tok[i].type == LEX_IDENT && a->tok[i].op == LEX_KW_COLLATE) {
        i++;
        if (i >= e || !(analyze_is_name(a, i) || a->tok[i].type == LEX_STRING))
            return analyze_px_fail(a, i);
        i++;
    }
    *ip = i;
    return 0;
}

/* Records a top-level connective at <i> (when <rec>). */
static int analyze_px_sep(struct analyze *a, uint32_t i, uint32_t flag, int rec)
{
    if (!rec)
        return 0;
    if (a->n_seps >= ANALYZE_MAX_SEPS)
        return ANALYZE_REJ(a, ANALYZE_M_TOO_BIG, i);
    a->seps[a->n_seps++] = i | flag;
    return 0;
}

/* Whether token <i> (< e) is a whole simple_expr on its own: a literal,
 * '?', a variable or an unqualified name that no '.', '(', string, ':='
 * or COLLATE continues. The hot path: most operands are one token. */
static inline int analyze_px_trivial(const struct analyze *a, uint32_t i, uint32_t e)
{
    const struct lex_token *t = &a->tok[i];
    switch (t->type) {
    case LEX_IDENT:
        if (t->op != LEX_KW_NONE || (t->flags & LEX_F_INTRO))
            return 0;
        break;
    case LEX_QIDENT: case LEX_INTEGER: case LEX_DECIMAL: case LEX_HEX: case LEX_BIT:
    case LEX_PARAM: case LEX_SYSVAR: case LEX_STRING: case LEX_USERVAR:
        break;
    default:
        return 0;
    }
    if (i + 1 >= e)
        return 1;
    const struct lex_token *nx = &a->tok[i + 1];
    if (nx->type == LEX_OP)
        return nx->op != '.' && nx->op != '(' && nx->op != LEX_OP_ASSIGN;
    if (nx->type == LEX_IDENT)
        return nx->op != LEX_KW_COLLATE;
    return nx->type != LEX_STRING;
}

/* Binding levels of the binary operators, loosest first (sql_yacc.yy's
 * %left list; the bit/arithmetic operators are one level here: their
 * order among themselves changes no AND/OR grouping). */
enum {
    ANALYZE_LV_OR = 1,      /* OR || */
    ANALYZE_LV_XOR,         /* XOR */
    ANALYZE_LV_AND,         /* AND && */
    ANALYZE_LV_NOT,         /* prefix NOT */
    ANALYZE_LV_CMP,         /* = <=> <> != < > <= >= IS */
    ANALYZE_LV_PRED,        /* [NOT] IN, BETWEEN, LIKE, REGEXP, RLIKE; SOUNDS LIKE */
    ANALYZE_LV_BIT,         /* | & << >> + - * / % DIV MOD ^ */
};

/* The level of the binary operator at <i> (< e), or 0 when none starts there. */
static int analyze_px_level(const struct analyze *a, uint32_t i, uint32_t e)
{
    const struct lex_token *t = &a->tok[i];
    if (t->type == LEX_OP) {
        switch (t->op) {
        case LEX_OP_OROR:
            return ANALYZE_LV_OR;
        case LEX_OP_ANDAND:
            return ANALYZE_LV_AND;
        case '=': case LEX_OP_NSEQ: case '<': case '>': case LEX_OP_LE: case LEX_OP_GE:
        case LEX_OP_NE:
            return ANALYZE_LV_CMP;
        case '|': case '&': case LEX_OP_SHL: case LEX_OP_SHR: case '+': case '-': case '*':
        case '/': case '%': case '^':
        case LEX_OP_CONCAT:     /* MYSQL_CONCAT_SYM binds tighter than '^': inside a
                                   bit_expr, where the order of these does not
                                   move an AND or OR */
            return ANALYZE_LV_BIT;
        default:
            return 0;
        }
    }
    if (t->type != LEX_IDENT)
        return 0;
    switch (t->op) {
    case LEX_KW_OR:     return ANALYZE_LV_OR;
    case LEX_KW_XOR:    return ANALYZE_LV_XOR;
    case LEX_KW_AND:    return ANALYZE_LV_AND;
    case LEX_KW_IS:     return ANALYZE_LV_CMP;
    case LEX_KW_IN: case LEX_KW_BETWEEN: case LEX_KW_LIKE: case LEX_KW_REGEXP:
    case LEX_KW_RLIKE:
        return ANALYZE_LV_PRED;
    case LEX_KW_SOUNDS:
        return i + 1 < e && analyze_kw(a, i + 1) == LEX_KW_LIKE ? ANALYZE_LV_PRED : 0;
    case LEX_KW_NOT: {  /* NOT IN / BETWEEN / LIKE / REGEXP / RLIKE */
        int k = i + 1 < e ? analyze_kw(a, i + 1) : LEX_KW_NONE;
        return k == LEX_KW_IN || k == LEX_KW_BETWEEN || k == LEX_KW_LIKE ||
                       k == LEX_KW_REGEXP || k == LEX_KW_RLIKE
                   ? ANALYZE_LV_PRED
                   : 0;
    }
    case LEX_KW_DIV: case LEX_KW_MOD:
        return ANALYZE_LV_BIT;
    default:
        return 0;
    }
}

/*
 * An expression at <*ip> binding at least as tight as level <min>
 * (precedence climbing over the levels above), stopping before <e> or the
 * first token that cannot continue it. With <rec>, the OR/XOR/AND that
 * join the top-level terms go to a->seps in token order.
 */
static int analyze_px_expr(struct analyze *a, uint32_t *ip, uint32_t e, int min, int rec)
{
    uint32_t i = *ip;
    if (i < e && a->tok[i].type == LEX_IDENT && a->tok[i].op == LEX_KW_NOT) {
        /* NOT expr: binds tighter than AND, looser than comparisons (not
         * a comparison's operand: a = NOT b is a syntax error) */
        int r;
        if (min > ANALYZE_LV_NOT)
            return analyze_px_fail(a, i);
        if (analyze_enter(a, i) < 0)
            return -1;
        i++;
        r = analyze_px_expr(a, &i, e, ANALYZE_LV_NOT, 0);
        a->depth--;
        if (r < 0)
            return -1;
    } else if (i < e && analyze_px_trivial(a, i, e)) {
        i++;
    } else if (analyze_px_simple(a, &i, e) < 0) {
        return -1;
    }
    while (i < e) {
        int lv = analyze_px_level(a, i, e);
        if (lv == 0 || lv < min)
            break;
        uint32_t op = i;
        int kw = a->tok[i].type == LEX_IDENT ? a->tok[i].op : LEX_KW_NONE;
        switch (lv) {
        case ANALYZE_LV_OR:
        case ANALYZE_LV_XOR:
        case ANALYZE_LV_AND:
            if (analyze_px_sep(a, op, lv == ANALYZE_LV_AND ? 0 : ANALYZE_SEP_OR, rec) < 0)
                return -1;
            i++;
            if (analyze_px_expr(a, &i, e, lv + 1, lv == ANALYZE_LV_AND ? 0 : rec) < 0)
                return -1;
            break;
        case ANALYZE_LV_CMP:
            i++;
            if (kw == LEX_KW_IS) {
                if (i < e && analyze_kw(a, i) == LEX_KW_NOT)
                    i++;
                int k2 = i < e ? analyze_kw(a, i) : -1;
                if (!(k2 == LEX_KW_TRUE || k2 == LEX_KW_FALSE || k2 == LEX_KW_NULL ||
                      (i < e && analyze_word(a, i, "UNKNOWN"))))
                    return analyze_px_fail(a, i);
                i++;
                break;
            }
            kw = i < e ? analyze_kw(a, i) : LEX_KW_NONE;
            if ((kw == LEX_KW_ALL || kw == LEX_KW_ANY || kw == LEX_KW_SOME) &&
                analyze_op(a, i + 1, '(') && analyze_is_query(a, i + 2)) {
                i++;
                if (analyze_px_group(a, &i, e) < 0)
                    return -1;
                break;
            }
            if (analyze_px_expr(a, &i, e, ANALYZE_LV_PRED, 0) < 0)
                return -1;
            break;
        case ANALYZE_LV_PRED:
            if (kw == LEX_KW_NOT) {
                i++;
                kw = analyze_kw(a, i);
            }
            i++;
            if (kw == LEX_KW_IN) {
                if (!analyze_op(a, i, '(') || analyze_px_group(a, &i, e) < 0)
                    return analyze_px_fail(a, i);
            } else if (kw == LEX_KW_BETWEEN) {
                /* x BETWEEN y AND z: the AND belongs to BETWEEN; a nested
                 * BETWEEN in y takes its own first (a BETWEEN b BETWEEN c
                 * AND d AND e has no conjunction) */
                int r;
                if (analyze_enter(a, op) < 0)
                    return -1;
                r = analyze_px_expr(a, &i, e, ANALYZE_LV_PRED, 0);
                a->depth--;
                if (r < 0)
                    return -1;
                if (i >= e || analyze_kw(a, i) != LEX_KW_AND)
                    return analyze_px_fail(a, i);
                i++;
                if (analyze_px_expr(a, &i, e, ANALYZE_LV_BIT, 0) < 0)
                    return -1;
            } else {
                if (kw == LEX_KW_SOUNDS)
                    i++;        /* SOUNDS LIKE */
                if (analyze_px_expr(a, &i, e, ANALYZE_LV_BIT, 0) < 0)
                    return -1;
                if (kw == LEX_KW_LIKE && i < e && analyze_kw(a, i) == LEX_KW_ESCAPE) {
                    i++;
                    if (analyze_px_expr(a, &i, e, ANALYZE_LV_BIT, 0) < 0)
                        return -1;
                }
            }
            break;
        default:    /* ANALYZE_LV_BIT */
            i++;
            if ((a->tok[op].op == '+' || a->tok[op].op == '-') && a->tok[op].type == LEX_OP &&
                i < e && analyze_kw(a, i) == LEX_KW_INTERVAL && !analyze_op(a, i + 1, '(')) {
                /* x + INTERVAL expr unit */
                i++;
                if (analyze_px_expr(a, &i, e, 1, 0) < 0)
                    return -1;
                if (i >= e || !analyze_px_unit(a, i))
                    return analyze_px_fail(a, i);
                i++;
                break;
            }
            if (i < e && analyze_px_trivial(a, i, e))
                i++;
            else if (analyze_px_simple(a, &i, e) < 0)
                return -1;
            break;
        }
    }
    *ip = i;
    return 0;
}

static int analyze_px_or(struct analyze *a, uint32_t *ip, uint32_t e, int rec)
{
    return analyze_px_expr(a, ip, e, ANALYZE_LV_OR, rec);
}

/* Terms of the AND chain [s, e) split at the recorded ANDs a->seps[k0, k1). */
static int analyze_and_terms(struct analyze *a, uint32_t s, uint32_t e, uint32_t k0, uint32_t k1,
                             int block, int in_or)
{
    uint32_t start = s;
    for (uint32_t k = k0; k < k1; k++) {
        uint32_t pos = a->seps[k];
        if (analyze_atom(a, start, pos, block, in_or) < 0)
            return -1;
        start = pos + 1;
    }
    return analyze_atom(a, start, e, block, in_or);
}

/* One OR branch: keeps on a->fixes (from <start>) only the fixes that
 * every branch so far has. */
static int analyze_or_branch(struct analyze *a, uint32_t s, uint32_t e, uint32_t k0, uint32_t k1,
                             int block, int in_or, uint32_t start, int n_branch)
{
    uint32_t mine = a->n_fixes;
    if (analyze_and_terms(a, s, e, k0, k1, block, in_or) < 0)
        return -1;
    if (n_branch > 0) {
        uint32_t w = start;
        for (uint32_t x = start; x < mine; x++) {
            int found = 0;
            for (uint32_t y = mine; y < a->n_fixes && !found; y++)
                found = a->fixes[y] == a->fixes[x];
            if (found)
                a->fixes[w++] = a->fixes[x];
        }
        a->n_fixes = w;
    }
    return 0;
}

/* An expression [s, e), parsed in full: the fixes of an OR (or XOR) are
 * those common to all its branches; an assignment (:=) proves nothing.
 * Fixes are left on a->fixes from the entry's n_fixes. */
static int analyze_or_expr(struct analyze *a, uint32_t s, uint32_t e, int block, int in_or)
{
    uint32_t base = a->n_seps, i = s;
    int saved_assign = a->px_assign;
    a->px_assign = 0;
    if (analyze_px_or(a, &i, e, 1) < 0)
        return -1;
    if (i != e)
        return analyze_px_fail(a, i);
    uint32_t top = a->n_seps;
    int r = 0;
    if (!a->px_assign) {
        uint32_t start = a->n_fixes, bstart = s, k0 = base;
        int n_branch = 0, any_or = 0;
        for (uint32_t k = base; k < top; k++)
            any_or |= (a->seps[k] & ANALYZE_SEP_OR) != 0;
        for (uint32_t k = base; k < top && r == 0; k++) {
            if (!(a->seps[k] & ANALYZE_SEP_OR))
                continue;
            uint32_t pos = a->seps[k] & ~ANALYZE_SEP_OR;
            r = analyze_or_branch(a, bstart, pos, k0, k, block, 1, start, n_branch);
            n_branch++;
            bstart = pos + 1;
            k0 = k + 1;
        }
        if (r == 0)
            r = analyze_or_branch(a, bstart, e, k0, top, block, in_or || any_or, start, n_branch);
    }
    a->px_assign = saved_assign;
    a->n_seps = base;
    return r;
}

/* Marks the tables that the expression [s, e) (a WHERE, or an ON whose
 * fixes may apply to the tables [lo, hi) of <block>) fixes to the key. */
/* Notes where block <b>'s scope condition goes: its WHERE condition [s, e),
 * or a new WHERE before token <s> (s == e). */
static void analyze_spot(struct analyze *a, int b, uint32_t s, uint32_t e)
{
    a->blocks[b].where_s = s;
    a->blocks[b].where_e = e;
    a->blocks[b].spot = 1;
}

static int analyze_where(struct analyze *a, uint32_t s, uint32_t e, int block, int lo, int hi)
{
    if (analyze_scan_expr(a, s, e, block) < 0)
        return -1;
    uint32_t f0 = a->n_fixes, e0 = a->n_edges;
    if (analyze_or_expr(a, s, e, block, 0) < 0)
        return -1;
    for (uint32_t k = f0; k < a->n_fixes; k++) {
        int t = a->fixes[k];
        if (a->tables[t].block == block && t >= lo && t < hi)
            a->tables[t].keyed = 1;
    }
    a->n_fixes = f0;
    /* an ON condition only limits the rows it joins in: keep the edges
     * that end in those tables */
    uint32_t w = e0;
    for (uint32_t k = e0; k < a->n_edges; k++) {
        int to = a->edges[k].to;
        if (a->tables[to].block != block || (to >= lo && to < hi))
            a->edges[w++] = a->edges[k];
    }
    a->n_edges = w;
    return 0;
}

/* ---- FROM clauses ---- */

static int analyze_table_refs(struct analyze *a, uint32_t i, uint32_t e, int block, uint32_t *next);

/* Whether <name> token <i> is a WITH name in scope. */
static int analyze_is_cte(const struct analyze *a, uint32_t i)
{
    for (uint32_t k = a->n_cte; k-- > 0;)
        if (analyze_name_eq(a, a->cte[k], i))
            return 1;
    return 0;
}

/* Checks a database qualifier token against the configured database. */
static int analyze_check_db(struct analyze *a, uint32_t i)
{
    size_t l;
    const char *s = analyze_name(a, i, &l);
    if (a->db_len && l == a->db_len && memcmp(s, a->cfg.database, l) == 0)
        return a->catalog ? ANALYZE_REJ(a, ANALYZE_M_CATALOG, i) : 0;
    return ANALYZE_REJ(a, ANALYZE_M_OTHER_DB, i);
}

/* Whether name token <i> is information_schema (any case: the server
 * always compares that name case-insensitively). */
static int analyze_is_infoschema(const struct analyze *a, uint32_t i)
{
    size_t l;
    if (!analyze_is_name(a, i))
        return 0;
    const char *s = analyze_name(a, i, &l);
    return analyze_ci_eq(s, l, "information_schema", 18);
}

/*
 * The information_schema table named by token <i>: 1 for a table of rows
 * about databases' objects (limited like a user table, by its schema
 * column), 2 for a server-wide table that is the same on every server and
 * names no database's objects, 0 (after a reject) for any other.
 */
static int analyze_catalog_table(struct analyze *a, uint32_t i)
{
    static const char *const per_db[] = {
        "TABLES", "COLUMNS", "STATISTICS", "KEY_COLUMN_USAGE", "TABLE_CONSTRAINTS",
        "REFERENTIAL_CONSTRAINTS", "CHECK_CONSTRAINTS", "VIEWS", "TRIGGERS", "ROUTINES",
        "PARAMETERS", "SCHEMATA",
    };
    static const char *const fixed[] = {
        "CHARACTER_SETS", "COLLATIONS", "COLLATION_CHARACTER_SET_APPLICABILITY", "ENGINES",
        "KEYWORDS", "SQL_FUNCTIONS",
    };
    size_t l;
    const char *s = analyze_name(a, i, &l);
    for (size_t k = 0; k < sizeof(per_db) / sizeof(per_db[0]); k++)
        if (analyze_ci_eq(s, l, per_db[k], strlen(per_db[k])))
            return 1;
    for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
        if (analyze_ci_eq(s, l, fixed[k], strlen(fixed[k])))
            return 2;
    ANALYZE_REJ(a, ANALYZE_M_CATALOG, i);
    return 0;
}

/* Whether the word at <i> can be a table alias (not a keyword we know). */
/* Whether the word token <i> can name a table or alias: not a keyword, or
 * one the server does not reserve (a table may be called `session`). */
static int analyze_table_word(const struct analyze *a, uint32_t i)
{
    if (i >= a->n)
        return 0;
    if (a->tok[i].type == LEX_QIDENT)
        return 1;
    if (a->tok[i].type != LEX_IDENT)
        return 0;
    switch (a->tok[i].op) {
    case LEX_KW_NONE:
    case LEX_KW_VALUE: case LEX_KW_DUPLICATE: case LEX_KW_WORK: case LEX_KW_START:
    case LEX_KW_TRANSACTION: case LEX_KW_COMMIT: case LEX_KW_ROLLBACK:
    case LEX_KW_SAVEPOINT: case LEX_KW_GLOBAL: case LEX_KW_SESSION: case LEX_KW_LOCAL:
    case LEX_KW_PERSIST: case LEX_KW_PERSIST_ONLY: case LEX_KW_NAMES: case LEX_KW_CHARSET:
    case LEX_KW_SHARE: case LEX_KW_MODE: case LEX_KW_ESCAPE: case LEX_KW_OFFSET:
    case LEX_KW_ROW: case LEX_KW_SOUNDS: case LEX_KW_MEMBER: case LEX_KW_FULL:
    case LEX_KW_RETURNING: case LEX_KW_BEGIN: case LEX_KW_END: case LEX_KW_DO:
        return 1;
    default:
        return 0;
    }
}

static int analyze_alias_ok(const struct analyze *a, uint32_t i)
{
    return analyze_table_word(a, i);
}

/* One table factor at <i>: name, (subquery) alias, or (table refs). */
static int analyze_factor(struct analyze *a, uint32_t i, uint32_t e, int block, uint32_t *next)
{
    if (i >= e)
        return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
    if (analyze_op(a, i, '(')) {
        uint32_t c = (uint32_t)a->pair[i];
        uint32_t k = i + 1;
        while (analyze_op(a, k, '('))
            k++;
        int r;
        if (analyze_enter(a, i) < 0)
            return -1;
        if (analyze_is_query(a, k)) {
            r = analyze_query(a, i + 1, c, block);
            a->depth--;
            if (r < 0)
                return -1;
            i = c + 1;
            if (analyze_kw(a, i) == LEX_KW_AS)
                i++;
            int32_t alias = -1;
            if (i < e && analyze_is_name(a, i) &&
                (analyze_alias_ok(a, i) || analyze_kw(a, i - 1) == LEX_KW_AS))
                alias = (int32_t)i++;
            if (i < e && analyze_op(a, i, '('))
                i = analyze_skip(a, i);          /* derived column list */
            if (analyze_add_table(a, block, alias, c + 1, 0) < 0)
                return -1;
            *next = i;
            return 0;
        }
        uint32_t inner_next;
        r = analyze_table_refs(a, i + 1, c, block, &inner_next);
        a->depth--;
        if (r < 0)
            return -1;
        if (inner_next != c)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, inner_next);
        *next = c + 1;
        return 0;
    }
    int kw = analyze_kw(a, i);
    if (kw == LEX_KW_LATERAL || kw == LEX_KW_JSON_TABLE)
        return ANALYZE_REJ(a, ANALYZE_M_FEATURE, i);
    if (kw == LEX_KW_DUAL) {
        *next = i + 1;
        return 0;
    }
    if (!analyze_table_word(a, i))
        return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
    uint32_t start = i;
    uint32_t name = i++;
    int base = -1;
    if (i + 1 < e && analyze_op(a, i, '.') && analyze_is_name(a, i + 1)) {
        if (a->catalog && analyze_is_infoschema(a, name)) {
            int ct = analyze_catalog_table(a, i + 1);
            if (!ct)
                return -1;
            base = ct == 1;
        } else if (analyze_check_db(a, name) < 0) {
            return -1;
        }
        name = i + 1;
        i += 2;
    }
    if (base < 0) {
        base = !(name == start && analyze_is_cte(a, name));
        if (base && a->catalog)     /* an app table in a catalogue query */
            return ANALYZE_REJ(a, ANALYZE_M_CATALOG, start);
    }
    if (analyze_kw(a, i) == LEX_KW_PARTITION && analyze_op(a, i + 1, '('))
        i = analyze_skip(a, i + 1);
    int32_t qual = (int32_t)name;
    if (analyze_kw(a, i) == LEX_KW_AS && i + 1 < e && analyze_is_name(a, i + 1)) {
        qual = (int32_t)(i + 1);
        i += 2;
    } else if (i < e && analyze_alias_ok(a, i)) {
        qual = (int32_t)i++;
    }
    /* index hints */
    while (i < e && (analyze_kw(a, i) == LEX_KW_USE || analyze_kw(a, i) == LEX_KW_FORCE ||
                     analyze_kw(a, i) == LEX_KW_IGNORE) &&
           (analyze_kw(a, i + 1) == LEX_KW_INDEX || analyze_kw(a, i + 1) == LEX_KW_KEY)) {
        i += 2;
        if (analyze_kw(a, i) == LEX_KW_FOR) {
            i++;
            if (analyze_kw(a, i) == LEX_KW_JOIN)
                i++;
            else if ((analyze_kw(a, i) == LEX_KW_ORDER || analyze_kw(a, i) == LEX_KW_GROUP) &&
                     analyze_kw(a, i + 1) == LEX_KW_BY)
                i += 2;
            else
                return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
        }
        if (!analyze_op(a, i, '('))
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
        i = analyze_skip(a, i);
    }
    if (analyze_add_table(a, block, qual, start, base) < 0)
        return -1;
    *next = i;
    return 0;
}

/* Whether <i> starts a join operator; sets <*kind> 'I'nner, 'L'eft, 'R'ight,
 * 'N'atural and <*next> to the factor after it. */
static int analyze_join_op(const struct analyze *a, uint32_t i, uint32_t e, int *kind,
                           uint32_t *next)
{
    int k = analyze_kw(a, i);
    *kind = 'I';
    if (i >= e)
        return 0;
    if (k == LEX_KW_STRAIGHT_JOIN || k == LEX_KW_JOIN) {
        *next = i + 1;
        return 1;
    }
    if (k == LEX_KW_NATURAL) {
        *kind = 'N';
        i++;
        k = analyze_kw(a, i);
        if (k == LEX_KW_LEFT || k == LEX_KW_RIGHT) {
            i++;
            if (analyze_kw(a, i) == LEX_KW_OUTER)
                i++;
        } else if (k == LEX_KW_INNER) {
            i++;
        }
        if (analyze_kw(a, i) != LEX_KW_JOIN)
            return 0;
        *next = i + 1;
        return 1;
    }
    if (k == LEX_KW_INNER || k == LEX_KW_CROSS) {
        if (analyze_kw(a, i + 1) != LEX_KW_JOIN)
            return 0;
        *next = i + 2;
        return 1;
    }
    if (k == LEX_KW_LEFT || k == LEX_KW_RIGHT) {
        *kind = k == LEX_KW_LEFT ? 'L' : 'R';
        i++;
        if (analyze_kw(a, i) == LEX_KW_OUTER)
            i++;
        if (analyze_kw(a, i) != LEX_KW_JOIN)
            return 0;
        *next = i + 1;
        return 1;
    }
    return 0;
}

/* End of an ON condition starting at <i>: the next join operator or ','. */
static uint32_t analyze_on_end(const struct analyze *a, uint32_t i, uint32_t e)
{
    int kind;
    uint32_t nx;
    while (i < e) {
        if (analyze_op(a, i, ','))
            return i;
        if (!analyze_op(a, i + 1, '(') && analyze_join_op(a, i, e, &kind, &nx))
            return i;
        i = analyze_skip(a, i);
    }
    return e;
}

/* table_references in [i, e): factors joined by ',' and JOIN operators. */
static int analyze_table_refs(struct analyze *a, uint32_t i, uint32_t e, int block, uint32_t *next)
{
    for (;;) {
        int item_lo = (int)a->n_tables;
        int prev_lo = item_lo;
        if (analyze_factor(a, i, e, block, &i) < 0)
            return -1;
        for (;;) {
            int kind;
            uint32_t nx;
            if (!analyze_join_op(a, i, e, &kind, &nx))
                break;
            int y_lo = (int)a->n_tables;
            if (analyze_factor(a, nx, e, block, &i) < 0)
                return -1;
            int y_hi = (int)a->n_tables;
            int n_lo = kind == 'L' ? y_lo : kind == 'R' ? item_lo : y_hi;
            int n_hi = kind == 'L' ? y_hi : kind == 'R' ? y_lo : y_hi;
            if (kind == 'N')
                for (int t = item_lo; t < y_hi; t++)
                    a->tables[t].noscope = 1;
            /* the NULL-extended side: the innermost outer join's ON */
            for (int t = n_lo; t < n_hi; t++)
                if (!a->tables[t].nullable) {
                    a->tables[t].nullable = 1;
                    if (analyze_kw(a, i) == LEX_KW_ON) {
                        a->tables[t].on_s = i + 1;
                        a->tables[t].on_e = analyze_on_end(a, i + 1, e);
                    }
                }
            if (kind != 'N' && analyze_kw(a, i) == LEX_KW_ON) {
                uint32_t ce = analyze_on_end(a, i + 1, e);
                int lo = kind == 'L' ? y_lo : item_lo;
                int hi = kind == 'R' ? y_lo : y_hi;
                if (analyze_where(a, i + 1, ce, block, lo, hi) < 0)
                    return -1;
                i = ce;
            } else if (kind != 'N' && analyze_kw(a, i) == LEX_KW_USING &&
                       analyze_op(a, i + 1, '(')) {
                uint32_t c = (uint32_t)a->pair[i + 1];
                int has_key = 0;
                for (uint32_t k = i + 2; k < c; k++)
                    if (analyze_is_key_name(a, k))
                        has_key = 1;
                /* USING (userid) between two single tables: an equality */
                if (has_key && y_hi - y_lo == 1 && y_lo - prev_lo == 1) {
                    if (kind != 'R')
                        analyze_add_edge(a, prev_lo, y_lo);
                    if (kind != 'L')
                        analyze_add_edge(a, y_lo, prev_lo);
                }
                i = c + 1;
            }
            prev_lo = y_lo;
        }
        if (i < e && analyze_op(a, i, ',')) {
            i++;
            continue;
        }
        break;
    }
    *next = i;
    return 0;
}

/* ---- SELECT ---- */

enum {
    ANALYZE_CL_FROM,
    ANALYZE_CL_WHERE,
    ANALYZE_CL_GROUP,
    ANALYZE_CL_HAVING,
    ANALYZE_CL_WINDOW,
    ANALYZE_CL_ORDER,
    ANALYZE_CL_LIMIT,
    ANALYZE_CL_INTO,
    ANALYZE_CL_FOR,
    ANALYZE_CL_N
};

/* Which clause keyword token <i> is, or -1. */
static int analyze_clause(const struct analyze *a, uint32_t i)
{
    switch (analyze_kw(a, i)) {
    case LEX_KW_FROM:   return ANALYZE_CL_FROM;
    case LEX_KW_WHERE:  return ANALYZE_CL_WHERE;
    case LEX_KW_GROUP:  return ANALYZE_CL_GROUP;
    case LEX_KW_HAVING: return ANALYZE_CL_HAVING;
    case LEX_KW_WINDOW: return ANALYZE_CL_WINDOW;
    case LEX_KW_ORDER:  return ANALYZE_CL_ORDER;
    case LEX_KW_LIMIT:  return ANALYZE_CL_LIMIT;
    case LEX_KW_INTO:   return ANALYZE_CL_INTO;
    case LEX_KW_FOR:    /* FOR JOIN (index hint), FOR SYSTEM_TIME: not a clause */
        return analyze_kw(a, i + 1) == LEX_KW_UPDATE || analyze_word(a, i + 1, "SHARE")
                   ? ANALYZE_CL_FOR
                   : -1;
    case LEX_KW_LOCK:   return analyze_kw(a, i + 1) == LEX_KW_IN ? ANALYZE_CL_FOR : -1;
    default:            return -1;
    }
}

/* Whether clause keyword <i> is followed by what its clause needs, so a
 * word used as a column name never silently ends a WHERE early. */
static int analyze_clause_ok(const struct analyze *a, uint32_t i, int cl)
{
    switch (cl) {
    case ANALYZE_CL_GROUP:
    case ANALYZE_CL_ORDER:  return analyze_kw(a, i + 1) == LEX_KW_BY;
    case ANALYZE_CL_WINDOW: return analyze_is_name(a, i + 1) && analyze_kw(a, i + 2) == LEX_KW_AS;
    case ANALYZE_CL_LIMIT:
        return a->tok[i + 1].type == LEX_INTEGER || a->tok[i + 1].type == LEX_PARAM;
    case ANALYZE_CL_FOR:
        return analyze_kw(a, i) == LEX_KW_LOCK
                   ? analyze_kw(a, i + 1) == LEX_KW_IN
                   : analyze_kw(a, i + 1) == LEX_KW_UPDATE || analyze_word(a, i + 1, "SHARE");
    default:        return 1;
    }
}

/* ---- the rest of a SELECT, UPDATE, DELETE, INSERT: parsed too ----
 * Not proof sources, but a statement is accepted only when every part of
 * it is in the subset: these walk the select list, GROUP BY, HAVING,
 * WINDOW, ORDER BY, LIMIT, INTO, the locking clauses, assigned and
 * inserted values and RETURNING with the expression grammar above. */

/* One expression [*ip, e) with nothing left over up to a ',' or <e>;
 * <dflt>: the bare word DEFAULT is a value too (assignments, VALUES). */
static int analyze_px_item(struct analyze *a, uint32_t *ip, uint32_t e, int dflt)
{
    if (dflt && analyze_kw(a, *ip) == LEX_KW_DEFAULT && !analyze_op(a, *ip + 1, '(')) {
        (*ip)++;
        return 0;
    }
    return analyze_px_or(a, ip, e, 0);
}

/* expr [ASC|DESC] {, ...} filling [s, e) exactly (<order>: ASC/DESC
 * allowed; <dflt>: DEFAULT allowed). */
static int analyze_px_list(struct analyze *a, uint32_t s, uint32_t e, int order, int dflt)
{
    uint32_t i = s;
    for (;;) {
        if (analyze_px_item(a, &i, e, dflt) < 0)
            return -1;
        if (order && (analyze_word(a, i, "ASC") || analyze_kw(a, i) == LEX_KW_DESC) && i < e)
            i++;
        if (i < e && analyze_op(a, i, ',')) {
            i++;
            continue;
        }
        break;
    }
    return i == e ? 0 : analyze_px_fail(a, i);
}

/* Whether name token <i> can be an alias (not a reserved word). */
static int analyze_px_alias(const struct analyze *a, uint32_t i)
{
    return i < a->n && (a->tok[i].type == LEX_QIDENT ||
                        (a->tok[i].type == LEX_IDENT && analyze_kw_unreserved(a->tok[i].op) &&
                         !(a->tok[i].flags & LEX_F_INTRO)));
}

/* Select items [s, e): *, t.*, db.t.*, expr [[AS] alias]; with the
 * select options before them. */
static int analyze_px_select_list(struct analyze *a, uint32_t s, uint32_t e)
{
    static const char *const opts[] = {
        "DISTINCTROW", "HIGH_PRIORITY", "SQL_SMALL_RESULT", "SQL_BIG_RESULT",
        "SQL_BUFFER_RESULT", "SQL_CACHE", "SQL_NO_CACHE",
    };
    uint32_t i = s;
    while (i < e && a->tok[i].type == LEX_IDENT) {
        int kw = a->tok[i].op, opt = kw == LEX_KW_ALL || kw == LEX_KW_DISTINCT ||
                                     kw == LEX_KW_STRAIGHT_JOIN ||
                                     kw == LEX_KW_SQL_CALC_FOUND_ROWS;
        if (kw == LEX_KW_NONE && a->tok[i].len >= 9)    /* the shortest is SQL_CACHE */
            for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !opt; k++)
                opt = analyze_word(a, i, opts[k]);
        if (!opt)
            break;
        i++;
    }
    for (;;) {
        if (analyze_op(a, i, '*') && i < e) {
            i++;
        } else {
            /* t.* and db.t.* */
            uint32_t k = i;
            while (k + 1 < e && analyze_is_name(a, k) && analyze_op(a, k + 1, '.') && k < i + 4)
                k += 2;
            if (k > i && k < e && analyze_op(a, k, '*')) {
                i = k + 1;
            } else {
                if (analyze_px_or(a, &i, e, 0) < 0)
                    return -1;
                if (i < e && analyze_kw(a, i) == LEX_KW_AS) {
                    i++;
                    if (i < e && (analyze_px_alias(a, i) || a->tok[i].type == LEX_STRING))
                        i++;
                    else
                        return analyze_px_fail(a, i);
                } else if (i < e && (analyze_px_alias(a, i) || a->tok[i].type == LEX_STRING)) {
                    i++;
                }
            }
        }
        if (i < e && analyze_op(a, i, ',')) {
            i++;
            continue;
        }
        break;
    }
    return i == e ? 0 : analyze_px_fail(a, i);
}

/* LIMIT n | n, m | n OFFSET m over [s, e) (s just past LIMIT); n and m
 * are integers or '?'. <offset_ok>: SELECT (UPDATE/DELETE take one). */
static int analyze_px_limit(struct analyze *a, uint32_t s, uint32_t e, int offset_ok)
{
    uint32_t i = s;
    for (int k = 0; k < 2; k++) {
        if (i >= e || !(a->tok[i].type == LEX_INTEGER || a->tok[i].type == LEX_PARAM))
            return analyze_px_fail(a, i);
        i++;
        if (k == 0 && offset_ok && i < e &&
            (analyze_op(a, i, ',') || analyze_kw(a, i) == LEX_KW_OFFSET)) {
            i++;
            continue;
        }
        break;
    }
    return i == e ? 0 : analyze_px_fail(a, i);
}

/* FOR UPDATE [NOWAIT | SKIP LOCKED | WAIT n] or LOCK IN SHARE MODE [...]
 * over [s, e), s at FOR or LOCK. */
static int analyze_px_lock(struct analyze *a, uint32_t s, uint32_t e)
{
    uint32_t i = s;
    if (analyze_kw(a, i) == LEX_KW_FOR && analyze_kw(a, i + 1) == LEX_KW_UPDATE)
        i += 2;
    else if (analyze_kw(a, i) == LEX_KW_LOCK && analyze_kw(a, i + 1) == LEX_KW_IN &&
             analyze_kw(a, i + 2) == LEX_KW_SHARE && analyze_kw(a, i + 3) == LEX_KW_MODE)
        i += 4;
    else
        return analyze_px_fail(a, i);
    a->out->locks_rows = 1;
    if (i < e && analyze_word(a, i, "NOWAIT"))
        i++;
    else if (i + 1 < e && analyze_word(a, i, "SKIP") && analyze_word(a, i + 1, "LOCKED"))
        i += 2;
    else if (i + 1 < e && analyze_word(a, i, "WAIT") && a->tok[i + 1].type == LEX_INTEGER)
        i += 2;
    return i >= e ? 0 : analyze_px_fail(a, i);
}

/* One SELECT clause <cl> starting at its keyword <k>, up to <e>. */
static int analyze_px_clause(struct analyze *a, int cl, uint32_t k, uint32_t e)
{
    uint32_t i = k + 1;
    switch (cl) {
    case ANALYZE_CL_GROUP: {
        uint32_t x = i + 1, end = e;
        /* [WITH ROLLUP] at the end */
        if (e >= 2 && analyze_kw(a, e - 2) == LEX_KW_WITH && analyze_word(a, e - 1, "ROLLUP"))
            end = e - 2;
        return analyze_px_list(a, x, end, 1, 0);
    }
    case ANALYZE_CL_ORDER:
        return analyze_px_list(a, i + 1, e, 1, 0);
    case ANALYZE_CL_HAVING:
        if (analyze_px_or(a, &i, e, 0) < 0)
            return -1;
        return i == e ? 0 : analyze_px_fail(a, i);
    case ANALYZE_CL_LIMIT:
        return analyze_px_limit(a, i, e, 1);
    case ANALYZE_CL_WINDOW:
        for (;;) {
            if (!analyze_px_alias(a, i) || analyze_kw(a, i + 1) != LEX_KW_AS ||
                !analyze_op(a, i + 2, '(') || (uint32_t)a->pair[i + 2] >= e)
                return analyze_px_fail(a, i);
            i = (uint32_t)a->pair[i + 2] + 1;
            if (i < e && analyze_op(a, i, ',')) {
                i++;
                continue;
            }
            return i == e ? 0 : analyze_px_fail(a, i);
        }
    case ANALYZE_CL_INTO:
        for (;;) {
            if (i >= e || a->tok[i].type != LEX_USERVAR)
                return analyze_px_fail(a, i);
            i++;
            if (i < e && analyze_op(a, i, ',')) {
                i++;
                continue;
            }
            return i == e ? 0 : analyze_px_fail(a, i);
        }
    case ANALYZE_CL_FOR:
        return analyze_px_lock(a, k, e);
    default:
        return 0;
    }
}

/* The clauses after a query's last term [i, e): [ORDER BY ...] [LIMIT ...]
 * [FOR UPDATE ... | LOCK IN SHARE MODE ...], in that order. */
static int analyze_px_tail(struct analyze *a, uint32_t i, uint32_t e)
{
    int last = -1;
    while (i < e) {
        int cl = analyze_clause(a, i);
        if ((cl != ANALYZE_CL_ORDER && cl != ANALYZE_CL_LIMIT && cl != ANALYZE_CL_FOR) ||
            cl <= last)
            return analyze_px_fail(a, i);
        uint32_t ce = i + 1;
        while (ce < e) {
            int c2 = analyze_clause(a, ce);
            if (c2 == ANALYZE_CL_ORDER || c2 == ANALYZE_CL_LIMIT || c2 == ANALYZE_CL_FOR)
                break;
            ce = analyze_skip(a, ce);
        }
        if (ce > e)
            ce = e;
        if (analyze_px_clause(a, cl, i, ce) < 0)
            return -1;
        last = cl;
        i = ce;
    }
    return 0;
}

/* A SELECT block starting at <i> (the SELECT keyword), ending at a
 * top-level UNION/EXCEPT/INTERSECT or <e>. Returns the end index, or 0
 * after a reject (a block never ends at 0). */
static uint32_t analyze_select(struct analyze *a, uint32_t i, uint32_t e, int parent)
{
    int b = analyze_new_block(a, parent, i);
    if (b < 0)
        return 0;
    uint32_t pos[ANALYZE_CL_N];
    for (int k = 0; k < ANALYZE_CL_N; k++)
        pos[k] = UINT32_MAX;
    uint32_t end = e, sel_e = e;
    int last = -1;
    for (uint32_t k = i + 1; k < e; k = analyze_skip(a, k)) {
        int kw = analyze_kw(a, k);
        if (kw == LEX_KW_UNION || kw == LEX_KW_EXCEPT || kw == LEX_KW_INTERSECT) {
            end = k;
            break;
        }
        int cl = analyze_clause(a, k);
        if (cl < 0)
            continue;
        if (!analyze_clause_ok(a, k, cl) || pos[cl] != UINT32_MAX ||
            (cl != ANALYZE_CL_INTO && cl < last)) {
            ANALYZE_REJ(a, ANALYZE_M_SYNTAX, k);
            return 0;
        }
        if (cl != ANALYZE_CL_INTO)
            last = cl;
        pos[cl] = k;
        if (sel_e == e)
            sel_e = k;
    }
    if (sel_e > end)
        sel_e = end;
    a->blocks[b].sel_s = i + 1;
    a->blocks[b].sel_e = sel_e;

    /* [start, stop) of each clause present */
    uint32_t cs[ANALYZE_CL_N], ce[ANALYZE_CL_N];
    for (int k = 0; k < ANALYZE_CL_N; k++) {
        if (pos[k] == UINT32_MAX)
            continue;
        cs[k] = pos[k] + 1;
        ce[k] = end;
        for (int j = 0; j < ANALYZE_CL_N; j++)
            if (pos[j] != UINT32_MAX && pos[j] > pos[k] && pos[j] < ce[k])
                ce[k] = pos[j];
    }
    if (pos[ANALYZE_CL_FROM] != UINT32_MAX) {
        uint32_t nx;
        if (analyze_table_refs(a, cs[ANALYZE_CL_FROM], ce[ANALYZE_CL_FROM], b, &nx) < 0)
            return 0;
        if (nx != ce[ANALYZE_CL_FROM]) {
            ANALYZE_REJ(a, ANALYZE_M_SYNTAX, nx);
            return 0;
        }
    }
    if (pos[ANALYZE_CL_WHERE] != UINT32_MAX) {
        analyze_spot(a, b, cs[ANALYZE_CL_WHERE], ce[ANALYZE_CL_WHERE]);
        if (analyze_where(a, cs[ANALYZE_CL_WHERE], ce[ANALYZE_CL_WHERE], b, 0,
                          ANALYZE_MAX_TABLES) < 0)
            return 0;
    } else if (pos[ANALYZE_CL_FROM] != UINT32_MAX) {
        analyze_spot(a, b, ce[ANALYZE_CL_FROM], ce[ANALYZE_CL_FROM]);
    }
    if (analyze_scan_expr(a, i + 1, sel_e, b) < 0)
        return 0;
    for (int k = ANALYZE_CL_GROUP; k < ANALYZE_CL_N; k++)
        if (pos[k] != UINT32_MAX && analyze_scan_expr(a, cs[k], ce[k], b) < 0)
            return 0;
    if (analyze_px_select_list(a, i + 1, sel_e) < 0)
        return 0;
    for (int k = ANALYZE_CL_GROUP; k < ANALYZE_CL_N; k++)
        if (pos[k] != UINT32_MAX && analyze_px_clause(a, k, pos[k], ce[k]) < 0)
            return 0;
    return end;
}

/* WITH [RECURSIVE] name [(cols)] AS (query) [, ...] at <i>; returns the
 * index after the list, or 0 after a reject. */
static uint32_t analyze_with(struct analyze *a, uint32_t i, uint32_t e, int parent)
{
    i++;
    int recursive = 0;
    if (analyze_kw(a, i) == LEX_KW_RECURSIVE) {
        recursive = 1;
        i++;
    }
    for (;;) {
        if (i >= e || !analyze_is_name(a, i)) {
            ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
            return 0;
        }
        uint32_t name = i++;
        if (analyze_op(a, i, '('))
            i = analyze_skip(a, i);
        if (analyze_kw(a, i) != LEX_KW_AS || !analyze_op(a, i + 1, '(')) {
            ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
            return 0;
        }
        i++;
        if (a->n_cte >= ANALYZE_MAX_CTE) {
            ANALYZE_REJ(a, ANALYZE_M_TOO_BIG, i);
            return 0;
        }
        /* a non-recursive WITH body sees the real table of that name */
        if (recursive)
            a->cte[a->n_cte++] = name;
        if (analyze_enter(a, i) < 0)
            return 0;
        int r = analyze_query(a, i + 1, (uint32_t)a->pair[i], parent);
        a->depth--;
        if (r < 0)
            return 0;
        if (!recursive)
            a->cte[a->n_cte++] = name;
        i = (uint32_t)a->pair[i] + 1;
        if (analyze_op(a, i, ',')) {
            i++;
            continue;
        }
        return i;
    }
}

/* A query expression [i, e): [WITH ...] term {UNION|EXCEPT|INTERSECT term}
 * [ORDER BY ...] [LIMIT ...]. Returns 0, or -1 after a reject. */
static int analyze_query(struct analyze *a, uint32_t i, uint32_t e, int parent)
{
    uint32_t saved_cte = a->n_cte;
    int r = -1;
    if (analyze_kw(a, i) == LEX_KW_WITH) {
        i = analyze_with(a, i, e, parent);
        if (!i)
            goto out;
    }
    for (;;) {
        if (i >= e) {
            ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
            goto out;
        }
        if (analyze_op(a, i, '(')) {
            uint32_t c = (uint32_t)a->pair[i];
            if (analyze_enter(a, i) < 0)
                goto out;
            int rr = analyze_query(a, i + 1, c, parent);
            a->depth--;
            if (rr < 0)
                goto out;
            i = c + 1;
        } else if (analyze_kw(a, i) == LEX_KW_SELECT) {
            i = analyze_select(a, i, e, parent);
            if (!i)
                goto out;
        } else {
            int k = analyze_kw(a, i);
            ANALYZE_REJ(a,
                        k == LEX_KW_VALUES || k == LEX_KW_TABLE || k == LEX_KW_UPDATE ||
                                k == LEX_KW_DELETE || k == LEX_KW_INSERT
                            ? ANALYZE_M_FEATURE
                            : ANALYZE_M_SYNTAX,
                        i);
            goto out;
        }
        int k = analyze_kw(a, i);
        if (i < e && (k == LEX_KW_UNION || k == LEX_KW_EXCEPT || k == LEX_KW_INTERSECT)) {
            i++;
            if (analyze_kw(a, i) == LEX_KW_ALL || analyze_kw(a, i) == LEX_KW_DISTINCT)
                i++;
            continue;
        }
        break;
    }
    /* trailing ORDER BY / LIMIT / locking after a parenthesised term */
    if (i < e) {
        int cl = analyze_clause(a, i);
        if ((cl != ANALYZE_CL_ORDER && cl != ANALYZE_CL_LIMIT && cl != ANALYZE_CL_FOR) ||
            !analyze_clause_ok(a, i, cl)) {
            ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
            goto out;
        }
    }
    if (analyze_scan_expr(a, i, e, parent) < 0 || analyze_px_tail(a, i, e) < 0)
        goto out;
    r = 0;
out:
    a->n_cte = saved_cte;
    return r;
}

/* ---- whole-statement checks ---- */

/* After the walk: propagates keys along edges and checks every real table
 * is limited to the one key. Fills ROUTE or SESSION into <out>. */
static int analyze_finish(struct analyze *a, uint32_t at)
{
    struct analyze_result *o = a->out;
    int changed = 1;
    while (changed) {
        changed = 0;
        for (uint32_t k = 0; k < a->n_edges; k++) {
            const struct analyze_edge *ed = &a->edges[k];
            if (a->tables[ed->from].keyed && !a->tables[ed->to].keyed) {
                a->tables[ed->to].keyed = 1;
                changed = 1;
            }
        }
    }
    int n_base = 0, n_keyed = 0, first_bad = -1;
    for (uint32_t t = 0; t < a->n_tables; t++) {
        if (!a->tables[t].base)
            continue;
        n_base++;
        if (a->tables[t].keyed)
            n_keyed++;
        else if (first_bad < 0)
            first_bad = (int)t;
    }
    if (n_base == 0) {
        if (o->stmt == ANALYZE_STMT_SELECT) {
            o->kind = ANALYZE_SESSION;
            return 0;
        }
        return ANALYZE_REJ(a, ANALYZE_M_NO_KEY, at);
    }
    if (first_bad >= 0)
    {
        ANALYZE_REJ(a, n_keyed ? ANALYZE_M_UNFIXED : ANALYZE_M_NO_KEY, a->tables[first_bad].tok);
        o->unconfined = 1;
        return -1;
    }
    if (!a->have_value)
        return ANALYZE_REJ(a, ANALYZE_M_NO_KEY, at);
    if (a->catalog) {
        /* every per-database catalogue row read is the configured
         * database's: the same on every shard */
        if (a->value_param >= 0 || o->scope_params || a->db_len == 0 || o->key_len != a->db_len ||
            memcmp(o->key, a->cfg.database, a->db_len) != 0)
            return ANALYZE_REJ(a, ANALYZE_M_CATALOG, a->value_tok);
        o->kind = ANALYZE_SESSION;
        return 0;
    }
    o->kind = ANALYZE_ROUTE;
    o->param_index = a->value_param;
    if (a->value_param >= 0) {
        o->key_len = 0;
        if (o->key_params)
            o->param_index = __builtin_ctzll(o->key_params);   /* the lowest */
    }
    return 0;
}

/* What an assignment to the key column may be (analyze_assignments). */
enum {
    ANALYZE_ASSIGN_NO_KEY,     /* refused */
    ANALYZE_ASSIGN_KEY_VALUE,  /* INSERT ... SET: gives the row's key */
    ANALYZE_ASSIGN_SELF,       /* UPDATE: only the statement's own key, a no-op on
                                  rows that analyze_finish() proves are all that
                                  user's */
    ANALYZE_ASSIGN_ODKU,       /* ON DUPLICATE KEY UPDATE of INSERT ... VALUES/SET:
                                  the own key, VALUES(key), VALUE(key) or the key
                                  column itself */
    ANALYZE_ASSIGN_ODKU_SEL,   /* ... of INSERT ... SELECT: no bare column (it might
                                  name a column of the SELECT's tables) */
};

/*
 * Whether [i, e) re-assigns the key column <col> its own value in an ON
 * DUPLICATE KEY UPDATE: VALUES(key) / VALUE(key) (the inserted row's key,
 * the statement's key) or, when <bare_ok>, the key column itself (the
 * existing row's key, which equals the inserted one because every unique key
 * includes the key column: docs/query-rules.md section 9). The column must
 * be the same key column as <col>.
 */
static int analyze_odku_self(const struct analyze *a, uint32_t i, uint32_t e, uint32_t col,
                             int bare_ok)
{
    size_t cl, rl;
    const char *cs = analyze_name(a, col, &cl);
    int32_t q;
    uint32_t rc;
    if ((analyze_kw(a, i) == LEX_KW_VALUES || analyze_kw(a, i) == LEX_KW_VALUE) &&
        analyze_op(a, i + 1, '(') && (uint32_t)a->pair[i + 1] + 1 == e) {
        uint32_t p = analyze_colref(a, i + 2, e - 1, &q, &rc);
        if (p != e - 1)
            return 0;
    } else if (bare_ok) {
        if (analyze_colref(a, i, e, &q, &rc) != e)
            return 0;
    } else {
        return 0;
    }
    if (!analyze_is_key_name(a, rc))
        return 0;
    const char *rs = analyze_name(a, rc, &rl);
    return analyze_ci_eq(cs, cl, rs, rl);
}

/* UPDATE/INSERT assignment lists [i, e): col = expr, ... <key_mode> (an
 * ANALYZE_ASSIGN_*) says what an assignment to the key column may be;
 * otherwise it is refused with <key_msg>. Sets *found when the key was given
 * a value (ANALYZE_ASSIGN_KEY_VALUE). */
static int analyze_assignments(struct analyze *a, uint32_t i, uint32_t e, int block,
                          const char *key_msg, int key_mode, int *found)
{
    while (i < e) {
        uint32_t ce = analyze_find_comma(a, i, e);
        int32_t q;
        uint32_t col;
        uint32_t p = analyze_colref(a, i, ce, &q, &col);
        if (!p || p >= ce || !(analyze_op(a, p, '=') || analyze_op(a, p, LEX_OP_ASSIGN)))
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
        if (analyze_is_key_name(a, col)) {
            if (key_mode == ANALYZE_ASSIGN_NO_KEY)
                return ANALYZE_REJ(a, key_msg, col);
            if ((key_mode == ANALYZE_ASSIGN_ODKU || key_mode == ANALYZE_ASSIGN_ODKU_SEL) &&
                analyze_odku_self(a, p + 1, ce, col, key_mode == ANALYZE_ASSIGN_ODKU)) {
                i = ce < e ? ce + 1 : e;
                continue;
            }
            /* a literal or '?' that must be the statement's one key */
            struct analyze_val v;
            uint32_t nx;
            int r = analyze_value(a, p + 1, ce, &nx, &v);
            if (r < 0)
                return -1;
            if (r == 0 || nx != ce)
                return ANALYZE_REJ(a, key_mode == ANALYZE_ASSIGN_KEY_VALUE ? ANALYZE_M_INS_KEY
                                                                           : key_msg,
                                   key_mode == ANALYZE_ASSIGN_KEY_VALUE ? p + 1 : col);
            if (analyze_note_value(a, &v, p + 1) < 0)
                return -1;
            if (key_mode == ANALYZE_ASSIGN_KEY_VALUE)
                *found = 1;
        } else {
            uint32_t x = p + 1;
            if (analyze_scan_expr(a, p + 1, ce, block) < 0 || analyze_px_item(a, &x, ce, 1) < 0)
                return -1;
            if (x != ce)
                return analyze_px_fail(a, x);
        }
        i = ce < e ? ce + 1 : e;
    }
    return 0;
}

/* The end of an UPDATE or DELETE [tail, e): [ORDER BY ...] [LIMIT n]
 * [RETURNING items (DELETE only)]. */
static int analyze_px_dml_tail(struct analyze *a, uint32_t i, uint32_t e, int returning_ok)
{
    int last = -1;
    while (i < e) {
        int k = analyze_kw(a, i);
        int cl = k == LEX_KW_ORDER ? 0 : k == LEX_KW_LIMIT ? 1 :
                 k == LEX_KW_RETURNING && returning_ok ? 2 : -1;
        if (cl <= last || (cl == 0 && analyze_kw(a, i + 1) != LEX_KW_BY))
            return analyze_px_fail(a, i);
        uint32_t ce = i + 1;
        while (ce < e && analyze_kw(a, ce) != LEX_KW_LIMIT && analyze_kw(a, ce) != LEX_KW_RETURNING)
            ce = analyze_skip(a, ce);
        if (ce > e)
            ce = e;
        int r = cl == 0 ? analyze_px_list(a, i + 2, ce, 1, 0)
              : cl == 1 ? analyze_px_limit(a, i + 1, ce, 0)
                        : analyze_px_select_list(a, i + 1, ce);
        if (r < 0)
            return -1;
        last = cl;
        i = ce;
    }
    return 0;
}

static int analyze_update(struct analyze *a)
{
    struct analyze_result *o = a->out;
    o->stmt = ANALYZE_STMT_UPDATE;
    o->is_write = 1;
    uint32_t i = 1, e = a->n;
    while (analyze_word(a, i, "LOW_PRIORITY") || analyze_kw(a, i) == LEX_KW_IGNORE)
        i++;
    int b = analyze_new_block(a, -1, 0);
    if (b < 0)
        return -1;
    uint32_t set = analyze_find_kw(a, i, e, LEX_KW_SET);
    if (set == e)
        return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
    uint32_t nx;
    if (analyze_table_refs(a, i, set, b, &nx) < 0)
        return -1;
    if (nx != set)
        return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, nx);
    uint32_t w = analyze_find_kw(a, set, e, LEX_KW_WHERE);
    uint32_t ord = analyze_find_kw(a, set, e, LEX_KW_ORDER);
    uint32_t lim = analyze_find_kw(a, set, e, LEX_KW_LIMIT);
    uint32_t set_e = w < ord ? w : ord;
    set_e = set_e < lim ? set_e : lim;
    int found = 0;
    if (analyze_assignments(a, set + 1, set_e, b, ANALYZE_M_KEY_UPDATE, ANALYZE_ASSIGN_SELF,
                            &found) < 0)
        return -1;
    if (w < e) {
        uint32_t we = ord < lim ? ord : lim;
        if (we < w)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, we);
        analyze_spot(a, b, w + 1, we);
        if (analyze_where(a, w + 1, we, b, 0, ANALYZE_MAX_TABLES) < 0)
            return -1;
    } else {
        analyze_spot(a, b, set_e, set_e);
    }
    uint32_t tail = ord < lim ? ord : lim;
    if (tail < e && (analyze_scan_expr(a, tail, e, b) < 0 || analyze_px_dml_tail(a, tail, e, 0) < 0))
        return -1;
    return analyze_finish(a, w < e ? w : 0);
}

static int analyze_delete(struct analyze *a)
{
    struct analyze_result *o = a->out;
    o->stmt = ANALYZE_STMT_DELETE;
    o->is_write = 1;
    uint32_t i = 1, e = a->n;
    while (analyze_word(a, i, "LOW_PRIORITY") || analyze_word(a, i, "QUICK") ||
           analyze_kw(a, i) == LEX_KW_IGNORE)
        i++;
    int b = analyze_new_block(a, -1, 0);
    if (b < 0)
        return -1;
    uint32_t from = analyze_find_kw(a, i, e, LEX_KW_FROM);
    if (from == e)
        return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
    uint32_t w = analyze_find_kw(a, from, e, LEX_KW_WHERE);
    uint32_t tail = e;
    for (uint32_t k = from; k < e; k = analyze_skip(a, k))
        if (analyze_kw(a, k) == LEX_KW_ORDER || analyze_kw(a, k) == LEX_KW_LIMIT ||
            analyze_kw(a, k) == LEX_KW_RETURNING) {
            tail = k;
            break;
        }
    uint32_t refs_e = w < tail ? w : tail;
    uint32_t refs_s = from + 1;
    /* DELETE FROM t1, t2 USING <refs>: the first list only names targets */
    uint32_t using = analyze_find_kw(a, refs_s, refs_e, LEX_KW_USING);
    if (from == i && using < refs_e)
        refs_s = using + 1;
    uint32_t nx;
    if (analyze_table_refs(a, refs_s, refs_e, b, &nx) < 0)
        return -1;
    if (nx != refs_e)
        return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, nx);
    if (w < e) {
        if (tail < w)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, tail);
        analyze_spot(a, b, w + 1, tail);
        if (analyze_where(a, w + 1, tail, b, 0, ANALYZE_MAX_TABLES) < 0)
            return -1;
    } else {
        analyze_spot(a, b, refs_e, refs_e);
    }
    if (tail < e && (analyze_scan_expr(a, tail, e, b) < 0 || analyze_px_dml_tail(a, tail, e, 1) < 0))
        return -1;
    return analyze_finish(a, w < e ? w : 0);
}

/* The key column positions of an INSERT column list ( ... ) at <i>.
 * Returns the number of columns, or -1 after a reject; bit k of *keys is
 * set when column k is a key column. */
static int analyze_insert_cols(struct analyze *a, uint32_t i, uint64_t *keys)
{
    uint32_t c = (uint32_t)a->pair[i];
    int n = 0;
    *keys = 0;
    for (uint32_t k = i + 1; k < c;) {
        int32_t q;
        uint32_t col;
        uint32_t p = analyze_colref(a, k, c, &q, &col);
        if (!p || (p < c && !analyze_op(a, p, ',')))
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, k);
        if (analyze_is_key_name(a, col)) {
            if (n >= 64)
                return ANALYZE_REJ(a, ANALYZE_M_TOO_BIG, col);
            *keys |= (uint64_t)1 << n;
        }
        n++;
        k = p + 1;
    }
    return n;
}

static int analyze_insert(struct analyze *a)
{
    struct analyze_result *o = a->out;
    o->stmt = ANALYZE_STMT_INSERT;
    o->is_write = 1;
    uint32_t i = 1, e = a->n;
    while (analyze_word(a, i, "LOW_PRIORITY") || analyze_word(a, i, "DELAYED") ||
           analyze_word(a, i, "HIGH_PRIORITY") || analyze_kw(a, i) == LEX_KW_IGNORE)
        i++;
    if (analyze_kw(a, i) == LEX_KW_INTO)
        i++;
    int b = analyze_new_block(a, -1, 0);
    if (b < 0)
        return -1;
    if (!analyze_table_word(a, i))
        return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
    uint32_t tstart = i, name = i++;
    if (analyze_op(a, i, '.') && analyze_is_name(a, i + 1)) {
        if (analyze_check_db(a, name) < 0)
            return -1;
        name = i + 1;
        i += 2;
    }
    int target = analyze_add_table(a, b, (int32_t)name, tstart, 1);
    if (target < 0)
        return -1;
    a->tables[target].target = 1;
    if (analyze_kw(a, i) == LEX_KW_PARTITION && analyze_op(a, i + 1, '('))
        i = analyze_skip(a, i + 1);

    int ncols = -1;
    uint64_t keys = 0;
    if (analyze_op(a, i, '(') && analyze_kw(a, i + 1) != LEX_KW_SELECT &&
        analyze_kw(a, i + 1) != LEX_KW_WITH && !analyze_op(a, i + 1, '(')) {
        ncols = analyze_insert_cols(a, i, &keys);
        if (ncols < 0)
            return -1;
        i = analyze_skip(a, i);
    }
    int found = 0, is_select = 0;
    int k = analyze_kw(a, i);
    uint32_t odku = e;
    for (uint32_t x = i; x < e; x = analyze_skip(a, x))
        if (analyze_kw(a, x) == LEX_KW_ON && analyze_kw(a, x + 1) == LEX_KW_DUPLICATE) {
            odku = x;
            break;
        }
    uint32_t body_e = odku;
    uint32_t ret = analyze_find_kw(a, i, e, LEX_KW_RETURNING);
    if (ret < body_e)
        body_e = ret;

    if (k == LEX_KW_VALUES || k == LEX_KW_VALUE) {
        if (ncols < 0 || !keys)
            return ANALYZE_REJ(a, ANALYZE_M_INS_COLS, i);
        i++;
        for (;;) {
            if (!analyze_op(a, i, '('))
                return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
            uint32_t c = (uint32_t)a->pair[i];
            int col = 0;
            for (uint32_t x = i + 1; x < c;) {
                uint32_t ie = analyze_find_comma(a, x, c);
                if (col < 64 && (keys >> col) & 1) {
                    struct analyze_val v;
                    uint32_t nx;
                    int r = analyze_value(a, x, ie, &nx, &v);
                    if (r < 0)
                        return -1;
                    if (r == 0 || nx != ie)
                        return ANALYZE_REJ(a, ANALYZE_M_INS_KEY, x);
                    if (analyze_note_value(a, &v, x) < 0)
                        return -1;
                    found = 1;
                } else {
                    uint32_t y = x;
                    if (analyze_scan_expr(a, x, ie, b) < 0 || analyze_px_item(a, &y, ie, 1) < 0)
                        return -1;
                    if (y != ie)
                        return analyze_px_fail(a, y);
                }
                col++;
                if (ie == c)
                    break;
                x = ie + 1;
            }
            if (col != ncols)
                return ANALYZE_REJ(a, ANALYZE_M_INS_ROWS, i);
            i = c + 1;
            if (analyze_op(a, i, ',')) {
                i++;
                continue;
            }
            break;
        }
        if (i != body_e)
            return ANALYZE_REJ(a,
                               i < body_e && analyze_kw(a, i) == LEX_KW_AS ? ANALYZE_M_FEATURE
                                                                           : ANALYZE_M_SYNTAX,
                               i);
    } else if (k == LEX_KW_SET) {
        if (ncols >= 0)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
        if (analyze_assignments(a, i + 1, body_e, b, NULL, ANALYZE_ASSIGN_KEY_VALUE, &found) < 0)
            return -1;
        if (!found)
            return ANALYZE_REJ(a, ANALYZE_M_INS_COLS, i);
    } else if (k == LEX_KW_SELECT || k == LEX_KW_WITH || analyze_op(a, i, '(')) {
        is_select = 1;
        if (ncols < 0 || !keys)
            return ANALYZE_REJ(a, ANALYZE_M_INS_COLS, i);
        uint32_t b0 = a->n_blocks;
        if (analyze_query(a, i, body_e, b) < 0)
            return -1;
        /* exactly one top-level SELECT block, whose key items are the key */
        int top = -1, n_top = 0;
        for (uint32_t x = b0; x < a->n_blocks; x++)
            if (a->blocks[x].parent == b) {
                top = (int)x;
                n_top++;
            }
        if (n_top != 1)
            return ANALYZE_REJ(a, ANALYZE_M_INS_SELECT, i);
        const struct analyze_block *sb = &a->blocks[top];
        int col = 0;
        for (uint32_t x = sb->sel_s; x < sb->sel_e; col++) {
            uint32_t ie = analyze_find_comma(a, x, sb->sel_e);
            if (col < 64 && (keys >> col) & 1) {
                struct analyze_val v;
                uint32_t nx;
                int32_t q;
                uint32_t cc;
                int r = analyze_value(a, x, ie, &nx, &v);
                if (r < 0)
                    return -1;
                if (r > 0) {
                    if (analyze_kw(a, nx) == LEX_KW_AS)
                        nx++;
                    if (nx < ie && analyze_is_name(a, nx))
                        nx++;
                    if (nx != ie)
                        return ANALYZE_REJ(a, ANALYZE_M_INS_SELECT, x);
                    if (analyze_note_value(a, &v, x) < 0)
                        return -1;
                } else {
                    uint32_t p = analyze_colref(a, x, ie, &q, &cc);
                    if (p && analyze_kw(a, p) == LEX_KW_AS)
                        p++;
                    if (p && p < ie && analyze_is_name(a, p))
                        p++;
                    int t = p == ie && analyze_is_key_name(a, cc) ? analyze_resolve(a, q, top) : -1;
                    if (t < 0 || a->tables[t].block != top || !a->tables[t].base)
                        return ANALYZE_REJ(a, ANALYZE_M_INS_SELECT, x);
                    a->tables[target].keyed = 0;
                    analyze_add_edge(a, t, target);
                }
                found = 1;
            }
            x = ie < sb->sel_e ? ie + 1 : sb->sel_e;
        }
        if (col != ncols)
            return ANALYZE_REJ(a, ANALYZE_M_INS_ROWS, i);
    } else {
        return ANALYZE_REJ(a, ncols < 0 ? ANALYZE_M_INS_COLS : ANALYZE_M_SYNTAX, i);
    }
    if (!found)
        return ANALYZE_REJ(a, ANALYZE_M_INS_KEY, i);
    if (a->have_value)
        a->tables[target].keyed = 1;
    if (odku < e) {
        uint32_t x = odku + 2;
        if (!analyze_kw(a, x) || analyze_kw(a, x) != LEX_KW_KEY ||
            analyze_kw(a, x + 1) != LEX_KW_UPDATE)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, x);
        uint32_t oe = ret > odku ? ret : e;
        if (analyze_assignments(a, x + 2, oe, b, ANALYZE_M_KEY_ODKU,
                                is_select ? ANALYZE_ASSIGN_ODKU_SEL : ANALYZE_ASSIGN_ODKU,
                                &found) < 0)
            return -1;
    }
    if (ret < e && (analyze_scan_expr(a, ret + 1, e, b) < 0 ||
                    analyze_px_select_list(a, ret + 1, e) < 0))
        return -1;
    return analyze_finish(a, 0);
}

/* ---- statements without a shard ---- */

static void analyze_session(struct analyze *a, enum analyze_stmt stmt)
{
    a->out->kind = ANALYZE_SESSION;
    a->out->stmt = stmt;
}

/* Whether tokens [i, e) contain a SELECT (a subquery). */
static int analyze_has_select(const struct analyze *a, uint32_t i, uint32_t e)
{
    for (; i < e; i++)
        if (analyze_kw(a, i) == LEX_KW_SELECT || analyze_kw(a, i) == LEX_KW_WITH)
            return 1;
    return 0;
}

static int analyze_transaction(struct analyze *a)
{
    uint32_t i = 1, e = a->n;
    switch (analyze_kw(a, 0)) {
    case LEX_KW_BEGIN:
        if (analyze_kw(a, i) == LEX_KW_WORK)
            i++;
        if (i != e)
            return ANALYZE_REJ(a, ANALYZE_M_TXN, i);
        analyze_session(a, ANALYZE_STMT_BEGIN);
        return 0;
    case LEX_KW_START:
        if (analyze_kw(a, i) != LEX_KW_TRANSACTION)
            return analyze_reject_kind(a, ANALYZE_M_ADMIN, i);
        i++;
        while (i < e) {
            if (analyze_word(a, i, "READ") &&
                (analyze_word(a, i + 1, "ONLY") || analyze_word(a, i + 1, "WRITE")))
                i += 2;
            else if (analyze_kw(a, i) == LEX_KW_WITH && analyze_word(a, i + 1, "CONSISTENT") &&
                     analyze_word(a, i + 2, "SNAPSHOT"))
                i += 3;
            else
                return ANALYZE_REJ(a, ANALYZE_M_TXN, i);
            if (i < e && analyze_op(a, i, ','))
                i++;
            else if (i < e)
                return ANALYZE_REJ(a, ANALYZE_M_TXN, i);
        }
        analyze_session(a, ANALYZE_STMT_BEGIN);
        return 0;
    case LEX_KW_SAVEPOINT:
        if (!analyze_is_name(a, 1) || a->n != 2)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, 1);
        analyze_session(a, ANALYZE_STMT_SAVEPOINT);
        return 0;
    case LEX_KW_RELEASE:
        if (analyze_kw(a, 1) != LEX_KW_SAVEPOINT || !analyze_is_name(a, 2) || a->n != 3)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, 1);
        analyze_session(a, ANALYZE_STMT_SAVEPOINT);
        return 0;
    default:   /* COMMIT, ROLLBACK */
        break;
    }
    int rollback = analyze_kw(a, 0) == LEX_KW_ROLLBACK;
    if (analyze_kw(a, i) == LEX_KW_WORK)
        i++;
    if (rollback && analyze_kw(a, i) == LEX_KW_TO) {
        i++;
        if (analyze_kw(a, i) == LEX_KW_SAVEPOINT)
            i++;
        if (!analyze_is_name(a, i) || i + 1 != e)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, i);
        analyze_session(a, ANALYZE_STMT_SAVEPOINT);
        return 0;
    }
    if (analyze_kw(a, i) == LEX_KW_AND) {
        i++;
        if (analyze_word(a, i, "NO"))
            i++;
        if (!analyze_word(a, i, "CHAIN"))
            return ANALYZE_REJ(a, ANALYZE_M_TXN, i);
        i++;
    }
    if (i != e)
        return ANALYZE_REJ(a, ANALYZE_M_TXN, i);    /* [NO] RELEASE would drop the backend link */
    analyze_session(a, rollback ? ANALYZE_STMT_ROLLBACK : ANALYZE_STMT_COMMIT);
    return 0;
}

/*
 * Whether the value token <i> names an allowed character set or collation
 * for a session setting. <compares>: the setting decides how statement text
 * is read or how a key literal compares (character_set_client,
 * character_set_connection, collation_connection, NAMES); otherwise only how
 * results are sent (character_set_results).
 *
 * Allowed: utf8mb4, utf8mb3/utf8, ascii and binary (quotes, backslashes and
 * spaces stay single-byte; not latin1: there 0xa0 is whitespace, which the
 * lexer, reading UTF-8, takes for part of a word). With string keys a
 * setting that <compares> must be utf8mb4 or binary: a literal is converted
 * from the client's to the connection's character set before it is compared,
 * and ascii or utf8mb3 turn characters they cannot hold into '?', so the
 * bytes compared would not be the routed key. DEFAULT is never allowed: it
 * means the server's character_set_server, which the analyzer cannot see.
 */
static int analyze_charset_ok(const struct analyze *a, uint32_t i, int compares)
{
    static const char *const cs[] = {"utf8mb4", "binary", "utf8mb3", "utf8", "ascii"};
    size_t n_cs = compares && a->cfg.key_type == ANALYZE_KEY_STRING ? 2 : 5;
    const struct lex_token *t = &a->tok[i];
    const char *s;
    size_t l;
    char buf[ANALYZE_KEY_MAX];
    if (t->type == LEX_STRING) {
        int n = analyze_unescape(a, i, buf);
        if (n < 0)
            return 0;
        s = buf;
        l = (size_t)n;
    } else if (analyze_is_name(a, i)) {
        s = analyze_name(a, i, &l);
    } else {
        return 0;
    }
    for (size_t k = 0; k < n_cs; k++) {
        size_t cl = strlen(cs[k]);
        if (l >= cl && analyze_ci_eq(s, cl, cs[k], cl) && (l == cl || s[cl] == '_'))
            return 1;
    }
    return 0;
}

/* Whether one comma-separated element of a sql_mode string is a mode that
 * leaves the lexer's and analyzer's reading of statements unchanged, or
 * (with <pipes_ok>) PIPES_AS_CONCAT, which the lexer follows. */
static int analyze_mode_ok(const char *s, size_t l, int pipes_ok)
{
    static const char *const modes[] = {
        "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES", "NO_ZERO_IN_DATE", "NO_ZERO_DATE",
        "ERROR_FOR_DIVISION_BY_ZERO", "NO_AUTO_CREATE_USER", "NO_ENGINE_SUBSTITUTION",
        "NO_AUTO_VALUE_ON_ZERO", "ONLY_FULL_GROUP_BY", "TRADITIONAL", "REAL_AS_FLOAT",
        "NO_DIR_IN_CREATE", "NO_FIELD_OPTIONS", "NO_KEY_OPTIONS", "NO_TABLE_OPTIONS",
        "NO_UNSIGNED_SUBTRACTION", "PAD_CHAR_TO_FULL_LENGTH", "ALLOW_INVALID_DATES",
        "SIMULTANEOUS_ASSIGNMENT", "TIME_ROUND_FRACTIONAL", "EMPTY_STRING_IS_NULL",
        "DEFAULT",
    };
    while (l && (*s == ' ')) {
        s++;
        l--;
    }
    while (l && s[l - 1] == ' ')
        l--;
    if (l == 0)
        return 1;
    if (pipes_ok && analyze_ci_eq(s, l, "PIPES_AS_CONCAT", 15))
        return 1;
    for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
        if (analyze_ci_eq(s, l, modes[k], strlen(modes[k])))
            return 1;
    return 0;
}

/* Whether the sql_mode text <s>/<n> holds the element PIPES_AS_CONCAT. */
static int analyze_mode_has_pipes(const char *s, size_t n)
{
    size_t st = 0;
    for (size_t k = 0; k <= n; k++)
        if (k == n || s[k] == ',') {
            const char *e = s + st;
            size_t l = k - st;
            while (l && *e == ' ') {
                e++;
                l--;
            }
            while (l && e[l - 1] == ' ')
                l--;
            if (analyze_ci_eq(e, l, "PIPES_AS_CONCAT", 15))
                return 1;
            st = k + 1;
        }
    return 0;
}

/* Whether the text <s>/<n> contains "PIPES" in any case (a REPLACE that
 * writes or cuts it could make or break PIPES_AS_CONCAT). */
static int analyze_has_pipes_part(const char *s, size_t n)
{
    for (size_t k = 0; k + 5 <= n; k++)
        if (analyze_ci_eq(s + k, 5, "PIPES", 5))
            return 1;
    return 0;
}

/*
 * Whether the sql_mode value [i, e) (already checked by analyze_sql_mode_ok)
 * turns PIPES_AS_CONCAT on: 1 or 0, or -1 when the analyzer cannot tell for
 * certain. <cur> is whether the session has it now (what @@sql_mode holds);
 * the global value never has it (protocol/srvcheck.c). Followed forms: a
 * literal or bare word, @@sql_mode, DEFAULT, CONCAT(x, ',LIT', ...) and
 * CONCAT_WS(',', x, ...) whose later literals start a new element (no
 * literal glued to the end of @@sql_mode), and REPLACE(x, 'MODE', 'LIT')
 * where 'LIT' has no PIPES and 'MODE' is PIPES_AS_CONCAT or has no PIPES.
 * A server error (a glued, invalid mode) leaves the mode unchanged, which
 * the router follows by applying the result only on OK.
 */
static int analyze_mode_eval(const struct analyze *a, uint32_t i, uint32_t e, int cur,
                             unsigned depth)
{
    char buf[ANALYZE_KEY_MAX];
    if (i >= e || depth > 8)
        return -1;
    const struct lex_token *t = &a->tok[i];
    if (e == i + 1) {
        if (t->type == LEX_STRING) {
            int n = analyze_unescape(a, i, buf);
            return n < 0 ? -1 : analyze_mode_has_pipes(buf, (size_t)n);
        }
        if (t->type == LEX_SYSVAR) {
            const char *v = a->sql + t->off + 2;
            return t->len > 9 && (v[0] == 'g' || v[0] == 'G') ? 0 : cur;   /* @@global. */
        }
        if (analyze_kw(a, i) == LEX_KW_DEFAULT)
            return 0;
        if (analyze_is_name(a, i)) {
            size_t l;
            const char *v = analyze_name(a, i, &l);
            return analyze_mode_has_pipes(v, l);
        }
        return -1;
    }
    if (!analyze_op(a, i + 1, '(') || (uint32_t)a->pair[i + 1] != e - 1)
        return -1;
    int concat = analyze_word(a, i, "CONCAT"), ws = analyze_word(a, i, "CONCAT_WS");
    int repl = analyze_kw(a, i) == LEX_KW_REPLACE;
    uint32_t args[3][2];
    unsigned na = 0;
    int p = 0, prev_lit_comma = 1;
    for (uint32_t x = i + 2; x < e - 1;) {
        uint32_t ce = analyze_find_comma(a, x, e - 1);
        if (ce == x)
            return -1;
        if (repl) {
            if (na >= 3)
                return -1;
            args[na][0] = x;
            args[na][1] = ce;
        } else if (ws && na == 0) {
            int n = ce == x + 1 && a->tok[x].type == LEX_STRING ? analyze_unescape(a, x, buf) : -1;
            if (n != 1 || buf[0] != ',')
                return -1;
        } else if (concat || ws) {
            int lit = ce == x + 1 && a->tok[x].type == LEX_STRING;
            int n = lit ? analyze_unescape(a, x, buf) : 0;
            if (n < 0)
                return -1;
            /* in CONCAT a piece must not glue onto the previous one's last
             * element (an empty literal glues nothing) */
            if (concat && na > 0 && !prev_lit_comma && !(lit && (n == 0 || buf[0] == ',')))
                return -1;
            int r = analyze_mode_eval(a, x, ce, cur, depth + 1);
            if (r < 0)
                return -1;
            p |= r;
            prev_lit_comma = lit && n > 0 ? buf[n - 1] == ',' : (lit && prev_lit_comma);
        } else {
            return -1;
        }
        na++;
        x = ce < e - 1 ? ce + 1 : e - 1;
    }
    if (!repl)
        return na > (unsigned)ws ? p : -1;
    if (na != 3 || args[1][1] != args[1][0] + 1 || args[2][1] != args[2][0] + 1 ||
        a->tok[args[1][0]].type != LEX_STRING || a->tok[args[2][0]].type != LEX_STRING)
        return -1;
    int r = analyze_mode_eval(a, args[0][0], args[0][1], cur, depth + 1);
    if (r < 0)
        return -1;
    int n2 = analyze_unescape(a, args[2][0], buf);
    if (n2 < 0 || analyze_has_pipes_part(buf, (size_t)n2))
        return -1;
    int n1 = analyze_unescape(a, args[1][0], buf);
    if (n1 < 0)
        return -1;
    if (analyze_ci_eq(buf, (size_t)n1, "PIPES_AS_CONCAT", 15))
        return 0;
    return analyze_has_pipes_part(buf, (size_t)n1) ? -1 : r;
}

/* A sql_mode value [i, e): literals of known safe modes, @@sql_mode, and
 * CONCAT/CONCAT_WS/REPLACE of those. */
static int analyze_sql_mode_ok(const struct analyze *a, uint32_t i, uint32_t e)
{
    char buf[ANALYZE_KEY_MAX];
    if (i >= e)
        return 0;
    for (; i < e; i++) {
        const struct lex_token *t = &a->tok[i];
        switch (t->type) {
        case LEX_STRING: {
            int n = analyze_unescape(a, i, buf);
            if (n < 0)
                return 0;
            size_t st = 0;
            for (size_t k = 0; k <= (size_t)n; k++)
                if (k == (size_t)n || buf[k] == ',') {
                    if (!analyze_mode_ok(buf + st, k - st, 1))
                        return 0;
                    st = k + 1;
                }
            break;
        }
        case LEX_IDENT:
        case LEX_QIDENT:
            if (analyze_op(a, i + 1, '(')) {
                if (!analyze_word(a, i, "CONCAT") && !analyze_word(a, i, "CONCAT_WS") &&
                    analyze_kw(a, i) != LEX_KW_REPLACE)
                    return 0;
                break;
            }
            {
                size_t l;
                const char *s = analyze_name(a, i, &l);
                if (!analyze_mode_ok(s, l, 1))
                    return 0;
            }
            break;
        case LEX_SYSVAR: {
            const char *s = a->sql + t->off + 2;
            size_t l = t->len - 2;
            if (!(analyze_ci_eq(s, l, "sql_mode", 8) ||
                  analyze_ci_eq(s, l, "session.sql_mode", 16) ||
                  analyze_ci_eq(s, l, "global.sql_mode", 15) ||
                  analyze_ci_eq(s, l, "local.sql_mode", 14)))
                return 0;
            break;
        }
        case LEX_OP:
            if (t->op != '(' && t->op != ')' && t->op != ',')
                return 0;
            break;
        default:
            return 0;
        }
    }
    return 1;
}

/* Which tenant-scope variable the user variable token <i> is (the router's
 * own: @shardwire_user, @shardwire_txn_user, any case and quoting, as
 * MariaDB compares user variable names), or ANALYZE_SCOPE_NONE. */
static int analyze_scope_var(const struct analyze *a, uint32_t i)
{
    const struct lex_token *t = &a->tok[i];
    const char *s = a->sql + t->off + 1;
    size_t l = t->len - 1;
    if (l >= 2 && (s[0] == '\'' || s[0] == '`' || s[0] == '"') && s[l - 1] == s[0]) {
        s++;
        l -= 2;
    }
    if (analyze_ci_eq(s, l, "shardwire_user", 14))
        return ANALYZE_SCOPE_SESSION;
    if (analyze_ci_eq(s, l, "shardwire_txn_user", 18))
        return ANALYZE_SCOPE_TXN;
    return ANALYZE_SCOPE_NONE;
}

/* SET @shardwire_[txn_]user = value: answered by the router (LOCAL), alone
 * in its SET (assignment [i, ie) of [1, e), variable at <x>). The value is
 * a key literal, NULL (ends the scope), or a '?' (<param_index>: the router
 * answers the PREPARE and applies the value bound at each EXECUTE). */
static int analyze_scope_set(struct analyze *a, int scope, uint32_t i, uint32_t x, uint32_t ie,
                             uint32_t e)
{
    struct analyze_result *o = a->out;
    if (i != 1 || ie != e)
        return ANALYZE_REJ(a, ANALYZE_M_SCOPE_SET, x);
    x++;
    if (!(analyze_op(a, x, '=') || analyze_op(a, x, LEX_OP_ASSIGN)))
        return ANALYZE_REJ(a, ANALYZE_M_SCOPE_SET, x);
    x++;
    o->kind = ANALYZE_LOCAL;
    o->scope = (unsigned)scope;
    o->pins_session = 0;    /* the router's own variable: no server state */
    if (analyze_kw(a, x) == LEX_KW_NULL && x + 1 == e) {
        o->scope_clear = 1;
        return 0;
    }
    struct analyze_val v;
    uint32_t nx;
    int r = analyze_value(a, x, e, &nx, &v);
    if (r < 0)
        return -1;
    if (r == 0 || nx != e)
        return ANALYZE_REJ(a, ANALYZE_M_SCOPE_SET, x);
    if (v.param >= 0) {
        o->param_index = v.param;
        return 0;
    }
    memcpy(o->key, v.buf, (size_t)v.len);
    o->key_len = (size_t)v.len;
    return 0;
}

static int analyze_set(struct analyze *a)
{
    struct analyze_result *o = a->out;
    uint32_t i = 1, e = a->n;
    analyze_session(a, ANALYZE_STMT_SET);
    if (analyze_kw(a, i) == LEX_KW_GLOBAL || analyze_kw(a, i) == LEX_KW_PERSIST ||
        analyze_kw(a, i) == LEX_KW_PERSIST_ONLY) {
        return ANALYZE_REJ(a, ANALYZE_M_SET_GLOBAL, i);
    }
    uint32_t t =
        (analyze_kw(a, i) == LEX_KW_SESSION || analyze_kw(a, i) == LEX_KW_LOCAL) ? i + 1 : i;
    if (analyze_kw(a, t) == LEX_KW_TRANSACTION) {
        if (analyze_has_select(a, t, e))
            return ANALYZE_REJ(a, ANALYZE_M_SET_SUBQ, t);
        return 0;
    }
    if (analyze_word(a, i, "PASSWORD") || analyze_word(a, i, "ROLE") ||
        analyze_kw(a, i) == LEX_KW_DEFAULT || analyze_word(a, i, "STATEMENT"))
        return ANALYZE_REJ(a, ANALYZE_M_SET_OTHER, i);
    if (analyze_has_select(a, i, e))
        return ANALYZE_REJ(a, ANALYZE_M_SET_SUBQ, i);
    while (i < e) {
        uint32_t ie = analyze_find_comma(a, i, e);
        uint32_t x = i;
        int kw = analyze_kw(a, x);
        if (kw == LEX_KW_GLOBAL || kw == LEX_KW_PERSIST || kw == LEX_KW_PERSIST_ONLY)
            return ANALYZE_REJ(a, ANALYZE_M_SET_GLOBAL, x);
        if (kw == LEX_KW_SESSION || kw == LEX_KW_LOCAL) {
            x++;
            kw = analyze_kw(a, x);
        }
        if (kw == LEX_KW_NAMES || kw == LEX_KW_CHARSET ||
            (kw == LEX_KW_CHARACTER && analyze_kw(a, x + 1) == LEX_KW_SET)) {
            /* SET CHARACTER SET also sets character_set_connection to the
             * database's character set: unknown here, so with string keys
             * (where it decides what is compared) it is refused */
            if (kw != LEX_KW_NAMES && a->cfg.key_type == ANALYZE_KEY_STRING)
                return ANALYZE_REJ(a, ANALYZE_M_CHARSET, x);
            x += kw == LEX_KW_CHARACTER ? 2 : 1;
            if (x >= ie || !analyze_charset_ok(a, x, 1))
                return ANALYZE_REJ(a, ANALYZE_M_CHARSET, x);
            x++;
            if (x < ie && analyze_kw(a, x) == LEX_KW_COLLATE) {
                if (x + 1 >= ie || !analyze_charset_ok(a, x + 1, 1))
                    return ANALYZE_REJ(a, ANALYZE_M_CHARSET, x + 1);
                x += 2;
            }
            if (x != ie)
                return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, x);
            i = ie < e ? ie + 1 : e;
            continue;
        }
        /* the variable */
        const char *name;
        size_t nl;
        const struct lex_token *vt = &a->tok[x];
        int sc = vt->type == LEX_USERVAR ? analyze_scope_var(a, x) : ANALYZE_SCOPE_NONE;
        if (sc != ANALYZE_SCOPE_NONE)
            return analyze_scope_set(a, sc, i, x, ie, e);
        if (vt->type == LEX_USERVAR) {
            o->pins_session = 1;
            name = NULL;
            nl = 0;
        } else if (vt->type == LEX_SYSVAR) {
            name = a->sql + vt->off + 2;
            nl = vt->len - 2;
            const char *dot = memchr(name, '.', nl);
            if (dot) {
                size_t sl = (size_t)(dot - name);
                if (analyze_ci_eq(name, sl, "global", 6) || analyze_ci_eq(name, sl, "persist", 7) ||
                    analyze_ci_eq(name, sl, "persist_only", 12))
                    return ANALYZE_REJ(a, ANALYZE_M_SET_GLOBAL, x);
                if (!analyze_ci_eq(name, sl, "session", 7) && !analyze_ci_eq(name, sl, "local", 5))
                    return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, x);
                nl -= sl + 1;
                name = dot + 1;
            }
            if (nl >= 2 && name[0] == '`') {
                name++;
                nl -= 2;
            }
        } else if (analyze_is_name(a, x)) {
            name = analyze_name(a, x, &nl);
        } else {
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, x);
        }
        x++;
        if (x >= ie || !(analyze_op(a, x, '=') || analyze_op(a, x, LEX_OP_ASSIGN)))
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, x);
        x++;
        if (x >= ie)
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, x);
        if (name) {
            if (analyze_ci_eq(name, nl, "autocommit", 10)) {
                const struct lex_token *v = &a->tok[x];
                int on = -1;
                if (x + 1 == ie) {
                    if (v->type == LEX_INTEGER && v->len == 1 && (a->sql[v->off] == '0' ||
                                                                  a->sql[v->off] == '1'))
                        on = a->sql[v->off] == '1';
                    else if (analyze_word(a, x, "ON") || analyze_kw(a, x) == LEX_KW_TRUE)
                        on = 1;
                    else if (analyze_word(a, x, "OFF") || analyze_kw(a, x) == LEX_KW_FALSE)
                        on = 0;
                    else if (v->type == LEX_STRING && !(v->flags & LEX_F_NATIONAL)) {
                        char buf[ANALYZE_KEY_MAX];
                        int n = analyze_unescape(a, x, buf);
                        if (n > 0 && (analyze_ci_eq(buf, (size_t)n, "ON", 2) ||
                                      analyze_ci_eq(buf, (size_t)n, "1", 1)))
                            on = 1;
                        else if (n > 0 && (analyze_ci_eq(buf, (size_t)n, "OFF", 3) ||
                                           analyze_ci_eq(buf, (size_t)n, "0", 1)))
                            on = 0;
                    }
                }
                if (on < 0)
                    return ANALYZE_REJ(a, ANALYZE_M_AUTOCOMMIT, x);
                o->sets_autocommit = 1;
                o->autocommit = (unsigned)on;
            } else if (analyze_ci_eq(name, nl, "sql_mode", 8)) {
                /* one sql_mode per SET: the server evaluates every value
                 * before it assigns any, so a second @@sql_mode would read
                 * the old mode */
                int p = o->sets_sql_mode || !analyze_sql_mode_ok(a, x, ie)
                            ? -1
                            : analyze_mode_eval(a, x, ie,
                                                !!(a->modes & ANALYZE_MODE_PIPES_AS_CONCAT), 0);
                if (p < 0)
                    return ANALYZE_REJ(a, ANALYZE_M_SQL_MODE, x);
                o->sets_sql_mode = 1;
                o->sql_mode = p ? ANALYZE_MODE_PIPES_AS_CONCAT : 0;
            } else if (analyze_ci_eq(name, nl, "character_set_client", 20) ||
                       analyze_ci_eq(name, nl, "character_set_connection", 24) ||
                       analyze_ci_eq(name, nl, "character_set_results", 21) ||
                       analyze_ci_eq(name, nl, "collation_connection", 20) ||
                       analyze_ci_eq(name, nl, "character_set_server", 20) ||
                       analyze_ci_eq(name, nl, "collation_server", 16)) {
                /* results may be NULL (no conversion): not read by the lexer.
                 * _server is only the default for new databases (the backend
                 * connection always has the configured database selected, so
                 * it does not decide character_set_database); DBD::MariaDB
                 * sets it at connect */
                int results = analyze_ci_eq(name, nl, "character_set_results", 21) ||
                              analyze_ci_eq(name, nl, "character_set_server", 20) ||
                              analyze_ci_eq(name, nl, "collation_server", 16);
                int null_ok = results && analyze_kw(a, x) == LEX_KW_NULL;
                if (x + 1 != ie || !(null_ok || analyze_charset_ok(a, x, !results)))
                    return ANALYZE_REJ(a, ANALYZE_M_CHARSET, x);
            } else if ((nl >= 14 && analyze_ci_eq(name, 14, "character_set_", 14)) ||
                       (nl >= 10 && analyze_ci_eq(name, 10, "collation_", 10))) {
                /* _database, _server, _filesystem, ...: defaults the
                 * analyzer cannot follow; applications need not change them */
                return ANALYZE_REJ(a, ANALYZE_M_CHARSET, x);
            } else if (analyze_ci_eq(name, nl, "old_mode", 8) ||
                       analyze_ci_eq(name, nl, "old", 3) ||
                       (nl >= 11 && analyze_ci_eq(name, 11, "lower_case_", 11))) {
                /* old_mode UTF8_IS_UTF8MB3 changes what "utf8" names; the
                 * lower_case settings decide how table names compare */
                return ANALYZE_REJ(a, ANALYZE_M_SET_COMPAT, x);
            } else if (analyze_ci_eq(name, nl, "sql_log_bin", 11) ||
                       analyze_ci_eq(name, nl, "sql_log_off", 11) ||
                       analyze_ci_eq(name, nl, "skip_replication", 16) ||
                       analyze_ci_eq(name, nl, "server_id", 9) ||
                       analyze_ci_eq(name, nl, "pseudo_thread_id", 16) ||
                       analyze_ci_eq(name, nl, "pseudo_slave_mode", 17) ||
                       (nl >= 5 && analyze_ci_eq(name, 5, "gtid_", 5)) ||
                       (nl >= 6 && analyze_ci_eq(name, 6, "wsrep_", 6)) ||
                       (nl >= 5 && analyze_ci_eq(name, 5, "debug", 5))) {
                return analyze_reject_kind(a, ANALYZE_M_SET_VAR, x - 2);
            }
        }
        i = ie < e ? ie + 1 : e;
    }
    return 0;
}

static int analyze_dispatch(struct analyze *a, uint32_t i);

/* SHOW ... [LIKE 'pattern' | WHERE expr] from <i> to the end; <like_ok>
 * whether the form takes LIKE (subqueries were refused before). */
static int analyze_show_tail(struct analyze *a, uint32_t i, int like_ok)
{
    uint32_t e = a->n;
    if (i == e)
        return 0;
    if (like_ok && analyze_kw(a, i) == LEX_KW_LIKE && i + 2 == e &&
        a->tok[i + 1].type == LEX_STRING)
        return 0;
    if (analyze_kw(a, i) == LEX_KW_WHERE && i + 1 < e)
        return 0;
    return ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, i);
}

/* Checks the database name token <i> of a SHOW or DESCRIBE: exactly the
 * configured database (a different case may be another database). */
static int analyze_schema_db(struct analyze *a, uint32_t i)
{
    size_t l;
    const char *s = analyze_name(a, i, &l);
    if (a->db_len && l == a->db_len && memcmp(s, a->cfg.database, l) == 0)
        return 0;
    return ANALYZE_REJ(a, ANALYZE_M_OTHER_DB_SHOW, i);
}

/* A table_ident (name or db.name) at <*i>, whose database part must be the
 * configured one; advances <*i> past it. Returns 0, or -1 after a reject. */
static int analyze_show_table(struct analyze *a, uint32_t *i)
{
    uint32_t k = *i;
    if (!analyze_table_word(a, k))
        return ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, k);
    if (analyze_op(a, k + 1, '.')) {
        if (!analyze_is_name(a, k + 2))
            return ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, k + 1);
        if (analyze_schema_db(a, k) < 0)
            return -1;
        k += 2;
    }
    *i = k + 1;
    return 0;
}

/* An optional FROM|IN <database> at <*i>: only the configured database. */
static int analyze_show_db(struct analyze *a, uint32_t *i)
{
    uint32_t k = *i;
    if (analyze_kw(a, k) != LEX_KW_FROM && analyze_kw(a, k) != LEX_KW_IN)
        return 0;
    if (!analyze_is_name(a, k + 1))
        return ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, k + 1);
    if (analyze_schema_db(a, k + 1) < 0)
        return -1;
    *i = k + 2;
    return 0;
}

/*
 * SHOW: an allow-list of forms whose output is the same on every shard and
 * holds no user's rows, each parsed to its end (MariaDB sql_yacc.yy
 * show_param), so a database name can hide nowhere:
 *   WARNINGS|ERRORS [LIMIT ...], COUNT(*) WARNINGS|ERRORS,
 *   [GLOBAL|SESSION|LOCAL] VARIABLES|STATUS, COLLATION, CHARACTER SET|CHARSET,
 *   ENGINES, DATABASES|SCHEMAS  [LIKE|WHERE],
 *   [FULL] TABLES [FROM|IN db] [LIKE|WHERE],
 *   [FULL] COLUMNS|FIELDS FROM|IN tbl [FROM|IN db] [LIKE|WHERE],
 *   INDEX|INDEXES|KEYS FROM|IN tbl [FROM|IN db] [WHERE],
 *   CREATE TABLE tbl, GRANTS [FOR CURRENT_USER [()]].
 * db is only ever the configured database.
 */
static int analyze_show(struct analyze *a)
{
    uint32_t i = 1, e = a->n;
    if (analyze_has_select(a, i, e))
        return ANALYZE_REJ(a, ANALYZE_M_SHOW_SUBQ, i);
    int full = 0, scope = 0;
    if (analyze_word(a, i, "FULL")) {
        full = 1;
        i++;
    }
    if (analyze_kw(a, i) == LEX_KW_GLOBAL || analyze_kw(a, i) == LEX_KW_SESSION ||
        analyze_kw(a, i) == LEX_KW_LOCAL) {
        scope = 1;
        i++;
    }
    int r;
    if (!full && !scope && (analyze_word(a, i, "WARNINGS") || analyze_word(a, i, "ERRORS") ||
                            analyze_word(a, i, "COUNT")))
        a->out->reads_prev_stmt = 1;
    if (!full && !scope && (analyze_word(a, i, "WARNINGS") || analyze_word(a, i, "ERRORS"))) {
        /* [LIMIT n [, n] | LIMIT n OFFSET n] */
        for (uint32_t k = i + 1; k < e; k++)
            if (a->tok[k].type != LEX_INTEGER && !analyze_op(a, k, ',') &&
                analyze_kw(a, k) != LEX_KW_LIMIT && analyze_kw(a, k) != LEX_KW_OFFSET)
                return ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, k);
        r = 0;
    } else if (!full && !scope && analyze_word(a, i, "COUNT") && analyze_op(a, i + 1, '(') &&
               analyze_op(a, i + 2, '*') && analyze_op(a, i + 3, ')') &&
               (analyze_word(a, i + 4, "WARNINGS") || analyze_word(a, i + 4, "ERRORS"))) {
        r = i + 5 == e ? 0 : ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, i + 5);
    } else if (!full && (analyze_word(a, i, "VARIABLES") || analyze_word(a, i, "STATUS"))) {
        /* session status counts the connection's earlier statements
         * (Rows_read, Last_query_cost): maybe another session's */
        if (analyze_word(a, i, "STATUS") && !(scope && analyze_kw(a, i - 1) == LEX_KW_GLOBAL))
            a->out->reads_prev_stmt = 1;
        r = analyze_show_tail(a, i + 1, 1);
    } else if (full || scope) {
        if (scope || !(analyze_word(a, i, "TABLES") || analyze_word(a, i, "COLUMNS") ||
                       analyze_word(a, i, "FIELDS")))
            return analyze_reject_kind(a, ANALYZE_M_SHOW, i);
        goto tables;
    } else if (analyze_word(a, i, "COLLATION") || analyze_word(a, i, "CHARSET") ||
               analyze_word(a, i, "DATABASES") || analyze_word(a, i, "SCHEMAS")) {
        r = analyze_show_tail(a, i + 1, 1);
    } else if (analyze_kw(a, i) == LEX_KW_CHARACTER && analyze_kw(a, i + 1) == LEX_KW_SET) {
        r = analyze_show_tail(a, i + 2, 1);
    } else if (analyze_word(a, i, "ENGINES")) {
        r = i + 1 == e ? 0 : ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, i + 1);
    } else if (analyze_word(a, i, "CREATE") && analyze_kw(a, i + 1) == LEX_KW_TABLE) {
        uint32_t k = i + 2;
        if (analyze_show_table(a, &k) < 0)
            return -1;
        r = k == e ? 0 : ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, k);
    } else if (analyze_word(a, i, "GRANTS")) {
        uint32_t k = i + 1;
        if (analyze_kw(a, k) == LEX_KW_FOR) {
            if (!analyze_word(a, k + 1, "CURRENT_USER"))
                return ANALYZE_REJ(a, ANALYZE_M_SHOW_GRANTS, k + 1);
            k += 2;
            if (analyze_op(a, k, '(') && analyze_op(a, k + 1, ')'))
                k += 2;
        }
        r = k == e ? 0 : ANALYZE_REJ(a, ANALYZE_M_SHOW_GRANTS, k);
    } else if (analyze_word(a, i, "TABLES") || analyze_word(a, i, "COLUMNS") ||
               analyze_word(a, i, "FIELDS") || analyze_word(a, i, "INDEXES") ||
               analyze_word(a, i, "KEYS") || analyze_kw(a, i) == LEX_KW_INDEX) {
        goto tables;
    } else {
        return analyze_reject_kind(a, ANALYZE_M_SHOW, i);
    }
    if (r < 0)
        return -1;
    analyze_session(a, ANALYZE_STMT_SHOW);
    return 0;
tables:
    {
        uint32_t k = i + 1;
        int like_ok = 1;
        if (!analyze_word(a, i, "TABLES")) {
            /* COLUMNS|FIELDS|INDEX|INDEXES|KEYS FROM|IN tbl */
            like_ok = analyze_word(a, i, "COLUMNS") || analyze_word(a, i, "FIELDS");
            if (analyze_kw(a, k) != LEX_KW_FROM && analyze_kw(a, k) != LEX_KW_IN)
                return ANALYZE_REJ(a, ANALYZE_M_SHOW_SYNTAX, k);
            k++;
            if (analyze_show_table(a, &k) < 0)
                return -1;
        }
        if (analyze_show_db(a, &k) < 0 || analyze_show_tail(a, k, like_ok) < 0)
            return -1;
    }
    analyze_session(a, ANALYZE_STMT_SHOW);
    return 0;
}

/*
 * EXPLAIN, DESCRIBE and DESC are one command in MariaDB (sql_yacc.yy
 * `describe`), with two forms:
 *   describe_command table_ident [column | 'wild']          (SHOW COLUMNS)
 *   describe_command [EXTENDED [ALL] | PARTITIONS | FORMAT = JSON|TRADITIONAL]
 *                    { explainable statement | FOR CONNECTION n }
 * The first form wins when the whole rest fits it (EXPLAIN EXTENDED t
 * describes a table called EXTENDED). The explained SELECT is analysed like
 * the SELECT itself; EXPLAIN of writes and FOR CONNECTION (other sessions'
 * statements) are refused.
 */
static int analyze_explain(struct analyze *a)
{
    uint32_t k = 1, e = a->n;
    if (analyze_table_word(a, k)) {
        uint32_t x = k;
        int dotted = analyze_op(a, k + 1, '.');
        if (dotted && !analyze_is_name(a, k + 2))
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, k + 1);
        x = dotted ? k + 3 : k + 1;
        if (x < e && (analyze_table_word(a, x) || a->tok[x].type == LEX_STRING))
            x++;
        if (x == e) {
            if (dotted && analyze_schema_db(a, k) < 0)
                return -1;
            analyze_session(a, ANALYZE_STMT_SHOW);
            return 0;
        }
    }
    if (analyze_word(a, k, "EXTENDED")) {
        k++;
        if (analyze_kw(a, k) == LEX_KW_ALL)
            k++;
    } else if (analyze_word(a, k, "PARTITIONS")) {
        k++;
    } else if (analyze_word(a, k, "FORMAT")) {
        if (!analyze_op(a, k + 1, '='))
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, k + 1);
        char buf[ANALYZE_KEY_MAX];
        const char *s = NULL;
        size_t l = 0;
        if (a->tok[k + 2].type == LEX_STRING) {
            int n = analyze_unescape(a, k + 2, buf);
            if (n >= 0) {
                s = buf;
                l = (size_t)n;
            }
        } else if (analyze_is_name(a, k + 2)) {
            s = analyze_name(a, k + 2, &l);
        }
        if (!s || !(analyze_ci_eq(s, l, "JSON", 4) || analyze_ci_eq(s, l, "TRADITIONAL", 11)))
            return ANALYZE_REJ(a, ANALYZE_M_EXPLAIN_FMT, k + 2);
        k += 3;
    }
    if (analyze_kw(a, k) == LEX_KW_FOR)
        return ANALYZE_REJ(a, ANALYZE_M_EXPLAIN_CONN, k);
    if (analyze_is_query(a, k) || analyze_op(a, k, '('))
        return analyze_dispatch(a, k);
    return ANALYZE_REJ(a, ANALYZE_M_EXPLAIN, k);
}

/* Statement-wide facts that do not depend on structure, checked as each
 * token arrives: session pinning and words that are never allowed. Returns
 * 0, or -1 after a reject. */
static int analyze_token_facts(struct analyze *a, uint32_t i)
{
    struct analyze_result *o = a->out;
    const struct lex_token *t = &a->tok[i];
    if (t->type == LEX_USERVAR) {
        o->pins_session = 1;
    } else if (t->type == LEX_SYSVAR) {
        /* @@[session.|local.]warning_count / error_count */
        const char *s = a->sql + t->off + 2;
        size_t l = t->len - 2;
        const char *dot = memchr(s, '.', l);
        if (dot) {
            l -= (size_t)(dot - s) + 1;
            s = dot + 1;
        }
        if (analyze_ci_eq(s, l, "warning_count", 13) || analyze_ci_eq(s, l, "error_count", 11) ||
            analyze_ci_eq(s, l, "identity", 8) || analyze_ci_eq(s, l, "last_insert_id", 14))
            o->reads_prev_stmt = 1;
    } else if (t->type == LEX_IDENT) {
        switch (t->op) {
        case LEX_KW_SQL_CALC_FOUND_ROWS:
            o->pins_session = 1;
            break;
        case LEX_KW_PROCEDURE:
            return ANALYZE_REJ(a, ANALYZE_M_FEATURE, i);
        case LEX_KW_FOR:
            /* NEXT VALUE FOR s, PREVIOUS VALUE FOR s: sequences */
            if (i >= 2 && analyze_kw(a, i - 1) == LEX_KW_VALUE &&
                (analyze_word(a, i - 2, "NEXT") || analyze_word(a, i - 2, "PREVIOUS")))
                return ANALYZE_REJ(a, ANALYZE_M_SEQUENCE, i - 2);
            break;
        case LEX_KW_OUTFILE:
        case LEX_KW_DUMPFILE:
            return ANALYZE_REJ(a, ANALYZE_M_OUTFILE, i);
        default:
            break;
        }
    }
    return 0;
}

/* Whether name token <i> (a word or `quoted`: MariaDB calls a built-in
 * function written in backquotes just the same) spells <w>, any case. */
static int analyze_fn_is(const struct analyze *a, uint32_t i, const char *w, size_t wl)
{
    size_t l;
    const char *s = analyze_name(a, i, &l);
    return analyze_ci_eq(s, l, w, wl);
}

#define ANALYZE_FN(a, i, lit) analyze_fn_is((a), (i), (lit), sizeof(lit) - 1)

/*
 * The function called by name token <i>, just before the '(' at i+1 (any
 * spelling: bare or backquoted, any case, comments or spaces before the
 * '('). Refuses functions that read files or shared sequences and routines
 * of other databases; pins the session for functions whose effect stays on
 * the backend connection (named locks, FOUND_ROWS). Returns 0, or -1 after
 * a reject.
 */
static int analyze_call_facts(struct analyze *a, uint32_t i)
{
    if (i >= 2 && analyze_op(a, i - 1, '.') && analyze_is_name(a, i - 2)) {
        /* db.routine(...): a stored function of the configured database
         * only (a third part, a.b.c(), is no routine at all) */
        size_t l;
        const char *s = analyze_name(a, i - 2, &l);
        if ((i >= 3 && analyze_op(a, i - 3, '.')) || !a->db_len || l != a->db_len ||
            memcmp(s, a->cfg.database, l) != 0)
            return ANALYZE_REJ(a, ANALYZE_M_OTHER_ROUTINE, i - 2);
    }
    size_t len = a->tok[i].type == LEX_QIDENT ? a->tok[i].len - 2 : a->tok[i].len;
    if (len < 6 || len > 17)            /* SETVAL, ROW_COUNT .. RELEASE_ALL_LOCKS */
        return 0;
    if (ANALYZE_FN(a, i, "LOAD_FILE"))
        return ANALYZE_REJ(a, ANALYZE_M_OUTFILE, i);
    if (ANALYZE_FN(a, i, "NEXTVAL") || ANALYZE_FN(a, i, "SETVAL") ||
        ANALYZE_FN(a, i, "LASTVAL"))
        return ANALYZE_REJ(a, ANALYZE_M_SEQUENCE, i);
    if (ANALYZE_FN(a, i, "GET_LOCK") || ANALYZE_FN(a, i, "RELEASE_LOCK") ||
        ANALYZE_FN(a, i, "RELEASE_ALL_LOCKS") || ANALYZE_FN(a, i, "IS_FREE_LOCK") ||
        ANALYZE_FN(a, i, "IS_USED_LOCK") || ANALYZE_FN(a, i, "FOUND_ROWS"))
        a->out->pins_session = 1;
    /* LAST_INSERT_ID(): the connection's last auto-increment id, maybe
     * another session's (the router does not reset a connection for the
     * id an INSERT leaves; it resets one such a statement lands on) */
    if (ANALYZE_FN(a, i, "FOUND_ROWS") || ANALYZE_FN(a, i, "ROW_COUNT") ||
        ANALYZE_FN(a, i, "LAST_INSERT_ID"))
        a->out->reads_prev_stmt = 1;
    return 0;
}

/* The call whose argument list <open>..<close> just ended: LAST_INSERT_ID
 * with an argument sets the connection's value for later statements (and
 * for whoever gets the connection next), so it pins the session. */
static void analyze_call_end(struct analyze *a, uint32_t open, uint32_t close)
{
    if (open == 0 || close == open + 1 || !analyze_is_name(a, open - 1))
        return;
    if (ANALYZE_FN(a, open - 1, "LAST_INSERT_ID"))
        a->out->pins_session = 1;
}

/* Lexes <sql> into a->tok in one pass that also numbers '?', matches
 * parentheses (pair[] of an open '(' holds the enclosing open one while it
 * waits for its ')'), notes the first ';' and the statement-wide facts.
 * Returns 0, -1 after a reject, or -2 when out of memory. */
static int analyze_tokenize(struct analyze *a, const char *sql, size_t len)
{
    struct lex lx;
    uint32_t n = 0, semi = UINT32_MAX;
    unsigned n_params = 0, depth = 0;
    int32_t open = -1;
    lex_init(&lx, sql, len);
    lex_set_modes(&lx, a->modes & ANALYZE_MODE_PIPES_AS_CONCAT ? LEX_MODE_PIPES_AS_CONCAT : 0);
    for (;;) {
        if (n + 2 > a->cap) {
            size_t nc = a->cap ? a->cap * 2 : 256;
            struct lex_token *nt = realloc(a->tok, nc * sizeof(*nt));
            if (!nt)
                return -2;
            a->tok = nt;
            int32_t *np = realloc(a->pair, nc * sizeof(*np));
            if (!np)
                return -2;
            a->pair = np;
            a->cap = nc;
        }
        /* straight into the array: copying a token the lexer has just
         * written field by field stalls on store forwarding */
        struct lex_token *tp = &a->tok[n];
        int r = lex_next(&lx, tp);
        if (r < 0) {
            struct lex_token tk = *tp;
            static const char *const m[] = {
                [LEX_ERR_NONE] = "shardwire: syntax error",
                [LEX_ERR_STRING] = "shardwire: syntax error: unterminated quoted string",
                [LEX_ERR_IDENT] = "shardwire: syntax error: unterminated `quoted identifier`",
                [LEX_ERR_COMMENT] = "shardwire: syntax error: unterminated comment",
                [LEX_ERR_EXEC_VERSION] = "shardwire: executable comment /*!NNNNN ...*/ with a version MariaDB may skip (50700-99999, or above 101100); use /*! ... */",
                [LEX_ERR_EXEC_NESTED] = "shardwire: syntax error: comment inside an executable comment",
                [LEX_ERR_NUL] = "shardwire: syntax error: NUL byte outside a string (or '--' before byte 0xA0)",
                [LEX_ERR_HEX] = "shardwire: syntax error: malformed hex or bit literal",
                [LEX_ERR_TOKEN] = "shardwire: syntax error: token read differently by MariaDB ('..', a number like 1.5e with no exponent digits, or a non-ASCII byte in an unquoted @variable); rewrite it",
            };
            a->n = n;
            a->tok[n] = tk;
            a->tok[n].type = LEX_END;
            a->rejected = 1;
            a->out->kind = ANALYZE_REJECT;
            a->out->err_no = WIRE_ER_PARSE;
            memcpy(a->out->sqlstate, "42000", 6);
            a->out->msg = tk.op < sizeof(m) / sizeof(m[0]) ? m[tk.op] : m[0];
            a->out->offset = tk.off;
            return -1;
        }
        if (r == 0)
            break;
        a->n = n + 1;       /* the helpers see the tokens so far */
        switch (tp->type) {
        case LEX_PARAM:
            /* the ordinal; past 65535 they share one, so never route by it */
            tp->op = (uint16_t)(n_params < 0xffff ? n_params : 0xffff);
            n_params++;
            break;
        case LEX_OP:
            if (tp->op == '(') {
                if (++depth > a->max_depth)
                    return ANALYZE_REJ(a, ANALYZE_M_DEPTH, n);
                a->pair[n] = open;
                open = (int32_t)n;
                if (n > 0 && analyze_is_name(a, n - 1) && analyze_call_facts(a, n - 1) < 0)
                    return -1;
            } else if (tp->op == ')') {
                if (open < 0)
                    return analyze_reject(a, WIRE_ER_PARSE, ANALYZE_M_PAREN, n);
                int32_t up = a->pair[open];
                a->pair[open] = (int32_t)n;
                a->pair[n] = open;
                analyze_call_end(a, (uint32_t)open, n);
                open = up;
                depth--;
            } else if (tp->op == ';' && semi == UINT32_MAX) {
                semi = n;
            }
            break;
        default:
            if (analyze_token_facts(a, n) < 0)
                return -1;
            break;
        }
        n++;
    }
    a->out->n_params = n_params;
    a->n = n;
    /* a trailing ';' is fine; anything after it is a second statement */
    if (semi != UINT32_MAX) {
        if (semi + 1 < n)
            return ANALYZE_REJ(a, ANALYZE_M_MULTI, semi + 1);
        a->tok[semi] = a->tok[n];
        a->n = n = semi;
    }
    if (n == 0) {
        analyze_reject(a, WIRE_ER_EMPTY_QUERY, ANALYZE_M_EMPTY, 0);
        return -1;
    }
    if (open >= 0)
        return analyze_reject(a, WIRE_ER_PARSE, ANALYZE_M_PAREN, (uint32_t)open);
    return 0;
}

static void analyze_reset(struct analyze *a, const char *sql, struct analyze_result *out)
{
    a->sql = sql;
    a->out = out;
    a->rejected = 0;
    a->depth = 0;
    a->n_tables = a->n_blocks = a->n_edges = a->n_fixes = a->n_cte = 0;
    a->n_seps = 0;
    a->px_assign = 0;
    a->have_value = 0;
    a->value_param = -1;
    a->catalog = 0;
    a->key_type = a->cfg.key_type;
    out->kind = ANALYZE_REJECT;
    out->stmt = ANALYZE_STMT_OTHER;
    out->n_params = 0;
    out->param_index = -1;
    out->key_params = 0;
    out->scope_params = 0;
    out->key_len = 0;
    out->is_write = out->sets_autocommit = out->autocommit = out->pins_session = 0;
    out->allowable = 0;
    out->reads_prev_stmt = 0;
    out->sets_sql_mode = 0;
    out->unconfined = 0;
    out->locks_rows = 0;
    out->scope = ANALYZE_SCOPE_NONE;
    out->scope_clear = 0;
    out->sql_mode = 0;
    out->err_no = 0;
    out->sqlstate[0] = 0;
    out->msg = NULL;
    out->offset = 0;
}

/* Makes the query from token <i> a catalogue query when it names a table
 * of information_schema (`information_schema.t`): then every table it reads
 * must be one of those (analyze_catalog_table()), each limited to the
 * configured database by its schema column. */
static void analyze_catalog_mode(struct analyze *a, uint32_t i)
{
    for (; i + 2 < a->n; i++)
        if (analyze_op(a, i + 1, '.') && analyze_is_infoschema(a, i) &&
            analyze_is_name(a, i + 2) && !analyze_op(a, i + 3, '.') &&
            !(i > 0 && analyze_op(a, i - 1, '.'))) {
            a->catalog = 1;
            a->key_type = ANALYZE_KEY_STRING;
            return;
        }
}

/* The statement at token <i> (after EXPLAIN, the explained one). */
static int analyze_dispatch(struct analyze *a, uint32_t i)
{
    struct analyze_result *o = a->out;
    int kw = analyze_kw(a, i);
    if (i > 0) {
        /* EXPLAIN <stmt>: the DML handlers expect their keyword at index
         * 0, so only queries are supported after EXPLAIN */
        if (kw == LEX_KW_SELECT || kw == LEX_KW_WITH || analyze_op(a, i, '(')) {
            o->stmt = ANALYZE_STMT_SELECT;
            analyze_catalog_mode(a, i);
            if (analyze_query(a, i, a->n, -1) < 0)
                return -1;
            return analyze_finish(a, i);
        }
        return ANALYZE_REJ(a, ANALYZE_M_EXPLAIN, i);
    }
    switch (kw) {
    case LEX_KW_SELECT:
    case LEX_KW_WITH:
        o->stmt = ANALYZE_STMT_SELECT;
        analyze_catalog_mode(a, 0);
        if (analyze_query(a, 0, a->n, -1) < 0)
            return -1;
        return analyze_finish(a, 0);
    case LEX_KW_UPDATE:
        return analyze_update(a);
    case LEX_KW_DELETE:
        return analyze_delete(a);
    case LEX_KW_INSERT:
    case LEX_KW_REPLACE:
        return analyze_insert(a);
    case LEX_KW_BEGIN:
    case LEX_KW_START:
    case LEX_KW_COMMIT:
    case LEX_KW_ROLLBACK:
    case LEX_KW_SAVEPOINT:
    case LEX_KW_RELEASE:
        return analyze_transaction(a);
    case LEX_KW_SET:
        return analyze_set(a);
    case LEX_KW_SHOW:
        return analyze_show(a);
    case LEX_KW_USE: {
        size_t l;
        if (a->n != 2 || !analyze_is_name(a, 1))
            return ANALYZE_REJ(a, ANALYZE_M_SYNTAX, 1);
        const char *s = analyze_name(a, 1, &l);
        if (!a->db_len || l != a->db_len || memcmp(s, a->cfg.database, l) != 0)
            return analyze_reject(a, WIRE_ER_DBACCESS_DENIED, ANALYZE_M_USE_DB, 1);
        o->kind = ANALYZE_LOCAL;
        o->stmt = ANALYZE_STMT_USE;
        return 0;
    }
    case LEX_KW_DO:
        if (analyze_has_select(a, 1, a->n))
            return ANALYZE_REJ(a, ANALYZE_M_DO_SUBQ, 1);
        analyze_session(a, ANALYZE_STMT_DO);
        return 0;
    case LEX_KW_EXPLAIN:
    case LEX_KW_DESCRIBE:
    case LEX_KW_DESC:
        return analyze_explain(a);
    default:
        /* MariaDB's ANALYZE <stmt> runs the statement and reports row
         * counts: it is that statement (ANALYZE TABLE is admin, below) */
        if (analyze_word(a, 0, "ANALYZE") && analyze_kw(a, 1) != LEX_KW_TABLE &&
            !analyze_word(a, 1, "NO_WRITE_TO_BINLOG") && analyze_kw(a, 1) != LEX_KW_LOCAL) {
            uint32_t k = 1;
            if (analyze_word(a, k, "FORMAT") && analyze_op(a, k + 1, '=') &&
                analyze_is_name(a, k + 2))
                k += 3;
            if (analyze_kw(a, k) == LEX_KW_FOR)
                return ANALYZE_REJ(a, ANALYZE_M_EXPLAIN_CONN, k);
            if (analyze_is_query(a, k) || analyze_op(a, k, '('))
                return analyze_dispatch(a, k);
            return ANALYZE_REJ(a, ANALYZE_M_EXPLAIN, k);
        }
        break;
    }
    if (analyze_op(a, 0, '(')) {
        o->stmt = ANALYZE_STMT_SELECT;
        if (analyze_query(a, 0, a->n, -1) < 0)
            return -1;
        return analyze_finish(a, 0);
    }
    if (a->tok[0].type == LEX_IDENT) {
        /* <kind>: refused for its kind only, touches no table rows;
         * <wr>: if an operator allows it, a write all the same: it goes to
         * the binary log (GRANT, FLUSH, OPTIMIZE ... unless LOCAL), so its
         * commit waits for a standby, and on a deposed master it would
         * change what the new one lacks (or, RESET and PURGE, remove the
         * log); when unsure, a write */
        static const struct { const char *w; const char *m; int kind; int wr;
        } cls[] = {
            {"CREATE", ANALYZE_M_DDL, 0, 0},
            {"ALTER", ANALYZE_M_DDL, 0, 0},
            {"DROP", ANALYZE_M_DDL, 0, 0},
            {"TRUNCATE", ANALYZE_M_DDL, 0, 0},
            {"RENAME", ANALYZE_M_DDL, 0, 0},
            {"LOAD", ANALYZE_M_LOAD, 0, 0},
            {"LOCK", ANALYZE_M_LOCK, 0, 0},
            {"UNLOCK", ANALYZE_M_LOCK, 0, 0},
            {"GRANT", ANALYZE_M_ADMIN, 1, 1},
            {"REVOKE", ANALYZE_M_ADMIN, 1, 1},
            {"FLUSH", ANALYZE_M_ADMIN, 1, 1},
            {"KILL", ANALYZE_M_ADMIN, 1, 0},
            {"SHUTDOWN", ANALYZE_M_ADMIN, 1, 0},
            {"RESET", ANALYZE_M_ADMIN, 1, 1},
            {"PURGE", ANALYZE_M_ADMIN, 1, 1},
            {"CHANGE", ANALYZE_M_ADMIN, 1, 1},
            {"INSTALL", ANALYZE_M_ADMIN, 1, 1},
            {"UNINSTALL", ANALYZE_M_ADMIN, 1, 1},
            {"ANALYZE", ANALYZE_M_ADMIN, 1, 1},
            {"OPTIMIZE", ANALYZE_M_ADMIN, 1, 1},
            {"REPAIR", ANALYZE_M_ADMIN, 1, 1},
            {"CHECK", ANALYZE_M_ADMIN, 1, 0},
            {"CACHE", ANALYZE_M_ADMIN, 1, 0},
            {"STOP", ANALYZE_M_ADMIN, 1, 0},
            /* these read or write rows (checksums, binlog events) or hold
             * transaction state across statements */
            {"CHECKSUM", ANALYZE_M_ADMIN, 0, 0},
            {"BINLOG", ANALYZE_M_ADMIN, 0, 0},
            {"BACKUP", ANALYZE_M_ADMIN, 0, 0},
            {"XA", ANALYZE_M_ADMIN, 0, 0},
            {"HANDLER", ANALYZE_M_HANDLER, 0, 0},
            {"CALL", ANALYZE_M_CALL, 0, 0},
            {"PREPARE", ANALYZE_M_PREPARE, 0, 0},
            {"EXECUTE", ANALYZE_M_PREPARE, 0, 0},
            {"DEALLOCATE", ANALYZE_M_PREPARE, 0, 0},
        };
        for (size_t k = 0; k < sizeof(cls) / sizeof(cls[0]); k++) {
            if (!analyze_word(a, 0, cls[k].w))
                continue;
            o->is_write = cls[k].wr;
            return cls[k].kind ? analyze_reject_kind(a, cls[k].m, 0)
                               : ANALYZE_REJ(a, cls[k].m, 0);
        }
    }
    if (kw == LEX_KW_LOCK)
        return ANALYZE_REJ(a, ANALYZE_M_LOCK, 0);
    if (kw == LEX_KW_VALUES || kw == LEX_KW_TABLE)
        return ANALYZE_REJ(a, ANALYZE_M_FEATURE, 0);
    return ANALYZE_REJ(a, ANALYZE_M_UNKNOWN, 0);
}

int analyze_statement(struct analyze *a, const char *sql, size_t len,
                      struct analyze_result *out)
{
    analyze_reset(a, sql, out);
    if (len >= UINT32_MAX) {
        ANALYZE_REJ(a, ANALYZE_M_TOO_LONG, 0);
        return 0;
    }
    int r = analyze_tokenize(a, sql, len);
    if (r == -2) {
        a->n = 0;
        analyze_reset(a, sql, out);
        out->kind = ANALYZE_REJECT;
        out->err_no = ANALYZE_ER_OUT_OF_RESOURCES;
        memcpy(out->sqlstate, "HY000", 6);
        out->msg = ANALYZE_M_OOM;
        return -1;
    }
    if (r < 0)
        return 0;
    analyze_dispatch(a, 0);
    if (out->kind != ANALYZE_ROUTE && !(out->kind == ANALYZE_LOCAL && out->scope)) {
        out->param_index = -1;
        out->key_params = 0;
        out->scope_params = 0;
        out->key_len = 0;
    }
    return 0;
}

void analyze_config_default(struct analyze_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->key_columns[0], "userid");
    cfg->n_key_columns = 1;
    cfg->key_type = ANALYZE_KEY_INT;
    cfg->max_depth = 0;
}

struct analyze *analyze_new(const struct analyze_config *cfg)
{
    struct analyze *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cfg = *cfg;
    if (a->cfg.n_key_columns == 0 || a->cfg.n_key_columns > ANALYZE_MAX_KEY_COLS) {
        a->cfg.n_key_columns = 1;
        strcpy(a->cfg.key_columns[0], "userid");
    }
    for (unsigned k = 0; k < a->cfg.n_key_columns; k++) {
        a->cfg.key_columns[k][ANALYZE_NAME_MAX - 1] = 0;
        a->key_col_len[k] = strlen(a->cfg.key_columns[k]);
    }
    a->cfg.database[ANALYZE_NAME_MAX - 1] = 0;
    a->db_len = strlen(a->cfg.database);
    a->max_depth = a->cfg.max_depth ? a->cfg.max_depth : 256;
    if (a->max_depth > ANALYZE_DEPTH_CAP)
        a->max_depth = ANALYZE_DEPTH_CAP;
    return a;
}

/* Byte offset just past token <k>. */
static uint32_t analyze_tok_end(const struct analyze *a, uint32_t k)
{
    return a->tok[k].off + a->tok[k].len;
}

int analyze_scope_tables(const struct analyze *a, struct analyze_scope_table *out,
                         unsigned max)
{
    unsigned n = 0;
    if (!a->out || !a->out->unconfined)
        return -1;
    for (uint32_t t = 0; t < a->n_tables; t++) {
        const struct analyze_table *tb = &a->tables[t];
        if (!tb->base || tb->target)
            continue;
        const struct analyze_block *b = &a->blocks[tb->block];
        if (tb->noscope || tb->qual < 0 || n >= max)
            return -1;
        struct analyze_scope_table *o = &out[n++];
        o->qual_off = a->tok[tb->qual].off;
        o->qual_len = a->tok[tb->qual].len;
        if (tb->nullable) {
            if (tb->on_s >= tb->on_e)
                return -1;      /* USING or no ON: no condition to extend */
            o->where = 0;
            o->at = a->tok[tb->on_s].off;
            o->close = analyze_tok_end(a, tb->on_e - 1);
        } else {
            if (!b->spot || b->where_s == 0)
                return -1;
            o->where = 1;
            if (b->where_s < b->where_e) {
                o->at = a->tok[b->where_s].off;
                o->close = analyze_tok_end(a, b->where_e - 1);
            } else {
                o->at = o->close = analyze_tok_end(a, b->where_s - 1);
            }
        }
    }
    return (int)n;
}

const struct analyze_config *analyze_config_of(const struct analyze *a)
{
    return &a->cfg;
}

void analyze_set_sql_mode(struct analyze *a, unsigned modes)
{
    a->modes = modes & ANALYZE_MODE_PIPES_AS_CONCAT;
}

void analyze_set_param_key(struct analyze *a, const char *key, size_t len)
{
    a->param_key_len = len <= ANALYZE_KEY_MAX ? len : 0;
    if (a->param_key_len)
        memcpy(a->param_key, key, len);
}

void analyze_free(struct analyze *a)
{
    if (!a)
        return;
    free(a->tok);
    free(a->pair);
    free(a);
}

bool analyze_sql_mode_safe(const char *modes, size_t len)
{
    size_t st = 0;

    for (size_t k = 0; k <= len; k++) {
        if (k == len || modes[k] == ',') {
            if (!analyze_mode_ok(modes + st, k - st, 0))
                return false;
            st = k + 1;
        }
    }
    return true;
}
