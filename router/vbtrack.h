/*
 * router/vbtrack.h - what is in flight on each vbucket, router-wide, so the
 * router can tell when a move's freeze is safe to acknowledge (docs/moves.md,
 * "cutover").
 *
 * A session counts a vbucket from the moment it routes a statement there
 * until the statement's reply is complete, or, inside a transaction, until
 * the transaction ends; a transaction touching more vbuckets than a session
 * records counts as "unknown", which blocks every acknowledgement until it
 * ends. Workers change the counts with relaxed atomics on the routing path;
 * the main thread reads them. The counts are meaningful only together with
 * the map every worker routes by (struct worker.map_version): a count is
 * raised in the same callback that read the map, before the worker can swap
 * to a newer one.
 */
#ifndef SHARDWIRE_ROUTER_VBTRACK_H
#define SHARDWIRE_ROUTER_VBTRACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct smap;

#define VBTRACK_PER_SESSION 8   /* vbuckets one session records by name */

struct vbtrack {
    _Atomic unsigned *busy;      /* [VBUCKET_MAX_COUNT]: statements and transactions */
    _Atomic unsigned  unknown;   /* transactions past VBTRACK_PER_SESSION vbuckets */
    _Atomic unsigned  killing;   /* statements cut on frozen vbuckets whose server side
                                    is still being killed (router/session_move.c) */
};

/* One session's share: which vbuckets it counts. Embedded in the session. */
struct vbtrack_held {
    uint32_t vbs[VBTRACK_PER_SESSION];
    unsigned n;
    bool     unknown;            /* counted in vbtrack.unknown */
};

/* Returns 0, or -1 when out of memory. */
int vbtrack_init(struct vbtrack *t);
void vbtrack_fini(struct vbtrack *t);

/* True when <h> already counts <vb>. */
bool vbtrack_holds(const struct vbtrack_held *h, uint32_t vb);
/* Counts <vb> for <h> (once). Worker thread of the session. */
void vbtrack_enter(struct vbtrack *t, struct vbtrack_held *h, uint32_t vb);
/* Ends everything <h> counts. Worker thread of the session. */
void vbtrack_leave(struct vbtrack *t, struct vbtrack_held *h);

/* True when nothing is in flight on a vbucket that <m> marks frozen (and no
 * transaction of unknown vbuckets runs, and no cut statement is still being
 * killed on its server). Any thread. */
bool vbtrack_quiet(const struct vbtrack *t, const struct smap *m);

/* Whether what <h> counts keeps a freeze of <m> waiting: true with <*vb>
 * the first vbucket it counts that <m> freezes, or with <*vb> UINT32_MAX
 * when it counts unknown vbuckets (and <m> freezes any); false otherwise.
 * The session's own thread (a move's cut past move_drain_ms). */
bool vbtrack_blocks(const struct vbtrack_held *h, const struct smap *m, uint32_t *vb);

#endif
