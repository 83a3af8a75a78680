/*
 * router/control.h - the control thread: health checks of every master and
 * standby in the map, over the control-plane account, with the MariaDB
 * client library driven through its non-blocking calls on the thread's own
 * event base. Never touches a worker; workers never wait for it.
 *
 * Each interval, every server of the current map gets a fresh connection and
 * one query (masters and standbys alike read the replication and durability
 * settings; standbys also SHOW SLAVE STATUS), bounded by a hard deadline so a
 * hung server is seen, not only a dead one. Verdicts come from
 * router/health.c; changes and unsafe settings are logged, and
 * control_status() lists the current view.
 */
#ifndef SHARDWIRE_ROUTER_CONTROL_H
#define SHARDWIRE_ROUTER_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/health.h"
#include "shardmap/smap.h"

struct router;
struct control;

/* Starts the control thread for <r> (its config and map): health checks
 * when control_user is set, the admin HTTP listener (router/admin.h) when
 * admin_listen is. Returns NULL with a malloc'd <*errp> when it cannot
 * start; returns NULL with <*errp> NULL when both are off. */
struct control *control_start(struct router *r, char **errp);

/* Stops the thread, closes its connections and frees <c> (NULL does
 * nothing). Main thread. */
void control_stop(struct control *c);

/* Writes the current view, one line per server, each starting with
 * <prefix>:
 *   shard=s0 role=master server=127.0.0.1:3306 verdict=up for_ms=1200 fails=0
 *   unhealthy=0 safe=1 [lag_s=N io=1 sql=1 source=H:P gtid_io_pos=...]
 *   [semi_clients=N] [writes_refused=no_standby stalled_ms=N] [error="..."] [unsafe="..."]
 * (semi_clients on masters with semi-sync on: the standbys connected to it;
 * writes_refused while control_writes_refused() says so)
 * to <buf> (NUL-terminated; whole lines only, as many as fit in <cap>).
 * Returns the length all lines need (without the NUL); <buf> may be NULL
 * when <cap> is 0, to size it. Any thread. */
size_t control_status(struct control *c, char *buf, size_t cap, const char *prefix);

/* Whether health checks run (control_user configured). */
bool control_health_on(const struct control *c);

/*
 * Whether writes to shard <shard> are refused because its master has had no
 * semi-sync acknowledgement for standby_lost_ms (router/health.h,
 * health_acks_observe()): every commit there would wait until a standby
 * returns. Sets <*stalled_ms> (how long since the stall began) when true.
 * One relaxed atomic load while no shard is in that state; no lock, no
 * allocation. <c> may be NULL (false). Any thread (the workers' hot path).
 */
bool control_writes_refused(struct control *c, const char *shard, uint64_t *stalled_ms);

/* One server's health, for readers (admin, status). Strings borrowed for
 * the duration of the callback. */
struct control_server {
    const char         *shard;
    const char         *role;            /* "master" or "standby" */
    char                server[SMAP_ENDPOINT_STR_MAX];
    enum health_verdict verdict;
    uint64_t            for_ms;          /* in <verdict> since */
    bool                unhealthy, has_facts, safe, is_replica, io_running, sql_running;
    int64_t             lag_s;           /* -1: unknown */
    const char         *error;           /* the last failure, or NULL */
    const char         *unsafe;          /* why not lossless, or NULL */
    bool                has_acks;        /* a master with semi-sync on and its counters read */
    unsigned            semi_clients;    /* semi-sync standbys connected (has_acks) */
    unsigned            semi_waiting;    /* commits waiting for an acknowledgement */
    bool                writes_refused;  /* no acknowledgement for standby_lost_ms */
    uint64_t            stalled_ms;      /* since the stall began (writes_refused) */
};
typedef void control_server_fn(const struct control_server *s, void *arg);

/* Calls <fn> for every server, under the view's lock: <fn> must be quick and
 * must not call back into control. Any thread. */
void control_foreach(struct control *c, control_server_fn *fn, void *arg);

/* A number that changes whenever a verdict, a settings warning or the set
 * of servers changes: a reader re-publishes the view when it moved. Any
 * thread. */
uint64_t control_generation(struct control *c);

#endif
