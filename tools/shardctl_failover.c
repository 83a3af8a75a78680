/*
 * tools/shardctl_failover.c - `shardctl failover SHARD [--to HOST:PORT]
 * [--force]`: replace a dead master by its most up-to-date standby.
 *
 * The steps are router/promote.c's; between its two phases this publishes
 * the new master with one compare-and-set of the map and waits until every
 * registered router runs that map (or its registration is gone) before the
 * new master becomes writable. The control-plane account comes from
 * $SHARDWIRE_CONTROL_USER and $SHARDWIRE_CONTROL_PASSWORD (or
 * --control-user / --control-password-file), never from the command line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/journal.h"
#include "router/promote.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"
#include "tools/shardctl.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void progress(void *arg, const char *line)
{
    shardctl_step(arg, "failover", line);
}

int shardctl_failover(const struct shardctl_opts *o)
{
    struct zkstore_admin *za = NULL;
    struct smap *cur = NULL, *next = NULL;
    struct smap_builder *b = NULL;
    struct promote p;
    struct promote_opts po;
    struct journal j;
    struct smap_endpoint to;
    const char *user = o->control_user ? o->control_user : getenv("SHARDWIRE_CONTROL_USER");
    const char *password = o->control_password ? o->control_password
                                               : getenv("SHARDWIRE_CONTROL_PASSWORD");
    char *err = NULL, addr[SMAP_ENDPOINT_STR_MAX], old[SMAP_ENDPOINT_STR_MAX], line[400];
    int32_t cas = 0;
    int i, ex;
    enum zkstore_rc rc;
    uint64_t t0 = mono_ms();

    memset(&p, 0, sizeof(p));
    if (o->argc != 1) {
        shardctl_err("usage: failover SHARD [--to HOST:PORT] [--force]");
        return SHARDCTL_USAGE;
    }
    if (!user || !*user) {
        shardctl_err("failover: no control-plane account: set SHARDWIRE_CONTROL_USER and "
                     "SHARDWIRE_CONTROL_PASSWORD (or --control-user, --control-password-file)");
        return SHARDCTL_USAGE;
    }
    memset(&po, 0, sizeof(po));
    /* Journaled with a new term like the coordinator's failovers: a
     * coordinator acting at the same moment loses its compare-and-set. */
    ex = shardctl_open_shard(o, "failover", &to, &za, &cur, &cas, &j);
    if (ex != SHARDCTL_OK)
        return ex;
    if (o->to)
        po.to = &to;
    i = smap_find_shard(cur, o->argv[0]);
    smap_format_endpoint(&smap_shard(cur, (unsigned)i)->master, old, sizeof(old));
    j.term++;
    snprintf(j.kind, sizeof(j.kind), "failover");
    if (shardctl_journal(za, o->argv[0], &j, "started", "old=%s", old) < 0) {
        ex = SHARDCTL_CONFLICT;
        goto out;
    }
    po.user = user;
    po.password = password ? password : "";
    po.timeout_ms = o->timeout_ms;
    po.apply_timeout_ms = o->apply_timeout_ms ? o->apply_timeout_ms : 60000;
    po.force = o->force;
    po.progress = progress;
    po.progress_arg = (void *)o;
    if (promote_prepare(&p, smap_shard(cur, (unsigned)i), &po, &err) < 0) {
        shardctl_err("failover: %s; nothing changed", err ? err : "failed");
        free(err);
        shardctl_journal(za, o->argv[0], &j, "aborted", "old=%s", old);
        ex = SHARDCTL_INVALID;
        goto out;
    }
    b = smap_builder_from(cur);
    if (!b) {
        promote_abort(&p);
        shardctl_journal(za, o->argv[0], &j, "aborted", "old=%s", old);
        shardctl_err("failover: out of memory; nothing changed");
        ex = SHARDCTL_FAILED;
        goto out;
    }
    smap_builder_set_version(b, smap_version(cur) + 1);
    /* Published paused: routers hold the shard's statements until the
     * candidate is writable (writes would get "read only" meanwhile). */
    if (smap_builder_set_master(b, o->argv[0], promote_candidate(&p), &err) < 0 ||
        smap_builder_set_paused(b, o->argv[0], true, &err) < 0 ||
        (next = smap_builder_finish(b, &err), b = NULL, !next)) {
        promote_abort(&p);
        shardctl_journal(za, o->argv[0], &j, "aborted", "old=%s", old);
        shardctl_err("failover: %s; nothing changed", err);
        free(err);
        ex = SHARDCTL_INVALID;
        goto out;
    }
    b = NULL;
    rc = zkstore_admin_write(za, cur, cas, next, &err);
    if (rc != ZKSTORE_OK) {
        promote_abort(&p);
        shardctl_journal(za, o->argv[0], &j, "aborted", "old=%s", old);
        shardctl_err("failover: map write: %s; nothing changed",
                     err ? err : zkstore_rc_name(rc));
        free(err);
        ex = shardctl_exit_of(rc);
        goto out;
    }
    smap_format_endpoint(promote_candidate(&p), addr, sizeof(addr));
    if (shardctl_journal(za, o->argv[0], &j, "published", "old=%s new=%s version=%" PRIu64, old,
                         addr, smap_version(next)) < 0) {
        ex = SHARDCTL_CONFLICT;
        goto out;
    }
    snprintf(line, sizeof(line), "map: version %" PRIu64 " names %s master of %s",
             smap_version(next), addr, o->argv[0]);
    progress((void *)o, line);
    {
        unsigned wait_ms = o->router_wait_ms ? o->router_wait_ms : 30000;
        char behind[400];

        if (zkstore_admin_wait_routers(za, smap_version(next), wait_ms, behind,
                                       sizeof(behind)) > 0) {
            snprintf(line, sizeof(line), "routers not on map version %" PRIu64 " after %u ms: "
                     "%.200s (the old master is fenced; going on)", smap_version(next), wait_ms,
                     behind);
            progress((void *)o, line);
        }
    }
    if (promote_finish(&p, &err) < 0) {
        shardctl_err("failover: %s", err ? err : "failed");
        free(err);
        ex = SHARDCTL_FAILED;
        goto out;
    }
    rc = zkstore_admin_set_paused(za, o->argv[0], false, NULL, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("failover: %s is writable, but the map still holds shard %s's statements "
                     "(paused): %s; the journal stays at 'published', and a router with "
                     "auto_failover on finishes it", addr, o->argv[0],
                     err ? err : zkstore_rc_name(rc));
        free(err);
        ex = shardctl_exit_of(rc);
        goto out;
    }
    shardctl_journal(za, o->argv[0], &j, "done", "old=%s new=%s", old, addr);
    if (o->json)
        printf("{\"event\":\"done\",\"shard\":\"%s\",\"master\":\"%s\",\"version\":%" PRIu64
               ",\"ms\":%" PRIu64 "}\n", o->argv[0], addr, smap_version(next), mono_ms() - t0);
    else
        printf("%s: master is now %s; map version %" PRIu64 " (%" PRIu64 " ms)\n", o->argv[0],
               addr, smap_version(next), mono_ms() - t0);
    ex = SHARDCTL_OK;
out:
    promote_free(&p);
    smap_builder_free(b);
    smap_unref(cur);
    smap_unref(next);
    zkstore_admin_free(za);
    return ex;
}
