/*
 * router/stats.c - per-worker counters (see stats.h). Nothing here locks,
 * logs or allocates on the per-statement path.
 */
#include "router/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/wire.h"

const uint32_t stats_lat_bounds_us[STATS_LAT_N - 1] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
    2500000, 10000000,
};

struct stats *stats_new(void)
{
    /* Cache-line aligned and padded: no two workers' counters share a line. */
    size_t size = (sizeof(struct stats) + 63) & ~(size_t)63;
    struct stats *st = aligned_alloc(64, size);

    if (st)
        memset(st, 0, size);
    return st;
}

void stats_free(struct stats *st)
{
    struct stats_shard *sh, *next;

    if (!st)
        return;
    for (sh = atomic_load(&st->shards); sh; sh = next) {
        next = sh->next;
        free(sh);
    }
    free(st->vb);
    free(st);
}

struct stats_shard *stats_shard_of(struct stats *st, const char *name)
{
    struct stats_shard *head = atomic_load_explicit(&st->shards, memory_order_relaxed), *sh;

    for (sh = head; sh; sh = sh->next)
        if (strcmp(sh->name, name) == 0)
            return sh;
    sh = calloc(1, sizeof(*sh));
    if (!sh)
        return &st->spare;
    snprintf(sh->name, sizeof(sh->name), "%s", name);
    sh->next = head;
    /* Release: a reader that sees the entry sees its name and next. */
    atomic_store_explicit(&st->shards, sh, memory_order_release);
    return sh;
}

struct stats_shard *stats_shards(struct stats *st)
{
    return atomic_load_explicit(&st->shards, memory_order_acquire);
}

enum stats_cmd stats_cmd_of(uint8_t com)
{
    switch (com) {
    case WIRE_COM_QUERY:               return STATS_CMD_QUERY;
    case WIRE_COM_STMT_PREPARE:        return STATS_CMD_PREPARE;
    case WIRE_COM_STMT_EXECUTE:        return STATS_CMD_EXECUTE;
    case WIRE_COM_STMT_FETCH:          return STATS_CMD_FETCH;
    case WIRE_COM_STMT_CLOSE:          return STATS_CMD_CLOSE;
    case WIRE_COM_STMT_RESET:          return STATS_CMD_RESET;
    case WIRE_COM_STMT_SEND_LONG_DATA: return STATS_CMD_LONG_DATA;
    case WIRE_COM_PING:                return STATS_CMD_PING;
    case WIRE_COM_INIT_DB:             return STATS_CMD_INIT_DB;
    case WIRE_COM_QUIT:                return STATS_CMD_QUIT;
    case WIRE_COM_CHANGE_USER:         return STATS_CMD_CHANGE_USER;
    case WIRE_COM_RESET_CONNECTION:    return STATS_CMD_RESET_CONNECTION;
    case WIRE_COM_SET_OPTION:          return STATS_CMD_SET_OPTION;
    case WIRE_COM_FIELD_LIST:          return STATS_CMD_FIELD_LIST;
    case WIRE_COM_STATISTICS:          return STATS_CMD_STATISTICS;
    default:                           return STATS_CMD_OTHER;
    }
}

const char *stats_cmd_name(enum stats_cmd c)
{
    static const char *const names[STATS_CMD_N] = {
        "query", "stmt_prepare", "stmt_execute", "stmt_fetch", "stmt_close", "stmt_reset",
        "stmt_send_long_data", "ping", "init_db", "quit", "change_user", "reset_connection",
        "set_option", "field_list", "statistics", "other",
    };

    return (unsigned)c < STATS_CMD_N ? names[c] : "other";
}

const char *stats_result_name(enum stats_result r)
{
    static const char *const names[STATS_RESULT_N] = { "ok", "error", "rejected", "no_reply" };

    return (unsigned)r < STATS_RESULT_N ? names[r] : "?";
}

const char *stats_reject_name(enum stats_reject r)
{
    static const char *const names[STATS_REJECT_N] = {
        "analyzer", "rule", "cross_shard", "memory", "params", "lease", "no_standby",
    };

    return (unsigned)r < STATS_REJECT_N ? names[r] : "?";
}

const char *stats_conn_name(enum stats_conn c)
{
    static const char *const names[STATS_CONN_N] = {
        "login", "idle", "waiting", "active", "closing",
    };

    return (unsigned)c < STATS_CONN_N ? names[c] : "?";
}

unsigned stats_lat_bucket(uint64_t us)
{
    unsigned i = 0;

    while (i < STATS_LAT_N - 1 && us > stats_lat_bounds_us[i])
        i++;
    return i;
}

uint64_t stats_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t stats_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

void stats_error(struct stats *st, uint16_t code, enum stats_origin origin)
{
    uint32_t key = (uint32_t)code | (uint32_t)origin << 16, k;
    unsigned i = (key * 2654435761u) % STATS_ERR_SLOTS;

    if (!key)
        key = 1u << 17;     /* code 0 from a backend: kept apart from "free" */
    for (unsigned n = 0; n < STATS_ERR_SLOTS; n++, i = (i + 1) % STATS_ERR_SLOTS) {
        k = atomic_load_explicit(&st->errs[i].key, memory_order_relaxed);
        if (k == key) {
            STATS_INC(st->errs[i].count);
            return;
        }
        if (k == 0) {
            /* The count is 0 here; set it before publishing the key. */
            atomic_store_explicit(&st->errs[i].count, 1, memory_order_relaxed);
            atomic_store_explicit(&st->errs[i].key, key, memory_order_release);
            return;
        }
    }
    STATS_INC(st->err_other);
}

void stats_user(struct stats_sess *ss, const char *user)
{
    ss->user_hash = stats_hash(user);
    ss->top_slot = 0;
}

void stats_top_add(struct stats_top *t, const char *user, uint64_t hash, unsigned *slot,
                   uint64_t rows, uint64_t bytes)
{
    struct stats_top_entry *e;
    unsigned min = 0;

    if (*slot < STATS_TOPK && t->e[*slot].hash == hash) {
        e = &t->e[*slot];
        goto found;
    }
    for (unsigned i = 0; i < STATS_TOPK; i++) {
        if (t->e[i].hash == hash) {
            *slot = i;
            e = &t->e[i];
            goto found;
        }
        if (t->e[i].count < t->e[min].count)
            min = i;
    }
    /* Not tracked: it takes the place of the least counted (a free entry
     * has count 0), inheriting that count as its error bound. */
    e = &t->e[min];
    e->err = e->count;
    e->hash = hash;
    e->rows = e->bytes = 0;
    snprintf(e->user, sizeof(e->user), "%s", user);
    *slot = min;
found:
    e->count++;
    e->rows += rows;
    e->bytes += bytes;
}

void stats_vb_size(struct stats *st, uint32_t n)
{
    struct stats_vb *vb;

    if (st->n_vb == n && st->vb)
        return;
    vb = calloc(n ? n : 1, sizeof(*vb));
    if (!vb)
        return;     /* keep the old arrays (or none): counting is skipped */
    free(st->vb);
    st->vb = vb;
    st->n_vb = n;
}

void stats_begin(struct stats *st, struct stats_sess *ss, uint8_t com, const char *user)
{
    if (ss->user_hash)
        stats_top_add(&st->top, user, ss->user_hash, &ss->top_slot, 0, 0);
    if (!ss->counted && ss->cmd)
        STATS_INC(st->cmd[stats_cmd_of(ss->cmd)][STATS_OK]);
    ss->cmd = com;
    ss->shard = NULL;
    ss->sent_bytes = 0;
    ss->vbucket = STATS_NO_VB;
    ss->counted = false;
    if (com == WIRE_COM_QUIT || com == WIRE_COM_STMT_CLOSE ||
        com == WIRE_COM_STMT_SEND_LONG_DATA) {
        STATS_INC(st->cmd[stats_cmd_of(com)][STATS_NO_REPLY]);
        ss->counted = true;
    }
}

void stats_sent(struct stats_sess *ss, struct stats_shard *sh, uint64_t bytes)
{
    ss->shard = sh;
    ss->sent_bytes = bytes;
    ss->bytes_in += bytes;
    ss->sent_ns = stats_now_ns();
}

/* Counts the statement's result once; returns false when it was counted. */
static bool count_result(struct stats *st, struct stats_sess *ss, enum stats_result r)
{
    if (ss->counted)
        return false;
    ss->counted = true;
    STATS_INC(st->cmd[stats_cmd_of(ss->cmd)][r]);
    return true;
}

/* Per-vbucket and per-user load of one statement (its statement was
 * counted for the user by stats_begin()). */
static void count_load(struct stats *st, struct stats_sess *ss, uint64_t rows, uint64_t bytes)
{
    if (ss->top_slot < STATS_TOPK && st->top.e[ss->top_slot].hash == ss->user_hash) {
        st->top.e[ss->top_slot].rows += rows;
        st->top.e[ss->top_slot].bytes += bytes;
    }
    if (ss->vbucket < st->n_vb) {
        struct stats_vb *v = &st->vb[ss->vbucket];

        v->statements++;
        v->rows += rows;
        v->bytes += bytes;
    }
}

void stats_reply(struct stats *st, struct stats_sess *ss, bool is_error, uint16_t err_no,
                 uint64_t rows, uint64_t bytes)
{
    struct stats_shard *sh = ss->shard;

    ss->bytes_out += bytes;
    if (sh) {
        uint64_t us = (stats_now_ns() - ss->sent_ns) / 1000u;

        STATS_INC(sh->statements);
        STATS_ADD(sh->bytes_sent, ss->sent_bytes);
        STATS_ADD(sh->bytes_received, bytes);
        STATS_ADD(sh->rows, rows);
        STATS_INC(sh->lat[stats_lat_bucket(us)]);
        STATS_ADD(sh->lat_sum_us, us);
        if (is_error)
            STATS_INC(sh->errors);
        ss->shard = NULL;
    }
    if (is_error)
        stats_error(st, err_no, STATS_FROM_BACKEND);
    if (count_result(st, ss, is_error ? STATS_ERROR : STATS_OK))
        count_load(st, ss, rows, ss->sent_bytes + bytes);
}

void stats_answer(struct stats *st, struct stats_sess *ss, bool is_error)
{
    count_result(st, ss, is_error ? STATS_ERROR : STATS_OK);
}

void stats_reject(struct stats *st, struct stats_sess *ss, enum stats_reject why)
{
    STATS_INC(st->rejects[why]);
    count_result(st, ss, STATS_REJECTED);
}

static int by_count_desc(const void *a, const void *b)
{
    const struct stats_top_entry *x = a, *y = b;

    return x->count < y->count ? 1 : x->count > y->count ? -1 : strcmp(x->user, y->user);
}

size_t stats_top_merge(const struct stats_top *in, unsigned n, struct stats_top_entry *out,
                       size_t cap)
{
    size_t k = 0;

    for (unsigned w = 0; w < n; w++) {
        for (unsigned i = 0; i < STATS_TOPK; i++) {
            const struct stats_top_entry *e = &in[w].e[i];
            size_t j;

            if (!e->hash)
                continue;
            for (j = 0; j < k; j++)
                if (out[j].hash == e->hash && strcmp(out[j].user, e->user) == 0)
                    break;
            if (j == k) {
                if (k == cap)
                    continue;   /* cap >= n * STATS_TOPK never gets here */
                out[k++] = *e;
                continue;
            }
            out[j].count += e->count;
            out[j].err += e->err;
            out[j].rows += e->rows;
            out[j].bytes += e->bytes;
        }
    }
    qsort(out, k, sizeof(*out), by_count_desc);
    return k;
}

uint64_t stats_statements(struct stats *st)
{
    uint64_t n = 0;

    for (int c = 0; c < STATS_CMD_N; c++)
        for (int k = 0; k < STATS_RESULT_N; k++)
            n += STATS_GET(st->cmd[c][k]);
    return n;
}

uint64_t stats_rejected(struct stats *st)
{
    uint64_t n = 0;

    for (int k = 0; k < STATS_REJECT_N; k++)
        n += STATS_GET(st->rejects[k]);
    return n;
}
