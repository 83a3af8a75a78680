/*
 * tests/unit/test_vbtrack.c - per-vbucket in-flight counts and the freeze
 * acknowledgement's condition (router/vbtrack.c).
 */
#include "router/vbtrack.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"

static struct smap *parse(const char *text)
{
    return mapcodec_parse(text, strlen(text), NULL);
}

static void test_quiet(void)
{
    struct vbtrack t;
    struct vbtrack_held a, b;
    uint32_t vb;
    struct smap *frozen = parse("vbuckets 16\nshard s0 master=h:1\nvb 0-3 s0\nvb 4-5 s0 frozen\n"
                                "vb 6-15 s0\n");
    struct smap *plain = parse("vbuckets 16\nshard s0 master=h:1\nvb 0-15 s0\n");

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    CHECK_EQ(vbtrack_init(&t), 0);
    CHECK(frozen != NULL && plain != NULL);
    CHECK(vbtrack_quiet(&t, frozen));
    vbtrack_enter(&t, &a, 3);                 /* a normal vbucket: no matter */
    CHECK(vbtrack_quiet(&t, frozen));
    vbtrack_enter(&t, &b, 5);                 /* a frozen one: not quiet */
    vbtrack_enter(&t, &b, 5);                 /* counted once per session */
    CHECK(!vbtrack_quiet(&t, frozen));
    CHECK(vbtrack_quiet(&t, plain));          /* no freeze: always quiet */
    CHECK(vbtrack_holds(&b, 5) && !vbtrack_holds(&b, 4));
    /* which session a cut past move_drain_ms ends, and for which vbucket */
    vb = 0;
    CHECK(!vbtrack_blocks(&a, frozen, &vb));
    CHECK(vbtrack_blocks(&b, frozen, &vb));
    CHECK_EQ(vb, 5);
    CHECK(!vbtrack_blocks(&b, plain, &vb));
    vbtrack_leave(&t, &b);
    CHECK(vbtrack_quiet(&t, frozen));
    CHECK_EQ(b.n, 0);
    /* a transaction over more vbuckets than recorded blocks every ack */
    for (uint32_t vb = 6; vb < 6 + VBTRACK_PER_SESSION + 1; vb++)
        vbtrack_enter(&t, &b, vb);
    CHECK(b.unknown);
    CHECK(!vbtrack_quiet(&t, frozen));
    CHECK(vbtrack_blocks(&b, frozen, &vb));   /* none of 6-13 frozen, but unknown ones */
    CHECK_EQ(vb, UINT32_MAX);
    CHECK(!vbtrack_blocks(&b, plain, &vb));
    vbtrack_leave(&t, &b);
    vbtrack_leave(&t, &a);
    CHECK(vbtrack_quiet(&t, frozen));
    /* a cut statement still being killed on its server keeps the freeze */
    atomic_fetch_add(&t.killing, 1);
    CHECK(!vbtrack_quiet(&t, frozen));
    CHECK(vbtrack_quiet(&t, plain));
    atomic_fetch_sub(&t.killing, 1);
    CHECK(vbtrack_quiet(&t, frozen));
    CHECK_EQ(atomic_load(&t.busy[3]), 0);
out:
    vbtrack_fini(&t);
    smap_unref(frozen);
    smap_unref(plain);
}

int main(void)
{
    RUN(test_quiet);
    return check_exit();
}
