/*
 * tools/shardctl_top.c - `shardctl top`: the hottest vbuckets and users
 * right now, from two samples of every router's /status (its admin HTTP
 * listener) --interval seconds apart. The routers come from --router
 * HOST:PORT options, else from their ZooKeeper registrations (admin=).
 *
 * Each router counts since it started; top sums the routers' differences,
 * so a router that restarts between the samples counts from zero (its
 * negative differences are dropped). User counts come from each router's
 * heavy-hitters sketch (router/stats.h): a user's rate is the growth of its
 * guaranteed count (statements - error), a lower bound that is exact while
 * the user stays in the sketch.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shardmap/zkstore.h"
#include "tools/shardctl.h"

#define TOP_ROWS       20        /* table rows per section (JSON: all) */

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* GET /status from the admin listener <addr>. Returns the parsed JSON, or
 * NULL with a message in <err>. */
static json_t *fetch_status(const char *addr, unsigned timeout_ms, char *err, size_t errcap)
{
    char *body = NULL, *e = NULL;
    int status = 0;
    json_t *j = NULL;
    json_error_t je;

    if (shardctl_http(addr, "GET", "/status", getenv("SHARDWIRE_ADMIN_USER"),
                      getenv("SHARDWIRE_ADMIN_PASSWORD"), timeout_ms, &status, &body, &e) < 0) {
        snprintf(err, errcap, "%s", e ? e : addr);
        free(e);
        return NULL;
    }
    if (status != 200) {
        snprintf(err, errcap, "%s answered %d: %.*s%s", addr, status,
                 (int)strcspn(body ? body : "", "\n"), body ? body : "",
                 status == 401 ? " (set $SHARDWIRE_ADMIN_USER/_PASSWORD)" : "");
    } else {
        j = json_loads(body, 0, &je);
        if (!j || !json_is_object(json_object_get(j, "clients"))) {
            snprintf(err, errcap, "%s: /status is not a router's status with load (%s)", addr,
                     j ? "no clients" : je.text);
            json_decref(j);
            j = NULL;
        }
    }
    free(body);
    return j;
}

/* The admin addresses of the registered routers. Returns an exit code. */
static int routers_from_zk(const struct shardctl_opts *o, char ***out, unsigned *n_out)
{
    struct zkstore_admin *za = NULL;
    struct zkstore_router *r = NULL;
    unsigned n = 0, k = 0;
    char *err = NULL, v[300];
    enum zkstore_rc rc;
    int ex = shardctl_connect(o, &za);

    if (ex != SHARDCTL_OK)
        return ex;
    rc = zkstore_admin_routers(za, &r, &n, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : "cannot list routers");
        free(err);
        zkstore_admin_free(za);
        return shardctl_exit_of(rc);
    }
    *out = calloc(n ? n : 1, sizeof(**out));
    for (unsigned i = 0; *out && i < n; i++) {
        if (shardctl_admin_of(r[i].payload, v, sizeof(v)) == 0)
            (*out)[k++] = strdup(v);
        else
            shardctl_err("router %s has no admin listener (admin_listen); skipped", r[i].id);
    }
    *n_out = k;
    zkstore_routers_free(r, n);
    zkstore_admin_free(za);
    return *out ? SHARDCTL_OK : SHARDCTL_FAILED;
}

/* One row: a vbucket or a user, with its rates. */
struct top_row {
    char     name[80];      /* user, or the vbucket number */
    char     shard[64];     /* vbuckets */
    double   stmts, rows, bytes;   /* per second */
};

struct top_set {
    struct top_row *rows;
    size_t          n, cap;
};

static struct top_row *row_of(struct top_set *s, const char *name, const char *shard)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->rows[i].name, name) == 0)
            return &s->rows[i];
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct top_row *nr = realloc(s->rows, cap * sizeof(*nr));

        if (!nr)
            return NULL;
        s->rows = nr;
        s->cap = cap;
    }
    memset(&s->rows[s->n], 0, sizeof(s->rows[0]));
    snprintf(s->rows[s->n].name, sizeof(s->rows[0].name), "%s", name);
    snprintf(s->rows[s->n].shard, sizeof(s->rows[0].shard), "%s", shard ? shard : "");
    return &s->rows[s->n++];
}

static double grow(json_int_t after, json_int_t before, double secs)
{
    return after > before ? (double)(after - before) / secs : 0.0;
}

/* Adds one router's growth between <a> and <b> (its two /status). */
static void add_router(struct top_set *vbs, struct top_set *users, json_t *a, json_t *b,
                       double secs)
{
    json_t *va = json_object_get(a, "vbucket_load"), *vb = json_object_get(b, "vbucket_load");
    json_t *ua = json_object_get(a, "top_users"), *ub = json_object_get(b, "top_users");
    json_t *e, *f;
    size_t i, k;

    json_array_foreach(vb, i, e) {
        json_int_t v = json_integer_value(json_array_get(e, 0)), s0 = 0, r0 = 0, b0 = 0;
        char name[32];
        struct top_row *row;

        json_array_foreach(va, k, f) {
            if (json_integer_value(json_array_get(f, 0)) == v) {
                s0 = json_integer_value(json_array_get(f, 2));
                r0 = json_integer_value(json_array_get(f, 3));
                b0 = json_integer_value(json_array_get(f, 4));
                break;
            }
        }
        snprintf(name, sizeof(name), "%" JSON_INTEGER_FORMAT, v);
        row = row_of(vbs, name, json_string_value(json_array_get(e, 1)));
        if (!row)
            continue;
        row->stmts += grow(json_integer_value(json_array_get(e, 2)), s0, secs);
        row->rows += grow(json_integer_value(json_array_get(e, 3)), r0, secs);
        row->bytes += grow(json_integer_value(json_array_get(e, 4)), b0, secs);
    }
    json_array_foreach(ub, i, e) {
        const char *u = json_string_value(json_object_get(e, "user"));
        json_int_t s0 = 0, r0 = 0, b0 = 0, s1, r1, b1;
        struct top_row *row;

        if (!u)
            continue;
        json_array_foreach(ua, k, f) {
            const char *fu = json_string_value(json_object_get(f, "user"));

            if (fu && strcmp(fu, u) == 0) {
                s0 = json_integer_value(json_object_get(f, "statements")) -
                     json_integer_value(json_object_get(f, "error"));
                r0 = json_integer_value(json_object_get(f, "rows"));
                b0 = json_integer_value(json_object_get(f, "bytes"));
                break;
            }
        }
        s1 = json_integer_value(json_object_get(e, "statements")) -
             json_integer_value(json_object_get(e, "error"));
        r1 = json_integer_value(json_object_get(e, "rows"));
        b1 = json_integer_value(json_object_get(e, "bytes"));
        row = row_of(users, u, NULL);
        if (!row)
            continue;
        row->stmts += grow(s1, s0, secs);
        row->rows += grow(r1, r0, secs);
        row->bytes += grow(b1, b0, secs);
    }
}

static int by_rate(const void *x, const void *y)
{
    const struct top_row *a = x, *b = y;

    if (a->stmts != b->stmts)
        return a->stmts < b->stmts ? 1 : -1;
    if (a->bytes != b->bytes)
        return a->bytes < b->bytes ? 1 : -1;
    return strcmp(a->name, b->name);
}

static json_t *set_json(const struct top_set *s, const char *key)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < s->n; i++) {
        const struct top_row *r = &s->rows[i];
        json_t *o = json_pack("{s:f, s:f, s:f}", "statements_per_s", r->stmts, "rows_per_s",
                              r->rows, "bytes_per_s", r->bytes);

        if (!o)
            continue;
        if (strcmp(key, "vbucket") == 0) {
            json_object_set_new(o, "vbucket", json_integer(strtoll(r->name, NULL, 10)));
            json_object_set_new(o, "shard", json_string(r->shard));
        } else {
            json_object_set_new(o, "user", json_string(r->name));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

static void set_table(const struct top_set *s, const char *title, bool vb)
{
    printf("%-24s  %-10s  %12s  %12s  %14s\n", title, vb ? "SHARD" : "", "STMT/S", "ROWS/S",
           "BYTES/S");
    for (size_t i = 0; i < s->n && i < TOP_ROWS; i++) {
        const struct top_row *r = &s->rows[i];

        if (r->stmts == 0 && r->bytes == 0)
            break;
        printf("%-24s  %-10s  %12.1f  %12.1f  %14.1f\n", r->name, vb ? r->shard : "", r->stmts,
               r->rows, r->bytes);
    }
}

int shardctl_top(const struct shardctl_opts *o)
{
    unsigned interval_ms = o->have_interval ? o->interval_ms : 2000, n = 0, ok = 0;
    char **addrs = NULL, err[512];
    json_t **first = NULL, **second = NULL, *out = NULL, *rj = NULL;
    struct top_set vbs = { 0 }, users = { 0 };
    uint64_t t0, t1;
    int ex = SHARDCTL_OK;

    if (o->argc != 0) {
        shardctl_err("top takes no operands (routers: --router HOST:PORT)");
        return SHARDCTL_USAGE;
    }
    if (interval_ms == 0) {
        shardctl_err("--interval must be more than 0");
        return SHARDCTL_USAGE;
    }
    if (o->n_routers) {
        addrs = calloc(o->n_routers, sizeof(*addrs));
        for (unsigned i = 0; addrs && i < o->n_routers; i++)
            addrs[n++] = strdup(o->routers[i]);
        if (!addrs)
            return SHARDCTL_FAILED;
    } else {
        ex = routers_from_zk(o, &addrs, &n);
        if (ex != SHARDCTL_OK)
            return ex;
        if (n == 0) {
            shardctl_err("no registered router has an admin listener; name them with --router");
            ex = SHARDCTL_FAILED;
            goto out;
        }
    }
    first = calloc(n, sizeof(*first));
    second = calloc(n, sizeof(*second));
    if (!first || !second) {
        ex = SHARDCTL_FAILED;
        goto out;
    }
    t0 = mono_ms();
    for (unsigned i = 0; i < n; i++)
        if (!(first[i] = fetch_status(addrs[i], o->timeout_ms, err, sizeof(err))))
            shardctl_err("%s", err);
    t1 = t0 + interval_ms;
    while (mono_ms() < t1)
        usleep((useconds_t)(t1 - mono_ms()) * 1000u);
    for (unsigned i = 0; i < n; i++) {
        if (!first[i])
            continue;
        if (!(second[i] = fetch_status(addrs[i], o->timeout_ms, err, sizeof(err)))) {
            shardctl_err("%s", err);
            continue;
        }
        ok++;
        add_router(&vbs, &users, first[i], second[i], interval_ms / 1000.0);
    }
    if (!ok) {
        shardctl_err("no router answered");
        ex = SHARDCTL_FAILED;
        goto out;
    }
    if (vbs.n)
        qsort(vbs.rows, vbs.n, sizeof(*vbs.rows), by_rate);
    if (users.n)
        qsort(users.rows, users.n, sizeof(*users.rows), by_rate);
    if (o->json) {
        char *text;

        rj = json_array();
        for (unsigned i = 0; rj && i < n; i++)
            json_array_append_new(rj, json_pack("{s:s, s:b}", "admin", addrs[i], "answered",
                                                second[i] != NULL));
        out = json_pack("{s:f, s:o, s:o, s:o}", "interval_s", interval_ms / 1000.0,
                        "routers", rj, "vbuckets", set_json(&vbs, "vbucket"),
                        "users", set_json(&users, "user"));
        rj = NULL;
        text = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
        if (!text) {
            ex = SHARDCTL_FAILED;
            goto out;
        }
        printf("%s\n", text);
        free(text);
    } else {
        printf("routers: %u of %u answered; rates over %.1f s\n\n", ok, n, interval_ms / 1000.0);
        set_table(&vbs, "VBUCKET", true);
        printf("\n");
        set_table(&users, "USER", false);
    }
out:
    for (unsigned i = 0; i < n; i++) {
        free(addrs[i]);
        if (first)
            json_decref(first[i]);
        if (second)
            json_decref(second[i]);
    }
    free(addrs);
    free(first);
    free(second);
    free(vbs.rows);
    free(users.rows);
    json_decref(rj);
    json_decref(out);
    return ex;
}

void shardctl_vbucket_load(const struct shardctl_opts *o, const char *by, double *load,
                           uint32_t n, unsigned *answered)
{
    /* the columns of a vbucket_load entry: [vbucket, shard, statements, rows, bytes] */
    size_t col = strcmp(by, "statements") == 0 ? 2 : strcmp(by, "rows") == 0 ? 3 : 4;
    char **addrs = NULL, err[512];
    unsigned n_addrs = 0;

    memset(load, 0, n * sizeof(*load));
    *answered = 0;
    if (routers_from_zk(o, &addrs, &n_addrs) != SHARDCTL_OK)
        return;
    for (unsigned i = 0; i < n_addrs; i++) {
        json_t *st = fetch_status(addrs[i], o->timeout_ms, err, sizeof(err)), *e;
        size_t k;
        free(addrs[i]);
        if (!st) {
            shardctl_err("%s", err);
            continue;
        }
        (*answered)++;
        json_array_foreach(json_object_get(st, "vbucket_load"), k, e) {
            json_int_t v = json_integer_value(json_array_get(e, 0));
            if (v >= 0 && v < (json_int_t)n)
                load[v] += (double)json_integer_value(json_array_get(e, col));
        }
        json_decref(st);
    }
    free(addrs);
}
