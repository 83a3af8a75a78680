/*
 * shardmap/zkstore_read.c - reading the map from ZooKeeper, and the helpers
 * the router side (zkstore_watch.c) and the admin side (zkstore_admin.c)
 * share (zkstore_int.h). Layout in zkstore.h and docs/zookeeper.md.
 *
 * The thin I/O shell around mapcodec: node texts in, snapshot out. Never
 * logs: messages are malloc'd strings.
 */
#include "shardmap/zkstore_int.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/errmsg.h"
#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"

#define READ_ATTEMPTS     8       /* map changing under a reader: give up after */

/* ---- small helpers ------------------------------------------------------- */

uint64_t zkr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Absolute CLOCK_REALTIME deadline <ms> from now, for pthread_cond_timedwait. */
struct timespec zkr_deadline_in(uint64_t ms)
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

bool zkr_is_connection(int zrc)
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
    size_t len = strnlen(root, ZKR_ROOT_MAX);
    if (len >= ZKR_ROOT_MAX) {
        errmsg_set(errp, "root path longer than %d bytes", ZKR_ROOT_MAX - 1);
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

char *zkr_path(const char *root, const char *a, const char *b)
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

/* Several node reads in flight at once: one round trip for all of them
 * instead of one each (a map read is on the path of a move's frozen
 * window, docs/moves.md). */
struct zkr_batch {
    pthread_mutex_t mu;
    pthread_cond_t  cond;
    unsigned        left;   /* completions still to come; guarded by mu */
};

struct zkr_one {
    struct zkr_batch *b;
    int               rc;
    char             *data;  /* malloc'd, NUL-terminated */
    int               len;
};

static void batch_done(int rc, const char *value, int value_len, const struct Stat *stat,
                       const void *arg)
{
    struct zkr_one *o = (struct zkr_one *)arg;
    (void)stat;
    o->rc = rc;
    if (rc == ZOK) {
        int n = value && value_len > 0 ? value_len : 0;
        o->data = malloc((size_t)n + 1);
        if (o->data) {
            if (n)
                memcpy(o->data, value, (size_t)n);
            o->data[n] = '\0';
            o->len = n;
        } else {
            o->rc = ZSYSTEMERROR;
        }
    }
    pthread_mutex_lock(&o->b->mu);
    o->b->left--;
    pthread_cond_signal(&o->b->cond);
    pthread_mutex_unlock(&o->b->mu);
}

/* Sends the reads of <n> nodes <paths> (results in <ones>); batch_wait()
 * waits for all of them. */
static void batch_start(zhandle_t *zh, struct zkr_batch *b, unsigned n, char *const *paths,
                        struct zkr_one *ones)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->left = n;
    for (unsigned i = 0; i < n; i++) {
        ones[i].b = b;
        ones[i].rc = ZOK;
        ones[i].data = NULL;
        ones[i].len = 0;
        int zrc = paths[i] ? zoo_aget(zh, paths[i], 0, batch_done, &ones[i]) : ZSYSTEMERROR;
        if (zrc != ZOK) {   /* never sent: no completion will come */
            ones[i].rc = zrc;
            pthread_mutex_lock(&b->mu);
            b->left--;
            pthread_mutex_unlock(&b->mu);
        }
    }
}

/* Returns the first error of the batch, or ZOK. */
static int batch_wait(struct zkr_batch *b, unsigned n, const struct zkr_one *ones)
{
    pthread_mutex_lock(&b->mu);
    while (b->left > 0)
        pthread_cond_wait(&b->cond, &b->mu);
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->mu);
    for (unsigned i = 0; i < n; i++)
        if (ones[i].rc != ZOK)
            return ones[i].rc;
    return ZOK;
}

/*
 * Reads node <path> whole into a malloc'd NUL-terminated *<data>
 * (*<len> bytes), with a data watch when <w> is not NULL. Returns a ZOO
 * error code (ZOK, ZNONODE, ZCONNECTIONLOSS, ...).
 */
int zkr_get_node(zhandle_t *zh, const char *path, watcher_fn w, void *wctx, char **data,
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
enum zkstore_rc zkr_fail(int zrc, const char *what, char **errp)
{
    if (zrc == ZNOAUTH) {
        errmsg_set(errp, "%s: not authorized: the node's ZooKeeper ACL refuses these "
                   "credentials", what);
        return ZKSTORE_NOAUTH;
    }
    errmsg_set(errp, "%s: %s", what, zerror(zrc));
    if (zkr_is_connection(zrc))
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
enum zkstore_rc zkr_read_map(zhandle_t *zh, const char *root, watcher_fn w, void *wctx,
                                struct smap **out, int32_t *cas, char **errp)
{
    enum zkstore_rc rc = ZKSTORE_ERROR;
    char *p_version = zkr_path(root, "version", NULL);
    char *p_settings = zkr_path(root, "settings", NULL);
    char *p_vbmap = zkr_path(root, "vbmap", NULL);
    char *p_shards = zkr_path(root, "shards", NULL);
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

        zrc = zkr_get_node(zh, p_version, w, wctx, &vtext, &vlen, &st1);
        if (zrc == ZNONODE) {
            if (w != NULL) {
                zrc = zoo_wexists(zh, p_version, w, wctx, &st);
                if (zrc == ZOK)
                    continue;   /* created meanwhile */
                if (zrc != ZNONODE) {
                    rc = zkr_fail(zrc, p_version, errp);
                    goto done;
                }
            }
            errmsg_set(errp, "no cluster at %s (%s does not exist; run shardctl init)", root,
                       p_version);
            rc = ZKSTORE_NO_CLUSTER;
            goto done;
        }
        if (zrc != ZOK) {
            rc = zkr_fail(zrc, p_version, errp);
            goto done;
        }
        if (parse_version(vtext, &version) < 0) {
            errmsg_set(errp, "%s: '%.40s' is not a map version", p_version, vtext);
            free(vtext);
            rc = ZKSTORE_INVALID;
            goto done;
        }
        free(vtext);

        /* settings and vbmap in flight while the shards are listed, then
         * every shard at once: three round trips, not 3 + shards */
        struct zkr_batch b1, b2;
        struct zkr_one two[2];
        char *const p_two[2] = { p_settings, p_vbmap };
        batch_start(zh, &b1, 2, p_two, two);
        int zrc_kids = zoo_get_children(zh, p_shards, 0, &kids);
        zrc = batch_wait(&b1, 2, two);
        settings = two[0].data;
        slen = two[0].len;
        vbmap = two[1].data;
        mlen = two[1].len;
        if (zrc == ZOK)
            zrc = zrc_kids;
        if (zrc == ZOK && kids.count > 0) {
            qsort(kids.data, (size_t)kids.count, sizeof(kids.data[0]), cmp_names);
            texts = calloc((size_t)kids.count, sizeof(*texts));
            lens = calloc((size_t)kids.count, sizeof(*lens));
            if (texts == NULL || lens == NULL)
                zrc = ZSYSTEMERROR;
        }
        if (zrc == ZOK && kids.count > 0) {
            unsigned n = (unsigned)kids.count;
            char **paths = calloc(n, sizeof(*paths));
            struct zkr_one *ones = calloc(n, sizeof(*ones));
            if (paths && ones) {
                for (unsigned i = 0; i < n; i++)
                    paths[i] = zkr_path(p_shards, kids.data[i], NULL);
                batch_start(zh, &b2, n, paths, ones);
                zrc = batch_wait(&b2, n, ones);
                for (unsigned i = 0; i < n; i++) {
                    texts[i] = ones[i].data;
                    lens[i] = (size_t)ones[i].len;
                    free(paths[i]);
                }
            } else {
                zrc = ZSYSTEMERROR;
            }
            free(paths);
            free(ones);
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
            rc = zkr_fail(zrc, root, errp);
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
int zkr_create_parents(zhandle_t *zh, const char *path, struct ACL_vector *acl)
{
    char buf[ZKR_ROOT_MAX + 64];
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
static const struct { char letter; const int *perm; } perm_letters[] = {
    { 'c', &ZOO_PERM_CREATE }, { 'd', &ZOO_PERM_DELETE }, { 'r', &ZOO_PERM_READ },
    { 'w', &ZOO_PERM_WRITE }, { 'a', &ZOO_PERM_ADMIN },
};

/* Appends the line of <a> to <buf> (<cap> bytes, NUL-terminated). */
void zkr_reg_acl_format(const struct ACL *a, char *buf, size_t cap)
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
int zkr_reg_acl_parse(char *text, struct ACL out[ZKR_REG_ACL_MAX], char *ids[ZKR_REG_ACL_MAX])
{
    int n = 0;
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (*line == '\0' || *line == '#')
            continue;
        if (strncmp(line, "acl ", 4) != 0 || n == ZKR_REG_ACL_MAX)
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
        if (perms == 0)
            return -1;
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

log_callback_fn zkr_lib_log_cb(void)
{
    return atomic_load(&lib_log) ? lib_log_trampoline : NULL;
}

void zkstore_library_log(zkstore_lib_log_fn *fn, int verbose)
{
    atomic_store(&lib_log, fn);
    /* level 0 turns the library's logging off altogether */
    zoo_set_debug_level(fn == NULL ? (ZooLogLevel)0
                                   : verbose ? ZOO_LOG_LEVEL_INFO : ZOO_LOG_LEVEL_ERROR);
}
