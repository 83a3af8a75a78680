/*
 * router/clusterview.h - what the whole cluster looks like from ZooKeeper,
 * for the admin listener's /status and the web console: the live routers
 * and the map version each one runs, each shard's failover term and
 * journal, the failover history and the vbucket moves.
 *
 * A thread of its own (started only with an admin listener) reads it every
 * CLUSTERVIEW_INTERVAL_MS over a ZooKeeper connection of its own, with
 * blocking calls that must never stall the control loop, and keeps the
 * last answer as a JSON document; clusterview_get() copies it.
 */
#ifndef SHARDWIRE_ROUTER_CLUSTERVIEW_H
#define SHARDWIRE_ROUTER_CLUSTERVIEW_H

#include <jansson.h>

#define CLUSTERVIEW_INTERVAL_MS  2000
#define CLUSTERVIEW_MOVES_MAX    20      /* most recent moves listed */

struct router;
struct clusterview;

/* Starts the reader thread. Returns NULL with a malloc'd *<errp> when the
 * thread cannot start. */
struct clusterview *clusterview_start(struct router *r, char **errp);
/* Stops and joins the thread; NULL does nothing. */
void clusterview_stop(struct clusterview *cv);

/*
 * A new reference to a copy of the last view:
 *   {"read_ms": wall ms of the read, or 0 before the first, "error": "..." (the last read
 *    failed; the rest is from the one before), "coordinator": "id" | null,
 *    "routers": [{"id", "address", "admin", "map_version", "map_age_ms", "pid",
 *                 "registered_ms", "updated_ms"}],
 *    "shards": {"s0": {"term", and with a journal mapjson_journal()'s fields}},
 *    "history": [{word: value, ...}] (newest last),
 *    "moves": [{"id", "vbuckets", "from", "to", "phase", "active", "rows", "started_ms",
 *               "updated_ms", "error"}] (newest first)}
 * NULL when out of memory.
 */
json_t *clusterview_get(struct clusterview *cv);

#endif
