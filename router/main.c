/*
 * router/main.c - the shardwire daemon: command line, start-up, signals,
 * shutdown.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <mysql.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/config.h"
#include "router/fault.h"
#include "router/control.h"
#include "router/clusterview.h"
#include "router/coordinator.h"
#include "router/decide.h"
#include "router/leasepeer.h"
#include "router/log.h"
#include "router/mapwatch.h"
#include "router/pool.h"
#include "router/rules.h"
#include "router/worker.h"
#include "shardmap/mapcache.h"
#include "shardmap/smap.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardwire [-c FILE] [--check-config] [--help] [--version]\n"
            "\n"
            "MySQL wire-protocol sharding router: routes each statement by its shard key\n"
            "(userid) to the master of the shard that owns it.\n"
            "\n"
            "  -c, --config FILE   configuration file (default /etc/shardwire/shardwire.conf)\n"
            "  -t, --check-config  load and check the configuration and the map, then exit\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop accepting, let statements in flight finish\n"
            "(shutdown_timeout_ms), then exit; SIGHUP re-reads map_file.\n"
            "Docs: docs/config.md, docs/query-rules.md, docs/architecture.md\n");
}

struct daemon_state {
    struct router      router;
    struct mapwatch   *mw;
    struct event_base *base;
    struct event      *tick;
    struct event      *drain_ev;   /* SIGTERM's drain_delay_ms, then shut down */
    struct event      *freeze_tick; /* a move's freeze to acknowledge (router.freeze_ev) */
    bool               stopping;   /* a first SIGTERM/SIGINT came */
    bool               shutting;   /* the workers were told to stop */
};

/* The first map's cluster settings decide the shard key; the config's value
 * is the default for maps that do not say. */
static void merge_key_config(struct config *cfg, const struct smap *m)
{
    decide_analyze_config(&cfg->analyze, &cfg->analyze, m);
}

/* Compiles the config's rules (a bad regex stops the start). */
static int load_rules(struct router *r, char **errp)
{
    return decide_rules_load(r->cfg, &r->rules, errp);
}

/* The TLS context offered to clients, when the config names a certificate. */
static int load_tls(struct router *r, char **errp)
{
    const struct config *cfg = r->cfg;
    char buf[256];
    SSL_CTX *ctx;

    if (!cfg->tls_cert)
        return 0;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    if (cfg->tls_ca) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1)
            goto fail;
        /* Client certificates are checked when presented, not required. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    r->tls = ctx;
    return 0;
fail:
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    if (asprintf(errp, "tls (cert %s, key %s): %s", cfg->tls_cert, cfg->tls_key, buf) < 0)
        *errp = NULL;
    SSL_CTX_free(ctx);
    return -1;
}

/*
 * Every client and backend connection is a file descriptor. With a limit
 * below max_client_connections, accept() fails with EMFILE long before the
 * configured cap; raise the soft limit as far as the hard one allows and
 * say clearly when that is not enough.
 */
static void check_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)cfg->max_client_connections + (rlim_t)cfg->pool_max_per_shard * 4 +
                  64 + 8 * (rlim_t)cfg->workers;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit up = rl;

        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log_warn("start: open file limit is %llu, below the %llu that max_client_connections=%u "
                 "and the backend pools need; clients beyond it wait or fail at connect. Raise "
                 "it (ulimit -n, LimitNOFILE=) or lower max_client_connections",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need,
                 cfg->max_client_connections);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct daemon_state *d = arg;
    struct router *r = &d->router;

    (void)fd;
    (void)what;
    if (d->stopping) {
        /* The main loop runs until every worker is done, so that a second
         * signal is still heard during a graceful shutdown. */
        if (atomic_load(&r->n_workers_done) == r->n_workers)
            event_base_loopexit(d->base, NULL);
        return;
    }
    mapwatch_tick(d->mw);
}

/* Stops accepting and lets every worker finish its statements in flight
 * within shutdown_timeout_ms (then ends the loop: see on_tick). */
static void begin_shutdown(evutil_socket_t fd, short what, void *arg)
{
    struct daemon_state *d = arg;
    struct router *r = &d->router;
    static const struct timeval fast = { 0, 50000 };

    (void)fd;
    (void)what;
    if (d->shutting)
        return;
    d->shutting = true;
    for (unsigned i = 0; i < r->n_workers; i++)
        worker_shutdown(r->workers[i], r->cfg->shutdown_timeout_ms);
    /* Poll for the workers' end more often than once a second. */
    event_del(d->tick);
    event_add(d->tick, &fast);
}

/* Made active by mapwatch_publish() for a map that freezes vbuckets; looks
 * again every millisecond until the freeze is acknowledged (the counts on
 * the frozen vbuckets fall as their transactions end). Idle otherwise. */
static void on_freeze_tick(evutil_socket_t fd, short what, void *arg)
{
    static const struct timeval again = { 0, 1000 };
    struct daemon_state *d = arg;

    (void)fd;
    (void)what;
    /* a draining router still serves: it still acknowledges */
    if (!d->shutting && mapwatch_freeze_tick(d->mw))
        evtimer_add(d->freeze_tick, &again);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon_state *d = arg;
    struct router *r = &d->router;

    (void)what;
    if (sig == SIGHUP) {
        mapwatch_reload(d->mw);
        return;
    }
    if (sig == SIGUSR1) {      /* log rotation: reopen log_file by name */
        log_reopen();
        return;
    }
    if (d->stopping && !d->shutting) {
        /* A second signal while draining: stop waiting for the balancer. */
        log_info("shutdown: second signal; ending the drain delay deadline_ms=%u",
                 r->cfg->shutdown_timeout_ms);
        event_del(d->drain_ev);
        begin_shutdown(-1, 0, d);
        return;
    }
    if (d->stopping) {
        /* _exit, not exit: exit handlers (OpenSSL's, the sanitizers')
         * would run while worker threads still use what they free. */
        log_warn("shutdown: another signal, exiting now");
        _exit(1);
    }
    d->stopping = true;
    atomic_store(&r->draining, true);
    if (r->cfg->drain_delay_ms == 0 || !d->drain_ev) {
        log_info("shutdown: signal=%d deadline_ms=%u", (int)sig, r->cfg->shutdown_timeout_ms);
        begin_shutdown(-1, 0, d);
        return;
    }
    /* /health says 503 from now on; the listener stays open and every
     * session goes on until the balancer has seen it and stopped sending
     * new clients here. */
    log_info("shutdown: signal=%d draining for drain_delay_ms=%u before closing", (int)sig,
             r->cfg->drain_delay_ms);
    {
        struct timeval tv = { r->cfg->drain_delay_ms / 1000,
                              (suseconds_t)(r->cfg->drain_delay_ms % 1000) * 1000 };

        event_add(d->drain_ev, &tv);
    }
}

static void libevent_log(int severity, const char *msg)
{
    if (severity >= EVENT_LOG_ERR)
        log_error("libevent: %s", msg);
    else if (severity >= EVENT_LOG_WARN)
        log_warn("libevent: %s", msg);
    else
        log_debug("libevent: %s", msg);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "check-config", no_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = "/etc/shardwire/shardwire.conf";
    bool check_only = false;
    struct daemon_state d;
    struct router *r = &d.router;
    struct event *sigs[4], *tick;
    static const struct timeval one_second = { 1, 0 };
    static const int signos[4] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
    struct smap *m;
    char *err = NULL;
    enum log_level level;
    int c;

    while ((c = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 't': check_only = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("shardwire %s\n", SHARDWIRE_VERSION); return 0;
        default:  usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    memset(&d, 0, sizeof(d));
    r->cfg = config_load(path, &err);
    if (!r->cfg) {
        fprintf(stderr, "shardwire: config: %s\n", err);
        free(err);
        return 1;
    }
    if (load_rules(r, &err) < 0) {
        fprintf(stderr, "shardwire: config: %s: %s\n", path, err);
        free(err);
        rules_free(r->rules);
        config_free(r->cfg);
        return 1;
    }
    if (load_tls(r, &err) < 0) {
        fprintf(stderr, "shardwire: config: %s: %s\n", path, err);
        free(err);
        rules_free(r->rules);
        config_free(r->cfg);
        return 1;
    }
    if (check_only && r->cfg->zookeeper) {
        printf("shardwire: %s: configuration OK (map source: ZooKeeper %s, not contacted)\n",
               path, r->cfg->zookeeper);
        rules_free(r->rules);
        SSL_CTX_free(r->tls);
        config_free(r->cfg);
        return 0;
    }
    if (check_only) {
        m = mapcache_load(r->cfg->map_file, &err);
        if (!m) {
            fprintf(stderr, "shardwire: map: %s\n", err);
            free(err);
            rules_free(r->rules);
            SSL_CTX_free(r->tls);
            config_free(r->cfg);
            return 1;
        }
        printf("shardwire: %s: configuration OK; map version %llu, %u shards, %u vbuckets\n",
               path, (unsigned long long)smap_version(m), smap_n_shards(m), smap_n_vbuckets(m));
        smap_unref(m);
        rules_free(r->rules);
        SSL_CTX_free(r->tls);
        config_free(r->cfg);
        return 0;
    }
    if (log_open(r->cfg->log_file) < 0) {
        fprintf(stderr, "shardwire: log_file %s: %s\n", r->cfg->log_file, strerror(errno));
        return 1;
    }
    log_parse_level(r->cfg->log_level, &level);
    log_set_level(level);
    /* From here on no thread waits for the log file (router/log.h). */
    if (log_start(LOG_BUFFER_DEFAULT) < 0) {
        fprintf(stderr, "shardwire: cannot start the logging thread: %s\n", strerror(errno));
        return 1;
    }
    event_set_log_callback(libevent_log);
    signal(SIGPIPE, SIG_IGN);
    check_fd_limit(r->cfg);
    if (evthread_use_pthreads() < 0) {
        log_error("start: cannot initialise libevent threads");
        return 1;
    }
    if (mysql_library_init(0, NULL, NULL) != 0) {
        log_error("start: cannot initialise the MariaDB client library");
        return 1;
    }
    pthread_mutex_init(&r->map_lock, NULL);
    pthread_mutex_init(&r->budget_lock, NULL);
    d.mw = mapwatch_start(r, &err);
    r->mw = d.mw;
    if (!d.mw) {
        log_error("start: map: %s", err);
        fprintf(stderr, "shardwire: map: %s\n", err);
        return 1;
    }
    /* After the map source: a start that fails there leaves nothing of
     * its 4 MB behind (a leak report would bury the reason in the log). */
    if (vbtrack_init(&r->vbt) < 0) {
        log_error("start: out of memory");
        return 1;
    }
    m = mapwatch_first_map(d.mw);
    /* (Tests widen this window: ZooKeeper may replace the first map now.) */
    fault_delay("start_first_map", 3000);
    merge_key_config(r->cfg, m);
    smap_unref(m);
    r->n_workers = r->cfg->workers;
    r->workers = calloc(r->n_workers, sizeof(*r->workers));
    for (unsigned i = 0; i < r->n_workers; i++) {
        r->workers[i] = worker_new(r, i, &err);
        if (!r->workers[i]) {
            log_error("start: %s", err);
            fprintf(stderr, "shardwire: %s\n", err);
            return 1;
        }
    }
    mapwatch_attach(d.mw);
    d.base = event_base_new();
    tick = d.tick = event_new(d.base, -1, EV_PERSIST, on_tick, &d);
    event_add(tick, &one_second);
    /* Without it a SIGTERM shuts down at once (no drain delay). */
    d.drain_ev = evtimer_new(d.base, begin_shutdown, &d);
    /* a move's freeze is acknowledged within milliseconds (docs/moves.md) */
    d.freeze_tick = evtimer_new(d.base, on_freeze_tick, &d);
    atomic_store(&r->freeze_ev, d.freeze_tick);
    event_active(d.freeze_tick, EV_TIMEOUT, 1);   /* the first map may freeze already */
    for (int i = 0; i < 4; i++) {
        sigs[i] = evsignal_new(d.base, signos[i], on_signal, &d);
        evsignal_add(sigs[i], NULL);
    }
    /* Before the admin listener and the workers: both read r->leasepeer. */
    r->leasepeer = leasepeer_start(r);
    /* The admin listener is up before the first client is served, so a
     * load balancer never sees the app port before /health. */
    if (r->cfg->admin_listen && r->cfg->zookeeper) {
        r->clusterview = clusterview_start(r, &err);
        if (!r->clusterview) {
            log_error("start: %s", err);
            fprintf(stderr, "shardwire: %s\n", err);
            return 1;
        }
    }
    r->control = control_start(r, &err);
    if (!r->control && err) {
        log_error("start: %s", err);
        fprintf(stderr, "shardwire: %s\n", err);
        return 1;
    }
    if (!r->control || !control_health_on(r->control))
        log_info("start: health checks off (no control_user configured)");
    for (unsigned i = 0; i < r->n_workers; i++) {
        if (worker_start(r->workers[i]) < 0) {
            log_error("start: cannot start worker thread %u", i);
            return 1;
        }
    }
    r->coordinator = coordinator_start(r, &err);
    if (!r->coordinator && err) {
        log_error("start: %s", err);
        fprintf(stderr, "shardwire: %s\n", err);
        return 1;
    }
    log_info("start: shardwire %s listening on %s:%u workers=%u database=%s key=%s",
             SHARDWIRE_VERSION, r->cfg->listen_host, r->cfg->listen_port, r->n_workers,
             r->cfg->analyze.database, r->cfg->analyze.key_columns[0]);
    event_base_dispatch(d.base);
    /* The workers are done: a signal from now on must neither cut the
     * clean-up short nor, once its event is freed, kill the process. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    /* A stopping router no longer coordinates: another one takes over. */
    coordinator_stop(r->coordinator);
    r->coordinator = NULL;
    /* The admin listener answers (/health: 503 draining) until the
     * statements in flight are done. */
    for (unsigned i = 0; i < r->n_workers; i++)
        worker_join(r->workers[i]);
    control_stop(r->control);
    r->control = NULL;
    clusterview_stop(r->clusterview);
    r->clusterview = NULL;
    /* After the workers and the admin listener, which read it. */
    leasepeer_stop(r->leasepeer);
    r->leasepeer = NULL;
    /* Closing the ZooKeeper session removes our registration at once. */
    mapwatch_free(d.mw);
    atomic_store(&r->freeze_ev, NULL);
    event_free(tick);
    if (d.drain_ev)
        event_free(d.drain_ev);
    event_free(d.freeze_tick);
    for (unsigned i = 0; i < r->n_workers; i++)
        worker_free(r->workers[i]);
    vbtrack_fini(&r->vbt);
    for (int i = 0; i < 4; i++)
        event_free(sigs[i]);
    event_base_free(d.base);
    smap_unref(r->map);
    pool_budgets_free(r);
    rules_free(r->rules);
    SSL_CTX_free(r->tls);
    free(r->workers);
    log_info("shutdown: done");
    config_free(r->cfg);
    mysql_library_end();
    return 0;
}
