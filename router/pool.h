/*
 * router/pool.h - per-worker pool of backend connections to one shard.
 *
 * A pool is keyed by shard name; its endpoint follows the map. When the
 * master changes the generation is bumped: idle connections to the old
 * master are closed at once, busy ones when their session releases them.
 * Sessions that find no idle connection wait in FIFO order, each with its
 * own deadline (the session's timer).
 *
 * pool_max_per_shard is one budget for the whole router (struct
 * pool_budget, shared by every worker's pool of that shard, an atomic
 * count), not a share per worker: one worker may use all of it. A worker
 * that needs a connection while the budget is spent asks the others to
 * close an idle one of theirs and to tell it when they did.
 */
#ifndef SHARDWIRE_ROUTER_POOL_H
#define SHARDWIRE_ROUTER_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "router/log.h"
#include "shardmap/smap.h"

struct backend;
struct session;
struct worker;
struct stats_shard;

struct router;

/* One shard's connection budget, shared by all workers; lives as long as
 * the router. always: open <= max unless max was lowered */
struct pool_budget {
    char                shard[SMAP_NAME_MAX];
    unsigned            max;           /* pool_max_per_shard */
    _Atomic unsigned    open;          /* connections of all workers' pools */
    _Atomic unsigned    held;          /* of those, held by pinned sessions between statements */
    struct pool_budget *next;
};

TAILQ_HEAD(pool_waitq, session);

struct pool {
    struct worker       *w;
    char                 shard[SMAP_NAME_MAX];
    struct smap_endpoint endpoint;
    uint64_t             generation;
    struct pool_budget  *budget;
    struct stats_shard  *st;           /* this worker's counters of the shard; outlive the pool */
    unsigned             n_open;       /* this worker's: connecting + idle + busy */
    unsigned             n_connecting;
    struct backend      *idle;         /* most recently used first */
    struct backend      *busy;         /* handed to sessions (cut when the master changes) */
    struct backend      *connecting;   /* <n_connecting> of them: freed with the pool */
    struct pool_waitq    waiters;      /* FIFO; O(1) push, pop and cancel */
    unsigned             n_waiting;
    uint64_t             shed_asked_ms; /* when others were last asked for a connection */
    char                 last_error[256];
    struct log_limit     connect_log;   /* connect failures: one line per 5 s */
    struct pool         *next;         /* worker's old_pools list */
};

/* Makes worker <w>'s pool for <shard>, sharing the router-wide budget of
 * that shard name. Returns NULL when out of memory. Worker thread. */
struct pool *pool_new(struct worker *w, const struct smap_shard *shard);

/* The budget of shard <name> (made on first use). Any thread. NULL: out of
 * memory. */
struct pool_budget *pool_budget_of(struct router *r, const char *name);
/* Frees every budget (at exit, workers gone). */
void pool_budgets_free(struct router *r);

/* Worker thread: the pools of other workers may hold idle connections of
 * shard <name> while this worker waits: another worker asks this one to
 * close one (see pool.c). */
void pool_shed_request(struct worker *w, const char *name, struct worker *asker);
/* Frees the pool, its idle connections and those still being made. Busy
 * connections must be gone. */
void pool_free(struct pool *p);

/* Points the pool at <ep> (a new master): bumps the generation and closes
 * idle connections. No-op when the endpoint is unchanged. */
void pool_set_endpoint(struct pool *p, const struct smap_endpoint *ep);

/* The shard left the map: close idle connections now and busy ones when
 * released. */
void pool_drain(struct pool *p);
/* Cuts the connections sessions hold that were opened before the last
 * drain (the master changed): see pool.c. */
void pool_cut_busy(struct pool *p);

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

/* Worker thread, about once a second: waiters whose pool could not grow
 * (the router-wide budget was spent) try again. */
void pool_retry_waiters(struct pool *p);

/* Number of sessions waiting. */
unsigned pool_n_waiting(const struct pool *p);

#endif
