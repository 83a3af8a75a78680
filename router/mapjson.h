/*
 * router/mapjson.h - the map's shards as JSON, one shape for the router's
 * /status and `shardctl status --json`.
 */
#ifndef SHARDWIRE_ROUTER_MAPJSON_H
#define SHARDWIRE_ROUTER_MAPJSON_H

#include <jansson.h>
#include <stdbool.h>

struct journal;
struct smap;

/* [{"name": "s0", "master": "H:P", "standbys": ["H:P", ...], "vbuckets": N,
 * "paused": false}, ...] in map order; a new reference, NULL when out of memory. */
json_t *mapjson_shards(const struct smap *m);

/* The key=value words of one line [<p>, <end>) ("a=1 b=\"x y\""), as a JSON
 * object of strings: registrations, health lines, history lines. A new
 * reference, NULL when out of memory. Values are cut at 511 bytes. */
json_t *mapjson_words(const char *p, const char *end);

/* Each non-empty line of <text> (NULL: none) as mapjson_words(), in an
 * array: the failover history. A new reference, NULL when out of memory. */
json_t *mapjson_lines(const char *text);

/* A shard's failover journal: {} when it has none, else "term", "state",
 * "kind", "coordinator", "in_progress", "at_ms" and, where set, "old",
 * "new", "started_ms". A new reference, NULL when out of memory. */
json_t *mapjson_journal(const struct journal *j);

/* Adds to a switchover's mapjson_journal() object <o> its runner <runner>
 * ("runner"), whether its runner node lives ("runner_alive") and, when it
 * does not, the coordinator that takes the switchover over ("takeover_by":
 * <coordinator>, null when none is elected). */
void mapjson_runner(json_t *o, const char *runner, bool alive, const char *coordinator);

#endif
