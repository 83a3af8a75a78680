/*
 * tests/unit/core/test_mapwatch.c - how maps reach the workers
 * (router/mapwatch.c) from a map file: start, attach, reload; publishing
 * out of order, from several threads at once; and a reload that runs out
 * of memory at each allocation leaves the running map fully usable.
 */
#include "tests/unit/core/harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/reply.h"
#include "router/mapwatch.h"
#include "router/pool.h"
#include "shardmap/smap.h"

#include "../check.h"

static const char q_key[] = "SELECT shard FROM t WHERE userid = 5";

/* Map text of version <v> with every vbucket on fake <fake> ("n"); fake 3
 * is shard "a" too when <with_a>. */
static const char *map_text(char *buf, size_t cap, unsigned v, unsigned fake, bool with_a)
{
    snprintf(buf, cap, "version %u\n%sshard n master=@%u\nvb 0-1023 n\n", v,
             with_a ? "shard a master=@3\n" : "", fake);
    return buf;
}

static uint64_t router_version(struct harness *h)
{
    uint64_t v;

    pthread_mutex_lock(&h->r.map_lock);
    v = h->r.map ? smap_version(h->r.map) : 0;
    pthread_mutex_unlock(&h->r.map_lock);
    return v;
}

/*
 * The map file's map reaches the workers at attach; a reload with an older
 * version is refused, one with the same or a newer version is applied, a
 * file that does not parse keeps the map in use.
 */
static void test_start_attach_reload(void)
{
    static const struct {
        const char *text;       /* NULL: version <v> on fake <fake> */
        unsigned    v, fake;
        unsigned    want_v;     /* in use after the reload */
        const char *want_shard;
    } reloads[] = {
        { NULL, 1, 1, 2, "s2" },        /* older: refused */
        { NULL, 2, 1, 2, "s1" },        /* same version, new master: applied */
        { "version 9\nshard n master=bad\n", 0, 0, 2, "s1" },
        { NULL, 3, 2, 3, "s2" },
    };
    struct harness *h = harness_new(3, NULL);
    struct mapwatch *mw = NULL;
    struct hclient c = { .fd = -1 };
    struct smap *first = NULL;
    char text[256], *err = NULL;

    CHECK(h != NULL);
    CHECK_EQ(harness_write_map(h, map_text(text, sizeof(text), 2, 2, false)), 0);
    mw = mapwatch_start(&h->r, &err);
    if (!mw)
        fprintf(stderr, "mapwatch_start: %s\n", err);
    CHECK(mw != NULL);
    first = mapwatch_first_map(mw);
    CHECK(first != NULL);
    CHECK_EQ(smap_version(first), 2);
    CHECK(h->w->map == NULL);
    mapwatch_attach(mw);
    harness_settle(h, 50);
    CHECK(h->w->map != NULL);
    CHECK_EQ(smap_version(h->w->map), 2);
    CHECK_EQ(hclient_ready(h, &c, 0), 0);
    for (size_t i = 0; i < sizeof(reloads) / sizeof(reloads[0]); i++) {
        struct hresult r;

        CHECK_EQ(harness_write_map(h, reloads[i].text ? reloads[i].text
                                                      : map_text(text, sizeof(text),
                                                                 reloads[i].v, reloads[i].fake,
                                                                 false)), 0);
        mapwatch_reload(mw);
        harness_settle(h, 50);
        CHECK_EQ(router_version(h), reloads[i].want_v);
        CHECK_EQ(smap_version(h->w->map), reloads[i].want_v);
        r = hclient_query(h, &c, q_key);
        CHECK_EQ(r.kind, HRESULT_ROWS);
        CHECK_STREQ(r.value, reloads[i].want_shard);
    }
out:
    free(err);
    smap_unref(first);
    if (h && c.fd >= 0)
        hclient_close(h, &c);
    mapwatch_free(mw);
    harness_free(h);
}

/* Published out of order, in one thread: the older is refused (-1) and
 * neither the router's map nor the worker's goes back. */
static void test_publish_out_of_order(void)
{
    static const struct {
        unsigned versions[4];   /* 0-terminated */
        int      rc[4];
        unsigned final;
    } cases[] = {
        { { 5, 3 }, { 0, -1 }, 5 },
        { { 3, 5 }, { 0, 0 }, 5 },
        { { 4, 4, 2, 6 }, { 0, 0, -1, 0 }, 6 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct harness *h = harness_new(2, NULL);
        char text[256];

        CHECK(h != NULL);
        for (unsigned k = 0; k < 4 && cases[i].versions[k]; k++) {
            unsigned v = cases[i].versions[k];

            CHECK_EQ(mapwatch_publish(&h->r, harness_map(h, map_text(text, sizeof(text), v,
                                                                      1 + v % 2, false))),
                     cases[i].rc[k]);
        }
        harness_settle(h, 50);
        CHECK_EQ(router_version(h), cases[i].final);
        CHECK_EQ(smap_version(h->w->map), cases[i].final);
out:
        harness_free(h);
        if (check_failures)
            return;
    }
}

/*
 * Two threads publish (as the ZooKeeper thread and SIGHUP can) while the
 * workers run: one the odd versions, one the even, each in increasing
 * order, so posts reach the workers interleaved and often older after
 * newer. A worker's version never goes down, and all end on the newest.
 */
#define RACE_MAPS 60

struct publisher {
    struct harness *h;
    struct smap    *maps[RACE_MAPS / 2];
};

static void *publish_all(void *arg)
{
    struct publisher *p = arg;

    for (unsigned i = 0; i < RACE_MAPS / 2; i++)
        mapwatch_publish(&p->h->r, p->maps[i]);
    return NULL;
}

static void test_publish_race(void)
{
    struct harness *h = harness_new(2, "workers = 2\n");
    struct publisher pubs[2];
    pthread_t th[2];
    uint64_t seen[2] = { 0, 0 };
    unsigned started = 0;
    char text[256];

    CHECK(h != NULL);
    for (unsigned t = 0; t < 2; t++) {
        pubs[t].h = h;
        for (unsigned i = 0; i < RACE_MAPS / 2; i++) {
            unsigned v = 2 * i + t + 1;

            pubs[t].maps[i] = harness_map(h, map_text(text, sizeof(text), v, 1 + v % 2, false));
            CHECK(pubs[t].maps[i] != NULL);
        }
    }
    for (unsigned t = 0; t < 2; t++) {
        CHECK_EQ(pthread_create(&th[t], NULL, publish_all, &pubs[t]), 0);
        started++;
    }
    for (int k = 0; k < 400; k++) {
        harness_step(h, 1);
        for (unsigned wi = 0; wi < h->r.n_workers; wi++) {
            uint64_t v = h->workers[wi]->map ? smap_version(h->workers[wi]->map) : 0;

            CHECK(v >= seen[wi]);
            seen[wi] = v;
        }
        if (seen[0] == RACE_MAPS && seen[1] == RACE_MAPS)
            break;
    }
out:
    for (unsigned t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    if (h) {
        harness_settle(h, 50);
        if (!check_failures) {
            for (unsigned wi = 0; wi < h->r.n_workers; wi++)
                if (smap_version(h->workers[wi]->map) != RACE_MAPS) {
                    fprintf(stderr, "worker %u ends on version %llu\n", wi,
                            (unsigned long long)smap_version(h->workers[wi]->map));
                    check_failures++;
                }
            if (router_version(h) != RACE_MAPS) {
                fprintf(stderr, "router ends on version %llu\n",
                        (unsigned long long)router_version(h));
                check_failures++;
            }
        }
    }
    harness_free(h);
}

/*
 * A reload (map file read, parsed, published, applied by the worker) runs
 * out of memory at each allocation in turn. Whatever failed, the worker runs
 * one whole map (its pools match it), the session's statement goes where
 * that map says, and once memory is back a reload brings the new map.
 */
static void test_reload_out_of_memory(void)
{
    static const enum harness_alloc_kind kinds[] = { HARNESS_ALLOC_LIBC, HARNESS_ALLOC_EVENT };

    for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
        uint64_t n;

        for (n = 1;; n++) {
            struct harness *h = harness_new(3, NULL);
            struct mapwatch *mw = NULL;
            struct hclient c = { .fd = -1 };
            char text[256], *err = NULL;
            struct hresult r;
            bool fired = false;

            CHECK(h != NULL);
            CHECK_EQ(harness_write_map(h, map_text(text, sizeof(text), 1, 2, false)), 0);
            mw = mapwatch_start(&h->r, &err);
            CHECK(mw != NULL);
            mapwatch_attach(mw);
            harness_settle(h, 50);
            CHECK_EQ(hclient_ready(h, &c, 0), 0);
            r = hclient_query(h, &c, q_key);
            CHECK_STREQ(r.value, "s2");
            /* Version 2 adds shard "a" and moves "n" to fake 1. */
            CHECK_EQ(harness_write_map(h, map_text(text, sizeof(text), 2, 1, true)), 0);
            harness_alloc_fail(kinds[ki], n);
            mapwatch_reload(mw);
            harness_settle(h, 50);
            harness_alloc_stop(&fired);
            CHECK(harness_pools_match(h->w));
            r = hclient_query(h, &c, q_key);
            CHECK_EQ(r.kind, HRESULT_ROWS);
            CHECK_STREQ(r.value, smap_version(h->w->map) == 2 ? "s1" : "s2");
            mapwatch_reload(mw);
            harness_settle(h, 50);
            CHECK_EQ(smap_version(h->w->map), 2);
            CHECK(harness_pools_match(h->w));
            r = hclient_query(h, &c, q_key);
            CHECK_STREQ(r.value, "s1");
out:
            free(err);
            if (h && c.fd >= 0)
                hclient_close(h, &c);
            mapwatch_free(mw);
            harness_free(h);
            if (check_failures) {
                harness_alloc_stop(NULL);
                fprintf(stderr, "  (allocation kind %zu, n=%llu)\n", ki, (unsigned long long)n);
                return;
            }
            if (!fired)
                break;
        }
        fprintf(stderr, "  allocation kind %zu: %llu allocations of the reload failed in turn\n",
                ki, (unsigned long long)n - 1);
    }
    if (harness_leak_check() != 0) {
        fprintf(stderr, "leaks after the reload loop (HARNESS_ONLY_N to bisect)\n");
        check_failures++;
    }
}

int main(void)
{
    RUN(test_start_attach_reload);
    RUN(test_publish_out_of_order);
    RUN(test_publish_race);
    RUN(test_reload_out_of_memory);
    return check_exit();
}
