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
    bool                 paused;    /* a switchover runs: routers hold its statements */
};

/*
 * The shard key a cluster declares: of the analyzer's configuration, only
 * what the map fixes (field names as in struct analyze_config, so code
 * moving between the two reads the same). The database, nesting depth and
 * router options are not the map's business.
 */
struct smap_key {
    char                  key_columns[ANALYZE_MAX_KEY_COLS][ANALYZE_NAME_MAX];
    unsigned              n_key_columns;   /* 1..ANALYZE_MAX_KEY_COLS */
    enum analyze_key_type key_type;
};

/* Copies <k>'s columns and type into <cfg>, leaving its other fields. */
void smap_key_apply(const struct smap_key *k, struct analyze_config *cfg);

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
const struct smap_key *smap_key_config(const struct smap *m);

/*
 * Per-vbucket state. NORMAL: routed to its shard. FROZEN: a move of the
 * vbucket is at its cutover (docs/moves.md): routers hold new statements
 * for it, let transactions on it finish, and acknowledge; the owner does
 * not change until the mover flips the map. The state is part of the map
 * (version bump, one compare-and-set), so every router sees it the same way.
 */
enum smap_vb_state {
    SMAP_VB_NORMAL = 0,
    SMAP_VB_FROZEN = 1,
};

/* Returns a static name for <st> ("normal", "frozen"). */
const char *smap_vb_state_name(enum smap_vb_state st);

/* State of vbucket <vb> (< smap_n_vbuckets(m)). */
enum smap_vb_state smap_vbucket_state(const struct smap *m, uint32_t vb);
/* Number of vbuckets not in SMAP_VB_NORMAL (0 in a map without moves). */
uint32_t smap_n_frozen(const struct smap *m);

/* Number of vbuckets shard <i> owns (0 for a shard that holds none yet). */
uint32_t smap_vbuckets_of_shard(const struct smap *m, unsigned i);
/* True when <a> and <b> name the same port and host (host without case). */
bool smap_endpoint_eq(const struct smap_endpoint *a, const struct smap_endpoint *b);

/*
 * Parses "HOST:PORT" or "[IPV6]:PORT" (<text>/<len>) into <*out>.
 * Returns 0, or -1 with *<errp> a malloc'd message naming the problem
 * (e.g. "port 70000 out of range"); the caller frees it.
 */
int smap_parse_endpoint(const char *text, size_t len, struct smap_endpoint *out,
                        char **errp);
/* Writes "HOST:PORT" ("[HOST]:PORT" when HOST holds a ':') to <buf>. */
void smap_format_endpoint(const struct smap_endpoint *ep, char *buf, size_t size);
#define SMAP_ENDPOINT_STR_MAX (SMAP_HOST_MAX + 8)

/* Validates a shard name: 1..SMAP_NAME_MAX-1 bytes of [A-Za-z0-9_.-], not
 * starting with '.' or '-' (it is also a ZooKeeper node name). Returns 0, or
 * -1 with a malloc'd *<errp>. */
int smap_check_name(const char *name, char **errp);

/*
 * Builder: the only way to make a snapshot. Single-threaded; every check
 * that a map must pass happens here, so the codec, the ZooKeeper store and
 * shardctl cannot disagree on what a valid map is. Error-returning calls
 * leave the builder unchanged and usable. Limits: 1..VBUCKET_MAX_COUNT
 * vbuckets, 1..SMAP_MAX_SHARDS shards (a shard may own no vbucket: a new
 * shard), shard names unique, no host:port used twice in the whole map
 * (masters and standbys), every vbucket assigned exactly once.
 */
struct smap_builder;

/* Returns a builder for an empty map with <n_vbuckets> vbuckets and the key
 * columns and type of <key>, or NULL with a malloc'd *<errp> (bad settings,
 * out of memory). */
struct smap_builder *smap_builder_new(uint32_t n_vbuckets, const struct smap_key *key,
                                      char **errp);
/* Returns a builder holding a copy of <m> (settings, shards, assignments,
 * version), or NULL when out of memory. */
struct smap_builder *smap_builder_from(const struct smap *m);
void smap_builder_free(struct smap_builder *b);   /* NULL does nothing */

void smap_builder_set_version(struct smap_builder *b, uint64_t version);
/* Adds a copy of <s>. Returns 0, or -1 with a malloc'd *<errp>. */
int smap_builder_add_shard(struct smap_builder *b, const struct smap_shard *s, char **errp);
/*
 * Makes <ep> the master of shard <name>. If <ep> was one of its standbys it
 * stops being one (it was promoted); the old master is dropped, not demoted
 * to standby: after a master change nobody knows its state. Returns 0, or -1
 * with a malloc'd *<errp> (unknown shard, <ep> used by another shard).
 */
int smap_builder_set_master(struct smap_builder *b, const char *name,
                            const struct smap_endpoint *ep, char **errp);
/* Removes shard <name>, which must own no vbucket (shardctl remove-shard
 * moves them away first); the other shards keep their order. Returns 0, or
 * -1 with a malloc'd *<errp> (unknown shard, still owns vbuckets, the last
 * shard). */
int smap_builder_remove_shard(struct smap_builder *b, const char *name, char **errp);
/* Marks shard <name> paused (a planned switchover: routers hold its
 * statements instead of sending them) or not. Returns 0, or -1 with a
 * malloc'd *<errp> (unknown shard). */
int smap_builder_set_paused(struct smap_builder *b, const char *name, bool paused, char **errp);
/* Adds <ep> as a standby of shard <name> (a returning server rejoining).
 * Returns 0, or -1 with a malloc'd *<errp> (unknown shard, <ep> used anywhere
 * in the map, SMAP_MAX_STANDBYS reached). */
int smap_builder_add_standby(struct smap_builder *b, const char *name,
                             const struct smap_endpoint *ep, char **errp);
/* Assigns vbuckets <first>..<last> (inclusive) to shard <name>. Returns 0,
 * or -1 with a malloc'd *<errp> (range, unknown shard, already assigned). */
int smap_builder_assign(struct smap_builder *b, uint32_t first, uint32_t last,
                        const char *name, char **errp);
/* Gives every vbucket <vb> with <set>[vb] != 0 (<set> has one byte per
 * vbucket) to shard <name>, whoever owned it: a move's flip. Returns 0, or
 * -1 with a malloc'd *<errp> (unknown shard). */
int smap_builder_reassign(struct smap_builder *b, const uint8_t *set, const char *name,
                          char **errp);
/* Sets the state of vbuckets <first>..<last> (inclusive), which keep their
 * shard. Returns 0, or -1 with a malloc'd *<errp> (range, unknown state). */
int smap_builder_set_state(struct smap_builder *b, uint32_t first, uint32_t last,
                           enum smap_vb_state st, char **errp);
/* Assigns every vbucket: contiguous ranges whose sizes differ by at most
 * one, in shard order (for `shardctl init`). Returns 0, or -1 with a malloc'd
 * *<errp> when there is no shard. */
int smap_builder_spread(struct smap_builder *b, char **errp);
/*
 * Checks completeness and returns the snapshot (refcount 1), or NULL with a
 * malloc'd *<errp> (e.g. "vbucket 17 is not assigned to any shard").
 * Consumes <b> either way.
 */
struct smap *smap_builder_finish(struct smap_builder *b, char **errp);

#endif
