/*
 * tests/unit/core/harness.h - the daemon core (worker, session, pool,
 * backend, mapwatch) run for real inside one test process, one step at a
 * time.
 *
 * A harness is a struct router with one worker made by worker_new(), whose
 * event_base the test thread runs itself (harness_step()). Clients are the
 * far ends of socketpairs handed to session_new(), speaking the MySQL client
 * protocol from the test (hclient_*). Shards are fake MySQL servers on
 * loopback sockets served from the same event_base (fake_*): each sends a
 * HandshakeV10, checks the router's native_password login, answers the
 * server-settings check, then answers statements with a one-row result
 * naming itself ("s1"), and drops the connection at a chosen phase.
 *
 * Faults: harness_alloc_fail() makes the Nth allocation of a kind fail -
 * the C allocators as called by the daemon's code (the test binary is
 * linked with -Wl,--wrap=malloc,...; production binaries are not, so this
 * costs them nothing) or libevent's (event_set_mem_functions). Only the
 * daemon's own work is counted: the harness, the fakes and the test code
 * pause the count while they run. Named fault points (router/fault.h) are
 * set with fault_set().
 *
 * Environment: HARNESS_LOG=debug (or info, warn, error) shows the daemon's
 * log on stderr (default: none); HARNESS_ONLY_N, HARNESS_ALLOC_TRACE and
 * HARNESS_LEAK_EACH help find an allocation failure that misbehaves.
 *
 * One thread; not reentrant. Nothing here is a stand-in for daemon code:
 * the code under test is the shardwire executable's, linked as a library.
 */
#ifndef SHARDWIRE_TESTS_UNIT_CORE_HARNESS_H
#define SHARDWIRE_TESTS_UNIT_CORE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/worker.h"

struct session;
struct smap;

#define HARNESS_MAX_FAKES    4
#define HARNESS_MAX_WORKERS  4
#define HARNESS_MAX_CONNS    64      /* per fake, over its life */
#define HARNESS_TIMEOUT_MS   5000    /* default deadline of a wait */

#define HARNESS_APP_USER     "app"
#define HARNESS_APP_PASSWORD "apppw"
#define HARNESS_BE_PASSWORD  "bepw"

/* Where a fake shard drops a connection (closes it without a word). */
enum fake_drop {
    FAKE_DROP_NONE,
    FAKE_DROP_ACCEPT,        /* at once, before the greeting */
    FAKE_DROP_LOGIN,         /* the login response read, not answered */
    FAKE_DROP_CHECK,         /* the server-settings check read, not answered */
    FAKE_DROP_QUERY,         /* a client statement read, not answered */
    FAKE_DROP_REPLY,         /* half the reply sent (column count and definition) */
    FAKE_DROP_IDLE,          /* the reply sent in full, then closed */
    FAKE_DROP_SET,           /* a SET read (the router replaying session state) */
    FAKE_DROP_N_PHASES,
};

struct fake;

struct fake_conn {
    struct fake *owner;
    int       fd;            /* -1: closed */
    uint8_t   in[8192];
    size_t    in_len;
    unsigned  phase;         /* 0 greeting sent, 1 logged in, 2 checked */
    bool      used;
    bool      in_txn;        /* BEGIN seen, no COMMIT/ROLLBACK yet */
};

struct fake {
    char             name[16];     /* what its rows say */
    int              lfd;
    uint16_t         port;
    char             addr[32];     /* "127.0.0.1:PORT" */
    enum fake_drop   drop;         /* where to drop ... */
    unsigned         drop_times;   /* ... this many connections (0: every one) */
    bool             refuse_login; /* answer every login with ERR 1045 */
    unsigned         n_accepted;
    unsigned         n_logins;     /* logins that passed the password check */
    unsigned         n_bad_logins;
    unsigned         n_queries;    /* client statements received */
    unsigned         n_prepares;
    unsigned         n_executes;
    unsigned         n_dropped;
    char             last_query[256];
    struct fake_conn conns[HARNESS_MAX_CONNS];
    void            *ev_accept;    /* struct event * */
    void            *ev_conn[HARNESS_MAX_CONNS];
};

struct harness {
    struct config  *cfg;
    struct router   r;
    struct worker  *w;             /* r.workers[0]: the fakes run on its loop */
    struct worker  *workers[HARNESS_MAX_WORKERS];
    struct fake     fakes[HARNESS_MAX_FAKES];
    unsigned        n_fakes;
    char           *map_path;      /* the map file mapwatch reads (harness_write_map) */
};

/* What a client read back. */
struct hresult {
    int      kind;                 /* HRESULT_OK / HRESULT_ERR / HRESULT_ROWS / HRESULT_EOF
                                      (connection closed) / HRESULT_TIMEOUT */
    uint16_t err_no;
    char     msg[512];             /* ERR message */
    unsigned n_rows;
    char     value[256];           /* first column of the first row */
    uint16_t status;
    uint32_t stmt_id;              /* PREPARE OK */
    uint16_t n_params;
};

enum { HRESULT_OK, HRESULT_ERR, HRESULT_ROWS, HRESULT_EOF, HRESULT_TIMEOUT };

struct hclient {
    int             fd;            /* the test's end */
    struct session *s;             /* the router's end (NULL once it is freed) */
    struct worker  *w;             /* its worker */
    uint64_t        id;            /* the session's id */
    uint8_t         buf[1 << 16];
    size_t          len;
    bool            eof;
    uint8_t         scramble[20];
};

/*
 * Makes a harness with <n_fakes> fake shards ("s1", "s2", ...; none
 * started dropping) and one worker, using the config text <extra> on top of
 * the harness's own (database app, user app/apppw, backend_user sw/bepw,
 * listen on a free port, one worker; "workers = N" in <extra> makes up to
 * HARNESS_MAX_WORKERS, all stepped by harness_step()). Returns NULL (and
 * prints why) on failure. Workers have no map until harness_publish().
 */
struct harness *harness_new(unsigned n_fakes, const char *extra);
void harness_free(struct harness *h);

/*
 * A map from <text> in mapcodec syntax, where "@1".."@4" stand for the
 * fakes' addresses ("shard s1 master=@1"). NULL (printed) if it does not
 * parse.
 */
struct smap *harness_map(struct harness *h, const char *text);

/* Publishes <m> as mapwatch does (takes the reference) and steps until the
 * worker has applied or dropped it. Returns mapwatch_publish()'s result. */
int harness_publish(struct harness *h, struct smap *m);

/* True when worker <w> runs a map and its pools match it: one per shard,
 * same name, same index. */
bool harness_pools_match(const struct worker *w);

/* Writes <text> (as for harness_map()) to the map file named by the config
 * key map_file (h->map_path). Returns 0 or -1. */
int harness_write_map(struct harness *h, const char *text);

/* Runs the workers' once-a-second sweep (pool limits, waiters retrying a
 * connection that could not be started) every <ms> instead. */
void harness_sweep_every(struct harness *h, unsigned ms);

/* Runs one iteration of every worker's event loop, waiting at most <ms>
 * (with several workers: 2 ms) for something to happen. */
void harness_step(struct harness *h, unsigned ms);
/* Steps until nothing is active, or about <ms> passed. */
void harness_settle(struct harness *h, unsigned ms);

/* ---- clients ---- */

/* A new session on a socketpair, as an accepted connection would be.
 * <c->s> is NULL when session_new() refused it. */
void hclient_open(struct harness *h, struct hclient *c);
/* The same on worker <wi>. */
void hclient_open_on(struct harness *h, struct hclient *c, unsigned wi);
void hclient_close(struct harness *h, struct hclient *c);

/* hclient_open_on() and a login as the app user. Returns 0, or -1
 * (printed). */
int hclient_ready(struct harness *h, struct hclient *c, unsigned wi);

/* A harness (as harness_new()) running map <map> (as harness_map()), with
 * client <c> logged in on worker 0 (<c> may be NULL). NULL (printed) when
 * any of it failed. */
struct harness *harness_start(unsigned n_fakes, const char *extra, const char *map,
                              struct hclient *c);

/* Reads the greeting and logs in as <user>/<password> to database "app".
 * Returns the server's answer (OK, ERR, EOF, TIMEOUT). */
struct hresult hclient_login(struct harness *h, struct hclient *c, const char *user,
                             const char *password);

/* Sends a command: COM_QUERY <sql>; COM_STMT_PREPARE <sql>; EXECUTE of
 * <stmt_id> with <n_params> integer parameters <params> (types sent). */
int hclient_query_send(struct hclient *c, const char *sql);
int hclient_prepare_send(struct hclient *c, const char *sql);
int hclient_execute_send(struct hclient *c, uint32_t stmt_id, unsigned n_params,
                         const int64_t *params);
int hclient_send(struct hclient *c, uint8_t cmd, const void *arg, size_t len);

/* Reads one whole reply of kind <reply_kind> (protocol/reply.h), stepping
 * the loop until it is in, the connection closes or <ms> passed. */
struct hresult hclient_reply(struct harness *h, struct hclient *c, int reply_kind, unsigned ms);

/* COM_QUERY and its reply. */
struct hresult hclient_query(struct harness *h, struct hclient *c, const char *sql);

/* True while the session is in the worker's list. */
bool hclient_alive(struct harness *h, const struct hclient *c);

/* ---- fake shards ---- */

/* Open connections of fake <i> (1-based like its name). */
unsigned fake_open(struct harness *h, unsigned i);
struct fake *fake_of(struct harness *h, unsigned i);

/* ---- allocation faults ---- */

enum harness_alloc_kind {
    HARNESS_ALLOC_LIBC,      /* malloc, calloc, realloc, strdup, strndup from daemon code */
    HARNESS_ALLOC_EVENT,     /* libevent's own allocations (buffers, events) */
    HARNESS_ALLOC_ANY,       /* both, counted together */
};

/* From now on count allocations of <kind> and fail the <nth> one (1-based;
 * 0: count only). */
void harness_alloc_fail(enum harness_alloc_kind kind, uint64_t nth);
/* Stops failing and counting; returns how many were counted, and whether
 * the chosen one was reached (<*fired>). */
uint64_t harness_alloc_stop(bool *fired);

/* HARNESS_ONLY_N=N in the environment: the N to try alone when looping
 * over allocation failures (0: all). With HARNESS_ALLOC_TRACE=1 the failed
 * allocation's stack is printed (sanitizer builds). */
uint64_t harness_only_n(void);

/* Leak check now (LeakSanitizer builds; elsewhere returns 0): nonzero if
 * memory is unreachable. */
int harness_leak_check(void);

#endif
