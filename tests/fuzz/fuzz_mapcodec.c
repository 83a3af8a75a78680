/*
 * tests/fuzz/fuzz_mapcodec.c - map text parser on arbitrary bytes.
 *
 * Properties: parsing never crashes or leaks; a map that parses formats to
 * text that parses to the same text again (the cache file and ZooKeeper
 * round trips depend on it); the node-by-node parser (ZooKeeper parts) is
 * fed the same bytes split at '|' bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"

/* tests/fuzz/meson.build builds every target against protocol/ only (and,
 * with -Dfuzz=true, an instrumented copy of it). Compiling the two pure
 * shardmap sources into this file keeps the target self-contained and gets
 * them coverage instrumentation too; neither needs xxhash or any I/O. */
#include "shardmap/smap.c"
#include "shardmap/mapcodec.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(struct smap *m)
{
    char *text = mapcodec_format(m);
    if (text == NULL)
        return;
    char *err = NULL;
    struct smap *m2 = mapcodec_parse(text, strlen(text), &err);
    if (m2 == NULL)
        abort();    /* formatted text must always parse */
    char *text2 = mapcodec_format(m2);
    if (text2 == NULL || strcmp(text, text2) != 0)
        abort();
    free(text2);
    smap_unref(m2);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char *err = NULL;
    struct smap *m = mapcodec_parse(text, size, &err);
    if (m != NULL) {
        if (err != NULL)
            abort();
        round_trip(m);
        smap_unref(m);
    } else if (err == NULL) {
        abort();    /* every failure names its culprit */
    }
    free(err);
    err = NULL;

    /* settings | vbmap | shard s0 text | shard s1 text */
    const char *piece[4] = { "", "", "", "" };
    size_t len[4] = { 0, 0, 0, 0 };
    size_t start = 0;
    unsigned k = 0;
    for (size_t i = 0; i <= size && k < 4; i++) {
        if (i == size || text[i] == '|') {
            piece[k] = text + start;
            len[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    const char *names[2] = { "s0", "s1" };
    const char *texts[2] = { piece[2], piece[3] };
    size_t lens[2] = { len[2], len[3] };
    struct mapcodec_parts p = {
        .version = size, .settings = piece[0], .settings_len = len[0],
        .vbmap = piece[1], .vbmap_len = len[1],
        .n_shards = k > 3 ? 2 : 1, .shard_names = names, .shard_texts = texts,
        .shard_lens = lens,
    };
    m = mapcodec_parse_parts(&p, &err);
    if (m != NULL) {
        round_trip(m);
        smap_unref(m);
    } else if (err == NULL) {
        abort();
    }
    free(err);
    return 0;
}
