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

int main(void)
{
    RUN(test_majority);
    RUN(test_standby_veto);
    RUN(test_flap_window);
    return check_exit();
}
