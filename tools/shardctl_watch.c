/*
 * tools/shardctl_watch.c - `shardctl watch`: follow the map the way a router
 * does (the same zkstore watch thread), printing one line per event until
 * SIGINT/SIGTERM. For operators checking propagation, and for the e2e tests
 * of the router-side ZooKeeper code (reconnects, expiry, registration).
 *
 *   state connected|disconnected|expired
 *   map version=<n> shards=<name>=<master>,...
 *   log error|warn|info <message>
 *   contact_age_ms=<n> state=<state>        (on SIGUSR1)
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shardmap/smap.h"
#include "shardmap/zkstore.h"
#include "tools/shardctl.h"

struct watch {
    struct zkstore            *zs;
    const struct shardctl_opts *o;
    pthread_mutex_t            mu;     /* guards stdout lines and <maps> */
    unsigned                   maps;
};

static const char *state_name(enum zkstore_state s)
{
    switch (s) {
    case ZKSTORE_CONNECTED:    return "connected";
    case ZKSTORE_DISCONNECTED: return "disconnected";
    case ZKSTORE_EXPIRED:      return "expired";
    }
    return "?";
}

/* <version> NULL: no map yet. */
static void register_me(struct watch *w, const uint64_t *version)
{
    char payload[128], v[24] = "none";
    char *err = NULL;
    if (w->o->argc < 1 || w->zs == NULL)
        return;
    if (version != NULL)
        snprintf(v, sizeof(v), "%" PRIu64, *version);
    snprintf(payload, sizeof(payload), "map_version=%s pid=%ld", v, (long)getpid());
    if (zkstore_register(w->zs, w->o->argv[0], payload, &err) < 0) {
        shardctl_err("watch: %s", err);
        free(err);
    }
}

static void on_map(struct smap *m, void *arg)
{
    struct watch *w = arg;
    pthread_mutex_lock(&w->mu);
    printf("map version=%" PRIu64 " shards=", smap_version(m));
    for (unsigned i = 0; i < smap_n_shards(m); i++) {
        char ep[SMAP_ENDPOINT_STR_MAX];
        smap_format_endpoint(&smap_shard(m, i)->master, ep, sizeof(ep));
        printf("%s%s=%s", i ? "," : "", smap_shard(m, i)->name, ep);
    }
    putchar('\n');
    fflush(stdout);
    w->maps++;
    pthread_mutex_unlock(&w->mu);
    uint64_t v = smap_version(m);
    register_me(w, &v);
    smap_unref(m);
}

static void on_state(enum zkstore_state st, void *arg)
{
    struct watch *w = arg;
    pthread_mutex_lock(&w->mu);
    printf("state %s\n", state_name(st));
    fflush(stdout);
    pthread_mutex_unlock(&w->mu);
}

static void on_log(enum zkstore_log_level lvl, const char *msg, void *arg)
{
    struct watch *w = arg;
    static const char *names[] = { "error", "warn", "info" };
    pthread_mutex_lock(&w->mu);
    printf("log %s %s\n", names[lvl], msg);
    fflush(stdout);
    pthread_mutex_unlock(&w->mu);
}

int shardctl_watch(const struct shardctl_opts *o)
{
    static struct watch w;
    sigset_t set;
    char *err = NULL;

    if (o->argc > 1) {
        shardctl_err("usage: watch [ROUTER_ID]");
        return SHARDCTL_USAGE;
    }
    w.o = o;
    pthread_mutex_init(&w.mu, NULL);
    /* Block the signals before zkstore starts its threads so only
     * sigtimedwait() below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct zkstore_callbacks cb = { .on_map = on_map, .on_state = on_state, .on_log = on_log };
    /* zkstore calls back from its own thread; w.zs is read there only
     * after the first map, which cannot arrive before this assignment is
     * visible (the lock in on_map orders it). */
    pthread_mutex_lock(&w.mu);
    w.zs = zkstore_new(o->zk, o->root, o->auth, &cb, &w, &err);
    pthread_mutex_unlock(&w.mu);
    if (w.zs == NULL) {
        shardctl_err("watch: %s", err);
        free(err);
        return SHARDCTL_USAGE;
    }
    if (o->argc == 1) {
        /* register before any map arrives, so a router-less cluster shows it */
        register_me(&w, NULL);
    }
    for (;;) {
        struct timespec ts = { 0, 200 * 1000 * 1000 };
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM)
            break;
        if (sig == SIGUSR1) {
            uint64_t last = zkstore_last_contact_ms(w.zs);
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            uint64_t now_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
            pthread_mutex_lock(&w.mu);
            if (last == 0)
                printf("contact_age_ms=never state=%s\n", state_name(zkstore_state(w.zs)));
            else
                printf("contact_age_ms=%" PRIu64 " state=%s\n", now_ms - last,
                       state_name(zkstore_state(w.zs)));
            fflush(stdout);
            pthread_mutex_unlock(&w.mu);
        }
    }
    zkstore_free(w.zs);
    pthread_mutex_destroy(&w.mu);
    return SHARDCTL_OK;
}
