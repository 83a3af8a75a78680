/*
 * tools/shardctl_set_master.c - `shardctl set-master SHARD HOST:PORT`: a
 * manual master change, as one compare-and-set of the map.
 *
 * This only changes the map. Making HOST:PORT writable and fencing the old
 * master are the operator's job here (docs/zookeeper.md, "Changing a master").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/smap.h"
#include "tools/shardctl.h"

struct set_master {
    const char          *shard;
    struct smap_endpoint ep;
    struct smap_endpoint old;
};

static int change(struct smap_builder *b, const struct smap *cur, void *ctx, bool *unchanged,
                  char **errp)
{
    struct set_master *sm = ctx;
    int i = smap_find_shard(cur, sm->shard);
    if (i >= 0) {
        sm->old = smap_shard(cur, (unsigned)i)->master;
        if (smap_endpoint_eq(&sm->old, &sm->ep)) {
            *unchanged = true;
            return 0;
        }
    }
    return smap_builder_set_master(b, sm->shard, &sm->ep, errp);
}

int shardctl_set_master(const struct shardctl_opts *o)
{
    struct set_master sm;
    struct smap *before = NULL, *after = NULL;
    char *err = NULL;
    memset(&sm, 0, sizeof(sm));
    if (o->argc != 2) {
        shardctl_err("usage: set-master SHARD HOST:PORT [--expect-version N]");
        return SHARDCTL_USAGE;
    }
    sm.shard = o->argv[0];
    if (smap_parse_endpoint(o->argv[1], strlen(o->argv[1]), &sm.ep, &err) < 0) {
        shardctl_err("set-master: %s", err);
        free(err);
        return SHARDCTL_USAGE;
    }
    int ex = shardctl_change(o, change, &sm, &before, &after);
    if (ex != SHARDCTL_OK)
        return ex;
    char old[SMAP_ENDPOINT_STR_MAX], new[SMAP_ENDPOINT_STR_MAX];
    smap_format_endpoint(&sm.old, old, sizeof(old));
    smap_format_endpoint(&sm.ep, new, sizeof(new));
    bool same = smap_version(before) == smap_version(after);
    if (o->json) {
        printf("{\"shard\":\"%s\",\"old_master\":\"%s\",\"master\":\"%s\",\"version\":%" PRIu64
               ",\"changed\":%s}\n", sm.shard, old, new, smap_version(after),
               same ? "false" : "true");
    } else if (same) {
        printf("%s: master is already %s; map unchanged at version %" PRIu64 "\n", sm.shard,
               new, smap_version(after));
    } else {
        printf("%s: master %s -> %s; map version %" PRIu64 "\n", sm.shard, old, new,
               smap_version(after));
    }
    smap_unref(before);
    smap_unref(after);
    return SHARDCTL_OK;
}
