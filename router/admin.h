/*
 * router/admin.h - the admin HTTP listener: /health for load balancers,
 * /metrics for Prometheus, /status as JSON.
 *
 * Runs on the control thread's event loop (libevent's evhttp), off the app
 * port and never on a worker: what it reads from the workers are their
 * counters, summed without stopping them. Requests are bounded in size and
 * time; unknown paths get 404, other methods 405, a bad or missing password
 * (with admin_user set) 401.
 */
#ifndef SHARDWIRE_ROUTER_ADMIN_H
#define SHARDWIRE_ROUTER_ADMIN_H

struct event_base;
struct router;
struct admin;

/* Binds config admin_listen on <base> (the control thread's, not yet
 * running). Returns the listener; NULL with *<errp> NULL when admin_listen
 * is not set; NULL with a malloc'd *<errp> when it cannot bind. */
struct admin *admin_start(struct router *r, struct event_base *base, char **errp);

/* Closes the listener (on the control thread, or after it ended). */
void admin_free(struct admin *a);

#endif
