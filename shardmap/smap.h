/*
 * shardmap/smap.h - one immutable, refcounted snapshot of the shard map.
 *
 * Cluster settings (vbucket count, key columns and type), the vbucket ->
 * shard table, each shard's master and standbys, and the map version. A
 * snapshot never changes after it is built: a new map is a new snapshot,
 * published by one pointer swap; readers hold a reference while they use it.
 * smap_ref/smap_unref are atomic and may be called from any thread.
 */
#ifndef SHARDWIRE_SHARDMAP_SMAP_H
#define SHARDWIRE_SHARDMAP_SMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/analyze.h"

#define SMAP_NAME_MAX      64
#define SMAP_HOST_MAX      256
#define SMAP_MAX_STANDBYS  4
#define SMAP_MAX_SHARDS    4096

struct smap_endpoint {
    char     host[SMAP_HOST_MAX];   /* IP address or host name */
    uint16_t port;
};

struct smap_shard {
    char                 name[SMAP_NAME_MAX];
    struct smap_endpoint master;
    struct smap_endpoint standbys[SMAP_MAX_STANDBYS];
    unsigned             n_standbys;
};

struct smap;

struct smap *smap_ref(struct smap *m);
void smap_unref(struct smap *m);          /* NULL does nothing */

uint64_t smap_version(const struct smap *m);
uint32_t smap_n_vbuckets(const struct smap *m);
unsigned smap_n_shards(const struct smap *m);
/* Shard <i>, 0 <= i < smap_n_shards(m). */
const struct smap_shard *smap_shard(const struct smap *m, unsigned i);
/* Index of the shard owning vbucket <vb> (< smap_n_vbuckets(m)). */
unsigned smap_shard_of_vbucket(const struct smap *m, uint32_t vb);
/* Index of the shard named <name>, or -1. */
int smap_find_shard(const struct smap *m, const char *name);
/* Key columns and type declared by the cluster settings. */
const struct analyze_config *smap_key_config(const struct smap *m);

#endif
