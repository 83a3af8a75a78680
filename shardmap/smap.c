/*
 * shardmap/smap.c - the immutable, refcounted shard-map snapshot and the
 * builder that makes it.
 *
 * Pure: no I/O, no logging, no clock. All validation of map content lives in
 * the builder so every producer (codec, ZooKeeper store, shardctl) enforces
 * the same rules.
 */
#include "shardmap/smap.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shardmap/errmsg.h"
#include "shardmap/vbucket.h"

#define VB_UNASSIGNED 0xffffu   /* SMAP_MAX_SHARDS < 0xffff, so never a shard index */

struct smap {
    atomic_uint           refs;
    uint64_t              version;
    uint32_t              n_vbuckets;
    unsigned              n_shards;
    struct smap_key       key;
    struct smap_shard    *shards;       /* [n_shards] */
    uint32_t             *shard_vbs;    /* [n_shards]: vbuckets each shard owns */
    uint16_t             *vb_shard;     /* [n_vbuckets]: always < n_shards */
    uint8_t              *vb_state;     /* [n_vbuckets]: enum smap_vb_state */
    uint32_t              n_frozen;     /* always: count of vb_state != NORMAL */
};

struct smap_builder {
    uint64_t              version;
    uint32_t              n_vbuckets;
    unsigned              n_shards;
    unsigned              cap_shards;
    struct smap_key       key;
    struct smap_shard    *shards;
    uint16_t             *vb_shard;     /* VB_UNASSIGNED until assigned */
    uint8_t              *vb_state;     /* [n_vbuckets]: enum smap_vb_state */
};

/* ---- snapshot ---------------------------------------------------------- */

struct smap *smap_ref(struct smap *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void smap_unref(struct smap *m)
{
    if (m == NULL)
        return;
    /* acq_rel: the last owner must see every write made before others let go */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(m->shards);
    free(m->shard_vbs);
    free(m->vb_shard);
    free(m->vb_state);
    free(m);
}

uint64_t smap_version(const struct smap *m) { return m->version; }
uint32_t smap_n_vbuckets(const struct smap *m) { return m->n_vbuckets; }
unsigned smap_n_shards(const struct smap *m) { return m->n_shards; }

const struct smap_shard *smap_shard(const struct smap *m, unsigned i)
{
    return &m->shards[i];
}

unsigned smap_shard_of_vbucket(const struct smap *m, uint32_t vb)
{
    return m->vb_shard[vb];
}

const char *smap_vb_state_name(enum smap_vb_state st)
{
    switch (st) {
    case SMAP_VB_NORMAL: return "normal";
    case SMAP_VB_FROZEN: return "frozen";
    }
    return "?";
}

enum smap_vb_state smap_vbucket_state(const struct smap *m, uint32_t vb)
{
    return (enum smap_vb_state)m->vb_state[vb];
}

uint32_t smap_n_frozen(const struct smap *m)
{
    return m->n_frozen;
}

uint32_t smap_vbuckets_of_shard(const struct smap *m, unsigned i)
{
    return m->shard_vbs[i];
}

int smap_find_shard(const struct smap *m, const char *name)
{
    for (unsigned i = 0; i < m->n_shards; i++)
        if (strcmp(m->shards[i].name, name) == 0)
            return (int)i;
    return -1;
}

const struct smap_key *smap_key_config(const struct smap *m)
{
    return &m->key;
}

void smap_key_apply(const struct smap_key *k, struct analyze_config *cfg)
{
    memcpy(cfg->key_columns, k->key_columns, sizeof(cfg->key_columns));
    cfg->n_key_columns = k->n_key_columns;
    cfg->key_type = k->key_type;
}

/* ---- endpoints and names ----------------------------------------------- */

bool smap_endpoint_eq(const struct smap_endpoint *a, const struct smap_endpoint *b)
{
    /* Host names compare case-insensitively (DNS); addresses have no case. */
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

static bool host_char_ok(unsigned char c)
{
    return isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':';
}

int smap_parse_endpoint(const char *text, size_t len, struct smap_endpoint *out, char **errp)
{
    const char *host;
    size_t host_len;
    const char *rest;

    if (len > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', len);
        if (close == NULL) {
            errmsg_set(errp, "'%.*s': missing ']'", (int)len, text);
            return -1;
        }
        host = text + 1;
        host_len = (size_t)(close - host);
        rest = close + 1;
        if (rest == text + len || *rest != ':') {
            errmsg_set(errp, "'%.*s': expected ':PORT' after ']'", (int)len, text);
            return -1;
        }
    } else {
        /* The last ':' splits, but a bare IPv6 address would be ambiguous. */
        const char *colon = memchr(text, ':', len);
        if (colon == NULL) {
            errmsg_set(errp, "'%.*s': expected HOST:PORT", (int)len, text);
            return -1;
        }
        if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - text)) != NULL) {
            errmsg_set(errp, "'%.*s': write an IPv6 address as [ADDR]:PORT", (int)len, text);
            return -1;
        }
        host = text;
        host_len = (size_t)(colon - text);
        rest = colon;
    }
    if (host_len == 0) {
        errmsg_set(errp, "'%.*s': empty host", (int)len, text);
        return -1;
    }
    if (host_len >= SMAP_HOST_MAX) {
        errmsg_set(errp, "host longer than %d bytes", SMAP_HOST_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < host_len; i++) {
        if (!host_char_ok((unsigned char)host[i])) {
            errmsg_set(errp, "'%.*s': bad character in host", (int)len, text);
            return -1;
        }
    }
    const char *p = rest + 1;
    const char *end = text + len;
    if (p == end) {
        errmsg_set(errp, "'%.*s': missing port", (int)len, text);
        return -1;
    }
    unsigned long port = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            errmsg_set(errp, "'%.*s': port is not a number", (int)len, text);
            return -1;
        }
        port = port * 10 + (unsigned long)(*p - '0');
        if (port > 65535) {
            errmsg_set(errp, "port %.*s out of range", (int)(end - (rest + 1)), rest + 1);
            return -1;
        }
    }
    if (port == 0) {
        errmsg_set(errp, "port 0 out of range");
        return -1;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = (uint16_t)port;
    return 0;
}

void smap_format_endpoint(const struct smap_endpoint *ep, char *buf, size_t size)
{
    if (strchr(ep->host, ':') != NULL)
        snprintf(buf, size, "[%s]:%u", ep->host, (unsigned)ep->port);
    else
        snprintf(buf, size, "%s:%u", ep->host, (unsigned)ep->port);
}

int smap_check_name(const char *name, char **errp)
{
    size_t len = strnlen(name, SMAP_NAME_MAX);
    if (len == 0) {
        errmsg_set(errp, "empty shard name");
        return -1;
    }
    if (len >= SMAP_NAME_MAX) {
        errmsg_set(errp, "shard name longer than %d bytes", SMAP_NAME_MAX - 1);
        return -1;
    }
    if (name[0] == '.' || name[0] == '-') {
        errmsg_set(errp, "shard name '%s' starts with '%c'", name, name[0]);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-') {
            errmsg_set(errp, "shard name '%s': bad character 0x%02x", name, c);
            return -1;
        }
    }
    return 0;
}

/* Key column names are SQL identifiers the analyzer compares against. */
static int check_key_config(const struct smap_key *key, char **errp)
{
    if (key->n_key_columns == 0 || key->n_key_columns > ANALYZE_MAX_KEY_COLS) {
        errmsg_set(errp, "key_columns: need 1..%d columns", ANALYZE_MAX_KEY_COLS);
        return -1;
    }
    for (unsigned i = 0; i < key->n_key_columns; i++) {
        const char *c = key->key_columns[i];
        size_t len = strnlen(c, ANALYZE_NAME_MAX);
        if (len == 0 || len >= ANALYZE_NAME_MAX) {
            errmsg_set(errp, "key_columns: column %u: need 1..%d bytes", i + 1,
                       ANALYZE_NAME_MAX - 1);
            return -1;
        }
        for (size_t j = 0; j < len; j++) {
            unsigned char ch = (unsigned char)c[j];
            if (!isalnum(ch) && ch != '_' && ch != '$') {
                errmsg_set(errp, "key_columns: '%s': bad character 0x%02x", c, ch);
                return -1;
            }
        }
        for (unsigned k = 0; k < i; k++) {
            if (strcasecmp(key->key_columns[k], c) == 0) {
                errmsg_set(errp, "key_columns: '%s' listed twice", c);
                return -1;
            }
        }
    }
    if (key->key_type != ANALYZE_KEY_INT && key->key_type != ANALYZE_KEY_STRING) {
        errmsg_set(errp, "key_type: unknown type %d", (int)key->key_type);
        return -1;
    }
    return 0;
}

/* ---- builder ----------------------------------------------------------- */

struct smap_builder *smap_builder_new(uint32_t n_vbuckets, const struct smap_key *key,
                                      char **errp)
{
    if (n_vbuckets == 0 || n_vbuckets > VBUCKET_MAX_COUNT) {
        errmsg_set(errp, "vbuckets: %" PRIu32 " out of range 1..%u", n_vbuckets,
                   VBUCKET_MAX_COUNT);
        return NULL;
    }
    if (check_key_config(key, errp) < 0)
        return NULL;
    struct smap_builder *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        errmsg_set(errp, "out of memory");
        return NULL;
    }
    b->n_vbuckets = n_vbuckets;
    b->key = *key;
    b->vb_shard = malloc(n_vbuckets * sizeof(*b->vb_shard));
    b->vb_state = calloc(n_vbuckets, sizeof(*b->vb_state));   /* all SMAP_VB_NORMAL */
    if (b->vb_shard == NULL || b->vb_state == NULL) {
        free(b->vb_shard);
        free(b->vb_state);
        free(b);
        errmsg_set(errp, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < n_vbuckets; i++)
        b->vb_shard[i] = VB_UNASSIGNED;
    return b;
}

struct smap_builder *smap_builder_from(const struct smap *m)
{
    struct smap_builder *b = smap_builder_new(m->n_vbuckets, &m->key, NULL);
    if (b == NULL)
        return NULL;
    b->shards = malloc((m->n_shards ? m->n_shards : 1) * sizeof(*b->shards));
    if (b->shards == NULL) {
        smap_builder_free(b);
        return NULL;
    }
    memcpy(b->shards, m->shards, m->n_shards * sizeof(*b->shards));
    b->n_shards = b->cap_shards = m->n_shards;
    memcpy(b->vb_shard, m->vb_shard, m->n_vbuckets * sizeof(*b->vb_shard));
    memcpy(b->vb_state, m->vb_state, m->n_vbuckets * sizeof(*b->vb_state));
    b->version = m->version;
    return b;
}

void smap_builder_free(struct smap_builder *b)
{
    if (b == NULL)
        return;
    free(b->shards);
    free(b->vb_shard);
    free(b->vb_state);
    free(b);
}

void smap_builder_set_version(struct smap_builder *b, uint64_t version)
{
    b->version = version;
}

static int builder_find(const struct smap_builder *b, const char *name)
{
    for (unsigned i = 0; i < b->n_shards; i++)
        if (strcmp(b->shards[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Returns the name of the shard (other than index <skip>) that uses <ep> as
 * master or standby, or NULL. */
static const char *endpoint_user(const struct smap_builder *b, const struct smap_endpoint *ep,
                                 int skip)
{
    for (unsigned i = 0; i < b->n_shards; i++) {
        if ((int)i == skip)
            continue;
        const struct smap_shard *s = &b->shards[i];
        if (smap_endpoint_eq(&s->master, ep))
            return s->name;
        for (unsigned j = 0; j < s->n_standbys; j++)
            if (smap_endpoint_eq(&s->standbys[j], ep))
                return s->name;
    }
    return NULL;
}

static int check_endpoint(const struct smap_endpoint *ep, const char *what, char **errp)
{
    char tmp[SMAP_ENDPOINT_STR_MAX];
    size_t len = strnlen(ep->host, SMAP_HOST_MAX);
    if (len == 0 || len >= SMAP_HOST_MAX) {
        errmsg_set(errp, "%s: host must be 1..%d bytes", what, SMAP_HOST_MAX - 1);
        return -1;
    }
    if (ep->port == 0) {
        errmsg_set(errp, "%s: port 0 out of range", what);
        return -1;
    }
    /* Round-trip through the parser so a struct filled by hand obeys the
     * same character rules as text. */
    smap_format_endpoint(ep, tmp, sizeof(tmp));
    struct smap_endpoint back;
    if (smap_parse_endpoint(tmp, strlen(tmp), &back, errp) < 0) {
        errmsg_prefix(errp, "%s", what);
        return -1;
    }
    return 0;
}

int smap_builder_add_shard(struct smap_builder *b, const struct smap_shard *s, char **errp)
{
    if (smap_check_name(s->name, errp) < 0)
        return -1;
    if (builder_find(b, s->name) >= 0) {
        errmsg_set(errp, "shard '%s' defined twice", s->name);
        return -1;
    }
    if (b->n_shards >= SMAP_MAX_SHARDS) {
        errmsg_set(errp, "shard '%s': more than %d shards", s->name, SMAP_MAX_SHARDS);
        return -1;
    }
    if (s->n_standbys > SMAP_MAX_STANDBYS) {
        errmsg_set(errp, "shard '%s': more than %d standbys", s->name, SMAP_MAX_STANDBYS);
        return -1;
    }
    if (check_endpoint(&s->master, "master", errp) < 0)
        goto bad;
    for (unsigned i = 0; i < s->n_standbys; i++)
        if (check_endpoint(&s->standbys[i], "standby", errp) < 0)
            goto bad;
    /* One server in two roles (or two shards) would mix shards' data. */
    for (unsigned i = 0; i <= s->n_standbys; i++) {
        const struct smap_endpoint *ep = i == 0 ? &s->master : &s->standbys[i - 1];
        char str[SMAP_ENDPOINT_STR_MAX];
        smap_format_endpoint(ep, str, sizeof(str));
        const char *user = endpoint_user(b, ep, -1);
        if (user != NULL) {
            errmsg_set(errp, "%s is already used by shard '%s'", str, user);
            goto bad;
        }
        for (unsigned j = 0; j < i; j++) {
            const struct smap_endpoint *other = j == 0 ? &s->master : &s->standbys[j - 1];
            if (smap_endpoint_eq(ep, other)) {
                errmsg_set(errp, "%s listed twice", str);
                goto bad;
            }
        }
    }
    if (b->n_shards == b->cap_shards) {
        unsigned cap = b->cap_shards ? b->cap_shards * 2 : 8;
        struct smap_shard *n = realloc(b->shards, cap * sizeof(*n));
        if (n == NULL) {
            errmsg_set(errp, "out of memory");
            return -1;
        }
        b->shards = n;
        b->cap_shards = cap;
    }
    struct smap_shard *d = &b->shards[b->n_shards++];
    memset(d, 0, sizeof(*d));
    memcpy(d->name, s->name, strlen(s->name) + 1);
    d->master = s->master;
    d->n_standbys = s->n_standbys;
    for (unsigned i = 0; i < s->n_standbys; i++)
        d->standbys[i] = s->standbys[i];
    d->paused = s->paused;
    return 0;
bad:
    errmsg_prefix(errp, "shard '%s'", s->name);
    return -1;
}

int smap_builder_set_master(struct smap_builder *b, const char *name,
                            const struct smap_endpoint *ep, char **errp)
{
    int i = builder_find(b, name);
    if (i < 0) {
        errmsg_set(errp, "no shard named '%s'", name);
        return -1;
    }
    if (check_endpoint(ep, "master", errp) < 0)
        goto bad;
    const char *user = endpoint_user(b, ep, i);
    if (user != NULL) {
        char str[SMAP_ENDPOINT_STR_MAX];
        smap_format_endpoint(ep, str, sizeof(str));
        errmsg_set(errp, "%s is already used by shard '%s'", str, user);
        goto bad;
    }
    struct smap_shard *s = &b->shards[i];
    unsigned k = 0;
    for (unsigned j = 0; j < s->n_standbys; j++)
        if (!smap_endpoint_eq(&s->standbys[j], ep))
            s->standbys[k++] = s->standbys[j];
    for (unsigned j = k; j < s->n_standbys; j++)
        memset(&s->standbys[j], 0, sizeof(s->standbys[j]));
    s->n_standbys = k;
    s->master = *ep;
    return 0;
bad:
    errmsg_prefix(errp, "shard '%s'", name);
    return -1;
}

int smap_builder_remove_shard(struct smap_builder *b, const char *name, char **errp)
{
    int i = builder_find(b, name);
    uint32_t owned = 0;
    if (i < 0) {
        errmsg_set(errp, "no shard named '%s'", name);
        return -1;
    }
    if (b->n_shards == 1) {
        errmsg_set(errp, "shard '%s' is the last shard", name);
        return -1;
    }
    for (uint32_t vb = 0; vb < b->n_vbuckets; vb++)
        owned += b->vb_shard[vb] == (uint16_t)i;
    if (owned) {
        errmsg_set(errp, "shard '%s' still owns %" PRIu32 " vbuckets", name, owned);
        return -1;
    }
    /* indices above <i> shift down by one; VB_UNASSIGNED stays as it is */
    for (uint32_t vb = 0; vb < b->n_vbuckets; vb++)
        if (b->vb_shard[vb] != VB_UNASSIGNED && b->vb_shard[vb] > (uint16_t)i)
            b->vb_shard[vb]--;
    memmove(&b->shards[i], &b->shards[i + 1],
            (b->n_shards - (unsigned)i - 1) * sizeof(b->shards[0]));
    b->n_shards--;
    return 0;
}

int smap_builder_set_paused(struct smap_builder *b, const char *name, bool paused, char **errp)
{
    int i = builder_find(b, name);
    if (i < 0) {
        errmsg_set(errp, "no shard named '%s'", name);
        return -1;
    }
    b->shards[i].paused = paused;
    return 0;
}

int smap_builder_add_standby(struct smap_builder *b, const char *name,
                             const struct smap_endpoint *ep, char **errp)
{
    int i = builder_find(b, name);
    if (i < 0) {
        errmsg_set(errp, "no shard named '%s'", name);
        return -1;
    }
    struct smap_shard *s = &b->shards[i];
    char str[SMAP_ENDPOINT_STR_MAX];
    smap_format_endpoint(ep, str, sizeof(str));
    if (check_endpoint(ep, "standby", errp) < 0)
        goto bad;
    /* Its own shard counts too: a server is one shard's master or one of its
     * standbys, never two of these. */
    const char *user = endpoint_user(b, ep, -1);
    if (user != NULL) {
        errmsg_set(errp, "%s is already used by shard '%s'", str, user);
        goto bad;
    }
    if (s->n_standbys == SMAP_MAX_STANDBYS) {
        errmsg_set(errp, "already %d standbys", SMAP_MAX_STANDBYS);
        goto bad;
    }
    s->standbys[s->n_standbys++] = *ep;
    return 0;
bad:
    errmsg_prefix(errp, "shard '%s'", name);
    return -1;
}

int smap_builder_assign(struct smap_builder *b, uint32_t first, uint32_t last,
                        const char *name, char **errp)
{
    if (first > last) {
        errmsg_set(errp, "vbucket range %" PRIu32 "-%" PRIu32 " is backwards", first, last);
        return -1;
    }
    if (last >= b->n_vbuckets) {
        errmsg_set(errp, "vbucket %" PRIu32 " out of range 0..%" PRIu32, last,
                   b->n_vbuckets - 1);
        return -1;
    }
    int i = builder_find(b, name);
    if (i < 0) {
        errmsg_set(errp, "unknown shard '%s'", name);
        return -1;
    }
    for (uint32_t vb = first; vb <= last; vb++) {
        if (b->vb_shard[vb] != VB_UNASSIGNED) {
            errmsg_set(errp, "vbucket %" PRIu32 " already assigned to shard '%s'", vb,
                       b->shards[b->vb_shard[vb]].name);
            return -1;
        }
    }
    for (uint32_t vb = first; vb <= last; vb++)
        b->vb_shard[vb] = (uint16_t)i;
    return 0;
}

int smap_builder_reassign(struct smap_builder *b, const uint8_t *set, const char *name,
                          char **errp)
{
    int i = builder_find(b, name);
    if (i < 0) {
        errmsg_set(errp, "unknown shard '%s'", name);
        return -1;
    }
    for (uint32_t vb = 0; vb < b->n_vbuckets; vb++)
        if (set[vb])
            b->vb_shard[vb] = (uint16_t)i;
    return 0;
}

int smap_builder_set_state(struct smap_builder *b, uint32_t first, uint32_t last,
                           enum smap_vb_state st, char **errp)
{
    if (first > last) {
        errmsg_set(errp, "vbucket range %" PRIu32 "-%" PRIu32 " is backwards", first, last);
        return -1;
    }
    if (last >= b->n_vbuckets) {
        errmsg_set(errp, "vbucket %" PRIu32 " out of range 0..%" PRIu32, last,
                   b->n_vbuckets - 1);
        return -1;
    }
    if (st != SMAP_VB_NORMAL && st != SMAP_VB_FROZEN) {
        errmsg_set(errp, "unknown vbucket state %d", (int)st);
        return -1;
    }
    for (uint32_t vb = first; vb <= last; vb++)
        b->vb_state[vb] = (uint8_t)st;
    return 0;
}

int smap_builder_spread(struct smap_builder *b, char **errp)
{
    if (b->n_shards == 0) {
        errmsg_set(errp, "no shards to spread vbuckets over");
        return -1;
    }
    /* Shard i gets [i*n/k, (i+1)*n/k): sizes differ by at most one. */
    uint64_t n = b->n_vbuckets, k = b->n_shards;
    for (uint64_t vb = 0; vb < n; vb++)
        b->vb_shard[vb] = (uint16_t)(vb * k / n);
    return 0;
}

struct smap *smap_builder_finish(struct smap_builder *b, char **errp)
{
    struct smap *m = NULL;
    if (b->n_shards == 0) {
        errmsg_set(errp, "map has no shards");
        goto out;
    }
    for (uint32_t vb = 0; vb < b->n_vbuckets; vb++) {
        if (b->vb_shard[vb] == VB_UNASSIGNED) {
            errmsg_set(errp, "vbucket %" PRIu32 " is not assigned to any shard", vb);
            goto out;
        }
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        goto oom;
    m->shard_vbs = calloc(b->n_shards, sizeof(*m->shard_vbs));
    m->shards = malloc(b->n_shards * sizeof(*m->shards));
    if (m->shard_vbs == NULL || m->shards == NULL)
        goto oom;
    memcpy(m->shards, b->shards, b->n_shards * sizeof(*m->shards));
    for (uint32_t vb = 0; vb < b->n_vbuckets; vb++) {
        m->shard_vbs[b->vb_shard[vb]]++;
        m->n_frozen += b->vb_state[vb] != SMAP_VB_NORMAL;
    }
    atomic_init(&m->refs, 1);
    m->version = b->version;
    m->n_vbuckets = b->n_vbuckets;
    m->n_shards = b->n_shards;
    m->key = b->key;
    m->vb_shard = b->vb_shard;     /* handed over: the builder is consumed */
    b->vb_shard = NULL;
    m->vb_state = b->vb_state;
    b->vb_state = NULL;
    goto out;
oom:
    if (m != NULL) {
        free(m->shard_vbs);
        free(m->shards);
        free(m);
        m = NULL;
    }
    errmsg_set(errp, "out of memory");
out:
    smap_builder_free(b);
    return m;
}
