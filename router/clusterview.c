/*
 * router/clusterview.c - the cluster as ZooKeeper holds it, for /status and
 * the console (see clusterview.h).
 *
 * One thread, one ZooKeeper connection of its own with the router's
 * credentials (the coordinator's, when set apart, since they read the
 * journals): every CLUSTERVIEW_INTERVAL_MS it reads the registrations, the
 * coordinator, each shard's journal, the failover history and the move
 * journals, builds the JSON document outside the lock and swaps it in. A
 * read that fails keeps the last good document and adds "error"; the
 * connection is made again on the next round when ZooKeeper was unreachable.
 */
#include "router/clusterview.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/config.h"
#include "router/journal.h"
#include "router/log.h"
#include "router/mapjson.h"
#include "router/worker.h"
#include "shardmap/movejournal.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"

#define MOVES_DIR "moves"

struct clusterview {
    struct router        *r;
    pthread_t             thread;
    pthread_mutex_t       lock;
    pthread_cond_t        cond;
    bool                  stopping;   /* under lock */
    json_t               *view;       /* under lock; never NULL */
    struct zkstore_admin *za;         /* the thread's own */
};

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The value of word <key> of a registration's first line as an integer
 * JSON value, or NULL when absent or not a number. */
static json_t *int_word(json_t *words, const char *key)
{
    const char *v = json_string_value(json_object_get(words, key));
    char *end;
    unsigned long long n;

    if (!v || !*v)
        return NULL;
    n = strtoull(v, &end, 10);
    return *end == '\0' ? json_integer((json_int_t)n) : NULL;
}

static json_t *routers_json(const struct zkstore_router *rs, unsigned n)
{
    json_t *arr = json_array();
    static const char *const ints[] = { "map_version", "map_age_ms", "pid", "lease_ms" };

    for (unsigned i = 0; arr && i < n; i++) {
        const char *p = rs[i].payload ? rs[i].payload : "";
        json_t *words = mapjson_words(p, p + strcspn(p, "\n")), *o = json_object();
        const char *a;

        if (!words || !o) {
            json_decref(words);
            json_decref(o);
            json_decref(arr);
            return NULL;
        }
        json_object_set_new(o, "id", json_string(rs[i].id));
        if ((a = json_string_value(json_object_get(words, "address"))) != NULL)
            json_object_set_new(o, "address", json_string(a));
        if ((a = json_string_value(json_object_get(words, "admin"))) != NULL && *a)
            json_object_set_new(o, "admin", json_string(a));
        for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
            json_t *v = int_word(words, ints[k]);

            if (v)
                json_object_set_new(o, ints[k], v);
        }
        json_object_set_new(o, "registered_ms", json_integer(rs[i].ctime_ms));
        json_object_set_new(o, "updated_ms", json_integer(rs[i].mtime_ms));
        json_decref(words);
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *move_json(const char *id, const struct move_journal *j)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "vbuckets", json_string(j->vbuckets));
    json_object_set_new(o, "from", json_string(j->from));
    json_object_set_new(o, "to", json_string(j->to));
    json_object_set_new(o, "phase", json_string(move_phase_name(j->phase)));
    json_object_set_new(o, "active", json_boolean(move_phase_active(j->phase)));
    json_object_set_new(o, "rows", json_integer((json_int_t)j->rows));
    json_object_set_new(o, "started_ms", json_integer((json_int_t)j->started_ms));
    json_object_set_new(o, "updated_ms", json_integer((json_int_t)j->updated_ms));
    if (j->error[0])
        json_object_set_new(o, "error", json_string(j->error));
    return o;
}

static int by_started_desc(const void *x, const void *y)
{
    json_int_t a = json_integer_value(json_object_get(*(json_t *const *)x, "started_ms"));
    json_int_t b = json_integer_value(json_object_get(*(json_t *const *)y, "started_ms"));

    return a < b ? 1 : a > b ? -1 : 0;
}

/* The move journals, newest first, at most CLUSTERVIEW_MOVES_MAX. A
 * journal that does not parse is skipped (shardctl moves names it). */
static enum zkstore_rc moves_json(struct zkstore_admin *za, json_t **out, char **errp)
{
    char **names = NULL;
    unsigned n = 0;
    enum zkstore_rc rc = zkstore_admin_node_list(za, MOVES_DIR, &names, &n, errp);
    json_t **all, *arr;

    *out = NULL;
    if (rc != ZKSTORE_OK)
        return rc;
    all = calloc(n + 1, sizeof(*all));
    arr = json_array();
    for (unsigned i = 0; all && arr && rc == ZKSTORE_OK && i < n; i++) {
        char *text = NULL, *perr = NULL;
        int32_t version;
        struct move_journal j;

        /* (no text: removed since the listing) */
        rc = zkstore_admin_node_get(za, MOVES_DIR, names[i], &text, &version, errp);
        if (rc == ZKSTORE_OK && text && move_journal_parse(text, strlen(text), &j, &perr) == 0)
            all[i] = move_json(names[i], &j);
        free(perr);
        free(text);
    }
    if (rc == ZKSTORE_OK && all && arr) {
        unsigned k = 0;

        for (unsigned i = 0; i < n; i++)
            if (all[i])
                all[k++] = all[i];
        qsort(all, k, sizeof(*all), by_started_desc);
        for (unsigned i = 0; i < k; i++) {
            if (i < CLUSTERVIEW_MOVES_MAX)
                json_array_append(arr, all[i]);
            json_decref(all[i]);
        }
        *out = arr;
    } else {
        for (unsigned i = 0; all && i < n; i++)
            json_decref(all[i]);
        json_decref(arr);
        if (rc == ZKSTORE_OK)
            rc = ZKSTORE_ERROR;
    }
    free(all);
    zkstore_names_free(names, n);
    return rc;
}

/* Reads the whole view. Returns ZKSTORE_OK with *<out>, or another code
 * with a malloc'd *<errp>. */
static enum zkstore_rc read_view(struct clusterview *cv, json_t **out, char **errp)
{
    struct zkstore_router *rs = NULL;
    unsigned n = 0;
    char coord[ZKSTORE_ROUTER_ID_MAX] = "", *hist = NULL;
    json_t *v = json_object(), *shards = json_object(), *moves = NULL;
    struct smap *m;
    enum zkstore_rc rc;

    *out = NULL;
    rc = zkstore_admin_routers(cv->za, &rs, &n, errp);
    if (rc == ZKSTORE_OK)
        rc = zkstore_admin_coordinator(cv->za, coord, sizeof(coord), errp);
    if (rc == ZKSTORE_OK)
        rc = zkstore_admin_history_get(cv->za, &hist, errp);
    pthread_mutex_lock(&cv->r->map_lock);
    m = cv->r->map ? smap_ref(cv->r->map) : NULL;
    pthread_mutex_unlock(&cv->r->map_lock);
    for (unsigned i = 0; m && rc == ZKSTORE_OK && i < smap_n_shards(m); i++) {
        struct journal j;
        json_t *o;

        if (journal_read(cv->za, smap_shard(m, i)->name, &j, errp) < 0) {
            rc = ZKSTORE_ERROR;
            break;
        }
        /* the term also for a shard that never failed over (0) */
        o = mapjson_journal(&j);
        json_object_set_new(o, "term", json_integer((json_int_t)j.term));
        json_object_set_new(shards, smap_shard(m, i)->name, o);
    }
    smap_unref(m);
    if (rc == ZKSTORE_OK)
        rc = moves_json(cv->za, &moves, errp);
    if (rc == ZKSTORE_OK && v && shards && moves) {
        json_object_set_new(v, "read_ms", json_integer((json_int_t)wall_ms()));
        json_object_set_new(v, "coordinator", coord[0] ? json_string(coord) : json_null());
        json_object_set_new(v, "routers", routers_json(rs, n));
        json_object_set_new(v, "shards", shards);
        json_object_set_new(v, "history", mapjson_lines(hist));
        json_object_set_new(v, "moves", moves);
        *out = v;
        v = shards = moves = NULL;
    } else if (rc == ZKSTORE_OK) {
        rc = ZKSTORE_ERROR;
        *errp = strdup("out of memory");
    }
    json_decref(v);
    json_decref(shards);
    json_decref(moves);
    free(hist);
    zkstore_routers_free(rs, n);
    return rc;
}

static void round_once(struct clusterview *cv)
{
    const struct config *cfg = cv->r->cfg;
    const struct zkauth *auth = cfg->have_failover_zk_auth ? &cfg->failover_zk_auth
                                : cfg->have_zk_auth      ? &cfg->zk_auth
                                                         : NULL;
    char *err = NULL;
    json_t *v = NULL;
    enum zkstore_rc rc = ZKSTORE_OK;

    if (!cv->za)
        rc = zkstore_admin_connect(cfg->zookeeper, cfg->zk_root, auth, 3000, &cv->za, &err);
    if (rc == ZKSTORE_OK)
        rc = read_view(cv, &v, &err);
    if (rc == ZKSTORE_UNREACHABLE && cv->za) {
        zkstore_admin_free(cv->za);
        cv->za = NULL;
    }
    pthread_mutex_lock(&cv->lock);
    if (v) {
        json_decref(cv->view);
        cv->view = v;
    } else {
        json_object_set_new(cv->view, "error",
                            json_string(err ? err : zkstore_rc_name(rc)));
    }
    pthread_mutex_unlock(&cv->lock);
    if (!v)
        log_debug("clusterview: %s", err ? err : zkstore_rc_name(rc));
    free(err);
}

static bool wait_interval(struct clusterview *cv)
{
    struct timespec ts;
    bool stop;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += CLUSTERVIEW_INTERVAL_MS % 1000 * 1000000L;
    ts.tv_sec += CLUSTERVIEW_INTERVAL_MS / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&cv->lock);
    if (!cv->stopping)
        pthread_cond_timedwait(&cv->cond, &cv->lock, &ts);
    stop = cv->stopping;
    pthread_mutex_unlock(&cv->lock);
    return !stop;
}

static void *clusterview_main(void *arg)
{
    struct clusterview *cv = arg;

    do
        round_once(cv);
    while (wait_interval(cv));
    zkstore_admin_free(cv->za);
    cv->za = NULL;
    return NULL;
}

struct clusterview *clusterview_start(struct router *r, char **errp)
{
    struct clusterview *cv = calloc(1, sizeof(*cv));

    *errp = NULL;
    if (!cv || !(cv->view = json_pack("{s:I}", "read_ms", (json_int_t)0))) {
        free(cv);
        *errp = strdup("cluster view: out of memory");
        return NULL;
    }
    cv->r = r;
    pthread_mutex_init(&cv->lock, NULL);
    pthread_cond_init(&cv->cond, NULL);
    if (pthread_create(&cv->thread, NULL, clusterview_main, cv) != 0) {
        json_decref(cv->view);
        pthread_mutex_destroy(&cv->lock);
        pthread_cond_destroy(&cv->cond);
        free(cv);
        *errp = strdup("cluster view: cannot start its thread");
        return NULL;
    }
    return cv;
}

void clusterview_stop(struct clusterview *cv)
{
    if (!cv)
        return;
    pthread_mutex_lock(&cv->lock);
    cv->stopping = true;
    pthread_cond_signal(&cv->cond);
    pthread_mutex_unlock(&cv->lock);
    pthread_join(cv->thread, NULL);
    json_decref(cv->view);
    pthread_mutex_destroy(&cv->lock);
    pthread_cond_destroy(&cv->cond);
    free(cv);
}

json_t *clusterview_get(struct clusterview *cv)
{
    json_t *c;

    pthread_mutex_lock(&cv->lock);
    c = json_deep_copy(cv->view);
    pthread_mutex_unlock(&cv->lock);
    return c;
}
