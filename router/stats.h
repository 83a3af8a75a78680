/*
 * router/stats.h - the router's counters: one struct stats per worker,
 * written only by that worker's thread, read by the admin (control) thread.
 *
 * Why single-writer counters with relaxed loads and stores, and not a gather
 * by worker_post() for /metrics: each counter has one writer (its worker),
 * so STATS_ADD() is a relaxed load plus a relaxed store - plain moves on
 * x86-64 and arm64, no lock prefix, no read-modify-write, and each worker's
 * struct stats is its own allocation so workers never share a cache line. A
 * reader's relaxed load of a 64-bit counter is never torn; it may be a few
 * increments behind, which a scrape does not mind. A gather would make every
 * scrape wait for every worker's loop, so a busy or stuck worker would turn
 * /metrics slow exactly when it is needed. What a reader cannot read this way
 * (strings that change: the top users, the client list, and the per-vbucket
 * arrays, plain fields only the worker touches) is copied out on the worker's
 * own thread by a posted request (see admin.c, /status).
 *
 * Lifetime: per-shard entries (struct stats_shard) are created by the worker
 * for a shard name the first time one of its pools serves that shard, and
 * are freed only with the struct stats (after the worker and the admin
 * listener are gone). Pools come and go with maps; their counters stay, so
 * a reader walking the list (head loaded with acquire, entries only ever
 * prepended with release) never touches freed memory, and a shard removed
 * and added again continues its series.
 *
 * The pure parts (histogram buckets, command names, the error table, the
 * heavy-hitters sketch) take no lock and no clock: tests/unit/test_stats.c.
 */
#ifndef SHARDWIRE_ROUTER_STATS_H
#define SHARDWIRE_ROUTER_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One writer: a relaxed load and store, never an atomic read-modify-write. */
#define STATS_ADD(c, n)                                                                   \
    atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n),   \
                          memory_order_relaxed)
#define STATS_INC(c) STATS_ADD(c, 1)
#define STATS_DEC(c) STATS_ADD(c, (uint64_t)-1)
#define STATS_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

/* Latency buckets (upper bounds, microseconds); the last bucket is +Inf. */
#define STATS_LAT_N 15
extern const uint32_t stats_lat_bounds_us[STATS_LAT_N - 1];

/* Commands counted by name; everything else is "other". */
enum stats_cmd {
    STATS_CMD_QUERY, STATS_CMD_PREPARE, STATS_CMD_EXECUTE, STATS_CMD_FETCH,
    STATS_CMD_CLOSE, STATS_CMD_RESET, STATS_CMD_LONG_DATA, STATS_CMD_PING,
    STATS_CMD_INIT_DB, STATS_CMD_QUIT, STATS_CMD_CHANGE_USER, STATS_CMD_RESET_CONNECTION,
    STATS_CMD_SET_OPTION, STATS_CMD_FIELD_LIST, STATS_CMD_STATISTICS, STATS_CMD_OTHER,
    STATS_CMD_N,
};

enum stats_result {
    STATS_OK,          /* answered OK or with rows */
    STATS_ERROR,       /* answered with ERR (by a backend or the router) */
    STATS_REJECTED,    /* refused by the router before any backend saw it */
    STATS_NO_REPLY,    /* COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA */
    STATS_RESULT_N,
};

/* Why the router refused a statement. */
enum stats_reject {
    STATS_REJECT_ANALYZER,     /* the analyzer could not route it safely */
    STATS_REJECT_RULE,         /* an operator deny rule */
    STATS_REJECT_CROSS_SHARD,  /* a transaction or pinned session touched another shard */
    STATS_REJECT_MEMORY,       /* router_memory_limit or the session's own limits */
    STATS_REJECT_PARAMS,       /* a prepared statement's key parameter was unusable */
    STATS_REJECT_LEASE,        /* a write while the router lease has run out */
    STATS_REJECT_NO_STANDBY,   /* a write or COMMIT while no standby acknowledges
                                  its shard's master (control_writes_refused()) */
    STATS_REJECT_N,
};

/* Client connection states as gauges (a session is in exactly one). */
enum stats_conn {
    STATS_CONN_LOGIN,          /* greeting, auth switch */
    STATS_CONN_IDLE,           /* between statements */
    STATS_CONN_WAITING,        /* waiting for a backend connection */
    STATS_CONN_ACTIVE,         /* syncing or forwarding a statement */
    STATS_CONN_CLOSING,
    STATS_CONN_N,
};

#define STATS_ERR_SLOTS 64     /* distinct (code, origin) pairs per worker; then "other" */

struct stats_err {
    _Atomic uint32_t key;      /* code | origin << 16, 0: free; written once */
    _Atomic uint64_t count;
};

/* One shard's counters in one worker. */
struct stats_shard {
    char                name[64];
    _Atomic uint64_t    statements;       /* sent to the shard */
    _Atomic uint64_t    errors;           /* answered with ERR by the shard */
    _Atomic uint64_t    bytes_sent;       /* statement bytes, headers included */
    _Atomic uint64_t    bytes_received;   /* reply bytes relayed */
    _Atomic uint64_t    rows;             /* result-set rows relayed */
    _Atomic uint64_t    lat[STATS_LAT_N]; /* per bucket, not cumulative */
    _Atomic uint64_t    lat_sum_us;
    _Atomic uint64_t    pool_waits;       /* statements that queued for a connection */
    _Atomic uint64_t    pool_timeouts;    /* ... and gave up (pool_wait_timeout_ms) */
    _Atomic uint64_t    conn_idle;        /* gauges of this worker's pool */
    _Atomic uint64_t    conn_waiting;
    struct stats_shard *next;
};

/* Heavy hitters: the space-saving sketch (Metwally et al.) over user names,
 * k entries. A user in the sketch has count - err <= true count <= count;
 * any user with more than total/k statements is in it. */
#define STATS_TOPK 64

struct stats_top_entry {
    char     user[64];
    uint64_t hash;         /* of <user>; 0: free */
    uint64_t count;        /* statements (an overestimate by at most <err>) */
    uint64_t err;
    uint64_t rows;         /* since the user entered the sketch */
    uint64_t bytes;
};

struct stats_top {
    struct stats_top_entry e[STATS_TOPK];
};

/* Per-vbucket load: plain, worker-only, copied out by a posted request. */
struct stats_vb {
    uint64_t statements, rows, bytes;
};

struct stats {
    _Atomic uint64_t    sessions_accepted;
    _Atomic uint64_t    cmd[STATS_CMD_N][STATS_RESULT_N];
    _Atomic uint64_t    routed;           /* statements routed by their key */
    _Atomic uint64_t    rejects[STATS_REJECT_N];
    _Atomic uint64_t    backend_errors;   /* backend lost or not opened while a client waited */
    _Atomic uint64_t    conns[STATS_CONN_N];
    _Atomic uint64_t    err_other;        /* errors past STATS_ERR_SLOTS distinct codes */
    struct stats_err    errs[STATS_ERR_SLOTS];
    struct stats_shard *_Atomic shards;   /* prepended only; see above */
    struct stats_shard  spare;            /* counts nowhere: when an entry cannot be made */

    /* Worker-only (read through a posted request). */
    struct stats_top    top;
    struct stats_vb    *vb;               /* n_vb entries, or NULL */
    uint32_t            n_vb;
};

/* Error origins (the "origin" label). */
enum stats_origin { STATS_FROM_BACKEND = 0, STATS_FROM_ROUTER = 1 };

/*
 * What a session keeps for its statement in flight and its totals. Lives in
 * struct session; only its worker touches it.
 */
struct stats_sess {
    struct stats_shard *shard;     /* where the statement in flight went, or NULL */
    uint64_t            sent_ns;   /* when it was sent (monotonic) */
    uint64_t            sent_bytes;
    uint32_t            vbucket;   /* STATS_NO_VB unless routed by key */
    uint8_t             cmd;       /* the command byte */
    bool                counted;   /* its result is counted already */
    unsigned            top_slot;  /* hint into stats.top; checked against <user_hash> */
    uint64_t            user_hash;
    uint64_t            bytes_in, bytes_out;   /* the session's totals */
    uint64_t            start_ms;  /* when the session began (now_ms()) */
};

#define STATS_NO_VB UINT32_MAX

/* Allocates zeroed counters; NULL when out of memory. Any thread. */
struct stats *stats_new(void);
/* Frees <st> and its shard entries: only when no reader or writer is left. */
void stats_free(struct stats *st);

/* Writer: the entry of shard <name>, made on first use; never NULL (out of
 * memory, a spare entry no reader lists). */
struct stats_shard *stats_shard_of(struct stats *st, const char *name);

/* Reader: the first shard entry (then ->next). */
struct stats_shard *stats_shards(struct stats *st);

enum stats_cmd stats_cmd_of(uint8_t com);
const char *stats_cmd_name(enum stats_cmd c);
const char *stats_result_name(enum stats_result r);
const char *stats_reject_name(enum stats_reject r);
const char *stats_conn_name(enum stats_conn c);
/* The latency bucket of <us>: 0..STATS_LAT_N-1. */
unsigned stats_lat_bucket(uint64_t us);
uint64_t stats_now_ns(void);
/* FNV-1a of the NUL-terminated <s>, never 0. */
uint64_t stats_hash(const char *s);

/* ---- writer side: the hooks the data path calls (worker thread) ---- */

/* A command <com> arrives from <user> (counted in the top users once
 * stats_user() was called): remembers it; a command without a reply is
 * counted at once. A previous command still uncounted was answered by the
 * router with a packet of its own (COM_STATISTICS, COM_SET_OPTION's EOF,
 * COM_CHANGE_USER): it counts as ok now. */
void stats_begin(struct stats *st, struct stats_sess *ss, uint8_t com, const char *user);
/* The statement was routed by its key to <vbucket>. */
static inline void stats_route(struct stats_sess *ss, uint32_t vbucket)
{
    ss->vbucket = vbucket;
}
/* The statement goes to shard entry <sh> now (<bytes> with headers). */
void stats_sent(struct stats_sess *ss, struct stats_shard *sh, uint64_t bytes);
/* The backend's reply ended: <is_error>/<err_no>, <rows> and <bytes>
 * relayed. Counts latency, shard, vbucket and user load. */
void stats_reply(struct stats *st, struct stats_sess *ss, bool is_error, uint16_t err_no,
                 uint64_t rows, uint64_t bytes);
/* The router answered the command itself, with ERR when <is_error> (the
 * error code is counted where the packet is built: stats_error()). */
void stats_answer(struct stats *st, struct stats_sess *ss, bool is_error);
/* The router refused the command for <why> (then answers it: stats_answer()). */
void stats_reject(struct stats *st, struct stats_sess *ss, enum stats_reject why);
/* An error code seen (<origin>). */
void stats_error(struct stats *st, uint16_t code, enum stats_origin origin);
/* A session moved between connection states (<from> < 0: new; <to> < 0: gone). */
static inline void stats_conn_move(struct stats *st, int from, int to)
{
    if (from >= 0)
        STATS_DEC(st->conns[from]);
    if (to >= 0)
        STATS_INC(st->conns[to]);
}
/* The session's user is <user> now (login, COM_CHANGE_USER). */
void stats_user(struct stats_sess *ss, const char *user);

/* The space-saving update: one statement by <user> (hash <hash>), with
 * <rows> and <bytes>. <*slot> is a hint, updated. Pure. */
void stats_top_add(struct stats_top *t, const char *user, uint64_t hash, unsigned *slot,
                   uint64_t rows, uint64_t bytes);

/* Reader: statements with a counted result, and rejects, of one worker. */
uint64_t stats_statements(struct stats *st);
uint64_t stats_rejected(struct stats *st);

/* Reader: sums the sketches <in>[0..n) of several workers by user into
 * <out> (room for <cap>; n * STATS_TOPK is always enough), most statements
 * first. Returns how many. Pure. */
size_t stats_top_merge(const struct stats_top *in, unsigned n, struct stats_top_entry *out,
                       size_t cap);

/* Worker: sizes the per-vbucket arrays for a map of <n> vbuckets (kept
 * when the size is unchanged). */
void stats_vb_size(struct stats *st, uint32_t n);

#endif
