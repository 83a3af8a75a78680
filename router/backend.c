/*
 * router/backend.c - opening a backend connection: TCP connect, then the
 * client side of the MySQL handshake with mysql_native_password.
 */
#include "router/backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "protocol/handshake.h"
#include "protocol/packet.h"
#include "protocol/reply.h"
#include "protocol/srvcheck.h"
#include "protocol/wire.h"
#include "router/config.h"
#include "router/log.h"
#include "router/pool.h"
#include "router/session.h"
#include "router/util.h"
#include "router/worker.h"

/* What we ask of a backend. CLIENT_MYSQL (= LONG_PASSWORD) keeps MariaDB's
 * extended capabilities off; see backend.h. */
#define BACKEND_CAPS                                                                \
    (WIRE_CAP_LONG_PASSWORD | WIRE_CAP_LONG_FLAG | WIRE_CAP_PROTOCOL_41 |           \
     WIRE_CAP_TRANSACTIONS | WIRE_CAP_SECURE_CONNECTION | WIRE_CAP_MULTI_RESULTS |  \
     WIRE_CAP_PS_MULTI_RESULTS | WIRE_CAP_PLUGIN_AUTH | WIRE_CAP_IGNORE_SIGPIPE)

static void login_failed(struct backend *be, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void login_failed(struct backend *be, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    evtimer_del(be->timer);
    bufferevent_disable(be->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(be->bev, NULL, NULL, NULL, NULL);
    be->login = BACKEND_LOGIN_DONE;
    pool_connect_failed(be, msg);
}

static void login_done(struct backend *be)
{
    evtimer_del(be->timer);
    bufferevent_setcb(be->bev, NULL, NULL, NULL, NULL);
    be->login = BACKEND_LOGIN_DONE;
    /* Out of memory leaves the state unknown: reset before first use. */
    sessstate_build(&be->sstate, NULL, 0, WIRE_CHARSET_UTF8MB4_GENERAL_CI);
    be->created_ms = now_ms();
    pool_connected(be);
}

static void send_packet(struct backend *be, uint8_t seq, const uint8_t *p, size_t len)
{
    uint8_t hdr[PACKET_HEADER_LEN];

    packet_write_header(hdr, (uint32_t)len, seq);
    bufferevent_write(be->bev, hdr, sizeof(hdr));
    bufferevent_write(be->bev, p, len);
}

/* A command packet (sequence 0): <cmd> then <len> bytes of <arg>. */
static void send_packet_cmd(struct backend *be, uint8_t cmd, const char *arg, size_t len)
{
    uint8_t hdr[PACKET_HEADER_LEN + 1];

    packet_write_header(hdr, (uint32_t)(len + 1), 0);
    hdr[PACKET_HEADER_LEN] = cmd;
    bufferevent_write(be->bev, hdr, sizeof(hdr));
    bufferevent_write(be->bev, arg, len);
}

/* Logged in: asks for the settings the analyzer relies on
 * (protocol/srvcheck.h); the connection is handed out only if they hold. */
static bool start_check(struct backend *be)
{
    char q[4096];
    size_t n = srvcheck_query(&be->w->router->cfg->analyze, q, sizeof(q));

    if (n == 0) {
        login_failed(be, "shard key column names cannot be checked on the server");
        return true;
    }
    send_packet_cmd(be, WIRE_COM_QUERY, q, n);
    be->login = BACKEND_LOGIN_CHECK;
    be->check_pkt = 0;
    return false;
}

/* One packet of the check's reply: column count, SRVCHECK_N_COLS column
 * definitions, EOF, the row, EOF. Returns true when the login ended. */
static bool on_check_reply(struct backend *be, const uint8_t *p, size_t len)
{
    unsigned i = be->check_pkt++;
    struct srvcheck_value vals[SRVCHECK_N_COLS];
    char err[400];

    if (len > 0 && p[0] == WIRE_HDR_ERR) {
        uint16_t err_no = 0;
        size_t off = 0, n = 0;

        reply_parse_err(p, len, &err_no, &off, &n);
        login_failed(be, "server settings check failed: %.*s (server error %u)",
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
        if (srvcheck_verify(&be->w->router->cfg->analyze, p, vals, err, sizeof(err)) < 0) {
            be->check_err = strdup(err);
            if (!be->check_err) {
                login_failed(be, "out of memory");
                return true;
            }
        }
        return false;
    }
    if (len == 0 || len >= 9 || p[0] != WIRE_HDR_EOF)
        goto bad;
    if (be->check_err) {
        char msg[sizeof(err) + 64];

        snprintf(msg, sizeof(msg), "server settings refused: %s", be->check_err);
        login_failed(be, "%s", msg);
        return true;
    }
    login_done(be);
    return true;
bad:
    login_failed(be, "server settings check: unexpected reply (packet %u)", i);
    return true;
}

/* An OK ends the authentication and starts the settings check; an ERR fails
 * the login. Returns true if <p> was either: the caller must then stop
 * reading (<be> may be gone, or waits for the check's reply). */
static bool login_result(struct backend *be, const uint8_t *p, size_t len)
{
    if (len > 0 && p[0] == WIRE_HDR_OK) {
        start_check(be);
        return true;
    }
    if (len > 0 && p[0] == WIRE_HDR_ERR) {
        uint16_t err_no = 0;
        size_t off = 0, n = 0;

        reply_parse_err(p, len, &err_no, &off, &n);
        login_failed(be, "%.*s (server error %u)", (int)(n > 200 ? 200 : n),
                     (const char *)p + off, err_no);
        return true;
    }
    return false;
}

/* The handlers return true when the login ended (done or failed): <be> may
 * then be gone already and must not be touched. */
static bool on_greeting(struct backend *be, const uint8_t *p, size_t len, uint8_t seq)
{
    const struct config *cfg = be->w->router->cfg;
    struct handshake_server_greeting g;
    uint8_t out[512];
    int n;

    be->answered = true;                        /* whatever it says, it is alive */
    if (len > 0 && p[0] == WIRE_HDR_ERR)
        return login_result(be, p, len);        /* e.g. "Too many connections" */
    if (handshake_parse_greeting(p, len, &g) < 0) {
        login_failed(be, "not a MySQL/MariaDB server greeting (protocol 10, 4.1 auth)");
        return true;
    }
    if (!(g.capabilities & WIRE_CAP_PROTOCOL_41)) {
        login_failed(be, "server does not speak protocol 4.1");
        return true;
    }
    be->server_caps = g.capabilities;
    be->thread_id = g.connection_id;
    n = handshake_write_client_response(out, sizeof(out), BACKEND_CAPS & g.capabilities,
                                        WIRE_CHARSET_UTF8MB4_GENERAL_CI, cfg->backend_user,
                                        cfg->backend_password, g.scramble,
                                        cfg->analyze.database);
    if (n < 0) {
        login_failed(be, "backend_user or database name too long");
        return true;
    }
    send_packet(be, (uint8_t)(seq + 1), out, (size_t)n);
    be->login = BACKEND_LOGIN_RESULT;
    return false;
}

static bool on_login_reply(struct backend *be, const uint8_t *p, size_t len, uint8_t seq)
{
    const struct config *cfg = be->w->router->cfg;
    size_t plugin_off, plugin_len, data_off, data_len;
    uint8_t tok[HANDSHAKE_SHA1_LEN];

    if (login_result(be, p, len))
        return true;
    if (be->login != BACKEND_LOGIN_RESULT ||
        handshake_parse_auth_switch(p, len, &plugin_off, &plugin_len, &data_off,
                                    &data_len) < 0) {
        login_failed(be, "unexpected packet during login (header 0x%02x)", len ? p[0] : 0);
        return true;
    }
    if (plugin_len != strlen(HANDSHAKE_NATIVE_PLUGIN) ||
        memcmp(p + plugin_off, HANDSHAKE_NATIVE_PLUGIN, plugin_len) != 0 ||
        data_len < HANDSHAKE_SCRAMBLE_LEN) {
        login_failed(be, "server wants auth plugin '%.*s' for user '%s'; the service account "
                         "must use mysql_native_password", (int)(plugin_len > 64 ? 64 : plugin_len),
                     (const char *)p + plugin_off, cfg->backend_user);
        return true;
    }
    if (cfg->backend_password && *cfg->backend_password) {
        handshake_native_token(p + data_off, cfg->backend_password, tok);
        send_packet(be, (uint8_t)(seq + 1), tok, sizeof(tok));
    } else {
        send_packet(be, (uint8_t)(seq + 1), tok, 0);
    }
    be->login = BACKEND_LOGIN_SWITCHED;
    return false;
}

static void login_read(struct bufferevent *bev, void *arg)
{
    struct backend *be = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        uint8_t pkt[4096];
        struct packet_header h;
        bool finished;

        if (evbuffer_copyout(in, pkt, PACKET_HEADER_LEN) < PACKET_HEADER_LEN)
            return;
        packet_read_header(pkt, PACKET_HEADER_LEN, &h);
        if (h.payload_len > sizeof(pkt) - PACKET_HEADER_LEN) {
            login_failed(be, "login packet too large (%u bytes)", h.payload_len);
            return;
        }
        if (evbuffer_get_length(in) < PACKET_HEADER_LEN + (size_t)h.payload_len)
            return;
        /* Taken out of the buffer first: the handlers may hand the
         * connection over (or free it) before they return. */
        evbuffer_remove(in, pkt, PACKET_HEADER_LEN + h.payload_len);
        if (be->login == BACKEND_LOGIN_GREETING)
            finished = on_greeting(be, pkt + PACKET_HEADER_LEN, h.payload_len, h.seq);
        else if (be->login == BACKEND_LOGIN_CHECK)
            finished = on_check_reply(be, pkt + PACKET_HEADER_LEN, h.payload_len);
        else
            finished = on_login_reply(be, pkt + PACKET_HEADER_LEN, h.payload_len, h.seq);
        if (finished)
            return;
    }
}

static void login_event(struct bufferevent *bev, short what, void *arg)
{
    struct backend *be = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;

        setsockopt(bufferevent_getfd(be->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();

        login_failed(be, "%s", err ? evutil_socket_error_to_string(err) : "connection error");
        return;
    }
    if (what & BEV_EVENT_EOF)
        login_failed(be, "connection closed by the server during login");
}

static void login_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct backend *be = arg;

    (void)fd;
    (void)what;
    login_failed(be, "no login within %u ms", be->w->router->cfg->connect_timeout_ms);
}

/* Reports a failure to start from the loop, as promised to the pool. */
static void start_failed(evutil_socket_t fd, short what, void *arg)
{
    struct backend *be = arg;

    (void)fd;
    (void)what;
    be->login = BACKEND_LOGIN_DONE;
    pool_connect_failed(be, be->pool->last_error[0] ? be->pool->last_error
                                                    : "cannot start a connection");
}

struct backend *backend_connect(struct pool *pool)
{
    const struct config *cfg = pool->w->router->cfg;
    unsigned ms = cfg->connect_timeout_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct backend *be = calloc(1, sizeof(*be));
    char addr[SMAP_HOST_MAX + 16];
    char err[sizeof(pool->last_error)];

    if (!be)
        return NULL;
    be->w = pool->w;
    be->pool = pool;
    be->generation = pool->generation;
    be->state = BACKEND_CONNECTING;
    be->login = BACKEND_LOGIN_GREETING;
    be->bev = bufferevent_socket_new(pool->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    be->timer = evtimer_new(pool->w->base, login_timeout, be);
    if (!be->bev || !be->timer) {
        backend_free(be);
        return NULL;
    }
    bufferevent_setcb(be->bev, login_read, NULL, login_event, be);
    bufferevent_enable(be->bev, EV_READ | EV_WRITE);
    memset(&ss, 0, sizeof(ss));
    if (strchr(pool->endpoint.host, ':'))
        snprintf(addr, sizeof(addr), "[%s]:%u", pool->endpoint.host, pool->endpoint.port);
    else
        snprintf(addr, sizeof(addr), "%s:%u", pool->endpoint.host, pool->endpoint.port);
    /* Shard addresses are IP addresses (docs/zookeeper.md); a name here would
     * need a blocking lookup, which a worker must never do. */
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) < 0 ||
        bufferevent_socket_connect(be->bev, (struct sockaddr *)&ss, sslen) < 0) {
        snprintf(err, sizeof(err), "cannot connect to '%.180s' (shard addresses must be IP:port)",
                 addr);
        memcpy(pool->last_error, err, sizeof(err));
        bufferevent_setcb(be->bev, NULL, NULL, NULL, NULL);
        event_free(be->timer);
        be->timer = evtimer_new(pool->w->base, start_failed, be);
        if (!be->timer) {
            backend_free(be);
            return NULL;
        }
        tv.tv_sec = 0;
        tv.tv_usec = 0;
    }
    evtimer_add(be->timer, &tv);
    return be;
}

void backend_free(struct backend *be)
{
    if (!be)
        return;
    if (be->timer)
        event_free(be->timer);
    if (be->bev)
        bufferevent_free(be->bev);
    sessstate_fini(&be->sstate);
    pstmt_cache_clear(&be->stmts);
    free(be->check_err);
    free(be);
}
