/*
 * shardmap/mapcodec.c - shard map text <-> struct smap.
 *
 * Pure and fuzzed (tests/fuzz/fuzz_mapcodec.c): any bytes in, a snapshot or
 * an error message out. Syntax lives here; every semantic rule (ranges,
 * names, duplicates, completeness) is the smap builder's.
 */
#include "shardmap/mapcodec.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/errmsg.h"
#include "shardmap/smap.h"
#include "shardmap/vbucket.h"

#define MAX_TOKENS 16

enum line_kind {
    KIND_VERSION    = 1 << 0,
    KIND_SETTING    = 1 << 1,   /* vbuckets, key_columns, key_type */
    KIND_SHARD      = 1 << 2,
    KIND_VB         = 1 << 3,
    KIND_SHARD_BODY = 1 << 4,   /* a shard node: "master=... standby=..." */
};

struct tok {
    const char *p;
    size_t      len;
};

struct parser {
    uint64_t              version;
    uint32_t              n_vbuckets;
    struct smap_key       key;
    unsigned              seen;           /* settings already given (bits below) */
    struct smap_builder  *b;              /* created at the first shard or vb line */
    const char           *body_name;      /* KIND_SHARD_BODY: the node's name */
    unsigned              n_body_lines;
};

#define SEEN_VERSION   1u
#define SEEN_VBUCKETS  2u
#define SEEN_KEYCOLS   4u
#define SEEN_KEYTYPE   8u

static bool tok_is(const struct tok *t, const char *s)
{
    size_t n = strlen(s);
    return t->len == n && memcmp(t->p, s, n) == 0;
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
static int parse_u64(const char *p, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_u32(const char *p, size_t len, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(p, len, &v) < 0 || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Copies token <t> into <buf>/<size> as a C string; -1 when it does not fit. */
static int tok_cstr(const struct tok *t, char *buf, size_t size)
{
    if (t->len >= size)
        return -1;
    memcpy(buf, t->p, t->len);
    buf[t->len] = '\0';
    return 0;
}

static int ensure_builder(struct parser *ps, char **errp)
{
    if (ps->b != NULL)
        return 0;
    ps->b = smap_builder_new(ps->n_vbuckets, &ps->key, errp);
    if (ps->b == NULL)
        return -1;
    smap_builder_set_version(ps->b, ps->version);
    return 0;
}

static int setting_once(struct parser *ps, unsigned bit, const struct tok *name, char **errp)
{
    if (ps->b != NULL) {
        errmsg_set(errp, "'%.*s' must come before shard and vb lines", (int)name->len,
                   name->p);
        return -1;
    }
    if (ps->seen & bit) {
        errmsg_set(errp, "'%.*s' given twice", (int)name->len, name->p);
        return -1;
    }
    ps->seen |= bit;
    return 0;
}

static int need_args(const struct tok *t, unsigned n, unsigned want, char **errp)
{
    if (n != want) {
        errmsg_set(errp, "'%.*s' takes %u value%s", (int)t[0].len, t[0].p, want - 1,
                   want == 2 ? "" : "s");
        return -1;
    }
    return 0;
}

static int do_version(struct parser *ps, const struct tok *t, unsigned n, char **errp)
{
    if (need_args(t, n, 2, errp) < 0 || setting_once(ps, SEEN_VERSION, &t[0], errp) < 0)
        return -1;
    if (parse_u64(t[1].p, t[1].len, &ps->version) < 0) {
        errmsg_set(errp, "version '%.*s' is not an unsigned 64-bit number", (int)t[1].len,
                   t[1].p);
        return -1;
    }
    return 0;
}

static int do_vbuckets(struct parser *ps, const struct tok *t, unsigned n, char **errp)
{
    if (need_args(t, n, 2, errp) < 0 || setting_once(ps, SEEN_VBUCKETS, &t[0], errp) < 0)
        return -1;
    if (parse_u32(t[1].p, t[1].len, &ps->n_vbuckets) < 0 || ps->n_vbuckets == 0 ||
        ps->n_vbuckets > VBUCKET_MAX_COUNT) {
        errmsg_set(errp, "vbuckets '%.*s' out of range 1..%u", (int)t[1].len, t[1].p,
                   VBUCKET_MAX_COUNT);
        return -1;
    }
    return 0;
}

static int do_key_columns(struct parser *ps, const struct tok *t, unsigned n, char **errp)
{
    if (setting_once(ps, SEEN_KEYCOLS, &t[0], errp) < 0)
        return -1;
    if (n < 2 || n - 1 > ANALYZE_MAX_KEY_COLS) {
        errmsg_set(errp, "key_columns takes 1..%d column names", ANALYZE_MAX_KEY_COLS);
        return -1;
    }
    ps->key.n_key_columns = n - 1;
    for (unsigned i = 1; i < n; i++) {
        if (tok_cstr(&t[i], ps->key.key_columns[i - 1], ANALYZE_NAME_MAX) < 0) {
            errmsg_set(errp, "key column '%.*s' longer than %d bytes", (int)t[i].len,
                       t[i].p, ANALYZE_NAME_MAX - 1);
            return -1;
        }
    }
    return 0;
}

static int do_key_type(struct parser *ps, const struct tok *t, unsigned n, char **errp)
{
    if (need_args(t, n, 2, errp) < 0 || setting_once(ps, SEEN_KEYTYPE, &t[0], errp) < 0)
        return -1;
    if (tok_is(&t[1], "int")) {
        ps->key.key_type = ANALYZE_KEY_INT;
    } else if (tok_is(&t[1], "string")) {
        ps->key.key_type = ANALYZE_KEY_STRING;
    } else {
        errmsg_set(errp, "key_type '%.*s': expected int or string", (int)t[1].len, t[1].p);
        return -1;
    }
    return 0;
}

/* <t>/<n>: the shard's fields ("master=H:P", "standby=H:P"), name given apart. */
static int do_shard_fields(struct parser *ps, const char *name, const struct tok *t,
                           unsigned n, char **errp)
{
    struct smap_shard s;
    bool have_master = false;

    memset(&s, 0, sizeof(s));
    if (ensure_builder(ps, errp) < 0)
        return -1;
    if (smap_check_name(name, errp) < 0)
        return -1;
    memcpy(s.name, name, strlen(name) + 1);
    for (unsigned i = 0; i < n; i++) {
        const char *eq = memchr(t[i].p, '=', t[i].len);
        size_t klen = eq ? (size_t)(eq - t[i].p) : t[i].len;
        struct tok key = { t[i].p, klen };
        const char *val = eq ? eq + 1 : NULL;
        size_t vlen = eq ? t[i].len - klen - 1 : 0;
        struct smap_endpoint *ep;
        const char *what;

        if (tok_is(&key, "master") && eq) {
            if (have_master) {
                errmsg_set(errp, "shard '%s': master given twice", name);
                return -1;
            }
            have_master = true;
            ep = &s.master;
            what = "master";
        } else if (tok_is(&key, "standby") && eq) {
            if (s.n_standbys == SMAP_MAX_STANDBYS) {
                errmsg_set(errp, "shard '%s': more than %d standbys", name, SMAP_MAX_STANDBYS);
                return -1;
            }
            ep = &s.standbys[s.n_standbys++];
            what = "standby";
        } else if (tok_is(&key, "paused") && eq && vlen == 1 && (*val == '0' || *val == '1')) {
            s.paused = *val == '1';
            continue;
        } else {
            errmsg_set(errp, "shard '%s': unknown field '%.*s' (expected master=HOST:PORT, "
                       "standby=HOST:PORT or paused=0|1)", name, (int)t[i].len, t[i].p);
            return -1;
        }
        if (smap_parse_endpoint(val, vlen, ep, errp) < 0) {
            errmsg_prefix(errp, "shard '%s': %s", name, what);
            return -1;
        }
    }
    if (!have_master) {
        errmsg_set(errp, "shard '%s': no master=HOST:PORT", name);
        return -1;
    }
    return smap_builder_add_shard(ps->b, &s, errp);
}

static int do_shard(struct parser *ps, const struct tok *t, unsigned n, char **errp)
{
    char name[SMAP_NAME_MAX];
    if (n < 2) {
        errmsg_set(errp, "shard line needs a name and master=HOST:PORT");
        return -1;
    }
    if (tok_cstr(&t[1], name, sizeof(name)) < 0) {
        errmsg_set(errp, "shard name '%.*s' longer than %d bytes", (int)t[1].len, t[1].p,
                   SMAP_NAME_MAX - 1);
        return -1;
    }
    return do_shard_fields(ps, name, t + 2, n - 2, errp);
}

static int do_vb(struct parser *ps, const struct tok *t, unsigned n, char **errp)
{
    char name[SMAP_NAME_MAX];
    uint32_t first, last;

    enum smap_vb_state st = SMAP_VB_NORMAL;
    if (n == 4 && tok_is(&t[3], "frozen")) {
        st = SMAP_VB_FROZEN;
    } else if (n == 4) {
        errmsg_set(errp, "vb %.*s: unknown state '%.*s' (expected frozen)", (int)t[1].len,
                   t[1].p, (int)(t[3].len > 80 ? 80 : t[3].len), t[3].p);
        return -1;
    } else if (n != 3) {
        errmsg_set(errp, "'vb' takes a range, a shard and an optional state");
        return -1;
    }
    if (ensure_builder(ps, errp) < 0)
        return -1;
    const char *dash = memchr(t[1].p, '-', t[1].len);
    size_t flen = dash ? (size_t)(dash - t[1].p) : t[1].len;
    if (parse_u32(t[1].p, flen, &first) < 0 ||
        (dash && parse_u32(dash + 1, t[1].len - flen - 1, &last) < 0)) {
        errmsg_set(errp, "vb '%.*s': expected N or N-M", (int)t[1].len, t[1].p);
        return -1;
    }
    if (!dash)
        last = first;
    if (tok_cstr(&t[2], name, sizeof(name)) < 0) {
        errmsg_set(errp, "vb %.*s: unknown shard '%.*s'", (int)t[1].len, t[1].p,
                   (int)(t[2].len > 80 ? 80 : t[2].len), t[2].p);
        return -1;
    }
    if (smap_builder_assign(ps->b, first, last, name, errp) < 0 ||
        smap_builder_set_state(ps->b, first, last, st, errp) < 0) {
        errmsg_prefix(errp, "vb %.*s", (int)t[1].len, t[1].p);
        return -1;
    }
    return 0;
}

/* One line, comment and line end already cut off. */
static int parse_line(struct parser *ps, const char *line, size_t len, unsigned allowed,
                      char **errp)
{
    struct tok t[MAX_TOKENS];
    unsigned n = 0;
    size_t i = 0;

    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
            i++;
        if (n == MAX_TOKENS) {
            errmsg_set(errp, "more than %d fields", MAX_TOKENS);
            return -1;
        }
        t[n].p = line + start;
        t[n].len = i - start;
        n++;
    }
    if (n == 0)
        return 0;

    if (allowed & KIND_SHARD_BODY) {
        if (++ps->n_body_lines > 1) {
            errmsg_set(errp, "a shard node holds one line");
            return -1;
        }
        return do_shard_fields(ps, ps->body_name, t, n, errp);
    }

    unsigned kind;
    int (*fn)(struct parser *, const struct tok *, unsigned, char **);
    if (tok_is(&t[0], "version")) {
        kind = KIND_VERSION, fn = do_version;
    } else if (tok_is(&t[0], "vbuckets")) {
        kind = KIND_SETTING, fn = do_vbuckets;
    } else if (tok_is(&t[0], "key_columns")) {
        kind = KIND_SETTING, fn = do_key_columns;
    } else if (tok_is(&t[0], "key_type")) {
        kind = KIND_SETTING, fn = do_key_type;
    } else if (tok_is(&t[0], "shard")) {
        kind = KIND_SHARD, fn = do_shard;
    } else if (tok_is(&t[0], "vb")) {
        kind = KIND_VB, fn = do_vb;
    } else {
        errmsg_set(errp, "unknown keyword '%.*s'", (int)(t[0].len > 80 ? 80 : t[0].len),
                   t[0].p);
        return -1;
    }
    if (!(kind & allowed)) {
        errmsg_set(errp, "'%.*s' line not allowed here", (int)t[0].len, t[0].p);
        return -1;
    }
    return fn(ps, t, n, errp);
}

static int parse_text(struct parser *ps, const char *text, size_t len, unsigned allowed,
                      char **errp)
{
    size_t pos = 0;
    unsigned lineno = 0;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t line_len = end - pos;
        const char *line = text + pos;

        lineno++;
        pos = nl ? end + 1 : len;
        if (line_len > MAPCODEC_LINE_MAX) {
            errmsg_set(errp, "line %u: longer than %d bytes", lineno, MAPCODEC_LINE_MAX);
            return -1;
        }
        if (memchr(line, '\0', line_len) != NULL) {
            errmsg_set(errp, "line %u: NUL byte", lineno);
            return -1;
        }
        const char *hash = memchr(line, '#', line_len);
        if (hash != NULL)
            line_len = (size_t)(hash - line);
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        for (size_t i = 0; i < line_len; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c < 0x20 && c != '\t') {
                errmsg_set(errp, "line %u: control character 0x%02x", lineno, c);
                return -1;
            }
        }
        if (parse_line(ps, line, line_len, allowed, errp) < 0) {
            errmsg_prefix(errp, "line %u", lineno);
            return -1;
        }
    }
    return 0;
}

/* The defaults of docs/zookeeper.md. Not analyze_config_default(): the
 * settings are part of the map format and must not move if the analyzer's
 * defaults ever do. */
static void key_default(struct smap_key *key)
{
    memset(key, 0, sizeof(*key));
    memcpy(key->key_columns[0], "userid", sizeof("userid"));
    key->n_key_columns = 1;
    key->key_type = ANALYZE_KEY_INT;
}

static void parser_init(struct parser *ps)
{
    memset(ps, 0, sizeof(*ps));
    ps->n_vbuckets = VBUCKET_DEFAULT_COUNT;
    key_default(&ps->key);
}

static struct smap *parser_finish(struct parser *ps, char **errp)
{
    if (ensure_builder(ps, errp) < 0)
        return NULL;
    struct smap_builder *b = ps->b;
    ps->b = NULL;
    return smap_builder_finish(b, errp);
}

struct smap *mapcodec_parse(const char *text, size_t len, char **errp)
{
    struct parser ps;
    parser_init(&ps);
    if (parse_text(&ps, text, len, KIND_VERSION | KIND_SETTING | KIND_SHARD | KIND_VB,
                   errp) < 0) {
        smap_builder_free(ps.b);
        return NULL;
    }
    return parser_finish(&ps, errp);
}

struct smap *mapcodec_parse_parts(const struct mapcodec_parts *p, char **errp)
{
    struct parser ps;
    parser_init(&ps);
    ps.version = p->version;
    ps.seen = SEEN_VERSION;
    if (parse_text(&ps, p->settings, p->settings_len, KIND_SETTING, errp) < 0) {
        errmsg_prefix(errp, "settings");
        goto bad;
    }
    for (unsigned i = 0; i < p->n_shards; i++) {
        ps.body_name = p->shard_names[i];
        ps.n_body_lines = 0;
        if (parse_text(&ps, p->shard_texts[i], p->shard_lens[i], KIND_SHARD_BODY, errp) < 0) {
            errmsg_prefix(errp, "shards/%s", p->shard_names[i]);
            goto bad;
        }
        if (ps.n_body_lines == 0) {
            errmsg_set(errp, "shards/%s: empty (expected master=HOST:PORT)", p->shard_names[i]);
            goto bad;
        }
    }
    if (parse_text(&ps, p->vbmap, p->vbmap_len, KIND_VB, errp) < 0) {
        errmsg_prefix(errp, "vbmap");
        goto bad;
    }
    return parser_finish(&ps, errp);
bad:
    smap_builder_free(ps.b);
    return NULL;
}

/* ---- formatting -------------------------------------------------------- */

static void put_settings(FILE *f, const struct smap *m)
{
    const struct smap_key *k = smap_key_config(m);
    fprintf(f, "vbuckets %" PRIu32 "\nkey_columns", smap_n_vbuckets(m));
    for (unsigned i = 0; i < k->n_key_columns; i++)
        fprintf(f, " %s", k->key_columns[i]);
    fprintf(f, "\nkey_type %s\n", k->key_type == ANALYZE_KEY_STRING ? "string" : "int");
}

static void put_shard_fields(FILE *f, const struct smap_shard *s)
{
    char ep[SMAP_ENDPOINT_STR_MAX];
    smap_format_endpoint(&s->master, ep, sizeof(ep));
    fprintf(f, "master=%s", ep);
    for (unsigned j = 0; j < s->n_standbys; j++) {
        smap_format_endpoint(&s->standbys[j], ep, sizeof(ep));
        fprintf(f, " standby=%s", ep);
    }
    if (s->paused)
        fputs(" paused=1", f);
    fputc('\n', f);
}

static void put_vbmap(FILE *f, const struct smap *m)
{
    uint32_t n = smap_n_vbuckets(m);
    uint32_t start = 0;
    /* A range ends where the shard or the state changes; a map without
     * frozen vbuckets reads exactly as before states existed. */
    for (uint32_t vb = 1; vb <= n; vb++) {
        if (vb < n && smap_shard_of_vbucket(m, vb) == smap_shard_of_vbucket(m, start) &&
            smap_vbucket_state(m, vb) == smap_vbucket_state(m, start))
            continue;
        const char *name = smap_shard(m, smap_shard_of_vbucket(m, start))->name;
        const char *state = smap_vbucket_state(m, start) == SMAP_VB_NORMAL ? "" : " frozen";
        if (start == vb - 1)
            fprintf(f, "vb %" PRIu32 " %s%s\n", start, name, state);
        else
            fprintf(f, "vb %" PRIu32 "-%" PRIu32 " %s%s\n", start, vb - 1, name, state);
        start = vb;
    }
}

/* Runs <put> into a memory stream; returns its malloc'd text or NULL. */
#define WITH_STREAM(body)                                   \
    do {                                                    \
        char *buf = NULL;                                   \
        size_t size = 0;                                    \
        FILE *f = open_memstream(&buf, &size);              \
        if (f == NULL)                                      \
            return NULL;                                    \
        body;                                               \
        if (ferror(f)) {                                    \
            fclose(f);                                      \
            free(buf);                                      \
            return NULL;                                    \
        }                                                   \
        if (fclose(f) != 0) {                               \
            free(buf);                                      \
            return NULL;                                    \
        }                                                   \
        return buf;                                         \
    } while (0)

char *mapcodec_format(const struct smap *m)
{
    WITH_STREAM({
        fprintf(f, "version %" PRIu64 "\n", smap_version(m));
        put_settings(f, m);
        for (unsigned i = 0; i < smap_n_shards(m); i++) {
            fprintf(f, "shard %s ", smap_shard(m, i)->name);
            put_shard_fields(f, smap_shard(m, i));
        }
        put_vbmap(f, m);
    });
}

char *mapcodec_format_settings(const struct smap *m)
{
    WITH_STREAM(put_settings(f, m));
}

char *mapcodec_format_vbmap(const struct smap *m)
{
    WITH_STREAM(put_vbmap(f, m));
}

char *mapcodec_format_shard(const struct smap_shard *s)
{
    WITH_STREAM(put_shard_fields(f, s));
}
