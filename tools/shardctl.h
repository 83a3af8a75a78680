/*
 * tools/shardctl.h - shared parts of the shardctl verbs (private to tools/).
 *
 * shardctl is a short-lived CLI: it may block, print and exit. Each verb is
 * one function in tools/shardctl_<verb>.c returning the process exit code.
 */
#ifndef SHARDWIRE_TOOLS_SHARDCTL_H
#define SHARDWIRE_TOOLS_SHARDCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/analyze.h"
#include "shardmap/movejournal.h"
#include "shardmap/zkauth.h"

struct smap;
struct zkstore_admin;

/* Exit codes, documented in docs/shardctl.md: keep them stable. */
enum shardctl_exit {
    SHARDCTL_OK          = 0,
    SHARDCTL_USAGE       = 1,   /* bad command line */
    SHARDCTL_UNREACHABLE = 2,   /* ZooKeeper unreachable, or no cluster at --root */
    SHARDCTL_CONFLICT    = 3,   /* compare-and-set lost: someone else changed the map */
    SHARDCTL_INVALID     = 4,   /* refused: the change or the map is invalid */
    SHARDCTL_FAILED      = 5,   /* anything else (I/O, unexpected ZooKeeper error) */
    SHARDCTL_EXISTS      = 6,   /* init: a cluster already exists at --root */
    SHARDCTL_NOAUTH      = 7,   /* ZooKeeper's ACL refuses these credentials (or none) */
};

#define SHARDCTL_MAX_SHARD_ARGS 4096
#define SHARDCTL_MAX_STANDBY_ARGS 16
#define SHARDCTL_MAX_ROUTER_ARGS 64

struct shardctl_opts {
    const char *zk;             /* --zk, or $SHARDWIRE_ZK, or 127.0.0.1:2181 */
    bool        zk_given;       /* --zk or $SHARDWIRE_ZK was set */
    const char *root;           /* --root, default /shardwire */
    const struct zkauth *auth;  /* from --auth-file, $SHARDWIRE_ZK_AUTH_FILE or
                                   $SHARDWIRE_ZK_AUTH; NULL: no credentials */
    const char *acl;            /* --acl open|protected (init); NULL: protected */
    const struct zkauth *router_auth;  /* --router-auth-file (init); NULL: none */
    unsigned    timeout_ms;     /* --timeout SECONDS: connect and per-call deadline */
    bool        json;           /* --json */
    const char *map_file;       /* --map FILE (explain, dump-map) */
    const char *database;       /* --database NAME (explain) */
    const char *user;           /* --user KEY (explain): a session scoped to that user */
    const char *sql_mode;       /* --sql-mode MODES (explain): the session's sql_mode */
    const char *config_file;    /* --config FILE: a router's config (explain) */
    uint32_t    vbuckets;       /* --vbuckets N (init) */
    const char *key_columns;    /* --key-columns a,b (init) */
    const char *key_type;       /* --key-type int|string (init) */
    const char *shard_args[SHARDCTL_MAX_SHARD_ARGS];   /* --shard SPEC (init) */
    unsigned    n_shard_args;
    const char *standby_args[SHARDCTL_MAX_STANDBY_ARGS];  /* --standby H:P (add-shard) */
    unsigned    n_standby_args;
    const char *to;             /* --to HOST:PORT (failover) */
    bool        force;          /* --force (failover: the master still answers) */
    const char *control_user;   /* --control-user (else $SHARDWIRE_CONTROL_USER) */
    char       *control_password; /* read from --control-password-file */
    unsigned    apply_timeout_ms; /* --apply-timeout SECONDS (failover, rejoin) */
    const char *repl_user;      /* --repl-user (else $SHARDWIRE_REPL_USER) */
    char       *repl_password;  /* read from --repl-password-file */
    unsigned    router_wait_ms; /* --router-wait SECONDS (failover, switchover, move) */
    bool        have_max_lag;   /* --max-lag given */
    unsigned    max_lag_s;      /* --max-lag SECONDS (switchover) */
    const char *abort_id;       /* --abort ID (move) */
    unsigned    rate;           /* --rate ROWS (move: rows per second; 0 unlimited) */
    const char *routers[SHARDCTL_MAX_ROUTER_ARGS];  /* --router HOST:PORT (top) */
    unsigned    n_routers;
    unsigned    interval_ms;    /* --interval SECONDS (top) */
    bool        have_interval;
    bool        dry_run;        /* --dry-run (rebalance, remove-shard): plan, print, stop */
    bool        abandon;        /* --abandon (rebalance, remove-shard): drop an unfinished plan */
    unsigned    parallel;       /* --parallel N (rebalance, remove-shard); 0: default 2 */
    const char *weight;         /* --weight vbuckets|bytes|rows|statements (rebalance) */
    const char *auth_file;      /* --auth-file FILE as given (passed on to child moves) */
    const char *control_password_file;  /* --control-password-file as given (same) */
    bool        have_expect;    /* --expect-version N given */
    uint64_t    expect_version; /* refuse (conflict) unless the map is at N */
    int         argc;           /* operands after the verb */
    char      **argv;
};

int shardctl_explain(const struct shardctl_opts *o);
int shardctl_dump_map(const struct shardctl_opts *o);
int shardctl_init(const struct shardctl_opts *o);
int shardctl_status(const struct shardctl_opts *o);
int shardctl_routers(const struct shardctl_opts *o);
int shardctl_add_shard(const struct shardctl_opts *o);
int shardctl_set_master(const struct shardctl_opts *o);
int shardctl_watch(const struct shardctl_opts *o);
int shardctl_failover(const struct shardctl_opts *o);
int shardctl_rejoin(const struct shardctl_opts *o);
int shardctl_drain(const struct shardctl_opts *o);
int shardctl_undrain(const struct shardctl_opts *o);

/* One HTTP/1.0 request to a router's admin listener at <hostport>, with
 * basic auth when <user> is set, all within <timeout_ms>. Returns 0 with
 * *<status> and the malloc'd *<body>, or -1 with a malloc'd *<errp>. */
int shardctl_http(const char *hostport, const char *method, const char *path,
                  const char *user, const char *password, unsigned timeout_ms,
                  int *status, char **body, char **errp);
int shardctl_switchover(const struct shardctl_opts *o);
int shardctl_move(const struct shardctl_opts *o);
int shardctl_moves(const struct shardctl_opts *o);
int shardctl_top(const struct shardctl_opts *o);
int shardctl_rebalance(const struct shardctl_opts *o);
int shardctl_remove_shard(const struct shardctl_opts *o);

#define SHARDCTL_MAX_PARALLEL 16

/* An unfinished move: its journal's name (<root>/moves/<id>) and content. */
struct shardctl_active_move {
    char                id[64];
    struct move_journal j;
};
/* Reads every unfinished move's journal into *<out> (malloc'd, *<n> of
 * them; unreadable ones are left out). Returns an exit code after printing
 * the problem. */
int shardctl_active_moves(struct zkstore_admin *za, struct shardctl_active_move **out,
                          unsigned *n);

/* For `shardctl moves`: an unfinished rebalance or remove-shard plan and
 * its moves' states, as a "plan" member of <top> (JSON) or, with <top>
 * NULL, one line on stdout. Nothing when there is none or it cannot be
 * read. */
struct json_t;
void shardctl_plan_summary(const struct shardctl_opts *o, struct zkstore_admin *za,
                           struct json_t *top);

/* Adds up each vbucket's load since start (<by>: "bytes", "rows" or
 * "statements") over every registered router's /status into <load>
 * (<n> entries, zeroed first); *<answered> counts the routers that replied.
 * Routers that do not answer are reported on stderr and left out. */
void shardctl_vbucket_load(const struct shardctl_opts *o, const char *by, double *load,
                           uint32_t n, unsigned *answered);

/* The admin listener's address in a router registration <payload> ("...
 * admin=PORT" or "admin=HOST:PORT" on its first line; a bare port is on
 * loopback) into <out>. Returns 0, or -1 if the router has none. */
int shardctl_admin_of(const char *payload, char *out, size_t cap);

/* Prints "shardctl: <msg>" to stderr. */
void shardctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loads the map from --map FILE, else from ZooKeeper. Returns an exit code;
 * on SHARDCTL_OK *<out> holds a reference the caller drops. */
int shardctl_load_map(const struct shardctl_opts *o, struct smap **out);

/* Connects to --zk with the --timeout deadline. Returns an exit code; on
 * SHARDCTL_OK *<out> is the connection (zkstore_admin_free() it). */
int shardctl_connect(const struct shardctl_opts *o, struct zkstore_admin **out);

/*
 * Read-modify-write of the map in ZooKeeper: loads it, checks
 * --expect-version, lets <fn> change a builder holding a copy, bumps the
 * version and writes it back with a compare-and-set. <fn> returns 0, or -1
 * with a malloc'd *<errp> (reported, exit SHARDCTL_INVALID); it may set
 * *<unchanged> to skip the write. On SHARDCTL_OK, *<before> and *<after>
 * (each may be NULL) get references to the old and new map.
 */
struct smap_builder;
typedef int shardctl_change_fn(struct smap_builder *b, const struct smap *cur, void *ctx,
                               bool *unchanged, char **errp);
int shardctl_change(const struct shardctl_opts *o, shardctl_change_fn *fn, void *ctx,
                    struct smap **before, struct smap **after);

/* Test hook (docs/shardctl.md): sleeps $SHARDCTL_TEST_PAUSE_MS between a
 * verb's checks and its write, so tests can make two writers race
 * deterministically. Does nothing when the variable is unset. */
void shardctl_test_pause(void);

/* Prints <m> as JSON (status) or the human table; shared by status and the
 * change verbs. */
int shardctl_print_status(const struct shardctl_opts *o, const struct smap *m,
                          struct zkstore_admin *za);

/* Prints one progress line of a long verb: "<verb>: <line>", or with --json
 * {"event":"step","ms":N,"line":"..."} (N: ms since the first step);
 * flushed at once. */
void shardctl_step(const struct shardctl_opts *o, const char *verb, const char *line);

/* This run's id in journals and runner nodes: "shardctl-HOST-PID". */
void shardctl_runner_id(char *buf, size_t cap);

/* Writes step <state> of the failover journal <j> of <shard> (router/journal.h)
 * as "shardctl-HOST-PID", with the extra words <fmt>. Returns 0, or -1 after
 * printing why (someone else wrote the journal: stop). */
struct journal;
int shardctl_journal(struct zkstore_admin *za, const char *shard, struct journal *j,
                     const char *state, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * The start of a verb that changes a shard's master (failover, switchover):
 * parses --to into <to>, connects, loads the map (*<cur>, *<cas>), checks
 * that the shard argv[0] exists and reads its journal into <j>, refusing
 * one in progress unless --force (or, for <verb> switchover, a switchover
 * whose runner is gone: the caller resumes it). Returns an exit code after printing why
 * (then nothing is left open); on SHARDCTL_OK the caller frees *<za> and
 * drops *<cur>.
 */
struct smap_endpoint;
/* True when the runner that journaled <j> is gone: a shardctl of this host
 * whose process no longer exists, or (another host, a router) one silent
 * for a minute since its last step. */
bool shardctl_runner_gone(const struct journal *j);

int shardctl_open_shard(const struct shardctl_opts *o, const char *verb,
                        struct smap_endpoint *to, struct zkstore_admin **za, struct smap **cur,
                        int32_t *cas, struct journal *j);

/* Maps a zkstore result (enum zkstore_rc) to an exit code. */
int shardctl_exit_of(int zkstore_rc);

/* Loads a credential file for option <what>. Returns 0, or -1 after
 * printing the problem. */
int shardctl_load_auth(const char *what, const char *path, struct zkauth *out);

#endif
