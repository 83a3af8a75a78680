/*
 * router/worker.h - worker threads: one event_base each, owning its
 * sessions, backend pools, analyzer and its reference to the shard map.
 *
 * Other threads reach a worker only through worker_post(). struct router is
 * the daemon-wide state every worker reads; what in it can change (the map)
 * reaches workers as posted messages.
 */
#ifndef SHARDWIRE_ROUTER_WORKER_H
#define SHARDWIRE_ROUTER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "router/log.h"
#include "router/proxyhdr.h"
#include "router/vbtrack.h"
#include "router/wflush.h"

struct event_base;
struct event;
struct evconnlistener;
struct config;
struct smap;
struct analyze;
struct session;
struct pool;
struct pool_budget;
struct rules;
struct worker;
struct control;
struct coordinator;
struct clusterview;
struct mapwatch;
struct stats;
typedef struct ssl_ctx_st SSL_CTX;

typedef void worker_fn(struct worker *w, void *arg);

struct router {
    struct config   *cfg;
    struct rules    *rules;              /* NULL when the config has none */
    SSL_CTX         *tls;                /* NULL: TLS not offered */
    struct worker  **workers;
    unsigned         n_workers;
    _Atomic unsigned n_clients;          /* open client connections, all workers */
    _Atomic unsigned n_buffered;         /* statements held for a master, all workers */
    _Atomic unsigned n_workers_done;     /* worker threads whose loop has ended */
    _Atomic uint64_t mem_used;           /* bytes sessions hold (router_memory_limit) */
    _Atomic uint64_t next_session_id;
    pthread_mutex_t  map_lock;
    struct smap     *map;                /* the current map; guarded by map_lock */
    pthread_mutex_t  budget_lock;
    struct pool_budget *budgets;         /* per shard name; guarded by budget_lock */
    struct control  *control;            /* health checks, admin HTTP; NULL when off */
    struct mapwatch *mw;                 /* the map source (age, for /health) */
    struct coordinator *coordinator;     /* automatic failover; NULL when off */
    struct clusterview *clusterview;     /* the cluster from ZooKeeper, for /status;
                                          * NULL without an admin listener */
    struct leasepeer   *leasepeer;       /* peers confirming a lost lease; NULL when off */
    _Atomic bool     draining;           /* SIGTERM received: /health says 503 */
    _Atomic bool     drained;            /* an operator's POST /drain (shardctl
                                          * drain): /health says 503, the router
                                          * goes on serving whoever comes */
    struct vbtrack   vbt;                /* in flight per vbucket (a move's freeze) */
    _Atomic(struct event *) freeze_ev;   /* main thread's freeze check: made active when
                                          * a map freezing vbuckets is published; NULL
                                          * before the main loop exists */
    _Atomic uint64_t map_since_ms;       /* when the map in use was published (now_ms) */
    _Atomic uint64_t failovers[2];       /* by this router's coordinator: done, aborted */
    _Atomic bool     coordinator_leader; /* this router is the failover coordinator */
};

struct worker {
    unsigned               id;
    struct router         *router;
    pthread_t              thread;
    struct event_base     *base;
    struct evconnlistener *listener;
    struct analyze        *analyze;

    pthread_mutex_t        inbox_lock;
    struct worker_msg     *inbox_head, *inbox_tail;
    struct event          *inbox_ev;

    struct session        *sessions;     /* all live sessions of this worker */
    struct session        *reap;         /* closed, freed at the end of the iteration */
    struct event          *reap_ev;
    struct wflush_list     dirty;        /* sockets with bytes to write (wflush.h) */
    struct event          *flush_ev;     /* writes them once the ready callbacks ran */
    unsigned char         *read_scratch; /* RDIRECT_MAX bytes: a read past the
                                          * space reserved in an input (rdirect.h) */

    struct smap           *map;          /* this worker's reference */
    _Atomic uint64_t       map_version;  /* version of <map>, for other threads */
    struct pool          **pools;        /* indexed like the map's shards */
    unsigned               n_pools;
    struct pool           *old_pools;    /* pools of shards gone from the map, draining */

    bool                   shutting_down;
    struct event          *shutdown_ev;  /* the deadline */
    struct event          *sweep_ev;     /* once a second: pool idle/age limits */
    struct event          *accept_ev;    /* re-enables the listener after EMFILE */
    unsigned               accept_backoff_ms;  /* 0: accepting normally */
    struct log_limit       accept_log;   /* accept failures: one line per 5 s */
    struct stats          *counters;     /* router/stats.h; freed after the admin stopped */
    struct log_limit       backend_lost_log;   /* one line per 5 s */
    struct proxyhdr_list   proxy_waits;  /* accepted, PROXY header not yet read */
    struct log_limit       proxy_log;    /* bad PROXY headers: one line per 5 s */
};

/* Creates worker <id>: its event base, analyzer and listening socket.
 * Returns NULL with <*errp> set. Called by the main thread before any
 * worker runs. */
struct worker *worker_new(struct router *r, unsigned id, char **errp);
/* Starts the worker's thread. Returns 0 or -1. */
int worker_start(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* Runs <fn>(<w>, <arg>) on <w>'s thread soon. Any thread. Returns 0 or -1. */
int worker_post(struct worker *w, worker_fn *fn, void *arg);

/* Asks the worker to stop accepting, finish in-flight statements and exit
 * its loop within <deadline_ms>. Any thread. */
void worker_shutdown(struct worker *w, unsigned deadline_ms);

/* Gives the worker map <m> (the worker takes the reference). Any thread. */
void worker_set_map(struct worker *w, struct smap *m);

/* Sends <err_no>/<msg> as the first packet a just-accepted client gets,
 * without blocking, and closes <fd>. */
void worker_refuse_fd(int fd, uint16_t err_no, const char *msg);

/* Worker thread only: the pool of shard index <i> in w->map. */
struct pool *worker_pool(struct worker *w, unsigned i);

/* Worker thread only: schedules <s> to be freed after this iteration. */
void worker_reap(struct worker *w, struct session *s);

/* Worker thread only: called when a session ends; exits the loop when the
 * worker is shutting down and no session is left. */
void worker_session_gone(struct worker *w);

#endif
