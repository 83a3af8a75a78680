/*
 * router/backend.c - connecting to a shard master with Connector/C's
 * non-blocking API, then handing the socket to a bufferevent.
 */
#include "router/backend.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <mysql.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol/wire.h"
#include "router/config.h"
#include "router/log.h"
#include "router/pool.h"
#include "router/session.h"
#include "router/util.h"
#include "router/worker.h"

/*
 * Every backend connection reports no session state in its OK packets, so
 * that an OK from any backend reads the same to every client whatever
 * CLIENT_SESSION_TRACK it negotiated with us.
 */
static const char init_command[] =
    "SET session_track_schema=OFF, session_track_state_change=OFF, "
    "session_track_system_variables='', session_track_transaction_info=OFF";

uint64_t backend_fresh_sig(void)
{
    return session_state_sig_of(NULL, 0, WIRE_CHARSET_UTF8MB4_GENERAL_CI);
}

static void connect_step(evutil_socket_t fd, short what, void *arg);

/* Waits for what Connector/C asked for in <status>. */
static int wait_for(struct backend *be, int status)
{
    short what = 0;
    struct timeval tv, *tvp = NULL;

    if (status & MYSQL_WAIT_READ)
        what |= EV_READ;
    if (status & MYSQL_WAIT_WRITE)
        what |= EV_WRITE;
    if (status & MYSQL_WAIT_TIMEOUT) {
        unsigned ms = mysql_get_timeout_value_ms(be->my);

        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        tvp = &tv;
    }
    be->fd = mysql_get_socket(be->my);
    if (be->conn_ev)
        event_free(be->conn_ev);
    be->conn_ev = event_new(be->w->base, be->fd, what, connect_step, be);
    if (!be->conn_ev || event_add(be->conn_ev, tvp) < 0)
        return -1;
    return 0;
}

static void connect_done(struct backend *be)
{
    if (be->conn_ev) {
        event_free(be->conn_ev);
        be->conn_ev = NULL;
    }
    be->fd = mysql_get_socket(be->my);
    be->bev = bufferevent_socket_new(be->w->base, be->fd, 0);
    if (!be->bev) {
        pool_connect_failed(be, "out of memory");
        return;
    }
    be->state_sig = backend_fresh_sig();
    be->created_ms = now_ms();
    pool_connected(be);
}

static void connect_step(evutil_socket_t fd, short what, void *arg)
{
    struct backend *be = arg;
    MYSQL *ret = NULL;
    int status = 0;

    (void)fd;
    if (what & EV_READ)
        status |= MYSQL_WAIT_READ;
    if (what & EV_WRITE)
        status |= MYSQL_WAIT_WRITE;
    if (what & EV_TIMEOUT)
        status |= MYSQL_WAIT_TIMEOUT;
    status = mysql_real_connect_cont(&ret, be->my, status);
    if (status) {
        if (wait_for(be, status) < 0)
            pool_connect_failed(be, "cannot wait for the connection");
        return;
    }
    if (!ret) {
        pool_connect_failed(be, mysql_error(be->my));
        return;
    }
    connect_done(be);
}

static void connect_immediate(evutil_socket_t fd, short what, void *arg)
{
    struct backend *be = arg;

    (void)fd;
    (void)what;
    if (be->connect_failed)
        pool_connect_failed(be, mysql_error(be->my));
    else
        connect_done(be);
}

struct backend *backend_connect(struct pool *pool)
{
    const struct config *cfg = pool->w->router->cfg;
    struct backend *be = calloc(1, sizeof(*be));
    unsigned timeout_s = (cfg->connect_timeout_ms + 999) / 1000;
    static const struct timeval zero = { 0, 0 };
    MYSQL *ret = NULL;
    int status;

    if (!be)
        return NULL;
    be->w = pool->w;
    be->pool = pool;
    be->generation = pool->generation;
    be->state = BACKEND_CONNECTING;
    be->fd = -1;
    be->my = mysql_init(NULL);
    if (!be->my) {
        free(be);
        return NULL;
    }
    mysql_options(be->my, MYSQL_OPT_NONBLOCK, 0);
    mysql_options(be->my, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
    mysql_options(be->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(be->my, MYSQL_INIT_COMMAND, init_command);
    status = mysql_real_connect_start(&ret, be->my, pool->endpoint.host, cfg->backend_user,
                                      cfg->backend_password, cfg->analyze.database,
                                      pool->endpoint.port, NULL, 0);
    if (status) {
        if (wait_for(be, status) < 0) {
            backend_free(be);
            return NULL;
        }
        return be;
    }
    /* Finished (or failed) at once: report it from the loop, as the pool
     * promises its sessions. */
    be->connect_failed = ret == NULL;
    be->conn_ev = evtimer_new(be->w->base, connect_immediate, be);
    if (!be->conn_ev || evtimer_add(be->conn_ev, &zero) < 0) {
        backend_free(be);
        return NULL;
    }
    return be;
}

void backend_free(struct backend *be)
{
    if (!be)
        return;
    if (be->conn_ev)
        event_free(be->conn_ev);
    if (be->bev) {
        bufferevent_free(be->bev);
        /* The socket is Connector/C's: close it through the library, but
         * without the COM_QUIT round trip on a connection that may be mid-
         * reply or dead. */
        if (be->fd >= 0)
            shutdown(be->fd, SHUT_RDWR);
    }
    if (be->my)
        mysql_close(be->my);
    free(be);
}
