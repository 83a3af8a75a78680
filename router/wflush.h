/*
 * router/wflush.h - direct, batched writes for the data path's sockets.
 *
 * A libevent socket bufferevent with writing enabled arms its write event
 * (epoll_ctl) whenever bytes are queued, writes them one loop iteration
 * later (another epoll_wait), and disarms it (epoll_ctl again): four
 * epoll_ctl calls and an extra wakeup per statement on the client and
 * backend sockets together. A tracked bufferevent instead has writing
 * disabled; queuing bytes puts it on its worker's dirty list, and once the
 * callbacks that are ready now have run, one writev per socket sends what
 * they queued. Only when the kernel takes less (a slow reader) is the
 * write event enabled, and libevent finishes the job as before; the write
 * callback runs after each direct write, as libevent would run it.
 *
 * A tracked socket is also read directly (router/rdirect.h: one readv per
 * readiness, no ioctl), and given back to libevent's reading when untracked.
 *
 * Only plain sockets are tracked (a TLS filter's socket is not: the filter
 * drives its own writes). A tracked bufferevent must be untracked before it
 * is freed. All calls are on the owning worker's thread.
 */
#ifndef SHARDWIRE_ROUTER_WFLUSH_H
#define SHARDWIRE_ROUTER_WFLUSH_H

#include <stdbool.h>
#include <sys/queue.h>

#include "router/rdirect.h"

struct bufferevent;
struct evbuffer_cb_entry;
struct worker;

struct wflush {
    struct bufferevent       *bev;      /* NULL: not tracked */
    struct worker            *w;
    struct evbuffer_cb_entry *cb;
    bool                      dirty;
    TAILQ_ENTRY(wflush)       link;     /* the worker's dirty list */
    struct rdirect            rd;       /* its reads */
};

TAILQ_HEAD(wflush_list, wflush);

/* Starts tracking <bev> (a connected socket bufferevent of worker <w>):
 * disables its write event and flushes anything already queued. Returns 0,
 * or -1 (out of memory: <bev> keeps libevent's own writing). */
int wflush_track(struct wflush *f, struct worker *w, struct bufferevent *bev);

/* Stops tracking (no-op when not tracked); <enable_write> gives the write
 * event back to libevent, as for a bufferevent never tracked. Reading goes
 * back to libevent too. */
void wflush_untrack(struct wflush *f, bool enable_write);

/* Writes every dirty socket of <w> (the worker's flush event runs it). */
void wflush_run(struct worker *w);

#endif
