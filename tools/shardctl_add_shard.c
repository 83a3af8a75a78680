/*
 * tools/shardctl_add_shard.c - `shardctl add-shard NAME HOST:PORT`: a new
 * shard with no vbuckets (moving vbuckets onto it is a separate step).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/smap.h"
#include "tools/shardctl.h"

static int add(struct smap_builder *b, const struct smap *cur, void *ctx, bool *unchanged,
               char **errp)
{
    (void)cur;
    (void)unchanged;
    return smap_builder_add_shard(b, ctx, errp);
}

int shardctl_add_shard(const struct shardctl_opts *o)
{
    struct smap_shard s;
    struct smap *after = NULL;
    char *err = NULL;
    memset(&s, 0, sizeof(s));
    if (o->argc != 2) {
        shardctl_err("usage: add-shard NAME HOST:PORT [--standby HOST:PORT ...]");
        return SHARDCTL_USAGE;
    }
    if (smap_check_name(o->argv[0], &err) < 0 ||
        smap_parse_endpoint(o->argv[1], strlen(o->argv[1]), &s.master, &err) < 0) {
        shardctl_err("add-shard: %s", err);
        free(err);
        return SHARDCTL_USAGE;
    }
    strcpy(s.name, o->argv[0]);
    if (o->n_standby_args > SMAP_MAX_STANDBYS) {
        shardctl_err("add-shard: more than %d standbys", SMAP_MAX_STANDBYS);
        return SHARDCTL_USAGE;
    }
    for (unsigned i = 0; i < o->n_standby_args; i++) {
        const char *a = o->standby_args[i];
        if (smap_parse_endpoint(a, strlen(a), &s.standbys[i], &err) < 0) {
            shardctl_err("add-shard: --standby: %s", err);
            free(err);
            return SHARDCTL_USAGE;
        }
        s.n_standbys++;
    }
    int ex = shardctl_change(o, add, &s, NULL, &after);
    if (ex != SHARDCTL_OK)
        return ex;
    if (!o->json) {
        printf("added shard %s (master %s, no vbuckets); map version %" PRIu64 "\n", s.name,
               o->argv[1], smap_version(after));
    } else {
        printf("{\"shard\":\"%s\",\"version\":%" PRIu64 "}\n", s.name, smap_version(after));
    }
    smap_unref(after);
    return SHARDCTL_OK;
}
