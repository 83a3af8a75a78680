/*
 * tools/shardctl_rejoin.c - `shardctl rejoin SHARD HOST:PORT`: a server
 * (typically the old master after a failover) becomes a standby of SHARD's
 * master, if its GTID history allows; then the map lists it as a standby.
 *
 * The steps are router/promote.c's promote_rejoin(). The replication account
 * the standby uses comes from $SHARDWIRE_REPL_USER / $SHARDWIRE_REPL_PASSWORD
 * (or --repl-user, --repl-password-file); the control account as for
 * failover.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/promote.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"
#include "tools/shardctl.h"

static void progress(void *arg, const char *line)
{
    shardctl_step(arg, "rejoin", line);
}

struct add_standby {
    const char                 *shard;
    const struct smap_endpoint *ep;
};

static int change(struct smap_builder *b, const struct smap *cur, void *ctx, bool *unchanged,
                  char **errp)
{
    struct add_standby *as = ctx;

    (void)cur;
    (void)unchanged;
    return smap_builder_add_standby(b, as->shard, as->ep, errp);
}

int shardctl_rejoin(const struct shardctl_opts *o)
{
    const char *user = o->control_user ? o->control_user : getenv("SHARDWIRE_CONTROL_USER");
    const char *password = o->control_password ? o->control_password
                                               : getenv("SHARDWIRE_CONTROL_PASSWORD");
    const char *ruser = o->repl_user ? o->repl_user : getenv("SHARDWIRE_REPL_USER");
    const char *rpass = o->repl_password ? o->repl_password : getenv("SHARDWIRE_REPL_PASSWORD");
    struct smap *cur = NULL, *before = NULL, *after = NULL;
    struct smap_endpoint ep;
    struct promote p;
    struct promote_opts po;
    struct add_standby as;
    char *err = NULL, addr[SMAP_ENDPOINT_STR_MAX];
    int i, ex;

    memset(&p, 0, sizeof(p));
    if (o->argc != 2) {
        shardctl_err("usage: rejoin SHARD HOST:PORT");
        return SHARDCTL_USAGE;
    }
    if (!user || !*user || !ruser || !*ruser) {
        shardctl_err("rejoin: set SHARDWIRE_CONTROL_USER/_PASSWORD (control-plane account) "
                     "and SHARDWIRE_REPL_USER/_PASSWORD (the account standbys replicate with)");
        return SHARDCTL_USAGE;
    }
    if (smap_parse_endpoint(o->argv[1], strlen(o->argv[1]), &ep, &err) < 0) {
        shardctl_err("rejoin: %s", err);
        free(err);
        return SHARDCTL_USAGE;
    }
    ex = shardctl_load_map(o, &cur);
    if (ex != SHARDCTL_OK)
        return ex;
    i = smap_find_shard(cur, o->argv[0]);
    if (i < 0) {
        shardctl_err("rejoin: no shard '%s' in the map", o->argv[0]);
        ex = SHARDCTL_INVALID;
        goto out;
    }
    for (unsigned k = 0; k < smap_n_shards(cur); k++) {
        const struct smap_shard *s = smap_shard(cur, k);
        bool used = smap_endpoint_eq(&s->master, &ep);

        for (unsigned j = 0; j < s->n_standbys; j++)
            used = used || smap_endpoint_eq(&s->standbys[j], &ep);
        if (used) {
            shardctl_err("rejoin: %s is already in the map (shard %s); nothing changed",
                         o->argv[1], s->name);
            ex = SHARDCTL_INVALID;
            goto out;
        }
    }
    memset(&po, 0, sizeof(po));
    po.user = user;
    po.password = password ? password : "";
    po.timeout_ms = o->timeout_ms;
    po.apply_timeout_ms = o->apply_timeout_ms ? o->apply_timeout_ms : 60000;
    po.progress = progress;
    po.progress_arg = (void *)o;
    if (promote_rejoin(&p, smap_shard(cur, (unsigned)i), &ep, ruser, rpass ? rpass : "", &po,
                       &err) < 0) {
        shardctl_err("rejoin: %s; the map is unchanged", err ? err : "failed");
        free(err);
        ex = SHARDCTL_INVALID;
        goto out;
    }
    as.shard = o->argv[0];
    as.ep = &ep;
    ex = shardctl_change(o, change, &as, &before, &after);
    if (ex != SHARDCTL_OK)
        goto out;
    if (promote_rejoin_finish(&p, &err) < 0) {
        shardctl_err("rejoin: %s", err ? err : "failed");
        free(err);
        ex = SHARDCTL_FAILED;
        goto out;
    }
    smap_format_endpoint(&ep, addr, sizeof(addr));
    if (o->json)
        printf("{\"event\":\"done\",\"shard\":\"%s\",\"standby\":\"%s\",\"version\":%" PRIu64
               "}\n", o->argv[0], addr, smap_version(after));
    else
        printf("%s: %s is a standby again; map version %" PRIu64 "\n", o->argv[0], addr,
               smap_version(after));
out:
    promote_free(&p);
    smap_unref(cur);
    smap_unref(before);
    smap_unref(after);
    return ex;
}
