/*
 * router/backend.h - one connection to a shard's master.
 *
 * Opened with MariaDB Connector/C through its non-blocking _start/_cont
 * calls (so authentication plugins, charsets and the handshake are the
 * library's), then driven as raw packets through a bufferevent on the same
 * socket: after connect no mysql_* call touches it until mysql_close().
 * A backend belongs to one worker; its owner is a pool (idle) or a session
 * (busy).
 */
#ifndef SHARDWIRE_ROUTER_BACKEND_H
#define SHARDWIRE_ROUTER_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct bufferevent;
struct event;
struct pool;
struct session;
struct worker;
typedef struct st_mysql MYSQL;

enum backend_state {
    BACKEND_CONNECTING,
    BACKEND_IDLE,        /* in its pool's idle list */
    BACKEND_BUSY,        /* attached to a session */
    BACKEND_BROKEN,      /* to be closed */
};

struct backend {
    struct worker      *w;
    struct pool        *pool;
    uint64_t            generation;   /* the pool generation it was opened in */
    enum backend_state  state;
    MYSQL              *my;
    int                 fd;
    struct event       *conn_ev;      /* while connecting */
    struct bufferevent *bev;          /* after connecting */
    struct session     *owner;        /* when BUSY */
    bool                connect_failed;
    uint64_t            state_sig;    /* session state applied (see session.c) */
    uint64_t            created_ms;
    uint64_t            idle_since_ms;
    struct backend     *next, *prev;  /* pool lists */
};

/* Starts connecting a backend for <pool> (to its current endpoint). The pool
 * hears the outcome through pool_connected()/pool_connect_failed(). Returns
 * the backend, or NULL when it could not even start (the error is logged). */
struct backend *backend_connect(struct pool *pool);

/* Closes and frees <be> (NULL does nothing). */
void backend_free(struct backend *be);

/* The state signature of a fresh connection: default charset, no SETs. */
uint64_t backend_fresh_sig(void);

#endif
