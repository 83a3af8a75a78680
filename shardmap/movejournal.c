/*
 * shardmap/movejournal.c - a move's journal text and the vbucket list
 * syntax (movejournal.h). Pure; unit-tested (tests/unit/test_movejournal.c).
 */
#include "shardmap/movejournal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/errmsg.h"

static const char *const phase_names[] = {
    [MOVE_COPY] = "copy",         [MOVE_CATCHUP] = "catchup", [MOVE_CUTOVER] = "cutover",
    [MOVE_CLEANUP] = "cleanup",   [MOVE_DONE] = "done",       [MOVE_ABORTING] = "aborting",
    [MOVE_ABORTED] = "aborted",
};

const char *move_phase_name(enum move_phase p)
{
    return (unsigned)p < sizeof(phase_names) / sizeof(phase_names[0]) ? phase_names[p] : "?";
}

bool move_phase_active(enum move_phase p)
{
    return p != MOVE_DONE && p != MOVE_ABORTED;
}

/* Strict decimal of at most 10 digits into <*out>; returns the digits used. */
static size_t parse_num(const char *p, const char *end, uint64_t *out)
{
    size_t n = 0;
    uint64_t v = 0;
    while (p + n < end && p[n] >= '0' && p[n] <= '9' && n < 10)
        v = v * 10 + (uint64_t)(p[n++] - '0');
    *out = v;
    return n;
}

long move_parse_vbuckets(const char *text, uint8_t *set, uint32_t n_vbuckets, char **errp)
{
    const char *p = text, *end = text + strlen(text);
    long count = 0;

    memset(set, 0, n_vbuckets);
    if (p == end) {
        errmsg_set(errp, "empty vbucket list");
        return -1;
    }
    while (p < end) {
        uint64_t a, b;
        size_t n = parse_num(p, end, &a);
        if (n == 0)
            goto syntax;
        p += n;
        b = a;
        if (p < end && *p == '-') {
            n = parse_num(p + 1, end, &b);
            if (n == 0)
                goto syntax;
            p += 1 + n;
        }
        if (p < end && *p != ',')
            goto syntax;
        if (p < end && p + 1 == end)
            goto syntax;   /* a trailing comma */
        if (p < end)
            p++;
        if (a > b) {
            errmsg_set(errp, "vbucket range %" PRIu64 "-%" PRIu64 " is backwards", a, b);
            return -1;
        }
        if (b >= n_vbuckets) {
            errmsg_set(errp, "vbucket %" PRIu64 " out of range 0..%" PRIu32, b,
                       n_vbuckets - 1);
            return -1;
        }
        for (uint64_t vb = a; vb <= b; vb++) {
            if (set[vb]) {
                errmsg_set(errp, "vbucket %" PRIu64 " listed twice", vb);
                return -1;
            }
            set[vb] = 1;
            count++;
        }
    }
    return count;
syntax:
    errmsg_set(errp, "vbucket list '%.80s': expected N, N-M or a comma-separated list of them",
               text);
    return -1;
}

int move_format_vbuckets(const uint8_t *set, uint32_t n_vbuckets, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return -1;
    buf[0] = '\0';
    for (uint32_t vb = 0; vb < n_vbuckets; vb++) {
        if (!set[vb])
            continue;
        uint32_t last = vb;
        while (last + 1 < n_vbuckets && set[last + 1])
            last++;
        int w = last == vb
                    ? snprintf(buf + len, cap - len, "%s%" PRIu32, len ? "," : "", vb)
                    : snprintf(buf + len, cap - len, "%s%" PRIu32 "-%" PRIu32, len ? "," : "",
                               vb, last);
        if (w < 0 || (size_t)w >= cap - len)
            return -1;
        len += (size_t)w;
        vb = last;
    }
    return 0;
}

/* Copies value <v>/<n> into <dst>/<cap>; -1 when too long. */
static int copy_val(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

/* A word value (names, positions, lists): no blank, control byte or quote,
 * so that it formats back to text that parses to the same journal. */
static int word_val(char *dst, size_t cap, const char *v, size_t n)
{
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= ' ' || v[i] == '"' || v[i] == 0x7f)
            return -1;
    return copy_val(dst, cap, v, n);
}

static int u64_val(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

int move_journal_parse(const char *text, size_t len, struct move_journal *j, char **errp)
{
    const char *p = text, *end = text + len;
    bool have_phase = false;

    memset(j, 0, sizeof(*j));
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\t'))
            p++;
        if (p == end)
            break;
        const char *k = p;
        while (p < end && *p != '=' && *p != ' ' && *p != '\n')
            p++;
        if (p == end || *p != '=') {
            errmsg_set(errp, "move journal: word '%.*s' is not key=value",
                       (int)(p - k > 40 ? 40 : p - k), k);
            return -1;
        }
        size_t klen = (size_t)(p - k);
        const char *v = ++p;
        size_t vlen;
        if (p < end && *p == '"') {
            v = ++p;
            while (p < end && *p != '"')
                p++;
            if (p == end) {
                errmsg_set(errp, "move journal: %.*s: unterminated quote", (int)klen, k);
                return -1;
            }
            vlen = (size_t)(p - v);
            p++;
        } else {
            while (p < end && *p != ' ' && *p != '\n' && *p != '\t')
                p++;
            vlen = (size_t)(p - v);
        }
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(k, s, klen) == 0)
        int rc = 0;
        if (KEY("phase")) {
            rc = -1;
            for (unsigned i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++) {
                if (strlen(phase_names[i]) == vlen && memcmp(phase_names[i], v, vlen) == 0) {
                    j->phase = (enum move_phase)i;
                    have_phase = true;
                    rc = 0;
                }
            }
        } else if (KEY("vbuckets")) {
            rc = word_val(j->vbuckets, sizeof(j->vbuckets), v, vlen);
        } else if (KEY("from")) {
            rc = word_val(j->from, sizeof(j->from), v, vlen);
        } else if (KEY("to")) {
            rc = word_val(j->to, sizeof(j->to), v, vlen);
        } else if (KEY("database")) {
            rc = word_val(j->database, sizeof(j->database), v, vlen);
        } else if (KEY("started_ms")) {
            rc = u64_val(v, vlen, &j->started_ms);
        } else if (KEY("updated_ms")) {
            rc = u64_val(v, vlen, &j->updated_ms);
        } else if (KEY("rows")) {
            rc = u64_val(v, vlen, &j->rows);
        } else if (KEY("binlog")) {
            rc = word_val(j->binlog, sizeof(j->binlog), v, vlen);
        } else if (KEY("gtid")) {
            rc = word_val(j->gtid, sizeof(j->gtid), v, vlen);
        } else if (KEY("masters")) {
            rc = word_val(j->masters, sizeof(j->masters), v, vlen);
        } else if (KEY("error")) {
            rc = copy_val(j->error, sizeof(j->error), v, vlen);
        }
#undef KEY
        if (rc < 0) {
            errmsg_set(errp, "move journal: bad %.*s '%.*s'", (int)klen, k,
                       (int)(vlen > 60 ? 60 : vlen), v);
            return -1;
        }
    }
    if (!have_phase || j->vbuckets[0] == '\0' || j->from[0] == '\0' || j->to[0] == '\0') {
        errmsg_set(errp, "move journal: phase, vbuckets, from and to are required");
        return -1;
    }
    return 0;
}

int move_journal_format(const struct move_journal *j, char *buf, size_t cap)
{
    char err[MOVE_FIELD_MAX];
    size_t k = 0;
    /* a quote would end the value early, a newline the line */
    for (size_t i = 0; j->error[i] && k + 1 < sizeof(err); i++)
        err[k++] = j->error[i] == '"' ? '\'' : j->error[i] == '\n' ? ' ' : j->error[i];
    err[k] = '\0';
    int w = snprintf(buf, cap,
                     "vbuckets=%s from=%s to=%s%s%s phase=%s started_ms=%" PRIu64
                     " updated_ms=%" PRIu64 " rows=%" PRIu64 "%s%s%s%s%s%s%s%s%s\n",
                     j->vbuckets, j->from, j->to, j->database[0] ? " database=" : "",
                     j->database, move_phase_name(j->phase), j->started_ms,
                     j->updated_ms, j->rows, j->binlog[0] ? " binlog=" : "", j->binlog,
                     j->gtid[0] ? " gtid=" : "", j->gtid, j->masters[0] ? " masters=" : "",
                     j->masters, err[0] ? " error=\"" : "", err,
                     err[0] ? "\"" : "");
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}
