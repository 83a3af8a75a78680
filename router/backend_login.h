/*
 * router/backend_login.h - logging in to a MariaDB server as its client,
 * on an event loop: TCP connect, HandshakeV10 / HandshakeResponse41 with
 * mysql_native_password (protocol/handshake.c), the switch to it when the
 * server asks, then, if asked for, the check of the server settings the
 * analyzer relies on (protocol/srvcheck.h).
 *
 * The router logs in itself so that it decides the capabilities exactly:
 * the classic MySQL set (CLIENT_MYSQL on, so MariaDB enables none of its
 * extended-metadata capabilities), no DEPRECATE_EOF, no SESSION_TRACK.
 * Every client can then be sent the server's replies byte for byte. MariaDB
 * Connector/C cannot be used for this: it always asks a MariaDB server for
 * extended column metadata and metadata caching.
 *
 * Knows nothing of pools, sessions or workers: a pool's connection
 * (router/backend.c) is one user; a health check or the control plane can
 * be another. Must never block (shard addresses are IP addresses: no name
 * lookup) or keep the connection: the caller owns the bufferevent.
 */
#ifndef SHARDWIRE_ROUTER_BACKEND_LOGIN_H
#define SHARDWIRE_ROUTER_BACKEND_LOGIN_H

#include <stdbool.h>
#include <stdint.h>

struct analyze_config;
struct bufferevent;
struct event;
struct backend_login;

enum backend_login_phase {
    BACKEND_LOGIN_GREETING,  /* waiting for the server's HandshakeV10 */
    BACKEND_LOGIN_RESULT,    /* response sent; waiting for OK / ERR / switch */
    BACKEND_LOGIN_SWITCHED,  /* auth switch answered; waiting for OK / ERR */
    BACKEND_LOGIN_CHECK,     /* logged in; reading the server-settings check */
    BACKEND_LOGIN_DONE,
};

/* Who logs in where. The strings and <check> are borrowed: they must
 * outlive the login. */
struct backend_login_params {
    const char                  *user;
    const char                  *password;   /* NULL or "": none */
    const char                  *database;
    const struct analyze_config *check;      /* settings to check after the login; NULL: none */
    unsigned                     timeout_ms; /* the whole login, connect included */
};

/*
 * The login of <l> ended: <err> NULL when it succeeded (the bufferevent is
 * connected, logged in, its callbacks cleared), else why not (the
 * bufferevent's callbacks are cleared and it is disabled). Called exactly
 * once, from the event loop, never from inside backend_login_start(); <l>
 * may be finished (backend_login_fini) inside the call.
 */
typedef void backend_login_fn(struct backend_login *l, const char *err, void *arg);

struct backend_login {
    enum backend_login_phase    phase;
    struct bufferevent         *bev;          /* borrowed: the caller's */
    struct event               *timer;        /* the deadline; owned */
    struct backend_login_params p;
    backend_login_fn           *done;
    void                       *arg;
    uint32_t                    server_caps;
    uint32_t                    thread_id;    /* the server's connection id */
    bool                        answered;     /* the server sent its greeting (it is alive) */
    unsigned                    check_pkt;    /* packets of the settings check read so far */
    char                       *check_err;    /* the check's verdict once its row is read */
    char                        start_err[256]; /* why connecting could not start */
};

/*
 * Connects the unconnected socket bufferevent <bev> to <host>:<port> (an IP
 * address) and logs in as <p> says; <done>(<l>, err, <arg>) tells the end.
 * Returns 0 when started; 1 when connecting could not even start (a bad
 * address): <l>->start_err says why and <done> is still called with it
 * from the loop; -1 when out of memory (<done> is not called). Either way
 * backend_login_fini(<l>) releases it afterwards. Loop thread only.
 */
int backend_login_start(struct backend_login *l, struct bufferevent *bev, const char *host,
                        unsigned port, const struct backend_login_params *p,
                        backend_login_fn *done, void *arg);

/* Releases what <l> holds (not the bufferevent). Safe on a zeroed <l>. */
void backend_login_fini(struct backend_login *l);

#endif
