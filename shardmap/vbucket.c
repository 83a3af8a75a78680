/*
 * shardmap/vbucket.c - canonical key -> vbucket.
 *
 * Pure: no allocation, no state. The hash is part of the on-disk and
 * in-ZooKeeper contract (a map assigns vbuckets, not keys), so it must never
 * change: XXH3_64bits with seed 0 over the canonical key bytes, mod n.
 */
#include "shardmap/vbucket.h"

#include <xxhash.h>

uint32_t vbucket_of(const void *key, size_t len, uint32_t n_vbuckets)
{
    /* n_vbuckets is 0 only through a caller bug; answer 0 rather than trap on
     * a division by zero in the hot path. */
    if (n_vbuckets == 0)
        return 0;
    return (uint32_t)(XXH3_64bits(key, len) % n_vbuckets);
}
