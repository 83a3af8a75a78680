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

/* One compare-and-set write of the map: shard <shard> gets <paused>, and
 * with <master> a new master, the old one becoming its standby. Returns an
 * exit code; on SHARDCTL_OK *<version> is the new map version. */
static int write_map(struct zkstore_admin *za, const char *shard, bool paused,
                     const struct smap_endpoint *master, uint64_t *version)
{
    struct smap *cur = NULL, *next = NULL;
    struct smap_builder *b = NULL;
    char *err = NULL;
    int32_t cas;
    int i, ex = SHARDCTL_OK;
    enum zkstore_rc rc = zkstore_admin_load(za, &cur, &cas, &err);

    if (rc != ZKSTORE_OK) {
        shardctl_err("switchover: map read: %s", err ? err : zkstore_rc_name(rc));
        free(err);
        return shardctl_exit_of(rc);
    }
    i = smap_find_shard(cur, shard);
    b = i < 0 ? NULL : smap_builder_from(cur);
    if (b) {
        struct smap_endpoint old = smap_shard(cur, (unsigned)i)->master;

        smap_builder_set_version(b, smap_version(cur) + 1);
        if (smap_builder_set_paused(b, shard, paused, &err) < 0 ||
            (master && (smap_builder_set_master(b, shard, master, &err) < 0 ||
                        smap_builder_add_standby(b, shard, &old, &err) < 0)))
            ex = SHARDCTL_INVALID;
        next = ex == SHARDCTL_OK ? smap_builder_finish(b, &err) : NULL;
        if (ex != SHARDCTL_OK)
            smap_builder_free(b);
        b = NULL;
    }
    if (!next) {
        shardctl_err("switchover: map change: %s", err ? err : i < 0 ? "the shard is gone"
                                                                     : "out of memory");
        ex = SHARDCTL_INVALID;
    } else if ((rc = zkstore_admin_write(za, cur, cas, next, &err)) != ZKSTORE_OK) {
        shardctl_err("switchover: map write: %s", err ? err : zkstore_rc_name(rc));
        ex = shardctl_exit_of(rc);
    } else {
        *version = smap_version(next);
    }
    free(err);
    smap_unref(cur);
    smap_unref(next);
    return ex;
}

/* Waits until every router runs map <version>; reports the late ones. */
static void wait_routers(const struct shardctl_opts *o, struct zkstore_admin *za,
                         uint64_t version)
{
    unsigned wait_ms = o->router_wait_ms ? o->router_wait_ms : SWITCHOVER_ROUTER_WAIT_MS;
    char behind[400], line[600];

    if (zkstore_admin_wait_routers(za, version, wait_ms, behind, sizeof(behind)) > 0) {
        snprintf(line, sizeof(line), "routers not on map version %" PRIu64 " after %u ms: "
                 "%.200s (going on: the old master is fenced)", version, wait_ms, behind);
        progress((void *)o, line);
    }
}

/* Tests only: SHARDWIRE_TEST_SWITCHOVER_PAUSE_AFTER=STATE makes shardctl
 * stop for 60 s right after journaling STATE, so a test can kill -9 it
 * between two steps. */
static void test_pause(const char *state)
{
    const char *after = getenv("SHARDWIRE_TEST_SWITCHOVER_PAUSE_AFTER");

    if (after && strcmp(after, state) == 0) {
        fprintf(stderr, "switchover: test pause after state=%s\n", state);
        sleep(60);
    }
}

/* The last steps, also of a switchover resumed after its runner died: one
 * map write names the target master, the old master its standby, and
 * unpauses the shard; the other standbys follow; the routers are waited
 * for; the journal says done. <t_pause> is when the pause began (monotonic
 * ms; 0 when unknown). Returns an exit code. */
static int publish(const struct shardctl_opts *o, struct zkstore_admin *za, const char *shard,
                   struct promote *p, struct journal *j, const char *old, const char *cand,
                   uint64_t t_pause, uint64_t t0)
{
    char line[1200];
    uint64_t version = 0, t_resume, pause_ms;
    int ex = write_map(za, shard, false, promote_candidate(p), &version);

    if (ex != SHARDCTL_OK) {
        shardctl_err("switchover: %s is writable but the map still names %s (paused): run "
                     "`shardctl set-master %s %s`", cand, old, shard, cand);
        return ex;
    }
    t_resume = now_ms();
    pause_ms = t_pause ? t_resume - t_pause : 0;
    promote_switch_repoint(p);
    shardctl_journal(za, shard, j, "published", "old=%s new=%s version=%" PRIu64, old, cand,
                     version);
    test_pause("published");
    snprintf(line, sizeof(line), "map: version %" PRIu64 " names %s master of %s, %s its "
             "standby; statements flow again", version, cand, shard, old);
    progress((void *)o, line);
    wait_routers(o, za, version);
    shardctl_journal(za, shard, j, "done", "old=%s new=%s pause_ms=%" PRIu64, old, cand,
                     pause_ms);
    if (o->json)
        printf("{\"event\":\"done\",\"shard\":\"%s\",\"master\":\"%s\",\"standby\":\"%s\","
               "\"version\":%" PRIu64 ",\"pause_ms\":%" PRIu64 ",\"ms\":%" PRIu64 "}\n", shard,
               cand, old, version, pause_ms, now_ms() - t0);
    else
        printf("%s: master is now %s, %s its standby; map version %" PRIu64 "; writes paused "
               "%" PRIu64 " ms (%" PRIu64 " ms in all)\n", shard, cand, old, version,
               pause_ms, now_ms() - t0);
    return SHARDCTL_OK;
}

/*
 * The switchover journaled in <j> stopped half-way and its runner is gone
 * (killed, its machine lost): finishes it or rolls it back, as far as the
 * journal shows it got. Left at started or paused, the target was not
 * touched: the old master is made writable again and the shard unpaused
 * (then *<finished> stays false: the caller goes on with the switchover it
 * was asked for). Left at caught_up, the target may already be a master:
 * the promotion is finished (every step is safe to repeat) and published.
 * Left at published, the map names the target already: the other
 * standbys are repointed and the journal closed. *<cur> is reloaded.
 * Returns an exit code.
 */
static int recover(const struct shardctl_opts *o, struct zkstore_admin *za, struct smap **cur,
                   const char *shard, struct journal *j, const struct promote_opts *po,
                   const char *ruser, const char *rpass, uint64_t t0, bool *finished)
{
    const struct smap_shard *s = smap_shard(*cur, (unsigned)smap_find_shard(*cur, shard));
    struct smap_endpoint old_ep;
    struct promote p;
    char *err = NULL, line[1200];
    bool back = strcmp(j->state, "started") == 0 || strcmp(j->state, "paused") == 0;
    enum zkstore_rc rc;
    int ex = SHARDCTL_OK;

    memset(&p, 0, sizeof(p));
    *finished = false;
    snprintf(line, sizeof(line), "resume: the switchover of term %" PRIu64 " (%s -> %s) by %s "
             "stopped at state %s and its runner is gone: %s", j->term, j->old_text,
             j->new_text, j->coordinator, j->state, back ? "rolling back" : "rolling forward");
    progress((void *)o, line);
    if (smap_parse_endpoint(j->old_text, strlen(j->old_text), &old_ep, &err) < 0 ||
        !j->new_master.port) {
        shardctl_err("switchover: the journal names no old or new master (%s); finish by hand",
                     err ? err : "new= missing");
        free(err);
        return SHARDCTL_FAILED;
    }
    if (back) {
        if (!smap_endpoint_eq(&s->master, &old_ep)) {
            shardctl_err("switchover: the map names %s, not %s, as master: cannot roll back",
                         j->new_text, j->old_text);
            return SHARDCTL_FAILED;
        }
        if (promote_switch_rollback(&p, s, po, &err) < 0) {
            shardctl_err("switchover: roll back: %s; shard %s stays paused", err, shard);
            free(err);
            ex = SHARDCTL_FAILED;
            goto out;
        }
        rc = zkstore_admin_set_paused(za, shard, false, NULL, &err);
        if (rc != ZKSTORE_OK) {
            shardctl_err("switchover: unpause: %s", err ? err : zkstore_rc_name(rc));
            free(err);
            ex = shardctl_exit_of(rc);
            goto out;
        }
        if (shardctl_journal(za, shard, j, "aborted", "old=%s new=%s", j->old_text,
                             j->new_text) < 0) {
            ex = SHARDCTL_CONFLICT;
            goto out;
        }
        progress((void *)o, "rollback: the shard is unpaused; the old master stays master");
    } else {
        char old[SMAP_ENDPOINT_STR_MAX], cand[SMAP_ENDPOINT_STR_MAX];

        snprintf(old, sizeof(old), "%s", j->old_text);
        snprintf(cand, sizeof(cand), "%s", j->new_text);
        if (promote_switch_resume(&p, s, &old_ep, &j->new_master, po, &err) < 0) {
            shardctl_err("switchover: roll forward: %s; shard %s stays paused", err, shard);
            free(err);
            ex = SHARDCTL_FAILED;
            goto out;
        }
        if (smap_endpoint_eq(&s->master, &old_ep)) {
            if (promote_switch_finish(&p, ruser, rpass, &err) < 0) {
                shardctl_err("switchover: roll forward: %s; shard %s stays paused", err, shard);
                free(err);
                ex = SHARDCTL_FAILED;
                goto out;
            }
            ex = publish(o, za, shard, &p, j, old, cand, 0, t0);
        } else {
            /* published: the map names the target already */
            promote_switch_repoint(&p);
            shardctl_journal(za, shard, j, "done", "old=%s new=%s", old, cand);
            printf("%s: master is %s, %s its standby (the interrupted switchover is done)\n",
                   shard, cand, old);
        }
        *finished = true;
    }
out:
    promote_free(&p);
    if (ex == SHARDCTL_OK && !*finished) {
        smap_unref(*cur);
        *cur = NULL;
        rc = zkstore_admin_load(za, cur, NULL, &err);
        if (rc != ZKSTORE_OK) {
            shardctl_err("switchover: map read: %s", err ? err : zkstore_rc_name(rc));
            free(err);
            ex = shardctl_exit_of(rc);
        }
    }
    return ex;
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
    char *err = NULL, old[SMAP_ENDPOINT_STR_MAX], cand[SMAP_ENDPOINT_STR_MAX], line[1200];
    uint64_t version = 0, t0 = now_ms(), t_pause = 0;
    const char *shard;
    int i, ex;

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
    if (journal_in_progress(&j) && strcmp(j.kind, "switchover") == 0 &&
        shardctl_runner_gone(&j)) {
        bool finished;

        ex = recover(o, za, &cur, shard, &j, &po, ruser, rpass, t0, &finished);
        if (ex != SHARDCTL_OK || finished)
            goto out;
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
    if (shardctl_journal(za, shard, &j, "started", "old=%s new=%s", old, cand) < 0) {
        ex = SHARDCTL_CONFLICT;
        goto out;
    }
    /* Pause: from here the routers hold the shard's statements. */
    ex = write_map(za, shard, true, NULL, &version);
    if (ex != SHARDCTL_OK) {
        shardctl_journal(za, shard, &j, "aborted", "old=%s new=%s", old, cand);
        goto out;
    }
    t_pause = now_ms();
    snprintf(line, sizeof(line), "pause: map version %" PRIu64 " holds the statements of %s",
             version, shard);
    progress((void *)o, line);
    if (shardctl_journal(za, shard, &j, "paused", "old=%s new=%s version=%" PRIu64, old, cand,
                         version) < 0) {
        ex = SHARDCTL_CONFLICT;
        goto unpause;
    }
    test_pause("paused");
    wait_routers(o, za, version);
    if (promote_switch_fence(&p, &err) < 0) {
        shardctl_err("switchover: %s; nothing changed", err ? err : "failed");
        free(err);
        ex = SHARDCTL_INVALID;
        goto unpause;
    }
    if (shardctl_journal(za, shard, &j, "caught_up", "old=%s new=%s", old, cand) < 0) {
        promote_abort(&p);
        ex = SHARDCTL_CONFLICT;
        goto unpause;
    }
    test_pause("caught_up");
    if (promote_switch_finish(&p, ruser, rpass, &err) < 0) {
        /* Past the point of undoing by ourselves: the map stays paused (no
         * write reaches either server) and the message says what to do. */
        shardctl_err("switchover: %s; shard %s stays paused in the map", err ? err : "failed",
                     shard);
        free(err);
        ex = SHARDCTL_FAILED;
        goto out;
    }
    ex = publish(o, za, shard, &p, &j, old, cand, t_pause, t0);
    goto out;
unpause:
    if (write_map(za, shard, false, NULL, &version) == SHARDCTL_OK)
        progress((void *)o, "abort: the shard is unpaused; the old master stays master");
    shardctl_journal(za, shard, &j, "aborted", "old=%s new=%s", old, cand);
out:
    promote_free(&p);
    smap_unref(cur);
    zkstore_admin_free(za);
    return ex;
}
