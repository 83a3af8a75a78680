/*
 * tools/shardctl_switchover.c - `shardctl switchover SHARD [--to HOST:PORT]
 * [--max-lag S] [--apply-timeout S] [--router-wait S] [--force]`: a planned
 * master change with the master alive (maintenance, moving load).
 *
 *   check    master and standbys answer, the target replicates and is at
 *            most --max-lag seconds behind (router/promote.c); else refused,
 *            nothing changed
 *   pause    the map marks the shard paused=1; every router holds the
 *            shard's statements instead of sending them, and acknowledges
 *            the map version in its registration
 *   fence    the old master read-only, its client connections killed; the
 *            target applies the master's last transaction (on failure: the
 *            master writable again, the map unpaused, nothing changed)
 *   promote  the target a lossless master, the old master and the other
 *            standbys replicating from it, the target writable
 *   publish  one map write: the target master, the old master its first
 *            standby, the shard unpaused; the held statements go there
 *
 * Every step is journaled with a new term (router/journal.h), so the
 * coordinator leaves the shard alone meanwhile and `shardctl status` shows
 * it. The pause is the time between the two map writes, printed at the end.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/journal.h"
#include "router/promote.h"
#include "router/switchover.h"
#include "router/util.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"
#include "tools/shardctl.h"

#define SWITCHOVER_MAX_LAG_S        5
#define SWITCHOVER_APPLY_TIMEOUT_MS 5000
#define SWITCHOVER_ROUTER_WAIT_MS   5000

static void progress(void *arg, const char *line)
{
    shardctl_step(arg, "switchover", line);
}

/* This run of shardctl, for promote_opts.may_act. */
struct runner {
    struct switchover_run sr;
    bool                  stood_down;
};

/* Whether this shardctl still owns the switchover (its runner node, its
 * journal term): one stopped long enough for the routers' coordinator to
 * finish or roll back its switchover changes nothing when it wakes up. */
static bool runner_may_act(void *arg)
{
    struct runner *ru = arg;
    char why[400];

    if (!ru->stood_down && !journal_owned(ru->sr.za, ru->sr.shard, ru->sr.j, why, sizeof(why))) {
        shardctl_err("switchover: stood down: %s; changing nothing more", why);
        ru->stood_down = true;
    }
    return !ru->stood_down;
}

/* Reports a failed switchover_* step: <what>, the message, <tail>. Returns
 * SHARDCTL_FAILED, or SHARDCTL_CONFLICT when this run stood down. */
static int failed(const struct runner *ru, const char *what, char *err, const char *tail)
{
    shardctl_err("switchover: %s%s%s%s", what, err ? err : "failed", tail[0] ? "; " : "", tail);
    free(err);
    return ru->stood_down ? SHARDCTL_CONFLICT : SHARDCTL_FAILED;
}

/* Prints the end of a switchover. */
static void print_done(const struct shardctl_opts *o, const char *shard, const char *cand,
                       const char *old, uint64_t version, uint64_t pause_ms, uint64_t t0)
{
    if (o->json)
        printf("{\"event\":\"done\",\"shard\":\"%s\",\"master\":\"%s\",\"standby\":\"%s\","
               "\"version\":%" PRIu64 ",\"pause_ms\":%" PRIu64 ",\"ms\":%" PRIu64 "}\n", shard,
               cand, old, version, pause_ms, now_ms() - t0);
    else
        printf("%s: master is now %s, %s its standby; map version %" PRIu64 "; writes paused "
               "%" PRIu64 " ms (%" PRIu64 " ms in all)\n", shard, cand, old, version,
               pause_ms, now_ms() - t0);
}

/* One step's journal write by this run; prints why it failed. Returns 0 or
 * -1 (stop). */
static int step(struct runner *ru, const char *state, const char *old, const char *cand,
                uint64_t version)
{
    char *err = NULL;
    int rc = version ? switchover_journal(&ru->sr, &err, state, "old=%s new=%s version=%"
                                          PRIu64, old, cand, version)
                     : switchover_journal(&ru->sr, &err, state, "old=%s new=%s", old, cand);

    if (rc < 0) {
        shardctl_err("switchover: %s (another failover or switchover took over?)",
                     err ? err : "journal");
        free(err);
    }
    return rc;
}

int shardctl_switchover(const struct shardctl_opts *o)
{
    const char *user = o->control_user ? o->control_user : getenv("SHARDWIRE_CONTROL_USER");
    const char *password = o->control_password ? o->control_password
                                               : getenv("SHARDWIRE_CONTROL_PASSWORD");
    const char *ruser = o->repl_user ? o->repl_user : getenv("SHARDWIRE_REPL_USER");
    const char *rpass = o->repl_password ? o->repl_password : getenv("SHARDWIRE_REPL_PASSWORD");
    struct zkstore_admin *za = NULL;
    struct smap *cur = NULL;
    struct promote p;
    struct promote_opts po;
    struct journal j;
    struct smap_endpoint to;
    struct runner ru;
    char *err = NULL, old[SMAP_ENDPOINT_STR_MAX], cand[SMAP_ENDPOINT_STR_MAX], line[1200];
    char who[ZKSTORE_ROUTER_ID_MAX];
    uint64_t version = 0, t0 = now_ms(), t_pause = 0, t_step, pause_ms;
    const char *shard;
    enum zkstore_rc rc;
    int i, ex, zrc;

    memset(&p, 0, sizeof(p));
    if (o->argc != 1) {
        shardctl_err("usage: switchover SHARD [--to HOST:PORT] [--max-lag S] "
                     "[--apply-timeout S] [--router-wait S] [--force]");
        return SHARDCTL_USAGE;
    }
    shard = o->argv[0];
    if (!user || !*user || !ruser || !*ruser) {
        shardctl_err("switchover: set SHARDWIRE_CONTROL_USER/_PASSWORD (control-plane "
                     "account) and SHARDWIRE_REPL_USER/_PASSWORD (the account standbys "
                     "replicate with: the old master becomes one)");
        return SHARDCTL_USAGE;
    }
    if (!rpass)
        rpass = "";
    if (strpbrk(ruser, "'\\") || strpbrk(rpass, "'\\")) {
        shardctl_err("switchover: the replication user name and password may not hold quotes "
                     "or backslashes");
        return SHARDCTL_USAGE;
    }
    memset(&po, 0, sizeof(po));
    ex = shardctl_open_shard(o, "switchover", &to, &za, &cur, NULL, &j);
    if (ex != SHARDCTL_OK)
        return ex;
    if (o->to)
        po.to = &to;
    i = smap_find_shard(cur, shard);
    po.user = user;
    po.password = password ? password : "";
    po.timeout_ms = o->timeout_ms;
    po.apply_timeout_ms = o->apply_timeout_ms ? o->apply_timeout_ms : SWITCHOVER_APPLY_TIMEOUT_MS;
    po.progress = progress;
    po.progress_arg = (void *)o;
    shardctl_runner_id(who, sizeof(who));
    memset(&ru, 0, sizeof(ru));
    ru.sr.za = za;
    ru.sr.shard = shard;
    ru.sr.who = who;
    ru.sr.j = &j;
    ru.sr.po = &po;
    ru.sr.repl_user = ruser;
    ru.sr.repl_password = rpass;
    ru.sr.router_wait_ms = o->router_wait_ms ? o->router_wait_ms : SWITCHOVER_ROUTER_WAIT_MS;
    po.may_act = runner_may_act;
    po.may_act_arg = &ru;
    /* Before the first step: while this node lives, the routers'
     * coordinator leaves the switchover to us; once it is gone (this
     * process died, or stopped past its session) it finishes it. */
    rc = zkstore_admin_hold(za, SWITCHOVER_RUNNERS_DIR, who, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("switchover: %s", err ? err : zkstore_rc_name(rc));
        free(err);
        ex = shardctl_exit_of(rc);
        goto out;
    }
    if (journal_in_progress(&j) && strcmp(j.kind, "switchover") == 0 &&
        shardctl_runner_gone(&j)) {
        enum switchover_outcome done;

        if (switchover_recover(&ru.sr, smap_shard(cur, (unsigned)i), &done, &err) < 0) {
            ex = failed(&ru, "", err, "");
            goto out;
        }
        if (done == SWITCHOVER_FINISHED) {
            printf("%s: master is %s, %s its standby (the interrupted switchover is done)\n",
                   shard, j.new_text, j.old_text);
            goto out;
        }
        smap_unref(cur);
        cur = NULL;
        rc = zkstore_admin_load(za, &cur, NULL, &err);
        if (rc != ZKSTORE_OK) {
            shardctl_err("switchover: map read: %s", err ? err : zkstore_rc_name(rc));
            free(err);
            ex = shardctl_exit_of(rc);
            goto out;
        }
        i = smap_find_shard(cur, shard);
        if (i < 0) {
            ex = SHARDCTL_INVALID;
            goto out;
        }
    }
    if (promote_switch_check(&p, smap_shard(cur, (unsigned)i), &po,
                             o->have_max_lag ? o->max_lag_s : SWITCHOVER_MAX_LAG_S, &err) < 0) {
        shardctl_err("switchover: %s; nothing changed", err ? err : "refused");
        free(err);
        ex = SHARDCTL_INVALID;
        goto out;
    }
    smap_format_endpoint(&smap_shard(cur, (unsigned)i)->master, old, sizeof(old));
    smap_format_endpoint(promote_candidate(&p), cand, sizeof(cand));
    j.term++;
    snprintf(j.kind, sizeof(j.kind), "switchover");
    if (step(&ru, "started", old, cand, 0) < 0) {
        ex = SHARDCTL_CONFLICT;
        goto out;
    }
    /* Pause: from here the routers hold the shard's statements. */
    if (switchover_write_map(&ru.sr, true, NULL, &version, &zrc, &err) < 0) {
        shardctl_err("switchover: map write: %s", err ? err : zkstore_rc_name(zrc));
        free(err);
        ex = shardctl_exit_of(zrc);
        step(&ru, "aborted", old, cand, 0);
        goto out;
    }
    t_pause = t_step = now_ms();
    snprintf(line, sizeof(line), "pause: map version %" PRIu64 " holds the statements of %s",
             version, shard);
    progress((void *)o, line);
    if (step(&ru, "paused", old, cand, version) < 0) {
        ex = SHARDCTL_CONFLICT;
        goto unpause;
    }
    if (zkstore_admin_wait_routers(za, version, ru.sr.router_wait_ms, line, 400) > 0) {
        char l2[600];

        snprintf(l2, sizeof(l2), "routers not on map version %" PRIu64 " after %u ms: %.200s "
                 "(going on: the old master is fenced)", version, ru.sr.router_wait_ms, line);
        progress((void *)o, l2);
    }
    snprintf(line, sizeof(line), "timing: routers on the paused map after %" PRIu64 " ms",
             now_ms() - t_step);
    progress((void *)o, line);
    t_step = now_ms();
    if (promote_switch_fence(&p, &err) < 0) {
        shardctl_err("switchover: %s; nothing changed", err ? err : "failed");
        free(err);
        ex = ru.stood_down ? SHARDCTL_CONFLICT : SHARDCTL_INVALID;
        goto unpause;
    }
    snprintf(line, sizeof(line), "timing: fenced and caught up in %" PRIu64 " ms",
             now_ms() - t_step);
    progress((void *)o, line);
    if (step(&ru, "caught_up", old, cand, 0) < 0) {
        promote_abort(&p);
        ex = SHARDCTL_CONFLICT;
        goto unpause;
    }
    t_step = now_ms();
    if (promote_switch_finish(&p, ruser, rpass, &err) < 0) {
        /* Past the point of undoing by ourselves: the map stays paused (no
         * write reaches either server) and the message says what to do;
         * the routers' coordinator finishes it once this process is gone. */
        snprintf(line, sizeof(line), "shard %s stays paused in the map", shard);
        ex = failed(&ru, "", err, line);
        goto out;
    }
    snprintf(line, sizeof(line), "timing: promoted in %" PRIu64 " ms", now_ms() - t_step);
    progress((void *)o, line);
    t_step = now_ms();
    if (switchover_publish(&ru.sr, &p, old, cand, t_pause, &version, &pause_ms, &err) < 0) {
        ex = failed(&ru, "", err, "");
        goto out;
    }
    snprintf(line, sizeof(line), "timing: published (repointed, routers waited for) in %"
             PRIu64 " ms", now_ms() - t_step);
    progress((void *)o, line);
    print_done(o, shard, cand, old, version, pause_ms, t0);
    goto out;
unpause:
    if (switchover_write_map(&ru.sr, false, NULL, &version, &zrc, &err) == 0)
        progress((void *)o, "abort: the shard is unpaused; the old master stays master");
    free(err);
    if (!ru.stood_down)
        step(&ru, "aborted", old, cand, 0);
out:
    promote_free(&p);
    smap_unref(cur);
    zkstore_admin_free(za);
    return ex;
}
