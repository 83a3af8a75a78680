/*
 * tests/unit/test_vbucket.c - key -> vbucket placement.
 *
 * The vectors are the ones published in docs/zookeeper.md: if this test
 * fails, every stored map would place users on other shards.
 */
#include "shardmap/vbucket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const struct {
    const char *key;
    uint32_t    vb1024;
    uint32_t    vb256;
} vectors[] = {
    { "1",                    344,  88 },
    { "42",                   401, 145 },
    { "-7",                   824,  56 },
    { "0",                     85,  85 },
    { "10503",                930, 162 },
    { "9223372036854775807",  675, 163 },
    { "-9223372036854775808", 145, 145 },
    { "alice",                688, 176 },
    { "",                     194, 194 },
};

static void test_vectors(void)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const char *k = vectors[i].key;
        CHECK_EQ(vbucket_of(k, strlen(k), 1024), vectors[i].vb1024);
        CHECK_EQ(vbucket_of(k, strlen(k), 256), vectors[i].vb256);
        CHECK_EQ(vbucket_of(k, strlen(k), 1), 0);
    }
out:;
}

/* Only the given bytes count: a key inside a larger buffer hashes alike. */
static void test_length_bounded(void)
{
    char buf[] = "42xyz";
    CHECK_EQ(vbucket_of(buf, 2, 1024), 401);
    CHECK(vbucket_of(buf, 3, 1024) != 401 || vbucket_of(buf, 4, 1024) != 401);
out:;
}

/* 100000 consecutive integer keys over 1024 vbuckets: ~97.7 each. A bad mix
 * (e.g. hashing the binary int, or mod of a weak hash) leaves buckets empty
 * or overfull. */
static void test_spread(void)
{
    enum { N = 1024, KEYS = 100000 };
    unsigned *count = calloc(N, sizeof(*count));
    CHECK(count != NULL);
    for (int k = 1; k <= KEYS; k++) {
        char key[24];
        int len = snprintf(key, sizeof(key), "%d", k);
        uint32_t vb = vbucket_of(key, (size_t)len, N);
        CHECK(vb < N);
        count[vb]++;
    }
    for (int i = 0; i < N; i++) {
        CHECK(count[i] > 50);
        CHECK(count[i] < 150);
    }
out:
    free(count);
}

static void test_max_count(void)
{
    for (int k = 0; k < 1000; k++) {
        char key[24];
        int len = snprintf(key, sizeof(key), "%d", k);
        CHECK(vbucket_of(key, (size_t)len, VBUCKET_MAX_COUNT) < VBUCKET_MAX_COUNT);
        CHECK(vbucket_of(key, (size_t)len, 7) < 7);
    }
out:;
}

int main(void)
{
    RUN(test_vectors);
    RUN(test_length_bounded);
    RUN(test_spread);
    RUN(test_max_count);
    return check_exit();
}
