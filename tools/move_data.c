/*
 * tools/move_data.c - the MariaDB side of a vbucket move (move_data.h).
 * Blocking Connector/C calls on shardctl's one thread; never used by the
 * router. Statements are built here from names read out of
 * information_schema (quoted as identifiers) and values as literals the
 * server itself produced (numbers) or hex (everything else).
 */
#include "tools/move_data.h"

#include <errno.h>
#include <inttypes.h>
#include <mariadb_rpl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack: no malloc per row */
#include <xxhash.h>

#include "protocol/binlog.h"
#include "shardmap/errmsg.h"
#include "shardmap/smap.h"
#include "shardmap/vbucket.h"

#define MV_BATCH_BYTES (4u << 20)   /* a statement stays far below max_allowed_packet */
#define MV_LOCK_TRIES  5            /* tries of a chunk that loses to a lock (write_chunk) */
#define MV_LOCK_WAIT_S "10"         /* innodb_lock_wait_timeout of every mover session */

/* ---- a growable text buffer --------------------------------------------- */

struct sbuf {
    char  *p;
    size_t len, cap;
    bool   oom;
};

static void sb_reserve(struct sbuf *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *n = realloc(b->p, cap);
    if (!n) {
        b->oom = true;
        return;
    }
    b->p = n;
    b->cap = cap;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* `name` with backquotes doubled. */
static void sb_ident(struct sbuf *b, const char *name)
{
    sb_put(b, "`", 1);
    for (const char *p = name; *p; p++)
        sb_put(b, *p == '`' ? "``" : p, *p == '`' ? 2 : 1);
    sb_put(b, "`", 1);
}

static void sb_hex(struct sbuf *b, const char *v, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    sb_reserve(b, 3 + 2 * n);
    if (b->oom)
        return;
    if (n == 0) {
        sb_puts(b, "''");
        return;
    }
    b->p[b->len++] = 'X';
    b->p[b->len++] = '\'';
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = hx[(unsigned char)v[i] >> 4];
        b->p[b->len++] = hx[(unsigned char)v[i] & 15];
    }
    b->p[b->len++] = '\'';
    b->p[b->len] = '\0';
}

/* A value the text protocol gave: NULL, a number as the server wrote it,
 * or the bytes in hex. A "number" that is not one is hexed too, so nothing
 * but digits and signs reaches the statement unquoted. */
static void sb_value(struct sbuf *b, const char *v, unsigned long n, bool num)
{
    if (v == NULL) {
        sb_puts(b, "NULL");
        return;
    }
    bool plain = num && n > 0;
    for (unsigned long i = 0; plain && i < n; i++)
        plain = (v[i] >= '0' && v[i] <= '9') || v[i] == '-' || v[i] == '+' || v[i] == '.' ||
                v[i] == 'e' || v[i] == 'E';
    if (plain)
        sb_put(b, v, n);
    else
        sb_hex(b, v, n);
}

static void sb_free(struct sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- statements --------------------------------------------------------- */

static int run(MYSQL *m, const char *sql, char **errp)
{
    if (mysql_query(m, sql) != 0) {
        errmsg_set(errp, "%s (error %u) in: %.200s", mysql_error(m), mysql_errno(m), sql);
        return -1;
    }
    MYSQL_RES *r = mysql_store_result(m);
    mysql_free_result(r);
    return 0;
}

static int run_sb(MYSQL *m, struct sbuf *b, char **errp)
{
    if (b->oom) {
        errmsg_set(errp, "out of memory");
        return -1;
    }
    if (mysql_real_query(m, b->p, b->len) != 0) {
        errmsg_set(errp, "%s (error %u) in: %.200s", mysql_error(m), mysql_errno(m), b->p);
        return -1;
    }
    MYSQL_RES *r = mysql_store_result(m);
    mysql_free_result(r);
    return 0;
}

/* Runs <sql> and returns its whole result, or NULL with *<errp>. */
static MYSQL_RES *query(MYSQL *m, const char *sql, char **errp)
{
    if (mysql_query(m, sql) != 0) {
        errmsg_set(errp, "%s (error %u) in: %.200s", mysql_error(m), mysql_errno(m), sql);
        return NULL;
    }
    MYSQL_RES *r = mysql_store_result(m);
    if (r == NULL)
        errmsg_set(errp, "no result: %s in: %.200s", mysql_error(m), sql);
    return r;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sleeps so that <done> rows since <t0_ms> do not exceed <rate> per second. */
static void throttle(unsigned rate, uint64_t done, uint64_t t0_ms)
{
    if (rate == 0)
        return;
    uint64_t due = t0_ms + done * 1000u / rate, now = mono_ms();
    if (due > now) {
        struct timespec ts = { (time_t)((due - now) / 1000), (long)((due - now) % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void say(const struct mv_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const struct mv_ctx *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (!c->progress)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    c->progress(c->progress_arg, line);
}

/* Tells the caller how far the step got (mv_ctx.on_count). */
static void counted(struct mv_ctx *c)
{
    if (c->on_count)
        c->on_count(c->progress_arg, &c->count);
}

MYSQL *mv_connect(const struct mv_ctx *c, const struct smap_endpoint *ep, const char *what,
                  char **errp)
{
    char addr[SMAP_ENDPOINT_STR_MAX];
    unsigned connect_s = 5, rw_s = 600;
    MYSQL *m = mysql_init(NULL);

    smap_format_endpoint(ep, addr, sizeof(addr));
    if (!m) {
        errmsg_set(errp, "out of memory");
        return NULL;
    }
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rw_s);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rw_s);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* several statements in one round trip: the exact-key batches (sb_key_delete) */
    if (!mysql_real_connect(m, ep->host, c->user, c->password, c->db, ep->port, NULL,
                            CLIENT_MULTI_STATEMENTS)) {
        errmsg_set(errp, "%s %s: %s (error %u)", what, addr, mysql_error(m), mysql_errno(m));
        mysql_close(m);
        return NULL;
    }
    /* the server's own bytes both ways (file comment); a long scan that is
     * throttled must not be cut by the server's write timeout; a chunk that
     * waits for a lock gives up soon and is tried again (write_chunk) */
    char *err = NULL;
    if (run(m, "SET SESSION character_set_results = binary, net_write_timeout = 3600, "
               "net_read_timeout = 3600, foreign_key_checks = 0, sql_mode = "
               "CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO'), innodb_lock_wait_timeout = "
               MV_LOCK_WAIT_S, &err) < 0) {
        errmsg_set(errp, "%s %s: %s", what, addr, err);
        free(err);
        mysql_close(m);
        return NULL;
    }
    return m;
}

/* ---- which tables move ---------------------------------------------------- */

static bool type_in(const char *t, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(t, *list) == 0)
            return true;
    return false;
}

static const char *const num_types[] = { "tinyint", "smallint", "mediumint", "int", "bigint",
                                         "decimal", "float", "double", "year", NULL };
static const char *const key_types[] = { "tinyint", "smallint", "mediumint", "int", "bigint",
                                         "char", "varchar", "binary", "varbinary", NULL };

/* Reads the columns and primary key of <db>.<name> on <m> into <t>.
 * Returns 1 when found, 0 when the table does not exist, -1 on error. */
static int read_table(MYSQL *m, const char *db, const char *name, struct mv_table *t,
                      char **types, char **errp)
{
    char edb[200], ename[200], sql[800];
    MYSQL_RES *r;
    MYSQL_ROW row;

    mysql_real_escape_string(m, edb, db, (unsigned long)strnlen(db, 64));
    mysql_real_escape_string(m, ename, name, (unsigned long)strnlen(name, 64));
    snprintf(sql, sizeof(sql), "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM "
             "information_schema.COLUMNS "
             "WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION",
             edb, ename);
    if (!(r = query(m, sql, errp)))
        return -1;
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->n_cols = (unsigned)mysql_num_rows(r);
    if (t->n_cols == 0) {
        mysql_free_result(r);
        return 0;
    }
    t->cols = calloc(t->n_cols, sizeof(*t->cols));
    t->num = calloc(t->n_cols, sizeof(*t->num));
    t->uns = calloc(t->n_cols, sizeof(*t->uns));
    t->bin_len = calloc(t->n_cols, sizeof(*t->bin_len));
    if (!t->cols || !t->num || !t->uns || !t->bin_len) {
        mysql_free_result(r);
        errmsg_set(errp, "out of memory");
        return -1;
    }
    for (unsigned i = 0; (row = mysql_fetch_row(r)) && i < t->n_cols; i++) {
        snprintf(t->cols[i], sizeof(t->cols[i]), "%s", row[0] ? row[0] : "");
        t->num[i] = row[1] && type_in(row[1], num_types);
        t->uns[i] = row[2] && strstr(row[2], "unsigned") != NULL;
        if (row[1] && row[2] && strcmp(row[1], "binary") == 0 &&
            sscanf(row[2], "binary(%u)", &t->bin_len[i]) != 1)
            t->bin_len[i] = 0;
        if (types)
            types[i] = strdup(row[1] ? row[1] : "");
    }
    mysql_free_result(r);
    snprintf(sql, sizeof(sql), "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE "
             "TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' AND INDEX_NAME = 'PRIMARY' ORDER BY "
             "SEQ_IN_INDEX", edb, ename);
    if (!(r = query(m, sql, errp)))
        return -1;
    while ((row = mysql_fetch_row(r)) && t->n_pk < MV_MAX_PK)
        for (unsigned i = 0; i < t->n_cols; i++)
            if (row[0] && strcmp(t->cols[i], row[0]) == 0)
                t->pk[t->n_pk++] = i;
    mysql_free_result(r);
    return 1;
}

static void table_fini(struct mv_table *t)
{
    free(t->cols);
    free(t->num);
    free(t->uns);
    free(t->bin_len);
    t->cols = NULL;
    t->num = NULL;
    t->uns = NULL;
    t->bin_len = NULL;
}

void mv_tables_free(struct mv_ctx *c)
{
    for (unsigned i = 0; i < c->n_tables; i++)
        table_fini(&c->tables[i]);
    free(c->tables);
    c->tables = NULL;
    c->n_tables = 0;
}

/* Checks what a move needs of table <t> (types[] from read_table). */
static int check_table(struct mv_ctx *c, struct mv_table *t, char **types, char **errp)
{
    bool found = false;
    for (unsigned k = 0; k < c->n_key_columns && !found; k++)
        for (unsigned i = 0; i < t->n_cols && !found; i++)
            if (strcasecmp(t->cols[i], c->key_columns[k]) == 0) {
                t->key_col = i;
                found = true;
            }
    if (!found) {
        errmsg_set(errp, "table %s.%s has no shard-key column (%s%s): a move cannot tell "
                   "whose rows are whose; nothing was changed", c->db, t->name,
                   c->key_columns[0], c->n_key_columns > 1 ? ", ..." : "");
        return -1;
    }
    if (!type_in(types[t->key_col], key_types)) {
        errmsg_set(errp, "table %s.%s: key column %s has type %s (moves handle integer and "
                   "string keys)", c->db, t->name, t->cols[t->key_col], types[t->key_col]);
        return -1;
    }
    if (t->n_pk == 0) {
        errmsg_set(errp, "table %s.%s has no primary key: a move needs one to apply changes "
                   "row by row; nothing was changed", c->db, t->name);
        return -1;
    }
    static const char *const exact_types[] = { "tinyint", "smallint", "mediumint", "int",
                                               "bigint", "varchar", "varbinary", NULL };
    t->pk_exact = true;
    for (unsigned i = 0; i < t->n_pk; i++) {
        t->pk_exact = t->pk_exact && type_in(types[t->pk[i]], exact_types);
        if (!type_in(types[t->pk[i]], key_types)) {
            errmsg_set(errp, "table %s.%s: primary key column %s has type %s (moves handle "
                       "integer and string primary keys)", c->db, t->name,
                       t->cols[t->pk[i]], types[t->pk[i]]);
            return -1;
        }
    }
    return 0;
}

int mv_discover(struct mv_ctx *c, MYSQL *src, MYSQL *dst, const char *dst_name, char **errp)
{
    char edb[200], sql[600];
    MYSQL_RES *r;
    MYSQL_ROW row;
    int rc = -1;

    mysql_real_escape_string(src, edb, c->db, (unsigned long)strnlen(c->db, 64));
    snprintf(sql, sizeof(sql), "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
             "TABLE_SCHEMA = '%s' AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", edb);
    if (!(r = query(src, sql, errp)))
        return -1;
    unsigned n = (unsigned)mysql_num_rows(r);
    c->tables = calloc(n ? n : 1, sizeof(*c->tables));
    if (!c->tables) {
        mysql_free_result(r);
        errmsg_set(errp, "out of memory");
        return -1;
    }
    while ((row = mysql_fetch_row(r))) {
        struct mv_table *t = &c->tables[c->n_tables], d;
        char **types = NULL;
        int found;

        if (!row[0] || strlen(row[0]) > 64)
            continue;
        memset(&d, 0, sizeof(d));
        types = calloc(1024, sizeof(*types));
        found = types ? read_table(src, c->db, row[0], t, types, errp) : -1;
        if (found > 0)
            c->n_tables++;
        if (found > 0)
            found = check_table(c, t, types, errp) < 0 ? -1 : 1;
        for (unsigned i = 0; types && i < 1024; i++)
            free(types[i]);
        free(types);
        if (found < 0)
            goto out;
        found = read_table(dst, c->db, row[0], &d, NULL, errp);
        if (found < 0)
            goto out;
        if (found == 0) {
            errmsg_set(errp, "destination %s has no table %s.%s: create it there first (same "
                       "columns); nothing was changed", dst_name, c->db, row[0]);
            table_fini(&d);
            goto out;
        }
        bool same = d.n_cols == t->n_cols;
        for (unsigned i = 0; same && i < d.n_cols; i++)
            same = strcmp(d.cols[i], t->cols[i]) == 0;
        table_fini(&d);
        if (!same) {
            errmsg_set(errp, "destination %s: table %s.%s has other columns than on the "
                       "source; nothing was changed", dst_name, c->db, row[0]);
            goto out;
        }
    }
    if (c->n_tables == 0) {
        errmsg_set(errp, "database %s on the source has no tables: nothing to move", c->db);
        goto out;
    }
    rc = 0;
out:
    mysql_free_result(r);
    if (rc < 0)
        mv_tables_free(c);
    return rc;
}

/* ---- rows ----------------------------------------------------------------- */

/* True when a row whose key column holds <v>/<n> belongs to a moving
 * vbucket. The server writes integers in canonical form (no '+', no leading
 * zeros), the analyzer's form; a NULL key belongs to no user. */
static bool key_moving(const struct mv_ctx *c, const char *v, size_t n)
{
    return v != NULL && c->moving[vbucket_of(v, n, c->n_vbuckets)];
}

static void sb_columns(struct sbuf *b, const struct mv_table *t)
{
    for (unsigned i = 0; i < t->n_cols; i++) {
        if (i)
            sb_puts(b, ", ");
        sb_ident(b, t->cols[i]);
    }
}

static void sb_select_all(struct sbuf *b, const struct mv_ctx *c, const struct mv_table *t)
{
    sb_puts(b, "SELECT ");
    sb_columns(b, t);
    sb_puts(b, " FROM ");
    sb_ident(b, c->db);
    sb_puts(b, ".");
    sb_ident(b, t->name);
}

static void sb_insert_head(struct sbuf *b, const struct mv_ctx *c, const struct mv_table *t)
{
    b->len = 0;
    sb_puts(b, "INSERT INTO ");
    sb_ident(b, c->db);
    sb_puts(b, ".");
    sb_ident(b, t->name);
    sb_puts(b, " (");
    sb_columns(b, t);
    sb_puts(b, ") VALUES ");
}

static void sb_row(struct sbuf *b, const struct mv_table *t, MYSQL_ROW row,
                   const unsigned long *lens, bool first)
{
    sb_puts(b, first ? "(" : ", (");
    for (unsigned i = 0; i < t->n_cols; i++) {
        if (i)
            sb_puts(b, ", ");
        sb_value(b, row[i], lens[i], t->num[i]);
    }
    sb_puts(b, ")");
}

/* "(pk1, pk2)" or "pk" for IN lists. */
static void sb_pk_cols(struct sbuf *b, const struct mv_table *t)
{
    if (t->n_pk > 1)
        sb_puts(b, "(");
    for (unsigned i = 0; i < t->n_pk; i++) {
        if (i)
            sb_puts(b, ", ");
        sb_ident(b, t->cols[t->pk[i]]);
    }
    if (t->n_pk > 1)
        sb_puts(b, ")");
}

/*
 * Exact-key statements. A row-IN list (`(a, b) IN ((1, 2), ...)`) lets the
 * optimizer choose a full scan (a small table, or 500+ keys turned into a
 * semi-join): a locking read or a DELETE by scan locks every row it reads,
 * so it waits for any open transaction on the table, users that do not
 * move included (docs/moves.md, "Locks"). One statement per key on the
 * whole primary key is always a const lookup: record locks on those rows
 * only, whatever the table's size.
 */

/* "`a` = 1 AND `b` = X'..'" from the primary key literal <lit> that
 * sb_pk_literal() or note_row() made: "v" or "(v1, v2, ...)", each value
 * digits, NULL or a hex or empty string, so ", " only ever separates. */
static void sb_pk_match(struct sbuf *b, const struct mv_table *t, const char *lit)
{
    const char *p = lit;
    if (t->n_pk > 1 && *p == '(')
        p++;
    for (unsigned i = 0; i < t->n_pk; i++) {
        const char *end = i + 1 < t->n_pk ? strstr(p, ", ") : NULL;
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (!end && t->n_pk > 1 && n > 0 && p[n - 1] == ')')
            n--;
        if (i)
            sb_puts(b, " AND ");
        sb_ident(b, t->cols[t->pk[i]]);
        sb_puts(b, " = ");
        sb_put(b, p, n);
        p = end ? end + 2 : p + n;
    }
}

/* The rows of <t> with keys <keys>/<n>, read with shared locks on those
 * rows only: (SELECT .. WHERE <key> LOCK IN SHARE MODE) UNION ALL ... */
static void sb_key_select_locked(struct sbuf *b, const struct mv_ctx *c,
                                 const struct mv_table *t, char **keys, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        sb_puts(b, i ? " UNION ALL (" : "(");
        sb_select_all(b, c, t);
        sb_puts(b, " WHERE ");
        sb_pk_match(b, t, keys[i]);
        sb_puts(b, " LOCK IN SHARE MODE)");
    }
}

/* Appends "DELETE FROM <t> WHERE <key>;" for the key literal <lit>. */
static void sb_key_delete(struct sbuf *b, const struct mv_ctx *c, const struct mv_table *t,
                          const char *lit)
{
    sb_puts(b, "DELETE FROM ");
    sb_ident(b, c->db);
    sb_puts(b, ".");
    sb_ident(b, t->name);
    sb_puts(b, " WHERE ");
    sb_pk_match(b, t, lit);
    sb_puts(b, ";");
}

/* Runs the statements of <b> (several, separated by ';') and reads every
 * result; stops at the first error. */
static int run_multi(MYSQL *m, struct sbuf *b, char **errp)
{
    if (b->oom) {
        errmsg_set(errp, "out of memory");
        return -1;
    }
    int st = mysql_real_query(m, b->p, b->len);
    while (st == 0) {
        mysql_free_result(mysql_store_result(m));
        st = mysql_next_result(m);   /* 0: another result, -1: the last was read */
    }
    if (st > 0) {
        errmsg_set(errp, "%s (error %u) in: %.200s", mysql_error(m), mysql_errno(m), b->p);
        return -1;
    }
    return 0;
}

/* Whether the last error on <m> was a lock wait timeout (1205) or a
 * deadlock (1213): the statement lost to another transaction's locks and
 * may be retried. */
static bool lost_lock(MYSQL *m)
{
    return mysql_errno(m) == 1205 || mysql_errno(m) == 1213;
}

/* Forgets the message of a try that is tried again. */
static void forget_err(char **errp)
{
    if (errp) {
        free(*errp);
        *errp = NULL;
    }
}

/* Sleeps before try <n> (2, 3, ...) of a chunk that lost to a lock. */
static void lock_backoff(unsigned n)
{
    struct timespec ts = { (time_t)(n - 1), 0 };
    nanosleep(&ts, NULL);
}

/* Runs the statements of <b> (<multi>: several, run_multi) in one
 * transaction on <m>: a chunk of <n> rows of table <table> that cleanup,
 * the copy or an abort writes. A chunk that loses to another transaction's
 * locks (a lock wait timeout or a deadlock) is rolled back and tried again,
 * MV_LOCK_TRIES times in all, saying so (each waits MV_LOCK_WAIT_S at
 * most). Errors are left for the caller to prefix with the
 * server and table. */
static int write_chunk(struct mv_ctx *c, MYSQL *m, struct sbuf *b, bool multi,
                       const char *table, unsigned n, char **errp)
{
    for (unsigned n_try = 1;; n_try++) {
        if (run(m, "START TRANSACTION", errp) == 0 &&
            (multi ? run_multi(m, b, errp) : run_sb(m, b, errp)) == 0 &&
            run(m, "COMMIT", errp) == 0)
            return 0;
        bool locked = lost_lock(m);
        run(m, "ROLLBACK", NULL);
        if (!locked)
            return -1;
        if (n_try == MV_LOCK_TRIES) {
            errmsg_prefix(errp, "%u rows still locked by another transaction after %u tries "
                          "(a client writing them on this server directly? see SHOW ENGINE "
                          "INNODB STATUS there; run the command again once it is gone)",
                          n, n_try);
            return -1;
        }
        say(c, "table %s: %u rows wait for a lock another transaction holds (%s); trying "
            "again (%u of %u)", table, n, errp && *errp ? *errp : "-", n_try + 1,
            MV_LOCK_TRIES);
        forget_err(errp);
        lock_backoff(n_try + 1);
    }
}

/* Commits one batch of rows on <dst>. */
static int flush_insert(struct mv_ctx *c, MYSQL *dst, const struct mv_table *t,
                        struct sbuf *b, unsigned *in_batch, char **errp)
{
    if (*in_batch == 0)
        return 0;
    if (write_chunk(c, dst, b, false, t->name, *in_batch, errp) < 0)
        return -1;
    *in_batch = 0;
    return 0;
}

static int snapshot_pos(MYSQL *src, struct mv_pos *at, char **errp)
{
    MYSQL_RES *r = query(src, "SHOW STATUS LIKE 'binlog_snapshot_%'", errp);
    MYSQL_ROW row;
    if (!r)
        return -1;
    memset(at, 0, sizeof(*at));
    while ((row = mysql_fetch_row(r))) {
        if (row[0] && row[1] && strcasecmp(row[0], "Binlog_snapshot_file") == 0)
            snprintf(at->file, sizeof(at->file), "%s", row[1]);
        else if (row[0] && row[1] && strcasecmp(row[0], "Binlog_snapshot_position") == 0)
            at->pos = strtoull(row[1], NULL, 10);
    }
    mysql_free_result(r);
    if (at->file[0] == '\0') {
        errmsg_set(errp, "the source has no binary log (log_bin=OFF): a move needs it for "
                   "catch-up");
        return -1;
    }
    return 0;
}

static void gtid_of(MYSQL *m, struct mv_pos *at)
{
    char sql[700], ef[420];
    char *err = NULL;
    mysql_real_escape_string(m, ef, at->file, (unsigned long)strlen(at->file));
    snprintf(sql, sizeof(sql), "SELECT BINLOG_GTID_POS('%s', %" PRIu64 ")", ef, at->pos);
    MYSQL_RES *r = query(m, sql, &err);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    snprintf(at->gtid, sizeof(at->gtid), "%s", row && row[0] ? row[0] : "");
    mysql_free_result(r);
    free(err);
}

/* The rows the moving tables hold on <src> by its statistics (InnoDB's
 * estimate, often 10-40% off): the copy reads them all, so it is what an
 * ETA is measured against. 0 when unknown. */
static uint64_t scan_estimate(const struct mv_ctx *c, MYSQL *src)
{
    struct sbuf b = { 0 };
    uint64_t total = 0;
    char *err = NULL;
    sb_puts(&b, "SELECT COALESCE(SUM(TABLE_ROWS), 0) FROM information_schema.TABLES WHERE "
            "TABLE_SCHEMA = '");
    sb_puts(&b, c->db);     /* checked by shardctl: [A-Za-z0-9_$] only */
    sb_puts(&b, "'");
    MYSQL_RES *r = b.oom ? NULL : query(src, b.p, &err);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (row && row[0])
        total = strtoull(row[0], NULL, 10);
    mysql_free_result(r);
    sb_free(&b);
    free(err);
    return total;
}

int mv_copy(struct mv_ctx *c, MYSQL *src, MYSQL *dst, struct mv_pos *at, uint64_t *rows,
            char **errp)
{
    struct sbuf b = { 0 };
    uint64_t t0 = mono_ms(), seen = 0;
    int rc = -1;

    *rows = 0;
    c->count.step = MV_STEP_COPY;
    c->count.estimate = c->on_count ? scan_estimate(c, src) : 0;
    uint64_t done0 = c->count.done, read0 = c->count.read;
    if (run(src, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", errp) < 0 ||
        run(src, "START TRANSACTION WITH CONSISTENT SNAPSHOT", errp) < 0 ||
        snapshot_pos(src, at, errp) < 0)
        goto out;
    gtid_of(src, at);
    say(c, "copy: snapshot of the source at %s:%" PRIu64 " (gtid %s)", at->file, at->pos,
        at->gtid[0] ? at->gtid : "-");
    for (unsigned ti = 0; ti < c->n_tables; ti++) {
        const struct mv_table *t = &c->tables[ti];
        struct sbuf sel = { 0 };
        unsigned in_batch = 0;
        uint64_t table_rows = 0;

        sb_select_all(&sel, c, t);
        if (sel.oom || mysql_real_query(src, sel.p, sel.len) != 0) {
            errmsg_set(errp, "source: %s (error %u) reading %s", mysql_error(src),
                       mysql_errno(src), t->name);
            sb_free(&sel);
            goto out;
        }
        sb_free(&sel);
        MYSQL_RES *r = mysql_use_result(src);
        MYSQL_ROW row;
        if (!r) {
            errmsg_set(errp, "source: %s reading %s", mysql_error(src), t->name);
            goto out;
        }
        /* throttled: batches of a tenth of a second's rows */
        unsigned chunk = c->rate && c->rate / 10 < c->chunk_rows
                             ? (c->rate / 10 ? c->rate / 10 : 1) : c->chunk_rows;
        sb_insert_head(&b, c, t);
        while ((row = mysql_fetch_row(r))) {
            unsigned long *lens = mysql_fetch_lengths(r);
            seen++;
            if (!key_moving(c, row[t->key_col], lens[t->key_col]))
                continue;
            sb_row(&b, t, row, lens, in_batch == 0);
            in_batch++;
            table_rows++;
            if (in_batch >= chunk || b.len >= MV_BATCH_BYTES) {
                if (flush_insert(c, dst, t, &b, &in_batch, errp) < 0) {
                    mysql_free_result(r);
                    errmsg_prefix(errp, "destination, table %s", t->name);
                    goto out;
                }
                sb_insert_head(&b, c, t);
                throttle(c->rate, *rows + table_rows, t0);
                c->count.done = done0 + *rows + table_rows;
                c->count.read = read0 + seen;
                counted(c);
            }
        }
        if (mysql_errno(src)) {
            errmsg_set(errp, "source: %s (error %u) reading %s", mysql_error(src),
                       mysql_errno(src), t->name);
            mysql_free_result(r);
            goto out;
        }
        mysql_free_result(r);
        if (flush_insert(c, dst, t, &b, &in_batch, errp) < 0) {
            errmsg_prefix(errp, "destination, table %s", t->name);
            goto out;
        }
        *rows += table_rows;
        throttle(c->rate, *rows, t0);
        c->count.done = done0 + *rows;
        c->count.read = read0 + seen;
        counted(c);
        say(c, "copy: table %s: %" PRIu64 " rows copied (%" PRIu64 " scanned so far)", t->name,
            table_rows, seen);
    }
    if (run(src, "COMMIT", errp) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        run(src, "ROLLBACK", NULL);
    sb_free(&b);
    return rc;
}

int mv_count_rows(struct mv_ctx *c, MYSQL *conn, double *rows, char **errp)
{
    for (unsigned ti = 0; ti < c->n_tables; ti++) {
        const struct mv_table *t = &c->tables[ti];
        struct sbuf sel = { 0 };
        sb_puts(&sel, "SELECT ");
        sb_ident(&sel, t->cols[t->key_col]);
        sb_puts(&sel, " FROM ");
        sb_ident(&sel, c->db);
        sb_puts(&sel, ".");
        sb_ident(&sel, t->name);
        if (sel.oom || mysql_real_query(conn, sel.p, sel.len) != 0) {
            errmsg_set(errp, "%s (error %u) reading %s", mysql_error(conn), mysql_errno(conn),
                       t->name);
            sb_free(&sel);
            return -1;
        }
        sb_free(&sel);
        MYSQL_RES *r = mysql_use_result(conn);
        MYSQL_ROW row;
        if (!r) {
            errmsg_set(errp, "%s reading %s", mysql_error(conn), t->name);
            return -1;
        }
        while ((row = mysql_fetch_row(r))) {
            unsigned long *lens = mysql_fetch_lengths(r);
            if (row[0])
                rows[vbucket_of(row[0], lens[0], c->n_vbuckets)] += 1;
        }
        bool bad = mysql_errno(conn) != 0;
        if (bad)
            errmsg_set(errp, "%s (error %u) reading %s", mysql_error(conn), mysql_errno(conn),
                       t->name);
        mysql_free_result(r);
        if (bad)
            return -1;
    }
    return 0;
}

/* Runs <sql> and fetches its first row into *<row> (NULL: none); errors
 * name <what>. Returns the result to free, or NULL with *<errp>. */
static MYSQL_RES *query_first(MYSQL *m, const char *sql, const char *what, MYSQL_ROW *row,
                              char **errp)
{
    MYSQL_RES *r = query(m, sql, errp);
    *row = r ? mysql_fetch_row(r) : NULL;
    if (!r)
        errmsg_prefix(errp, "%s", what);
    return r;
}

int mv_binlog_end(MYSQL *src, struct mv_pos *at, char **errp)
{
    MYSQL_ROW row;
    MYSQL_RES *r = query_first(src, "SHOW MASTER STATUS", "source", &row, errp);
    if (!r)
        return -1;
    memset(at, 0, sizeof(*at));
    if (row && row[0] && row[1]) {
        snprintf(at->file, sizeof(at->file), "%s", row[0]);
        at->pos = strtoull(row[1], NULL, 10);
    }
    mysql_free_result(r);
    if (!at->file[0]) {
        errmsg_set(errp, "SHOW MASTER STATUS: no binary log on the source");
        return -1;
    }
    /* no BINLOG_GTID_POS() here: it reads the log from the file's start,
     * and this runs while vbuckets are frozen */
    return 0;
}

int mv_binlog_behind(MYSQL *src, const struct mv_pos *at, uint64_t *behind, char **errp)
{
    MYSQL_RES *r = query(src, "SHOW BINARY LOGS", errp);
    MYSQL_ROW row;
    bool seen = false;
    if (!r)
        return -1;
    *behind = 0;
    /* listed oldest first; names sort as they were created */
    while ((row = mysql_fetch_row(r))) {
        if (!row[0] || !row[1])
            continue;
        uint64_t size = strtoull(row[1], NULL, 10);
        int cmp = strcmp(row[0], at->file);
        if (cmp == 0) {
            seen = true;
            *behind += size > at->pos ? size - at->pos : 0;
        } else if (cmp > 0) {
            *behind += size > 4 ? size - 4 : 0;   /* after its 4-byte magic */
        }
    }
    mysql_free_result(r);
    if (!seen) {
        errmsg_set(errp, "SHOW BINARY LOGS: the source no longer has %s", at->file);
        return -1;
    }
    return 0;
}

int mv_check_writable(MYSQL *m, const char *what, char **errp)
{
    MYSQL_ROW row;
    MYSQL_RES *r = query_first(m, "SELECT @@global.read_only", what, &row, errp);
    if (!r)
        return -1;
    bool ro = row && row[0] && strcmp(row[0], "0") != 0;
    mysql_free_result(r);
    if (ro) {
        errmsg_set(errp, "%s is read-only (a standby, or a master a failover or switchover "
                   "replaced?): nothing is written there", what);
        return -1;
    }
    return 0;
}

/* ---- catch-up ------------------------------------------------------------- */

/* The primary keys of the rows changed since the last flush, per table, as
 * SQL literals ("(1, X'61')" or "1"), deduplicated at flush. */
struct changed {
    char   **keys;
    unsigned n, cap;
};

static int changed_add(struct changed *ch, const char *lit, size_t n)
{
    if (ch->n == ch->cap) {
        unsigned cap = ch->cap ? ch->cap * 2 : 256;
        char **k = realloc(ch->keys, cap * sizeof(*k));
        if (!k)
            return -1;
        ch->keys = k;
        ch->cap = cap;
    }
    ch->keys[ch->n] = strndup(lit, n);
    return ch->keys[ch->n] ? (int)++ch->n : -1;
}

static void changed_clear(struct changed *ch)
{
    for (unsigned i = 0; i < ch->n; i++)
        free(ch->keys[i]);
    ch->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copies the rows with the keys <keys>/<n> of table <t> again from <src>'s
 * current state: one transaction on <dst> deletes them and inserts those
 * the source still holds in a moving vbucket. Both sides by exact key
 * (sb_pk_match): locks on those rows only. Returns 0, -1 with *<errp>, or
 * -2 with *<errp> when a statement lost to another transaction's locks. */
static int recopy(struct mv_ctx *c, const struct mv_table *t, MYSQL *src, MYSQL *dst,
                  char **keys, unsigned n, uint64_t *changed, char **errp)
{
    struct sbuf q = { 0 }, ins = { 0 };
    MYSQL_RES *r = NULL;
    MYSQL_ROW row;
    unsigned n_ins = 0;
    int rc = -1;

    /* A locking read: the binary log can show a transaction before its rows
     * are committed in InnoDB (the dump thread sends it after the log
     * write, the engine commits after); a consistent read could miss such a
     * row and it would never be copied. The lock waits for that commit. */
    sb_key_select_locked(&q, c, t, keys, n);
    if (q.oom || mysql_real_query(src, q.p, q.len) != 0 || !(r = mysql_store_result(src))) {
        errmsg_set(errp, "source: %s (error %u) re-reading %s", mysql_error(src),
                   mysql_errno(src), t->name);
        rc = lost_lock(src) ? -2 : -1;
        goto out;
    }
    sb_insert_head(&ins, c, t);
    while ((row = mysql_fetch_row(r))) {
        unsigned long *lens = mysql_fetch_lengths(r);
        if (!key_moving(c, row[t->key_col], lens[t->key_col]))
            continue;
        sb_row(&ins, t, row, lens, n_ins == 0);
        n_ins++;
    }
    q.len = 0;
    for (unsigned i = 0; i < n; i++)
        sb_key_delete(&q, c, t, keys[i]);
    if (run(dst, "START TRANSACTION", errp) < 0 || run_multi(dst, &q, errp) < 0 ||
        (n_ins && run_sb(dst, &ins, errp) < 0) || run(dst, "COMMIT", errp) < 0) {
        rc = lost_lock(dst) ? -2 : -1;
        run(dst, "ROLLBACK", NULL);
        errmsg_prefix(errp, "destination, table %s", t->name);
        goto out;
    }
    *changed += n;
    rc = 0;
out:
    mysql_free_result(r);
    sb_free(&q);
    sb_free(&ins);
    return rc;
}

/* ---- the row check (mv_verify) --------------------------------------------- */

/* Order-independent per-row hash: each column as (null flag, length, bytes),
 * never 0 (0 means "no row" in struct mv_verify). */
static uint64_t row_hash(const struct mv_table *t, MYSQL_ROW row, const unsigned long *lens)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    for (unsigned i = 0; i < t->n_cols; i++) {
        uint8_t head[5] = { row[i] ? 1 : 0, (uint8_t)(lens[i] >> 24), (uint8_t)(lens[i] >> 16),
                            (uint8_t)(lens[i] >> 8), (uint8_t)lens[i] };
        XXH3_64bits_update(&st, head, sizeof(head));
        if (row[i])
            XXH3_64bits_update(&st, row[i], lens[i]);
    }
    uint64_t h = XXH3_64bits_digest(&st);
    return h ? h : 1;
}

/* The primary key of <row> as the literal note_row() makes of a binary log
 * row image (pk_exact tables: the same bytes). */
static void sb_pk_literal(struct sbuf *b, const struct mv_table *t, MYSQL_ROW row,
                          const unsigned long *lens)
{
    b->len = 0;
    if (t->n_pk > 1)
        sb_puts(b, "(");
    for (unsigned i = 0; i < t->n_pk; i++) {
        if (i)
            sb_puts(b, ", ");
        sb_value(b, row[t->pk[i]], lens[t->pk[i]], t->num[t->pk[i]]);
    }
    if (t->n_pk > 1)
        sb_puts(b, ")");
}

/* One row key: its hash on each side (0: no such row of a moving vbucket). */
struct vrow {
    uint64_t key;        /* hash of (table, primary key literal); 0: free slot */
    uint64_t side[2];    /* 0 source, 1 destination */
    uint32_t table;
};

/* always: differ[t] = rows of table t whose side[0] != side[1];
 * rows[t][s] = rows of table t with side[s] != 0 */
struct mv_verify {
    struct vrow *slot;
    size_t       cap, used;     /* cap a power of two, used <= cap * 3 / 4 */
    uint64_t    *differ;        /* [n_tables] */
    uint64_t   (*rows)[2];      /* [n_tables] */
    char       (*example)[120]; /* [n_tables] a primary key that last became different */
    unsigned     n_tables;
    bool         oom;
};

static uint64_t vkey(unsigned table, const char *lit, size_t n)
{
    uint64_t k = XXH3_64bits_withSeed(lit, n, (uint64_t)table + 1);
    return k ? k : 1;
}

static struct vrow *vfind(struct mv_verify *v, uint64_t key)
{
    if (v->used + 1 > v->cap / 4 * 3) {
        size_t cap = v->cap ? v->cap * 2 : 1u << 16;
        struct vrow *n = calloc(cap, sizeof(*n));
        if (!n) {
            v->oom = true;
            return NULL;
        }
        for (size_t i = 0; i < v->cap; i++) {
            if (!v->slot[i].key)
                continue;
            size_t j = v->slot[i].key & (cap - 1);
            while (n[j].key)
                j = (j + 1) & (cap - 1);
            n[j] = v->slot[i];
        }
        free(v->slot);
        v->slot = n;
        v->cap = cap;
    }
    size_t j = key & (v->cap - 1);
    while (v->slot[j].key && v->slot[j].key != key)
        j = (j + 1) & (v->cap - 1);
    if (!v->slot[j].key) {
        v->slot[j].key = key;
        v->used++;
    }
    return &v->slot[j];
}

/* Records that side <s> holds <hash> (0: nothing) under <key> of <table>,
 * whose primary key literal is <lit>/<n> (kept as an example if it now
 * differs). */
static void vset(struct mv_verify *v, unsigned table, uint64_t key, int s, uint64_t hash,
                 const char *lit, size_t n)
{
    struct vrow *r = vfind(v, key);
    if (!r)
        return;
    if (r->side[0] == 0 && r->side[1] == 0)
        r->table = table;
    table = r->table;
    v->differ[table] -= r->side[0] != r->side[1];
    v->rows[table][s] -= r->side[s] != 0;
    r->side[s] = hash;
    v->differ[table] += r->side[0] != r->side[1];
    v->rows[table][s] += hash != 0;
    if (r->side[0] != r->side[1])
        snprintf(v->example[table], sizeof(v->example[table]), "%.*s",
                 (int)(n < 100 ? n : 100), lit);
}

/* Hashes the moving vbuckets' rows that <sql> returns on <conn> into side <s>. */
static int vread(struct mv_ctx *c, struct mv_verify *v, unsigned ti, MYSQL *conn, int s,
                 struct sbuf *sql, const char *what, char **errp)
{
    const struct mv_table *t = &c->tables[ti];
    struct sbuf lit = { 0 };
    MYSQL_RES *r;
    MYSQL_ROW row;

    if (sql->oom || mysql_real_query(conn, sql->p, sql->len) != 0 ||
        !(r = mysql_use_result(conn))) {
        errmsg_set(errp, "%s: %s (error %u) checking %s", what, mysql_error(conn),
                   mysql_errno(conn), t->name);
        return -1;
    }
    while ((row = mysql_fetch_row(r))) {
        unsigned long *lens = mysql_fetch_lengths(r);
        if (!key_moving(c, row[t->key_col], lens[t->key_col]))
            continue;
        sb_pk_literal(&lit, t, row, lens);
        vset(v, ti, vkey(ti, lit.p ? lit.p : "", lit.len), s, row_hash(t, row, lens),
             lit.p ? lit.p : "", lit.len);
    }
    int rc = 0;
    if (mysql_errno(conn)) {
        errmsg_set(errp, "%s: %s (error %u) checking %s", what, mysql_error(conn),
                   mysql_errno(conn), t->name);
        rc = -1;
    } else if (v->oom || lit.oom) {
        errmsg_set(errp, "out of memory (row check of %s)", t->name);
        rc = -1;
    }
    mysql_free_result(r);
    sb_free(&lit);
    return rc;
}

bool mv_verify_usable(const struct mv_ctx *c)
{
    for (unsigned i = 0; i < c->n_tables; i++)
        if (!c->tables[i].pk_exact)
            return false;
    return c->n_tables > 0;
}

void mv_verify_free(struct mv_verify *v)
{
    if (!v)
        return;
    free(v->slot);
    free(v->differ);
    free(v->rows);
    free(v->example);
    free(v);
}

int mv_verify_scan(struct mv_ctx *c, MYSQL *src, MYSQL *dst, struct mv_verify **out,
                   char **errp)
{
    struct mv_verify *v = calloc(1, sizeof(*v));
    struct sbuf q = { 0 };

    *out = NULL;
    if (v) {
        v->n_tables = c->n_tables;
        v->differ = calloc(c->n_tables ? c->n_tables : 1, sizeof(*v->differ));
        v->rows = calloc(c->n_tables ? c->n_tables : 1, sizeof(*v->rows));
        v->example = calloc(c->n_tables ? c->n_tables : 1, sizeof(*v->example));
    }
    if (!v || !v->differ || !v->rows || !v->example) {
        mv_verify_free(v);
        errmsg_set(errp, "out of memory");
        return -1;
    }
    for (unsigned ti = 0; ti < c->n_tables; ti++) {
        q.len = 0;
        sb_select_all(&q, c, &c->tables[ti]);
        if (vread(c, v, ti, src, 0, &q, "source", errp) < 0 ||
            vread(c, v, ti, dst, 1, &q, "destination", errp) < 0) {
            sb_free(&q);
            mv_verify_free(v);
            return -1;
        }
    }
    sb_free(&q);
    *out = v;
    return 0;
}

int mv_verify_result(const struct mv_ctx *c, const struct mv_verify *v, uint64_t *rows,
                     char *msg, size_t cap)
{
    *rows = 0;
    for (unsigned ti = 0; ti < v->n_tables && ti < c->n_tables; ti++) {
        if (v->differ[ti]) {
            snprintf(msg, cap, "table %s: %" PRIu64 " rows differ (source %" PRIu64
                     " rows, destination %" PRIu64 "; e.g. primary key %s)",
                     c->tables[ti].name, v->differ[ti], v->rows[ti][0], v->rows[ti][1],
                     v->example[ti]);
            return -1;
        }
        *rows += v->rows[ti][0];
    }
    return 0;
}

/* After rows <keys>/<n> of table <ti> were copied again: reads them by key
 * on both sides and records their hashes (a key that is on neither side,
 * deleted, is recorded as no row). */
static int verify_keys(struct mv_ctx *c, unsigned ti, MYSQL *src, MYSQL *dst, char **keys,
                       unsigned n, char **errp)
{
    const struct mv_table *t = &c->tables[ti];
    struct mv_verify *v = c->verify;
    struct sbuf q = { 0 };
    int rc = -1;

    for (unsigned i = 0; i < n; i++) {
        size_t n_lit = strlen(keys[i]);
        uint64_t k = vkey(ti, keys[i], n_lit);
        vset(v, ti, k, 0, 0, keys[i], n_lit);
        vset(v, ti, k, 1, 0, keys[i], n_lit);
    }
    sb_select_all(&q, c, t);
    sb_puts(&q, " WHERE ");
    sb_pk_cols(&q, t);
    sb_puts(&q, " IN (");
    for (unsigned i = 0; i < n; i++) {
        if (i)
            sb_puts(&q, ", ");
        sb_puts(&q, keys[i]);
    }
    sb_puts(&q, ")");
    /* a consistent read on <dst> locks nothing: the IN list is fine there */
    if (vread(c, v, ti, dst, 1, &q, "destination", errp) == 0) {
        q.len = 0;
        sb_key_select_locked(&q, c, t, keys, n);   /* as recopy(): committed rows only */
        if (vread(c, v, ti, src, 0, &q, "source", errp) == 0)
            rc = 0;
    }
    sb_free(&q);
    return rc;
}

static int flush_changed(struct mv_ctx *c, struct changed *ch, MYSQL *src, MYSQL *dst,
                         uint64_t *changed, char **errp)
{
    for (unsigned ti = 0; ti < c->n_tables; ti++) {
        struct changed *x = &ch[ti];
        unsigned u = 0;
        if (x->n == 0)
            continue;
        qsort(x->keys, x->n, sizeof(*x->keys), cmp_str);
        for (unsigned i = 0; i < x->n; i++) {
            if (u && strcmp(x->keys[u - 1], x->keys[i]) == 0) {
                free(x->keys[i]);
                continue;
            }
            x->keys[u++] = x->keys[i];
        }
        x->n = u;
        for (unsigned i = 0; i < x->n; i += c->chunk_rows) {
            unsigned k = x->n - i < c->chunk_rows ? x->n - i : c->chunk_rows;
            for (unsigned n_try = 1;; n_try++) {
                int r = recopy(c, &c->tables[ti], src, dst, x->keys + i, k, changed, errp);
                if (r == 0)
                    break;
                if (r == -1 || n_try == MV_LOCK_TRIES) {
                    if (n_try > 1)
                        errmsg_prefix(errp, "after %u tries", n_try);
                    return -1;
                }
                say(c, "table %s: %u changed rows wait for a lock another transaction "
                    "holds (%s); trying again (%u of %u)", c->tables[ti].name, k,
                    errp && *errp ? *errp : "-", n_try + 1, MV_LOCK_TRIES);
                forget_err(errp);
                lock_backoff(n_try + 1);
            }
            c->count.done += k;
            if (c->verify && verify_keys(c, ti, src, dst, x->keys + i, k, errp) < 0)
                return -1;
            counted(c);
        }
        changed_clear(x);
    }
    return 0;
}

/* The literal of value <v> of column <i> of <t> (integer or string: the
 * key and primary key columns) into <lit>; the key bytes the router hashes
 * into <key>/<key_len> (NULL for a NULL). Returns 0, or -1 for a value this
 * cannot render. */
static int bin_value(const struct mv_table *t, unsigned i, uint8_t type,
                     const struct binlog_value *v, struct sbuf *lit, char *kb,
                     const char **key, size_t *key_len)
{
    if (v->is_null) {
        sb_puts(lit, "NULL");
        *key = NULL;
        *key_len = 0;
        return 0;
    }
    if (binlog_type_is_int(type)) {
        int n = binlog_int_text(type, v, t->uns[i], kb);
        if (n < 0)
            return -1;
        sb_put(lit, kb, (size_t)n);
        *key = kb;
        *key_len = (size_t)n;
        return 0;
    }
    if (t->bin_len[i] > v->len) {
        /* BINARY(n): the row image dropped the trailing 0x00 bytes the
         * column holds; without them the literal matches no row */
        size_t n = t->bin_len[i];
        uint8_t *padded = calloc(n, 1);
        if (!padded)
            return -1;
        memcpy(padded, v->p, v->len);
        sb_hex(lit, (const char *)padded, n);
        free(padded);
    } else {
        sb_hex(lit, (const char *)v->p, v->len);
    }
    *key = (const char *)v->p;
    *key_len = v->len;
    return 0;
}

/* Notes the primary key of one row image of table <t> when it belongs to a
 * moving vbucket. */
static int note_row(struct mv_ctx *c, const struct mv_table *t, const struct binlog_table *bt,
                    const struct binlog_value *vals, struct changed *ch, char **errp)
{
    char kb[32];
    const char *key;
    size_t key_len;
    struct sbuf lit = { 0 };
    int rc = -1;

    if (bin_value(t, t->key_col, bt->types[t->key_col], &vals[t->key_col], &lit, kb, &key,
                  &key_len) < 0)
        goto type;
    if (!key || !c->moving[vbucket_of(key, key_len, c->n_vbuckets)]) {
        sb_free(&lit);
        return 0;
    }
    lit.len = 0;
    if (t->n_pk > 1)
        sb_puts(&lit, "(");
    for (unsigned i = 0; i < t->n_pk; i++) {
        if (i)
            sb_puts(&lit, ", ");
        if (bin_value(t, t->pk[i], bt->types[t->pk[i]], &vals[t->pk[i]], &lit, kb, &key,
                      &key_len) < 0)
            goto type;
    }
    if (t->n_pk > 1)
        sb_puts(&lit, ")");
    if (lit.oom || changed_add(ch, lit.p, lit.len) < 0) {
        errmsg_set(errp, "out of memory");
        goto out;
    }
    rc = 0;
    goto out;
type:
    errmsg_set(errp, "binary log: table %s: a key or primary key value of a type moves do "
               "not handle", t->name);
out:
    sb_free(&lit);
    return rc;
}

#define MV_MAX_MAPS 64

/* The table maps of the transaction being read (their ids are valid until
 * it ends); <table> is the index in ctx->tables, -1 for a table not ours. */
struct table_maps {
    struct binlog_table *map[MV_MAX_MAPS];
    int                  table[MV_MAX_MAPS];
    unsigned             n;
};

static void maps_free(struct table_maps *tm)
{
    for (unsigned i = 0; i < MV_MAX_MAPS; i++)
        free(tm->map[i]);
    tm->n = 0;
}

/* Handles one ROWS event body of <type>. */
static int rows_event(struct mv_ctx *c, struct table_maps *tm, uint8_t type,
                      const uint8_t *body, size_t len, struct binlog_value *vals,
                      struct changed *ch, uint64_t *pending, char **errp)
{
    struct binlog_rows rh;
    int k = -1;

    if (binlog_rows_head(type, body, len, &rh) < 0) {
        errmsg_set(errp, "binary log: a malformed row event");
        return -1;
    }
    for (unsigned i = tm->n; i-- > 0;)
        if (tm->map[i]->table_id == rh.table_id) {
            k = (int)i;
            break;
        }
    if (k < 0) {
        errmsg_set(errp, "binary log: a row event without its table map");
        return -1;
    }
    if (tm->table[k] < 0)
        return 0;
    const struct mv_table *t = &c->tables[tm->table[k]];
    const struct binlog_table *bt = tm->map[k];
    if (bt->n_cols != t->n_cols || rh.n_cols != t->n_cols) {
        errmsg_set(errp, "binary log: table %s has %u columns in a row event, %u in the schema "
                   "(was it altered during the move?)", t->name, rh.n_cols, t->n_cols);
        return -1;
    }
    size_t off = rh.rows_off;
    while (off < len) {
        for (int img = 0; img < (rh.update ? 2 : 1); img++) {
            if (binlog_row_image(bt, img ? rh.present_after : rh.present, body, len, &off,
                                 vals) < 0) {
                errmsg_set(errp, "binary log: a malformed row image of table %s", t->name);
                return -1;
            }
            if (note_row(c, t, bt, vals, &ch[tm->table[k]], errp) < 0)
                return -1;
            (*pending)++;
        }
    }
    return 0;
}

/* A connection to <ep> ready for a binary log dump: *<crc> says whether
 * events carry a checksum. Returns it, or NULL with *<errp>. */
static MYSQL *binlog_connect(struct mv_ctx *c, const struct smap_endpoint *ep, bool *crc,
                             char **errp)
{
    MYSQL *r = mv_connect(c, ep, "source (binary log)", errp);
    if (!r)
        return NULL;
    MYSQL_RES *res = query(r, "SELECT @@global.binlog_checksum", errp);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (!res) {
        mysql_close(r);
        return NULL;
    }
    *crc = row && row[0] && strcasecmp(row[0], "NONE") != 0;
    mysql_free_result(res);
    /* GTID events rather than BEGIN queries; events with the checksum the
     * server logs (declared, or the server refuses the dump), stripped below */
    if (run(r, "SET @mariadb_slave_capability = 4, @master_binlog_checksum = "
               "@@global.binlog_checksum", errp) < 0) {
        mysql_close(r);
        return NULL;
    }
    return r;
}

int mv_catchup_prepare(struct mv_ctx *c, const struct smap_endpoint *ep, char **errp)
{
    if (c->binlog_spare)
        return 0;
    c->binlog_spare = binlog_connect(c, ep, &c->binlog_crc, errp);
    return c->binlog_spare ? 0 : -1;
}

void mv_catchup_unprepare(struct mv_ctx *c)
{
    if (c->binlog_spare)
        mysql_close(c->binlog_spare);
    c->binlog_spare = NULL;
}

int mv_catchup(struct mv_ctx *c, const struct smap_endpoint *ep, MYSQL *src, MYSQL *dst,
               struct mv_pos *at, uint64_t *changed, char **errp)
{
    bool crc = c->binlog_crc;
    MYSQL *r = c->binlog_spare ? c->binlog_spare : binlog_connect(c, ep, &crc, errp);
    MARIADB_RPL *rpl = NULL;
    struct changed *ch = calloc(c->n_tables ? c->n_tables : 1, sizeof(*ch));
    struct binlog_value *vals = calloc(BINLOG_MAX_COLS, sizeof(*vals));
    struct table_maps tm;
    char file[200];
    uint64_t boundary = at->pos, pending = 0, last_end = 0, read_to = at->pos;
    int rc = -1;

    c->binlog_spare = NULL;   /* used up: a dump ends the connection's use */
    c->count.step = MV_STEP_CATCHUP;
    memset(&tm, 0, sizeof(tm));
    snprintf(file, sizeof(file), "%s", at->file);
    if (!r || !ch || !vals) {
        if (r)
            errmsg_set(errp, "out of memory");
        goto out;
    }
    rpl = mariadb_rpl_init(r);
    if (!rpl) {
        errmsg_set(errp, "mariadb_rpl_init failed");
        goto out;
    }
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, file, strlen(file));
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, (unsigned long)at->pos);
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID,
                         (unsigned int)(0x53570000u | ((unsigned)getpid() & 0xffffu)));
    mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, (unsigned int)MARIADB_RPL_BINLOG_DUMP_NON_BLOCK);
    if (mariadb_rpl_open(rpl) != 0) {
        errmsg_set(errp, "binary log of the source from %s:%" PRIu64 ": %s (error %u)",
                   at->file, at->pos, mysql_error(r), mysql_errno(r));
        goto out;
    }
    /* Raw events (binlog.h says why not mariadb_rpl_fetch()). */
    for (;;) {
        unsigned long n = mysql_net_read_packet(r);
        const uint8_t *pkt = r->net.read_pos;
        struct binlog_header h;

        if (n == (unsigned long)-1 || (n > 0 && pkt[0] == 0xff)) {
            errmsg_set(errp, "binary log of the source at %s:%" PRIu64 ": %s (error %u)", file,
                       boundary, mysql_error(r), mysql_errno(r));
            goto out;
        }
        if (n == 0 || (pkt[0] == 0xfe && n < 9))
            break;   /* the end of the log (non-blocking dump) */
        if (binlog_header(pkt + 1, n - 1, &h) < 0 || h.event_len > n - 1 ||
            h.event_len < BINLOG_HEADER_LEN + (crc ? 4u : 0u)) {
            errmsg_set(errp, "binary log at %s:%" PRIu64 ": a malformed event", file, boundary);
            goto out;
        }
        const uint8_t *body = pkt + 1 + BINLOG_HEADER_LEN;
        size_t blen = h.event_len - BINLOG_HEADER_LEN - (crc ? 4u : 0u);
        if (h.next_pos && h.type != BINLOG_ROTATE && h.type != BINLOG_FORMAT_DESC)
            last_end = h.next_pos;
        /* bytes of the log passed, by position: the dump leaves events
         * out (annotations), and makes some up (the first rotate, a
         * format description sent again: position 0) */
        if (h.next_pos > read_to) {
            c->count.bytes += h.next_pos - read_to;
            read_to = h.next_pos;
        }
        if (h.next_pos && ++c->count.read % 256 == 0)
            counted(c);
        switch (h.type) {
        case BINLOG_ROTATE: {
            uint64_t pos;
            if (binlog_rotate(body, blen, &pos, file, sizeof(file)) < 0) {
                errmsg_set(errp, "binary log: a malformed rotate event");
                goto out;
            }
            boundary = pos;
            read_to = pos;
            last_end = 0;
            tm.n = 0;
            break;
        }
        case BINLOG_GTID:
            /* a transaction starts here: a safe place to resume from */
            if (h.next_pos >= h.event_len)
                boundary = h.next_pos - h.event_len;
            tm.n = 0;
            if (pending >= 20000)
                goto done;   /* enough for one round: apply, record, come back */
            break;
        case BINLOG_XID:
            tm.n = 0;
            if (h.next_pos)
                boundary = h.next_pos;
            break;
        case BINLOG_TABLE_MAP: {
            if (tm.n == MV_MAX_MAPS)
                tm.n = 0;
            if (!tm.map[tm.n] && !(tm.map[tm.n] = malloc(sizeof(*tm.map[0])))) {
                errmsg_set(errp, "out of memory");
                goto out;
            }
            struct binlog_table *bt = tm.map[tm.n];
            int which = -1;
            if (binlog_table_map(body, blen, bt) < 0) {
                /* malformed, or a column type this cannot size: fatal only
                 * for the database being moved (its rows must be read) */
                size_t dl = blen > 8 ? body[8] : 0;
                if (blen < 9 + dl || (dl == strlen(c->db) && memcmp(body + 9, c->db, dl) == 0)) {
                    errmsg_set(errp, "binary log at %s:%" PRIu32 ": a table map of database "
                               "%s that moves cannot decode", file, h.next_pos, c->db);
                    goto out;
                }
                bt->n_cols = 0;
                bt->table_id = blen >= 6 ? (uint64_t)body[0] | (uint64_t)body[1] << 8 |
                               (uint64_t)body[2] << 16 | (uint64_t)body[3] << 24 |
                               (uint64_t)body[4] << 32 | (uint64_t)body[5] << 40 : 0;
            }
            if (bt->n_cols && bt->db_len == strlen(c->db) &&
                memcmp(bt->db, c->db, bt->db_len) == 0)
                for (unsigned i = 0; i < c->n_tables; i++)
                    if (strlen(c->tables[i].name) == bt->name_len &&
                        memcmp(c->tables[i].name, bt->name, bt->name_len) == 0)
                        which = (int)i;
            bt->db = bt->name = NULL;   /* they pointed into the packet */
            tm.table[tm.n++] = which;
            break;
        }
        case BINLOG_WRITE_ROWS_V1: case BINLOG_UPDATE_ROWS_V1: case BINLOG_DELETE_ROWS_V1:
        case BINLOG_WRITE_ROWS: case BINLOG_UPDATE_ROWS: case BINLOG_DELETE_ROWS:
            if (rows_event(c, &tm, h.type, body, blen, vals, ch, &pending, errp) < 0) {
                errmsg_prefix(errp, "at %s:%" PRIu32, file, h.next_pos);
                goto out;
            }
            break;
        default:
            if (h.type >= BINLOG_WRITE_ROWS_COMPRESSED_V1 &&
                h.type <= BINLOG_DELETE_ROWS_COMPRESSED) {
                errmsg_set(errp, "binary log at %s:%" PRIu32 ": compressed row events "
                           "(log_bin_compress) are not supported by moves", file, h.next_pos);
                goto out;
            }
            break;
        }
    }
    /* the end of the log: everything before it is whole transactions */
    if (last_end > boundary)
        boundary = last_end;
done:
    if (flush_changed(c, ch, src, dst, changed, errp) < 0)
        goto out;
    snprintf(at->file, sizeof(at->file), "%s", file);
    at->pos = boundary;
    rc = 0;
out:
    maps_free(&tm);
    for (unsigned i = 0; ch && i < c->n_tables; i++) {
        changed_clear(&ch[i]);
        free(ch[i].keys);
    }
    free(ch);
    free(vals);
    if (rpl)
        mariadb_rpl_close(rpl);
    if (r)
        mysql_close(r);
    return rc;
}

/* ---- check and delete ------------------------------------------------------- */

int mv_checksum(struct mv_ctx *c, MYSQL *conn, const struct mv_table *t, struct mv_sum *out,
                char **errp)
{
    struct sbuf q = { 0 };
    MYSQL_RES *r;
    MYSQL_ROW row;

    out->rows = out->sum = 0;
    sb_select_all(&q, c, t);
    if (q.oom || mysql_real_query(conn, q.p, q.len) != 0 || !(r = mysql_use_result(conn))) {
        errmsg_set(errp, "%s (error %u) summing %s", mysql_error(conn), mysql_errno(conn),
                   t->name);
        sb_free(&q);
        return -1;
    }
    sb_free(&q);
    while ((row = mysql_fetch_row(r))) {
        unsigned long *lens = mysql_fetch_lengths(r);
        if (!key_moving(c, row[t->key_col], lens[t->key_col]))
            continue;
        out->sum += row_hash(t, row, lens);   /* a sum: row order does not matter */
        out->rows++;
    }
    if (mysql_errno(conn)) {
        errmsg_set(errp, "%s (error %u) summing %s", mysql_error(conn), mysql_errno(conn),
                   t->name);
        mysql_free_result(r);
        return -1;
    }
    mysql_free_result(r);
    return 0;
}

/* The session of mv_delete's deletes: read committed (no gap locks, not
 * even for a key already gone) unless the binary log is by statement,
 * which refuses a write in it. */
static int delete_session(MYSQL *w, const char *what, char **errp)
{
    MYSQL_ROW row;
    MYSQL_RES *r = query_first(w, "SELECT @@session.binlog_format", what, &row, errp);
    if (!r)
        return -1;
    bool by_statement = row && row[0] && strcasecmp(row[0], "STATEMENT") == 0;
    mysql_free_result(r);
    if (!by_statement &&
        run(w, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", errp) < 0) {
        errmsg_prefix(errp, "%s", what);
        return -1;
    }
    return 0;
}

int mv_delete(struct mv_ctx *c, const struct smap_endpoint *ep, const char *what,
              uint64_t *rows, char **errp)
{
    MYSQL *scan = mv_connect(c, ep, what, errp), *w = scan ? mv_connect(c, ep, what, errp) : NULL;
    struct sbuf q = { 0 }, del = { 0 }, lit = { 0 };
    uint64_t t0 = mono_ms();
    int rc = -1;

    unsigned chunk = c->rate && c->rate / 10 < c->chunk_rows
                         ? (c->rate / 10 ? c->rate / 10 : 1) : c->chunk_rows;
    *rows = 0;
    if (!scan || !w || mv_check_writable(w, what, errp) < 0 || delete_session(w, what, errp) < 0)
        goto out;
    c->count.step = MV_STEP_DELETE;
    c->count.estimate = c->on_count ? scan_estimate(c, scan) : 0;
    for (unsigned ti = 0; ti < c->n_tables; ti++) {
        const struct mv_table *t = &c->tables[ti];
        unsigned n = 0;
        MYSQL_RES *r;
        MYSQL_ROW row;

        /* only the key column and the primary key: a consistent read, no locks */
        q.len = 0;
        sb_puts(&q, "SELECT ");
        sb_ident(&q, t->cols[t->key_col]);
        for (unsigned i = 0; i < t->n_pk; i++) {
            sb_puts(&q, ", ");
            sb_ident(&q, t->cols[t->pk[i]]);
        }
        sb_puts(&q, " FROM ");
        sb_ident(&q, c->db);
        sb_puts(&q, ".");
        sb_ident(&q, t->name);
        if (q.oom || mysql_real_query(scan, q.p, q.len) != 0 || !(r = mysql_use_result(scan))) {
            errmsg_set(errp, "%s: %s (error %u) reading %s", what, mysql_error(scan),
                       mysql_errno(scan), t->name);
            goto out;
        }
        for (;;) {
            row = mysql_fetch_row(r);
            if (row) {
                unsigned long *lens = mysql_fetch_lengths(r);
                c->count.read++;
                if (!key_moving(c, row[0], lens[0]))
                    continue;
                if (n == 0)
                    del.len = 0;
                /* by exact key, one statement a row (sb_pk_match) */
                lit.len = 0;
                if (t->n_pk > 1)
                    sb_puts(&lit, "(");
                for (unsigned i = 0; i < t->n_pk; i++) {
                    if (i)
                        sb_puts(&lit, ", ");
                    sb_value(&lit, row[1 + i], lens[1 + i], t->num[t->pk[i]]);
                }
                if (t->n_pk > 1)
                    sb_puts(&lit, ")");
                sb_key_delete(&del, c, t, lit.oom ? "" : lit.p);
                n++;
            }
            if (n > 0 && (!row || n >= chunk || del.len >= MV_BATCH_BYTES)) {
                if (lit.oom || write_chunk(c, w, &del, true, t->name, n, errp) < 0) {
                    if (lit.oom)
                        errmsg_set(errp, "out of memory");
                    errmsg_prefix(errp, "%s, table %s", what, t->name);
                    mysql_free_result(r);
                    goto out;
                }
                *rows += n;
                c->count.done += n;
                n = 0;
                throttle(c->rate, *rows, t0);
                counted(c);
            }
            if (!row)
                break;
        }
        if (mysql_errno(scan)) {
            errmsg_set(errp, "%s: %s (error %u) reading %s", what, mysql_error(scan),
                       mysql_errno(scan), t->name);
            mysql_free_result(r);
            goto out;
        }
        mysql_free_result(r);
    }
    rc = 0;
out:
    sb_free(&q);
    sb_free(&del);
    sb_free(&lit);
    if (scan)
        mysql_close(scan);
    if (w)
        mysql_close(w);
    return rc;
}
