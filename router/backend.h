/*
 * router/backend.h - one connection to a shard's master, as a pool holds it.
 *
 * It logs in through router/backend_login.c (the router's own client
 * handshake, so that every client can be sent its replies byte for byte;
 * see there) and runs the server-settings check before the pool hands it
 * out.
 *
 * A backend belongs to one worker; its owner is a pool (idle) or a session
 * (busy).
 */
#ifndef SHARDWIRE_ROUTER_BACKEND_H
#define SHARDWIRE_ROUTER_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "router/backend_login.h"
#include "router/pstmt.h"
#include "router/sessstate.h"
#include "router/wflush.h"

struct bufferevent;
struct pool;
struct session;
struct worker;

enum backend_state {
    BACKEND_CONNECTING,  /* TCP connect and login in progress */
    BACKEND_IDLE,        /* in its pool's idle list */
    BACKEND_BUSY,        /* attached to a session */
    BACKEND_BROKEN,      /* to be closed */
};

struct backend {
    struct worker      *w;
    struct pool        *pool;
    uint64_t            generation;   /* the pool generation it was opened in */
    enum backend_state  state;
    struct backend_login login;       /* while CONNECTING; <login.answered> after */
    struct bufferevent *bev;
    struct wflush       wf;           /* direct writes once logged in */
    struct session     *owner;        /* when BUSY */
    struct sessstate    sstate;       /* session state applied (see session_route.c) */
    uint64_t            created_ms;
    uint64_t            idle_since_ms;
    struct pstmt_cache  stmts;        /* server-side prepared statements */
    bool                on_busy;      /* on its pool's busy list (handed to a session) */
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
