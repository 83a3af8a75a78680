/*
 * router/switchover.h - the map and journal steps of a planned switchover
 * (docs/failover.md "Planned switchover"), shared by `shardctl switchover`,
 * which runs one, and the routers' coordinator, which finishes or rolls back
 * one whose shardctl died (router/coordinator.c): both follow the same
 * rules, so a dead runner's switchover ends the same whoever finishes it.
 *
 * The MariaDB side is router/promote.c (promote_switch_*). Blocking
 * ZooKeeper and MariaDB calls: never on a worker.
 */
#ifndef SHARDWIRE_ROUTER_SWITCHOVER_H
#define SHARDWIRE_ROUTER_SWITCHOVER_H

#include <stdbool.h>
#include <stdint.h>

struct journal;
struct promote;
struct promote_opts;
struct smap_endpoint;
struct smap_shard;
struct zkstore_admin;

/* Where a runner of a switchover marks itself alive: the ephemeral node
 * <root>/runners/<its journal id> (zkstore_admin_hold()). */
#define SWITCHOVER_RUNNERS_DIR "runners"

/* One runner's view of one switchover. */
struct switchover_run {
    struct zkstore_admin      *za;
    const char                *shard;
    const char                *who;            /* journal coordinator= id */
    struct journal            *j;              /* as last read or written */
    const struct promote_opts *po;             /* progress and may_act */
    const char                *repl_user;      /* the old master's replication account */
    const char                *repl_password;
    unsigned                   router_wait_ms; /* wait for routers after publishing */
};

/*
 * Writes the journal step <state> with the extra words <fmt> as sr->who
 * (a compare-and-set; router/journal.h). Tests only:
 * SHARDWIRE_TEST_SWITCHOVER_PAUSE_AFTER=STATE holds the runner right after
 * writing STATE for SHARDWIRE_TEST_SWITCHOVER_PAUSE_MS (default 60 s), so a
 * test can kill or stop it there. Returns 0, or
 * -1 with a malloc'd *<errp> (someone else wrote the journal: stop).
 */
int switchover_journal(const struct switchover_run *sr, char **errp, const char *state,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * One compare-and-set write of the map, if sr->po->may_act allows: shard
 * sr->shard gets <paused>, and with <master> a new master, the old one
 * becoming its standby. Returns 0 with *<version> the new map version, or
 * -1 with a malloc'd *<errp> and *<zrc> the zkstore result (ZKSTORE_INVALID
 * when the shard is gone or the change is refused).
 */
int switchover_write_map(const struct switchover_run *sr, bool paused,
                         const struct smap_endpoint *master, uint64_t *version, int *zrc,
                         char **errp);

/*
 * The last steps, also of a switchover finished after its runner died: one
 * map write names the target (promote_candidate(<p>)) master, the old
 * master <old> its standby, and unpauses the shard; the other standbys
 * follow; journal `published`; the routers are waited for; journal `done`
 * with the pause: from <t_pause> (monotonic ms when the shard was paused; 0
 * when unknown) to the map write, also left in *<pause_ms>. Returns 0 with
 * *<version>, or -1 with a malloc'd *<errp> (the map names <old> still,
 * paused: the message says what to do).
 */
int switchover_publish(const struct switchover_run *sr, struct promote *p, const char *old,
                       const char *cand, uint64_t t_pause, uint64_t *version,
                       uint64_t *pause_ms, char **errp);

enum switchover_outcome {
    SWITCHOVER_ROLLED_BACK,   /* the old master is master again, unpaused */
    SWITCHOVER_FINISHED,      /* the target is master, unpaused */
};

/*
 * Finishes or rolls back the switchover journaled in sr->j, whose runner is
 * gone, as far as the journal shows it got, with shard <s> as the map has it
 * now. Left at started or paused, the target was not touched: the old
 * master is made writable again and the shard unpaused (journal aborted).
 * Left at caught_up, the target may already be a master: the promotion is
 * finished (every step is safe to repeat; needs sr->repl_user) and
 * published. Left at published, the map names the target already: the
 * other standbys are repointed and the journal closed. Returns 0 with
 * *<out>, or -1 with a malloc'd *<errp> (the shard may stay paused: the
 * message says why).
 */
int switchover_recover(const struct switchover_run *sr, const struct smap_shard *s,
                       enum switchover_outcome *out, char **errp);

#endif
