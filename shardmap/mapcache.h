/*
 * shardmap/mapcache.h - the map on disk: router cache file and map files.
 *
 * A map file holds the map text of shardmap/mapcodec.h. Writes are atomic
 * and durable: a temporary file in the same directory is written, fsynced
 * and renamed over the target, then the directory is fsynced, so a crash
 * leaves either the old or the new map, never a torn one. Reads validate
 * like any other map source. Blocking file I/O: never call from a worker
 * thread. Nothing here logs; errors are malloc'd messages naming the file.
 */
#ifndef SHARDWIRE_SHARDMAP_MAPCACHE_H
#define SHARDWIRE_SHARDMAP_MAPCACHE_H

struct smap;

#define MAPCACHE_MAX_BYTES (64u << 20)   /* larger files are refused */

/*
 * Reads and validates the map file <path>. Returns a new snapshot (refcount
 * 1), or NULL with *<errp> a malloc'd message such as
 * "/var/lib/shardwire/map.cache: line 3: shard 's0' defined twice" (the
 * caller frees it; <errp> may be NULL).
 */
struct smap *mapcache_load(const char *path, char **errp);

/*
 * Atomically replaces <path> with the text of <m>. Returns 0, or -1 with a
 * malloc'd *<errp>: then no temporary file is left and <path> is unchanged,
 * except when only the final directory fsync failed (the message says so).
 */
int mapcache_store(const char *path, const struct smap *m, char **errp);

#endif
