/*
 * router/pstmt.c - client and backend prepared-statement tables.
 */
#include "router/pstmt.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "router/fault.h"

struct pstmt *pstmt_add(struct pstmt_table *t, const char *sql, size_t len,
                        const struct analyze_result *ar)
{
    struct pstmt *ps;

    if (t->n >= PSTMT_MAX_PER_SESSION)
        return NULL;
    if (t->n == t->cap) {
        unsigned cap = t->cap ? t->cap * 2 : 8;
        struct pstmt **v = realloc(t->v, cap * sizeof(*v));

        if (!v)
            return NULL;
        t->v = v;
        t->cap = cap;
    }
    ps = calloc(1, sizeof(*ps));
    if (!ps)
        return NULL;
    ps->sql = malloc(len ? len : 1);
    if (!ps->sql) {
        free(ps);
        return NULL;
    }
    memcpy(ps->sql, sql, len);
    ps->sql_len = len;
    ps->sql_hash = XXH3_64bits(sql, len);
    ps->ar = *ar;
    ps->table = t;
    t->bytes += len;
    /* Ids start at 1 and are never reused within a session. */
    ps->id = ++t->next_id;
    t->v[t->n++] = ps;
    return ps;
}

struct pstmt *pstmt_find(struct pstmt_table *t, uint32_t id)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->v[i]->id == id)
            return t->v[i];
    return NULL;
}

int pstmt_set_sent(struct pstmt *ps, const char *sql, size_t len)
{
    char *copy = NULL;

    if (sql) {
        copy = fault_fail("pstmt_sent") ? NULL : malloc(len ? len : 1);
        if (!copy)
            return -1;
        memcpy(copy, sql, len);
    }
    if (ps->client_sql) {
        ps->table->bytes -= ps->sql_len;
        free(ps->sql);
    } else if (copy) {
        ps->client_sql = ps->sql;
        ps->client_len = ps->sql_len;
    }
    if (copy) {
        ps->sql = copy;
        ps->sql_len = len;
        ps->table->bytes += len;
    } else if (ps->client_sql) {
        ps->sql = ps->client_sql;
        ps->sql_len = ps->client_len;
        ps->client_sql = NULL;
        ps->client_len = 0;
    }
    ps->sql_hash = XXH3_64bits(ps->sql, ps->sql_len);
    return 0;
}

const char *pstmt_client_sql(const struct pstmt *ps, size_t *len)
{
    *len = ps->client_sql ? ps->client_len : ps->sql_len;
    return ps->client_sql ? ps->client_sql : ps->sql;
}

static void pstmt_free(struct pstmt *ps)
{
    ps->table->bytes -= ps->sql_len + ps->client_len + ps->long_bytes;
    free(ps->client_sql);
    free(ps->sql);
    free(ps->types);
    free(ps->long_mask);
    if (ps->long_data)
        evbuffer_free(ps->long_data);
    free(ps);
}

void pstmt_remove(struct pstmt_table *t, uint32_t id)
{
    for (unsigned i = 0; i < t->n; i++) {
        if (t->v[i]->id == id) {
            pstmt_free(t->v[i]);
            t->v[i] = t->v[--t->n];
            return;
        }
    }
}

void pstmt_table_fini(struct pstmt_table *t)
{
    for (unsigned i = 0; i < t->n; i++)
        pstmt_free(t->v[i]);
    free(t->v);
    memset(t, 0, sizeof(*t));
}

int pstmt_set_types(struct pstmt *ps, const uint8_t *types)
{
    size_t n = 2 * (size_t)ps->n_params;

    if (!ps->types) {
        ps->types = malloc(n ? n : 1);
        if (!ps->types)
            return -1;
    }
    memcpy(ps->types, types, n);
    ps->types_sig = XXH3_64bits(types, n) | 1;     /* never 0 */
    return 0;
}

void pstmt_clear_long_data(struct pstmt *ps)
{
    if (ps->long_data)
        evbuffer_drain(ps->long_data, evbuffer_get_length(ps->long_data));
    if (ps->long_mask)
        memset(ps->long_mask, 0, ((size_t)ps->n_params + 7) / 8);
    ps->table->bytes -= ps->long_bytes;
    ps->long_bytes = 0;
    ps->long_failed = false;
}

void pstmt_long_data_added(struct pstmt *ps, size_t n)
{
    ps->long_bytes += n;
    ps->table->bytes += n;
}

struct pstmt_backend_entry *pstmt_cache_find(struct pstmt_cache *c, const struct pstmt *ps)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->e[i].sql_hash == ps->sql_hash && c->e[i].sql_len == ps->sql_len &&
            memcmp(c->e[i].sql, ps->sql, ps->sql_len) == 0)
            return &c->e[i];
    return NULL;
}

int pstmt_cache_add(struct pstmt_cache *c, const struct pstmt *ps, uint32_t server_id,
                    uint32_t *evicted)
{
    struct pstmt_backend_entry *e;
    char *sql = fault_fail("pstmt_cache") ? NULL : malloc(ps->sql_len ? ps->sql_len : 1);
    int k = 0;

    if (!sql)
        return -1;
    memcpy(sql, ps->sql, ps->sql_len);
    if (c->n < PSTMT_BACKEND_CACHE) {
        e = &c->e[c->n++];
    } else {
        e = &c->e[c->evict];
        c->evict = (c->evict + 1) % PSTMT_BACKEND_CACHE;
        *evicted = e->server_id;
        free(e->sql);
        k = 1;
    }
    e->sql = sql;
    e->sql_hash = ps->sql_hash;
    e->sql_len = ps->sql_len;
    e->server_id = server_id;
    e->types_sig = 0;
    return k;
}

void pstmt_cache_clear(struct pstmt_cache *c)
{
    for (unsigned i = 0; i < c->n; i++)
        free(c->e[i].sql);
    c->n = 0;
    c->evict = 0;
}
