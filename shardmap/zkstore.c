/*
 * shardmap/zkstore.c - the shard map in ZooKeeper (layout in zkstore.h and
 * docs/zookeeper.md).
 *
 * The thin I/O shell around mapcodec: node texts in, snapshot out, and back.
 * Threads: the ZooKeeper client runs its own I/O and completion threads;
 * its watcher callbacks here only set flags under zs->mu and signal. All
 * blocking work (reads, registration, recreating an expired handle) runs on
 * zkstore's own thread, because synchronous calls made from the completion
 * thread would wait on themselves and zookeeper_close() must never run
 * inside a watcher. Never logs: messages go to the caller's callbacks.
 */
#include "shardmap/zkstore.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper.h>

#include "shardmap/errmsg.h"
#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"
#include "shardmap/zkauth.h"

#define ROOT_MAX          512
#define READ_ATTEMPTS     8       /* map changing under a reader: give up after */
#define PING_INTERVAL_MS  1000    /* cheap exists() to time our contact */
#define RETRY_MS          500     /* after a failed read/registration */
#define TICK_MS           250     /* the thread's longest sleep */

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Absolute CLOCK_REALTIME deadline <ms> from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static bool zrc_is_connection(int zrc)
{
    return zrc == ZCONNECTIONLOSS || zrc == ZOPERATIONTIMEOUT || zrc == ZSESSIONEXPIRED ||
           zrc == ZCLOSING || zrc == ZINVALIDSTATE || zrc == ZSESSIONMOVED;
}

const char *zkstore_rc_name(enum zkstore_rc rc)
{
    switch (rc) {
    case ZKSTORE_OK:          return "ok";
    case ZKSTORE_UNREACHABLE: return "unreachable";
    case ZKSTORE_NO_CLUSTER:  return "no cluster";
    case ZKSTORE_CONFLICT:    return "conflict";
    case ZKSTORE_INVALID:     return "invalid";
    case ZKSTORE_EXISTS:      return "exists";
    case ZKSTORE_NOAUTH:      return "not authorized";
    case ZKSTORE_ERROR:       return "error";
    }
    return "?";
}

int zkstore_check_root(const char *root, char **errp)
{
    size_t len = strnlen(root, ROOT_MAX);
    if (len >= ROOT_MAX) {
        errmsg_set(errp, "root path longer than %d bytes", ROOT_MAX - 1);
        return -1;
    }
    if (root[0] != '/' || len < 2) {
        errmsg_set(errp, "root path '%s' must be absolute and not '/'", root);
        return -1;
    }
    if (root[len - 1] == '/') {
        errmsg_set(errp, "root path '%s' ends with '/'", root);
        return -1;
    }
    for (const char *p = root; *p; ) {
        const char *part = p + 1;
        const char *next = strchr(part, '/');
        size_t plen = next ? (size_t)(next - part) : strlen(part);
        if (plen == 0 || (plen == 1 && part[0] == '.') ||
            (plen == 2 && part[0] == '.' && part[1] == '.')) {
            errmsg_set(errp, "root path '%s': empty, '.' or '..' part", root);
            return -1;
        }
        for (size_t i = 0; i < plen; i++) {
            unsigned char c = (unsigned char)part[i];
            if (c < 0x21 || c > 0x7e) {
                errmsg_set(errp, "root path '%s': character 0x%02x", root, c);
                return -1;
            }
        }
        p = next ? next : part + plen;
    }
    return 0;
}

static char *zpath(const char *root, const char *a, const char *b)
{
    char *p = NULL;
    if (asprintf(&p, "%s%s%s%s%s", root, a ? "/" : "", a ? a : "", b ? "/" : "",
                 b ? b : "") < 0)
        return NULL;
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    /* natural order: s2 before s10 */
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Reads node <path> whole into a malloc'd NUL-terminated *<data>
 * (*<len> bytes), with a data watch when <w> is not NULL. Returns a ZOO
 * error code (ZOK, ZNONODE, ZCONNECTIONLOSS, ...).
 */
static int get_node(zhandle_t *zh, const char *path, watcher_fn w, void *wctx, char **data,
                    int *len, struct Stat *st)
{
    int cap = 4096;
    *data = NULL;
    for (int attempt = 0; attempt < 4; attempt++) {
        char *buf = malloc((size_t)cap + 1);
        if (buf == NULL)
            return ZSYSTEMERROR;
        int n = cap;
        int zrc = w ? zoo_wget(zh, path, w, wctx, buf, &n, st)
                    : zoo_get(zh, path, 0, buf, &n, st);
        if (zrc != ZOK) {
            free(buf);
            return zrc;
        }
        if (st->dataLength <= cap) {
            if (n < 0)          /* a node with null data */
                n = 0;
            buf[n] = '\0';
            *data = buf;
            *len = n;
            return ZOK;
        }
        free(buf);
        cap = st->dataLength;   /* grew: read again with room for it */
    }
    return ZRUNTIMEINCONSISTENCY;
}

/* Maps a ZOO code of a failed call on <what> to our result and message. */
static enum zkstore_rc fail_zk(int zrc, const char *what, char **errp)
{
    if (zrc == ZNOAUTH) {
        errmsg_set(errp, "%s: not authorized: the node's ZooKeeper ACL refuses these "
                   "credentials", what);
        return ZKSTORE_NOAUTH;
    }
    errmsg_set(errp, "%s: %s", what, zerror(zrc));
    if (zrc_is_connection(zrc))
        return ZKSTORE_UNREACHABLE;
    if (zrc == ZBADVERSION)
        return ZKSTORE_CONFLICT;
    if (zrc == ZNODEEXISTS)
        return ZKSTORE_EXISTS;
    return ZKSTORE_ERROR;
}

/* Parses the version node's text: decimal, optional trailing whitespace. */
static int parse_version(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    if (*p != '\0')
        return -1;
    *out = v;
    return 0;
}

/*
 * Reads one consistent map under <root>: the version node (watched with
 * <w> when not NULL), every other node, then the version node again; if it
 * moved, everything is read again. When the cluster does not exist yet and
 * <w> is set, an exists-watch on the version node reports its creation.
 */
static enum zkstore_rc read_map(zhandle_t *zh, const char *root, watcher_fn w, void *wctx,
                                struct smap **out, int32_t *cas, char **errp)
{
    enum zkstore_rc rc = ZKSTORE_ERROR;
    char *p_version = zpath(root, "version", NULL);
    char *p_settings = zpath(root, "settings", NULL);
    char *p_vbmap = zpath(root, "vbmap", NULL);
    char *p_shards = zpath(root, "shards", NULL);
    *out = NULL;
    if (!p_version || !p_settings || !p_vbmap || !p_shards) {
        errmsg_set(errp, "out of memory");
        goto done;
    }
    for (int attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
        char *vtext = NULL, *settings = NULL, *vbmap = NULL;
        int vlen, slen, mlen, zrc;
        struct Stat st1, st2, st;
        struct String_vector kids = { 0, NULL };
        char **texts = NULL;
        size_t *lens = NULL;
        uint64_t version;
        bool retry = false;

        zrc = get_node(zh, p_version, w, wctx, &vtext, &vlen, &st1);
        if (zrc == ZNONODE) {
            if (w != NULL) {
                zrc = zoo_wexists(zh, p_version, w, wctx, &st);
                if (zrc == ZOK)
                    continue;   /* created meanwhile */
                if (zrc != ZNONODE) {
                    rc = fail_zk(zrc, p_version, errp);
                    goto done;
                }
            }
            errmsg_set(errp, "no cluster at %s (%s does not exist; run shardctl init)", root,
                       p_version);
            rc = ZKSTORE_NO_CLUSTER;
            goto done;
        }
        if (zrc != ZOK) {
            rc = fail_zk(zrc, p_version, errp);
            goto done;
        }
        if (parse_version(vtext, &version) < 0) {
            errmsg_set(errp, "%s: '%.40s' is not a map version", p_version, vtext);
            free(vtext);
            rc = ZKSTORE_INVALID;
            goto done;
        }
        free(vtext);

        zrc = get_node(zh, p_settings, NULL, NULL, &settings, &slen, &st);
        if (zrc == ZOK)
            zrc = get_node(zh, p_vbmap, NULL, NULL, &vbmap, &mlen, &st);
        if (zrc == ZOK)
            zrc = zoo_get_children(zh, p_shards, 0, &kids);
        if (zrc == ZOK && kids.count > 0) {
            qsort(kids.data, (size_t)kids.count, sizeof(kids.data[0]), cmp_names);
            texts = calloc((size_t)kids.count, sizeof(*texts));
            lens = calloc((size_t)kids.count, sizeof(*lens));
            if (texts == NULL || lens == NULL)
                zrc = ZSYSTEMERROR;
        }
        for (int i = 0; zrc == ZOK && i < kids.count; i++) {
            char *p = zpath(p_shards, kids.data[i], NULL);
            int l = 0;
            zrc = p ? get_node(zh, p, NULL, NULL, &texts[i], &l, &st) : ZSYSTEMERROR;
            lens[i] = (size_t)l;
            free(p);
        }
        if (zrc == ZOK)
            zrc = zoo_exists(zh, p_version, 0, &st2);
        if (zrc == ZOK && (st2.version != st1.version || st2.mzxid != st1.mzxid))
            retry = true;
        if (zrc == ZNONODE) {
            /* a node vanished mid-read: a change (retry) or a broken cluster,
             * which the next attempt names precisely */
            retry = true;
            if (attempt == READ_ATTEMPTS - 1) {
                errmsg_set(errp, "incomplete cluster at %s (settings, vbmap or shards "
                           "missing)", root);
                rc = ZKSTORE_INVALID;
            }
        } else if (zrc != ZOK) {
            rc = fail_zk(zrc, root, errp);
        } else if (!retry) {
            struct mapcodec_parts parts = {
                .version = version, .settings = settings, .settings_len = (size_t)slen,
                .vbmap = vbmap, .vbmap_len = (size_t)mlen, .n_shards = (unsigned)kids.count,
                .shard_names = (const char *const *)kids.data,
                .shard_texts = (const char *const *)texts, .shard_lens = lens,
            };
            *out = mapcodec_parse_parts(&parts, errp);
            if (*out == NULL) {
                errmsg_prefix(errp, "map version %" PRIu64 " at %s", version, root);
                rc = ZKSTORE_INVALID;
            } else {
                if (cas != NULL)
                    *cas = st1.version;
                rc = ZKSTORE_OK;
            }
        }
        free(settings);
        free(vbmap);
        for (int i = 0; texts && i < kids.count; i++)
            free(texts[i]);
        free(texts);
        free(lens);
        deallocate_String_vector(&kids);
        if (!retry || rc != ZKSTORE_ERROR)
            goto done;
        if (zrc != ZOK && zrc != ZNONODE)
            goto done;
    }
    if (rc == ZKSTORE_ERROR)
        errmsg_set(errp, "map at %s kept changing while being read", root);
done:
    free(p_version);
    free(p_settings);
    free(p_vbmap);
    free(p_shards);
    return rc;
}

/* Creates <path> and any missing parents as empty persistent nodes with the
 * ACL <acl>; existing nodes are left as they are. */
static int create_parents(zhandle_t *zh, const char *path, struct ACL_vector *acl)
{
    char buf[ROOT_MAX + 64];
    size_t len = strlen(path);
    if (len >= sizeof(buf))
        return ZBADARGUMENTS;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        int zrc = zoo_create(zh, buf, "", 0, acl, ZOO_PERSISTENT, NULL, 0);
        buf[i] = saved;
        if (zrc != ZOK && zrc != ZNODEEXISTS)
            return zrc;
    }
    return ZOK;
}

/*
 * The ACL of registrations travels as the text of <root>/routers, one
 * "acl SCHEME:ID PERMS" line per entry (PERMS from "cdrwa"): getACL hides
 * digest ids from clients without the ADMIN right, so a router could not
 * copy the parent's ACL itself. shardctl init writes it; it is readable
 * only by the identities the ACL of <root>/routers names.
 */
#define REG_ACL_MAX 8

static const struct { char letter; const int *perm; } perm_letters[] = {
    { 'c', &ZOO_PERM_CREATE }, { 'd', &ZOO_PERM_DELETE }, { 'r', &ZOO_PERM_READ },
    { 'w', &ZOO_PERM_WRITE }, { 'a', &ZOO_PERM_ADMIN },
};

/* Appends the line of <a> to <buf> (<cap> bytes, NUL-terminated). */
static void reg_acl_format(const struct ACL *a, char *buf, size_t cap)
{
    size_t len = strlen(buf);
    char perms[8] = "";
    size_t n = 0;
    for (size_t i = 0; i < sizeof(perm_letters) / sizeof(perm_letters[0]); i++)
        if (a->perms & *perm_letters[i].perm)
            perms[n++] = perm_letters[i].letter;
    perms[n] = '\0';
    snprintf(buf + len, cap - len, "acl %s:%s %s\n", a->id.scheme, a->id.id, perms);
}

/* Parses the text of <root>/routers into <out> (<ids> holds the strings, one
 * line each). Returns the number of entries, 0 when there is none (an open
 * cluster, or one made before ACLs), -1 on a malformed line. */
static int reg_acl_parse(char *text, struct ACL out[REG_ACL_MAX], char *ids[REG_ACL_MAX])
{
    int n = 0;
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (*line == '\0' || *line == '#')
            continue;
        if (strncmp(line, "acl ", 4) != 0 || n == REG_ACL_MAX)
            return -1;
        char *id = line + 4, *sp = strchr(id, ' '), *colon = strchr(id, ':');
        if (sp == NULL || colon == NULL || colon > sp)
            return -1;
        *sp = '\0';
        *colon = '\0';
        int perms = 0;
        for (const char *p = sp + 1; *p; p++) {
            size_t i = 0;
            while (i < sizeof(perm_letters) / sizeof(perm_letters[0]) &&
                   perm_letters[i].letter != *p)
                i++;
            if (i == sizeof(perm_letters) / sizeof(perm_letters[0]))
                return -1;
            perms |= *perm_letters[i].perm;
        }
        ids[n] = id;
        out[n] = (struct ACL){ perms, { id, colon + 1 } };
        n++;
    }
    return n;
}

/* ---- library log --------------------------------------------------------- */

static _Atomic(zkstore_lib_log_fn *) lib_log;

static void lib_log_trampoline(const char *msg)
{
    zkstore_lib_log_fn *fn = atomic_load(&lib_log);
    if (fn != NULL)
        fn(msg);
}

void zkstore_library_log(zkstore_lib_log_fn *fn, int verbose)
{
    atomic_store(&lib_log, fn);
    /* level 0 turns the library's logging off altogether */
    zoo_set_debug_level(fn == NULL ? (ZooLogLevel)0
                                   : verbose ? ZOO_LOG_LEVEL_INFO : ZOO_LOG_LEVEL_ERROR);
}

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
            atomic_store(&zs->last_contact_ms, now_ms());
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
        atomic_store(&zs->last_contact_ms, now_ms());
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
                             atomic_load(&lib_log) ? lib_log_trampoline : NULL);
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
    enum zkstore_rc rc = read_map(zh, zs->root, zs_watcher, zs, &m, NULL, &err);
    bool done = true;
    switch (rc) {
    case ZKSTORE_OK:
        atomic_store(&zs->last_contact_ms, now_ms());
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
        atomic_store(&zs->last_contact_ms, now_ms());
        zs_problem(zs, ZKSTORE_LOG_WARN, err);  /* the exists-watch reports creation */
        break;
    case ZKSTORE_NOAUTH: {
        /* Wrong or missing credentials stay wrong: say so once, loudly,
         * and keep retrying (an ACL may be fixed while we run). */
        char *msg = NULL;
        atomic_store(&zs->last_contact_ms, now_ms());
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
    char *routers = zpath(zs->root, "routers", NULL);
    char *path = id ? zpath(zs->root, "routers", id) : NULL;
    struct ACL entries[REG_ACL_MAX];
    char *ids[REG_ACL_MAX];
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
        zrc = create_parents(zh, routers, &ZOO_OPEN_ACL_UNSAFE);
        if (zrc != ZOK)
            goto out;
    }
    /* The registration gets the ACL that shardctl init wrote (see
     * reg_acl_parse); none written: the cluster is open, and so is it. */
    zrc = get_node(zh, routers, NULL, NULL, &acl_text, &acl_len, &pst);
    if (zrc != ZOK)
        goto out;
    int n_acl = reg_acl_parse(acl_text, entries, ids);
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
        atomic_store(&zs->last_contact_ms, now_ms());
    } else if (!zrc_is_connection(zrc)) {
        char msg[ROOT_MAX + ZKAUTH_USER_MAX + 192];
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

static void *zs_thread(void *p)
{
    struct zkstore *zs = p;
    int reported = ZKSTORE_DISCONNECTED;
    uint64_t next_ping = 0, retry_at = 0, handle_at = 0;
    bool need_handle = true;

    for (;;) {
        pthread_mutex_lock(&zs->mu);
        uint64_t now = now_ms();
        bool due = now >= retry_at;
        if (!zs->stop && !zs->expired && !(need_handle && now >= handle_at) &&
            atomic_load(&zs->state) == reported &&
            !(zs->connected && due && (zs->reload || zs->reg_dirty)) &&
            !(zs->connected && now >= next_ping)) {
            struct timespec ts = deadline_in(TICK_MS);
            pthread_cond_timedwait(&zs->cond, &zs->mu, &ts);
        }
        now = now_ms();
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
            handle_at = now_ms() + RETRY_MS;
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
            retry_at = now_ms() + RETRY_MS;
        }
        if (now_ms() >= next_ping) {
            next_ping = now_ms() + PING_INTERVAL_MS;
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

uint64_t zkstore_last_contact_ms(const struct zkstore *zs)
{
    return atomic_load(&((struct zkstore *)zs)->last_contact_ms);
}

enum zkstore_state zkstore_state(const struct zkstore *zs)
{
    return (enum zkstore_state)atomic_load(&((struct zkstore *)zs)->state);
}

/* ---- admin side ---------------------------------------------------------- */

struct zkstore_admin {
    char            *hosts;
    char            *root;
    struct zkauth    auth;
    bool             have_auth;
    int              auth_rc;    /* under mu: zoo_add_auth's result; 1 = pending */
    unsigned         timeout_ms;
    zhandle_t       *zh;
    pthread_mutex_t  mu;
    pthread_cond_t   cond;
    int              zstate;     /* under mu: last session state seen */
    bool             lost_in_write;  /* the last init/write lost its connection */
};

static void za_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    struct zkstore_admin *za = ctx;
    (void)zh;
    (void)path;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&za->mu);
    za->zstate = state;
    pthread_cond_broadcast(&za->cond);
    pthread_mutex_unlock(&za->mu);
}

static void za_auth_done(int rc, const void *data)
{
    struct zkstore_admin *za = (struct zkstore_admin *)data;
    pthread_mutex_lock(&za->mu);
    za->auth_rc = rc;
    pthread_cond_broadcast(&za->cond);
    pthread_mutex_unlock(&za->mu);
}

/* Waits until the session is connected or <deadline> (now_ms() clock). */
static enum zkstore_rc za_wait_connected(struct zkstore_admin *za, uint64_t deadline,
                                         char **errp)
{
    pthread_mutex_lock(&za->mu);
    while ((za->zstate != ZOO_CONNECTED_STATE || za->auth_rc == 1) &&
           za->zstate != ZOO_EXPIRED_SESSION_STATE && za->zstate != ZOO_AUTH_FAILED_STATE) {
        uint64_t now = now_ms();
        if (now >= deadline)
            break;
        struct timespec ts = deadline_in(deadline - now);
        pthread_cond_timedwait(&za->cond, &za->mu, &ts);
    }
    int st = za->zstate, arc = za->auth_rc;
    pthread_mutex_unlock(&za->mu);
    if (st == ZOO_AUTH_FAILED_STATE || (arc != ZOK && arc != 1)) {
        errmsg_set(errp, "ZooKeeper at %s: authentication of digest user '%s' failed (%s)",
                   za->hosts, za->auth.user, zerror(arc == 1 ? ZAUTHFAILED : arc));
        return ZKSTORE_ERROR;
    }
    if (st == ZOO_CONNECTED_STATE && arc != 1)
        return ZKSTORE_OK;
    if (st == ZOO_EXPIRED_SESSION_STATE) {
        errmsg_set(errp, "ZooKeeper at %s: session expired", za->hosts);
        return ZKSTORE_UNREACHABLE;
    }
    errmsg_set(errp, "cannot reach ZooKeeper at %s within %u ms", za->hosts, za->timeout_ms);
    return ZKSTORE_UNREACHABLE;
}

static enum zkstore_rc za_open(struct zkstore_admin *za, char **errp)
{
    pthread_mutex_lock(&za->mu);
    za->zstate = 0;
    za->auth_rc = za->have_auth ? 1 : ZOK;
    pthread_mutex_unlock(&za->mu);
    /* The session timeout bounds each synchronous call (the client gives up
     * after 2/3 of it); the server clamps it to at least 2 ticks. */
    unsigned session_ms = za->timeout_ms < 2000 ? 2000 : za->timeout_ms;
    errno = 0;
    za->zh = zookeeper_init2(za->hosts, za_watcher, (int)session_ms, NULL, za, 0,
                             atomic_load(&lib_log) ? lib_log_trampoline : NULL);
    if (za->zh == NULL) {
        /* errno says little here (getaddrinfo failures arrive as EINVAL or
         * ENOENT), so name the likely causes instead */
        errmsg_set(errp, "ZooKeeper host list '%s': cannot resolve or parse it (expected "
                   "HOST:PORT[,HOST:PORT...])", za->hosts);
        return ZKSTORE_UNREACHABLE;
    }
    if (za->have_auth) {
        /* Queued until the session is up and sent ahead of any request;
         * the completion tells whether ZooKeeper took it. */
        char cred[sizeof(za->auth.user) + sizeof(za->auth.password)];
        zkauth_cred(&za->auth, cred, sizeof(cred));
        int zrc = zoo_add_auth(za->zh, "digest", cred, (int)strlen(cred), za_auth_done, za);
        memset(cred, 0, sizeof(cred));
        if (zrc != ZOK) {
            errmsg_set(errp, "ZooKeeper at %s: cannot send credentials: %s", za->hosts,
                       zerror(zrc));
            return ZKSTORE_ERROR;
        }
    }
    return za_wait_connected(za, now_ms() + za->timeout_ms, errp);
}

enum zkstore_rc zkstore_admin_connect(const char *hosts, const char *root,
                                      const struct zkauth *auth, unsigned timeout_ms,
                                      struct zkstore_admin **out, char **errp)
{
    *out = NULL;
    if (root == NULL)
        root = ZKSTORE_DEFAULT_ROOT;
    if (zkstore_check_root(root, errp) < 0)
        return ZKSTORE_ERROR;
    if (hosts == NULL || *hosts == '\0') {
        errmsg_set(errp, "empty ZooKeeper host list");
        return ZKSTORE_ERROR;
    }
    struct zkstore_admin *za = calloc(1, sizeof(*za));
    if (za == NULL) {
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    za->hosts = strdup(hosts);
    za->root = strdup(root);
    if (auth != NULL) {
        za->auth = *auth;
        za->have_auth = true;
    }
    za->timeout_ms = timeout_ms ? timeout_ms : 5000;
    pthread_mutex_init(&za->mu, NULL);
    pthread_cond_init(&za->cond, NULL);
    if (za->hosts == NULL || za->root == NULL) {
        zkstore_admin_free(za);
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    enum zkstore_rc rc = za_open(za, errp);
    if (rc != ZKSTORE_OK) {
        zkstore_admin_free(za);
        return rc;
    }
    *out = za;
    return ZKSTORE_OK;
}

void zkstore_admin_free(struct zkstore_admin *za)
{
    if (za == NULL)
        return;
    if (za->zh != NULL)
        zookeeper_close(za->zh);
    pthread_mutex_destroy(&za->mu);
    pthread_cond_destroy(&za->cond);
    free(za->hosts);
    free(za->root);
    zkauth_clear(&za->auth);
    free(za);
}

/* After a connection loss: waits until <deadline> for the session to come
 * back, or opens a new one if it expired. */
static enum zkstore_rc za_recover(struct zkstore_admin *za, uint64_t deadline, char **errp)
{
    enum zkstore_rc rc = za_wait_connected(za, deadline, errp);
    if (rc == ZKSTORE_OK)
        return rc;
    pthread_mutex_lock(&za->mu);
    bool expired = za->zstate == ZOO_EXPIRED_SESSION_STATE;
    pthread_mutex_unlock(&za->mu);
    if (!expired)
        return rc;
    zookeeper_close(za->zh);
    za->zh = NULL;
    return za_open(za, errp);
}

/*
 * Reads the map, riding out connection trouble until the admin deadline:
 * right after a loss the session may still look connected (the state event
 * comes on another thread), so one failed read proves nothing.
 */
static enum zkstore_rc za_read(struct zkstore_admin *za, struct smap **out, int32_t *cas,
                               char **errp)
{
    uint64_t deadline = now_ms() + za->timeout_ms;
    for (;;) {
        free(*errp);
        *errp = NULL;
        enum zkstore_rc rc = read_map(za->zh, za->root, NULL, NULL, out, cas, errp);
        if (rc != ZKSTORE_UNREACHABLE || now_ms() >= deadline)
            return rc;
        struct timespec pause = { 0, 100 * 1000 * 1000 };
        nanosleep(&pause, NULL);
        if (za_recover(za, deadline, NULL) != ZKSTORE_OK && now_ms() >= deadline)
            return rc;
    }
}

enum zkstore_rc zkstore_admin_load(struct zkstore_admin *za, struct smap **out, int32_t *cas,
                                   char **errp)
{
    return za_read(za, out, cas, errp);
}

/* After a lost write: re-reads (see za_read) and tells whether ZooKeeper
 * now holds exactly <want> (text comparison). *<rc> is the read's result. */
static bool za_holds(struct zkstore_admin *za, const struct smap *want, int32_t *cas_now,
                     uint64_t *version_now, enum zkstore_rc *rc)
{
    struct smap *m = NULL;
    char *err = NULL;
    *rc = za_read(za, &m, cas_now, &err);
    free(err);
    if (*rc != ZKSTORE_OK)
        return false;
    char *a = mapcodec_format(m), *b = mapcodec_format(want);
    bool same = a && b && strcmp(a, b) == 0;
    *version_now = smap_version(m);
    free(a);
    free(b);
    smap_unref(m);
    return same;
}

/* Frees what a zoo_multi was built from: <n> node paths and payloads (the
 * arrays may be NULL), the ops and their results. */
static void free_multi(char **paths, char **texts, unsigned n, zoo_op_t *ops,
                       zoo_op_result_t *res)
{
    for (unsigned i = 0; paths && texts && i < n; i++) {
        free(paths[i]);
        free(texts[i]);
    }
    free(paths);
    free(texts);
    free(ops);
    free(res);
}

/* The two ACLs of a protected cluster (zkstore.h, struct zkstore_acl). */
struct acl_set {
    char              admin_id[ZKAUTH_ID_MAX];
    char              router_id[ZKAUTH_ID_MAX];
    struct ACL        map_acl[2], routers_acl[2];
    struct ACL_vector map, routers;
};

/* Fills <set> for <acl> and the admin identity of <za>. Returns 0, or -1
 * with a malloc'd *<errp>. */
static int acl_set_build(struct acl_set *set, const struct zkstore_admin *za,
                         const struct zkstore_acl *acl, char **errp)
{
    static char digest[] = "digest";
    memset(set, 0, sizeof(*set));
    if (acl->open) {
        set->map = ZOO_OPEN_ACL_UNSAFE;
        set->routers = ZOO_OPEN_ACL_UNSAFE;
        return 0;
    }
    if (!za->have_auth) {
        errmsg_set(errp, "a protected cluster needs the admin's credentials (or an explicit "
                   "choice of the open ACL)");
        return -1;
    }
    zkauth_digest_id(&za->auth, set->admin_id);
    set->map_acl[0] = (struct ACL){ ZOO_PERM_ALL, { digest, set->admin_id } };
    set->routers_acl[0] = set->map_acl[0];
    int n = 1;
    if (acl->router != NULL && !zkauth_same(acl->router, &za->auth)) {
        zkauth_digest_id(acl->router, set->router_id);
        set->map_acl[1] = (struct ACL){ ZOO_PERM_READ, { digest, set->router_id } };
        set->routers_acl[1] = (struct ACL){ ZOO_PERM_READ | ZOO_PERM_WRITE | ZOO_PERM_CREATE |
                                            ZOO_PERM_DELETE, { digest, set->router_id } };
        n = 2;
    }
    set->map = (struct ACL_vector){ n, set->map_acl };
    set->routers = (struct ACL_vector){ n, set->routers_acl };
    return 0;
}

/* After init: <root> and <root>/routers exist (a router of an open cluster
 * may have made them earlier) with the ACL of <set>. */
static enum zkstore_rc init_finish(struct zkstore_admin *za, struct acl_set *set, bool open,
                                   char **errp)
{
    enum zkstore_rc rc = ZKSTORE_OK;
    char *routers = zpath(za->root, "routers", NULL);
    if (routers == NULL) {
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    int zrc = create_parents(za->zh, routers, &set->routers);
    if (zrc != ZOK && open) {
        zrc = ZOK;   /* as before ACLs: a router recreates it when it registers */
    } else if (zrc == ZOK && !open) {
        char text[REG_ACL_MAX * (ZKAUTH_ID_MAX + 32)] = "";
        for (int i = 0; i < set->routers.count; i++)
            reg_acl_format(&set->routers.data[i], text, sizeof(text));
        zrc = zoo_set_acl(za->zh, za->root, -1, &set->map);
        if (zrc == ZOK)
            zrc = zoo_set_acl(za->zh, routers, -1, &set->routers);
        if (zrc == ZOK)
            zrc = zoo_set(za->zh, routers, text, (int)strlen(text), -1);
    }
    if (zrc != ZOK) {
        rc = fail_zk(zrc, routers, errp);
        errmsg_prefix(errp, "the map was created, but the ACL of %s and %s could not be set",
                      za->root, routers);
    }
    free(routers);
    return rc;
}

enum zkstore_rc zkstore_admin_init(struct zkstore_admin *za, const struct smap *m,
                                   const struct zkstore_acl *acl, char **errp)
{
    enum zkstore_rc rc = ZKSTORE_ERROR;
    unsigned n = smap_n_shards(m);
    unsigned n_ops = 4 + n;
    zoo_op_t *ops = calloc(n_ops, sizeof(*ops));
    zoo_op_result_t *res = calloc(n_ops, sizeof(*res));
    char **paths = calloc(n_ops, sizeof(*paths));
    char **texts = calloc(n_ops, sizeof(*texts));
    char vtext[32];
    struct acl_set set;
    za->lost_in_write = false;
    if (ops == NULL || res == NULL || paths == NULL || texts == NULL)
        goto oom;
    if (acl_set_build(&set, za, acl, errp) < 0)
        goto out;
    snprintf(vtext, sizeof(vtext), "%" PRIu64 "\n", smap_version(m));
    paths[0] = zpath(za->root, "settings", NULL);
    texts[0] = mapcodec_format_settings(m);
    paths[1] = zpath(za->root, "vbmap", NULL);
    texts[1] = mapcodec_format_vbmap(m);
    paths[2] = zpath(za->root, "shards", NULL);
    texts[2] = strdup("");
    for (unsigned i = 0; i < n; i++) {
        paths[3 + i] = zpath(za->root, "shards", smap_shard(m, i)->name);
        texts[3 + i] = mapcodec_format_shard(smap_shard(m, i));
    }
    /* the version node last: a reader never sees it before the rest */
    paths[3 + n] = zpath(za->root, "version", NULL);
    texts[3 + n] = strdup(vtext);
    for (unsigned i = 0; i < n_ops; i++) {
        if (paths[i] == NULL || texts[i] == NULL)
            goto oom;
        zoo_create_op_init(&ops[i], paths[i], texts[i], (int)strlen(texts[i]),
                           &set.map, ZOO_PERSISTENT, NULL, 0);
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        int zrc = create_parents(za->zh, za->root, &set.map);
        if (zrc == ZOK)
            zrc = zoo_multi(za->zh, (int)n_ops, ops, res);
        if (zrc == ZOK) {
            rc = ZKSTORE_OK;
            break;
        }
        if (zrc == ZNODEEXISTS) {
            errmsg_set(errp, "a cluster already exists at %s", za->root);
            rc = ZKSTORE_EXISTS;
            break;
        }
        if (!zrc_is_connection(zrc)) {
            rc = fail_zk(zrc, za->root, errp);
            break;
        }
        /* Lost the connection: the multi may have been applied. */
        za->lost_in_write = true;
        rc = fail_zk(zrc, za->root, errp);  /* unless the re-read tells more */
        int32_t cas;
        uint64_t v;
        enum zkstore_rc rrc;
        if (za_holds(za, m, &cas, &v, &rrc)) {
            rc = ZKSTORE_OK;
            break;
        }
        if (rrc == ZKSTORE_NO_CLUSTER)
            continue;                       /* provably not applied: again */
        if (rrc == ZKSTORE_OK || rrc == ZKSTORE_INVALID) {
            errmsg_set(errp, "a cluster already exists at %s", za->root);
            rc = ZKSTORE_EXISTS;            /* someone else's is there now */
        } else {
            errmsg_set(errp, "connection lost during init; cannot tell whether it was "
                       "applied (%s); run status", zkstore_rc_name(rrc));
            rc = rrc;
        }
        break;
    }
    if (rc == ZKSTORE_OK) {
        if (errp != NULL) {                 /* a loss that the re-read resolved */
            free(*errp);
            *errp = NULL;
        }
        rc = init_finish(za, &set, acl->open, errp);
    }
    goto out;
oom:
    errmsg_set(errp, "out of memory");
out:
    if (rc == ZKSTORE_OK && errp != NULL) {
        free(*errp);                        /* a loss that the re-read resolved */
        *errp = NULL;
    }
    free_multi(paths, texts, n_ops, ops, res);
    return rc;
}

enum zkstore_rc zkstore_admin_write(struct zkstore_admin *za, const struct smap *cur,
                                    int32_t cas, const struct smap *next, char **errp)
{
    enum zkstore_rc rc = ZKSTORE_ERROR;
    unsigned n_cur = smap_n_shards(cur), n_next = smap_n_shards(next);
    unsigned cap = 2 + n_cur + n_next, n_ops = 0;
    zoo_op_t *ops = calloc(cap, sizeof(*ops));
    zoo_op_result_t *res = calloc(cap, sizeof(*res));
    char **paths = calloc(cap, sizeof(*paths));
    char **texts = calloc(cap, sizeof(*texts));
    char *s_cur = mapcodec_format_settings(cur), *s_next = mapcodec_format_settings(next);
    char *vb_cur = mapcodec_format_vbmap(cur), *vb_next = mapcodec_format_vbmap(next);
    char *p_shards = zpath(za->root, "shards", NULL);
    struct ACL_vector shards_acl = { 0, NULL };
    struct Stat pst;
    za->lost_in_write = false;
    if (!ops || !res || !paths || !texts || !s_cur || !s_next || !vb_cur || !vb_next ||
        !p_shards)
        goto oom;
    if (smap_version(next) != smap_version(cur) + 1) {
        errmsg_set(errp, "new map version %" PRIu64 " does not follow %" PRIu64,
                   smap_version(next), smap_version(cur));
        rc = ZKSTORE_INVALID;
        goto out;
    }
    if (strcmp(s_cur, s_next) != 0) {
        errmsg_set(errp, "cluster settings (vbuckets, key columns, key type) are fixed at "
                   "init");
        rc = ZKSTORE_INVALID;
        goto out;
    }
    /* First op: the compare-and-set on the version node, so a lost race
     * fails there and reports ZBADVERSION. */
    paths[n_ops] = zpath(za->root, "version", NULL);
    if (asprintf(&texts[n_ops], "%" PRIu64 "\n", smap_version(next)) < 0)
        texts[n_ops] = NULL;
    if (!paths[n_ops] || !texts[n_ops])
        goto oom;
    zoo_set_op_init(&ops[n_ops], paths[n_ops], texts[n_ops], (int)strlen(texts[n_ops]), cas,
                    NULL);
    n_ops++;
    if (strcmp(vb_cur, vb_next) != 0) {
        paths[n_ops] = zpath(za->root, "vbmap", NULL);
        if (!paths[n_ops])
            goto oom;
        zoo_set_op_init(&ops[n_ops], paths[n_ops], vb_next, (int)strlen(vb_next), -1, NULL);
        n_ops++;
    }
    for (unsigned i = 0; i < n_next; i++) {
        const struct smap_shard *s = smap_shard(next, i);
        int j = smap_find_shard(cur, s->name);
        texts[n_ops] = mapcodec_format_shard(s);
        paths[n_ops] = zpath(za->root, "shards", s->name);
        if (!texts[n_ops] || !paths[n_ops])
            goto oom;
        if (j < 0) {
            /* a new shard node inherits the ACL of <root>/shards */
            if (shards_acl.data == NULL) {
                int zrc = zoo_get_acl(za->zh, p_shards, &shards_acl, &pst);
                if (zrc != ZOK) {
                    rc = fail_zk(zrc, p_shards, errp);
                    goto out;
                }
            }
            zoo_create_op_init(&ops[n_ops], paths[n_ops], texts[n_ops],
                               (int)strlen(texts[n_ops]), &shards_acl, ZOO_PERSISTENT,
                               NULL, 0);
        } else {
            char *old = mapcodec_format_shard(smap_shard(cur, (unsigned)j));
            bool same = old && strcmp(old, texts[n_ops]) == 0;
            free(old);
            if (same) {
                free(texts[n_ops]);
                free(paths[n_ops]);
                texts[n_ops] = paths[n_ops] = NULL;
                continue;
            }
            zoo_set_op_init(&ops[n_ops], paths[n_ops], texts[n_ops],
                            (int)strlen(texts[n_ops]), -1, NULL);
        }
        n_ops++;
    }
    for (unsigned i = 0; i < n_cur; i++) {
        const struct smap_shard *s = smap_shard(cur, i);
        if (smap_find_shard(next, s->name) >= 0)
            continue;
        paths[n_ops] = zpath(za->root, "shards", s->name);
        if (!paths[n_ops])
            goto oom;
        zoo_delete_op_init(&ops[n_ops], paths[n_ops], -1);
        n_ops++;
    }

    for (int attempt = 0; attempt < 3; attempt++) {
        int zrc = zoo_multi(za->zh, (int)n_ops, ops, res);
        if (zrc == ZOK) {
            rc = ZKSTORE_OK;
            break;
        }
        if (zrc == ZBADVERSION || zrc == ZNONODE || zrc == ZNODEEXISTS) {
            /* Only a writer that skipped the version bump could make a shard
             * op fail while the version check passes; either way the map is
             * not the one we read. */
            errmsg_set(errp, "the map changed since it was read (version %" PRIu64
                       " is no longer current); re-read and retry", smap_version(cur));
            rc = ZKSTORE_CONFLICT;
            break;
        }
        if (!zrc_is_connection(zrc)) {
            rc = fail_zk(zrc, za->root, errp);
            break;
        }
        /* Connection loss: the multi may or may not have been applied. */
        za->lost_in_write = true;
        rc = fail_zk(zrc, za->root, errp);  /* unless the re-read tells more */
        int32_t cas_now = -1;
        uint64_t v_now = 0;
        enum zkstore_rc rrc;
        if (za_holds(za, next, &cas_now, &v_now, &rrc)) {
            rc = ZKSTORE_OK;
            break;
        }
        if (rrc != ZKSTORE_OK) {
            rc = rrc;
            errmsg_set(errp, "connection lost during the write; cannot tell whether it "
                       "was applied (%s); run status", zkstore_rc_name(rrc));
            break;
        }
        if (cas_now != cas) {
            errmsg_set(errp, "the map changed since it was read (now version %" PRIu64
                       "); re-read and retry", v_now);
            rc = ZKSTORE_CONFLICT;
            break;
        }
        /* provably not applied and nobody else wrote: the same CAS again */
    }
    goto out;
oom:
    errmsg_set(errp, "out of memory");
out:
    if (rc == ZKSTORE_OK && errp != NULL) {
        free(*errp);                        /* a loss that the re-read resolved */
        *errp = NULL;
    }
    free_multi(paths, texts, cap, ops, res);
    deallocate_ACL_vector(&shards_acl);
    free(p_shards);
    free(s_cur);
    free(s_next);
    free(vb_cur);
    free(vb_next);
    return rc;
}

static int cmp_routers(const void *a, const void *b)
{
    return strverscmp(((const struct zkstore_router *)a)->id,
                      ((const struct zkstore_router *)b)->id);
}

enum zkstore_rc zkstore_admin_routers(struct zkstore_admin *za, struct zkstore_router **out,
                                      unsigned *n, char **errp)
{
    enum zkstore_rc rc = ZKSTORE_ERROR;
    struct String_vector kids = { 0, NULL };
    struct zkstore_router *r = NULL;
    unsigned count = 0;
    char *p_routers = zpath(za->root, "routers", NULL);
    *out = NULL;
    *n = 0;
    if (p_routers == NULL) {
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    int zrc = zoo_get_children(za->zh, p_routers, 0, &kids);
    if (zrc == ZNONODE) {
        rc = ZKSTORE_OK;   /* no router ever registered */
        goto out;
    }
    if (zrc != ZOK) {
        rc = fail_zk(zrc, p_routers, errp);
        goto out;
    }
    r = calloc(kids.count ? (size_t)kids.count : 1, sizeof(*r));
    if (r == NULL) {
        errmsg_set(errp, "out of memory");
        goto out;
    }
    for (int i = 0; i < kids.count; i++) {
        if (strlen(kids.data[i]) >= ZKSTORE_ROUTER_ID_MAX)
            continue;   /* not one of ours */
        char *p = zpath(p_routers, kids.data[i], NULL);
        char *data = NULL;
        int len;
        struct Stat st;
        zrc = p ? get_node(za->zh, p, NULL, NULL, &data, &len, &st) : ZSYSTEMERROR;
        free(p);
        if (zrc == ZNONODE)
            continue;   /* it went away meanwhile */
        if (zrc != ZOK) {
            rc = fail_zk(zrc, p_routers, errp);
            zkstore_routers_free(r, count);
            r = NULL;
            count = 0;
            goto out;
        }
        strcpy(r[count].id, kids.data[i]);
        r[count].payload = data;
        r[count].mtime_ms = st.mtime;
        r[count].ctime_ms = st.ctime;
        count++;
    }
    qsort(r, count, sizeof(*r), cmp_routers);
    *out = r;
    *n = count;
    r = NULL;
    rc = ZKSTORE_OK;
out:
    free(r);
    deallocate_String_vector(&kids);
    free(p_routers);
    return rc;
}

bool zkstore_admin_lost_in_write(const struct zkstore_admin *za)
{
    return za->lost_in_write;
}

void zkstore_routers_free(struct zkstore_router *r, unsigned n)
{
    if (r == NULL)
        return;
    for (unsigned i = 0; i < n; i++)
        free(r[i].payload);
    free(r);
}
