/*
 * tools/shardctl_status.c - `shardctl status` and `shardctl routers`: the
 * map and the live routers, as a table or as one JSON object.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/journal.h"
#include "router/mapjson.h"
#include "router/switchover.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"
#include "tools/shardctl.h"

/* Finds "<key>=" in a router payload of space-separated key=value words and
 * copies its value into <buf>. Returns 0, or -1 when absent. */
static int payload_field(const char *payload, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    const char *p = payload;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        const char *end = p + strcspn(p, " \t\n");
        if ((size_t)(end - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t vlen = (size_t)(end - p) - klen - 1;
            if (vlen >= size)
                vlen = size - 1;
            memcpy(buf, p + klen + 1, vlen);
            buf[vlen] = '\0';
            return 0;
        }
        p = end;
    }
    return -1;
}

/* The "health ..." lines of a registration (router/control.h) as JSON
 * objects of their key=value words. */
static json_t *health_json(const char *payload)
{
    json_t *arr = json_array();
    const char *line = strchr(payload, '\n');

    while (arr && line) {
        const char *p = line + 1, *end = p + strcspn(p, "\n");
        json_t *h;

        line = *end ? end : NULL;
        if (strncmp(p, "health ", 7) != 0)
            continue;
        h = mapjson_words(p + 7, end);
        if (h)
            json_array_append_new(arr, h);
    }
    return arr;
}

/* A server's verdicts as every router sees them, for the table. */
static void health_table(const struct zkstore_router *r, unsigned n)
{
    bool any = false;

    for (unsigned i = 0; i < n; i++) {
        json_t *hs = health_json(r[i].payload);
        size_t k;
        json_t *h;

        json_array_foreach(hs, k, h) {
            const char *lag = json_string_value(json_object_get(h, "lag_s"));
            const char *e = json_string_value(json_object_get(h, "error"));
            const char *u = json_string_value(json_object_get(h, "unsafe"));
            const char *sc = json_string_value(json_object_get(h, "semi_clients"));
            const char *wr = json_string_value(json_object_get(h, "writes_refused"));

            if (!any)
                printf("\n%-10s  %-8s  %-7s  %-22s  %-8s  %s\n", "ROUTER", "SHARD", "ROLE",
                       "SERVER", "HEALTH", "DETAIL");
            any = true;
            printf("%-10s  %-8s  %-7s  %-22s  %-8s  %s%s%s%s%s%s%s%s%s\n", r[i].id,
                   json_string_value(json_object_get(h, "shard")),
                   json_string_value(json_object_get(h, "role")),
                   json_string_value(json_object_get(h, "server")),
                   json_string_value(json_object_get(h, "verdict")),
                   lag ? "lag_s=" : "", lag ? lag : "", sc ? "semi_sync_standbys=" : "",
                   sc ? sc : "", wr ? " WRITES REFUSED (no standby acknowledges)" : "",
                   e ? " error=" : "", e ? e : "", u ? " unsafe=" : "", u ? u : "");
        }
        json_decref(hs);
    }
}

static json_t *routers_json(const struct zkstore_router *r, unsigned n)
{
    json_t *arr = json_array();
    for (unsigned i = 0; arr && i < n; i++) {
        json_t *o = json_object();
        char v[64];
        json_object_set_new(o, "id", json_string(r[i].id));
        json_t *pl = json_string(r[i].payload);
        json_object_set_new(o, "payload", pl ? pl : json_null());
        if (payload_field(r[i].payload, "map_version", v, sizeof(v)) == 0) {
            char *end;
            unsigned long long mv = strtoull(v, &end, 10);
            if (*end == '\0' && end != v)
                json_object_set_new(o, "map_version", json_integer((json_int_t)mv));
        }
        if (payload_field(r[i].payload, "address", v, sizeof(v)) == 0)
            json_object_set_new(o, "address", json_string(v));
        json_object_set_new(o, "health", health_json(r[i].payload));
        json_object_set_new(o, "updated_ms", json_integer(r[i].mtime_ms));
        json_object_set_new(o, "registered_ms", json_integer(r[i].ctime_ms));
        json_array_append_new(arr, o);
    }
    return arr;
}

static void routers_table(const struct zkstore_router *r, unsigned n, const struct smap *m)
{
    if (n == 0) {
        printf("no live routers\n");
        return;
    }
    int w = 6;
    for (unsigned i = 0; i < n; i++)
        if ((int)strlen(r[i].id) > w)
            w = (int)strlen(r[i].id);
    printf("%-*s  %-11s  %s\n", w, "ROUTER", "MAP_VERSION", "REGISTRATION");
    for (unsigned i = 0; i < n; i++) {
        char v[64];
        const char *mv = payload_field(r[i].payload, "map_version", v, sizeof(v)) == 0 ? v : "?";
        char note[32] = "";
        if (m != NULL && strcmp(mv, "?") != 0 && strtoull(mv, NULL, 10) != smap_version(m))
            snprintf(note, sizeof(note), " (behind)");
        char *pl = strdup(r[i].payload);
        if (pl != NULL)
            pl[strcspn(pl, "\n")] = '\0';
        printf("%-*s  %-11s  %s%s\n", w, r[i].id, mv, pl ? pl : "", note);
        free(pl);
    }
}

/* Calls <fn> for each run of frozen vbuckets (first, last, owner index). */
static void frozen_runs(const struct smap *m, void (*fn)(uint32_t, uint32_t, unsigned, void *),
                        void *arg)
{
    uint32_t n = smap_n_vbuckets(m);
    for (uint32_t vb = 0; vb < n; vb++) {
        if (smap_vbucket_state(m, vb) == SMAP_VB_NORMAL)
            continue;
        uint32_t first = vb;
        unsigned owner = smap_shard_of_vbucket(m, vb);
        while (vb + 1 < n && smap_vbucket_state(m, vb + 1) != SMAP_VB_NORMAL &&
               smap_shard_of_vbucket(m, vb + 1) == owner)
            vb++;
        fn(first, vb, owner, arg);
    }
}

static void frozen_json_run(uint32_t first, uint32_t last, unsigned owner, void *arg)
{
    const struct smap *m = ((void **)arg)[0];
    json_t *arr = ((void **)arg)[1], *o = json_object();
    json_object_set_new(o, "first", json_integer(first));
    json_object_set_new(o, "last", json_integer(last));
    json_object_set_new(o, "shard", json_string(smap_shard(m, owner)->name));
    json_object_set_new(o, "state", json_string("frozen"));
    json_array_append_new(arr, o);
}

static void frozen_table_run(uint32_t first, uint32_t last, unsigned owner, void *arg)
{
    const struct smap *m = arg;
    if (first == last)
        printf("  vb %" PRIu32 " on %s\n", first, smap_shard(m, owner)->name);
    else
        printf("  vb %" PRIu32 "-%" PRIu32 " on %s\n", first, last,
               smap_shard(m, owner)->name);
}

static json_t *map_json(const struct smap *m, const char *root)
{
    const struct smap_key *k = smap_key_config(m);
    json_t *o = json_object(), *cols = json_array(), *shards = mapjson_shards(m);
    json_object_set_new(o, "root", json_string(root));
    json_object_set_new(o, "version", json_integer((json_int_t)smap_version(m)));
    json_object_set_new(o, "vbuckets", json_integer(smap_n_vbuckets(m)));
    for (unsigned i = 0; i < k->n_key_columns; i++)
        json_array_append_new(cols, json_string(k->key_columns[i]));
    json_object_set_new(o, "key_columns", cols);
    json_object_set_new(o, "key_type",
                        json_string(k->key_type == ANALYZE_KEY_STRING ? "string" : "int"));
    json_object_set_new(o, "shards", shards);
    json_t *frozen = json_array();
    void *args[2] = { (void *)m, frozen };
    frozen_runs(m, frozen_json_run, args);
    json_object_set_new(o, "frozen", frozen);
    return o;
}

static void map_table(const struct smap *m, const struct shardctl_opts *o)
{
    const struct smap_key *k = smap_key_config(m);
    printf("cluster %s on %s: map version %" PRIu64 ", %u vbuckets, key", o->root, o->zk,
           smap_version(m), smap_n_vbuckets(m));
    for (unsigned i = 0; i < k->n_key_columns; i++)
        printf("%s%s", i ? "," : " ", k->key_columns[i]);
    printf(" (%s)\n\n", k->key_type == ANALYZE_KEY_STRING ? "string" : "int");
    int w = 5, wm = 6;
    for (unsigned i = 0; i < smap_n_shards(m); i++) {
        char ep[SMAP_ENDPOINT_STR_MAX];
        smap_format_endpoint(&smap_shard(m, i)->master, ep, sizeof(ep));
        if ((int)strlen(smap_shard(m, i)->name) > w)
            w = (int)strlen(smap_shard(m, i)->name);
        if ((int)strlen(ep) > wm)
            wm = (int)strlen(ep);
    }
    printf("%-*s  %8s  %-*s  %s\n", w, "SHARD", "VBUCKETS", wm, "MASTER", "STANDBYS");
    for (unsigned i = 0; i < smap_n_shards(m); i++) {
        const struct smap_shard *s = smap_shard(m, i);
        char ep[SMAP_ENDPOINT_STR_MAX];
        smap_format_endpoint(&s->master, ep, sizeof(ep));
        printf("%-*s  %8u  %-*s  ", w, s->name, smap_vbuckets_of_shard(m, i), wm, ep);
        if (s->n_standbys == 0)
            printf("-");
        for (unsigned j = 0; j < s->n_standbys; j++) {
            smap_format_endpoint(&s->standbys[j], ep, sizeof(ep));
            printf("%s%s", j ? "," : "", ep);
        }
        putchar('\n');
    }
    if (smap_n_frozen(m) > 0) {
        printf("\nfrozen for a move's cutover (statements held by the routers): %" PRIu32
               " vbucket%s\n", smap_n_frozen(m), smap_n_frozen(m) == 1 ? "" : "s");
        frozen_runs(m, frozen_table_run, (void *)m);
    }
}

static int print_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        shardctl_err("out of memory");
        return SHARDCTL_FAILED;
    }
    puts(s);
    free(s);
    return SHARDCTL_OK;
}

/* ---- failover state: coordinator, terms, per-server health, history ---- */

struct ha {
    char            coordinator[ZKSTORE_ROUTER_ID_MAX];
    struct journal *j;          /* [smap_n_shards] */
    bool           *runner_alive; /* [smap_n_shards]: a switchover's runner node exists */
    char           *history;    /* <root>/history, or NULL */
};

static void ha_free(struct ha *h)
{
    free(h->j);
    free(h->runner_alive);
    free(h->history);
}

/* Whether journal <j> is a switchover in progress: its runner is then
 * j->coordinator (shardctl-HOST-PID, or the coordinator that took it over). */
static bool switchover_running(const struct journal *j)
{
    return journal_in_progress(j) && strcmp(j->kind, "switchover") == 0;
}

/* Whether the runner node <root>/runners/<j->coordinator> exists (the
 * routers' coordinator takes the switchover over once it is gone). */
static enum zkstore_rc runner_alive(struct zkstore_admin *za, const struct journal *j,
                                    bool *alive, char **errp)
{
    char *text = NULL;
    int32_t version = -1;
    enum zkstore_rc rc = zkstore_admin_node_get(za, SWITCHOVER_RUNNERS_DIR, j->coordinator,
                                                &text, &version, errp);

    free(text);
    *alive = rc == ZKSTORE_OK && version >= 0;
    return rc;
}

static int ha_read(struct zkstore_admin *za, const struct smap *m, struct ha *h)
{
    char *err = NULL;
    enum zkstore_rc rc;

    memset(h, 0, sizeof(*h));
    h->j = calloc(smap_n_shards(m) + 1, sizeof(*h->j));
    h->runner_alive = calloc(smap_n_shards(m) + 1, sizeof(*h->runner_alive));
    if (!h->j || !h->runner_alive) {
        ha_free(h);
        shardctl_err("out of memory");
        return SHARDCTL_FAILED;
    }
    rc = zkstore_admin_coordinator(za, h->coordinator, sizeof(h->coordinator), &err);
    if (rc == ZKSTORE_OK)
        rc = zkstore_admin_history_get(za, &h->history, &err);
    for (unsigned i = 0; rc == ZKSTORE_OK && i < smap_n_shards(m); i++)
        if (journal_read(za, smap_shard(m, i)->name, &h->j[i], &err) < 0)
            rc = ZKSTORE_ERROR;
        else if (switchover_running(&h->j[i]))
            rc = runner_alive(za, &h->j[i], &h->runner_alive[i], &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        ha_free(h);
        return shardctl_exit_of(rc);
    }
    return SHARDCTL_OK;
}

/* What the routers say about one server: their verdicts, the worst lag. */
struct server_view {
    unsigned n_views, n_up, n_down;
    long     lag_s;            /* -1: none reported */
    long     semi_clients;     /* a master's semi-sync standbys, the fewest seen; -1: none */
    unsigned n_refusing;       /* routers refusing writes: no standby acknowledges it */
    json_t  *verdicts;         /* {router: verdict} */
};

static void server_view(const struct zkstore_router *r, unsigned n, const char *shard,
                        const char *server, struct server_view *v)
{
    memset(v, 0, sizeof(*v));
    v->lag_s = -1;
    v->semi_clients = -1;
    v->verdicts = json_object();
    for (unsigned i = 0; i < n; i++) {
        json_t *hs = health_json(r[i].payload), *h;
        size_t k;

        json_array_foreach(hs, k, h) {
            const char *sh = json_string_value(json_object_get(h, "shard"));
            const char *sv = json_string_value(json_object_get(h, "server"));
            const char *vd = json_string_value(json_object_get(h, "verdict"));
            const char *lag = json_string_value(json_object_get(h, "lag_s"));
            const char *sc = json_string_value(json_object_get(h, "semi_clients"));

            if (!sh || !sv || !vd || strcmp(sh, shard) != 0 || strcmp(sv, server) != 0)
                continue;
            v->n_views++;
            v->n_up += strcmp(vd, "up") == 0;
            v->n_down += strcmp(vd, "down") == 0;
            v->n_refusing += json_object_get(h, "writes_refused") != NULL;
            if (sc && (v->semi_clients < 0 || atol(sc) < v->semi_clients))
                v->semi_clients = atol(sc);
            json_object_set_new(v->verdicts, r[i].id, json_string(vd));
            if (lag && *lag != '-' && atol(lag) > v->lag_s)
                v->lag_s = atol(lag);
        }
        json_decref(hs);
    }
}

static json_t *shard_servers_json(const struct smap_shard *s, const struct zkstore_router *r,
                                  unsigned n)
{
    json_t *arr = json_array();

    for (unsigned k = 0; arr && k <= s->n_standbys; k++) {
        char ep[SMAP_ENDPOINT_STR_MAX];
        struct server_view v;
        json_t *o = json_object();

        smap_format_endpoint(k == 0 ? &s->master : &s->standbys[k - 1], ep, sizeof(ep));
        server_view(r, n, s->name, ep, &v);
        json_object_set_new(o, "server", json_string(ep));
        json_object_set_new(o, "role", json_string(k == 0 ? "master" : "standby"));
        json_object_set_new(o, "routers_up", json_integer(v.n_up));
        json_object_set_new(o, "routers_seeing", json_integer(v.n_views));
        json_object_set_new(o, "verdicts", v.verdicts);
        json_object_set_new(o, "lag_s", v.lag_s >= 0 ? json_integer(v.lag_s) : json_null());
        if (k == 0) {
            json_object_set_new(o, "semi_sync_standbys",
                                v.semi_clients >= 0 ? json_integer(v.semi_clients) : json_null());
            json_object_set_new(o, "routers_refusing_writes", json_integer(v.n_refusing));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

/*
 * What the routers' views say about shard <s> as a whole: "ok", "master_down"
 * (a majority of the routers that see the master say down) or
 * "writes_refused" (a router refuses writes: no standby acknowledges the
 * master). <detail> gets one sentence for an operator ("" for ok).
 */
static const char *shard_state(const struct smap_shard *s, const struct zkstore_router *r,
                               unsigned n, char *detail, size_t cap)
{
    char ep[SMAP_ENDPOINT_STR_MAX];
    struct server_view mv;
    unsigned sb_up = 0;

    smap_format_endpoint(&s->master, ep, sizeof(ep));
    server_view(r, n, s->name, ep, &mv);
    json_decref(mv.verdicts);
    for (unsigned k = 0; k < s->n_standbys; k++) {
        char sep[SMAP_ENDPOINT_STR_MAX];
        struct server_view v;

        smap_format_endpoint(&s->standbys[k], sep, sizeof(sep));
        server_view(r, n, s->name, sep, &v);
        json_decref(v.verdicts);
        sb_up += v.n_up > 0;
    }
    detail[0] = 0;
    if (mv.n_views && mv.n_down * 2 > mv.n_views) {
        snprintf(detail, cap, "master %s down for %u of %u routers; %u of %u standbys up%s", ep,
                 mv.n_down, mv.n_views, sb_up, s->n_standbys,
                 sb_up ? "" : ": no standby answers, so nothing can be promoted safely; the "
                              "shard stays down until its servers return (docs/failover.md)");
        return "master_down";
    }
    if (mv.n_refusing) {
        snprintf(detail, cap, "writes refused by %u of %u routers: no standby acknowledges "
                 "master %s (%u of %u standbys up); restart or reattach a standby "
                 "(docs/failover.md)", mv.n_refusing, mv.n_views, ep, sb_up, s->n_standbys);
        return "writes_refused";
    }
    return "ok";
}

static void ha_add_json(json_t *j, const struct smap *m, const struct ha *h,
                        const struct zkstore_router *r, unsigned n)
{
    json_t *shards = json_object_get(j, "shards"), *busy = json_array();

    json_object_set_new(j, "coordinator",
                        h->coordinator[0] ? json_string(h->coordinator) : json_null());
    for (unsigned i = 0; i < smap_n_shards(m); i++) {
        json_t *so = json_array_get(shards, i);

        if (!so)
            continue;
        json_object_set_new(so, "term", json_integer((json_int_t)h->j[i].term));
        {
            json_t *fo = mapjson_journal(&h->j[i]);

            if (fo && switchover_running(&h->j[i]))
                mapjson_runner(fo, h->j[i].coordinator, h->runner_alive[i], h->coordinator);
            json_object_set_new(so, "failover", fo);
        }
        json_object_set_new(so, "servers", shard_servers_json(smap_shard(m, i), r, n));
        {
            char detail[600];
            const char *st = shard_state(smap_shard(m, i), r, n, detail, sizeof(detail));

            json_object_set_new(so, "state", json_string(st));
            json_object_set_new(so, "state_detail", json_string(detail));
        }
        if (journal_in_progress(&h->j[i]))
            json_array_append_new(busy, json_string(smap_shard(m, i)->name));
    }
    json_object_set_new(j, "in_progress", busy);
    json_object_set_new(j, "history", mapjson_lines(h->history));
}

static void fmt_wall(uint64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!ms || !gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, cap, "-");
}

static void ha_table(const struct smap *m, const struct ha *h, const struct zkstore_router *r,
                     unsigned n)
{
    unsigned n_hist = 0, shown = 0;
    bool any = false;

    printf("\ncoordinator: %s\n", h->coordinator[0] ? h->coordinator
                                                   : "(none: no router runs auto_failover)");
    printf("\n%-8s  %-5s  %-10s  %-7s  %-22s  %-12s  %s\n", "SHARD", "TERM", "LAST", "ROLE",
           "SERVER", "HEALTH", "LAG_S");
    for (unsigned i = 0; i < smap_n_shards(m); i++) {
        const struct smap_shard *s = smap_shard(m, i);

        for (unsigned k = 0; k <= s->n_standbys; k++) {
            char ep[SMAP_ENDPOINT_STR_MAX], term[24], health[32], lag[24];
            struct server_view v;

            smap_format_endpoint(k == 0 ? &s->master : &s->standbys[k - 1], ep, sizeof(ep));
            server_view(r, n, s->name, ep, &v);
            json_decref(v.verdicts);
            snprintf(term, sizeof(term), "%" PRIu64, h->j[i].term);
            if (v.n_views)
                snprintf(health, sizeof(health), "up %u/%u", v.n_up, v.n_views);
            else
                snprintf(health, sizeof(health), "no view");
            if (v.lag_s >= 0)
                snprintf(lag, sizeof(lag), "%ld", v.lag_s);
            else
                snprintf(lag, sizeof(lag), "-");
            printf("%-8s  %-5s  %-10s  %-7s  %-22s  %-12s  %s\n", k ? "" : s->name,
                   k ? "" : term, k ? "" : h->j[i].state[0] ? h->j[i].state : "-",
                   k ? "standby" : "master", ep, health, lag);
        }
    }
    for (unsigned i = 0; i < smap_n_shards(m); i++) {
        char detail[600];
        const char *st = shard_state(smap_shard(m, i), r, n, detail, sizeof(detail));

        if (strcmp(st, "ok") != 0)
            printf("\nshard %s: %s: %s\n", smap_shard(m, i)->name,
                   strcmp(st, "master_down") == 0 ? "DOWN" : "WRITES REFUSED", detail);
    }
    for (unsigned i = 0; i < smap_n_shards(m); i++) {
        const struct journal *j = &h->j[i];
        char at[32];

        if (!journal_in_progress(j))
            continue;
        if (!any)
            printf("\nin progress:\n");
        any = true;
        fmt_wall(j->started_ms, at, sizeof(at));
        printf("  %s: %s term %" PRIu64 " state=%s by %s since %s UTC old=%s new=%s\n",
               smap_shard(m, i)->name, j->kind[0] ? j->kind : "failover", j->term, j->state,
               j->coordinator, at, j->old_text[0] ? j->old_text : "-",
               j->new_text[0] ? j->new_text : "-");
        if (!switchover_running(j))
            continue;
        if (h->runner_alive[i])
            printf("    runner %s: alive\n", j->coordinator);
        else if (strcmp(j->coordinator, h->coordinator) == 0)
            printf("    runner %s: the coordinator, which took it over\n", j->coordinator);
        else if (h->coordinator[0])
            printf("    runner %s: gone; the coordinator %s will take it over\n",
                   j->coordinator, h->coordinator);
        else
            printf("    runner %s: gone; no coordinator to take it over "
                   "(re-run `shardctl switchover %s`)\n", j->coordinator,
                   smap_shard(m, i)->name);
    }
    if (!any)
        printf("\nin progress: none\n");
    for (const char *p = h->history; p && *p; p++)
        n_hist += *p == '\n';
    printf("\nrecent history%s\n", n_hist ? ":" : ": none");
    for (const char *p = h->history; p && *p;) {
        const char *end = p + strcspn(p, "\n");
        char line[1200], v[6][80], at[32];

        snprintf(line, sizeof(line), "%.*s", (int)(end - p), p);
        p = *end ? end + 1 : end;
        if (n_hist - shown++ > 10)      /* the last ten; --json has them all */
            continue;
        journal_word(line, "at_ms", v[0], sizeof(v[0]));
        fmt_wall(strtoull(v[0], NULL, 10), at, sizeof(at));
        printf("  %s UTC  %-8s  %-10s  term %-4s  %-8s  %s -> %s  %s ms  by %s\n", at,
               journal_word(line, "shard", v[1], sizeof(v[1])) ? v[1] : "?",
               journal_word(line, "kind", v[2], sizeof(v[2])) ? v[2] : "failover",
               journal_word(line, "term", v[3], sizeof(v[3])) ? v[3] : "?",
               journal_word(line, "state", v[4], sizeof(v[4])) ? v[4] : "?",
               journal_word(line, "old", v[5], sizeof(v[5])) ? v[5] : "-",
               journal_word(line, "new", v[0], sizeof(v[0])) ? v[0] : "-",
               journal_word(line, "took_ms", v[1], sizeof(v[1])) ? v[1] : "?",
               journal_word(line, "coordinator", v[2], sizeof(v[2])) ? v[2] : "?");
    }
}

static int print_status(const struct shardctl_opts *o, const struct smap *m,
                        struct zkstore_admin *za, bool with_ha);

int shardctl_print_status(const struct shardctl_opts *o, const struct smap *m,
                          struct zkstore_admin *za)
{
    return print_status(o, m, za, false);
}

static int print_status(const struct shardctl_opts *o, const struct smap *m,
                        struct zkstore_admin *za, bool with_ha)
{
    struct ha h;
    memset(&h, 0, sizeof(h));
    struct zkstore_router *r = NULL;
    unsigned n = 0;
    char *err = NULL;
    enum zkstore_rc rc = ZKSTORE_OK;
    if (za != NULL) {
        rc = zkstore_admin_routers(za, &r, &n, &err);
        if (rc != ZKSTORE_OK) {
            shardctl_err("%s", err ? err : "cannot list routers");
            free(err);
            return shardctl_exit_of(rc);
        }
    }
    int ex = SHARDCTL_OK;
    if (with_ha && za != NULL) {
        ex = ha_read(za, m, &h);
        if (ex != SHARDCTL_OK) {
            zkstore_routers_free(r, n);
            return ex;
        }
    }
    if (o->json) {
        json_t *j = map_json(m, o->root);
        if (j != NULL && za != NULL)
            json_object_set_new(j, "routers", routers_json(r, n));
        if (j != NULL && with_ha && za != NULL)
            ha_add_json(j, m, &h, r, n);
        ex = print_json(j);
    } else {
        map_table(m, o);
        if (za != NULL) {
            putchar('\n');
            routers_table(r, n, m);
            health_table(r, n);
        }
        if (with_ha && za != NULL)
            ha_table(m, &h, r, n);
    }
    if (with_ha && za != NULL)
        ha_free(&h);
    zkstore_routers_free(r, n);
    return ex;
}

int shardctl_status(const struct shardctl_opts *o)
{
    struct zkstore_admin *za = NULL;
    struct smap *m = NULL;
    char *err = NULL;
    if (o->argc != 0) {
        shardctl_err("status takes no operands");
        return SHARDCTL_USAGE;
    }
    int ex = shardctl_connect(o, &za);
    if (ex != SHARDCTL_OK)
        return ex;
    enum zkstore_rc rc = zkstore_admin_load(za, &m, NULL, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        ex = shardctl_exit_of(rc);
    } else {
        ex = print_status(o, m, za, true);
    }
    free(err);
    smap_unref(m);
    zkstore_admin_free(za);
    return ex;
}

int shardctl_routers(const struct shardctl_opts *o)
{
    struct zkstore_admin *za = NULL;
    struct zkstore_router *r = NULL;
    struct smap *m = NULL;
    unsigned n = 0;
    char *err = NULL;
    if (o->argc != 0) {
        shardctl_err("routers takes no operands");
        return SHARDCTL_USAGE;
    }
    int ex = shardctl_connect(o, &za);
    if (ex != SHARDCTL_OK)
        return ex;
    /* The map version only marks routers that are behind: no cluster yet
     * is fine here (routers may register first). */
    if (zkstore_admin_load(za, &m, NULL, &err) != ZKSTORE_OK)
        m = NULL;
    free(err);
    err = NULL;
    enum zkstore_rc rc = zkstore_admin_routers(za, &r, &n, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : "cannot list routers");
        ex = shardctl_exit_of(rc);
    } else if (o->json) {
        json_t *j = json_object();
        if (j != NULL) {
            json_object_set_new(j, "routers", routers_json(r, n));
            if (m != NULL)
                json_object_set_new(j, "version", json_integer((json_int_t)smap_version(m)));
        }
        ex = print_json(j);
    } else {
        routers_table(r, n, m);
    }
    free(err);
    zkstore_routers_free(r, n);
    smap_unref(m);
    zkstore_admin_free(za);
    return ex;
}
