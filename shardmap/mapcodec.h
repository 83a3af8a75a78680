/*
 * shardmap/mapcodec.h - shard map text <-> struct smap.
 *
 * Pure: bytes in, snapshot out (and back). The same text is the router's
 * map file, its cache file and, split into nodes, the ZooKeeper content
 * (docs/zookeeper.md). Line based, '#' starts a comment:
 *
 *     version 7
 *     vbuckets 1024
 *     key_columns userid
 *     key_type int
 *     shard s0 master=127.0.0.1:3306 standby=127.0.0.1:3307
 *     shard s1 master=127.0.0.1:3316
 *     vb 0-511 s0
 *     vb 512-1023 s1
 *     vb 40-41 s0 frozen        (optional state: a move's cutover)
 *
 * The four setting lines are optional (defaults: version 0, 1024 vbuckets,
 * key column userid, int keys), each at most once and before any shard or
 * vb line; a shard is declared before a vb line names it. Nothing here logs,
 * blocks or keeps a pointer into the caller's text; every rule a map must
 * obey is checked by the smap builder, so parsing can never yield a map the
 * builder would refuse.
 */
#ifndef SHARDWIRE_SHARDMAP_MAPCODEC_H
#define SHARDWIRE_SHARDMAP_MAPCODEC_H

#include <stddef.h>
#include <stdint.h>

struct smap;
struct smap_shard;

#define MAPCODEC_LINE_MAX 4096   /* bytes per line, newline excluded */

/*
 * Parses the map text <text>/<len> (need not be NUL-terminated; any bytes).
 * Returns a new snapshot (refcount 1), or NULL with *<errp> a malloc'd
 * message naming the culprit, e.g. "line 5: shard 's3': port 70000 out of
 * range"; the caller frees it. <errp> may be NULL.
 */
struct smap *mapcodec_parse(const char *text, size_t len, char **errp);

/* Returns the canonical text of <m> (NUL-terminated, malloc'd; caller frees),
 * or NULL when out of memory. mapcodec_parse() of it gives back an equal map. */
char *mapcodec_format(const struct smap *m);

/*
 * The map split the way ZooKeeper holds it: the settings node (only
 * vbuckets/key_columns/key_type lines), the vbmap node (only vb lines), one
 * node per shard (its name is the node name; its text is the rest of a shard
 * line: "master=H:P standby=H:P", on one line), and the version, which lives
 * elsewhere. Shards keep the order given here.
 */
struct mapcodec_parts {
    uint64_t           version;
    const char        *settings;
    size_t             settings_len;
    const char        *vbmap;
    size_t             vbmap_len;
    unsigned           n_shards;
    const char *const *shard_names;    /* [n_shards], NUL-terminated */
    const char *const *shard_texts;    /* [n_shards] */
    const size_t      *shard_lens;     /* [n_shards] */
};

/* Like mapcodec_parse() for a map in parts; a line of one kind in another
 * kind's node (say a shard line inside vbmap) is an error naming the node. */
struct smap *mapcodec_parse_parts(const struct mapcodec_parts *p, char **errp);

/* Text of each node for mapcodec_parse_parts(); malloc'd, NULL when out of
 * memory. */
char *mapcodec_format_settings(const struct smap *m);
char *mapcodec_format_vbmap(const struct smap *m);
char *mapcodec_format_shard(const struct smap_shard *s);

#endif
