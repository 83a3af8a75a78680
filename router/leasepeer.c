/*
 * router/leasepeer.c - peers confirming that ZooKeeper is down for
 * everyone (router/leasepeer.h). One thread: every LP_ROUND_MS it looks at
 * the lease, and once ZooKeeper has been silent for half of it, asks each
 * peer's /status with a short blocking HTTP/1.0 request. It never touches
 * worker state: workers read one atomic through mapwatch_lease_ok().
 */
#include "router/leasepeer.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "router/config.h"
#include "router/detect.h"
#include "router/log.h"
#include "router/mapwatch.h"
#include "router/util.h"
#include "router/worker.h"

#define LP_ROUND_MS     500     /* one round of questions */
#define LP_VALID_MS     1500    /* a confirmation outlives its round by this */
#define LP_TIMEOUT_MS   300     /* connect + answer, per peer */
#define LP_REPLY_MAX    (256 * 1024)

struct leasepeer {
    struct router   *r;
    pthread_t        thread;
    pthread_mutex_t  mu;
    pthread_cond_t   cond;
    bool             stop;            /* under mu */
    char            *auth;            /* "Basic ..." for the peers' admin HTTP, or NULL */
    _Atomic uint64_t confirmed_until_ms;
};

/* Splits "HOST:PORT" or "PORT" into <host> and <port>; an empty or
 * wildcard host takes <fallback_host>. Returns 0, or -1 when malformed. */
static int split_addr(const char *a, const char *fallback_host, char *host, size_t cap,
                      char *port, size_t pcap)
{
    const char *c = strrchr(a, ':');
    size_t hl = c ? (size_t)(c - a) : 0;
    const char *p = c ? c + 1 : a;

    if (!*p || strlen(p) >= pcap || hl >= cap)
        return -1;
    snprintf(port, pcap, "%s", p);
    memcpy(host, a, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
        strcmp(host, "*") == 0)
        snprintf(host, cap, "%s", fallback_host);
    return 0;
}

/* Waits until <fd> is ready for <events> or <deadline_ms> passes. */
static bool wait_fd(int fd, short events, uint64_t deadline_ms)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    uint64_t now = now_ms();

    if (now >= deadline_ms)
        return false;
    return poll(&pfd, 1, (int)(deadline_ms - now)) == 1;
}

/* GET /status from <host>:<port> within LP_TIMEOUT_MS. Returns 1 when the
 * peer's ZooKeeper has been silent longer than its lease, 0 when it
 * confirmed its map within its lease, -1 for no (usable) answer. */
static int ask(struct leasepeer *lp, const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    uint64_t deadline = now_ms() + LP_TIMEOUT_MS;
    char req[600], *buf = NULL, *body;
    size_t len = 0;
    int fd = -1, res = -1, err = 0;
    socklen_t el = sizeof(err);
    json_t *j = NULL, *map;

    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return -1;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto out;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
        goto out;
    if (!wait_fd(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ||
        err != 0)
        goto out;
    snprintf(req, sizeof(req), "GET /status HTTP/1.0\r\nHost: %s\r\n%s%s%s\r\n", host,
             lp->auth ? "Authorization: " : "", lp->auth ? lp->auth : "", lp->auth ? "\r\n" : "");
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
        goto out;
    buf = malloc(LP_REPLY_MAX + 1);
    if (!buf)
        goto out;
    for (;;) {
        ssize_t n;

        if (!wait_fd(fd, POLLIN, deadline))
            goto out;
        n = recv(fd, buf + len, LP_REPLY_MAX - len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            goto out;
        if (n == 0 || (len += (size_t)n) >= LP_REPLY_MAX)
            break;
    }
    buf[len] = '\0';
    body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0 || !body)
        goto out;
    j = json_loads(body + 4, 0, NULL);
    map = j ? json_object_get(j, "map") : NULL;
    if (map && json_is_integer(json_object_get(map, "unconfirmed_ms")) &&
        json_is_integer(json_object_get(map, "lease_ms")))
        res = json_integer_value(json_object_get(map, "unconfirmed_ms")) >
              json_integer_value(json_object_get(map, "lease_ms"));
out:
    json_decref(j);
    free(buf);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return res;
}

/* One round: every peer asked in turn (a few, each bounded by LP_TIMEOUT_MS). */
static void round_of(struct leasepeer *lp, struct detect_lease_round *rd, unsigned *n_silent)
{
    char *peers = mapwatch_peers(lp->r->mw), *line, *save = NULL;

    memset(rd, 0, sizeof(*rd));
    *n_silent = 0;
    for (line = peers ? strtok_r(peers, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        char id[200], admin[200], address[200], host[200], fb[200], port[16];
        int a;

        if (sscanf(line, "%199s %199s %199s", id, admin, address) != 3)
            continue;
        rd->n_peers++;
        /* the SQL listener's host stands in for a wildcard admin host */
        if (split_addr(address, "127.0.0.1", fb, sizeof(fb), port, sizeof(port)) < 0 ||
            split_addr(admin, fb, host, sizeof(host), port, sizeof(port)) < 0)
            continue;
        a = ask(lp, host, port);
        if (a == 1)
            rd->n_lost++;
        else if (a == 0)
            rd->n_have++;
        else
            (*n_silent)++;
    }
    free(peers);
}

static void *lp_main(void *arg)
{
    struct leasepeer *lp = arg;
    const struct config *cfg = lp->r->cfg;
    int last = -1;      /* last decision logged: 0 refused, 1 confirmed */

    pthread_mutex_lock(&lp->mu);
    while (!lp->stop) {
        uint64_t silent;
        struct timespec ts;

        pthread_mutex_unlock(&lp->mu);
        silent = mapwatch_silence_ms(lp->r->mw);
        free(mapwatch_peers(lp->r->mw));      /* keeps the list fresh meanwhile */
        if (silent * 2 <= cfg->map_lease_ms) {
            atomic_store(&lp->confirmed_until_ms, 0);
            if (last >= 0)
                log_info("lease: ZooKeeper answers again; peers no longer asked");
            last = -1;
        } else {
            struct detect_lease_round rd;
            unsigned n_silent;
            bool ok;

            round_of(lp, &rd, &n_silent);
            ok = detect_lease_by_peers(&rd);
            atomic_store(&lp->confirmed_until_ms, ok ? now_ms() + LP_VALID_MS : 0);
            if ((int)ok != last && (ok || silent > cfg->map_lease_ms)) {
                if (ok)
                    log_warn("lease: ZooKeeper silent for %" PRIu64 " ms here and for %u of %u "
                             "peers (none hears from it): writes go on past the lease",
                             silent, rd.n_lost, rd.n_peers);
                else
                    log_warn("lease: ZooKeeper silent for %" PRIu64 " ms; peers do not confirm "
                             "it is down for everyone (peers=%u lost=%u have=%u no_answer=%u): "
                             "writes refused", silent, rd.n_peers, rd.n_lost, rd.n_have,
                             n_silent);
                last = ok;
            }
        }
        pthread_mutex_lock(&lp->mu);
        if (lp->stop)
            break;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += LP_ROUND_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&lp->cond, &lp->mu, &ts);
    }
    pthread_mutex_unlock(&lp->mu);
    return NULL;
}

struct leasepeer *leasepeer_start(struct router *r)
{
    const struct config *cfg = r->cfg;
    struct leasepeer *lp;

    if (!cfg->zookeeper || !cfg->map_lease_peers || !r->mw)
        return NULL;
    lp = calloc(1, sizeof(*lp));
    if (!lp)
        return NULL;
    lp->r = r;
    if (cfg->admin_user) {
        char *cred = util_fmt("%s:%s", cfg->admin_user, cfg->admin_password ? cfg->admin_password
                                                                             : "");
        size_t n = cred ? strlen(cred) : 0;
        unsigned char *enc = cred ? malloc(4 * ((n + 2) / 3) + 1) : NULL;

        if (enc) {
            EVP_EncodeBlock(enc, (const unsigned char *)cred, (int)n);
            lp->auth = util_fmt("Basic %s", enc);
        }
        free(cred);
        free(enc);
    }
    pthread_mutex_init(&lp->mu, NULL);
    pthread_cond_init(&lp->cond, NULL);
    if (pthread_create(&lp->thread, NULL, lp_main, lp) != 0) {
        log_error("lease: cannot start the peer thread; a lost lease refuses writes");
        pthread_mutex_destroy(&lp->mu);
        pthread_cond_destroy(&lp->cond);
        free(lp->auth);
        free(lp);
        return NULL;
    }
    return lp;
}

void leasepeer_stop(struct leasepeer *lp)
{
    if (!lp)
        return;
    pthread_mutex_lock(&lp->mu);
    lp->stop = true;
    pthread_cond_signal(&lp->cond);
    pthread_mutex_unlock(&lp->mu);
    pthread_join(lp->thread, NULL);
    pthread_mutex_destroy(&lp->mu);
    pthread_cond_destroy(&lp->cond);
    free(lp->auth);
    free(lp);
}

bool leasepeer_confirmed(const struct leasepeer *lp)
{
    return lp && now_ms() < atomic_load(&lp->confirmed_until_ms);
}
