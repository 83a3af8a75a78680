/*
 * tests/unit/test_mapcodec.c - map text <-> smap: the documented example,
 * round trips, every error path naming its culprit, and the ZooKeeper parts.
 */
#include "shardmap/mapcodec.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shardmap/smap.h"

static const char example[] =
    "# the example of docs/zookeeper.md\n"
    "version 7\n"
    "vbuckets 1024\n"
    "key_columns userid\n"
    "key_type int\n"
    "shard s0 master=127.0.0.1:3306 standby=127.0.0.1:3307\n"
    "shard s1 master=127.0.0.1:3316\n"
    "vb 0-511 s0\n"
    "vb 512-1023 s1\n";

static void test_example(void)
{
    char *err = NULL, *text = NULL;
    struct smap *m = mapcodec_parse(example, strlen(example), &err);
    struct smap *m2 = NULL;
    CHECK(m != NULL);
    CHECK(err == NULL);
    CHECK_EQ(smap_version(m), 7);
    CHECK_EQ(smap_n_vbuckets(m), 1024);
    CHECK_EQ(smap_n_shards(m), 2);
    CHECK_STREQ(smap_shard(m, 0)->name, "s0");
    CHECK_EQ(smap_shard(m, 0)->master.port, 3306);
    CHECK_EQ(smap_shard(m, 0)->standbys[0].port, 3307);
    CHECK_EQ(smap_shard_of_vbucket(m, 511), 0);
    CHECK_EQ(smap_shard_of_vbucket(m, 512), 1);
    CHECK_EQ(smap_key_config(m)->key_type, ANALYZE_KEY_INT);

    text = mapcodec_format(m);
    CHECK(text != NULL);
    CHECK_STREQ(text,
                "version 7\nvbuckets 1024\nkey_columns userid\nkey_type int\n"
                "shard s0 master=127.0.0.1:3306 standby=127.0.0.1:3307\n"
                "shard s1 master=127.0.0.1:3316\nvb 0-511 s0\nvb 512-1023 s1\n");
    m2 = mapcodec_parse(text, strlen(text), &err);
    CHECK(m2 != NULL);
out:
    smap_unref(m);
    smap_unref(m2);
    free(text);
    free(err);
}

/* A shard paused for a switchover keeps the flag through format and parse;
 * paused=0 is the default and is not written. */
static void test_paused(void)
{
    const char *text = "shard s0 master=h:1 standby=h:2 paused=1\nshard s1 master=h:3 paused=0\n"
                       "vb 0-511 s0\nvb 512-1023 s1\n";
    char *err = NULL, *out = NULL;
    struct smap *m = mapcodec_parse(text, strlen(text), &err), *m2 = NULL;
    CHECK(m != NULL);
    CHECK(smap_shard(m, 0)->paused);
    CHECK(!smap_shard(m, 1)->paused);
    out = mapcodec_format(m);
    CHECK(out != NULL);
    CHECK(strstr(out, "shard s0 master=h:1 standby=h:2 paused=1\n") != NULL);
    CHECK(strstr(out, "shard s1 master=h:3\n") != NULL);
    m2 = mapcodec_parse(out, strlen(out), &err);
    CHECK(m2 != NULL && smap_shard(m2, 0)->paused && !smap_shard(m2, 1)->paused);
out:
    smap_unref(m);
    smap_unref(m2);
    free(out);
    free(err);
}

/* Defaults, comments, CRLF, tabs, single vbuckets, interleaved shard/vb
 * lines, string keys, several key columns, IPv6, no final newline. */
static void test_variants(void)
{
    static const char text[] =
        "\r\n  # leading comment\n"
        "key_columns userid user_id\t# two names\r\n"
        "key_type string\n"
        "vbuckets 4\n"
        "shard a master=[::1]:3306\n"
        "vb 0 a\n"
        "shard b\tmaster=db-b.example:3306  standby=10.0.0.9:1 standby=10.0.0.9:2\n"
        "vb 1-3 b";
    char *err = NULL, *out_text = NULL;
    struct smap *m = mapcodec_parse(text, strlen(text), &err);
    struct smap *m2 = NULL;
    if (m == NULL)
        fprintf(stderr, "error: %s\n", err);
    CHECK(m != NULL);
    CHECK_EQ(smap_version(m), 0);
    CHECK_EQ(smap_n_vbuckets(m), 4);
    CHECK_EQ(smap_key_config(m)->n_key_columns, 2);
    CHECK_STREQ(smap_key_config(m)->key_columns[1], "user_id");
    CHECK_EQ(smap_key_config(m)->key_type, ANALYZE_KEY_STRING);
    CHECK_STREQ(smap_shard(m, 0)->master.host, "::1");
    CHECK_EQ(smap_shard(m, 1)->n_standbys, 2);
    CHECK_EQ(smap_shard_of_vbucket(m, 0), 0);
    CHECK_EQ(smap_shard_of_vbucket(m, 3), 1);
    out_text = mapcodec_format(m);
    CHECK(out_text != NULL);
    CHECK(strstr(out_text, "vb 0 a\nvb 1-3 b\n") != NULL);
    CHECK(strstr(out_text, "master=[::1]:3306") != NULL);
    CHECK(strstr(out_text, "key_columns userid user_id\nkey_type string\n") != NULL);
    m2 = mapcodec_parse(out_text, strlen(out_text), &err);
    CHECK(m2 != NULL);
    free(out_text);
    out_text = mapcodec_format(m2);
    CHECK(out_text != NULL);
    CHECK(strstr(out_text, "version 0\nvbuckets 4\n") == out_text);

    /* only what is needed: defaults give 1024 vbuckets, userid, int */
    smap_unref(m);
    static const char minimal[] = "shard s0 master=h:1\nvb 0-1023 s0\n";
    m = mapcodec_parse(minimal, strlen(minimal), &err);
    CHECK(m != NULL);
    CHECK_EQ(smap_n_vbuckets(m), 1024);
    CHECK_STREQ(smap_key_config(m)->key_columns[0], "userid");
    CHECK_EQ(smap_key_config(m)->n_key_columns, 1);
    CHECK_EQ(smap_key_config(m)->key_type, ANALYZE_KEY_INT);
    /* a fragmented assignment formats back as the same map */
    smap_unref(m);
    static const char frag[] = "vbuckets 6\nshard x master=h:1\nshard y master=h:2\n"
                               "vb 5 y\nvb 0 x\nvb 1 y\nvb 2-3 x\nvb 4 y\n";
    m = mapcodec_parse(frag, strlen(frag), &err);
    CHECK(m != NULL);
    free(out_text);
    out_text = mapcodec_format(m);
    CHECK(strstr(out_text, "vb 0 x\nvb 1 y\nvb 2-3 x\nvb 4-5 y\n") != NULL);
out:
    smap_unref(m);
    smap_unref(m2);
    free(out_text);
    free(err);
}

/* Frozen vbuckets (a move's cutover): parsed, kept through a round trip,
 * split into their own ranges, and a map without them reads as before. */
static void test_frozen(void)
{
    static const char text[] = "version 9\nvbuckets 8\nshard a master=h:1\n"
                               "shard b master=h:2\nvb 0-3 a\nvb 4 a frozen\n"
                               "vb 5 a frozen\nvb 6-7 b\n";
    struct smap *m = NULL, *m2 = NULL;
    char *err = NULL, *out_text = NULL, *vbmap = NULL;

    m = mapcodec_parse(text, strlen(text), &err);
    CHECK(m != NULL);
    CHECK_EQ(smap_n_frozen(m), 2);
    CHECK_EQ(smap_vbucket_state(m, 3), SMAP_VB_NORMAL);
    CHECK_EQ(smap_vbucket_state(m, 4), SMAP_VB_FROZEN);
    CHECK_EQ(smap_vbucket_state(m, 5), SMAP_VB_FROZEN);
    CHECK_EQ(smap_vbucket_state(m, 6), SMAP_VB_NORMAL);
    CHECK_EQ(smap_shard_of_vbucket(m, 5), 0);
    vbmap = mapcodec_format_vbmap(m);
    CHECK_STREQ(vbmap, "vb 0-3 a\nvb 4-5 a frozen\nvb 6-7 b\n");
    out_text = mapcodec_format(m);
    m2 = mapcodec_parse(out_text, strlen(out_text), &err);
    CHECK(m2 != NULL);
    CHECK_EQ(smap_n_frozen(m2), 2);
    CHECK_EQ(smap_vbucket_state(m2, 4), SMAP_VB_FROZEN);
    smap_unref(m2);
    m2 = NULL;
    /* unfrozen, the text is the pre-state format (old routers read it) */
    struct smap_builder *b = smap_builder_from(m);
    CHECK(b != NULL);
    CHECK_EQ(smap_builder_set_state(b, 0, 7, SMAP_VB_NORMAL, &err), 0);
    m2 = smap_builder_finish(b, &err);
    CHECK(m2 != NULL);
    CHECK_EQ(smap_n_frozen(m2), 0);
    free(vbmap);
    vbmap = mapcodec_format_vbmap(m2);
    CHECK_STREQ(vbmap, "vb 0-5 a\nvb 6-7 b\n");
out:
    smap_unref(m);
    smap_unref(m2);
    free(out_text);
    free(vbmap);
    free(err);
}

static void test_errors(void)
{
    static const struct {
        const char *text;
        const char *err;     /* the whole message */
    } cases[] = {
        { "", "map has no shards" },
        { "# only a comment\n", "map has no shards" },
        { "shard s0 master=h:1\n", "vbucket 0 is not assigned to any shard" },
        { "shard s0 master=h:1\nvb 0-1022 s0\n", "vbucket 1023 is not assigned to any shard" },
        { "shard s0 master=h:1\nvb 0-1023 s0\nvb 5 s0\n",
          "line 3: vb 5: vbucket 5 already assigned to shard 's0'" },
        { "shard s0 master=h:1\nvb 0-1024 s0\n",
          "line 2: vb 0-1024: vbucket 1024 out of range 0..1023" },
        { "shard s0 master=h:1\nvb 0-1023 s9\n", "line 2: vb 0-1023: unknown shard 's9'" },
        { "vb 0-1023 s0\nshard s0 master=h:1\n", "line 1: vb 0-1023: unknown shard 's0'" },
        { "vb 0-x s0\n", "line 1: vb '0-x': expected N or N-M" },
        { "vb -3 s0\n", "line 1: vb '-3': expected N or N-M" },
        { "vb 5-3 s0\n", "line 1: vb 5-3: vbucket range 5-3 is backwards" },
        { "vb 0-3\n", "line 1: 'vb' takes a range, a shard and an optional state" },
        { "shard s0 master=h:1\nvb 0-1023 s0 melted\n",
          "line 2: vb 0-1023: unknown state 'melted' (expected frozen)" },
        { "shard s0 master=h:1\nvb 0-1023 s0 frozen x\n",
          "line 2: 'vb' takes a range, a shard and an optional state" },
        { "shard s3 master=10.0.0.1:70000\n",
          "line 1: shard 's3': master: port 70000 out of range" },
        { "shard s3 standby=h:2\n", "line 1: shard 's3': no master=HOST:PORT" },
        { "shard s3 master=h:1 master=h:2\n", "line 1: shard 's3': master given twice" },
        { "shard s3 master=h:1 weight=3\n",
          "line 1: shard 's3': unknown field 'weight=3' (expected master=HOST:PORT, "
          "standby=HOST:PORT or paused=0|1)" },
        { "shard s3 master\n",
          "line 1: shard 's3': unknown field 'master' (expected master=HOST:PORT, "
          "standby=HOST:PORT or paused=0|1)" },
        { "shard s3 master=h:1 paused=yes\n",
          "line 1: shard 's3': unknown field 'paused=yes' (expected master=HOST:PORT, "
          "standby=HOST:PORT or paused=0|1)" },
        { "shard s3 master=h:1 standby=h:2 standby=h:3 standby=h:4 standby=h:5 standby=h:6\n",
          "line 1: shard 's3': more than 4 standbys" },
        { "shard a/b master=h:1\n", "line 1: shard name 'a/b': bad character 0x2f" },
        { "shard\n", "line 1: shard line needs a name and master=HOST:PORT" },
        { "shard s0 master=h:1\nshard s0 master=h:2\n", "line 2: shard 's0' defined twice" },
        { "shard s0 master=h:1\nshard s1 master=h:1\n",
          "line 2: shard 's1': h:1 is already used by shard 's0'" },
        { "version 1\nversion 2\n", "line 2: 'version' given twice" },
        { "version -1\n", "line 1: version '-1' is not an unsigned 64-bit number" },
        { "version 18446744073709551616\n",
          "line 1: version '18446744073709551616' is not an unsigned 64-bit number" },
        { "version\n", "line 1: 'version' takes 1 value" },
        { "vbuckets 0\n", "line 1: vbuckets '0' out of range 1..1048576" },
        { "vbuckets 1048577\n", "line 1: vbuckets '1048577' out of range 1..1048576" },
        { "vbuckets 99999999999\n", "line 1: vbuckets '99999999999' out of range 1..1048576" },
        { "shard s0 master=h:1\nvbuckets 16\n",
          "line 2: 'vbuckets' must come before shard and vb lines" },
        { "key_type float\n", "line 1: key_type 'float': expected int or string" },
        { "key_columns\n", "line 1: key_columns takes 1..8 column names" },
        { "key_columns a b c d e f g h i\n", "line 1: key_columns takes 1..8 column names" },
        { "key_columns a a\nshard s0 master=h:1\n",
          "line 2: key_columns: 'a' listed twice" },
        { "key_columns us-er\nshard s0 master=h:1\n",
          "line 2: key_columns: 'us-er': bad character 0x2d" },
        { "shards s0\n", "line 1: unknown keyword 'shards'" },
        { "version 1\x01\n", "line 1: control character 0x01" },
        { "a b c d e f g h i j k l m n o p q\n", "line 1: more than 16 fields" },
    };
    char *err = NULL;
    struct smap *m = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        m = mapcodec_parse(cases[i].text, strlen(cases[i].text), &err);
        CHECK(m == NULL);
        if (err == NULL || strcmp(err, cases[i].err) != 0) {
            fprintf(stderr, "case %zu: want \"%s\"\n           got  \"%s\"\n", i,
                    cases[i].err, err ? err : "(null)");
            CHECK(0);
        }
        free(err);
        err = NULL;
        /* a NULL errp is allowed */
        CHECK(mapcodec_parse(cases[i].text, strlen(cases[i].text), NULL) == NULL);
    }
    /* NUL byte (strlen cannot express it) and an over-long line */
    static const char nul[] = "version 1\nversion\0 2\n";
    m = mapcodec_parse(nul, sizeof(nul) - 1, &err);
    CHECK(m == NULL);
    CHECK_STREQ(err, "line 2: NUL byte");
    free(err);
    err = NULL;
    char *big = malloc(MAPCODEC_LINE_MAX + 16);
    CHECK(big != NULL);
    memset(big, ' ', MAPCODEC_LINE_MAX + 1);
    m = mapcodec_parse(big, MAPCODEC_LINE_MAX + 1, &err);
    CHECK(m == NULL);
    CHECK_STREQ(err, "line 1: longer than 4096 bytes");
    m = mapcodec_parse(big, MAPCODEC_LINE_MAX, &err);   /* blank: fine, but no shards */
    CHECK(m == NULL);
    CHECK_STREQ(err, "map has no shards");
    free(big);
out:
    smap_unref(m);
    free(err);
}

/* Not NUL-terminated input: parsing stops at <len>. */
static void test_length_bounded(void)
{
    char *err = NULL;
    char text[] = "shard s0 master=h:1\nvb 0-1023 s0\nGARBAGE";
    struct smap *m = mapcodec_parse(text, strlen(text) - 7, &err);
    CHECK(m != NULL);
out:
    smap_unref(m);
    free(err);
}

static void test_parts(void)
{
    char *err = NULL;
    struct smap *m = NULL, *m2 = NULL;
    char *settings = NULL, *vbmap = NULL, *sh0 = NULL, *sh1 = NULL;
    char *full1 = NULL, *full2 = NULL;

    m = mapcodec_parse(example, strlen(example), &err);
    CHECK(m != NULL);
    settings = mapcodec_format_settings(m);
    vbmap = mapcodec_format_vbmap(m);
    sh0 = mapcodec_format_shard(smap_shard(m, 0));
    sh1 = mapcodec_format_shard(smap_shard(m, 1));
    CHECK(settings && vbmap && sh0 && sh1);
    CHECK_STREQ(settings, "vbuckets 1024\nkey_columns userid\nkey_type int\n");
    CHECK_STREQ(sh0, "master=127.0.0.1:3306 standby=127.0.0.1:3307\n");
    CHECK_STREQ(vbmap, "vb 0-511 s0\nvb 512-1023 s1\n");

    const char *names[] = { "s0", "s1" };
    const char *texts[] = { sh0, sh1 };
    size_t lens[] = { strlen(sh0), strlen(sh1) };
    struct mapcodec_parts p = {
        .version = 7, .settings = settings, .settings_len = strlen(settings),
        .vbmap = vbmap, .vbmap_len = strlen(vbmap),
        .n_shards = 2, .shard_names = names, .shard_texts = texts, .shard_lens = lens,
    };
    m2 = mapcodec_parse_parts(&p, &err);
    CHECK(m2 != NULL);
    full1 = mapcodec_format(m);
    full2 = mapcodec_format(m2);
    CHECK_STREQ(full1, full2);
    smap_unref(m2);
    m2 = NULL;

    /* A line of the wrong kind in a node is refused, naming the node: a
     * shard node must not smuggle in vb lines. */
    static const char smuggle[] = "master=h:9\nvb 0-1023 s1\n";
    texts[1] = smuggle;
    lens[1] = strlen(smuggle);
    CHECK(mapcodec_parse_parts(&p, &err) == NULL);
    CHECK_STREQ(err, "shards/s1: line 2: a shard node holds one line");
    free(err);
    err = NULL;
    texts[1] = "";
    lens[1] = 0;
    CHECK(mapcodec_parse_parts(&p, &err) == NULL);
    CHECK_STREQ(err, "shards/s1: empty (expected master=HOST:PORT)");
    free(err);
    err = NULL;
    texts[1] = sh1;
    lens[1] = strlen(sh1);
    p.vbmap = "shard s9 master=h:1\n";
    p.vbmap_len = strlen(p.vbmap);
    CHECK(mapcodec_parse_parts(&p, &err) == NULL);
    CHECK_STREQ(err, "vbmap: line 1: 'shard' line not allowed here");
    free(err);
    err = NULL;
    p.vbmap = vbmap;
    p.vbmap_len = strlen(vbmap);
    p.settings = "version 9\n";
    p.settings_len = strlen(p.settings);
    CHECK(mapcodec_parse_parts(&p, &err) == NULL);
    CHECK_STREQ(err, "settings: line 1: 'version' line not allowed here");
    free(err);
    err = NULL;
    p.settings = "vbuckets 512\n";     /* vbmap names 512..1023 */
    p.settings_len = strlen(p.settings);
    CHECK(mapcodec_parse_parts(&p, &err) == NULL);
    CHECK_STREQ(err, "vbmap: line 2: vb 512-1023: vbucket 1023 out of range 0..511");
    free(err);
    err = NULL;
    names[1] = "bad/name";
    p.settings = settings;
    p.settings_len = strlen(settings);
    CHECK(mapcodec_parse_parts(&p, &err) == NULL);
    CHECK_STREQ(err, "shards/bad/name: line 1: shard name 'bad/name': bad character 0x2f");
out:
    smap_unref(m);
    smap_unref(m2);
    free(settings);
    free(vbmap);
    free(sh0);
    free(sh1);
    free(full1);
    free(full2);
    free(err);
}

int main(void)
{
    RUN(test_example);
    RUN(test_variants);
    RUN(test_paused);
    RUN(test_frozen);
    RUN(test_errors);
    RUN(test_length_bounded);
    RUN(test_parts);
    return check_exit();
}
