/*
 * router/pstmt.h - prepared statements: the ones a client holds (ids we
 * give out) and the ones each backend connection holds (ids the server gave).
 *
 * A client statement is analysed once at PREPARE and remembers its text, its
 * routing rule (a literal key or the '?' that carries it) and the parameter
 * types of its first EXECUTE (clients send types only once). A backend
 * connection caches server-side statements by SQL text, so any session that
 * lands on it reuses them; the statement is prepared there lazily, the
 * first time an EXECUTE needs it. Worker thread only.
 */
#ifndef SHARDWIRE_ROUTER_PSTMT_H
#define SHARDWIRE_ROUTER_PSTMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/analyze.h"

struct evbuffer;

#define PSTMT_MAX_PER_SESSION  16382   /* MySQL's max_prepared_stmt_count default */
#define PSTMT_BACKEND_CACHE    128     /* server-side statements per backend connection */

struct pstmt_table;

struct pstmt {
    struct pstmt_table   *table;       /* the table it is in (byte accounting) */
    uint32_t              id;          /* the client's id */
    char                 *sql;         /* the text servers prepare */
    size_t                sql_len;
    uint64_t              sql_hash;
    char                 *client_sql;  /* the client's text when <sql> is a tenant scope's
                                          rewrite of it (same '?'s); else NULL */
    size_t                client_len;
    uint16_t              n_params;
    uint16_t              n_columns;
    struct analyze_result ar;
    uint8_t              *types;       /* 2 * n_params bytes, once known */
    uint64_t              types_sig;   /* hash of <types>; 0 = unknown */
    uint8_t              *long_mask;   /* params sent with SEND_LONG_DATA */
    struct evbuffer      *long_data;   /* those packets, replayed before EXECUTE */
    size_t                long_bytes;  /* bytes counted for <long_data> */
    bool                  long_failed; /* long data was refused: the EXECUTE fails */
    unsigned              sql_modes;   /* the session's ANALYZE_MODE_* at PREPARE */
    bool                  miscounted;  /* the server counts other '?'s than the analysis */
    bool                  local;       /* answered by the router (SET @shardwire_user):
                                          never on a server */
    bool                  scoped;      /* <ar> was read under the session's (or
                                          transaction's) tenant scope <scope_key> */
    size_t                scope_len;
    char                  scope_key[ANALYZE_KEY_MAX];
};

struct pstmt_table {
    struct pstmt **v;
    unsigned       n, cap;
    uint32_t       next_id;
    size_t         bytes;       /* SQL texts and buffered long data (memory budgets) */
};

/* Creates statement <sql>/<len> with analysis <ar>; returns it or NULL
 * (out of memory, or too many statements). */
struct pstmt *pstmt_add(struct pstmt_table *t, const char *sql, size_t len,
                        const struct analyze_result *ar);
struct pstmt *pstmt_find(struct pstmt_table *t, uint32_t id);
void pstmt_remove(struct pstmt_table *t, uint32_t id);
void pstmt_table_fini(struct pstmt_table *t);

/* Makes <sql>/<len> the text servers prepare for <ps> (a tenant scope's
 * rewrite of the client's), or with <sql> NULL the client's own again.
 * Returns 0, or -1 when out of memory (nothing changed). */
int pstmt_set_sent(struct pstmt *ps, const char *sql, size_t len);

/* The client's text of <ps> into <*len>. */
const char *pstmt_client_sql(const struct pstmt *ps, size_t *len);

/* Remembers <types> (2 * n_params bytes) as the statement's types. Returns 0 or -1. */
int pstmt_set_types(struct pstmt *ps, const uint8_t *types);

/* Drops buffered long data and its failure (after an EXECUTE or a RESET). */
void pstmt_clear_long_data(struct pstmt *ps);

/* Counts <n> bytes just added to <ps->long_data>. */
void pstmt_long_data_added(struct pstmt *ps, size_t n);

/* One server-side statement on a backend connection. */
struct pstmt_backend_entry {
    uint64_t sql_hash;
    char    *sql;           /* own copy: a hash match alone is not the same SQL */
    size_t   sql_len;
    uint32_t server_id;     /* the statement id on that server connection */
    uint64_t types_sig;     /* types the server last saw for it; 0 = none */
};

struct pstmt_cache {
    struct pstmt_backend_entry e[PSTMT_BACKEND_CACHE];
    unsigned                   n;
    unsigned                   evict;    /* next slot to reuse when full */
};

/* The entry for <ps> on this connection, or NULL. */
struct pstmt_backend_entry *pstmt_cache_find(struct pstmt_cache *c, const struct pstmt *ps);

/* Adds <ps> as server statement <server_id>. When the cache is full the
 * oldest entry is replaced: its server id is stored in <*evicted> (the
 * caller closes it on the server) and 1 is returned; else 0. -1: out of
 * memory, nothing added (the caller closes <server_id> on the server). */
int pstmt_cache_add(struct pstmt_cache *c, const struct pstmt *ps, uint32_t server_id,
                    uint32_t *evicted);

/* Forgets every entry (the server deallocated its statements). */
void pstmt_cache_clear(struct pstmt_cache *c);

#endif
