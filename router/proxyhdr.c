/*
 * router/proxyhdr.c - reading the PROXY protocol header of a trusted
 * balancer's connection before the MySQL greeting.
 *
 * The header is read with MSG_PEEK until it is complete and then consumed
 * with one recv() of exactly its length, so no byte after it (there should
 * be none: the client waits for our greeting) is ever taken from the socket
 * on the session's behalf. A waiting connection costs one event and 100
 * bytes; it must not hold a session's buffers before it is known who it is.
 */
#include "router/proxyhdr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "protocol/proxyproto.h"
#include "protocol/wire.h"
#include "router/config.h"
#include "router/log.h"
#include "router/session.h"
#include "router/util.h"
#include "router/worker.h"

struct proxyhdr {
    struct worker        *w;
    int                   fd;
    struct event         *ev;
    uint64_t              deadline_ms;
    char                  lb_peer[64];
    TAILQ_ENTRY(proxyhdr) link;
};

bool proxyhdr_required(const struct config *c, const struct sockaddr *sa)
{
    if (c->n_proxy_nets == 0)
        return false;
    if (sa->sa_family == AF_INET)
        return proxyproto_net_match(c->proxy_nets, c->n_proxy_nets, AF_INET,
                                    (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return proxyproto_net_match(c->proxy_nets, c->n_proxy_nets, AF_INET6,
                                    (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return false;
}

/* Ends the wait without a session: <err_no>/<msg> to the peer (if any),
 * the socket closed, the n_clients slot given back. */
static void finish(struct proxyhdr *p, uint16_t err_no, const char *msg)
{
    struct worker *w = p->w;

    TAILQ_REMOVE(&w->proxy_waits, p, link);
    event_free(p->ev);
    /* Bytes only peeked at are still unread: closing over them would send a
     * reset that can overtake our error. Read them away (boundedly) first. */
    for (size_t total = 0; total < 4 * PROXYPROTO_V2_MAX_LEN;) {
        uint8_t junk[PROXYPROTO_V2_MAX_LEN];
        ssize_t n = recv(p->fd, junk, sizeof(junk), MSG_DONTWAIT);

        if (n <= 0)
            break;
        total += (size_t)n;
    }
    if (msg)
        worker_refuse_fd(p->fd, err_no, msg);
    else
        close(p->fd);
    atomic_fetch_sub(&w->router->n_clients, 1);
    free(p);
}

static void arm(struct proxyhdr *p)
{
    uint64_t now = now_ms(), left = p->deadline_ms > now ? p->deadline_ms - now : 0;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };

    if (event_add(p->ev, &tv) < 0)
        finish(p, WIRE_ER_OUT_OF_RESOURCES, "shardwire: out of resources");
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct proxyhdr *p = arg;
    struct worker *w = p->w;
    uint8_t buf[PROXYPROTO_V2_MAX_LEN];
    struct proxyproto_hdr h;
    const char *err = NULL;
    char peer[64], msg[160];
    unsigned suppressed;
    ssize_t got, n;

    if (what & EV_TIMEOUT) {
        if (log_limit_pass(&w->proxy_log, now_ms(), 5000, &suppressed))
            log_warn("listener: no PROXY header from trusted peer=%s within %u ms suppressed=%u",
                     p->lb_peer, w->router->cfg->handshake_timeout_ms, suppressed);
        finish(p, WIRE_ER_HANDSHAKE, "shardwire: expected a PROXY protocol header");
        return;
    }
    got = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        arm(p);
        return;
    }
    if (got <= 0) {             /* the balancer closed (or reset) first */
        finish(p, 0, NULL);
        return;
    }
    n = proxyproto_parse(buf, (size_t)got, &h, &err);
    if (n == 0) {
        arm(p);
        return;
    }
    if (n < 0) {
        if (log_limit_pass(&w->proxy_log, now_ms(), 5000, &suppressed))
            log_warn("listener: bad PROXY header from trusted peer=%s error=\"%s\" suppressed=%u",
                     p->lb_peer, err, suppressed);
        snprintf(msg, sizeof(msg), "shardwire: bad PROXY protocol header: %s", err);
        finish(p, WIRE_ER_HANDSHAKE, msg);
        return;
    }
    if (recv(fd, buf, (size_t)n, 0) != n) {   /* peeked, so cannot be short */
        finish(p, 0, NULL);
        return;
    }
    /* LOCAL (the balancer's own health check) keeps the balancer's address. */
    if (proxyproto_format_src(&h, peer, sizeof(peer)) < 0)
        snprintf(peer, sizeof(peer), "%s", p->lb_peer);
    log_debug("listener: PROXY v%u peer=%s via=%s", h.version, peer, p->lb_peer);

    /* From here the session owns the socket and the n_clients slot. */
    TAILQ_REMOVE(&w->proxy_waits, p, link);
    event_free(p->ev);
    free(p);
    if (!session_new(w, fd, peer)) {
        atomic_fetch_sub(&w->router->n_clients, 1);
        log_warn("listener: cannot create session peer=%s (out of memory)", peer);
    }
}

void proxyhdr_wait(struct worker *w, int fd, const char *lb_peer)
{
    struct proxyhdr *p = calloc(1, sizeof(*p));

    if (p)
        p->ev = event_new(w->base, fd, EV_READ, on_readable, p);
    if (!p || !p->ev) {
        free(p);
        worker_refuse_fd(fd, WIRE_ER_OUT_OF_RESOURCES, "shardwire: out of resources");
        atomic_fetch_sub(&w->router->n_clients, 1);
        return;
    }
    p->w = w;
    p->fd = fd;
    p->deadline_ms = now_ms() + w->router->cfg->handshake_timeout_ms;
    snprintf(p->lb_peer, sizeof(p->lb_peer), "%s", lb_peer);
    evutil_make_socket_nonblocking(fd);
    TAILQ_INSERT_TAIL(&w->proxy_waits, p, link);
    arm(p);
}

void proxyhdr_cancel_all(struct worker *w)
{
    while (!TAILQ_EMPTY(&w->proxy_waits))
        finish(TAILQ_FIRST(&w->proxy_waits), WIRE_ER_SERVER_SHUTDOWN,
               "shardwire: server shutdown in progress");
}
