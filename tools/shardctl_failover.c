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
#include <unistd.h>

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

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void progress(void *arg, const char *line)
{
    const struct shardctl_opts *o = arg;

    if (o->json) {
        fputs("{\"event\":\"step\",\"line\":", stdout);
        json_str(stdout, line);
        fputs("}\n", stdout);
    } else {
        printf("failover: %s\n", line);
    }
    fflush(stdout);
}

/* The map version a router's registration says it runs, or -1. */
static int64_t router_map_version(const char *payload)
{
    const char *p = strstr(payload, "map_version=");

    if (!p)
        return -1;
    return (int64_t)strtoll(p + 12, NULL, 10);
}

/* Waits until every router registered in ZooKeeper runs map <version> or
 * later, or has no registration any more (its session ended, so it serves
 * nothing new). Returns the number still behind at the deadline. */
static unsigned wait_routers(const struct shardctl_opts *o, struct zkstore_admin *za,
                             uint64_t version, unsigned wait_ms)
{
    uint64_t deadline = mono_ms() + wait_ms;
    unsigned behind = 0;

    for (;;) {
        struct zkstore_router *rs = NULL;
        unsigned n = 0;
        char *err = NULL;
        char names[512] = "";

        behind = 0;
        if (zkstore_admin_routers(za, &rs, &n, &err) != ZKSTORE_OK) {
            free(err);
            behind = 1;
            snprintf(names, sizeof(names), "(cannot list routers)");
        } else {
            for (unsigned i = 0; i < n; i++) {
                if (router_map_version(rs[i].payload) < (int64_t)version) {
                    size_t l = strlen(names);

                    behind++;
                    snprintf(names + l, sizeof(names) - l, "%s%s", l ? "," : "", rs[i].id);
                }
            }
            zkstore_routers_free(rs, n);
        }
        if (behind == 0)
            return 0;
        if (mono_ms() >= deadline) {
            char line[700];

            snprintf(line, sizeof(line), "routers not on map version %" PRIu64 " after %u ms: "
                     "%s (the old master is fenced; going on)", version, wait_ms, names);
            progress((void *)o, line);
            return behind;
        }
        usleep(20000);
    }
}

int shardctl_failover(const struct shardctl_opts *o)
{
    struct zkstore_admin *za = NULL;
    struct smap *cur = NULL, *next = NULL;
    struct smap_builder *b = NULL;
    struct promote p;
    struct promote_opts po;
    struct smap_endpoint to;
    const char *user = o->control_user ? o->control_user : getenv("SHARDWIRE_CONTROL_USER");
    const char *password = o->control_password ? o->control_password
                                               : getenv("SHARDWIRE_CONTROL_PASSWORD");
    char *err = NULL, addr[SMAP_ENDPOINT_STR_MAX], line[400];
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
    if (o->to) {
        if (smap_parse_endpoint(o->to, strlen(o->to), &to, &err) < 0) {
            shardctl_err("failover: --to: %s", err);
            free(err);
            return SHARDCTL_USAGE;
        }
        po.to = &to;
    }
    ex = shardctl_connect(o, &za);
    if (ex != SHARDCTL_OK)
        return ex;
    rc = zkstore_admin_load(za, &cur, &cas, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        zkstore_admin_free(za);
        return shardctl_exit_of(rc);
    }
    i = smap_find_shard(cur, o->argv[0]);
    if (i < 0) {
        shardctl_err("failover: no shard '%s' in the map", o->argv[0]);
        ex = SHARDCTL_INVALID;
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
        ex = SHARDCTL_INVALID;
        goto out;
    }
    b = smap_builder_from(cur);
    if (!b) {
        promote_abort(&p);
        shardctl_err("failover: out of memory; nothing changed");
        ex = SHARDCTL_FAILED;
        goto out;
    }
    smap_builder_set_version(b, smap_version(cur) + 1);
    if (smap_builder_set_master(b, o->argv[0], promote_candidate(&p), &err) < 0 ||
        (next = smap_builder_finish(b, &err), b = NULL, !next)) {
        promote_abort(&p);
        shardctl_err("failover: %s; nothing changed", err);
        free(err);
        ex = SHARDCTL_INVALID;
        goto out;
    }
    b = NULL;
    rc = zkstore_admin_write(za, cur, cas, next, &err);
    if (rc != ZKSTORE_OK) {
        promote_abort(&p);
        shardctl_err("failover: map write: %s; nothing changed",
                     err ? err : zkstore_rc_name(rc));
        free(err);
        ex = shardctl_exit_of(rc);
        goto out;
    }
    smap_format_endpoint(promote_candidate(&p), addr, sizeof(addr));
    snprintf(line, sizeof(line), "map: version %" PRIu64 " names %s master of %s",
             smap_version(next), addr, o->argv[0]);
    progress((void *)o, line);
    wait_routers(o, za, smap_version(next), o->router_wait_ms ? o->router_wait_ms : 30000);
    if (promote_finish(&p, &err) < 0) {
        shardctl_err("failover: %s", err ? err : "failed");
        free(err);
        ex = SHARDCTL_FAILED;
        goto out;
    }
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
