/*
 * tests/unit/test_detect.c - the failover decision: majority of live
 * routers, a standby still replicating from the master vetoes, anti-flap.
 */
#include "router/detect.h"

#include <string.h>

#include "check.h"

#define R 5      /* routers */
#define S 2      /* standbys */

static struct smap_endpoint master_ep = { "10.0.0.1", 3306 };
static struct detect_view master[R];
static struct detect_view standby[R * S];
static const struct detect_policy pol = { .flap_window_ms = 60000 };

static struct detect_input input(unsigned n_routers)
{
    struct detect_input in = { .n_routers = n_routers, .n_standbys = S, .master = master,
                               .standby = standby, .master_ep = &master_ep };
    return in;
}

/* Every router sees the master <v>; standbys up, IO thread <io>. */
static void world(enum health_verdict v, bool io)
{
    memset(master, 0, sizeof(master));
    memset(standby, 0, sizeof(standby));
    for (int r = 0; r < R; r++) {
        master[r].verdict = v;
        for (int k = 0; k < S; k++) {
            struct detect_view *sv = &standby[r * S + k];

            sv->verdict = HEALTH_UP;
            sv->is_replica = true;
            sv->io_running = io;
            sv->source = master_ep;
        }
    }
}

static void test_majority(void)
{
    struct detect_input in = input(R);

    world(HEALTH_UP, true);
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_HEALTHY);
    world(HEALTH_UP, false);
    master[0].verdict = HEALTH_DOWN;        /* one router lost its network */
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_MINORITY);
    master[1].verdict = HEALTH_DOWN;
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_MINORITY);
    master[2].verdict = HEALTH_SUSPECT;     /* suspect is not down */
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_MINORITY);
    master[2].verdict = HEALTH_DOWN;
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_FAILED);
    /* Half of an even number is not a majority. */
    in = input(4);
    world(HEALTH_UP, false);
    master[0].verdict = master[1].verdict = HEALTH_DOWN;
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_MINORITY);
    master[2].verdict = HEALTH_DOWN;
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_FAILED);
    /* A lone router decides alone. */
    in = input(1);
    world(HEALTH_DOWN, false);
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_FAILED);
out:;
}

static void test_standby_veto(void)
{
    struct detect_input in = input(R);

    /* Routers cut off from the master, its standby still connected. */
    world(HEALTH_DOWN, false);
    standby[3 * S + 1].io_running = true;
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_STANDBY_SEES_IT);
    /* ...but only a standby replicating from this master, seen up. */
    standby[3 * S + 1].source.port = 3307;
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_FAILED);
    standby[3 * S + 1].source.port = 3306;
    standby[3 * S + 1].verdict = HEALTH_DOWN;
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_FAILED);
    standby[3 * S + 1].verdict = HEALTH_UP;
    standby[3 * S + 1].is_replica = false;
    CHECK_EQ(detect_master(&in, &pol, 1000), DETECT_FAILED);
out:;
}

static void test_flap_window(void)
{
    struct detect_input in = input(R);

    world(HEALTH_DOWN, false);
    in.last_failover_ms = 100000;
    CHECK_EQ(detect_master(&in, &pol, 120000), DETECT_FLAPPING);
    CHECK_EQ(detect_master(&in, &pol, 160000), DETECT_FAILED);
    CHECK(strcmp(detect_result_name(DETECT_FLAPPING), "flapping") == 0);
out:;
}

static void test_parse_line(void)
{
    static const char m[] = "health shard=s0 role=master server=10.0.0.1:3306 verdict=down "
                            "for_ms=1200 fails=3 unhealthy=0 safe=0 error=\"connect: x (2002)\"";
    static const char sb[] = "health shard=s0 role=standby server=10.0.0.2:3306 verdict=up "
                             "for_ms=5 fails=0 unhealthy=0 safe=1 lag_s=0 io=1 sql=1 "
                             "source=10.0.0.1:3306 gtid_io_pos=0-1-5";
    struct detect_line l;

    CHECK_EQ(detect_parse_line(m, strlen(m), &l), 0);
    CHECK_STREQ(l.shard, "s0");
    CHECK(l.is_master);
    CHECK_EQ(l.server.port, 3306);
    CHECK_EQ(l.v.verdict, HEALTH_DOWN);
    CHECK(!l.v.is_replica);
    CHECK_EQ(detect_parse_line(sb, strlen(sb), &l), 0);
    CHECK(!l.is_master && l.v.is_replica && l.v.io_running);
    CHECK_EQ(l.v.verdict, HEALTH_UP);
    CHECK(smap_endpoint_eq(&l.v.source, &master_ep));
    CHECK_STREQ(l.v.source.host, "10.0.0.1");
    /* Not health lines, or broken ones. */
    CHECK_EQ(detect_parse_line("address=1.2.3.4:6033 map_version=3", 33, &l), -1);
    CHECK_EQ(detect_parse_line("health role=master server=1.2.3.4:1 verdict=up", 46, &l), -1);
    CHECK_EQ(detect_parse_line("health shard=s0 role=boss server=1.2.3.4:1", 42, &l), -1);
    CHECK_EQ(detect_parse_line("health shard=s0 role=master server=nohost", 41, &l), -1);
    /* A line cut anywhere never reads past its length. */
    for (size_t n = 0; n < sizeof(sb) - 1; n++)
        detect_parse_line(sb, n, &l);
out:;
}

static void test_lease_by_peers(void)
{
    static const struct {
        unsigned peers, lost, have;
        bool     ok;
    } t[] = {
        { 0, 0, 0, false },     /* alone: nobody to confirm */
        { 2, 2, 0, true },      /* three routers, all lost it */
        { 2, 1, 0, false },     /* one of two peers lost it, one silent: no majority */
        { 2, 1, 1, false },     /* one peer still has ZooKeeper: veto */
        { 4, 3, 0, true },      /* five routers, one peer silent */
        { 4, 3, 1, false },
        { 4, 2, 0, false },     /* half is not a majority */
        { 1, 1, 0, true },      /* two routers */
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct detect_lease_round rd = { t[i].peers, t[i].lost, t[i].have };

        CHECK_EQ(detect_lease_by_peers(&rd), t[i].ok);
    }
out:;
}

int main(void)
{
    RUN(test_lease_by_peers);
    RUN(test_parse_line);
    RUN(test_majority);
    RUN(test_standby_veto);
    RUN(test_flap_window);
    return check_exit();
}
