/*
 * router/pool.c - per-worker, per-shard backend connection pool.
 */
#include "router/pool.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "router/backend.h"
#include "router/config.h"
#include "router/log.h"
#include "router/session.h"
#include "router/stats.h"
#include "router/util.h"
#include "router/worker.h"

static void idle_event(struct bufferevent *bev, short what, void *arg);
static void idle_read(struct bufferevent *bev, void *arg);
static void maybe_grow(struct pool *p);

struct pool_budget *pool_budget_of(struct router *r, const char *name)
{
    struct pool_budget *b;

    pthread_mutex_lock(&r->budget_lock);
    for (b = r->budgets; b; b = b->next)
        if (strcmp(b->shard, name) == 0)
            break;
    if (!b && (b = calloc(1, sizeof(*b))) != NULL) {
        snprintf(b->shard, sizeof(b->shard), "%s", name);
        b->max = r->cfg->pool_max_per_shard ? r->cfg->pool_max_per_shard : 1;
        b->next = r->budgets;
        r->budgets = b;
    }
    pthread_mutex_unlock(&r->budget_lock);
    return b;
}

void pool_budgets_free(struct router *r)
{
    while (r->budgets) {
        struct pool_budget *b = r->budgets;

        r->budgets = b->next;
        free(b);
    }
}

/* Takes one connection from the shard's router-wide budget. */
static bool budget_take(struct pool_budget *b)
{
    unsigned n = atomic_load(&b->open);

    while (n < b->max)
        if (atomic_compare_exchange_weak(&b->open, &n, n + 1))
            return true;
    return false;
}

struct pool *pool_new(struct worker *w, const struct smap_shard *shard)
{
    struct pool *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->budget = pool_budget_of(w->router, shard->name);
    if (!p->budget) {
        free(p);
        return NULL;
    }
    p->w = w;
    p->st = stats_shard_of(w->counters, shard->name);
    snprintf(p->shard, sizeof(p->shard), "%s", shard->name);
    p->endpoint = shard->master;
    p->generation = 1;
    TAILQ_INIT(&p->waiters);
    return p;
}

/* A backend is on one list at a time: connecting, idle (most recently used
 * first), or busy (a session's). */
static void list_push(struct backend **head, struct backend *be)
{
    be->prev = NULL;
    be->next = *head;
    if (*head)
        (*head)->prev = be;
    *head = be;
}

static void list_unlink(struct backend **head, struct backend *be)
{
    if (be->prev)
        be->prev->next = be->next;
    else if (*head == be)
        *head = be->next;
    if (be->next)
        be->next->prev = be->prev;
    be->next = be->prev = NULL;
}

static void idle_unlink(struct pool *p, struct backend *be)
{
    list_unlink(&p->idle, be);
    STATS_DEC(p->st->conn_idle);
}

static void busy_unlink(struct backend *be)
{
    if (be->on_busy)
        list_unlink(&be->pool->busy, be);
    be->on_busy = false;
}

static void close_backend(struct backend *be)
{
    struct pool *p = be->pool;

    p->n_open--;
    atomic_fetch_sub(&p->budget->open, 1);
    backend_free(be);
}

/* Links <be> into (or out of) the pool's list of connections being made. */
static void connecting_link(struct pool *p, struct backend *be)
{
    list_push(&p->connecting, be);
    p->n_connecting++;
}

static void connecting_unlink(struct pool *p, struct backend *be)
{
    list_unlink(&p->connecting, be);
    p->n_connecting--;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    /* A worker freed while connections are still being made (shutdown):
     * they are this pool's alone. */
    while (p->connecting) {
        struct backend *be = p->connecting;

        connecting_unlink(p, be);
        close_backend(be);
    }
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
    pool_cut_busy(p);
}

/*
 * The master was replaced: connections sessions hold to the old one are cut
 * too, busy (a statement in flight: its client gets an error, never an OK
 * from a deposed master the router knows about) or held idle in a
 * transaction (the old master rolls it back now rather than when the
 * client next speaks). Shutting the socket makes each session's own event
 * callback handle the loss, as for a server that went away.
 */
void pool_cut_busy(struct pool *p)
{
    unsigned n = 0;

    for (struct backend *be = p->busy; be; be = be->next) {
        if (be->generation == p->generation || !be->bev)
            continue;
        if (bufferevent_getfd(be->bev) >= 0 &&
            shutdown(bufferevent_getfd(be->bev), SHUT_RDWR) == 0)
            n++;
    }
    if (n)
        log_info("pool: cut %u connections to the old master shard=%s worker=%u", n, p->shard,
                 p->w->id);
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
    TAILQ_INSERT_TAIL(&p->waiters, s, route.pool_link);
    s->route.waiting_pool = p;
    p->n_waiting++;
    STATS_INC(p->st->conn_waiting);
    STATS_INC(p->st->pool_waits);
}

static void waiters_remove(struct pool *p, struct session *s)
{
    TAILQ_REMOVE(&p->waiters, s, route.pool_link);
    s->route.waiting_pool = NULL;
    p->n_waiting--;
    STATS_DEC(p->st->conn_waiting);
}

static struct session *waiters_pop(struct pool *p)
{
    struct session *s = TAILQ_FIRST(&p->waiters);

    if (s)
        waiters_remove(p, s);
    return s;
}

void pool_cancel_wait(struct pool *p, struct session *s)
{
    if (s->route.waiting_pool == p)
        waiters_remove(p, s);
}

unsigned pool_n_waiting(const struct pool *p)
{
    return p->n_waiting;
}

static void make_busy(struct backend *be, struct session *s)
{
    struct pool *p = be->pool;

    be->state = BACKEND_BUSY;
    be->owner = s;
    list_push(&p->busy, be);
    be->on_busy = true;
    /* The session installs its own callbacks. */
}

/* ---- sharing the budget between workers ---- */

struct shed_msg {
    char           shard[SMAP_NAME_MAX];
    struct worker *asker;
};

static struct pool *pool_by_name(struct worker *w, const char *name)
{
    for (unsigned i = 0; i < w->n_pools; i++)
        if (strcmp(w->pools[i]->shard, name) == 0)
            return w->pools[i];
    return NULL;
}

/* On the asker's thread: a connection was freed elsewhere; try again. */
static void regrow_run(struct worker *w, void *arg)
{
    struct shed_msg *m = arg;
    struct pool *p = pool_by_name(w, m->shard);

    if (p)
        maybe_grow(p);
    free(m);
}

/* On another worker's thread: close one idle connection of the shard, if
 * this worker has one and nobody here waits, and tell the asker. */
static void shed_run(struct worker *w, void *arg)
{
    struct shed_msg *m = arg;
    struct pool *p = pool_by_name(w, m->shard);
    struct backend *be;

    if (!p || !p->idle || p->n_waiting > 0) {
        free(m);
        return;
    }
    for (be = p->idle; be->next; be = be->next)
        ;                                   /* the least recently used */
    idle_unlink(p, be);
    close_backend(be);
    if (worker_post(m->asker, regrow_run, m) < 0)
        free(m);
}

void pool_shed_request(struct worker *w, const char *name, struct worker *asker)
{
    struct shed_msg *m = malloc(sizeof(*m));

    if (!m)
        return;
    snprintf(m->shard, sizeof(m->shard), "%s", name);
    m->asker = asker;
    if (worker_post(w, shed_run, m) < 0)
        free(m);
}

/* The budget is spent: ask the other workers (at most every 100 ms) for
 * one of their idle connections. */
static void ask_others(struct pool *p)
{
    struct router *r = p->w->router;
    uint64_t now = now_ms();

    if (now - p->shed_asked_ms < 100 && p->shed_asked_ms)
        return;
    p->shed_asked_ms = now;
    for (unsigned i = 0; i < r->n_workers; i++)
        if (r->workers[i] != p->w)
            pool_shed_request(r->workers[i], p->shard, p->w);
}

/* Opens another connection if the router-wide budget has room and someone
 * here will want it. */
static void maybe_grow(struct pool *p)
{
    struct backend *be;

    if (p->n_connecting >= p->n_waiting)
        return;
    if (!budget_take(p->budget)) {
        ask_others(p);
        return;
    }
    be = backend_connect(p);
    if (!be) {
        atomic_fetch_sub(&p->budget->open, 1);
        snprintf(p->last_error, sizeof(p->last_error), "cannot start a connection");
        return;
    }
    p->n_open++;
    connecting_link(p, be);
}

/* Worker thread, about once a second: waiters whose pool could not grow
 * (budget spent, a connection freed by another worker) try again. */
void pool_retry_waiters(struct pool *p)
{
    if (p->n_waiting > 0)
        maybe_grow(p);
}

/* A connection given back less than this long ago is handed out without
 * the peek below: under load connections go round in microseconds, and the
 * peek was one syscall in eight per statement (docs/performance.md). */
#define POOL_PEEK_AFTER_MS 1

/* An idle connection must have nothing to read: EOF, an error or stray
 * bytes (the server's "connection killed" ERR) mean it is gone. One
 * non-blocking peek, so a server that closed it a moment ago is caught
 * before the event loop would have told us; not for one idle under a
 * millisecond, which a server closing it is no likelier to have hit than
 * the moment after the peek. */
static bool still_open(struct backend *be)
{
    char c;
    ssize_t n;

    if (evbuffer_get_length(bufferevent_get_input(be->bev)) > 0)
        return false;
    if (now_ms() - be->idle_since_ms < POOL_PEEK_AFTER_MS)
        return true;
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
    list_push(&p->idle, be);
    STATS_INC(p->st->conn_idle);
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

    busy_unlink(be);
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

    busy_unlink(be);
    be->owner = NULL;
    close_backend(be);
    maybe_grow(p);
}

void pool_connected(struct backend *be)
{
    struct pool *p = be->pool;

    connecting_unlink(p, be);
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
    char msg[512];
    bool be_answered = be->login.answered;    /* <be> is closed below */

    connecting_unlink(p, be);
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
    /* The master cannot be reached now: every waiter hears it at once
     * rather than one per connect timeout. Those waiting are taken off the
     * queue first: a failed session may queue its next statement here. */
    {
        struct pool_waitq failed = TAILQ_HEAD_INITIALIZER(failed);
        struct session *s;

        TAILQ_CONCAT(&failed, &p->waiters, route.pool_link);
        STATS_ADD(p->st->conn_waiting, -(uint64_t)p->n_waiting);
        p->n_waiting = 0;
        while ((s = TAILQ_FIRST(&failed)) != NULL) {
            TAILQ_REMOVE(&failed, s, route.pool_link);
            s->route.waiting_pool = NULL;
            session_backend_failed(s, msg, !be_answered);
        }
    }
    maybe_grow(p);
}
