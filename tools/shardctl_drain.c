/*
 * tools/shardctl_drain.c - `shardctl drain` and `shardctl undrain`: ask one
 * router, through its admin listener, to turn its /health to 503 (so the
 * load balancer sends new clients elsewhere) while it goes on serving, or
 * to take clients again (docs/operations.md).
 *
 * The router is named by its id (its ZooKeeper registration gives the admin
 * address) or by its admin HOST:PORT. Credentials for the admin listener's
 * basic auth come from $SHARDWIRE_ADMIN_USER and $SHARDWIRE_ADMIN_PASSWORD.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/zkstore.h"
#include "tools/shardctl.h"

/* Resolves <name> (a router id, or an admin HOST:PORT) into <out>. */
static int resolve(const struct shardctl_opts *o, const char *name, char *out, size_t cap)
{
    struct zkstore_admin *za = NULL;
    struct zkstore_router *r = NULL;
    unsigned n = 0;
    char *err = NULL;
    int ex;

    if (strchr(name, ':')) {
        snprintf(out, cap, "%s", name);
        return SHARDCTL_OK;
    }
    ex = shardctl_connect(o, &za);
    if (ex != SHARDCTL_OK)
        return ex;
    enum zkstore_rc rc = zkstore_admin_routers(za, &r, &n, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : "cannot list routers");
        free(err);
        zkstore_admin_free(za);
        return shardctl_exit_of(rc);
    }
    ex = SHARDCTL_INVALID;
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(r[i].id, name) != 0)
            continue;
        if (shardctl_admin_of(r[i].payload, out, cap) == 0)
            ex = SHARDCTL_OK;
        else
            shardctl_err("router '%s' has no admin listener (set admin_listen in its config)",
                         name);
        break;
    }
    if (ex != SHARDCTL_OK && !out[0])
        shardctl_err("no live router '%s' (see shardctl routers)", name);
    zkstore_routers_free(r, n);
    zkstore_admin_free(za);
    return ex;
}

static int drain_verb(const struct shardctl_opts *o, bool drain)
{
    const char *verb = drain ? "drain" : "undrain";
    char admin[300] = "", *body = NULL, *err = NULL;
    int status = 0, ex;

    if (o->argc != 1) {
        shardctl_err("%s takes one operand: ROUTER_ID or the router's admin HOST:PORT", verb);
        return SHARDCTL_USAGE;
    }
    ex = resolve(o, o->argv[0], admin, sizeof(admin));
    if (ex != SHARDCTL_OK)
        return ex;
    if (shardctl_http(admin, "POST", drain ? "/drain" : "/undrain", getenv("SHARDWIRE_ADMIN_USER"),
                      getenv("SHARDWIRE_ADMIN_PASSWORD"), o->timeout_ms, &status, &body,
                      &err) < 0) {
        shardctl_err("%s %s: %s", verb, o->argv[0], err);
        free(err);
        return SHARDCTL_UNREACHABLE;
    }
    body[strcspn(body, "\n")] = '\0';
    if (status != 200) {
        shardctl_err("%s %s: router at %s answered %d: %s%s", verb, o->argv[0], admin, status,
                     body, status == 401 ? " (set $SHARDWIRE_ADMIN_USER/_PASSWORD)" : "");
        free(body);
        return status == 401 ? SHARDCTL_NOAUTH : SHARDCTL_FAILED;
    }
    if (o->json)
        printf("{\"router\":\"%s\",\"admin\":\"%s\",\"drained\":%s}\n", o->argv[0], admin,
               drain ? "true" : "false");
    else
        printf("%s: %s (admin %s); /health now %s\n", o->argv[0], body, admin,
               drain ? "503" : "200 once ready");
    free(body);
    return SHARDCTL_OK;
}

int shardctl_drain(const struct shardctl_opts *o)
{
    return drain_verb(o, true);
}

int shardctl_undrain(const struct shardctl_opts *o)
{
    return drain_verb(o, false);
}
