/*
 * router/coordinator.h - automatic failover: the routers with
 * auto_failover = on elect one coordinator through ZooKeeper; it reads every
 * live router's health view from the registrations, decides with
 * router/detect.c, and replaces a failed master with router/promote.c,
 * recording each step in the shard's failover journal with a term before it
 * is taken (docs/failover.md).
 *
 * A thread of its own: it blocks on ZooKeeper and MariaDB calls, so it
 * never runs on a worker or the control loop.
 */
#ifndef SHARDWIRE_ROUTER_COORDINATOR_H
#define SHARDWIRE_ROUTER_COORDINATOR_H

struct router;
struct coordinator;

/* Starts the coordinator thread when the config says auto_failover = on.
 * Returns NULL with *<errp> NULL when it is off, NULL with a malloc'd
 * *<errp> when it cannot start. Main thread. */
struct coordinator *coordinator_start(struct router *r, char **errp);

/* Stops and joins the thread (a failover in progress finishes its current
 * step first), frees <c>. NULL does nothing. Main thread. */
void coordinator_stop(struct coordinator *c);

#endif
