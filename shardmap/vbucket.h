/*
 * shardmap/vbucket.h - canonical key -> vbucket.
 *
 * vbucket = XXH3_64bits(canonical key bytes) mod n_vbuckets. The canonical
 * key is what protocol/analyze produces (decimal text for integer keys), so
 * every tool that hashes the same text places a user on the same vbucket.
 * Test vectors are published in docs/zookeeper.md.
 */
#ifndef SHARDWIRE_SHARDMAP_VBUCKET_H
#define SHARDWIRE_SHARDMAP_VBUCKET_H

#include <stddef.h>
#include <stdint.h>

#define VBUCKET_DEFAULT_COUNT 1024u
#define VBUCKET_MAX_COUNT     1048576u

/* Returns the vbucket of <key>/<len>, in 0..<n_vbuckets>-1 (<n_vbuckets> >= 1). */
uint32_t vbucket_of(const void *key, size_t len, uint32_t n_vbuckets);

#endif
