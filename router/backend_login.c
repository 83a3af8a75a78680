/*
 * router/backend_login.c - the client side of the MySQL handshake with
 * mysql_native_password, and the server-settings check after it.
 */
#include "router/backend_login.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "protocol/handshake.h"
#include "protocol/packet.h"
#include "protocol/reply.h"
#include "protocol/srvcheck.h"
#include "protocol/wire.h"

/* What we ask of a server. CLIENT_MYSQL (= LONG_PASSWORD) keeps MariaDB's
 * extended capabilities off; see backend_login.h. */
#define BACKEND_CAPS                                                                \
    (WIRE_CAP_LONG_PASSWORD | WIRE_CAP_LONG_FLAG | WIRE_CAP_PROTOCOL_41 |           \
     WIRE_CAP_TRANSACTIONS | WIRE_CAP_SECURE_CONNECTION | WIRE_CAP_MULTI_RESULTS |  \
     WIRE_CAP_PS_MULTI_RESULTS | WIRE_CAP_PLUGIN_AUTH | WIRE_CAP_IGNORE_SIGPIPE)

#define BACKEND_ADDR_MAX 300    /* "[" IPv6 or host "]:" port */

static void login_failed(struct backend_login *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void login_failed(struct backend_login *l, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    evtimer_del(l->timer);
    bufferevent_disable(l->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(l->bev, NULL, NULL, NULL, NULL);
    l->phase = BACKEND_LOGIN_DONE;
    l->done(l, msg, l->arg);
}

static void login_done(struct backend_login *l)
{
    evtimer_del(l->timer);
    bufferevent_setcb(l->bev, NULL, NULL, NULL, NULL);
    l->phase = BACKEND_LOGIN_DONE;
    l->done(l, NULL, l->arg);
}

static void send_packet(struct backend_login *l, uint8_t seq, const uint8_t *p, size_t len)
{
    uint8_t hdr[PACKET_HEADER_LEN];

    packet_write_header(hdr, (uint32_t)len, seq);
    bufferevent_write(l->bev, hdr, sizeof(hdr));
    bufferevent_write(l->bev, p, len);
}

/* A command packet (sequence 0): <cmd> then <len> bytes of <arg>. */
static void send_packet_cmd(struct backend_login *l, uint8_t cmd, const char *arg, size_t len)
{
    uint8_t hdr[PACKET_HEADER_LEN + 1];

    packet_write_header(hdr, (uint32_t)(len + 1), 0);
    hdr[PACKET_HEADER_LEN] = cmd;
    bufferevent_write(l->bev, hdr, sizeof(hdr));
    bufferevent_write(l->bev, arg, len);
}

/* Logged in: asks for the settings the analyzer relies on
 * (protocol/srvcheck.h); the login succeeds only if they hold. Without a
 * check to run, it succeeds now. */
static void start_check(struct backend_login *l)
{
    char q[4096];
    size_t n;

    if (!l->p.check) {
        login_done(l);
        return;
    }
    n = srvcheck_query(l->p.check, q, sizeof(q));
    if (n == 0) {
        login_failed(l, "shard key column names cannot be checked on the server");
        return;
    }
    send_packet_cmd(l, WIRE_COM_QUERY, q, n);
    l->phase = BACKEND_LOGIN_CHECK;
    l->check_pkt = 0;
}

/* One packet of the check's reply: column count, SRVCHECK_N_COLS column
 * definitions, EOF, the row, EOF. Returns true when the login ended. */
static bool on_check_reply(struct backend_login *l, const uint8_t *p, size_t len)
{
    unsigned i = l->check_pkt++;
    struct srvcheck_value vals[SRVCHECK_N_COLS];
    char err[400];

    if (len > 0 && p[0] == WIRE_HDR_ERR) {
        uint16_t err_no = 0;
        size_t off = 0, n = 0;

        reply_parse_err(p, len, &err_no, &off, &n);
        login_failed(l, "server settings check failed: %.*s (server error %u)",
                     (int)(n > 200 ? 200 : n), (const char *)p + off, err_no);
        return true;
    }
    if (i == 0) {
        if (len != 1 || p[0] != SRVCHECK_N_COLS)
            goto bad;
        return false;
    }
    if (i <= SRVCHECK_N_COLS)
        return false;                                   /* column definitions */
    if (i == SRVCHECK_N_COLS + 1) {                    /* EOF after them */
        if (len == 0 || len >= 9 || p[0] != WIRE_HDR_EOF)
            goto bad;
        return false;
    }
    if (i == SRVCHECK_N_COLS + 2) {                    /* the row */
        if (srvcheck_parse_row(p, len, vals) < 0)
            goto bad;
        if (srvcheck_verify(l->p.check, p, vals, err, sizeof(err)) < 0) {
            l->check_err = strdup(err);
            if (!l->check_err) {
                login_failed(l, "out of memory");
                return true;
            }
        }
        return false;
    }
    if (len == 0 || len >= 9 || p[0] != WIRE_HDR_EOF)
        goto bad;
    if (l->check_err) {
        char msg[sizeof(err) + 64];

        snprintf(msg, sizeof(msg), "server settings refused: %s", l->check_err);
        login_failed(l, "%s", msg);
        return true;
    }
    login_done(l);
    return true;
bad:
    login_failed(l, "server settings check: unexpected reply (packet %u)", i);
    return true;
}

/* An OK ends the authentication and starts the settings check; an ERR fails
 * the login. Returns true if <p> was either: the caller must then stop
 * reading (<l> may be gone, or waits for the check's reply). */
static bool login_result(struct backend_login *l, const uint8_t *p, size_t len)
{
    if (len > 0 && p[0] == WIRE_HDR_OK) {
        start_check(l);
        return true;
    }
    if (len > 0 && p[0] == WIRE_HDR_ERR) {
        uint16_t err_no = 0;
        size_t off = 0, n = 0;

        reply_parse_err(p, len, &err_no, &off, &n);
        login_failed(l, "%.*s (server error %u)", (int)(n > 200 ? 200 : n),
                     (const char *)p + off, err_no);
        return true;
    }
    return false;
}

/* The handlers return true when the login ended (done or failed): <l> may
 * then be gone already and must not be touched. */
static bool on_greeting(struct backend_login *l, const uint8_t *p, size_t len, uint8_t seq)
{
    struct handshake_server_greeting g;
    uint8_t out[512];
    int n;

    l->answered = true;                         /* whatever it says, it is alive */
    if (len > 0 && p[0] == WIRE_HDR_ERR)
        return login_result(l, p, len);         /* e.g. "Too many connections" */
    if (handshake_parse_greeting(p, len, &g) < 0) {
        login_failed(l, "not a MySQL/MariaDB server greeting (protocol 10, 4.1 auth)");
        return true;
    }
    if (!(g.capabilities & WIRE_CAP_PROTOCOL_41)) {
        login_failed(l, "server does not speak protocol 4.1");
        return true;
    }
    l->server_caps = g.capabilities;
    l->thread_id = g.connection_id;
    n = handshake_write_client_response(out, sizeof(out), BACKEND_CAPS & g.capabilities,
                                        WIRE_CHARSET_UTF8MB4_GENERAL_CI, l->p.user,
                                        l->p.password, g.scramble, l->p.database);
    if (n < 0) {
        login_failed(l, "backend_user or database name too long");
        return true;
    }
    send_packet(l, (uint8_t)(seq + 1), out, (size_t)n);
    l->phase = BACKEND_LOGIN_RESULT;
    return false;
}

static bool on_login_reply(struct backend_login *l, const uint8_t *p, size_t len, uint8_t seq)
{
    size_t plugin_off, plugin_len, data_off, data_len;
    uint8_t tok[HANDSHAKE_SHA1_LEN];

    if (login_result(l, p, len))
        return true;
    if (l->phase != BACKEND_LOGIN_RESULT ||
        handshake_parse_auth_switch(p, len, &plugin_off, &plugin_len, &data_off,
                                    &data_len) < 0) {
        login_failed(l, "unexpected packet during login (header 0x%02x)", len ? p[0] : 0);
        return true;
    }
    if (plugin_len != strlen(HANDSHAKE_NATIVE_PLUGIN) ||
        memcmp(p + plugin_off, HANDSHAKE_NATIVE_PLUGIN, plugin_len) != 0 ||
        data_len < HANDSHAKE_SCRAMBLE_LEN) {
        login_failed(l, "server wants auth plugin '%.*s' for user '%s'; the service account "
                        "must use mysql_native_password", (int)(plugin_len > 64 ? 64 : plugin_len),
                     (const char *)p + plugin_off, l->p.user);
        return true;
    }
    if (l->p.password && *l->p.password) {
        handshake_native_token(p + data_off, l->p.password, tok);
        send_packet(l, (uint8_t)(seq + 1), tok, sizeof(tok));
    } else {
        send_packet(l, (uint8_t)(seq + 1), tok, 0);
    }
    l->phase = BACKEND_LOGIN_SWITCHED;
    return false;
}

static void login_read(struct bufferevent *bev, void *arg)
{
    struct backend_login *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        uint8_t pkt[4096];
        struct packet_header h;
        bool finished;

        if (evbuffer_copyout(in, pkt, PACKET_HEADER_LEN) < PACKET_HEADER_LEN)
            return;
        packet_read_header(pkt, PACKET_HEADER_LEN, &h);
        if (h.payload_len > sizeof(pkt) - PACKET_HEADER_LEN) {
            login_failed(l, "login packet too large (%u bytes)", h.payload_len);
            return;
        }
        if (evbuffer_get_length(in) < PACKET_HEADER_LEN + (size_t)h.payload_len)
            return;
        /* Taken out of the buffer first: the handlers may hand the
         * connection over (or free it) before they return. */
        evbuffer_remove(in, pkt, PACKET_HEADER_LEN + h.payload_len);
        if (l->phase == BACKEND_LOGIN_GREETING)
            finished = on_greeting(l, pkt + PACKET_HEADER_LEN, h.payload_len, h.seq);
        else if (l->phase == BACKEND_LOGIN_CHECK)
            finished = on_check_reply(l, pkt + PACKET_HEADER_LEN, h.payload_len);
        else
            finished = on_login_reply(l, pkt + PACKET_HEADER_LEN, h.payload_len, h.seq);
        if (finished)
            return;
    }
}

static void login_event(struct bufferevent *bev, short what, void *arg)
{
    struct backend_login *l = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;

        setsockopt(bufferevent_getfd(l->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();

        login_failed(l, "%s", err ? evutil_socket_error_to_string(err) : "connection error");
        return;
    }
    if (what & BEV_EVENT_EOF)
        login_failed(l, "connection closed by the server during login");
}

static void login_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct backend_login *l = arg;

    (void)fd;
    (void)what;
    login_failed(l, "no login within %u ms", l->p.timeout_ms);
}

/* Reports a failure to start from the loop, as promised to the caller. */
static void start_failed(evutil_socket_t fd, short what, void *arg)
{
    struct backend_login *l = arg;

    (void)fd;
    (void)what;
    l->phase = BACKEND_LOGIN_DONE;
    l->done(l, l->start_err[0] ? l->start_err : "cannot start a connection", l->arg);
}

int backend_login_start(struct backend_login *l, struct bufferevent *bev, const char *host,
                        unsigned port, const struct backend_login_params *p,
                        backend_login_fn *done, void *arg)
{
    struct event_base *base = bufferevent_get_base(bev);
    unsigned ms = p->timeout_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    char addr[BACKEND_ADDR_MAX];

    memset(l, 0, sizeof(*l));
    l->phase = BACKEND_LOGIN_GREETING;
    l->bev = bev;
    l->p = *p;
    l->done = done;
    l->arg = arg;
    l->timer = evtimer_new(base, login_timeout, l);
    if (!l->timer)
        return -1;
    bufferevent_setcb(bev, login_read, NULL, login_event, l);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    memset(&ss, 0, sizeof(ss));
    if (strchr(host, ':'))
        snprintf(addr, sizeof(addr), "[%s]:%u", host, port);
    else
        snprintf(addr, sizeof(addr), "%s:%u", host, port);
    /* Shard addresses are IP addresses (docs/zookeeper.md); a name here would
     * need a blocking lookup, which a worker must never do. */
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) < 0 ||
        bufferevent_socket_connect(bev, (struct sockaddr *)&ss, sslen) < 0) {
        snprintf(l->start_err, sizeof(l->start_err),
                 "cannot connect to '%.180s' (shard addresses must be IP:port)", addr);
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        event_free(l->timer);
        l->timer = evtimer_new(base, start_failed, l);
        if (!l->timer)
            return -1;
        tv.tv_sec = 0;
        tv.tv_usec = 0;
        evtimer_add(l->timer, &tv);
        return 1;
    }
    evtimer_add(l->timer, &tv);
    return 0;
}

void backend_login_fini(struct backend_login *l)
{
    if (l->timer)
        event_free(l->timer);
    l->timer = NULL;
    free(l->check_err);
    l->check_err = NULL;
}
