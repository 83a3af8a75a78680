/*
 * tests/fuzz/fuzz_rebalance.c - the rebalance plan's text (read back from
 * ZooKeeper, where anyone with the admin credential may have edited it) and
 * the planner itself, on arbitrary bytes.
 *
 * Properties: parsing never crashes or leaks; every failure names its
 * culprit; a plan that parses formats to text that parses to the same text
 * again. The same bytes also describe a map (up to 64 vbuckets, up to 6
 * shards, owners, busy vbuckets, optional weights): every plan moves only
 * vbuckets its source owns and that are not busy, each at most once; a
 * removal leaves the shard empty and moves nothing else; an even plan by
 * count with nothing busy ends with counts within one of each other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Self-contained like fuzz_mapcodec.c: the pure sources compiled in. */
#include "shardmap/smap.c"
#include "shardmap/movejournal.c"
#include "shardmap/rebalance.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void text_round_trip(const uint8_t *data, size_t size)
{
    struct rebalance_plan *p = malloc(sizeof(*p)), *q = malloc(sizeof(*q));
    char *text = malloc(REBALANCE_TEXT_MAX), *text2 = malloc(REBALANCE_TEXT_MAX);
    char *err = NULL;
    if (!p || !q || !text || !text2)
        goto out;
    if (rebalance_plan_parse((const char *)data, size, p, &err) == 0) {
        if (err != NULL)
            abort();
        if (rebalance_plan_format(p, text, REBALANCE_TEXT_MAX) == 0) {
            if (rebalance_plan_parse(text, strlen(text), q, &err) != 0)
                abort();
            if (rebalance_plan_format(q, text2, REBALANCE_TEXT_MAX) != 0 || strcmp(text, text2))
                abort();
        }
    } else if (err == NULL) {
        abort();
    }
out:
    free(err);
    free(p);
    free(q);
    free(text);
    free(text2);
}

static void plan_invariants(const uint8_t *data, size_t size)
{
    if (size < 3)
        return;
    uint32_t n_vb = 1 + data[0] % 64;
    unsigned n_sh = 1 + data[1] % 6, flags = data[2];
    bool weighted = flags & 1, remove = flags & 2, with_busy = flags & 4;
    const uint8_t *b = data + 3;
    size_t left = size - 3;
    struct smap_key k;
    char *err = NULL;
    struct smap *m = NULL;
    struct rebalance_plan *p = malloc(sizeof(*p));
    uint8_t busy[64] = { 0 }, set[64], moved[64] = { 0 };
    double w[64];
    unsigned owner[64], count[6] = { 0 };

    memset(&k, 0, sizeof(k));
    strcpy(k.key_columns[0], "userid");
    k.n_key_columns = 1;
    struct smap_builder *bl = smap_builder_new(n_vb, &k, &err);
    for (unsigned s = 0; bl && s < n_sh; s++) {
        struct smap_shard sh;
        memset(&sh, 0, sizeof(sh));
        snprintf(sh.name, sizeof(sh.name), "s%u", s);
        strcpy(sh.master.host, "127.0.0.1");
        sh.master.port = (uint16_t)(3306 + s);
        if (smap_builder_add_shard(bl, &sh, &err) < 0)
            abort();
    }
    for (uint32_t v = 0; bl && v < n_vb; v++) {
        uint8_t x = v < left ? b[v] : 0;
        char name[8];
        snprintf(name, sizeof(name), "s%u", x % n_sh);
        if (smap_builder_assign(bl, v, v, name, &err) < 0)
            abort();
        busy[v] = with_busy && (x & 0x80);
        w[v] = 1.0 + (x >> 3);
    }
    m = bl ? smap_builder_finish(bl, &err) : NULL;
    if (!m || !p)
        goto out;
    struct rebalance_input in = { .m = m, .weight = weighted ? w : NULL,
                                  .busy = with_busy ? busy : NULL,
                                  .kind = remove ? REBALANCE_REMOVE : REBALANCE_EVEN,
                                  .remove = remove ? "s0" : NULL };
    int n = rebalance_plan_make(&in, p, &err);
    if (n < 0) {
        /* only the last shard, or a removal blocked by busy vbuckets */
        if (!err || !(remove && (n_sh == 1 || with_busy)))
            abort();
        goto out;
    }
    for (uint32_t v = 0; v < n_vb; v++)
        owner[v] = smap_shard_of_vbucket(m, v);
    for (int i = 0; i < n; i++) {
        int from = smap_find_shard(m, p->moves[i].from), to = smap_find_shard(m, p->moves[i].to);
        long c = move_parse_vbuckets(p->moves[i].vbuckets, set, n_vb, &err);
        if (from < 0 || to < 0 || from == to || c <= 0 || c != (long)p->moves[i].n_vbuckets)
            abort();
        if (remove && from != 0)
            abort();
        for (uint32_t v = 0; v < n_vb; v++) {
            if (!set[v])
                continue;
            if (owner[v] != (unsigned)from || moved[v] || busy[v])
                abort();
            moved[v] = 1;
            owner[v] = (unsigned)to;
        }
    }
    for (uint32_t v = 0; v < n_vb; v++)
        count[owner[v]]++;
    if (remove && count[0] != 0)
        abort();
    if (!remove && !weighted && !with_busy) {
        unsigned lo = ~0u, hi = 0;
        for (unsigned s = 0; s < n_sh; s++) {
            lo = count[s] < lo ? count[s] : lo;
            hi = count[s] > hi ? count[s] : hi;
        }
        if (hi - lo > 1)
            abort();
    }
out:
    free(err);
    free(p);
    smap_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    text_round_trip(data, size);
    plan_invariants(data, size);
    return 0;
}
