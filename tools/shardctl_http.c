/*
 * tools/shardctl_http.c - the smallest HTTP/1.0 client shardctl needs to
 * talk to a router's admin listener (docs/operations.md): one request, a
 * deadline on connect and on the whole exchange, basic auth, and the body
 * read until the server closes. Blocking; the CLI has nothing else to do.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "router/util.h"
#include "tools/shardctl.h"

#define HTTP_MAX_REPLY (16u << 20)   /* a /status of a big router fits */

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for <events> on <fd> until <deadline>. Returns 0, or -1 on timeout. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    uint64_t now = mono_ms();

    if (now >= deadline)
        return -1;
    int n = poll(&p, 1, (int)(deadline - now));
    return n > 0 ? 0 : -1;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into <host> and <port>. */
static int split_hostport(const char *hp, char *host, size_t cap, char *port, size_t pcap)
{
    const char *colon = strrchr(hp, ':');

    if (!colon || !colon[1] || strlen(colon + 1) >= pcap)
        return -1;
    if (hp[0] == '[') {
        if (colon < hp + 2 || colon[-1] != ']')
            return -1;
        snprintf(host, cap, "%.*s", (int)(colon - hp - 2), hp + 1);
    } else {
        snprintf(host, cap, "%.*s", (int)(colon - hp), hp);
    }
    snprintf(port, pcap, "%s", colon + 1);
    return 0;
}

static int connect_to(const char *hostport, uint64_t deadline, char **errp)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char host[256], port[16];
    int fd = -1, rc;

    if (split_hostport(hostport, host, sizeof(host), port, sizeof(port)) < 0) {
        *errp = util_fmt("'%s' is not HOST:PORT", hostport);
        return -1;
    }
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        *errp = util_fmt("%s: %s", hostport, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int err = 0;
        socklen_t el = sizeof(err);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        fcntl(fd, F_SETFL, O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0))
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        *errp = util_fmt("%s: cannot connect", hostport);
    return fd;
}

int shardctl_http(const char *hostport, const char *method, const char *path,
                  const char *user, const char *password, unsigned timeout_ms,
                  int *status, char **body, char **errp)
{
    uint64_t deadline = mono_ms() + (timeout_ms ? timeout_ms : 5000);
    char auth[512] = "", *req = NULL, *buf = NULL;
    size_t len = 0, cap = 0, off = 0;
    int fd, rc = -1;

    *body = NULL;
    *errp = NULL;
    if (user) {
        char cred[256];
        unsigned char enc[400];
        int n = snprintf(cred, sizeof(cred), "%s:%s", user, password ? password : "");

        if (n < 0 || (size_t)n >= sizeof(cred)) {
            *errp = strdup("admin user and password too long");
            return -1;
        }
        EVP_EncodeBlock(enc, (const unsigned char *)cred, n);
        snprintf(auth, sizeof(auth), "Authorization: Basic %s\r\n", enc);
    }
    fd = connect_to(hostport, deadline, errp);
    if (fd < 0)
        return -1;
    req = util_fmt("%s %s HTTP/1.0\r\nHost: %s\r\n%sContent-Length: 0\r\n\r\n", method, path,
                   hostport, auth);
    if (!req) {
        *errp = strdup("out of memory");
        goto out;
    }
    for (size_t n = strlen(req); off < n;) {
        ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);

        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR) &&
                   wait_fd(fd, POLLOUT, deadline) == 0) {
            continue;
        } else {
            *errp = util_fmt("%s: cannot send the request", hostport);
            goto out;
        }
    }
    for (;;) {
        if (cap - len < 4096) {
            char *nb;

            if (cap >= HTTP_MAX_REPLY) {
                *errp = util_fmt("%s: reply larger than %u bytes", hostport, HTTP_MAX_REPLY);
                goto out;
            }
            nb = realloc(buf, cap ? cap * 2 : 8192);
            if (!nb) {
                *errp = strdup("out of memory");
                goto out;
            }
            buf = nb;
            cap = cap ? cap * 2 : 8192;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r > 0) {
            len += (size_t)r;
        } else if (r == 0) {
            break;
        } else if ((errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLIN, deadline) == 0) {
            continue;
        } else {
            *errp = util_fmt("%s: no complete reply within %u ms", hostport, timeout_ms);
            goto out;
        }
    }
    buf[len] = '\0';
    char *eoh = strstr(buf, "\r\n\r\n");
    if (!eoh || sscanf(buf, "HTTP/1.%*c %d", status) != 1) {
        *errp = util_fmt("%s: not an HTTP reply", hostport);
        goto out;
    }
    *body = strdup(eoh + 4);
    if (!*body) {
        *errp = strdup("out of memory");
        goto out;
    }
    rc = 0;
out:
    close(fd);
    free(req);
    free(buf);
    return rc;
}
