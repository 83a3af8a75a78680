/*
 * tests/unit/core/test_worker.c - a worker's map (router/worker.c): maps
 * posted out of order are applied in version order only, and a map that
 * cannot be applied (no memory for its pools) leaves the running map and
 * every pool in place.
 */
#include "tests/unit/core/harness.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/reply.h"
#include "router/fault.h"
#include "router/pool.h"
#include "shardmap/smap.h"

#include "../check.h"

static const char q_key[] = "SELECT shard FROM t WHERE userid = 5";

/* Map version <v>: every vbucket on fake <fake> (shard "n"), with fake 3 as
 * shard "a" when <with_a>. */
static struct smap *map_v(struct harness *h, unsigned v, unsigned fake, bool with_a)
{
    char text[256];

    snprintf(text, sizeof(text), "version %u\n%sshard n master=@%u\nvb 0-1023 n\n", v,
             with_a ? "shard a master=@3\n" : "", fake);
    return harness_map(h, text);
}

/*
 * Maps posted to a worker in the order given (as the ZooKeeper thread,
 * start-up and SIGHUP may post them) end with the newest in use: an older
 * map posted after a newer one is dropped, an equal one applied. Version v
 * sends key 5 to fake (v % 2 ? 1 : 2), so the statement shows which one
 * the worker runs.
 */
static void test_map_version_order(void)
{
    static const struct {
        unsigned posts[5];      /* versions, 0-terminated */
        unsigned final;
    } cases[] = {
        { { 1, 2, 3 }, 3 },
        { { 3, 2 }, 3 },
        { { 3, 1, 2 }, 3 },
        { { 2, 4, 3, 1 }, 4 },
        { { 5, 5 }, 5 },
        { { 6, 7, 6 }, 7 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hclient c = { .fd = -1 };
        struct harness *h = harness_new(2, NULL);
        struct hresult r;
        char want[4];

        CHECK(h != NULL);
        for (unsigned k = 0; k < 5 && cases[i].posts[k]; k++) {
            unsigned v = cases[i].posts[k];

            worker_set_map(h->w, map_v(h, v, v % 2 ? 1 : 2, false));
        }
        harness_settle(h, 100);
        CHECK(h->w->map != NULL);
        CHECK_EQ(smap_version(h->w->map), cases[i].final);
        CHECK(harness_pools_match(h->w));
        CHECK_EQ(hclient_ready(h, &c, 0), 0);
        r = hclient_query(h, &c, q_key);
        CHECK_EQ(r.kind, HRESULT_ROWS);
        snprintf(want, sizeof(want), "s%u", cases[i].final % 2 ? 1 : 2);
        CHECK_STREQ(r.value, want);
out:
        if (h && c.fd >= 0)
            hclient_close(h, &c);
        harness_free(h);
        if (check_failures)
            return;
    }
}

/*
 * Applying a map with a new shard fails at each allocation it makes (the
 * pools array, the index table, the new shard's pool; the named fault
 * points and every C allocation in turn): the worker keeps the map it ran
 * and all its pools, a session's next statement goes where the old map
 * says over the pooled connection, and the same map posted again applies.
 */
static void test_apply_map_out_of_memory(void)
{
    static const char *const points[] = { "apply_map@1", "pool_new@1" };
    uint64_t n;

    for (n = 0;; n++) {
        struct hclient c = { .fd = -1 };
        struct harness *h = harness_new(3, NULL);
        struct hresult r;
        bool fired = true;

        CHECK(h != NULL);
        CHECK_EQ(harness_publish(h, map_v(h, 1, 2, false)), 0);
        CHECK_EQ(hclient_ready(h, &c, 0), 0);
        r = hclient_query(h, &c, q_key);
        CHECK_EQ(r.kind, HRESULT_ROWS);
        CHECK_STREQ(r.value, "s2");
        /* Version 2 adds shard "a" (fake 3) and moves "n" to fake 1. */
        if (n < 2) {
            fault_set(points[n]);
        } else {
            harness_alloc_fail(HARNESS_ALLOC_ANY, n - 1);
        }
        worker_set_map(h->w, map_v(h, 2, 1, true));
        harness_settle(h, 50);
        if (n < 2)
            fault_set(NULL);
        else
            harness_alloc_stop(&fired);
        CHECK(harness_pools_match(h->w));
        if (n < 2)
            CHECK_EQ(smap_version(h->w->map), 1);     /* the point was reached */
        if (smap_version(h->w->map) == 1) {
            /* Kept: the pooled connection to fake 2 still serves. */
            r = hclient_query(h, &c, q_key);
            CHECK_EQ(r.kind, HRESULT_ROWS);
            CHECK_STREQ(r.value, "s2");
            CHECK_EQ(fake_of(h, 2)->n_accepted, 1);
            worker_set_map(h->w, map_v(h, 2, 1, true));
            harness_settle(h, 50);
        }
        CHECK_EQ(smap_version(h->w->map), 2);
        CHECK(harness_pools_match(h->w));
        r = hclient_query(h, &c, q_key);
        CHECK_EQ(r.kind, HRESULT_ROWS);
        CHECK_STREQ(r.value, "s1");
out:
        if (h && c.fd >= 0)
            hclient_close(h, &c);
        harness_free(h);
        if (check_failures) {
            fprintf(stderr, "  (n=%llu)\n", (unsigned long long)n);
            return;
        }
        if (n >= 2 && !fired)
            break;
    }
    fprintf(stderr, "  %llu allocations of the swap failed in turn\n", (unsigned long long)n - 2);
}

int main(void)
{
    RUN(test_map_version_order);
    RUN(test_apply_map_out_of_memory);
    return check_exit();
}
