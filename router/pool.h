/*
 * router/pool.h - per-worker pool of backend connections to one shard.
 *
 * A pool is keyed by shard name; its endpoint follows the map. When the
 * master changes the generation is bumped: idle connections to the old
 * master are closed at once, busy ones when their session releases them.
 * Sessions that find no idle connection wait in FIFO order, each with its
 * own deadline (the session's timer).
 */
#ifndef SHARDWIRE_ROUTER_POOL_H
#define SHARDWIRE_ROUTER_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "router/log.h"
#include "shardmap/smap.h"

struct backend;
struct session;
struct worker;

struct pool {
    struct worker       *w;
    char                 shard[SMAP_NAME_MAX];
    struct smap_endpoint endpoint;
    uint64_t             generation;
    unsigned             max;          /* connections this worker may open */
    unsigned             n_open;       /* connecting + idle + busy */
    unsigned             n_connecting;
    struct backend      *idle;         /* most recently used first */
    struct session      *waiters;      /* FIFO */
    struct session      *waiters_tail;
    char                 last_error[256];
    struct log_limit     connect_log;   /* connect failures: one line per 5 s */
    struct pool         *next;         /* worker's old_pools list */
};

struct pool *pool_new(struct worker *w, const struct smap_shard *shard, unsigned max);
/* Frees the pool and its idle connections. Busy connections must be gone. */
void pool_free(struct pool *p);

/* Points the pool at <ep> (a new master): bumps the generation and closes
 * idle connections. No-op when the endpoint is unchanged. */
void pool_set_endpoint(struct pool *p, const struct smap_endpoint *ep);

/* The shard left the map: close idle connections now and busy ones when
 * released. */
void pool_drain(struct pool *p);

/*
 * Gets a connection for <s>. Returns an idle one at once, or NULL after
 * queueing <s>: the session then hears session_backend_ready() or
 * session_backend_failed() later, never from inside this call.
 */
struct backend *pool_acquire(struct pool *p, struct session *s);

/* Removes <s> from the wait queue (timeout, session closing). */
void pool_cancel_wait(struct pool *p, struct session *s);

/* Returns <be> from its session: reused if healthy and current, else closed. */
void pool_release(struct backend *be);

/* Closes a busy connection that cannot be reused (broken mid-reply). */
void pool_discard(struct backend *be);

/* From backend.c: the connect finished or failed. */
void pool_connected(struct backend *be);
void pool_connect_failed(struct backend *be, const char *err);

/* Closes idle connections idle longer than <idle_ms> or older than <age_ms>
 * (0: no limit). Called about once a second by the worker. */
void pool_sweep(struct pool *p, uint64_t now, unsigned idle_ms, unsigned age_ms);

/* Number of sessions waiting. */
unsigned pool_n_waiting(const struct pool *p);

#endif
