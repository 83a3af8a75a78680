/*
 * router/mapjson.h - the map's shards as JSON, one shape for the router's
 * /status and `shardctl status --json`.
 */
#ifndef SHARDWIRE_ROUTER_MAPJSON_H
#define SHARDWIRE_ROUTER_MAPJSON_H

#include <jansson.h>

struct smap;

/* [{"name": "s0", "master": "H:P", "standbys": ["H:P", ...], "vbuckets": N,
 * "paused": false}, ...] in map order; a new reference, NULL when out of memory. */
json_t *mapjson_shards(const struct smap *m);

#endif
