/*
 * router/switchover.c - a planned switchover's map and journal steps, and
 * the recovery of one whose runner died (see switchover.h).
 */
#include "router/switchover.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/journal.h"
#include "router/promote.h"
#include "router/util.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"

static void say(const struct switchover_run *sr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(const struct switchover_run *sr, const char *fmt, ...)
{
    char line[1200];
    va_list ap;

    if (!sr->po->progress)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    sr->po->progress(sr->po->progress_arg, line);
}

static bool may_act(const struct switchover_run *sr)
{
    return !sr->po->may_act || sr->po->may_act(sr->po->may_act_arg);
}

int switchover_journal(const struct switchover_run *sr, char **errp, const char *state,
                       const char *fmt, ...)
{
    const char *after = getenv("SHARDWIRE_TEST_SWITCHOVER_PAUSE_AFTER");
    const char *ms = getenv("SHARDWIRE_TEST_SWITCHOVER_PAUSE_MS");
    unsigned long n = ms ? strtoul(ms, NULL, 10) : 60000;
    struct timespec ts = { (time_t)(n / 1000), (long)(n % 1000) * 1000000L };
    char extra[700];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(extra, sizeof(extra), fmt, ap);
    va_end(ap);
    if (journal_write(sr->za, sr->shard, sr->j, sr->who, state, extra, errp) < 0)
        return -1;
    if (after && strcmp(after, state) == 0) {
        fprintf(stderr, "switchover: test pause after state=%s for %lu ms\n", state, n);
        nanosleep(&ts, NULL);
    }
    return 0;
}

int switchover_write_map(const struct switchover_run *sr, bool paused,
                         const struct smap_endpoint *master, uint64_t *version, int *zrc,
                         char **errp)
{
    struct smap *cur = NULL, *next = NULL;
    struct smap_builder *b;
    int32_t cas;
    int i;
    enum zkstore_rc rc;

    *errp = NULL;
    if (!may_act(sr)) {
        *zrc = ZKSTORE_CONFLICT;
        *errp = util_fmt("map not written: stood down (another runner owns shard %s now)",
                         sr->shard);
        return -1;
    }
    rc = zkstore_admin_load(sr->za, &cur, &cas, errp);
    if (rc != ZKSTORE_OK) {
        *zrc = rc;
        return -1;
    }
    i = smap_find_shard(cur, sr->shard);
    b = i < 0 ? NULL : smap_builder_from(cur);
    rc = ZKSTORE_INVALID;
    if (b) {
        struct smap_endpoint old = smap_shard(cur, (unsigned)i)->master;

        smap_builder_set_version(b, smap_version(cur) + 1);
        if (smap_builder_set_paused(b, sr->shard, paused, errp) < 0 ||
            (master && (smap_builder_set_master(b, sr->shard, master, errp) < 0 ||
                        smap_builder_add_standby(b, sr->shard, &old, errp) < 0)))
            smap_builder_free(b);
        else
            next = smap_builder_finish(b, errp);
    }
    if (!next && !*errp)
        *errp = i < 0 ? util_fmt("shard %s is gone", sr->shard) : util_fmt("out of memory");
    if (next)
        rc = zkstore_admin_write(sr->za, cur, cas, next, errp);
    if (rc == ZKSTORE_OK)
        *version = smap_version(next);
    *zrc = rc;
    smap_unref(cur);
    smap_unref(next);
    return rc == ZKSTORE_OK ? 0 : -1;
}

int switchover_publish(const struct switchover_run *sr, struct promote *p, const char *old,
                       const char *cand, uint64_t t_pause, uint64_t *version,
                       uint64_t *pause_ms, char **errp)
{
    char behind[400], *err = NULL;
    int zrc;

    if (switchover_write_map(sr, false, promote_candidate(p), version, &zrc, &err) < 0) {
        *errp = util_fmt("map write: %s; %s is writable but the map still names %s (paused): "
                         "run `shardctl set-master %s %s`", err ? err : "failed", cand, old,
                         sr->shard, cand);
        free(err);
        return -1;
    }
    *pause_ms = t_pause ? now_ms() - t_pause : 0;
    promote_switch_repoint(p);
    /* Past the map write the switchover is done whatever the journal says:
     * a runner that cannot write it any more only reports that. */
    if (switchover_journal(sr, &err, "published", "old=%s new=%s version=%" PRIu64, old, cand,
                           *version) < 0) {
        say(sr, "journal: %s", err ? err : "failed");
        free(err);
        return 0;
    }
    say(sr, "map: version %" PRIu64 " names %s master of %s, %s its standby; statements flow "
        "again", *version, cand, sr->shard, old);
    if (zkstore_admin_wait_routers(sr->za, *version, sr->router_wait_ms, behind,
                                   sizeof(behind)) > 0)
        say(sr, "routers not on map version %" PRIu64 " after %u ms: %.200s (going on: the old "
            "master is fenced)", *version, sr->router_wait_ms, behind);
    if (switchover_journal(sr, &err, "done", "old=%s new=%s pause_ms=%" PRIu64, old, cand,
                           *pause_ms) < 0) {
        say(sr, "journal: %s", err ? err : "failed");
        free(err);
    }
    return 0;
}

/* Left at started or paused: the old master is master again. */
static int roll_back(const struct switchover_run *sr, const struct smap_shard *s,
                     const struct smap_endpoint *old_ep, char **errp)
{
    struct journal *j = sr->j;
    struct promote p;
    uint64_t version;
    char *err = NULL;
    int zrc, rc = -1;

    memset(&p, 0, sizeof(p));
    if (!smap_endpoint_eq(&s->master, old_ep)) {
        *errp = util_fmt("the map names another master than %s: cannot roll back",
                         j->old_text);
        return -1;
    }
    if (promote_switch_rollback(&p, s, sr->po, &err) < 0) {
        *errp = util_fmt("roll back: %s; shard %s stays paused", err, sr->shard);
    } else if (switchover_write_map(sr, false, NULL, &version, &zrc, &err) < 0) {
        *errp = util_fmt("unpause: %s", err ? err : "failed");
    } else if (switchover_journal(sr, &err, "aborted", "old=%s new=%s", j->old_text,
                                  j->new_text) < 0) {
        *errp = util_fmt("%s", err ? err : "journal");
    } else {
        say(sr, "rollback: the shard is unpaused; the old master stays master");
        rc = 0;
    }
    free(err);
    promote_free(&p);
    return rc;
}

/* Left at caught_up or published: the target becomes (or is) master. */
static int roll_forward(const struct switchover_run *sr, const struct smap_shard *s,
                        const struct smap_endpoint *old_ep, char **errp)
{
    struct journal *j = sr->j;
    struct promote p;
    char *err = NULL, old[SMAP_ENDPOINT_STR_MAX], cand[SMAP_ENDPOINT_STR_MAX];
    uint64_t version, pause_ms;
    int rc = -1;

    snprintf(old, sizeof(old), "%s", j->old_text);
    snprintf(cand, sizeof(cand), "%s", j->new_text);
    if (promote_switch_resume(&p, s, old_ep, &j->new_master, sr->po, &err) < 0) {
        *errp = util_fmt("roll forward: %s; shard %s stays paused", err, sr->shard);
    } else if (!smap_endpoint_eq(&s->master, old_ep)) {
        /* published: the map names the target already */
        promote_switch_repoint(&p);
        if (switchover_journal(sr, &err, "done", "old=%s new=%s", old, cand) < 0)
            *errp = util_fmt("%s", err ? err : "journal");
        else
            rc = 0;
    } else if (!sr->repl_user) {
        *errp = util_fmt("roll forward: no replication account to make the old master %s a "
                         "standby of %s (the routers' repl_user); shard %s stays paused", old,
                         cand, sr->shard);
    } else if (promote_switch_finish(&p, sr->repl_user, sr->repl_password, &err) < 0) {
        *errp = util_fmt("roll forward: %s; shard %s stays paused", err, sr->shard);
    } else {
        rc = switchover_publish(sr, &p, old, cand, 0, &version, &pause_ms, errp);
    }
    free(err);
    promote_free(&p);
    return rc;
}

int switchover_recover(const struct switchover_run *sr, const struct smap_shard *s,
                       enum switchover_outcome *out, char **errp)
{
    struct journal *j = sr->j;
    struct smap_endpoint old_ep;
    char *err = NULL, extra[600], state[sizeof(j->state)];
    bool back = strcmp(j->state, "started") == 0 || strcmp(j->state, "paused") == 0;

    *errp = NULL;
    say(sr, "resume: the switchover of term %" PRIu64 " (%s -> %s) by %s stopped at state %s "
        "and its runner is gone: %s", j->term, j->old_text, j->new_text, j->coordinator,
        j->state, back ? "rolling back" : "rolling forward");
    if (smap_parse_endpoint(j->old_text, strlen(j->old_text), &old_ep, &err) < 0 ||
        !j->new_master.port) {
        *errp = util_fmt("the journal names no old or new master (%s); finish by hand",
                         err ? err : "new= missing");
        free(err);
        return -1;
    }
    /* Claimed first, with a newer term, by a compare-and-set of the
     * journal: of two that find the runner gone (a shardctl re-run, the
     * coordinator), one goes on and the other's may_act says no; so does
     * the runner, should it only have been stopped. */
    snprintf(extra, sizeof(extra), "old=%s new=%s resumed_by=%s", j->old_text, j->new_text,
             sr->who);
    snprintf(state, sizeof(state), "%s", j->state);
    j->term++;
    if (journal_write(sr->za, sr->shard, j, sr->who, state, extra, &err) < 0) {
        *errp = util_fmt("%s", err ? err : "journal");
        free(err);
        return -1;
    }
    *out = back ? SWITCHOVER_ROLLED_BACK : SWITCHOVER_FINISHED;
    return back ? roll_back(sr, s, &old_ep, errp) : roll_forward(sr, s, &old_ep, errp);
}
