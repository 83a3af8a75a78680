/*
 * tests/unit/test_stats.c - the counters' pure parts: latency buckets,
 * command names, the error table, shard entries that outlive pools, the
 * heavy-hitters sketch and its merge, and the per-statement hooks.
 */
#include "router/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "protocol/wire.h"

static void test_lat_bucket(void)
{
    CHECK_EQ(stats_lat_bucket(0), 0);
    CHECK_EQ(stats_lat_bucket(250), 0);
    CHECK_EQ(stats_lat_bucket(251), 1);
    CHECK_EQ(stats_lat_bucket(1000), 2);
    CHECK_EQ(stats_lat_bucket(10000000), STATS_LAT_N - 2);
    CHECK_EQ(stats_lat_bucket(10000001), STATS_LAT_N - 1);
    CHECK_EQ(stats_lat_bucket(UINT64_MAX), STATS_LAT_N - 1);
    for (unsigned i = 1; i < STATS_LAT_N - 1; i++)
        CHECK(stats_lat_bounds_us[i] > stats_lat_bounds_us[i - 1]);
out:;
}

static void test_names(void)
{
    CHECK_EQ(stats_cmd_of(WIRE_COM_QUERY), STATS_CMD_QUERY);
    CHECK_EQ(stats_cmd_of(WIRE_COM_STMT_EXECUTE), STATS_CMD_EXECUTE);
    CHECK_EQ(stats_cmd_of(0xee), STATS_CMD_OTHER);
    CHECK_STREQ(stats_cmd_name(STATS_CMD_QUERY), "query");
    CHECK_STREQ(stats_cmd_name(STATS_CMD_OTHER), "other");
    for (int c = 0; c < STATS_CMD_N; c++)
        CHECK(strcmp(stats_cmd_name((enum stats_cmd)c), "?") != 0);
    CHECK_STREQ(stats_result_name(STATS_REJECTED), "rejected");
    CHECK_STREQ(stats_reject_name(STATS_REJECT_RULE), "rule");
    CHECK_STREQ(stats_conn_name(STATS_CONN_WAITING), "waiting");
    CHECK(stats_hash("") != 0);
    CHECK(stats_hash("alice") != stats_hash("bob"));
out:;
}

static uint64_t err_count(struct stats *st, uint16_t code, enum stats_origin o)
{
    uint32_t key = (uint32_t)code | (uint32_t)o << 16;

    for (unsigned i = 0; i < STATS_ERR_SLOTS; i++)
        if (STATS_GET(st->errs[i].key) == key)
            return STATS_GET(st->errs[i].count);
    return 0;
}

static void test_errors(void)
{
    struct stats *st = stats_new();

    CHECK(st);
    stats_error(st, 1235, STATS_FROM_ROUTER);
    stats_error(st, 1235, STATS_FROM_ROUTER);
    stats_error(st, 1235, STATS_FROM_BACKEND);
    stats_error(st, 1062, STATS_FROM_BACKEND);
    CHECK_EQ(err_count(st, 1235, STATS_FROM_ROUTER), 2);
    CHECK_EQ(err_count(st, 1235, STATS_FROM_BACKEND), 1);
    CHECK_EQ(err_count(st, 1062, STATS_FROM_BACKEND), 1);
    /* More distinct codes than slots: the rest is counted, not lost. */
    for (unsigned c = 2000; c < 2000 + 2 * STATS_ERR_SLOTS; c++)
        stats_error(st, (uint16_t)c, STATS_FROM_BACKEND);
    CHECK_EQ(STATS_GET(st->err_other), 2 * STATS_ERR_SLOTS - (STATS_ERR_SLOTS - 3));
out:
    stats_free(st);
}

static void test_shards_outlive(void)
{
    struct stats *st = stats_new();
    struct stats_shard *a, *b;
    unsigned n = 0;

    CHECK(st);
    a = stats_shard_of(st, "s0");
    b = stats_shard_of(st, "s1");
    CHECK(a && b && a != b);
    CHECK(stats_shard_of(st, "s0") == a);
    for (struct stats_shard *sh = stats_shards(st); sh; sh = sh->next)
        n++;
    CHECK_EQ(n, 2);
out:
    stats_free(st);
}

static void test_statement_hooks(void)
{
    struct stats *st = stats_new();
    struct stats_sess ss;
    struct stats_shard *sh;
    uint64_t total = 0;

    memset(&ss, 0, sizeof(ss));
    CHECK(st);
    stats_vb_size(st, 16);
    CHECK_EQ(st->n_vb, 16);
    sh = stats_shard_of(st, "s0");
    stats_user(&ss, "alice");
    /* A routed SELECT: 3 rows, 200 bytes back. */
    stats_begin(st, &ss, WIRE_COM_QUERY, "alice");
    stats_route(&ss, 5);
    stats_sent(&ss, sh, 40);
    stats_reply(st, &ss, false, 0, 3, 200);
    /* A refused statement (1235), answered by the router. */
    stats_begin(st, &ss, WIRE_COM_QUERY, "alice");
    stats_reject(st, &ss, STATS_REJECT_ANALYZER);
    stats_error(st, 1235, STATS_FROM_ROUTER);
    stats_answer(st, &ss, true);
    /* A backend error. */
    stats_begin(st, &ss, WIRE_COM_STMT_EXECUTE, "alice");
    stats_route(&ss, 5);
    stats_sent(&ss, sh, 30);
    stats_reply(st, &ss, true, 1062, 0, 50);
    /* COM_STATISTICS answered by the router with its own packet: counted
     * as ok when the next command comes. */
    stats_begin(st, &ss, WIRE_COM_STATISTICS, "alice");
    CHECK_EQ(STATS_GET(st->cmd[STATS_CMD_STATISTICS][STATS_OK]), 0);
    stats_begin(st, &ss, WIRE_COM_QUIT, "alice");
    CHECK_EQ(STATS_GET(st->cmd[STATS_CMD_STATISTICS][STATS_OK]), 1);

    CHECK_EQ(STATS_GET(st->cmd[STATS_CMD_QUERY][STATS_OK]), 1);
    CHECK_EQ(STATS_GET(st->cmd[STATS_CMD_QUERY][STATS_REJECTED]), 1);
    CHECK_EQ(STATS_GET(st->cmd[STATS_CMD_QUERY][STATS_ERROR]), 0);
    CHECK_EQ(STATS_GET(st->cmd[STATS_CMD_EXECUTE][STATS_ERROR]), 1);
    CHECK_EQ(STATS_GET(st->cmd[STATS_CMD_QUIT][STATS_NO_REPLY]), 1);
    CHECK_EQ(STATS_GET(st->rejects[STATS_REJECT_ANALYZER]), 1);
    CHECK_EQ(err_count(st, 1235, STATS_FROM_ROUTER), 1);
    CHECK_EQ(err_count(st, 1062, STATS_FROM_BACKEND), 1);
    CHECK_EQ(STATS_GET(sh->statements), 2);
    CHECK_EQ(STATS_GET(sh->errors), 1);
    CHECK_EQ(STATS_GET(sh->bytes_sent), 70);
    CHECK_EQ(STATS_GET(sh->bytes_received), 250);
    CHECK_EQ(STATS_GET(sh->rows), 3);
    for (unsigned i = 0; i < STATS_LAT_N; i++)
        total += STATS_GET(sh->lat[i]);
    CHECK_EQ(total, 2);
    CHECK_EQ(st->vb[5].statements, 2);
    CHECK_EQ(st->vb[5].rows, 3);
    CHECK_EQ(st->vb[5].bytes, 40 + 200 + 30 + 50);
    CHECK_EQ(st->vb[4].statements, 0);
    CHECK_EQ(ss.bytes_in, 70);
    CHECK_EQ(ss.bytes_out, 200 + 50);
    CHECK_STREQ(st->top.e[ss.top_slot].user, "alice");
    CHECK_EQ(st->top.e[ss.top_slot].count, 5);
    CHECK_EQ(st->top.e[ss.top_slot].rows, 3);
    /* A vbucket beyond the arrays (another map size) is not counted. */
    stats_begin(st, &ss, WIRE_COM_QUERY, "alice");
    stats_route(&ss, 99);
    stats_sent(&ss, sh, 1);
    stats_reply(st, &ss, false, 0, 1, 1);
    CHECK_EQ(STATS_GET(sh->statements), 3);
out:
    stats_free(st);
}

/* Space-saving: with a skewed stream the heavy users are found with their
 * exact counts (err 0 when they entered early), and the error bound holds
 * for everyone in the sketch. */
static void test_topk(void)
{
    struct stats_top *t = calloc(2, sizeof(*t));
    struct stats_top_entry *m = calloc(2 * STATS_TOPK, sizeof(*m));
    static uint64_t truth[1000];
    char name[32];
    unsigned slot = 0;
    size_t k;

    CHECK(t && m);
    memset(truth, 0, sizeof(truth));
    /* Users 0..2 are hot (1000, 500, 250 statements each on two workers);
     * 1000 cold users once each, interleaved. */
    for (unsigned round = 0; round < 1000; round++) {
        unsigned hot[3] = { 0, 1, 2 };

        for (unsigned h = 0; h < 3; h++) {
            if (round % (1u << h))
                continue;
            snprintf(name, sizeof(name), "hot%u", hot[h]);
            stats_top_add(&t[round % 2], name, stats_hash(name), &slot, 1, 10);
            truth[h]++;
        }
        snprintf(name, sizeof(name), "cold%u", round);
        stats_top_add(&t[round % 2], name, stats_hash(name), &slot, 0, 0);
    }
    k = stats_top_merge(t, 2, m, 2 * STATS_TOPK);
    CHECK(k <= 2 * STATS_TOPK);
    CHECK_STREQ(m[0].user, "hot0");
    CHECK_STREQ(m[1].user, "hot1");
    CHECK_STREQ(m[2].user, "hot2");
    for (unsigned h = 0; h < 3; h++) {
        CHECK(m[h].count >= truth[h]);
        CHECK(m[h].count - m[h].err <= truth[h]);
    }
    CHECK_EQ(m[0].rows, 1000);
    CHECK_EQ(m[0].bytes, 10000);
    for (size_t i = 1; i < k; i++)
        CHECK(m[i - 1].count >= m[i].count);
out:
    free(t);
    free(m);
}

int main(void)
{
    RUN(test_lat_bucket);
    RUN(test_names);
    RUN(test_errors);
    RUN(test_shards_outlive);
    RUN(test_statement_hooks);
    RUN(test_topk);
    return check_exit();
}
