/*
 * tools/shardctl_init.c - `shardctl init`: create a cluster in ZooKeeper
 * with its fixed settings and vbuckets spread evenly over the given shards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/smap.h"
#include "shardmap/vbucket.h"
#include "shardmap/zkstore.h"
#include "tools/shardctl.h"

/* "NAME=HOST:PORT[,standby=HOST:PORT...]" -> <*s>. Returns 0, or -1 after
 * printing what is wrong. */
static int parse_shard_spec(const char *spec, struct smap_shard *s)
{
    char *err = NULL;
    memset(s, 0, sizeof(*s));
    const char *eq = strchr(spec, '=');
    if (eq == NULL || eq == spec || (size_t)(eq - spec) >= SMAP_NAME_MAX) {
        shardctl_err("--shard '%s': expected NAME=HOST:PORT[,standby=HOST:PORT...]", spec);
        return -1;
    }
    memcpy(s->name, spec, (size_t)(eq - spec));
    const char *p = eq + 1;
    bool first = true;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        struct smap_endpoint *ep;
        if (first) {
            ep = &s->master;
        } else if (len > 8 && strncmp(p, "standby=", 8) == 0) {
            if (s->n_standbys == SMAP_MAX_STANDBYS) {
                shardctl_err("--shard '%s': more than %d standbys", spec, SMAP_MAX_STANDBYS);
                return -1;
            }
            ep = &s->standbys[s->n_standbys++];
            p += 8;
            len -= 8;
        } else {
            shardctl_err("--shard '%s': unknown part '%.*s'", spec, (int)len, p);
            return -1;
        }
        if (smap_parse_endpoint(p, len, ep, &err) < 0) {
            shardctl_err("--shard '%s': %s", spec, err);
            free(err);
            return -1;
        }
        first = false;
        p += len;
        if (*p == ',')
            p++;
    }
    if (first) {
        shardctl_err("--shard '%s': no master HOST:PORT", spec);
        return -1;
    }
    return 0;
}

static int parse_key(const struct shardctl_opts *o, struct smap_key *k)
{
    memset(k, 0, sizeof(*k));
    const char *cols = o->key_columns ? o->key_columns : "userid";
    const char *p = cols;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= ANALYZE_NAME_MAX || k->n_key_columns == ANALYZE_MAX_KEY_COLS) {
            shardctl_err("--key-columns '%s': expected 1..%d names of 1..%d bytes, "
                         "comma-separated", cols, ANALYZE_MAX_KEY_COLS, ANALYZE_NAME_MAX - 1);
            return -1;
        }
        memcpy(k->key_columns[k->n_key_columns++], p, len);
        p += len;
        if (*p == '\0')
            break;
        p++;
    }
    if (o->key_type == NULL || strcmp(o->key_type, "int") == 0) {
        k->key_type = ANALYZE_KEY_INT;
    } else if (strcmp(o->key_type, "string") == 0) {
        k->key_type = ANALYZE_KEY_STRING;
    } else {
        shardctl_err("--key-type '%s': expected int or string", o->key_type);
        return -1;
    }
    return 0;
}

int shardctl_init(const struct shardctl_opts *o)
{
    struct smap_key key;
    struct smap_builder *b = NULL;
    struct smap *m = NULL;
    struct zkstore_admin *za = NULL;
    char *err = NULL;
    int ex = SHARDCTL_USAGE;

    if (o->argc != 0) {
        shardctl_err("init takes options only (--shard NAME=HOST:PORT ...)");
        return SHARDCTL_USAGE;
    }
    if (o->n_shard_args == 0) {
        shardctl_err("init: give at least one --shard NAME=HOST:PORT");
        return SHARDCTL_USAGE;
    }
    if (parse_key(o, &key) < 0)
        return SHARDCTL_USAGE;
    b = smap_builder_new(o->vbuckets ? o->vbuckets : VBUCKET_DEFAULT_COUNT, &key, &err);
    if (b == NULL)
        goto invalid;
    for (unsigned i = 0; i < o->n_shard_args; i++) {
        struct smap_shard s;
        if (parse_shard_spec(o->shard_args[i], &s) < 0)
            goto out;
        if (smap_builder_add_shard(b, &s, &err) < 0)
            goto invalid;
    }
    if (smap_builder_spread(b, &err) < 0)
        goto invalid;
    smap_builder_set_version(b, 1);
    m = smap_builder_finish(b, &err);
    b = NULL;
    if (m == NULL)
        goto invalid;

    struct zkstore_acl acl = { .open = o->acl && strcmp(o->acl, "open") == 0,
                               .router = o->router_auth };
    if (acl.open && o->router_auth != NULL) {
        shardctl_err("init: --router-auth-file and --acl open exclude each other");
        ex = SHARDCTL_USAGE;
        goto out;
    }
    if (!acl.open && o->auth == NULL) {
        shardctl_err("init: a protected cluster needs the admin's credentials (--auth-file "
                     "FILE, $SHARDWIRE_ZK_AUTH_FILE or $SHARDWIRE_ZK_AUTH); to create an "
                     "unprotected one that anyone reaching ZooKeeper may change, say --acl "
                     "open");
        ex = SHARDCTL_USAGE;
        goto out;
    }
    ex = shardctl_connect(o, &za);
    if (ex != SHARDCTL_OK)
        goto out;
    enum zkstore_rc rc = zkstore_admin_init(za, m, &acl, &err);
    ex = shardctl_exit_of(rc);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        goto out;
    }
    ex = shardctl_print_status(o, m, NULL);
    goto out;
invalid:
    shardctl_err("%s", err ? err : "invalid cluster");
    ex = SHARDCTL_INVALID;
out:
    free(err);
    smap_builder_free(b);
    smap_unref(m);
    zkstore_admin_free(za);
    return ex;
}
