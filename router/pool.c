/*
 * router/pool.c - per-worker, per-shard backend connection pool.
 */
#include "router/pool.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "router/backend.h"
#include "router/config.h"
#include "router/log.h"
#include "router/session.h"
#include "router/util.h"
#include "router/worker.h"

static void idle_event(struct bufferevent *bev, short what, void *arg);
static void idle_read(struct bufferevent *bev, void *arg);

struct pool *pool_new(struct worker *w, const struct smap_shard *shard, unsigned max)
{
    struct pool *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->w = w;
    snprintf(p->shard, sizeof(p->shard), "%s", shard->name);
    p->endpoint = shard->master;
    p->generation = 1;
    p->max = max ? max : 1;
    return p;
}

static void idle_unlink(struct pool *p, struct backend *be)
{
    if (be->prev)
        be->prev->next = be->next;
    else
        p->idle = be->next;
    if (be->next)
        be->next->prev = be->prev;
    be->next = be->prev = NULL;
}

static void close_backend(struct backend *be)
{
    struct pool *p = be->pool;

    p->n_open--;
    backend_free(be);
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    while (p->idle) {
        struct backend *be = p->idle;

        idle_unlink(p, be);
        close_backend(be);
    }
    free(p);
}

void pool_set_endpoint(struct pool *p, const struct smap_endpoint *ep)
{
    if (strcmp(p->endpoint.host, ep->host) == 0 && p->endpoint.port == ep->port)
        return;
    log_info("pool: shard master changed shard=%s old=%s:%u new=%s:%u worker=%u", p->shard,
             p->endpoint.host, p->endpoint.port, ep->host, ep->port, p->w->id);
    p->endpoint = *ep;
    pool_drain(p);
}

void pool_drain(struct pool *p)
{
    p->generation++;
    while (p->idle) {
        struct backend *be = p->idle;

        idle_unlink(p, be);
        close_backend(be);
    }
}

static void waiters_push(struct pool *p, struct session *s)
{
    s->pool_next = NULL;
    s->waiting_pool = p;
    if (p->waiters_tail)
        p->waiters_tail->pool_next = s;
    else
        p->waiters = s;
    p->waiters_tail = s;
}

static struct session *waiters_pop(struct pool *p)
{
    struct session *s = p->waiters;

    if (!s)
        return NULL;
    p->waiters = s->pool_next;
    if (!p->waiters)
        p->waiters_tail = NULL;
    s->pool_next = NULL;
    s->waiting_pool = NULL;
    return s;
}

void pool_cancel_wait(struct pool *p, struct session *s)
{
    struct session **pp = &p->waiters, *prev = NULL;

    while (*pp && *pp != s) {
        prev = *pp;
        pp = &(*pp)->pool_next;
    }
    if (!*pp)
        return;
    *pp = s->pool_next;
    if (p->waiters_tail == s)
        p->waiters_tail = prev;
    s->pool_next = NULL;
    s->waiting_pool = NULL;
}

unsigned pool_n_waiting(const struct pool *p)
{
    unsigned n = 0;

    for (const struct session *s = p->waiters; s; s = s->pool_next)
        n++;
    return n;
}

static void make_busy(struct backend *be, struct session *s)
{
    be->state = BACKEND_BUSY;
    be->owner = s;
    /* The session installs its own callbacks. */
}

/* Opens another connection if the pool has room and someone will want it. */
static void maybe_grow(struct pool *p)
{
    struct backend *be;

    if (p->n_open >= p->max || p->n_connecting >= pool_n_waiting(p))
        return;
    be = backend_connect(p);
    if (!be) {
        snprintf(p->last_error, sizeof(p->last_error), "cannot start a connection");
        return;
    }
    p->n_open++;
    p->n_connecting++;
}

/* An idle connection must have nothing to read: EOF, an error or stray
 * bytes (the server's "connection killed" ERR) mean it is gone. One
 * non-blocking peek, so a server that closed it a moment ago is caught
 * before the event loop would have told us. */
static bool still_open(struct backend *be)
{
    char c;
    ssize_t n;

    if (evbuffer_get_length(bufferevent_get_input(be->bev)) > 0)
        return false;
    n = recv(bufferevent_getfd(be->bev), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

struct backend *pool_acquire(struct pool *p, struct session *s)
{
    while (p->idle) {
        struct backend *be = p->idle;

        idle_unlink(p, be);
        if (be->state != BACKEND_IDLE || !still_open(be)) {
            log_debug("pool: idle connection found dead shard=%s", p->shard);
            close_backend(be);
            continue;
        }
        bufferevent_setcb(be->bev, NULL, NULL, NULL, NULL);
        make_busy(be, s);
        return be;
    }
    waiters_push(p, s);
    maybe_grow(p);
    return NULL;
}

/* Hands <be> to the first waiter or parks it idle. */
static void hand_over(struct pool *p, struct backend *be)
{
    struct session *s = waiters_pop(p);

    if (s) {
        bufferevent_setcb(be->bev, NULL, NULL, NULL, NULL);
        make_busy(be, s);
        session_backend_ready(s, be);
        return;
    }
    be->state = BACKEND_IDLE;
    be->owner = NULL;
    be->idle_since_ms = now_ms();
    be->next = p->idle;
    be->prev = NULL;
    if (p->idle)
        p->idle->prev = be;
    p->idle = be;
    /* Watch idle connections so a server that closes them is noticed. */
    bufferevent_setcb(be->bev, idle_read, NULL, idle_event, be);
    bufferevent_enable(be->bev, EV_READ);
}

static void drop_idle(struct backend *be, const char *why)
{
    struct pool *p = be->pool;

    log_debug("pool: idle connection dropped shard=%s why=%s", p->shard, why);
    idle_unlink(p, be);
    close_backend(be);
}

static void idle_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    /* An idle connection has nothing to say; bytes mean the server is
     * closing it (an ERR for wait_timeout, say). */
    drop_idle(arg, "unexpected data");
}

static void idle_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    drop_idle(arg, "closed by server");
}

void pool_sweep(struct pool *p, uint64_t now, unsigned idle_ms, unsigned age_ms)
{
    struct backend *be = p->idle, *next;

    for (; be; be = next) {
        next = be->next;
        if ((idle_ms && now - be->idle_since_ms > idle_ms) ||
            (age_ms && now - be->created_ms > age_ms))
            drop_idle(be, "idle timeout or max age");
    }
}

void pool_release(struct backend *be)
{
    struct pool *p = be->pool;
    unsigned age_ms = p->w->router->cfg->pool_max_age_ms;

    be->owner = NULL;
    if (be->state == BACKEND_BROKEN || be->generation != p->generation ||
        (age_ms && now_ms() - be->created_ms > age_ms)) {
        close_backend(be);
        maybe_grow(p);
        return;
    }
    hand_over(p, be);
}

void pool_discard(struct backend *be)
{
    struct pool *p = be->pool;

    be->owner = NULL;
    close_backend(be);
    maybe_grow(p);
}

void pool_connected(struct backend *be)
{
    struct pool *p = be->pool;

    p->n_connecting--;
    p->last_error[0] = 0;
    log_debug("pool: connected shard=%s master=%s:%u worker=%u open=%u", p->shard,
              p->endpoint.host, p->endpoint.port, p->w->id, p->n_open);
    if (be->generation != p->generation) {
        close_backend(be);
        maybe_grow(p);
        return;
    }
    hand_over(p, be);
}

void pool_connect_failed(struct backend *be, const char *err)
{
    struct pool *p = be->pool;
    struct session *s;
    char msg[512];

    p->n_connecting--;
    snprintf(p->last_error, sizeof(p->last_error), "%s", err);
    snprintf(msg, sizeof(msg), "shardwire: cannot connect to shard %s master %s:%u: %s",
             p->shard, p->endpoint.host, p->endpoint.port, err);
    {
        unsigned suppressed;

        if (log_limit_pass(&p->connect_log, now_ms(), 5000, &suppressed))
            log_warn("pool: connect failed shard=%s master=%s:%u worker=%u error=\"%s\" "
                     "suppressed=%u", p->shard, p->endpoint.host, p->endpoint.port, p->w->id,
                     err, suppressed);
    }
    close_backend(be);
    /* The failure is the first waiter's; later ones keep waiting for a
     * connection that may still succeed or be released. */
    s = waiters_pop(p);
    if (s)
        session_backend_failed(s, msg);
    maybe_grow(p);
}
