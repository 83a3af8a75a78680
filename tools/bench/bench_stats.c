/*
 * tools/bench/bench_stats.c - what the counters cost one statement.
 *
 * Runs the hooks a routed point SELECT passes through (router/stats.h:
 * stats_begin, stats_route, stats_sent, stats_reply and four session state
 * moves) and, for comparison, the two uncontended atomic_fetch_add() per
 * statement the router did before router/stats.c. Reports ns of CPU per
 * statement (best of 5 rounds); meaningful only in a release build without
 * sanitizers:
 *
 *   meson setup build-rel -Dbuildtype=release && ninja -C build-rel
 *   build-rel/tools/bench/bench_stats [iterations]     default 2000000
 *
 * Exits 1 when the hooks take more than 200 ns per statement.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/wire.h"
#include "router/stats.h"

static double cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000000;
    struct stats *st = stats_new();
    struct stats_shard *sh;
    struct stats_sess ss;
    _Atomic uint64_t old[2] = { 0, 0 };
    double best_new = 1e18, best_old = 1e18, best_clock = 1e18;
    uint64_t sink = 0;

    if (iters <= 0 || !st)
        return 2;
    memset(&ss, 0, sizeof(ss));
    stats_vb_size(st, 1024);
    sh = stats_shard_of(st, "s0");
    stats_user(&ss, "app");
    for (int round = 0; round < 5; round++) {
        double t0 = cpu_ns(), ns;

        for (long i = 0; i < iters; i++) {
            stats_begin(st, &ss, WIRE_COM_QUERY, "app");
            stats_route(&ss, (uint32_t)(i & 1023));
            stats_conn_move(st, STATS_CONN_IDLE, STATS_CONN_ACTIVE);
            stats_conn_move(st, STATS_CONN_ACTIVE, STATS_CONN_ACTIVE);
            stats_sent(&ss, sh, 52);
            stats_reply(st, &ss, false, 0, 1, 120);
            stats_conn_move(st, STATS_CONN_ACTIVE, STATS_CONN_IDLE);
            STATS_INC(st->routed);
        }
        ns = (cpu_ns() - t0) / (double)iters;
        if (ns < best_new)
            best_new = ns;
        t0 = cpu_ns();
        for (long i = 0; i < iters; i++) {
            atomic_fetch_add(&old[0], 1);
            atomic_fetch_add(&old[1], 1);
        }
        ns = (cpu_ns() - t0) / (double)iters;
        if (ns < best_old)
            best_old = ns;
        t0 = cpu_ns();
        for (long i = 0; i < iters; i++)
            sink += stats_now_ns();
        ns = (cpu_ns() - t0) / (double)iters;
        if (ns < best_clock)
            best_clock = ns;
    }
    printf("stats hooks per statement:        %6.1f ns (of which 2 clock reads: %.1f ns)\n",
           best_new, 2 * best_clock);
    printf("before: 2 atomic_fetch_add:       %6.1f ns\n", best_old);
    printf("(statements counted: %llu, sink %llu)\n",
           (unsigned long long)STATS_GET(sh->statements), (unsigned long long)(sink & 1));
    stats_free(st);
    return best_new > 200 ? 1 : 0;
}
