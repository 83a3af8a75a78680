/*
 * shardmap/zkstore_admin.c - the admin side of the map in ZooKeeper
 * (struct zkstore_admin, zkstore.h): synchronous connect, load, init with
 * the cluster's ACL, and the compare-and-set write that every change goes
 * through, riding out connection loss by re-reading. One thread (shardctl).
 * Never logs: messages are malloc'd strings.
 */
#include "shardmap/zkstore_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/errmsg.h"
#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"
#include "shardmap/zkauth.h"

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
    char            *elect_path; /* our election node (zkstore_admin_elect), or NULL */
    char            *hold_path;  /* our runner mark (zkstore_admin_hold), or NULL */
    uint64_t         held_at_ms; /* zkr_now_ms() when both were last seen ours; 0: not */
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

/* Waits until the session is connected or <deadline> (zkr_now_ms() clock). */
static enum zkstore_rc za_wait_connected(struct zkstore_admin *za, uint64_t deadline,
                                         char **errp)
{
    pthread_mutex_lock(&za->mu);
    while ((za->zstate != ZOO_CONNECTED_STATE || za->auth_rc == 1) &&
           za->zstate != ZOO_EXPIRED_SESSION_STATE && za->zstate != ZOO_AUTH_FAILED_STATE) {
        uint64_t now = zkr_now_ms();
        if (now >= deadline)
            break;
        struct timespec ts = zkr_deadline_in(deadline - now);
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
                             zkr_lib_log_cb());
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
    return za_wait_connected(za, zkr_now_ms() + za->timeout_ms, errp);
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
    free(za->elect_path);
    free(za->hold_path);
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
    za->held_at_ms = 0;
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
    uint64_t deadline = zkr_now_ms() + za->timeout_ms;
    for (;;) {
        free(*errp);
        *errp = NULL;
        enum zkstore_rc rc = zkr_read_map(za->zh, za->root, NULL, NULL, out, cas, errp);
        if (rc != ZKSTORE_UNREACHABLE || zkr_now_ms() >= deadline)
            return rc;
        struct timespec pause = { 0, 100 * 1000 * 1000 };
        nanosleep(&pause, NULL);
        if (za_recover(za, deadline, NULL) != ZKSTORE_OK && zkr_now_ms() >= deadline)
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

/*
 * zoo_multi() on <za>'s session once it is connected (recovered first if
 * it is not, e.g. expired), or ZCONNECTIONLOSS with nothing sent. When
 * the first op of a multi fails inside libzookeeper 3.8's zoo_amulti()
 * (a NULL handle, for one), the later ops' request paths are read
 * uninitialized and the previous op's path, which is the caller's, is
 * freed: a double free (ASan, seen once when a shardctl stopped past its
 * session timeout wrote the map right after SIGCONT). A multi on a session
 * that is not connected has nothing to gain either.
 */
static int za_multi(struct zkstore_admin *za, int n_ops, const zoo_op_t *ops,
                    zoo_op_result_t *res)
{
    if (za->zh == NULL)
        za_open(za, NULL);
    else if (zoo_state(za->zh) != ZOO_CONNECTED_STATE)
        za_recover(za, zkr_now_ms() + za->timeout_ms, NULL);
    if (za->zh == NULL || zoo_state(za->zh) != ZOO_CONNECTED_STATE)
        return ZCONNECTIONLOSS;
    return zoo_multi(za->zh, n_ops, ops, res);
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

/* Writes the text of <root>/routers for <set> (zkstore_int.h) to <text>. */
static void reg_acl_text(const struct acl_set *set, char *text, size_t cap)
{
    text[0] = '\0';
    for (int i = 0; i < set->routers.count; i++)
        zkr_reg_acl_format(&set->routers.data[i], text, cap);
}

/* After init: <root> and <root>/routers exist (a router of an open cluster
 * may have made them earlier) with the ACL of <set>. */
static enum zkstore_rc init_finish(struct zkstore_admin *za, struct acl_set *set, bool open,
                                   char **errp)
{
    enum zkstore_rc rc = ZKSTORE_OK;
    char *routers = zkr_path(za->root, "routers", NULL);
    if (routers == NULL) {
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    int zrc;
    if (open) {
        zkr_create_parents(za->zh, routers, &set->routers);
        zrc = ZOK;   /* as before ACLs: a router recreates it when it registers */
    } else {
        /* The multi made <root>/routers with its text (or wrote the text
         * into one that existed); a node that existed keeps its old ACL
         * until here, which is why its text went first. */
        zrc = zoo_set_acl(za->zh, za->root, -1, &set->map);
        if (zrc == ZOK)
            zrc = zoo_set_acl(za->zh, routers, -1, &set->routers);
    }
    if (zrc != ZOK) {
        rc = zkr_fail(zrc, routers, errp);
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
    /* protected: <root>/routers with the registration ACL goes in the same
     * multi, before the version node, so no router can see the map before
     * it can tell which ACL its registration gets */
    unsigned n_ops = 4 + n + (acl->open ? 0 : 1);
    zoo_op_t *ops = calloc(n_ops, sizeof(*ops));
    zoo_op_result_t *res = calloc(n_ops, sizeof(*res));
    char **paths = calloc(n_ops, sizeof(*paths));
    char **texts = calloc(n_ops, sizeof(*texts));
    char vtext[32];
    char reg_text[ZKR_REG_ACL_MAX * (ZKAUTH_ID_MAX + 32)];
    struct acl_set set;
    unsigned i_routers = acl->open ? 0 : 3 + n;
    za->lost_in_write = false;
    if (ops == NULL || res == NULL || paths == NULL || texts == NULL)
        goto oom;
    if (acl_set_build(&set, za, acl, errp) < 0)
        goto out;
    snprintf(vtext, sizeof(vtext), "%" PRIu64 "\n", smap_version(m));
    paths[0] = zkr_path(za->root, "settings", NULL);
    texts[0] = mapcodec_format_settings(m);
    paths[1] = zkr_path(za->root, "vbmap", NULL);
    texts[1] = mapcodec_format_vbmap(m);
    paths[2] = zkr_path(za->root, "shards", NULL);
    texts[2] = strdup("");
    for (unsigned i = 0; i < n; i++) {
        paths[3 + i] = zkr_path(za->root, "shards", smap_shard(m, i)->name);
        texts[3 + i] = mapcodec_format_shard(smap_shard(m, i));
    }
    if (!acl->open) {
        reg_acl_text(&set, reg_text, sizeof(reg_text));
        paths[i_routers] = zkr_path(za->root, "routers", NULL);
        texts[i_routers] = strdup(reg_text);
    }
    /* the version node last: a reader never sees it before the rest */
    paths[n_ops - 1] = zkr_path(za->root, "version", NULL);
    texts[n_ops - 1] = strdup(vtext);
    for (unsigned i = 0; i < n_ops; i++) {
        if (paths[i] == NULL || texts[i] == NULL)
            goto oom;
        zoo_create_op_init(&ops[i], paths[i], texts[i], (int)strlen(texts[i]),
                           &set.map, ZOO_PERSISTENT, NULL, 0);
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        int zrc = zkr_create_parents(za->zh, za->root, &set.map);
        if (zrc == ZOK && !acl->open) {
            /* a router of an open cluster may have made it already */
            struct Stat st;
            zrc = zoo_exists(za->zh, paths[i_routers], 0, &st);
            if (zrc == ZNONODE)
                zoo_create_op_init(&ops[i_routers], paths[i_routers], texts[i_routers],
                                   (int)strlen(texts[i_routers]), &set.routers, ZOO_PERSISTENT,
                                   NULL, 0);
            else if (zrc == ZOK)
                zoo_set_op_init(&ops[i_routers], paths[i_routers], texts[i_routers],
                                (int)strlen(texts[i_routers]), -1, NULL);
            if (zrc == ZNONODE)
                zrc = ZOK;
        }
        if (zrc == ZOK)
            zrc = za_multi(za, (int)n_ops, ops, res);
        if (zrc == ZOK) {
            rc = ZKSTORE_OK;
            break;
        }
        if (zrc == ZNODEEXISTS) {
            errmsg_set(errp, "a cluster already exists at %s", za->root);
            rc = ZKSTORE_EXISTS;
            break;
        }
        if (!zkr_is_connection(zrc)) {
            rc = zkr_fail(zrc, za->root, errp);
            break;
        }
        /* Lost the connection: the multi may have been applied. */
        za->lost_in_write = true;
        rc = zkr_fail(zrc, za->root, errp);  /* unless the re-read tells more */
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
    char *p_shards = zkr_path(za->root, "shards", NULL);
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
    paths[n_ops] = zkr_path(za->root, "version", NULL);
    if (asprintf(&texts[n_ops], "%" PRIu64 "\n", smap_version(next)) < 0)
        texts[n_ops] = NULL;
    if (!paths[n_ops] || !texts[n_ops])
        goto oom;
    zoo_set_op_init(&ops[n_ops], paths[n_ops], texts[n_ops], (int)strlen(texts[n_ops]), cas,
                    NULL);
    n_ops++;
    if (strcmp(vb_cur, vb_next) != 0) {
        paths[n_ops] = zkr_path(za->root, "vbmap", NULL);
        if (!paths[n_ops])
            goto oom;
        zoo_set_op_init(&ops[n_ops], paths[n_ops], vb_next, (int)strlen(vb_next), -1, NULL);
        n_ops++;
    }
    for (unsigned i = 0; i < n_next; i++) {
        const struct smap_shard *s = smap_shard(next, i);
        int j = smap_find_shard(cur, s->name);
        texts[n_ops] = mapcodec_format_shard(s);
        paths[n_ops] = zkr_path(za->root, "shards", s->name);
        if (!texts[n_ops] || !paths[n_ops])
            goto oom;
        if (j < 0) {
            /* a new shard node inherits the ACL of <root>/shards */
            if (shards_acl.data == NULL) {
                int zrc = zoo_get_acl(za->zh, p_shards, &shards_acl, &pst);
                if (zrc != ZOK) {
                    rc = zkr_fail(zrc, p_shards, errp);
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
        paths[n_ops] = zkr_path(za->root, "shards", s->name);
        if (!paths[n_ops])
            goto oom;
        zoo_delete_op_init(&ops[n_ops], paths[n_ops], -1);
        n_ops++;
    }

    for (int attempt = 0; attempt < 3; attempt++) {
        int zrc = za_multi(za, (int)n_ops, ops, res);
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
        if (!zkr_is_connection(zrc)) {
            rc = zkr_fail(zrc, za->root, errp);
            break;
        }
        /* Connection loss: the multi may or may not have been applied. */
        za->lost_in_write = true;
        rc = zkr_fail(zrc, za->root, errp);  /* unless the re-read tells more */
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
    char *p_routers = zkr_path(za->root, "routers", NULL);
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
        rc = zkr_fail(zrc, p_routers, errp);
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
        char *p = zkr_path(p_routers, kids.data[i], NULL);
        char *data = NULL;
        int len;
        struct Stat st;
        zrc = p ? zkr_get_node(za->zh, p, NULL, NULL, &data, &len, &st) : ZSYSTEMERROR;
        free(p);
        if (zrc == ZNONODE)
            continue;   /* it went away meanwhile */
        if (zrc != ZOK) {
            rc = zkr_fail(zrc, p_routers, errp);
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

/* ---- coordination: election and the failover journal --------------------- */

/* Creates <root>/<name> if missing, with <root>'s own ACL (the admin's in a
 * protected cluster, open in an open one). Returns a ZOO code. */
static int za_ensure_child(struct zkstore_admin *za, const char *path)
{
    struct ACL_vector acl = { 0, NULL };
    struct Stat st;
    int zrc = zoo_exists(za->zh, path, 0, &st);

    if (zrc != ZNONODE)
        return zrc;
    zrc = zoo_get_acl(za->zh, za->root, &acl, &st);
    if (zrc != ZOK)
        return zrc;
    zrc = zoo_create(za->zh, path, "", 0, &acl, 0, NULL, 0);
    deallocate_ACL_vector(&acl);
    return zrc == ZNODEEXISTS ? ZOK : zrc;
}

/* The sequence number ZooKeeper appended to an election node's name. */
static long long elect_seq(const char *name)
{
    size_t n = strlen(name);
    return n > 10 ? strtoll(name + n - 10, NULL, 10) : -1;
}

/* The lowest candidate node among <kids> (the leader), its router id copied
 * into <id> ("" when there is none). */
static const char *elect_lowest(const struct String_vector *kids, char *id, size_t cap)
{
    const char *best = NULL;

    for (int i = 0; i < kids->count; i++)
        if (strncmp(kids->data[i], "c-", 2) == 0 && elect_seq(kids->data[i]) >= 0 &&
            (!best || elect_seq(kids->data[i]) < elect_seq(best)))
            best = kids->data[i];
    if (cap)
        id[0] = '\0';
    if (best && cap && strlen(best) > 2 + 11)
        snprintf(id, cap, "%.*s", (int)(strlen(best) - 2 - 11), best + 2);
    return best;
}

enum zkstore_rc zkstore_admin_coordinator(struct zkstore_admin *za, char *id, size_t cap,
                                          char **errp)
{
    char *dir = zkr_path(za->root, "coordinators", NULL);
    struct String_vector kids = { 0, NULL };
    enum zkstore_rc rc = ZKSTORE_OK;
    int zrc;

    if (cap)
        id[0] = '\0';
    if (!dir) {
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    zrc = zoo_get_children(za->zh, dir, 0, &kids);
    if (zrc == ZOK)
        elect_lowest(&kids, id, cap);
    else if (zrc != ZNONODE)
        rc = zkr_fail(zrc, dir, errp);
    deallocate_String_vector(&kids);
    free(dir);
    return rc;
}

enum zkstore_rc zkstore_admin_elect(struct zkstore_admin *za, const char *id, bool *leader,
                                    char *leader_id, size_t cap, char **errp)
{
    char *dir = zkr_path(za->root, "coordinators", NULL), *prefix = NULL, created[600];
    struct String_vector kids = { 0, NULL };
    struct ACL_vector acl = { 0, NULL };
    struct Stat st;
    enum zkstore_rc rc = ZKSTORE_ERROR;
    const char *best;
    int zrc;

    *leader = false;
    if (cap)
        leader_id[0] = '\0';
    if (!dir) {
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    if (strlen(id) >= ZKSTORE_ROUTER_ID_MAX || strchr(id, '/')) {
        errmsg_set(errp, "bad coordinator id '%s'", id);
        goto out;
    }
    zrc = za_ensure_child(za, dir);
    if (zrc != ZOK) {
        rc = zkr_fail(zrc, dir, errp);
        goto out;
    }
    /* Our candidate node dies with our session: make it again if it went. */
    if (za->elect_path && zoo_exists(za->zh, za->elect_path, 0, &st) == ZNONODE) {
        free(za->elect_path);
        za->elect_path = NULL;
    }
    if (!za->elect_path) {
        if (asprintf(&prefix, "%s/c-%s-", dir, id) < 0) {
            prefix = NULL;
            errmsg_set(errp, "out of memory");
            goto out;
        }
        zrc = zoo_get_acl(za->zh, dir, &acl, &st);
        if (zrc == ZOK)
            zrc = zoo_create(za->zh, prefix, "", 0, &acl, ZOO_EPHEMERAL | ZOO_SEQUENCE, created,
                             (int)sizeof(created));
        if (zrc != ZOK) {
            rc = zkr_fail(zrc, dir, errp);
            goto out;
        }
        za->elect_path = strdup(created);
        if (!za->elect_path) {
            errmsg_set(errp, "out of memory");
            goto out;
        }
    }
    zrc = zoo_get_children(za->zh, dir, 0, &kids);
    if (zrc != ZOK) {
        rc = zkr_fail(zrc, dir, errp);
        goto out;
    }
    best = elect_lowest(&kids, leader_id, cap);
    if (best) {
        const char *mine = strrchr(za->elect_path, '/');

        *leader = mine && strcmp(mine + 1, best) == 0;
    }
    rc = ZKSTORE_OK;
out:
    deallocate_String_vector(&kids);
    deallocate_ACL_vector(&acl);
    free(prefix);
    free(dir);
    return rc;
}

enum zkstore_rc zkstore_admin_hold(struct zkstore_admin *za, const char *dir, const char *name,
                                   char **errp)
{
    char *dirp = zkr_path(za->root, dir, NULL), *path = zkr_path(za->root, dir, name);
    struct ACL_vector acl = { 0, NULL };
    struct Stat st;
    enum zkstore_rc rc = ZKSTORE_OK;
    int zrc;

    if (!dirp || !path || strchr(name, '/')) {
        errmsg_set(errp, !dirp || !path ? "out of memory" : "bad runner name '%s'", name);
        rc = ZKSTORE_ERROR;
        goto out;
    }
    zrc = za_ensure_child(za, dirp);
    if (zrc == ZOK)
        zrc = zoo_get_acl(za->zh, dirp, &acl, &st);
    if (zrc == ZOK)
        zrc = zoo_create(za->zh, path, "", 0, &acl, ZOO_EPHEMERAL, NULL, 0);
    if (zrc == ZNODEEXISTS) {
        errmsg_set(errp, "%s: another live runner holds it", path);
        rc = ZKSTORE_EXISTS;
    } else if (zrc != ZOK) {
        rc = zkr_fail(zrc, path, errp);
    } else {
        free(za->hold_path);
        za->hold_path = path;
        path = NULL;
    }
out:
    deallocate_ACL_vector(&acl);
    free(dirp);
    free(path);
    return rc;
}

/* Whether <path> exists and is an ephemeral node of <za>'s session, waiting
 * out a lost connection until <deadline>. */
static enum zkstore_rc za_owns(struct zkstore_admin *za, const char *path, uint64_t deadline,
                               bool *held, char **errp)
{
    struct Stat st;
    int zrc;

    *held = false;
    for (;;) {
        zrc = zoo_exists(za->zh, path, 0, &st);
        if (zrc == ZOK) {
            const clientid_t *me = zoo_client_id(za->zh);

            *held = me && st.ephemeralOwner == me->client_id;
            return ZKSTORE_OK;
        }
        if (zrc == ZNONODE || zrc == ZSESSIONEXPIRED || zrc == ZINVALIDSTATE)
            return ZKSTORE_OK;
        if (zrc != ZCONNECTIONLOSS && zrc != ZOPERATIONTIMEOUT)
            return zkr_fail(zrc, path, errp);
        /* Same session back on another server, or expired: either tells.
         * Right after a loss the state may still say connected: a pause. */
        struct timespec pause = { 0, 50 * 1000 * 1000 };
        nanosleep(&pause, NULL);
        if (za_wait_connected(za, deadline, NULL) != ZKSTORE_OK && zkr_now_ms() >= deadline)
            return zkr_fail(zrc, path, errp);
    }
}

enum zkstore_rc zkstore_admin_held(struct zkstore_admin *za, bool *held, char **errp)
{
    uint64_t start = zkr_now_ms(), deadline = start + za->timeout_ms;
    enum zkstore_rc rc = ZKSTORE_OK;
    int session_ms;

    *held = (za->elect_path || za->hold_path) && za->zh;
    if (!*held)
        return ZKSTORE_OK;
    /* A session the server saw alive at <held_at_ms> cannot expire within
     * its timeout of that moment: one answer stands for a third of it (the
     * client's own ping interval), so a runner checking before every
     * statement does not pay a round trip for each. */
    session_ms = zoo_recv_timeout(za->zh);
    if (za->held_at_ms && session_ms > 0 && start - za->held_at_ms < (uint64_t)session_ms / 3)
        return ZKSTORE_OK;
    za->held_at_ms = 0;
    if (za->elect_path)
        rc = za_owns(za, za->elect_path, deadline, held, errp);
    if (rc == ZKSTORE_OK && *held && za->hold_path)
        rc = za_owns(za, za->hold_path, deadline, held, errp);
    if (rc == ZKSTORE_OK && *held)
        za->held_at_ms = start;
    return rc;
}

/* "<dir> journal <name>" for messages. */
static void journal_what(char *buf, size_t cap, const char *dir, const char *name)
{
    if (name)
        snprintf(buf, cap, "%s journal %s", dir, name);
    else
        snprintf(buf, cap, "<root>/%s", dir);
}

enum zkstore_rc zkstore_admin_node_get(struct zkstore_admin *za, const char *dir,
                                       const char *name, char **text, int32_t *version,
                                       char **errp)
{
    char *path = zkr_path(za->root, dir, name), what[160];
    struct Stat st;
    int len, zrc;

    *text = NULL;
    *version = -1;
    if (!path) {
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    zrc = zkr_get_node(za->zh, path, NULL, NULL, text, &len, &st);
    free(path);
    if (zrc == ZNONODE)
        return ZKSTORE_OK;
    journal_what(what, sizeof(what), dir, name);
    if (zrc != ZOK)
        return zkr_fail(zrc, what, errp);
    *version = st.version;
    return ZKSTORE_OK;
}

enum zkstore_rc zkstore_admin_node_put(struct zkstore_admin *za, const char *dir,
                                       const char *name, const char *text, int32_t version,
                                       char **errp)
{
    char *dirp = zkr_path(za->root, dir, NULL);
    char *path = zkr_path(za->root, dir, name), what[160];
    struct ACL_vector acl = { 0, NULL };
    struct Stat st;
    enum zkstore_rc rc = ZKSTORE_ERROR;
    int zrc;

    journal_what(what, sizeof(what), dir, name);
    if (!dirp || !path) {
        errmsg_set(errp, "out of memory");
        goto out;
    }
    if (version < 0) {
        zrc = za_ensure_child(za, dirp);
        if (zrc == ZOK)
            zrc = zoo_get_acl(za->zh, dirp, &acl, &st);
        if (zrc == ZOK)
            zrc = zoo_create(za->zh, path, text, (int)strlen(text), &acl, 0, NULL, 0);
        if (zrc == ZNODEEXISTS) {
            rc = ZKSTORE_CONFLICT;
            errmsg_set(errp, "%s: written by someone else", what);
            goto out;
        }
    } else {
        zrc = zoo_set(za->zh, path, text, (int)strlen(text), version);
        if (zrc == ZBADVERSION || zrc == ZNONODE) {
            rc = ZKSTORE_CONFLICT;
            errmsg_set(errp, "%s: changed by someone else", what);
            goto out;
        }
    }
    rc = zrc == ZOK ? ZKSTORE_OK : zkr_fail(zrc, what, errp);
out:
    deallocate_ACL_vector(&acl);
    free(dirp);
    free(path);
    return rc;
}

enum zkstore_rc zkstore_admin_node_create_seq(struct zkstore_admin *za, const char *dir,
                                              const char *prefix, const char *text,
                                              char *name, size_t cap, char **errp)
{
    char *dirp = zkr_path(za->root, dir, NULL), *path = zkr_path(za->root, dir, prefix);
    char created[700];
    struct ACL_vector acl = { 0, NULL };
    struct Stat st;
    enum zkstore_rc rc = ZKSTORE_ERROR;
    int zrc;

    if (!dirp || !path) {
        errmsg_set(errp, "out of memory");
        goto out;
    }
    zrc = za_ensure_child(za, dirp);
    if (zrc == ZOK)
        zrc = zoo_get_acl(za->zh, dirp, &acl, &st);
    if (zrc == ZOK)
        zrc = zoo_create(za->zh, path, text, (int)strlen(text), &acl, ZOO_SEQUENCE, created,
                         (int)sizeof(created));
    if (zrc != ZOK) {
        rc = zkr_fail(zrc, dirp, errp);
        goto out;
    }
    snprintf(name, cap, "%s", strrchr(created, '/') ? strrchr(created, '/') + 1 : created);
    rc = ZKSTORE_OK;
out:
    deallocate_ACL_vector(&acl);
    free(dirp);
    free(path);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

enum zkstore_rc zkstore_admin_node_list(struct zkstore_admin *za, const char *dir,
                                        char ***names, unsigned *n, char **errp)
{
    char *dirp = zkr_path(za->root, dir, NULL);
    struct String_vector kids = { 0, NULL };
    enum zkstore_rc rc = ZKSTORE_ERROR;
    char **out = NULL;
    int zrc;

    *names = NULL;
    *n = 0;
    if (!dirp) {
        errmsg_set(errp, "out of memory");
        return ZKSTORE_ERROR;
    }
    zrc = zoo_get_children(za->zh, dirp, 0, &kids);
    if (zrc == ZNONODE) {
        rc = ZKSTORE_OK;
        goto out;
    }
    if (zrc != ZOK) {
        rc = zkr_fail(zrc, dirp, errp);
        goto out;
    }
    out = calloc(kids.count ? (size_t)kids.count : 1, sizeof(*out));
    if (!out) {
        errmsg_set(errp, "out of memory");
        goto out;
    }
    for (int i = 0; i < kids.count; i++) {
        out[i] = strdup(kids.data[i]);
        if (!out[i]) {
            zkstore_names_free(out, (unsigned)i);
            out = NULL;
            errmsg_set(errp, "out of memory");
            goto out;
        }
    }
    qsort(out, (size_t)kids.count, sizeof(*out), cmp_names);
    *names = out;
    *n = (unsigned)kids.count;
    rc = ZKSTORE_OK;
out:
    deallocate_String_vector(&kids);
    free(dirp);
    return rc;
}

void zkstore_names_free(char **names, unsigned n)
{
    for (unsigned i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

enum zkstore_rc zkstore_admin_journal_get(struct zkstore_admin *za, const char *shard,
                                          char **text, int32_t *version, char **errp)
{
    return zkstore_admin_node_get(za, "failover", shard, text, version, errp);
}

enum zkstore_rc zkstore_admin_journal_put(struct zkstore_admin *za, const char *shard,
                                          const char *text, int32_t version, char **errp)
{
    return zkstore_admin_node_put(za, "failover", shard, text, version, errp);
}

enum zkstore_rc zkstore_admin_set_paused(struct zkstore_admin *za, const char *shard,
                                         bool paused, uint64_t *version, char **errp)
{
    enum zkstore_rc rc = ZKSTORE_CONFLICT;
    int attempt;

    for (attempt = 0; attempt < 5 && rc == ZKSTORE_CONFLICT; attempt++) {
        struct smap *cur = NULL, *next = NULL;
        struct smap_builder *b;
        int32_t cas;
        int i;

        rc = zkstore_admin_load(za, &cur, &cas, errp);
        if (rc != ZKSTORE_OK)
            return rc;
        i = smap_find_shard(cur, shard);
        if (i < 0) {
            errmsg_set(errp, "shard '%s' is not in the map", shard);
            smap_unref(cur);
            return ZKSTORE_INVALID;
        }
        if (smap_shard(cur, (unsigned)i)->paused == paused) {
            if (version)
                *version = smap_version(cur);
            smap_unref(cur);
            return ZKSTORE_OK;
        }
        b = smap_builder_from(cur);
        if (b)
            smap_builder_set_version(b, smap_version(cur) + 1);
        if (!b || smap_builder_set_paused(b, shard, paused, errp) < 0 ||
            (next = smap_builder_finish(b, errp), b = NULL, !next)) {
            smap_builder_free(b);
            if (errp && !*errp)
                errmsg_set(errp, "out of memory");
            smap_unref(cur);
            return ZKSTORE_ERROR;
        }
        rc = zkstore_admin_write(za, cur, cas, next, errp);
        if (rc == ZKSTORE_OK && version)
            *version = smap_version(next);
        if (rc == ZKSTORE_CONFLICT && errp) {
            free(*errp);
            *errp = NULL;
        }
        smap_unref(cur);
        smap_unref(next);
    }
    if (rc == ZKSTORE_CONFLICT)
        errmsg_set(errp, "the map kept changing while shard '%s' was being %s", shard,
                   paused ? "paused" : "unpaused");
    return rc;
}

/* A router as zkstore_admin_wait_routers_for() follows it. */
struct waited {
    char     id[ZKSTORE_ROUTER_ID_MAX];
    uint64_t lease_ms;      /* from its registration; 0: none published */
    bool     settled, present;
};

static uint64_t wait_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wait_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Whether we stop waiting for unsettled router <w> because its lease ran
 * out (then it sends no writes: router/mapwatch.h). */
static bool wait_lease_out(const struct zkstore_wait *o, const struct waited *w,
                           uint64_t waited_ms)
{
    if (o->lease_from_wall_ms)
        return !w->present &&
               (!w->lease_ms || wait_wall_ms() > o->lease_from_wall_ms + w->lease_ms + 500);
    return w->lease_ms && waited_ms > w->lease_ms + 500;
}

unsigned zkstore_admin_wait_routers_for(struct zkstore_admin **za, const struct zkstore_wait *o,
                                        char *behind, size_t cap)
{
    const char *word = o->word == ZKSTORE_WAIT_FROZEN_ACK ? "frozen_ack=" : "map_version=";
    size_t word_len = strlen(word);
    uint64_t start = zkr_now_ms(), zk_since = start;
    struct waited *w = NULL;
    unsigned n_w = 0, late;

    for (;;) {
        struct zkstore_router *rs = NULL;
        unsigned n = 0;
        char *err = NULL;
        size_t len = 0;
        uint64_t now = zkr_now_ms();
        bool listed = zkstore_admin_routers(*za, &rs, &n, &err) == ZKSTORE_OK;
        bool registered_late = false;

        late = 0;
        if (cap)
            behind[0] = '\0';
        if (!listed) {
            rs = NULL;
            n = 0;
            late = 1;
            if (cap && o->unreachable)
                snprintf(behind, cap, "(cannot list routers: %s)", err ? err : "?");
            else if (cap)
                len = (size_t)snprintf(behind, cap, "(cannot list routers)");
        }
        /* ZooKeeper gone, and the caller waits for it (bounded): no router
         * can report; their presence stays as last seen */
        if (!listed && o->unreachable) {
            bool again = o->unreachable(o->arg, &zk_since, err);

            free(err);
            if (!again)
                break;
            wait_sleep_ms(o->poll_ms);
            continue;
        }
        free(err);
        if (listed)
            zk_since = now;
        /* Every router seen since the start is followed, also after its
         * registration is gone: until it reports <version>, or its lease
         * has run out. */
        for (unsigned k = 0; k < n_w; k++)
            w[k].present = false;
        for (unsigned i = 0; i < n; i++) {
            const char *p = strstr(rs[i].payload, word);
            const char *l = strstr(rs[i].payload, "lease_ms=");
            unsigned k;

            for (k = 0; k < n_w && strcmp(w[k].id, rs[i].id) != 0; k++)
                ;
            if (k == n_w) {
                struct waited *nw = realloc(w, (n_w + 1) * sizeof(*w));

                if (!nw)
                    continue;
                w = nw;
                memset(&w[n_w], 0, sizeof(*w));
                snprintf(w[n_w].id, sizeof(w[n_w].id), "%s", rs[i].id);
                n_w++;
            }
            w[k].present = true;
            w[k].lease_ms = l ? strtoull(l + 9, NULL, 10) : 0;
            if (p && strtoull(p + word_len, NULL, 10) >= o->version)
                w[k].settled = true;
        }
        zkstore_routers_free(rs, n);
        for (unsigned k = 0; k < n_w; k++) {
            /* Gone without a lease published (an older router): as before,
             * gone is done (for good, unless the caller waits for
             * ZooKeeper: then a failed listing does not make it gone). */
            if (!w[k].present && !w[k].lease_ms && !o->unreachable)
                w[k].settled = true;
            if (w[k].settled || wait_lease_out(o, &w[k], now - start))
                continue;
            registered_late = registered_late || w[k].present;
            late++;
            if (len < cap)
                len += (size_t)snprintf(behind + len, cap - len, "%s%s%s", len ? "," : "",
                                        w[k].id, w[k].present ? "" : " (gone, lease running)");
        }
        if (late == 0)
            break;
        /* counted from the freeze, a vanished router's lease is always
         * waited out; <wait_ms> bounds the rest */
        if ((registered_late || !o->lease_from_wall_ms) && now - start >= o->wait_ms)
            break;
        wait_sleep_ms(o->poll_ms);
    }
    free(w);
    return late;
}

unsigned zkstore_admin_wait_routers(struct zkstore_admin *za, uint64_t version, unsigned wait_ms,
                                    char *behind, size_t cap)
{
    struct zkstore_wait o = { .word = ZKSTORE_WAIT_MAP_VERSION, .version = version,
                              .wait_ms = wait_ms, .poll_ms = 20 };

    return zkstore_admin_wait_routers_for(&za, &o, behind, cap);
}

/* ---- the failover history: the last few finished failovers and
 * switchovers, one line each, oldest first, in <root>/history ------------- */

enum zkstore_rc zkstore_admin_history_get(struct zkstore_admin *za, char **text, char **errp)
{
    int32_t version;

    return zkstore_admin_node_get(za, "history", NULL, text, &version, errp);
}

/* <old> plus <line>, keeping the last <keep> lines; malloc'd or NULL. */
static char *history_append(const char *old, const char *line, unsigned keep)
{
    unsigned n = 1;
    const char *from = old ? old : "";
    char *out;

    for (const char *p = from; *p; p++)
        n += *p == '\n';
    if (*from && from[strlen(from) - 1] != '\n')
        n++;
    while (n > keep && *from) {
        const char *nl = strchr(from, '\n');

        from = nl ? nl + 1 : from + strlen(from);
        n--;
    }
    if (asprintf(&out, "%s%s%s\n", from,
                 *from && from[strlen(from) - 1] != '\n' ? "\n" : "", line) < 0)
        return NULL;
    return out;
}

enum zkstore_rc zkstore_admin_history_add(struct zkstore_admin *za, const char *line,
                                          unsigned keep, char **errp)
{
    char *path = zkr_path(za->root, "history", NULL);
    enum zkstore_rc rc = ZKSTORE_ERROR;
    bool settled = false;

    if (!path || strchr(line, '\n')) {
        errmsg_set(errp, path ? "a history line holds a newline" : "out of memory");
        free(path);
        return ZKSTORE_ERROR;
    }
    /* A compare-and-set loop: two writers never lose each other's line. */
    for (int attempt = 0; attempt < 20 && !settled; attempt++) {
        struct ACL_vector acl = { 0, NULL };
        struct Stat st;
        char *old = NULL, *text;
        int len, zrc = zkr_get_node(za->zh, path, NULL, NULL, &old, &len, &st);

        settled = true;
        if (zrc != ZOK && zrc != ZNONODE) {
            rc = zkr_fail(zrc, "failover history", errp);
            break;
        }
        text = history_append(zrc == ZOK ? old : NULL, line, keep ? keep : 1);
        free(old);
        if (!text) {
            errmsg_set(errp, "out of memory");
            break;
        }
        if (zrc == ZNONODE) {
            zrc = zoo_get_acl(za->zh, za->root, &acl, &st);
            if (zrc == ZOK)
                zrc = zoo_create(za->zh, path, text, (int)strlen(text), &acl, 0, NULL, 0);
            deallocate_ACL_vector(&acl);
        } else {
            zrc = zoo_set(za->zh, path, text, (int)strlen(text), st.version);
        }
        free(text);
        if (zrc == ZOK) {
            rc = ZKSTORE_OK;
            break;
        }
        if (zrc != ZNODEEXISTS && zrc != ZBADVERSION && zrc != ZNONODE) {
            rc = zkr_fail(zrc, "failover history", errp);
            break;
        }
        settled = false;
    }
    if (!settled)
        errmsg_set(errp, "failover history: too many concurrent writers");
    free(path);
    return rc;
}
