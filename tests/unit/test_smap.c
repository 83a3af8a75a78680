/*
 * tests/unit/test_smap.c - the map model: builder rules, spread, master
 * change, endpoints, refcounting.
 */
#include "shardmap/smap.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shardmap/vbucket.h"

static void key_default(struct smap_key *k)
{
    memset(k, 0, sizeof(*k));
    strcpy(k->key_columns[0], "userid");
    k->n_key_columns = 1;
    k->key_type = ANALYZE_KEY_INT;
}

static struct smap_shard shard(const char *name, const char *master)
{
    struct smap_shard s;
    memset(&s, 0, sizeof(s));
    strcpy(s.name, name);
    if (smap_parse_endpoint(master, strlen(master), &s.master, NULL) < 0)
        abort();
    return s;
}

static struct smap_builder *builder(uint32_t n_vb)
{
    struct smap_key k;
    key_default(&k);
    return smap_builder_new(n_vb, &k, NULL);
}

static void test_endpoint_parse(void)
{
    static const struct {
        const char *text;
        const char *host;    /* NULL: must fail */
        unsigned    port;
        const char *err;     /* substring of the error */
    } cases[] = {
        { "127.0.0.1:3306", "127.0.0.1", 3306, NULL },
        { "db-1.example:1", "db-1.example", 1, NULL },
        { "h:65535", "h", 65535, NULL },
        { "[::1]:3307", "::1", 3307, NULL },
        { "h:65536", NULL, 0, "port 65536 out of range" },
        { "h:70000", NULL, 0, "port 70000 out of range" },
        { "h:0", NULL, 0, "port 0 out of range" },
        { "h:", NULL, 0, "missing port" },
        { "h", NULL, 0, "expected HOST:PORT" },
        { ":3306", NULL, 0, "empty host" },
        { "h:33x", NULL, 0, "not a number" },
        { "h:-1", NULL, 0, "not a number" },
        { "::1:3306", NULL, 0, "IPv6" },
        { "[::1]3306", NULL, 0, "expected ':PORT'" },
        { "[::1:3306", NULL, 0, "missing ']'" },
        { "h/x:1", NULL, 0, "bad character" },
        { "h x:1", NULL, 0, "bad character" },
    };
    char *err = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct smap_endpoint ep;
        int rc = smap_parse_endpoint(cases[i].text, strlen(cases[i].text), &ep, &err);
        if (cases[i].host) {
            CHECK_EQ(rc, 0);
            CHECK_STREQ(ep.host, cases[i].host);
            CHECK_EQ(ep.port, cases[i].port);
            char buf[SMAP_ENDPOINT_STR_MAX];
            smap_format_endpoint(&ep, buf, sizeof(buf));
            CHECK_STREQ(buf, cases[i].text);
        } else {
            CHECK_EQ(rc, -1);
            CHECK(err != NULL);
            if (strstr(err, cases[i].err) == NULL) {
                fprintf(stderr, "case '%s': got '%s'\n", cases[i].text, err);
                CHECK(0);
            }
            free(err);
            err = NULL;
        }
    }
    /* an over-long host */
    char longhost[SMAP_HOST_MAX + 16];
    memset(longhost, 'a', SMAP_HOST_MAX);
    strcpy(longhost + SMAP_HOST_MAX, ":1");
    struct smap_endpoint ep;
    CHECK_EQ(smap_parse_endpoint(longhost, strlen(longhost), &ep, &err), -1);
    CHECK(strstr(err, "host longer") != NULL);
out:
    free(err);
}

static void test_names(void)
{
    static const struct { const char *name; int ok; } cases[] = {
        { "s0", 1 }, { "shard_A.1-b", 1 }, { "", 0 }, { ".hidden", 0 }, { "-x", 0 },
        { "a/b", 0 }, { "a b", 0 }, { "caf\xc3\xa9", 0 },
    };
    char *err = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_EQ(smap_check_name(cases[i].name, &err), cases[i].ok ? 0 : -1);
        CHECK_EQ(err != NULL, !cases[i].ok);
        free(err);
        err = NULL;
    }
out:
    free(err);
}

static void test_build_basic(void)
{
    char *err = NULL;
    struct smap *m = NULL;
    struct smap_builder *b = builder(16);
    CHECK(b != NULL);
    struct smap_shard s0 = shard("s0", "127.0.0.1:3306");
    s0.n_standbys = 1;
    smap_parse_endpoint("127.0.0.1:3307", 14, &s0.standbys[0], NULL);
    struct smap_shard s1 = shard("s1", "127.0.0.1:3316");
    struct smap_shard s2 = shard("s2", "127.0.0.1:3326");
    CHECK_EQ(smap_builder_add_shard(b, &s0, &err), 0);
    CHECK_EQ(smap_builder_add_shard(b, &s1, &err), 0);
    CHECK_EQ(smap_builder_add_shard(b, &s2, &err), 0);
    CHECK_EQ(smap_builder_assign(b, 0, 7, "s0", &err), 0);
    CHECK_EQ(smap_builder_assign(b, 8, 15, "s1", &err), 0);
    smap_builder_set_version(b, 9);
    m = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m != NULL);
    CHECK_EQ(smap_version(m), 9);
    CHECK_EQ(smap_n_vbuckets(m), 16);
    CHECK_EQ(smap_n_shards(m), 3);
    CHECK_EQ(smap_shard_of_vbucket(m, 0), 0);
    CHECK_EQ(smap_shard_of_vbucket(m, 7), 0);
    CHECK_EQ(smap_shard_of_vbucket(m, 8), 1);
    CHECK_EQ(smap_vbuckets_of_shard(m, 0), 8);
    CHECK_EQ(smap_vbuckets_of_shard(m, 1), 8);
    CHECK_EQ(smap_vbuckets_of_shard(m, 2), 0);    /* a new, empty shard is fine */
    CHECK_EQ(smap_find_shard(m, "s1"), 1);
    CHECK_EQ(smap_find_shard(m, "s9"), -1);
    CHECK_STREQ(smap_shard(m, 0)->standbys[0].host, "127.0.0.1");
    CHECK_EQ(smap_shard(m, 0)->n_standbys, 1);
    CHECK_STREQ(smap_key_config(m)->key_columns[0], "userid");
    /* refcounting: the extra reference keeps it alive */
    CHECK(smap_ref(m) == m);
    smap_unref(m);
    CHECK_EQ(smap_version(m), 9);
out:
    smap_builder_free(b);
    smap_unref(m);
    smap_unref(NULL);
    free(err);
}

static void test_build_errors(void)
{
    char *err = NULL;
    struct smap_builder *b = builder(16);
    struct smap_key k;
    CHECK(b != NULL);
    struct smap_shard s0 = shard("s0", "10.0.0.1:3306");
    struct smap_shard dup_name = shard("s0", "10.0.0.2:3306");
    struct smap_shard dup_ep = shard("s1", "10.0.0.1:3306");
    struct smap_shard self_dup = shard("s2", "10.0.0.3:3306");
    self_dup.n_standbys = 1;
    self_dup.standbys[0] = self_dup.master;
    struct smap_shard too_many = shard("s3", "10.0.0.4:3306");
    too_many.n_standbys = SMAP_MAX_STANDBYS + 1;
    struct smap_shard bad_port = shard("s4", "10.0.0.5:3306");
    bad_port.master.port = 0;

    CHECK_EQ(smap_builder_add_shard(b, &s0, &err), 0);
    CHECK_EQ(smap_builder_add_shard(b, &dup_name, &err), -1);
    CHECK(strstr(err, "'s0' defined twice") != NULL);
    CHECK_EQ(smap_builder_add_shard(b, &dup_ep, &err), -1);
    CHECK(strstr(err, "10.0.0.1:3306 is already used by shard 's0'") != NULL);
    CHECK_EQ(smap_builder_add_shard(b, &self_dup, &err), -1);
    CHECK(strstr(err, "listed twice") != NULL);
    CHECK_EQ(smap_builder_add_shard(b, &too_many, &err), -1);
    CHECK(strstr(err, "standbys") != NULL);
    CHECK_EQ(smap_builder_add_shard(b, &bad_port, &err), -1);
    CHECK(strstr(err, "port 0") != NULL);
    CHECK_EQ(smap_builder_assign(b, 3, 2, "s0", &err), -1);
    CHECK(strstr(err, "backwards") != NULL);
    CHECK_EQ(smap_builder_assign(b, 0, 16, "s0", &err), -1);
    CHECK(strstr(err, "vbucket 16 out of range 0..15") != NULL);
    CHECK_EQ(smap_builder_assign(b, 0, 3, "nope", &err), -1);
    CHECK(strstr(err, "unknown shard 'nope'") != NULL);
    CHECK_EQ(smap_builder_assign(b, 0, 14, "s0", &err), 0);
    CHECK_EQ(smap_builder_assign(b, 14, 14, "s0", &err), -1);
    CHECK(strstr(err, "vbucket 14 already assigned to shard 's0'") != NULL);
    /* failed calls left the builder intact: only vbucket 15 is missing */
    struct smap *m = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m == NULL);
    CHECK_STREQ(err, "vbucket 15 is not assigned to any shard");

    /* settings */
    key_default(&k);
    CHECK(smap_builder_new(0, &k, &err) == NULL);
    CHECK(strstr(err, "out of range") != NULL);
    CHECK(smap_builder_new(VBUCKET_MAX_COUNT + 1, &k, &err) == NULL);
    k.n_key_columns = 0;
    CHECK(smap_builder_new(16, &k, &err) == NULL);
    CHECK(strstr(err, "key_columns") != NULL);
    key_default(&k);
    strcpy(k.key_columns[0], "user id");
    CHECK(smap_builder_new(16, &k, &err) == NULL);
    key_default(&k);
    strcpy(k.key_columns[1], "USERID");
    k.n_key_columns = 2;
    CHECK(smap_builder_new(16, &k, &err) == NULL);
    CHECK(strstr(err, "twice") != NULL);
    key_default(&k);
    k.key_type = (enum analyze_key_type)7;
    CHECK(smap_builder_new(16, &k, &err) == NULL);
    /* no shards at all */
    b = builder(4);
    m = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m == NULL);
    CHECK_STREQ(err, "map has no shards");
out:
    smap_builder_free(b);
    free(err);
}

static void test_spread(void)
{
    static const struct { uint32_t n_vb; unsigned n_shards; } cases[] = {
        { 1024, 1 }, { 1024, 2 }, { 1024, 3 }, { 1024, 7 }, { 5, 5 }, { 3, 5 }, { 1, 1 },
        { 1000003, 13 },
    };
    char *err = NULL;
    struct smap *m = NULL;
    struct smap_builder *b = NULL;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        b = builder(cases[c].n_vb);
        CHECK(b != NULL);
        CHECK_EQ(smap_builder_spread(b, &err), -1);   /* no shards yet */
        free(err);
        err = NULL;
        for (unsigned i = 0; i < cases[c].n_shards; i++) {
            char name[16], ep[32];
            snprintf(name, sizeof(name), "s%u", i);
            snprintf(ep, sizeof(ep), "127.0.0.1:%u", 3306 + i);
            struct smap_shard s = shard(name, ep);
            CHECK_EQ(smap_builder_add_shard(b, &s, &err), 0);
        }
        CHECK_EQ(smap_builder_spread(b, &err), 0);
        m = smap_builder_finish(b, &err);
        b = NULL;
        CHECK(m != NULL);
        uint32_t lo = UINT32_MAX, hi = 0, total = 0;
        for (unsigned i = 0; i < smap_n_shards(m); i++) {
            uint32_t v = smap_vbuckets_of_shard(m, i);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            total += v;
        }
        CHECK(hi - lo <= 1);
        CHECK_EQ(total, cases[c].n_vb);
        /* contiguous ranges in shard order */
        for (uint32_t vb = 1; vb < smap_n_vbuckets(m); vb++)
            CHECK(smap_shard_of_vbucket(m, vb) >= smap_shard_of_vbucket(m, vb - 1));
        smap_unref(m);
        m = NULL;
    }
out:
    smap_builder_free(b);
    smap_unref(m);
    free(err);
}

static void test_remove_shard(void)
{
    char *err = NULL;
    struct smap *m = NULL;
    struct smap_builder *b = builder(8);
    struct smap_shard s0 = shard("s0", "127.0.0.1:3306"), s1 = shard("s1", "127.0.0.1:3307"),
                      s2 = shard("s2", "127.0.0.1:3308");
    uint8_t set[8] = { 0, 0, 0, 0, 1, 1, 1, 1 };
    CHECK(b != NULL);
    CHECK_EQ(smap_builder_add_shard(b, &s0, &err), 0);
    CHECK_EQ(smap_builder_add_shard(b, &s1, &err), 0);
    CHECK_EQ(smap_builder_add_shard(b, &s2, &err), 0);
    CHECK_EQ(smap_builder_assign(b, 0, 3, "s0", &err), 0);
    CHECK_EQ(smap_builder_assign(b, 4, 7, "s1", &err), 0);
    CHECK_EQ(smap_builder_remove_shard(b, "s9", &err), -1);
    CHECK(strstr(err, "no shard named 's9'") != NULL);
    free(err);
    err = NULL;
    CHECK_EQ(smap_builder_remove_shard(b, "s1", &err), -1);   /* owns 4-7 */
    CHECK(strstr(err, "still owns 4 vbuckets") != NULL);
    free(err);
    err = NULL;
    CHECK_EQ(smap_builder_reassign(b, set, "s2", &err), 0);
    CHECK_EQ(smap_builder_remove_shard(b, "s1", &err), 0);   /* s2's index shifts down */
    CHECK_EQ(smap_builder_remove_shard(b, "s0", &err), -1);
    free(err);
    err = NULL;
    m = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m != NULL);
    CHECK_EQ(smap_n_shards(m), 2);
    CHECK_EQ(smap_find_shard(m, "s1"), -1);
    CHECK_STREQ(smap_shard(m, smap_shard_of_vbucket(m, 5))->name, "s2");
    CHECK_STREQ(smap_shard(m, smap_shard_of_vbucket(m, 1))->name, "s0");
    CHECK_EQ(smap_vbuckets_of_shard(m, 1), 4);
    smap_unref(m);
    m = NULL;
    /* the last shard stays */
    b = builder(2);
    CHECK_EQ(smap_builder_add_shard(b, &s0, &err), 0);
    CHECK_EQ(smap_builder_remove_shard(b, "s0", &err), -1);
    CHECK(strstr(err, "is the last shard") != NULL);
out:
    smap_builder_free(b);
    smap_unref(m);
    free(err);
}

static void test_set_master(void)
{
    char *err = NULL;
    struct smap *m = NULL, *m2 = NULL;
    struct smap_builder *b = builder(8);
    CHECK(b != NULL);
    struct smap_shard s0 = shard("s0", "10.0.0.1:3306");
    s0.n_standbys = 2;
    smap_parse_endpoint("10.0.0.2:3306", 13, &s0.standbys[0], NULL);
    smap_parse_endpoint("10.0.0.3:3306", 13, &s0.standbys[1], NULL);
    struct smap_shard s1 = shard("s1", "10.0.1.1:3306");
    CHECK_EQ(smap_builder_add_shard(b, &s0, &err), 0);
    CHECK_EQ(smap_builder_add_shard(b, &s1, &err), 0);
    CHECK_EQ(smap_builder_spread(b, &err), 0);
    smap_builder_set_version(b, 3);
    m = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m != NULL);

    b = smap_builder_from(m);
    CHECK(b != NULL);
    struct smap_endpoint ep;
    smap_parse_endpoint("10.0.1.1:3306", 13, &ep, NULL);
    CHECK_EQ(smap_builder_set_master(b, "s0", &ep, &err), -1);   /* s1's master */
    CHECK(strstr(err, "already used by shard 's1'") != NULL);
    CHECK_EQ(smap_builder_set_master(b, "s7", &ep, &err), -1);
    CHECK(strstr(err, "no shard named 's7'") != NULL);
    smap_parse_endpoint("10.0.0.3:3306", 13, &ep, NULL);          /* promote a standby */
    CHECK_EQ(smap_builder_set_master(b, "s0", &ep, &err), 0);
    smap_builder_set_version(b, 4);
    m2 = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m2 != NULL);
    CHECK_EQ(smap_version(m2), 4);
    CHECK(smap_endpoint_eq(&smap_shard(m2, 0)->master, &ep));
    CHECK_EQ(smap_shard(m2, 0)->n_standbys, 1);
    CHECK_STREQ(smap_shard(m2, 0)->standbys[0].host, "10.0.0.2");
    /* the old snapshot is untouched, and the assignment carried over */
    CHECK_STREQ(smap_shard(m, 0)->master.host, "10.0.0.1");
    CHECK_EQ(smap_shard(m, 0)->n_standbys, 2);
    for (uint32_t vb = 0; vb < 8; vb++)
        CHECK_EQ(smap_shard_of_vbucket(m2, vb), smap_shard_of_vbucket(m, vb));
out:
    smap_builder_free(b);
    smap_unref(m);
    smap_unref(m2);
    free(err);
}

static void test_add_standby(void)
{
    char *err = NULL;
    struct smap *m = NULL, *m2 = NULL;
    struct smap_builder *b = builder(8);
    struct smap_endpoint ep;
    CHECK(b != NULL);
    struct smap_shard s0 = shard("s0", "10.0.0.1:3306");
    struct smap_shard s1 = shard("s1", "10.0.1.1:3306");
    s1.n_standbys = 1;
    smap_parse_endpoint("10.0.1.2:3306", 13, &s1.standbys[0], NULL);
    CHECK_EQ(smap_builder_add_shard(b, &s0, &err), 0);
    CHECK_EQ(smap_builder_add_shard(b, &s1, &err), 0);
    CHECK_EQ(smap_builder_spread(b, &err), 0);
    m = smap_builder_finish(b, &err);
    b = smap_builder_from(m);
    CHECK(m != NULL && b != NULL);
    /* Used anywhere in the map, including as this shard's own master. */
    smap_parse_endpoint("10.0.0.1:3306", 13, &ep, NULL);
    CHECK_EQ(smap_builder_add_standby(b, "s0", &ep, &err), -1);
    CHECK(strstr(err, "already used by shard 's0'") != NULL);
    smap_parse_endpoint("10.0.1.2:3306", 13, &ep, NULL);
    CHECK_EQ(smap_builder_add_standby(b, "s0", &ep, &err), -1);
    CHECK(strstr(err, "already used by shard 's1'") != NULL);
    CHECK_EQ(smap_builder_add_standby(b, "s9", &ep, &err), -1);
    CHECK(strstr(err, "no shard named 's9'") != NULL);
    for (int k = 0; k < SMAP_MAX_STANDBYS; k++) {
        char a[32];
        snprintf(a, sizeof(a), "10.0.0.%d:3306", 10 + k);
        smap_parse_endpoint(a, strlen(a), &ep, NULL);
        CHECK_EQ(smap_builder_add_standby(b, "s0", &ep, &err), 0);
    }
    smap_parse_endpoint("10.0.0.99:3306", 14, &ep, NULL);
    CHECK_EQ(smap_builder_add_standby(b, "s0", &ep, &err), -1);
    CHECK(strstr(err, "already 4 standbys") != NULL);
    smap_builder_set_version(b, 2);
    m2 = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m2 != NULL);
    CHECK_EQ(smap_shard(m2, 0)->n_standbys, SMAP_MAX_STANDBYS);
    CHECK_STREQ(smap_shard(m2, 0)->standbys[3].host, "10.0.0.13");
    CHECK_EQ(smap_shard(m, 0)->n_standbys, 0);
out:
    smap_builder_free(b);
    smap_unref(m);
    smap_unref(m2);
    free(err);
}

static void test_max_shards(void)
{
    char *err = NULL;
    struct smap_builder *b = builder(SMAP_MAX_SHARDS);
    CHECK(b != NULL);
    for (unsigned i = 0; i < SMAP_MAX_SHARDS; i++) {
        char name[16], ep[32];
        snprintf(name, sizeof(name), "s%u", i);
        snprintf(ep, sizeof(ep), "10.%u.%u.1:3306", i / 256, i % 256);
        struct smap_shard s = shard(name, ep);
        CHECK_EQ(smap_builder_add_shard(b, &s, &err), 0);
    }
    struct smap_shard extra = shard("extra", "10.200.0.1:3306");
    CHECK_EQ(smap_builder_add_shard(b, &extra, &err), -1);
    CHECK(strstr(err, "more than 4096 shards") != NULL);
    CHECK_EQ(smap_builder_spread(b, &err), 0);
    struct smap *m = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m != NULL);
    CHECK_EQ(smap_shard_of_vbucket(m, SMAP_MAX_SHARDS - 1), SMAP_MAX_SHARDS - 1);
    smap_unref(m);
out:
    smap_builder_free(b);
    free(err);
}

/* Per-vbucket state: kept by builder_from, counted, range-checked, and
 * independent of the owner. */
static void test_vb_state(void)
{
    struct smap_builder *b = builder(16);
    struct smap *m = NULL, *m2 = NULL;
    char *err = NULL;
    struct smap_shard s0 = shard("s0", "h:1"), s1 = shard("s1", "h:2");

    CHECK(b != NULL);
    CHECK_EQ(smap_builder_add_shard(b, &s0, &err), 0);
    CHECK_EQ(smap_builder_add_shard(b, &s1, &err), 0);
    CHECK_EQ(smap_builder_spread(b, &err), 0);
    CHECK_EQ(smap_builder_set_state(b, 3, 5, SMAP_VB_FROZEN, &err), 0);
    CHECK_EQ(smap_builder_set_state(b, 5, 16, SMAP_VB_FROZEN, &err), -1);
    CHECK_STREQ(err, "vbucket 16 out of range 0..15");
    free(err);
    err = NULL;
    CHECK_EQ(smap_builder_set_state(b, 5, 3, SMAP_VB_FROZEN, &err), -1);
    free(err);
    err = NULL;
    CHECK_EQ(smap_builder_set_state(b, 1, 1, (enum smap_vb_state)7, &err), -1);
    CHECK_STREQ(err, "unknown vbucket state 7");
    m = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m != NULL);
    CHECK_EQ(smap_n_frozen(m), 3);
    CHECK_EQ(smap_vbucket_state(m, 2), SMAP_VB_NORMAL);
    CHECK_EQ(smap_vbucket_state(m, 4), SMAP_VB_FROZEN);
    CHECK_STREQ(smap_vb_state_name(smap_vbucket_state(m, 4)), "frozen");
    b = smap_builder_from(m);
    CHECK(b != NULL);
    CHECK_EQ(smap_builder_set_state(b, 4, 4, SMAP_VB_NORMAL, &err), 0);
    m2 = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m2 != NULL);
    CHECK_EQ(smap_n_frozen(m2), 2);
    CHECK_EQ(smap_vbucket_state(m2, 3), SMAP_VB_FROZEN);
    CHECK_EQ(smap_vbucket_state(m2, 4), SMAP_VB_NORMAL);
    CHECK_EQ(smap_shard_of_vbucket(m2, 4), smap_shard_of_vbucket(m, 4));
    /* a move's flip: the listed vbuckets change owner, the others stay */
    uint8_t set[16] = { 0 };
    set[2] = set[3] = 1;
    b = smap_builder_from(m2);
    CHECK(b != NULL);
    CHECK_EQ(smap_builder_reassign(b, set, "nope", &err), -1);
    CHECK_STREQ(err, "unknown shard 'nope'");
    CHECK_EQ(smap_builder_reassign(b, set, "s1", &err), 0);
    smap_unref(m);
    m = smap_builder_finish(b, &err);
    b = NULL;
    CHECK(m != NULL);
    CHECK_EQ(smap_shard_of_vbucket(m, 1), 0);
    CHECK_EQ(smap_shard_of_vbucket(m, 2), 1);
    CHECK_EQ(smap_shard_of_vbucket(m, 3), 1);
    CHECK_EQ(smap_vbuckets_of_shard(m, 0), 6);
out:
    smap_builder_free(b);
    smap_unref(m);
    smap_unref(m2);
    free(err);
}

int main(void)
{
    RUN(test_endpoint_parse);
    RUN(test_names);
    RUN(test_build_basic);
    RUN(test_build_errors);
    RUN(test_spread);
    RUN(test_remove_shard);
    RUN(test_set_master);
    RUN(test_add_standby);
    RUN(test_max_shards);
    RUN(test_vb_state);
    return check_exit();
}
