/*
 * router/promote.h - replacing a shard's master by its most up-to-date
 * standby, without losing an acknowledged write and never with two
 * writable masters.
 *
 * Control plane only: blocking MariaDB client calls, each bounded by a
 * timeout; run by `shardctl failover` (and, later, the routers' elected
 * coordinator), never on a worker. The caller publishes the new master in
 * the map between promote_prepare() and promote_finish():
 *
 *   prepare  connect to the old master (if it answers) and every standby;
 *            stop every standby's IO thread, so the old master can get no
 *            more semi-sync acknowledgements and therefore commit nothing
 *            more; fence the old master if reachable (read_only, its client
 *            connections killed); choose the standby that received every
 *            transaction any standby received (so it holds every acknowledged
 *            one); wait until it has applied its relay log.
 *   (caller) publish the candidate as master in the map, wait for routers.
 *   finish   make the candidate a lossless semi-sync master, repoint the
 *            other standbys to it, then make it writable.
 *   abort    (before publishing) let the standbys apply and reconnect, and
 *            undo the fence: the map and the master stay as they were.
 */
#ifndef SHARDWIRE_ROUTER_PROMOTE_H
#define SHARDWIRE_ROUTER_PROMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/gtid.h"
#include "shardmap/smap.h"

typedef struct st_mysql MYSQL;

typedef void promote_progress_fn(void *arg, const char *line);

/* True while the caller still owns the shard's failover or switchover (its
 * journal term and its ZooKeeper session): see promote_opts.may_act. */
typedef bool promote_may_act_fn(void *arg);

struct promote_opts {
    const char                 *user;             /* control-plane account */
    const char                 *password;
    unsigned                    timeout_ms;       /* connect and each statement */
    unsigned                    apply_timeout_ms; /* candidate applying its relay log */
    const struct smap_endpoint *to;               /* the operator's candidate, or NULL */
    bool                        force;            /* go on although the master answers */
    promote_progress_fn        *progress;         /* one line per step; may be NULL */
    void                       *progress_arg;
    /* Asked right before every statement that changes a server (and before
     * undoing anything in promote_abort()); once it says false nothing more
     * is sent and the step fails with "stood down". NULL: always may. It
     * narrows, not closes, the window of a runner paused between the check
     * and the statement (see docs/failover.md). */
    promote_may_act_fn         *may_act;
    void                       *may_act_arg;
};

struct promote_server {
    struct smap_endpoint ep;
    MYSQL               *m;              /* NULL: unreachable */
    char                 err[256];       /* why unreachable */
    struct gtid_pos      received;       /* standby: Gtid_IO_Pos */
    char                 received_text[512];
};

struct promote {
    struct promote_opts   o;
    char                  shard[SMAP_NAME_MAX];
    struct promote_server master;
    struct promote_server standbys[SMAP_MAX_STANDBYS];
    unsigned              n_standbys;
    int                   candidate;       /* index into standbys; -1 before chosen */
    bool                  io_stopped;      /* standbys' IO threads stopped by us */
    bool                  fenced;          /* we set read_only on the old master */
    bool                  stood_down;      /* o.may_act said no: nothing more is sent */
};

/* Runs the prepare phase for shard <s> with <o>. Returns 0 with <p> ready for
 * promote_finish() or promote_abort(); or -1 with a malloc'd *<errp> naming
 * what is unsafe or failed (then <p> has been aborted already). Always call
 * promote_free(<p>) afterwards. */
int promote_prepare(struct promote *p, const struct smap_shard *s, const struct promote_opts *o,
                    char **errp);

/* Makes the candidate the master (see above). Returns 0, or -1 with a
 * malloc'd *<errp>; the map already names the candidate, so the operator
 * must finish by hand: the message says which step failed. */
int promote_finish(struct promote *p, char **errp);

/* Resumes a failover whose map change was published but whose finish did
 * not run (its coordinator died): <s> is the shard as the map now has it
 * (the candidate as master). Runs promote_finish(); every step of it is
 * safe to repeat. Returns as promote_finish(). Always promote_free(<p>). */
int promote_resume(struct promote *p, const struct smap_shard *s, const struct promote_opts *o,
                   char **errp);

/* Undoes prepare (best effort; problems are reported through progress). */
void promote_abort(struct promote *p);

/*
 * Rejoin: <server> (an old master back, or a new server cloned from the
 * master) becomes a standby of shard <s>'s master: read-only first, then a
 * GTID replica (MASTER_USE_GTID=current_pos, with <repl_user>/<repl_password>)
 * that must catch up. A server whose history has transactions the master
 * lacks (an old master's unacknowledged tail that was not truncated because
 * it was not started with --init-rpl-role=SLAVE) is refused: the message
 * names them and the server needs a rebuild. Returns 0 with <p> ready for
 * promote_rejoin_finish() after the caller has added <server> to the map,
 * or -1 with a malloc'd *<errp> (the server is left read-only and not
 * replicating). Always promote_free(<p>).
 */
int promote_rejoin(struct promote *p, const struct smap_shard *s,
                   const struct smap_endpoint *server, const char *repl_user,
                   const char *repl_password, const struct promote_opts *o, char **errp);

/* After the map lists the rejoined standby: turns on lossless semi-sync on
 * the master if it ran without (it had no standby). Returns 0 or -1 with a
 * malloc'd *<errp>. */
int promote_rejoin_finish(struct promote *p, char **errp);

/*
 * Planned switchover: the live master hands over to a standby that is
 * caught up. The caller pauses the shard in the map (routers hold its
 * statements) between promote_switch_check() and promote_switch_fence(), and
 * publishes the new master (the old one its standby, the shard unpaused)
 * after promote_switch_finish():
 *
 *   check   the master and every standby answer; the target (<o>->to, else
 *           the standby that received the most) replicates with both threads
 *           running and at most <max_lag_s> seconds behind. Changes nothing.
 *   fence   the old master read-only and its client connections killed
 *           (busy and in-transaction ones too); the target waits until it
 *           has applied the old master's last transaction (at most
 *           <o>->apply_timeout_ms). On failure the old master is made
 *           writable again: the caller unpauses and nothing changed.
 *   finish  the target becomes a lossless master (replication reset,
 *           semi-sync on), the old master replicates from it (with
 *           <repl_user>/<repl_password>: it acknowledges its commits), then
 *           the target is made writable; the other standbys follow it in
 *           promote_switch_repoint(), after the map names it (they are not
 *           needed for the first write, and repointing one takes ~0.1 s).
 * Each returns 0, or -1 with a malloc'd *<errp>. Always promote_free(<p>).
 */
int promote_switch_check(struct promote *p, const struct smap_shard *s,
                         const struct promote_opts *o, unsigned max_lag_s, char **errp);
int promote_switch_fence(struct promote *p, char **errp);
int promote_switch_finish(struct promote *p, const char *repl_user, const char *repl_password,
                          char **errp);
/* After the map names the new master: the other standbys (not the old
 * master, which finish repointed) replicate from it. Best effort, each
 * problem reported through progress (repoint it by hand). */
void promote_switch_repoint(struct promote *p);

/*
 * A switchover whose runner died (router/journal.h: kind=switchover left
 * in progress): sets <p> up, with every server connected, for
 * promote_switch_finish() (left at caught_up: the map still names <old>)
 * or promote_switch_repoint() (left at published: the map names <target>):
 * the old master <old>, the target <target>, and as the other standbys
 * every server of <s> (as the map has it now) that is neither. Both steps
 * are safe to repeat. Returns 0, or -1 with a malloc'd *<errp> when the
 * old master or the target does not answer. Always promote_free(<p>).
 */
int promote_switch_resume(struct promote *p, const struct smap_shard *s,
                          const struct smap_endpoint *old, const struct smap_endpoint *target,
                          const struct promote_opts *o, char **errp);

/* Rolls back a switchover whose runner died before the target was touched
 * (left at started or paused): the old master, still master in the map and
 * not replicating, is made writable again. Returns 0, or -1 with a
 * malloc'd *<errp>. Always promote_free(<p>). */
int promote_switch_rollback(struct promote *p, const struct smap_shard *s,
                            const struct promote_opts *o, char **errp);

/* The candidate chosen by prepare. */
const struct smap_endpoint *promote_candidate(const struct promote *p);

void promote_free(struct promote *p);

#endif
