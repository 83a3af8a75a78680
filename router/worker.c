/*
 * router/worker.c - worker threads, their inboxes, listeners and reapers.
 */
#include "router/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/packet.h"
#include "protocol/reply.h"
#include "protocol/wire.h"
#include "router/config.h"
#include "router/fault.h"
#include "router/decide.h"
#include "router/log.h"
#include "router/pool.h"
#include "router/session.h"
#include "router/stats.h"
#include "router/util.h"
#include "shardmap/smap.h"

struct worker_msg {
    worker_fn         *fn;
    void              *arg;
    struct worker_msg *next;
};

static void inbox_run(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct worker_msg *m;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->inbox_lock);
    m = w->inbox_head;
    w->inbox_head = w->inbox_tail = NULL;
    pthread_mutex_unlock(&w->inbox_lock);
    while (m) {
        struct worker_msg *next = m->next;

        m->fn(w, m->arg);
        free(m);
        m = next;
    }
}

int worker_post(struct worker *w, worker_fn *fn, void *arg)
{
    struct worker_msg *m = malloc(sizeof(*m));

    if (!m)
        return -1;
    m->fn = fn;
    m->arg = arg;
    m->next = NULL;
    pthread_mutex_lock(&w->inbox_lock);
    if (w->inbox_tail)
        w->inbox_tail->next = m;
    else
        w->inbox_head = m;
    w->inbox_tail = m;
    pthread_mutex_unlock(&w->inbox_lock);
    event_active(w->inbox_ev, EV_READ, 0);
    return 0;
}

static void reap_run(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    while (w->reap) {
        struct session *s = w->reap;

        w->reap = s->reap_next;
        session_free(s);
    }
}

static void flush_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wflush_run(arg);
}

void worker_reap(struct worker *w, struct session *s)
{
    s->reap_next = w->reap;
    w->reap = s;
    event_active(w->reap_ev, EV_READ, 0);
}

void worker_refuse_fd(int fd, uint16_t err_no, const char *msg)
{
    uint8_t buf[256];
    size_t n = reply_write_err(buf + PACKET_HEADER_LEN, err_no, "08004", msg, strlen(msg));

    packet_write_header(buf, (uint32_t)n, 0);
    if (send(fd, buf, PACKET_HEADER_LEN + n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* The client is gone already. */
    }
    close(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct worker *w = arg;
    struct router *r = w->router;
    char peer[64] = "?";
    int one = 1;

    (void)l;
    (void)socklen;
    w->accept_backoff_ms = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        char ip[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(peer, sizeof(peer), "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        char ip[INET6_ADDRSTRLEN];

        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(peer, sizeof(peer), "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    if (w->shutting_down) {
        worker_refuse_fd(fd, WIRE_ER_SERVER_SHUTDOWN, "shardwire: server shutdown in progress");
        return;
    }
    if (atomic_fetch_add(&r->n_clients, 1) >= r->cfg->max_client_connections) {
        atomic_fetch_sub(&r->n_clients, 1);
        log_warn("listener: too many connections peer=%s max=%u", peer,
                 r->cfg->max_client_connections);
        worker_refuse_fd(fd, WIRE_ER_CON_COUNT, "Too many connections");
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (proxyhdr_required(r->cfg, sa)) {
        proxyhdr_wait(w, fd, peer);
        return;
    }
    if (!session_new(w, fd, peer)) {
        atomic_fetch_sub(&r->n_clients, 1);
        log_warn("listener: cannot create session peer=%s (out of memory)", peer);
    }
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    if (w->listener && !w->shutting_down)
        evconnlistener_enable(w->listener);
}

/*
 * accept() failed. Out of file descriptors (or kernel memory) the pending
 * connection stays in the backlog and the socket stays readable: left
 * enabled, the listener would spin and log on every loop turn. So it pauses
 * (100 ms, doubling up to 1 s while failures go on) and logs once per 5 s.
 */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct worker *w = arg;
    int err = errno;
    unsigned suppressed;

    if (log_limit_pass(&w->accept_log, now_ms(), 5000, &suppressed))
        log_warn("listener: accept failed worker=%u error=\"%s\" suppressed=%u", w->id,
                 strerror(err), suppressed);
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return;
    if (!w->accept_ev)
        w->accept_ev = evtimer_new(w->base, accept_resume, w);
    if (!w->accept_ev)
        return;
    w->accept_backoff_ms = w->accept_backoff_ms ? w->accept_backoff_ms * 2 : 100;
    if (w->accept_backoff_ms > 1000)
        w->accept_backoff_ms = 1000;
    evconnlistener_disable(l);
    {
        struct timeval tv = { 0, (long)w->accept_backoff_ms * 1000 };

        if (w->accept_backoff_ms >= 1000) {
            tv.tv_sec = 1;
            tv.tv_usec = 0;
        }
        evtimer_add(w->accept_ev, &tv);
    }
}

static int open_listener(struct worker *w, char **errp)
{
    const struct config *cfg = w->router->cfg;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char *e = NULL;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, cfg->listen_host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(cfg->listen_port);
        sslen = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, cfg->listen_host,
                         &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(cfg->listen_port);
        sslen = sizeof(struct sockaddr_in6);
    } else {
        if (asprintf(&e, "listen: '%s' is not an IP address", cfg->listen_host) < 0)
            e = NULL;
        *errp = e;
        return -1;
    }
    /* Every worker listens on the same port; the kernel spreads accepted
     * connections over them (SO_REUSEPORT), so no hand-off is needed. */
    w->listener = evconnlistener_new_bind(w->base, on_accept, w,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                              LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
                                          1024, (struct sockaddr *)&ss, (int)sslen);
    if (!w->listener) {
        if (asprintf(&e, "listen %s:%u: %s", cfg->listen_host, cfg->listen_port,
                     strerror(errno)) < 0)
            e = NULL;
        *errp = e;
        return -1;
    }
    evconnlistener_set_error_cb(w->listener, on_accept_error);
    return 0;
}

static void sweep_run(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->router->cfg;
    uint64_t now = now_ms();

    (void)fd;
    (void)what;
    for (unsigned i = 0; i < w->n_pools; i++) {
        pool_sweep(w->pools[i], now, cfg->pool_idle_timeout_ms, cfg->pool_max_age_ms);
        pool_retry_waiters(w->pools[i]);
    }
}

struct worker *worker_new(struct router *r, unsigned id, char **errp)
{
    static const struct timeval one_second = { 1, 0 };
    struct worker *w = calloc(1, sizeof(*w));
    struct analyze_config acfg;

    if (!w) {
        *errp = strdup("out of memory");
        return NULL;
    }
    w->id = id;
    w->router = r;
    TAILQ_INIT(&w->proxy_waits);
    pthread_mutex_init(&w->inbox_lock, NULL);
    w->base = event_base_new();
    w->counters = stats_new();
    if (!w->base || !w->counters)
        goto oom;
    w->inbox_ev = event_new(w->base, -1, EV_PERSIST | EV_READ, inbox_run, w);
    w->reap_ev = event_new(w->base, -1, EV_READ, reap_run, w);
    TAILQ_INIT(&w->dirty);
    w->flush_ev = event_new(w->base, -1, EV_READ, flush_run, w);
    w->sweep_ev = event_new(w->base, -1, EV_PERSIST, sweep_run, w);
    w->read_scratch = malloc(RDIRECT_MAX);
    if (!w->inbox_ev || !w->reap_ev || !w->flush_ev || !w->sweep_ev || !w->read_scratch || event_add(w->inbox_ev, NULL) < 0 ||
        event_add(w->sweep_ev, &one_second) < 0)
        goto oom;
    /* The config is merged with the first map's key settings already. */
    decide_analyze_config(&acfg, &r->cfg->analyze, NULL);
    w->analyze = analyze_new(&acfg);
    if (!w->analyze)
        goto oom;
    if (open_listener(w, errp) < 0) {
        worker_free(w);
        return NULL;
    }
    return w;
oom:
    *errp = strdup("out of memory creating a worker");
    worker_free(w);
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    atomic_fetch_add(&w->router->n_workers_done, 1);
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    /* Messages posted after the loop ended (a map, a pool's request) own
     * memory: run them while everything they touch still exists. */
    if (w->inbox_ev)
        inbox_run(-1, 0, w);
    proxyhdr_cancel_all(w);
    while (w->sessions) {
        struct session *s = w->sessions;

        session_kill(s);
        reap_run(-1, 0, w);
        if (w->sessions == s)
            break;      /* cannot happen: a killed session is reaped */
    }
    for (unsigned i = 0; i < w->n_pools; i++)
        pool_free(w->pools[i]);
    free(w->pools);
    while (w->old_pools) {
        struct pool *p = w->old_pools;

        w->old_pools = p->next;
        pool_free(p);
    }
    smap_unref(w->map);
    if (w->listener)
        evconnlistener_free(w->listener);
    if (w->inbox_ev)
        event_free(w->inbox_ev);
    if (w->reap_ev)
        event_free(w->reap_ev);
    if (w->flush_ev)
        event_free(w->flush_ev);
    if (w->sweep_ev)
        event_free(w->sweep_ev);
    free(w->read_scratch);
    if (w->accept_ev)
        event_free(w->accept_ev);
    if (w->shutdown_ev)
        event_free(w->shutdown_ev);
    analyze_free(w->analyze);
    stats_free(w->counters);
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->inbox_lock);
    free(w);
}

/* ---- the map ---- */

/*
 * Swaps in map <arg> (a reference this takes over). A map older than the
 * one in use is dropped: maps are posted from more than one thread (start-up,
 * the ZooKeeper thread, SIGHUP), so they can arrive out of order, and a
 * worker must never go back. The swap is all or nothing: the pools of new
 * shards are made first, and if one cannot be, the worker keeps its map and
 * every pool it had.
 */
static void apply_map(struct worker *w, void *arg)
{
    struct smap *m = arg;
    unsigned n = smap_n_shards(m), cap = n ? n : 1;
    struct pool **pools = NULL;
    int *from = NULL;       /* index in w->pools of shard i's existing pool, or -1 */

    if (w->map && smap_version(m) < smap_version(w->map)) {
        log_warn("worker: older map ignored version=%llu running=%llu worker=%u",
                 (unsigned long long)smap_version(m), (unsigned long long)smap_version(w->map),
                 w->id);
        smap_unref(m);
        return;
    }
    if (!fault_fail("apply_map")) {
        pools = calloc(cap, sizeof(*pools));
        from = malloc(cap * sizeof(*from));
    }
    if (!pools || !from)
        goto oom;
    for (unsigned i = 0; i < n; i++) {
        const struct smap_shard *sh = smap_shard(m, i);

        from[i] = -1;
        for (unsigned j = 0; j < w->n_pools; j++) {
            if (strcmp(w->pools[j]->shard, sh->name) == 0) {
                from[i] = (int)j;
                break;
            }
        }
        if (from[i] >= 0)
            continue;
        pools[i] = fault_fail("pool_new") ? NULL : pool_new(w, sh);
        if (!pools[i]) {
            log_error("worker: out of memory creating pool shard=%s", sh->name);
            for (unsigned k = 0; k < i; k++)
                if (from[k] < 0)
                    pool_free(pools[k]);        /* new: no connection yet */
            goto oom;
        }
    }
    /* Nothing can fail from here on. */
    for (unsigned i = 0; i < n; i++) {
        if (from[i] < 0)
            continue;
        pools[i] = w->pools[from[i]];
        w->pools[from[i]] = NULL;
        pool_set_endpoint(pools[i], &smap_shard(m, i)->master);
    }
    free(from);
    /* Pools of shards no longer in the map drain: sessions holding their
     * connections finish; idle ones close now. */
    for (unsigned j = 0; j < w->n_pools; j++) {
        struct pool *p = w->pools[j];

        if (!p)
            continue;
        pool_drain(p);
        p->next = w->old_pools;
        w->old_pools = p;
    }
    free(w->pools);
    w->pools = pools;
    w->n_pools = n;
    stats_vb_size(w->counters, smap_n_vbuckets(m));
    smap_unref(w->map);
    w->map = m;
    atomic_store(&w->map_version, smap_version(m));
    log_debug("worker: map applied version=%llu worker=%u",
              (unsigned long long)smap_version(m), w->id);
    return;
oom:
    log_error("worker: out of memory applying map version=%llu worker=%u; keeping version=%llu",
              (unsigned long long)smap_version(m), w->id,
              (unsigned long long)(w->map ? smap_version(w->map) : 0));
    free(pools);
    free(from);
    smap_unref(m);
}

void worker_set_map(struct worker *w, struct smap *m)
{
    if (worker_post(w, apply_map, m) < 0) {
        log_error("worker: cannot post map to worker=%u (out of memory)", w->id);
        smap_unref(m);
    }
}

struct pool *worker_pool(struct worker *w, unsigned i)
{
    return i < w->n_pools ? w->pools[i] : NULL;
}

/* ---- shutdown ---- */

static void shutdown_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    log_info("worker: shutdown deadline reached worker=%u", w->id);
    for (struct session *s = w->sessions; s; s = s->next)
        session_kill(s);
    event_base_loopexit(w->base, NULL);
}

void worker_session_gone(struct worker *w)
{
    if (w->shutting_down && !w->sessions)
        event_base_loopexit(w->base, NULL);
}

static void begin_shutdown(struct worker *w, void *arg)
{
    unsigned ms = (unsigned)(uintptr_t)arg;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    w->shutting_down = true;
    if (w->sweep_ev)
        event_del(w->sweep_ev);
    if (w->listener) {
        evconnlistener_free(w->listener);
        w->listener = NULL;
    }
    proxyhdr_cancel_all(w);
    for (struct session *s = w->sessions; s; s = s->next)
        session_shutdown(s);
    if (!w->sessions) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    w->shutdown_ev = evtimer_new(w->base, shutdown_deadline, w);
    if (w->shutdown_ev)
        evtimer_add(w->shutdown_ev, &tv);
}

void worker_shutdown(struct worker *w, unsigned deadline_ms)
{
    if (worker_post(w, begin_shutdown, (void *)(uintptr_t)deadline_ms) < 0)
        log_error("worker: cannot post shutdown to worker=%u", w->id);
}
