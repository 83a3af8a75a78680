/*
 * shardmap/zkstore_watch.c - the router side of the map in ZooKeeper
 * (struct zkstore, zkstore.h): a background thread that keeps a watch,
 * survives connection loss and session expiry, hands over every new valid
 * map and keeps the router's registration.
 *
 * Threads: the ZooKeeper client runs its own I/O and completion threads;
 * its watcher callbacks here only set flags under zs->mu and signal. All
 * blocking work (reads, registration, recreating an expired handle) runs on
 * zkstore's own thread, because synchronous calls made from the completion
 * thread would wait on themselves and zookeeper_close() must never run
 * inside a watcher. Never logs: messages go to the caller's callbacks.
 */
#include "shardmap/zkstore_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/errmsg.h"
#include "shardmap/smap.h"
#include "shardmap/zkauth.h"

#define PING_INTERVAL_MS  1000    /* cheap exists() to time our contact */
#define RETRY_MS          500     /* after a failed read/registration */
#define TICK_MS           250     /* the thread's longest sleep */
#define PEERS_INTERVAL_MS 5000    /* re-reading the other routers' registrations */

/* ---- router side --------------------------------------------------------- */

struct zkstore {
    char                    *hosts;
    char                    *root;
    struct zkauth            auth;
    bool                     have_auth;      /* send <auth> on every session */
    struct zkstore_callbacks cb;
    void                    *arg;
    pthread_t                thread;
    pthread_mutex_t          mu;
    pthread_cond_t           cond;

    /* under mu */
    zhandle_t               *zh;             /* only zkstore's thread creates/closes it */
    bool                     stop;
    bool                     connected;
    bool                     expired;        /* handle dead: recreate */
    bool                     reload;         /* read the map again */
    bool                     reg_dirty;      /* (re)write our router node */
    char                    *reg_id;         /* NULL until zkstore_register() */
    char                    *reg_payload;
    char                    *peers;          /* "ID ADMIN\n" per other router (or NULL) */
    _Atomic bool             want_peers;     /* zkstore_peers() was called: keep it fresh */

    /* any thread */
    _Atomic uint64_t         last_contact_ms;
    _Atomic int              state;          /* enum zkstore_state */

    /* zkstore's thread only */
    bool                     have_map;
    uint64_t                 map_version;    /* of the last map handed to on_map */
    char                    *last_problem;   /* last message logged, to log each once */
};

static void zs_log(struct zkstore *zs, enum zkstore_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void zs_log(struct zkstore *zs, enum zkstore_log_level lvl, const char *fmt, ...)
{
    if (zs->cb.on_log == NULL)
        return;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    zs->cb.on_log(lvl, msg, zs->arg);
    free(msg);
}

/* Logs <msg> unless it repeats the last problem logged (a broken map stays
 * broken across many reconnects; one line is enough). */
static void zs_problem(struct zkstore *zs, enum zkstore_log_level lvl, const char *msg)
{
    if (zs->last_problem != NULL && strcmp(zs->last_problem, msg) == 0)
        return;
    free(zs->last_problem);
    zs->last_problem = strdup(msg);
    zs_log(zs, lvl, "zkstore: %s", msg);
}

/* The global watcher and every data watch: flags only (see file comment). */
static void zs_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    struct zkstore *zs = ctx;
    (void)path;
    pthread_mutex_lock(&zs->mu);
    if (zh != zs->zh) {              /* an event from a handle being replaced */
        pthread_mutex_unlock(&zs->mu);
        return;
    }
    if (type == ZOO_SESSION_EVENT) {
        if (state == ZOO_CONNECTED_STATE) {
            zs->connected = true;
            /* Watches of a surviving session are restored by the client, but
             * re-reading is cheap and covers everything missed meanwhile. */
            zs->reload = true;
            zs->reg_dirty = zs->reg_id != NULL;
            atomic_store(&zs->last_contact_ms, zkr_now_ms());
            atomic_store(&zs->state, ZKSTORE_CONNECTED);
        } else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
            zs->connected = false;
            zs->expired = true;
            atomic_store(&zs->state, ZKSTORE_EXPIRED);
        } else {
            zs->connected = false;
            atomic_store(&zs->state, ZKSTORE_DISCONNECTED);
        }
    } else {
        zs->reload = true;           /* changed, created, deleted, not watching */
    }
    pthread_cond_signal(&zs->cond);
    pthread_mutex_unlock(&zs->mu);
}

static void ping_done(int rc, const struct Stat *stat, const void *data)
{
    struct zkstore *zs = (struct zkstore *)data;
    (void)stat;
    if (rc == ZOK || rc == ZNONODE)
        atomic_store(&zs->last_contact_ms, zkr_now_ms());
}

/* zkstore's thread: replaces the handle (none yet, or expired). */
static void zs_new_handle(struct zkstore *zs)
{
    pthread_mutex_lock(&zs->mu);
    zhandle_t *old = zs->zh;
    zs->zh = NULL;
    zs->connected = false;
    zs->expired = false;
    pthread_mutex_unlock(&zs->mu);
    if (old != NULL)
        zookeeper_close(old);        /* on our own thread, never in a callback */

    pthread_mutex_lock(&zs->mu);
    /* Under mu so that an early watcher event waits until zs->zh is set. */
    zs->zh = zookeeper_init2(zs->hosts, zs_watcher, ZKSTORE_SESSION_TIMEOUT_MS, NULL, zs, 0,
                             zkr_lib_log_cb());
    zhandle_t *zh = zs->zh;
    int err = errno;
    if (zh != NULL && zs->have_auth) {
        /* Kept by the client and sent again on every reconnect, ahead of
         * any request, so every read and write runs as this identity. */
        char cred[sizeof(zs->auth.user) + sizeof(zs->auth.password)];
        zkauth_cred(&zs->auth, cred, sizeof(cred));
        zoo_add_auth(zh, "digest", cred, (int)strlen(cred), NULL, NULL);
        memset(cred, 0, sizeof(cred));
    }
    pthread_mutex_unlock(&zs->mu);
    if (zh == NULL) {
        char msg[256];
        snprintf(msg, sizeof(msg), "cannot create a ZooKeeper handle for '%s': %s; retrying",
                 zs->hosts, strerror(err));
        zs_problem(zs, ZKSTORE_LOG_ERROR, msg);
    }
}

/* zkstore's thread: one map read. Returns false when it should be retried. */
static bool zs_reload(struct zkstore *zs, zhandle_t *zh)
{
    struct smap *m = NULL;
    char *err = NULL;
    enum zkstore_rc rc = zkr_read_map(zh, zs->root, zs_watcher, zs, &m, NULL, &err);
    bool done = true;
    switch (rc) {
    case ZKSTORE_OK:
        atomic_store(&zs->last_contact_ms, zkr_now_ms());
        if (!zs->have_map || smap_version(m) >= zs->map_version) {
            free(zs->last_problem);
            zs->last_problem = NULL;
        }
        if (zs->have_map && smap_version(m) < zs->map_version) {
            /* Versions only grow (every change is a CAS to N+1). An older
             * one comes from a server that lags behind what a previous
             * session saw, or from a cluster re-created or restored from a
             * backup: going back could send writes to a demoted master. */
            char msg[256];
            snprintf(msg, sizeof(msg), "ZooKeeper holds map version %" PRIu64 ", older than "
                     "version %" PRIu64 " in use; ignored (a lagging server, or a re-created "
                     "cluster: restart the router to accept it)", smap_version(m),
                     zs->map_version);
            zs_problem(zs, ZKSTORE_LOG_ERROR, msg);
        } else if (!zs->have_map || smap_version(m) != zs->map_version) {
            zs->have_map = true;
            zs->map_version = smap_version(m);
            zs->cb.on_map(m, zs->arg);         /* hands over our reference */
            m = NULL;
        }
        break;
    case ZKSTORE_INVALID: {
        /* Never half-applied: the old map stays; the watch set by the read
         * brings the next version. */
        char *msg = NULL;
        if (zs->have_map && asprintf(&msg, "invalid map in ZooKeeper, keeping version %"
                                     PRIu64 ": %s", zs->map_version, err) >= 0)
            zs_problem(zs, ZKSTORE_LOG_ERROR, msg);
        else
            zs_problem(zs, ZKSTORE_LOG_ERROR, err);
        free(msg);
        break;
    }
    case ZKSTORE_NO_CLUSTER:
        atomic_store(&zs->last_contact_ms, zkr_now_ms());
        zs_problem(zs, ZKSTORE_LOG_WARN, err);  /* the exists-watch reports creation */
        break;
    case ZKSTORE_NOAUTH: {
        /* Wrong or missing credentials stay wrong: say so once, loudly,
         * and keep retrying (an ACL may be fixed while we run). */
        char *msg = NULL;
        atomic_store(&zs->last_contact_ms, zkr_now_ms());
        if (asprintf(&msg, "%s (%s%s%s); cannot read the map", err,
                     zs->have_auth ? "sent digest credentials of user '" : "sent no credentials",
                     zs->have_auth ? zs->auth.user : "", zs->have_auth ? "'" : "") >= 0)
            zs_problem(zs, ZKSTORE_LOG_ERROR, msg);
        free(msg);
        done = false;
        break;
    }
    default:
        /* connection trouble: the reconnect sets reload again; anything else
         * is retried after RETRY_MS */
        if (rc != ZKSTORE_UNREACHABLE)
            zs_problem(zs, ZKSTORE_LOG_WARN, err);
        done = false;
        break;
    }
    smap_unref(m);
    free(err);
    return done;
}

/* zkstore's thread: creates or updates our ephemeral router node. Returns
 * false when it should be retried. */
static bool zs_register(struct zkstore *zs, zhandle_t *zh)
{
    pthread_mutex_lock(&zs->mu);
    char *id = zs->reg_id ? strdup(zs->reg_id) : NULL;
    char *payload = zs->reg_payload ? strdup(zs->reg_payload) : NULL;
    pthread_mutex_unlock(&zs->mu);
    char *routers = zkr_path(zs->root, "routers", NULL);
    char *path = id ? zkr_path(zs->root, "routers", id) : NULL;
    struct ACL entries[ZKR_REG_ACL_MAX];
    char *ids[ZKR_REG_ACL_MAX];
    struct ACL_vector acl = ZOO_OPEN_ACL_UNSAFE;
    char *acl_text = NULL;
    int acl_len;
    struct Stat pst;
    bool ok = false;
    int zrc = ZSYSTEMERROR;
    if (id == NULL || payload == NULL || routers == NULL || path == NULL)
        goto out;
    int plen = (int)strlen(payload);
    /* In an open cluster a router may start before `shardctl init`: make
     * room for its node. A protected cluster is made by shardctl init only
     * (the router's identity may not create nodes there): until then the
     * registration fails with "no node" and is retried. */
    if (!zs->have_auth) {
        zrc = zkr_create_parents(zh, routers, &ZOO_OPEN_ACL_UNSAFE);
        if (zrc != ZOK)
            goto out;
    }
    /* The registration gets the ACL that shardctl init wrote (see
     * zkr_reg_acl_parse); none written: the cluster is open, and so is it. */
    zrc = zkr_get_node(zh, routers, NULL, NULL, &acl_text, &acl_len, &pst);
    if (zrc != ZOK)
        goto out;
    int n_acl = zkr_reg_acl_parse(acl_text, entries, ids);
    if (n_acl < 0) {
        zrc = ZMARSHALLINGERROR;
        zs_problem(zs, ZKSTORE_LOG_ERROR, "the text of <root>/routers is not a list of "
                   "'acl SCHEME:ID PERMS' lines; cannot register (re-run shardctl init "
                   "on a new root, or repair the node)");
        goto out;
    }
    if (n_acl > 0)
        acl = (struct ACL_vector){ n_acl, entries };
    for (int attempt = 0; attempt < 3; attempt++) {
        struct Stat st;
        zrc = zoo_create(zh, path, payload, plen, &acl, ZOO_EPHEMERAL, NULL, 0);
        if (zrc != ZNODEEXISTS)
            break;
        zrc = zoo_exists(zh, path, 0, &st);
        if (zrc == ZNONODE)
            continue;
        if (zrc != ZOK)
            break;
        const clientid_t *me = zoo_client_id(zh);
        if (me != NULL && st.ephemeralOwner == me->client_id) {
            zrc = zoo_set(zh, path, payload, plen, -1);
            break;
        }
        /* Left by an earlier session of ours that has not expired yet (a
         * restart), or a second router configured with the same id. */
        zs_log(zs, ZKSTORE_LOG_WARN, "zkstore: router node %s belongs to session 0x%" PRIx64
               "; replacing it", path, (uint64_t)st.ephemeralOwner);
        zrc = zoo_delete(zh, path, st.version);
        if (zrc != ZOK && zrc != ZNONODE && zrc != ZBADVERSION)
            break;
    }
    ok = zrc == ZOK;
out:
    free(acl_text);
    if (ok) {
        atomic_store(&zs->last_contact_ms, zkr_now_ms());
    } else if (!zkr_is_connection(zrc)) {
        char msg[ZKR_ROOT_MAX + ZKAUTH_USER_MAX + 192];
        if (zrc == ZNOAUTH)
            snprintf(msg, sizeof(msg), "cannot register router node %s: not authorized: "
                     "the ZooKeeper ACL of %s refuses %s%s%s", path, routers,
                     zs->have_auth ? "digest user '" : "a client without credentials",
                     zs->have_auth ? zs->auth.user : "", zs->have_auth ? "'" : "");
        else if (zrc == ZNONODE && zs->have_auth)
            snprintf(msg, sizeof(msg), "cannot register router node %s: %s does not exist "
                     "(run shardctl init; with credentials the router does not create it)",
                     path, routers);
        else
            snprintf(msg, sizeof(msg), "cannot register router node %s: %s",
                     path ? path : "(out of memory)", zerror(zrc));
        zs_problem(zs, ZKSTORE_LOG_ERROR, msg);
    }
    free(id);
    free(payload);
    free(routers);
    free(path);
    return ok;
}

/* The admin addresses (`admin=H:P` in the first line of a registration)
 * of every router but this one, kept for zkstore_peers(): a router whose
 * lease ran out asks them whether they lost ZooKeeper too. A failed read
 * keeps the last list. zkstore's thread only. */
static void zs_peers(struct zkstore *zs, zhandle_t *zh)
{
    struct String_vector kids = { 0, NULL };
    char *dir = zkr_path(zs->root, "routers", NULL), *out = NULL, *self = NULL;
    size_t len = 0;
    FILE *f;

    if (dir == NULL || zoo_get_children(zh, dir, 0, &kids) != ZOK) {
        free(dir);
        return;
    }
    pthread_mutex_lock(&zs->mu);
    self = zs->reg_id ? strdup(zs->reg_id) : NULL;
    pthread_mutex_unlock(&zs->mu);
    f = open_memstream(&out, &len);
    for (int i = 0; f != NULL && i < kids.count; i++) {
        char *path, *data = NULL, *a, *ad;
        int dlen;
        struct Stat st;
        size_t n, an;

        if (self && strcmp(kids.data[i], self) == 0)
            continue;
        path = zkr_path(dir, kids.data[i], NULL);
        if (path == NULL || zkr_get_node(zh, path, NULL, NULL, &data, &dlen, &st) != ZOK) {
            free(path);
            continue;
        }
        free(path);
        data[strcspn(data, "\n")] = '\0';
        a = strstr(data, " admin=");
        ad = strncmp(data, "address=", 8) == 0 ? data + 8 : NULL;
        if (a && ad) {
            a += 7;
            n = strcspn(a, " ");
            an = strcspn(ad, " ");
            if (n > 0 && n < 200 && an > 0 && an < 200 &&
                strcspn(kids.data[i], " \n") == strlen(kids.data[i]))
                fprintf(f, "%s %.*s %.*s\n", kids.data[i], (int)n, a, (int)an, ad);
        }
        free(data);
    }
    if (f == NULL || fclose(f) != 0) {
        free(out);
        out = NULL;
    }
    deallocate_String_vector(&kids);
    free(dir);
    free(self);
    if (out == NULL)
        return;
    pthread_mutex_lock(&zs->mu);
    free(zs->peers);
    zs->peers = out;
    pthread_mutex_unlock(&zs->mu);
}

static void *zs_thread(void *p)
{
    struct zkstore *zs = p;
    int reported = ZKSTORE_DISCONNECTED;
    uint64_t next_ping = 0, retry_at = 0, handle_at = 0, next_peers = 0;
    bool need_handle = true;

    for (;;) {
        pthread_mutex_lock(&zs->mu);
        uint64_t now = zkr_now_ms();
        bool due = now >= retry_at;
        if (!zs->stop && !zs->expired && !(need_handle && now >= handle_at) &&
            atomic_load(&zs->state) == reported &&
            !(zs->connected && due && (zs->reload || zs->reg_dirty)) &&
            !(zs->connected && now >= next_ping)) {
            struct timespec ts = zkr_deadline_in(TICK_MS);
            pthread_cond_timedwait(&zs->cond, &zs->mu, &ts);
        }
        now = zkr_now_ms();
        due = now >= retry_at;
        bool stop = zs->stop, expired = zs->expired, connected = zs->connected;
        bool reload = connected && due && zs->reload;
        bool reg = connected && due && zs->reg_dirty;
        if (reload)
            zs->reload = false;
        if (reg)
            zs->reg_dirty = false;
        zhandle_t *zh = zs->zh;
        int state = atomic_load(&zs->state);
        pthread_mutex_unlock(&zs->mu);

        if (stop)
            break;
        if (state != reported) {
            reported = state;
            if (state == ZKSTORE_EXPIRED)
                zs_log(zs, ZKSTORE_LOG_WARN, "zkstore: session expired; recreating handle");
            if (zs->cb.on_state != NULL)
                zs->cb.on_state((enum zkstore_state)state, zs->arg);
        }
        if (expired || (need_handle && now >= handle_at)) {
            zs_new_handle(zs);
            pthread_mutex_lock(&zs->mu);
            need_handle = zs->zh == NULL;
            pthread_mutex_unlock(&zs->mu);
            handle_at = zkr_now_ms() + RETRY_MS;
            continue;
        }
        if (zh == NULL || !connected)
            continue;
        bool failed = false;
        if (reload && !zs_reload(zs, zh))
            failed = true;
        if (reg && !zs_register(zs, zh)) {
            failed = true;
            pthread_mutex_lock(&zs->mu);
            zs->reg_dirty = true;
            pthread_mutex_unlock(&zs->mu);
        }
        if (failed) {
            pthread_mutex_lock(&zs->mu);
            if (reload)
                zs->reload = true;
            pthread_mutex_unlock(&zs->mu);
            retry_at = zkr_now_ms() + RETRY_MS;
        }
        if (zs->want_peers && zkr_now_ms() >= next_peers) {
            next_peers = zkr_now_ms() + PEERS_INTERVAL_MS;
            zs_peers(zs, zh);
        }
        if (zkr_now_ms() >= next_ping) {
            next_ping = zkr_now_ms() + PING_INTERVAL_MS;
            zoo_aexists(zh, zs->root, 0, ping_done, zs);
        }
    }
    pthread_mutex_lock(&zs->mu);
    zhandle_t *zh = zs->zh;
    zs->zh = NULL;
    pthread_mutex_unlock(&zs->mu);
    if (zh != NULL)
        zookeeper_close(zh);
    return NULL;
}

struct zkstore *zkstore_new(const char *hosts, const char *root, const struct zkauth *auth,
                            const struct zkstore_callbacks *cb, void *arg, char **errp)
{
    if (root == NULL)
        root = ZKSTORE_DEFAULT_ROOT;
    if (zkstore_check_root(root, errp) < 0)
        return NULL;
    if (cb == NULL || cb->on_map == NULL) {
        errmsg_set(errp, "zkstore: on_map callback required");
        return NULL;
    }
    if (hosts == NULL || *hosts == '\0') {
        errmsg_set(errp, "zkstore: empty ZooKeeper host list");
        return NULL;
    }
    struct zkstore *zs = calloc(1, sizeof(*zs));
    if (zs == NULL || (zs->hosts = strdup(hosts)) == NULL ||
        (zs->root = strdup(root)) == NULL) {
        if (zs != NULL) {
            free(zs->hosts);
            free(zs);
        }
        errmsg_set(errp, "out of memory");
        return NULL;
    }
    zs->cb = *cb;
    zs->arg = arg;
    if (auth != NULL) {
        zs->auth = *auth;
        zs->have_auth = true;
    }
    atomic_init(&zs->last_contact_ms, 0);
    atomic_init(&zs->state, ZKSTORE_DISCONNECTED);
    pthread_mutex_init(&zs->mu, NULL);
    pthread_cond_init(&zs->cond, NULL);
    int err = pthread_create(&zs->thread, NULL, zs_thread, zs);
    if (err != 0) {
        errmsg_set(errp, "zkstore: cannot start thread: %s", strerror(err));
        pthread_mutex_destroy(&zs->mu);
        pthread_cond_destroy(&zs->cond);
        free(zs->hosts);
        free(zs->root);
        free(zs);
        return NULL;
    }
    return zs;
}

void zkstore_free(struct zkstore *zs)
{
    if (zs == NULL)
        return;
    pthread_mutex_lock(&zs->mu);
    zs->stop = true;
    pthread_cond_signal(&zs->cond);
    pthread_mutex_unlock(&zs->mu);
    pthread_join(zs->thread, NULL);
    pthread_mutex_destroy(&zs->mu);
    pthread_cond_destroy(&zs->cond);
    free(zs->reg_id);
    free(zs->reg_payload);
    free(zs->peers);
    free(zs->last_problem);
    free(zs->hosts);
    free(zs->root);
    zkauth_clear(&zs->auth);
    free(zs);
}

int zkstore_register(struct zkstore *zs, const char *router_id, const char *payload,
                     char **errp)
{
    if (smap_check_name(router_id, errp) < 0) {
        errmsg_prefix(errp, "router id");
        return -1;
    }
    char *id = strdup(router_id), *pl = strdup(payload);
    if (id == NULL || pl == NULL) {
        free(id);
        free(pl);
        errmsg_set(errp, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&zs->mu);
    /* A changed id leaves the old node until the session ends: ids are not
     * expected to change at run time. */
    free(zs->reg_id);
    free(zs->reg_payload);
    zs->reg_id = id;
    zs->reg_payload = pl;
    zs->reg_dirty = true;
    pthread_cond_signal(&zs->cond);
    pthread_mutex_unlock(&zs->mu);
    return 0;
}

char *zkstore_peers(struct zkstore *zs)
{
    char *out;

    atomic_store(&zs->want_peers, true);
    pthread_mutex_lock(&zs->mu);
    out = zs->peers ? strdup(zs->peers) : NULL;
    pthread_mutex_unlock(&zs->mu);
    return out;
}

uint64_t zkstore_last_contact_ms(const struct zkstore *zs)
{
    return atomic_load(&((struct zkstore *)zs)->last_contact_ms);
}

enum zkstore_state zkstore_state(const struct zkstore *zs)
{
    return (enum zkstore_state)atomic_load(&((struct zkstore *)zs)->state);
}
