/*
 * router/backend.h - one connection to a shard's master.
 *
 * The router logs in itself (HandshakeV10 / HandshakeResponse41 with
 * mysql_native_password, protocol/handshake.c) so that it decides the
 * capabilities exactly: the classic MySQL set (CLIENT_MYSQL on, so MariaDB
 * enables none of its extended-metadata capabilities), no DEPRECATE_EOF, no
 * SESSION_TRACK. Every client can then be sent the backend's replies byte
 * for byte. MariaDB Connector/C cannot be used for this: it always asks a
 * MariaDB server for extended column metadata and metadata caching, which
 * change result-set packets that clients did not negotiate.
 *
 * A backend belongs to one worker; its owner is a pool (idle) or a session
 * (busy).
 */
#ifndef SHARDWIRE_ROUTER_BACKEND_H
#define SHARDWIRE_ROUTER_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "router/pstmt.h"
#include "router/sessstate.h"

struct bufferevent;
struct event;
struct pool;
struct session;
struct worker;

enum backend_state {
    BACKEND_CONNECTING,  /* TCP connect and login in progress */
    BACKEND_IDLE,        /* in its pool's idle list */
    BACKEND_BUSY,        /* attached to a session */
    BACKEND_BROKEN,      /* to be closed */
};

enum backend_login {
    BACKEND_LOGIN_GREETING,  /* waiting for the server's HandshakeV10 */
    BACKEND_LOGIN_RESULT,    /* response sent; waiting for OK / ERR / switch */
    BACKEND_LOGIN_SWITCHED,  /* auth switch answered; waiting for OK / ERR */
    BACKEND_LOGIN_CHECK,     /* logged in; reading the server-settings check */
    BACKEND_LOGIN_DONE,
};

struct backend {
    struct worker      *w;
    struct pool        *pool;
    uint64_t            generation;   /* the pool generation it was opened in */
    enum backend_state  state;
    enum backend_login  login;
    struct bufferevent *bev;
    struct event       *timer;        /* login deadline */
    struct session     *owner;        /* when BUSY */
    uint32_t            server_caps;
    uint32_t            thread_id;    /* the server's connection id */
    struct sessstate    sstate;       /* session state applied (see session_route.c) */
    uint64_t            created_ms;
    uint64_t            idle_since_ms;
    struct pstmt_cache  stmts;        /* server-side prepared statements */
    unsigned            check_pkt;    /* packets of the settings check read so far */
    bool                answered;     /* the server sent its greeting (it is alive) */
    char               *check_err;    /* the check's verdict once its row is read */
    struct backend     *next, *prev;  /* pool lists */
};

/* Starts connecting a backend for <pool> (to its current endpoint). The pool
 * hears the outcome through pool_connected()/pool_connect_failed(), always
 * from the event loop, never from inside this call. Returns the backend, or
 * NULL when it could not even start (out of memory). */
struct backend *backend_connect(struct pool *pool);

/* Closes and frees <be> (NULL does nothing). */
void backend_free(struct backend *be);

#endif
