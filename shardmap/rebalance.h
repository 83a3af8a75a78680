/*
 * shardmap/rebalance.h - planning `shardctl rebalance` and `shardctl
 * remove-shard`: which vbuckets move from which shard to which, and the
 * plan's text as kept in ZooKeeper (<root>/rebalance/plan) so a killed run
 * continues the same moves instead of planning anew on top of half-done
 * ones (docs/moves.md, "Rebalancing").
 *
 * Pure: a map (and optional per-vbucket weights) in, a plan out, and the
 * plan's text and back. Nothing here logs, does I/O or reads a clock.
 */
#ifndef SHARDWIRE_SHARDMAP_REBALANCE_H
#define SHARDWIRE_SHARDMAP_REBALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardmap/movejournal.h"
#include "shardmap/smap.h"

#define REBALANCE_MAX_MOVES  256
#define REBALANCE_TEXT_MAX   (REBALANCE_MAX_MOVES * (MOVE_FIELD_MAX * 4 + 200) + 512)

/* One planned move: vbuckets of one shard to another (a `shardctl move`). */
struct rebalance_move {
    char     from[SMAP_NAME_MAX];
    char     to[SMAP_NAME_MAX];
    char     vbuckets[MOVE_FIELD_MAX * 4];   /* canonical list ("342-511") */
    uint32_t n_vbuckets;
};

enum rebalance_kind {
    REBALANCE_EVEN,      /* `rebalance`: even out the shards */
    REBALANCE_REMOVE,    /* `remove-shard`: empty <shard>, then drop it */
};

struct rebalance_plan {
    enum rebalance_kind   kind;
    char                  shard[SMAP_NAME_MAX];   /* REBALANCE_REMOVE: the shard */
    char                  database[65];
    char                  weight[16];   /* "vbuckets" or what the load was measured in */
    bool                  done;         /* every move finished (and the shard removed) */
    uint64_t              started_ms;   /* CLOCK_REALTIME ms, from the caller */
    unsigned              n_moves;
    struct rebalance_move moves[REBALANCE_MAX_MOVES];
};

/*
 * What to plan for. <weight> (NULL: every vbucket weighs 1) gives each
 * vbucket's weight (> 0); <busy> (NULL: none) marks vbuckets that must not
 * move (held by an unfinished move). <remove> (NULL for REBALANCE_EVEN) is
 * the shard to empty.
 */
struct rebalance_input {
    const struct smap *m;
    const double      *weight;     /* [n_vbuckets] */
    const uint8_t     *busy;       /* [n_vbuckets] */
    enum rebalance_kind kind;
    const char        *remove;
};

/*
 * Plans the moves into <p> (its kind, shard and moves; the caller sets
 * database, weight and started_ms). EVEN: the fewest moves that bring
 * every shard's total weight as close to the mean as whole vbuckets allow
 * (with unit weights: counts differing by at most one); REMOVE: every
 * vbucket of <remove> to the other shards, each time to the lightest, so
 * they end as even as possible without moving anything else. Vbuckets are
 * taken from the end of a shard's range, so a move is a few contiguous
 * ranges and one pair of shards is one move (split only where the list
 * would not fit a journal). Each vbucket moves at most once. Returns the
 * number of moves (0: already even), or -1 with a malloc'd *<errp>
 * (unknown shard, the last shard, too many moves).
 */
int rebalance_plan_make(const struct rebalance_input *in, struct rebalance_plan *p,
                        char **errp);

/*
 * Blends measured load into weights: vbucket <v> weighs 1 + N * load[v] /
 * sum(load), so the vbuckets' count and their load count equally and an
 * idle vbucket still weighs 1. <out> gets <n> weights; all 1 when the load
 * sums to 0.
 */
void rebalance_weights(const double *load, uint32_t n, double *out);

/* Writes <p> as text (one header line, one line per move). Returns 0, or -1
 * if it does not fit <cap>. */
int rebalance_plan_format(const struct rebalance_plan *p, char *buf, size_t cap);
/* Parses plan text. Returns 0, or -1 with a malloc'd *<errp> naming the
 * line. Unknown keys are ignored (a newer writer). */
int rebalance_plan_parse(const char *text, size_t len, struct rebalance_plan *p, char **errp);

#endif
