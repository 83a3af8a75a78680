/*
 * router/leasepeer.h - the router lease's exception: "unless its peers
 * confirm that ZooKeeper is down for everyone" (docs/failover.md).
 *
 * When ZooKeeper has been silent for half the lease, a thread of its own
 * asks every other router (admin HTTP /status, addresses from their
 * ZooKeeper registrations as last read) whether ZooKeeper is silent for it
 * too. Writes go on past the lease only while a strict majority of the
 * peers say so and none still hears from ZooKeeper (the decision is
 * detect_lease_by_peers(), pure, in router/detect.h). Never runs on a
 * worker.
 */
#ifndef SHARDWIRE_ROUTER_LEASEPEER_H
#define SHARDWIRE_ROUTER_LEASEPEER_H

#include <stdbool.h>

struct router;
struct leasepeer;

/* Starts the thread when ZooKeeper and map_lease_peers are configured;
 * NULL (and no error) otherwise. Main thread. */
struct leasepeer *leasepeer_start(struct router *r);
void leasepeer_stop(struct leasepeer *lp);           /* NULL does nothing */

/* True while the last round confirmed (for at most a second and a half
 * after it). Any thread; one atomic load. */
bool leasepeer_confirmed(const struct leasepeer *lp);

#endif
