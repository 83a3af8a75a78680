/*
 * router/mapwatch.c - map file and ZooKeeper map sources, cache file,
 * router registration.
 *
 * zkstore callbacks run on zkstore's thread: they validate, write the cache
 * and post the map to the workers; they never touch worker state.
 */
#include "router/mapwatch.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "router/config.h"
#include "router/fault.h"
#include "router/leasepeer.h"
#include "router/control.h"
#include "router/log.h"
#include "router/session.h"
#include "router/util.h"
#include "router/worker.h"
#include "shardmap/mapcache.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"

struct mapwatch {
    struct router  *r;
    struct zkstore *zs;
    char            router_id[ZKSTORE_ROUTER_ID_MAX];
    pthread_mutex_t lock;
    pthread_cond_t  first_cond;
    struct smap    *first;         /* guarded by lock until attached */
    bool            attached;      /* workers exist: publish at once */
    uint64_t        version;       /* in use (guarded by lock) */
    uint64_t        last_warn_ms;
    uint64_t        last_register_ms;
    uint64_t        health_gen;
    uint64_t        started_ms;     /* for mapwatch_silence_ms() before any contact */     /* control_generation() last published (main thread) */
    bool            from_cache;    /* serving a map read from the cache file */
    uint64_t        ack_version;   /* a move's freeze acknowledged at this map version
                                      (guarded by lock; 0: none yet) */
    uint64_t        registered_version;   /* map_version= last written (guarded by lock) */
    uint64_t        frozen_since_ms;   /* main thread: first seen the freeze being waited on */
    uint64_t        frozen_version;
    uint64_t        last_cut_ms;       /* main thread: cuts last posted for this freeze (0: none) */
    uint64_t        freeze_read_ms;    /* a freezing map: when its read began and how */
    uint64_t        freeze_cache_ms;   /* long its cache write took (guarded by lock) */
};

/* Two maps must agree on what a key is: analyzers were built for the first. */
static bool same_key_settings(const struct smap *a, const struct smap *b)
{
    const struct smap_key *x = smap_key_config(a), *y = smap_key_config(b);

    if (smap_n_vbuckets(a) != smap_n_vbuckets(b) || x->key_type != y->key_type ||
        x->n_key_columns != y->n_key_columns)
        return false;
    for (unsigned i = 0; i < x->n_key_columns; i++)
        if (strcmp(x->key_columns[i], y->key_columns[i]) != 0)
            return false;
    return true;
}

int mapwatch_publish(struct router *r, struct smap *m)
{
    pthread_mutex_lock(&r->map_lock);
    if (r->map && smap_version(m) < smap_version(r->map)) {
        uint64_t running = smap_version(r->map);

        pthread_mutex_unlock(&r->map_lock);
        log_warn("map: version=%" PRIu64 " is older than version=%" PRIu64
                 " in use; not applied", smap_version(m), running);
        smap_unref(m);
        return -1;
    }
    smap_unref(r->map);
    r->map = smap_ref(m);
    atomic_store(&r->map_since_ms, now_ms());
    pthread_mutex_unlock(&r->map_lock);
    /* Another thread may publish a newer map between the unlock and these
     * posts; workers drop a map older than theirs, so order does not matter. */
    for (unsigned i = 0; i < r->n_workers; i++)
        worker_set_map(r->workers[i], smap_ref(m));
    /* a freeze is acknowledged as soon as the workers route by it and
     * nothing is left on its vbuckets: the main thread looks now */
    struct event *fe = atomic_load(&r->freeze_ev);
    if (fe && smap_n_frozen(m) > 0)
        event_active(fe, EV_TIMEOUT, 1);
    log_info("map: in use version=%" PRIu64 " shards=%u vbuckets=%u", smap_version(m),
             smap_n_shards(m), smap_n_vbuckets(m));
    smap_unref(m);
    return 0;
}

static void write_cache(struct mapwatch *mw, const struct smap *m)
{
    const char *path = mw->r->cfg->map_cache;
    char *err = NULL;

    if (!path)
        return;
    if (mapcache_store(path, m, &err) < 0) {
        log_warn("map: cannot write cache file path=%s: %s", path, err);
        free(err);
    }
}

/* The registration: one line of key=value words, then the control
 * thread's health view, one "health ..." line per server (control.h), so
 * that shardctl and the other routers see what this router sees. */
static void registration(struct mapwatch *mw)
{
    const struct config *cfg = mw->r->cfg;
    uint64_t last = zkstore_last_contact_ms(mw->zs), now = now_ms();
    char head[512], *payload, *err = NULL;
    size_t hn, cap, hl = 0;
    uint64_t version;

    uint64_t ack;

    pthread_mutex_lock(&mw->lock);
    version = mw->version;
    ack = mw->ack_version;
    pthread_mutex_unlock(&mw->lock);
    hn = (size_t)snprintf(head, sizeof(head),
                          "address=%s:%u map_version=%" PRIu64 " map_age_ms=%" PRIu64
                          " pid=%ld lease_ms=%u frozen_ack=%" PRIu64 "%s%s",
                          cfg->listen_host, cfg->listen_port, version, last ? now - last : 0,
                          (long)getpid(), cfg->map_lease_ms, ack, cfg->admin_listen ? " admin=" : "",
                          cfg->admin_listen ? cfg->admin_listen : "");
    if (hn >= sizeof(head))
        hn = sizeof(head) - 1;
    cap = hn + 1;
    if (mw->r->control)
        hl = control_status(mw->r->control, NULL, 0, "health ");
    payload = malloc(cap + hl + 1);
    if (!payload) {
        log_error("map: cannot register router id=%s: out of memory", mw->router_id);
        return;
    }
    memcpy(payload, head, hn + 1);
    if (hl) {
        payload[hn] = '\n';
        control_status(mw->r->control, payload + hn + 1, hl + 1, "health ");
        /* no trailing newline */
        if (payload[hn + hl] == '\n')
            payload[hn + hl] = 0;
    }
    if (zkstore_register(mw->zs, mw->router_id, payload, &err) < 0) {
        log_error("map: cannot register router id=%s: %s", mw->router_id, err);
        free(err);
    }
    free(payload);
    pthread_mutex_lock(&mw->lock);
    mw->last_register_ms = now;
    if (version > mw->registered_version)
        mw->registered_version = version;
    pthread_mutex_unlock(&mw->lock);
}

/* True when every vbucket <next> freezes is frozen in <cur> too: a router
 * restarted from a cache file that still holds <cur> holds at least what
 * <next> holds (another move's freeze must be in the cache before it is
 * acknowledged). */
static bool freezes_nothing_new(const struct smap *cur, const struct smap *next)
{
    if (smap_n_vbuckets(cur) != smap_n_vbuckets(next))
        return false;
    for (uint32_t vb = 0; vb < smap_n_vbuckets(next); vb++)
        if (smap_vbucket_state(next, vb) != SMAP_VB_NORMAL &&
            smap_vbucket_state(cur, vb) == SMAP_VB_NORMAL)
            return false;
    return true;
}

static void zk_on_map(struct smap *m, void *arg)
{
    struct mapwatch *mw = arg;

    pthread_mutex_lock(&mw->lock);
    if (mw->first && !same_key_settings(mw->first, m)) {
        pthread_mutex_unlock(&mw->lock);
        log_error("map: version=%" PRIu64 " changes the cluster settings (vbuckets or "
                  "key columns); refused, keeping version=%" PRIu64,
                  smap_version(m), mw->version);
        smap_unref(m);
        return;
    }
    mw->version = smap_version(m);
    mw->from_cache = false;
    if (!mw->attached) {
        smap_unref(mw->first);
        mw->first = smap_ref(m);
        pthread_cond_broadcast(&mw->first_cond);
        pthread_mutex_unlock(&mw->lock);
        write_cache(mw, m);
        smap_unref(m);
        return;
    }
    pthread_mutex_unlock(&mw->lock);
    /* The cache file is written before a map is used, so a router that
     * restarts from it never routes by a map older than one it has used;
     * except when the map in use freezes vbuckets (a move's cutover) and
     * the new one freezes no others: then the new map goes to work first,
     * because statements wait for it, and a restart from the cache (with
     * the freeze) holds them again. */
    pthread_mutex_lock(&mw->r->map_lock);
    bool leaving_freeze = mw->r->map && smap_n_frozen(mw->r->map) > 0 &&
                          freezes_nothing_new(mw->r->map, m);
    pthread_mutex_unlock(&mw->r->map_lock);
    bool freezing = smap_n_frozen(m) > 0;
    uint64_t t_cache = now_ms();
    if (leaving_freeze) {
        smap_ref(m);
        mapwatch_publish(mw->r, m);
        write_cache(mw, m);
        smap_unref(m);
    } else {
        write_cache(mw, m);
        if (freezing) {
            pthread_mutex_lock(&mw->lock);
            mw->freeze_read_ms = t_cache;
            mw->freeze_cache_ms = now_ms() - t_cache;
            pthread_mutex_unlock(&mw->lock);
        }
        mapwatch_publish(mw->r, m);
    }
    /* A map that freezes vbuckets is registered by its acknowledgement,
     * milliseconds from now (one ZooKeeper write instead of two in a row
     * while statements wait); mapwatch_tick() registers it if that is late. */
    if (!freezing)
        registration(mw);
}

static void zk_on_state(enum zkstore_state st, void *arg)
{
    struct mapwatch *mw = arg;

    switch (st) {
    case ZKSTORE_CONNECTED:
        log_info("zookeeper: connected; watching the map");
        break;
    case ZKSTORE_DISCONNECTED:
        log_warn("zookeeper: connection lost; serving on map version=%" PRIu64
                 " while reconnecting", mw->version);
        break;
    case ZKSTORE_EXPIRED:
        log_warn("zookeeper: session expired; recreating it, re-registering");
        break;
    }
}

static void zk_on_log(enum zkstore_log_level level, const char *msg, void *arg)
{
    (void)arg;
    switch (level) {
    case ZKSTORE_LOG_ERROR: log_error("zookeeper: %s", msg); break;
    case ZKSTORE_LOG_WARN:  log_warn("zookeeper: %s", msg); break;
    default:                log_info("zookeeper: %s", msg); break;
    }
}

static void zk_lib_log(const char *msg)
{
    log_warn("zookeeper-client: %s", msg);
}

/* Router ids are ZooKeeper node names: host name and port, cleaned. */
static void make_router_id(struct mapwatch *mw)
{
    const struct config *cfg = mw->r->cfg;
    char host[128] = "router";
    size_t n;

    if (cfg->router_id) {
        snprintf(mw->router_id, sizeof(mw->router_id), "%s", cfg->router_id);
        return;
    }
    gethostname(host, sizeof(host) - 1);
    snprintf(mw->router_id, sizeof(mw->router_id), "%s-%u", host, cfg->listen_port);
    n = strlen(mw->router_id);
    for (size_t i = 0; i < n; i++) {
        char c = mw->router_id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || (c == '.' && i > 0)))
            mw->router_id[i] = '_';
    }
}

struct mapwatch *mapwatch_start(struct router *r, char **errp)
{
    const struct config *cfg = r->cfg;
    struct mapwatch *mw = calloc(1, sizeof(*mw));
    static const struct zkstore_callbacks cb = { zk_on_map, zk_on_state, zk_on_log };
    struct timespec deadline;
    char *err = NULL;

    if (!mw) {
        *errp = strdup("out of memory");
        return NULL;
    }
    mw->r = r;
    mw->started_ms = now_ms();
    pthread_mutex_init(&mw->lock, NULL);
    pthread_cond_init(&mw->first_cond, NULL);
    if (cfg->map_file) {
        mw->first = mapcache_load(cfg->map_file, errp);
        if (!mw->first) {
            mapwatch_free(mw);
            return NULL;
        }
        mw->version = smap_version(mw->first);
        return mw;
    }
    make_router_id(mw);
    if (smap_check_name(mw->router_id, &err) < 0) {
        if (asprintf(errp, "router_id '%s': %s", mw->router_id, err) < 0)
            *errp = NULL;
        free(err);
        mapwatch_free(mw);
        return NULL;
    }
    zkstore_library_log(zk_lib_log, 0);
    mw->zs = zkstore_new(cfg->zookeeper, cfg->zk_root, cfg->have_zk_auth ? &cfg->zk_auth : NULL,
                         &cb, mw, errp);
    if (!mw->zs) {
        mapwatch_free(mw);
        return NULL;
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += cfg->zk_start_timeout_ms / 1000;
    deadline.tv_nsec += (long)(cfg->zk_start_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mw->lock);
    while (!mw->first) {
        if (pthread_cond_timedwait(&mw->first_cond, &mw->lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&mw->lock);
    if (mw->first)
        return mw;
    /* ZooKeeper did not give us a map in time: the cache file may. */
    if (cfg->map_cache) {
        struct smap *m = mapcache_load(cfg->map_cache, &err);

        if (m) {
            log_warn("map: ZooKeeper %s gave no map within %u ms; serving cached version=%"
                     PRIu64 " from %s until it does", cfg->zookeeper, cfg->zk_start_timeout_ms,
                     smap_version(m), cfg->map_cache);
            pthread_mutex_lock(&mw->lock);
            if (!mw->first) {
                mw->first = m;
                mw->version = smap_version(m);
                mw->from_cache = true;
                m = NULL;
            }
            pthread_mutex_unlock(&mw->lock);
            smap_unref(m);
            return mw;
        }
        if (asprintf(errp, "ZooKeeper %s gave no map within %u ms, and the cache file "
                           "cannot be used: %s", cfg->zookeeper, cfg->zk_start_timeout_ms,
                     err) < 0)
            *errp = NULL;
        free(err);
    } else if (asprintf(errp, "ZooKeeper %s gave no map within %u ms (is the cluster "
                              "initialised? shardctl init), and no map_cache is configured",
                        cfg->zookeeper, cfg->zk_start_timeout_ms) < 0) {
        *errp = NULL;
    }
    mapwatch_free(mw);
    return NULL;
}

struct smap *mapwatch_first_map(struct mapwatch *mw)
{
    struct smap *m;

    pthread_mutex_lock(&mw->lock);
    m = smap_ref(mw->first);
    pthread_mutex_unlock(&mw->lock);
    return m;
}

void mapwatch_attach(struct mapwatch *mw)
{
    struct smap *m;

    pthread_mutex_lock(&mw->lock);
    mw->attached = true;
    m = smap_ref(mw->first);
    /* A map that arrived between start and now is mw->first too. One that
     * arrives from here on is published by the ZooKeeper thread, maybe
     * before this one: publish and the workers drop the older. */
    pthread_mutex_unlock(&mw->lock);
    fault_delay("attach_publish", 3000);
    mapwatch_publish(mw->r, m);
    if (mw->zs)
        registration(mw);
}

void mapwatch_reload(struct mapwatch *mw)
{
    const struct config *cfg = mw->r->cfg;
    char *err = NULL;
    struct smap *m;
    uint64_t version;

    if (!cfg->map_file) {
        log_info("map: SIGHUP ignored: the map comes from ZooKeeper");
        return;
    }
    m = mapcache_load(cfg->map_file, &err);
    if (!m) {
        log_error("map: reload failed, keeping version=%" PRIu64 ": %s", mw->version, err);
        free(err);
        return;
    }
    if (!same_key_settings(mw->first, m)) {
        log_error("map: reload refused: version=%" PRIu64 " changes vbuckets or key columns",
                  smap_version(m));
        smap_unref(m);
        return;
    }
    version = smap_version(m);
    if (mapwatch_publish(mw->r, m) < 0)
        log_error("map: reload refused: the file's version is older than the one in use");
    else
        mw->version = version;
}

void mapwatch_tick(struct mapwatch *mw)
{
    uint64_t now = now_ms(), last;

    if (!mw->zs)
        return;
    last = zkstore_last_contact_ms(mw->zs);
    if (last && now - last > ZKSTORE_SESSION_TIMEOUT_MS && now - mw->last_warn_ms > 10000) {
        log_warn("map: ZooKeeper silent for %" PRIu64 " ms; serving on map version=%" PRIu64
                 " which may be stale", now - last, mw->version);
        mw->last_warn_ms = now;
    }
    pthread_mutex_lock(&mw->lock);
    last = mw->last_register_ms;
    bool unregistered = mw->registered_version < mw->version;
    pthread_mutex_unlock(&mw->lock);
    /* The health view goes out within a tick of changing; otherwise the
     * registration is refreshed every 5 s (map age); a map version not yet
     * registered (a freeze not acknowledged yet) goes out now. */
    if (now - last >= 5000 || unregistered ||
        (mw->r->control && control_generation(mw->r->control) != mw->health_gen)) {
        if (mw->r->control)
            mw->health_gen = control_generation(mw->r->control);
        registration(mw);
    }
}

bool mapwatch_freeze_tick(struct mapwatch *mw)
{
    struct router *r = mw->r;
    struct smap *m;
    uint64_t v, acked, now;
    bool pending = true;

    if (!mw->zs)
        return false;
    pthread_mutex_lock(&r->map_lock);
    m = r->map ? smap_ref(r->map) : NULL;
    pthread_mutex_unlock(&r->map_lock);
    if (!m)
        return false;
    v = smap_version(m);
    pthread_mutex_lock(&mw->lock);
    acked = mw->ack_version;
    pthread_mutex_unlock(&mw->lock);
    if (smap_n_frozen(m) == 0 || acked >= v) {
        pending = false;
        goto out;
    }
    /* Every worker must route by this map (holding new statements for the
     * frozen vbuckets) before the counts can say that nothing is left: a
     * count is raised in the same callback that read the worker's map. */
    for (unsigned i = 0; i < r->n_workers; i++)
        if (atomic_load(&r->workers[i]->map_version) < v)
            goto out;
    now = now_ms();
    if (mw->frozen_version != v) {
        mw->frozen_version = v;
        mw->frozen_since_ms = now;
        mw->last_cut_ms = 0;
    }
    if (!vbtrack_quiet(&r->vbt, m)) {
        /* Past move_drain_ms what is still on the frozen vbuckets is ended
         * by the workers that own it (session_move_cut()); asked again each
         * second while something is left (a message that could not be
         * posted, a session between two states). */
        if (now - mw->frozen_since_ms > r->cfg->move_drain_ms &&
            (!mw->last_cut_ms || now - mw->last_cut_ms >= 1000)) {
            log_warn("move: transactions on frozen vbuckets still running after %" PRIu64
                     " ms (move_drain_ms %u); ending them map_version=%" PRIu64,
                     now - mw->frozen_since_ms, r->cfg->move_drain_ms, v);
            for (unsigned i = 0; i < r->n_workers; i++) {
                uint64_t *arg = malloc(sizeof(*arg));

                if (arg)
                    *arg = v;
                if (!arg || worker_post(r->workers[i], session_move_cut, arg) < 0) {
                    free(arg);
                    log_error("move: cannot post the cut to worker=%u (out of memory)", i);
                }
            }
            mw->last_cut_ms = now;
        }
        goto out;
    }
    pthread_mutex_lock(&mw->lock);
    mw->ack_version = v;
    pthread_mutex_unlock(&mw->lock);
    pthread_mutex_lock(&mw->lock);
    uint64_t read_ms = mw->freeze_read_ms, cache_ms = mw->freeze_cache_ms;
    pthread_mutex_unlock(&mw->lock);
    log_info("move: freeze acknowledged map_version=%" PRIu64 " frozen=%u after_ms=%" PRIu64
             " cache_write_ms=%" PRIu64 " since_map_ms=%" PRIu64 "%s", v, smap_n_frozen(m),
             now - mw->frozen_since_ms, cache_ms, read_ms && now > read_ms ? now - read_ms : 0,
             mw->last_cut_ms ? " (after cutting what outlived move_drain_ms)" : "");
    registration(mw);
    pending = false;
out:
    smap_unref(m);
    return pending;
}

const char *mapwatch_router_id(struct mapwatch *mw)
{
    return mw->router_id;
}

const char *mapwatch_zk_state(struct mapwatch *mw)
{
    if (!mw || !mw->zs)
        return "none";
    switch (zkstore_state(mw->zs)) {
    case ZKSTORE_CONNECTED:    return "connected";
    case ZKSTORE_DISCONNECTED: return "disconnected";
    case ZKSTORE_EXPIRED:      return "expired";
    }
    return "none";
}

uint64_t mapwatch_silence_ms(struct mapwatch *mw)
{
    uint64_t last, now = now_ms();

    if (!mw || !mw->zs)
        return 0;
    last = zkstore_last_contact_ms(mw->zs);
    if (!last)
        last = mw->started_ms;
    return now > last ? now - last : 0;
}

bool mapwatch_lease_ok(struct mapwatch *mw)
{
    return !mw || !mw->zs || mapwatch_silence_ms(mw) <= mw->r->cfg->map_lease_ms ||
           leasepeer_confirmed(mw->r->leasepeer);
}

char *mapwatch_peers(struct mapwatch *mw)
{
    return mw && mw->zs ? zkstore_peers(mw->zs) : NULL;
}

void mapwatch_free(struct mapwatch *mw)
{
    if (!mw)
        return;
    zkstore_free(mw->zs);
    smap_unref(mw->first);
    pthread_cond_destroy(&mw->first_cond);
    pthread_mutex_destroy(&mw->lock);
    free(mw);
}
