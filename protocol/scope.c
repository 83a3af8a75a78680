/*
 * protocol/scope.c - tenant-scoped statements (see scope.h).
 *
 * Never trusts its own rewrite: the text it builds is analysed again and
 * sent only when the analyzer proves it confined to the session's user.
 */
#include "protocol/scope.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/wire.h"

#define SCOPE_MAX_TABLES 512    /* the analyzer's own bound on table references */

#define SCOPE_M_OTHER_USER "shardwire: statement names another user than the session's (SET @shardwire_user); a scoped session may touch only its user's rows"
#define SCOPE_M_CANNOT     "shardwire: cannot limit this statement to the session's user with certainty (NATURAL join, outer join by USING, or a table without a name to qualify); name the user in it (userid = K) or rewrite the join with ON"
#define SCOPE_M_KEYS       "shardwire: scoped sessions need exactly one configured key column"
#define SCOPE_M_COMMENT    "shardwire: malformed scope comment: write /* shardwire:user=42 */ at the start of the statement"

/* One piece of text to insert at byte <off>; <order> sorts pieces at the
 * same offset: an ON's close (0) before a WHERE's (1) before an open (2). */
struct scope_ins {
    uint32_t off;
    uint8_t  order;
    uint16_t first, n;      /* the tables [first, first + n) of the sorted list */
    uint8_t  kind;          /* 'o'pen "(", 'c'lose ") AND conds", 'w'here " WHERE conds" */
};

void scope_buf_fini(struct scope_buf *b)
{
    free(b->p);
    free(b->scratch);
    b->p = NULL;
    b->scratch = NULL;
    b->len = b->cap = 0;
}

static int scope_put(struct scope_buf *b, const void *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np)
            return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static int scope_puts(struct scope_buf *b, const char *s)
{
    return scope_put(b, s, strlen(s));
}

static void scope_reject(struct analyze_result *res, uint16_t err_no, const char *msg)
{
    res->kind = ANALYZE_REJECT;
    res->err_no = err_no;
    memcpy(res->sqlstate, err_no == 1041 ? "HY000" : "42000", 6);
    res->msg = msg;
    res->offset = 0;
    res->param_index = -1;
    res->key_params = 0;
    res->scope_params = 0;
    res->key_len = 0;
}

/* Appends the key literal for <key>: the decimal text of an integer key, or
 * a quoted string (backslash escapes; _binary when a byte is not ASCII). */
static int scope_put_key(struct scope_buf *b, enum analyze_key_type type, const char *key,
                         size_t key_len)
{
    if (type == ANALYZE_KEY_INT)
        return scope_put(b, key, key_len);
    int ascii = 1;
    for (size_t k = 0; k < key_len; k++)
        if ((unsigned char)key[k] >= 0x80)
            ascii = 0;
    if (scope_puts(b, ascii ? "'" : "_binary'") < 0)
        return -1;
    for (size_t k = 0; k < key_len; k++) {
        char c = key[k];
        const char *esc = c == '\'' ? "\\'" : c == '\\' ? "\\\\" : c == 0 ? "\\0" : NULL;
        if (esc ? scope_puts(b, esc) < 0 : scope_put(b, &c, 1) < 0)
            return -1;
    }
    return scope_puts(b, "'");
}

/* Appends "q.`col` = K AND ..." for tables [first, first + n) of <t>. */
static int scope_put_conds(struct scope_buf *b, const char *sql,
                           const struct analyze_scope_table *t, unsigned first, unsigned n,
                           const struct analyze_config *cfg, const char *key, size_t key_len)
{
    for (unsigned k = first; k < first + n; k++) {
        if ((k > first && scope_puts(b, " AND ") < 0) ||
            scope_put(b, sql + t[k].qual_off, t[k].qual_len) < 0 || scope_puts(b, ".`") < 0 ||
            scope_puts(b, cfg->key_columns[0]) < 0 || scope_puts(b, "` = ") < 0 ||
            scope_put_key(b, cfg->key_type, key, key_len) < 0)
            return -1;
    }
    return 0;
}

static int scope_tab_cmp(const void *x, const void *y)
{
    const struct analyze_scope_table *a = x, *b = y;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    if (a->close != b->close)
        return a->close < b->close ? -1 : 1;
    if (a->where != b->where)
        return a->where < b->where ? -1 : 1;
    return a->qual_off < b->qual_off ? -1 : a->qual_off > b->qual_off;
}

static int scope_ins_cmp(const void *x, const void *y)
{
    const struct scope_ins *a = x, *b = y;
    if (a->off != b->off)
        return a->off < b->off ? -1 : 1;
    return (int)a->order - (int)b->order;
}

/* Builds the rewritten statement into <buf>. Returns 0, -1 out of memory. */
static int scope_build(const char *sql, size_t len, struct analyze_scope_table *t, unsigned n,
                       const struct analyze_config *cfg, const char *key, size_t key_len,
                       struct scope_buf *buf, struct scope_ins *ins)
{
    unsigned n_ins = 0;
    qsort(t, n, sizeof(*t), scope_tab_cmp);
    for (unsigned k = 0; k < n;) {
        unsigned g = k + 1;
        while (g < n && t[g].at == t[k].at && t[g].close == t[k].close && t[g].where == t[k].where)
            g++;
        uint8_t order = t[k].where ? 1 : 0;
        if (t[k].at == t[k].close) {
            ins[n_ins++] = (struct scope_ins){t[k].at, order, (uint16_t)k, (uint16_t)(g - k), 'w'};
        } else {
            ins[n_ins++] = (struct scope_ins){t[k].at, 2, (uint16_t)k, 0, 'o'};
            ins[n_ins++] = (struct scope_ins){t[k].close, order, (uint16_t)k, (uint16_t)(g - k), 'c'};
        }
        k = g;
    }
    qsort(ins, n_ins, sizeof(*ins), scope_ins_cmp);
    buf->len = 0;
    size_t pos = 0;
    for (unsigned k = 0; k < n_ins; k++) {
        const struct scope_ins *x = &ins[k];
        if (scope_put(buf, sql + pos, x->off - pos) < 0)
            return -1;
        pos = x->off;
        if (x->kind == 'o') {
            if (scope_puts(buf, "(") < 0)
                return -1;
            continue;
        }
        if (scope_puts(buf, x->kind == 'c' ? ") AND " : " WHERE ") < 0 ||
            scope_put_conds(buf, sql, t, x->first, x->n, cfg, key, key_len) < 0 ||
            scope_puts(buf, " ") < 0)
            return -1;
    }
    return scope_put(buf, sql + pos, len - pos);
}

/* scope_apply() with the analyzer reading key '?'s as <key> when <prepared>. */
static int scope_decide(struct analyze *a, const char *sql, size_t len, const char *key,
                        size_t key_len, struct scope_buf *buf, struct analyze_result *res)
{
    const struct analyze_config *cfg = analyze_config_of(a);
    if (analyze_statement(a, sql, len, res) < 0)
        return -1;
    switch (res->kind) {
    case ANALYZE_ROUTE:
        if (res->param_index < 0 && (res->key_len != key_len || memcmp(res->key, key, key_len))) {
            scope_reject(res, WIRE_ER_NOT_SUPPORTED_YET, SCOPE_M_OTHER_USER);
            return SCOPE_REJECT;
        }
        return SCOPE_ASIS;
    case ANALYZE_SESSION:
    case ANALYZE_LOCAL:
        return SCOPE_ASIS;
    case ANALYZE_REJECT:
        break;
    }
    if (!res->unconfined)
        return SCOPE_REJECT;
    if (cfg->n_key_columns != 1) {
        scope_reject(res, WIRE_ER_NOT_SUPPORTED_YET, SCOPE_M_KEYS);
        return SCOPE_REJECT;
    }
    /* the table list, then the insertions: kept with <buf> for the next */
    if (!buf->scratch)
        buf->scratch = malloc(SCOPE_MAX_TABLES * (sizeof(struct analyze_scope_table) +
                                                  2 * sizeof(struct scope_ins)));
    if (!buf->scratch) {
        scope_reject(res, 1041, "shardwire: out of memory while analysing the statement");
        return -1;
    }
    struct analyze_scope_table *t = buf->scratch;
    struct scope_ins *ins = (struct scope_ins *)(t + SCOPE_MAX_TABLES);
    int rc = -1;
    int n = analyze_scope_tables(a, t, SCOPE_MAX_TABLES);
    if (n <= 0) {
        scope_reject(res, WIRE_ER_NOT_SUPPORTED_YET, SCOPE_M_CANNOT);
        rc = SCOPE_REJECT;
        goto out;
    }
    if (scope_build(sql, len, t, (unsigned)n, cfg, key, key_len, buf, ins) < 0) {
        scope_reject(res, 1041, "shardwire: out of memory while analysing the statement");
        goto out;
    }
    /* the proof: the rewritten text, by the ordinary rules */
    if (analyze_statement(a, buf->p, buf->len, res) < 0)
        goto out;
    if (res->kind != ANALYZE_ROUTE) {
        if (res->kind != ANALYZE_REJECT || res->unconfined)
            scope_reject(res, WIRE_ER_NOT_SUPPORTED_YET, SCOPE_M_CANNOT);
        res->offset = 0;    /* it was an offset into the rewritten text */
        rc = SCOPE_REJECT;
        goto out;
    }
    if (res->param_index >= 0 || res->key_len != key_len || memcmp(res->key, key, key_len)) {
        scope_reject(res, WIRE_ER_NOT_SUPPORTED_YET,
                     res->param_index >= 0 ? SCOPE_M_CANNOT : SCOPE_M_OTHER_USER);
        rc = SCOPE_REJECT;
        goto out;
    }
    rc = SCOPE_REWRITTEN;
out:
    return rc;
}

int scope_apply(struct analyze *a, const char *sql, size_t len, const char *key, size_t key_len,
                bool prepared, struct scope_buf *buf, struct analyze_result *res)
{
    if (prepared)
        analyze_set_param_key(a, key, key_len);
    int rc = scope_decide(a, sql, len, key, key_len, buf, res);
    analyze_set_param_key(a, NULL, 0);
    return rc;
}

int scope_comment(const char *sql, size_t len, enum analyze_key_type type,
                  char key[ANALYZE_KEY_MAX])
{
    static const char tag[] = "shardwire:user=";
    size_t p = 0;
    while (p < len && (sql[p] == ' ' || sql[p] == '\t' || sql[p] == '\n' || sql[p] == '\r'))
        p++;
    if (len - p < 4 || sql[p] != '/' || sql[p + 1] != '*')
        return 0;
    p += 2;
    while (p < len && sql[p] == ' ')
        p++;
    if (len - p < sizeof(tag) - 1 || memcmp(sql + p, tag, sizeof(tag) - 1) != 0)
        return 0;
    p += sizeof(tag) - 1;
    size_t vs = p;
    while (p < len && sql[p] != ' ' && !(sql[p] == '*' && p + 1 < len && sql[p + 1] == '/'))
        p++;
    size_t ve = p;
    while (p < len && sql[p] == ' ')
        p++;
    if (len - p < 2 || sql[p] != '*' || sql[p + 1] != '/')
        return -1;
    if (ve - vs >= 2 && sql[vs] == '\'' && sql[ve - 1] == '\'') {
        vs++;
        ve--;
    }
    for (size_t k = vs; k < ve; k++)
        if (sql[k] == '\'' || sql[k] == '\\')
            return -1;
    int n = analyze_canon_key(type, sql + vs, ve - vs, key);
    return n > 0 ? n : -1;
}
