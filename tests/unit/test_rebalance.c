/*
 * tests/unit/test_rebalance.c - planning rebalances and shard removals and
 * the plan's text (shardmap/rebalance.c).
 */
#include "shardmap/rebalance.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

/* A map of <n_vb> vbuckets: shard i ("s<i>") owns counts[i] of them, in
 * order; shards with 0 own none. */
static struct smap *map_of(uint32_t n_vb, const uint32_t *counts, unsigned n_shards)
{
    struct smap_key k;
    char *err = NULL;
    memset(&k, 0, sizeof(k));
    strcpy(k.key_columns[0], "userid");
    k.n_key_columns = 1;
    k.key_type = ANALYZE_KEY_INT;
    struct smap_builder *b = smap_builder_new(n_vb, &k, &err);
    uint32_t vb = 0;
    for (unsigned i = 0; b && i < n_shards; i++) {
        struct smap_shard s;
        memset(&s, 0, sizeof(s));
        snprintf(s.name, sizeof(s.name), "s%u", i);
        snprintf(s.master.host, sizeof(s.master.host), "127.0.0.1");
        s.master.port = (uint16_t)(3306 + i);
        if (smap_builder_add_shard(b, &s, &err) < 0)
            abort();
        if (counts[i] && smap_builder_assign(b, vb, vb + counts[i] - 1, s.name, &err) < 0)
            abort();
        vb += counts[i];
    }
    return smap_builder_finish(b, &err);
}

/* Applies <p> to <m>'s owners; fills <after>[shard] with counts and checks
 * that every move takes vbuckets its source owns, each vbucket once. */
static int apply(const struct smap *m, const struct rebalance_plan *p, uint32_t *after)
{
    uint32_t n = smap_n_vbuckets(m);
    uint8_t *set = malloc(n), *seen = calloc(n, 1);
    unsigned *owner = malloc(n * sizeof(*owner));
    int rc = -1;
    char *err = NULL;
    for (uint32_t v = 0; v < n; v++)
        owner[v] = smap_shard_of_vbucket(m, v);
    for (unsigned i = 0; i < p->n_moves; i++) {
        int from = smap_find_shard(m, p->moves[i].from), to = smap_find_shard(m, p->moves[i].to);
        long k = move_parse_vbuckets(p->moves[i].vbuckets, set, n, &err);
        if (from < 0 || to < 0 || k != (long)p->moves[i].n_vbuckets)
            goto out;
        for (uint32_t v = 0; v < n; v++) {
            if (!set[v])
                continue;
            if (owner[v] != (unsigned)from || seen[v])
                goto out;
            seen[v] = 1;
            owner[v] = (unsigned)to;
        }
    }
    memset(after, 0, smap_n_shards(m) * sizeof(*after));
    for (uint32_t v = 0; v < n; v++)
        after[owner[v]]++;
    rc = 0;
out:
    free(err);
    free(set);
    free(seen);
    free(owner);
    return rc;
}

static void test_even_counts(void)
{
    static const struct {
        uint32_t n_vb;
        unsigned n_shards;
        uint32_t counts[6];
        int      moves;     /* expected number of moves */
    } cases[] = {
        { 1024, 3, { 512, 512, 0 }, 2 },           /* 2 -> 3 */
        { 1024, 4, { 512, 512, 0, 0 }, 2 },        /* 2 -> 4 */
        { 1024, 4, { 342, 341, 341, 0 }, 3 },      /* 3 -> 4 */
        { 1024, 2, { 512, 512 }, 0 },              /* even already */
        { 1024, 3, { 342, 341, 341 }, 0 },         /* within one */
        { 16, 3, { 16, 0, 0 }, 2 },
        { 7, 6, { 7, 0, 0, 0, 0, 0 }, 5 },
        { 1000, 5, { 100, 500, 0, 400, 0 }, 3 },
        { 22, 4, { 6, 6, 6, 4 }, 1 },              /* one vbucket narrows the gap */
        { 22, 4, { 6, 6, 5, 5 }, 0 },              /* moving one would only swap */
    };
    struct smap *m = NULL;
    struct rebalance_plan *p = calloc(1, sizeof(*p));
    char *err = NULL;
    uint32_t after[6];
    CHECK(p != NULL);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        m = map_of(cases[c].n_vb, cases[c].counts, cases[c].n_shards);
        CHECK(m != NULL);
        struct rebalance_input in = { .m = m, .kind = REBALANCE_EVEN };
        int n = rebalance_plan_make(&in, p, &err);
        if (n != cases[c].moves)
            fprintf(stderr, "case %zu: %d moves (%s)\n", c, n, err ? err : "");
        CHECK_EQ(n, cases[c].moves);
        CHECK_EQ(apply(m, p, after), 0);
        uint32_t lo = UINT32_MAX, hi = 0;
        for (unsigned s = 0; s < cases[c].n_shards; s++) {
            lo = after[s] < lo ? after[s] : lo;
            hi = after[s] > hi ? after[s] : hi;
        }
        CHECK(hi - lo <= 1);
        smap_unref(m);
        m = NULL;
    }
    /* 2 -> 3: one contiguous range per move, from each source's end */
    m = map_of(1024, (const uint32_t[]){ 512, 512, 0 }, 3);
    struct rebalance_input in = { .m = m, .kind = REBALANCE_EVEN };
    CHECK_EQ(rebalance_plan_make(&in, p, &err), 2);
    CHECK_STREQ(p->moves[0].vbuckets, "341-511");
    CHECK_STREQ(p->moves[0].to, "s2");
    CHECK_STREQ(p->moves[1].vbuckets, "854-1023");
out:
    smap_unref(m);
    free(p);
    free(err);
}

static void test_busy_and_weights(void)
{
    struct smap *m = map_of(16, (const uint32_t[]){ 16, 0 }, 2);
    struct rebalance_plan *p = calloc(1, sizeof(*p));
    uint8_t busy[16] = { 0 };
    double load[16] = { 0 }, w[16];
    char *err = NULL;
    CHECK(m != NULL && p != NULL);
    /* busy vbuckets never move */
    for (int v = 8; v < 16; v++)
        busy[v] = 1;
    struct rebalance_input in = { .m = m, .busy = busy, .kind = REBALANCE_EVEN };
    CHECK_EQ(rebalance_plan_make(&in, p, &err), 1);
    CHECK_STREQ(p->moves[0].vbuckets, "0-7");
    /* one hot vbucket (15) weighs 17 of 32: s1 gets it alone, the nearest
     * to half that whole vbuckets allow */
    load[15] = 1000;
    rebalance_weights(load, 16, w);
    CHECK(w[0] == 1.0 && w[15] == 17.0);
    in.busy = NULL;
    in.weight = w;
    CHECK_EQ(rebalance_plan_make(&in, p, &err), 1);
    CHECK_STREQ(p->moves[0].vbuckets, "15");   /* 17 of 32: the nearest to half */
    /* no load at all: every weight is 1 */
    memset(load, 0, sizeof(load));
    rebalance_weights(load, 16, w);
    CHECK(w[3] == 1.0 && w[15] == 1.0);
out:
    smap_unref(m);
    free(p);
    free(err);
}

static void test_remove(void)
{
    struct smap *m = map_of(1024, (const uint32_t[]){ 342, 341, 341 }, 3);
    struct rebalance_plan *p = calloc(1, sizeof(*p));
    uint32_t after[3];
    char *err = NULL;
    CHECK(m != NULL && p != NULL);
    struct rebalance_input in = { .m = m, .kind = REBALANCE_REMOVE, .remove = "s1" };
    CHECK_EQ(rebalance_plan_make(&in, p, &err), 2);
    CHECK_EQ(apply(m, p, after), 0);
    CHECK_EQ(after[1], 0);
    CHECK(after[0] == 512 && after[2] == 512);
    CHECK_STREQ(p->shard, "s1");
    for (unsigned i = 0; i < p->n_moves; i++)
        CHECK_STREQ(p->moves[i].from, "s1");   /* nothing else moves */
    in.remove = "s9";
    CHECK_EQ(rebalance_plan_make(&in, p, &err), -1);
    CHECK(strstr(err, "unknown shard 's9'") != NULL);
    free(err);
    err = NULL;
    smap_unref(m);
    m = map_of(8, (const uint32_t[]){ 8 }, 1);
    in.m = m;
    in.remove = "s0";
    CHECK_EQ(rebalance_plan_make(&in, p, &err), -1);
    CHECK(strstr(err, "is the last shard") != NULL);
    free(err);
    err = NULL;
    /* an empty shard: nothing to move, it can go */
    smap_unref(m);
    m = map_of(8, (const uint32_t[]){ 8, 0 }, 2);
    in.m = m;
    in.remove = "s1";
    CHECK_EQ(rebalance_plan_make(&in, p, &err), 0);
out:
    smap_unref(m);
    free(p);
    free(err);
}

static void test_text(void)
{
    struct rebalance_plan *p = calloc(1, sizeof(*p)), *q = calloc(1, sizeof(*q));
    char *text = malloc(REBALANCE_TEXT_MAX), *err = NULL;
    CHECK(p && q && text);
    p->kind = REBALANCE_REMOVE;
    strcpy(p->shard, "s1");
    strcpy(p->database, "app");
    strcpy(p->weight, "bytes");
    p->started_ms = 1795437303510ull;
    p->n_moves = 2;
    strcpy(p->moves[0].from, "s1");
    strcpy(p->moves[0].to, "s0");
    strcpy(p->moves[0].vbuckets, "0-9,12");
    p->moves[0].n_vbuckets = 11;
    strcpy(p->moves[1].from, "s1");
    strcpy(p->moves[1].to, "s2");
    strcpy(p->moves[1].vbuckets, "13");
    p->moves[1].n_vbuckets = 1;
    CHECK_EQ(rebalance_plan_format(p, text, REBALANCE_TEXT_MAX), 0);
    CHECK_STREQ(text, "plan kind=remove shard=s1 database=app weight=bytes done=0 "
                "started_ms=1795437303510\nmove from=s1 to=s0 vbuckets=0-9,12 n=11\n"
                "move from=s1 to=s2 vbuckets=13 n=1\n");
    CHECK_EQ(rebalance_plan_parse(text, strlen(text), q, &err), 0);
    CHECK_EQ(memcmp(p, q, sizeof(*p)), 0);
    CHECK_EQ(rebalance_plan_format(p, text, 40), -1);
    static const char *const bad[] = {
        "", "move from=a to=b vbuckets=1 n=1\n", "plan kind=split shard=- database=a "
        "weight=v done=0\n", "plan kind=rebalance shard=- database=a weight=v done=0\nmove x\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(rebalance_plan_parse(bad[i], strlen(bad[i]), q, &err), -1);
        CHECK(strstr(err, "not understood") != NULL);
        free(err);
        err = NULL;
    }
out:
    free(p);
    free(q);
    free(text);
    free(err);
}

int main(void)
{
    RUN(test_even_counts);
    RUN(test_busy_and_weights);
    RUN(test_remove);
    RUN(test_text);
    return check_exit();
}
