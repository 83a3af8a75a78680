/*
 * router/mapwatch.h - where the router's map comes from, and how a new one
 * reaches the workers.
 *
 * Two sources: a map file (read at start and on SIGHUP) or ZooKeeper
 * (zkstore: watched, every good map written to the cache file, the router
 * registered as an ephemeral node). With ZooKeeper the router starts from the
 * cache file when ZooKeeper does not answer in time, and keeps serving on its
 * last good map while ZooKeeper is away.
 */
#ifndef SHARDWIRE_ROUTER_MAPWATCH_H
#define SHARDWIRE_ROUTER_MAPWATCH_H

#include <stdbool.h>
#include <stdint.h>

struct router;
struct smap;
struct mapwatch;

/*
 * Gets the first map (blocking the caller up to zk_start_timeout_ms when the
 * source is ZooKeeper). Returns a mapwatch with mapwatch_map() set, or NULL
 * with <*errp> (caller frees). Call before the workers exist; the router's
 * key settings are taken from this first map.
 */
struct mapwatch *mapwatch_start(struct router *r, char **errp);

/* The first map: a new reference the caller drops with smap_unref(). Taken
 * under the lock: until mapwatch_attach() the ZooKeeper thread may replace
 * (and unref) the first map at any moment. */
struct smap *mapwatch_first_map(struct mapwatch *mw);

/* Workers exist now: publish the current map to them and from now on every
 * new one. Main thread. */
void mapwatch_attach(struct mapwatch *mw);

/* SIGHUP: re-read the map file (no-op for ZooKeeper). Main thread. */
void mapwatch_reload(struct mapwatch *mw);

/* Once a second from the main loop: refresh the registration (map age) and
 * warn when ZooKeeper has been silent too long. Main thread. */
void mapwatch_tick(struct mapwatch *mw);

/* How long the map source has not confirmed the map: 0 for a map file;
 * for ZooKeeper, ms since it last answered (since start if never). Any
 * thread. */
uint64_t mapwatch_silence_ms(struct mapwatch *mw);

/* The router lease (docs/failover.md): true while ZooKeeper has confirmed
 * the map within map_lease_ms (always without ZooKeeper), or while the
 * peers confirm that ZooKeeper is down for everyone (router/leasepeer.h).
 * A router whose lease ran out sends no writes otherwise: a failover may
 * have replaced a master it does not know of. Any thread. */
bool mapwatch_lease_ok(struct mapwatch *mw);
/* The other routers' admin addresses (zkstore_peers()); malloc'd or NULL. */
char *mapwatch_peers(struct mapwatch *mw);
/* The ZooKeeper session as the client library last reported it:
 * "connected", "disconnected", "expired"; "none" for a map file. Any
 * thread. */
const char *mapwatch_zk_state(struct mapwatch *mw);

/* The id this router registers under (config router_id, or host-port). */
const char *mapwatch_router_id(struct mapwatch *mw);
/*
 * A move's cutover (docs/moves.md): when the map in use freezes vbuckets,
 * every worker routes by it and nothing is in flight on them any more
 * (router/vbtrack.h), writes frozen_ack=<map version> into the
 * registration. Main thread: run when a map that freezes vbuckets is
 * published (router->freeze_ev), then every millisecond while it returns
 * true (a freeze waits for this router's acknowledgement); nothing runs
 * without a move.
 */
bool mapwatch_freeze_tick(struct mapwatch *mw);

void mapwatch_free(struct mapwatch *mw);

/* Hands <m> to every worker (takes the reference). Any thread. Returns 0,
 * or -1 when <m> is older than the map in use (dropped, logged). */
int mapwatch_publish(struct router *r, struct smap *m);

#endif
