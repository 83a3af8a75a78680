/*
 * tests/unit/test_health.c - verdicts over replayed outages, and the
 * lossless-settings checks for masters and standbys.
 */
#include "router/health.h"

#include <string.h>

#include "check.h"

static const struct health_policy pol = { .down_after_fails = 3, .down_after_ms = 3000 };

static void test_outage_replay(void)
{
    struct health h;
    uint64_t t = 1000;

    memset(&h, 0, sizeof(h));
    CHECK_EQ(h.verdict, HEALTH_UNKNOWN);
    CHECK_EQ(health_observe(&h, &pol, HEALTH_PROBE_OK, t), HEALTH_UP);
    /* A 30 s outage probed every 500 ms: suspect until both 3 failures and
     * 3 s have passed, then down, and down stays down. */
    for (int i = 0; i < 60; i++) {
        enum health_verdict v;

        t += 500;
        v = health_observe(&h, &pol, HEALTH_PROBE_FAILED, t);
        if (i < 6)
            CHECK_EQ(v, HEALTH_SUSPECT);
        else
            CHECK_EQ(v, HEALTH_DOWN);
    }
    CHECK_EQ(h.since_ms, 1000 + 7 * 500);
    CHECK_EQ(h.fails, 60);
    t += 500;
    CHECK_EQ(health_observe(&h, &pol, HEALTH_PROBE_OK, t), HEALTH_UP);
    CHECK_EQ(h.fails, 0);
    CHECK_EQ(h.since_ms, t);
out:;
}

static void test_slow_probes_need_both_conditions(void)
{
    struct health h;

    memset(&h, 0, sizeof(h));
    /* Probes 10 s apart: the time passes at once, the count does not. */
    CHECK_EQ(health_observe(&h, &pol, HEALTH_PROBE_FAILED, 0), HEALTH_SUSPECT);
    CHECK_EQ(health_observe(&h, &pol, HEALTH_PROBE_FAILED, 10000), HEALTH_SUSPECT);
    CHECK_EQ(health_observe(&h, &pol, HEALTH_PROBE_FAILED, 20000), HEALTH_DOWN);
    /* One success in between starts the count again. */
    memset(&h, 0, sizeof(h));
    health_observe(&h, &pol, HEALTH_PROBE_FAILED, 0);
    health_observe(&h, &pol, HEALTH_PROBE_FAILED, 2000);
    health_observe(&h, &pol, HEALTH_PROBE_OK, 2500);
    CHECK_EQ(health_observe(&h, &pol, HEALTH_PROBE_FAILED, 4000), HEALTH_SUSPECT);
    CHECK_EQ(h.first_fail_ms, 4000);
out:;
}

static void test_refused_is_alive(void)
{
    struct health h;

    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 10; i++)
        CHECK_EQ(health_observe(&h, &pol, HEALTH_PROBE_REFUSED, (uint64_t)i * 1000), HEALTH_UP);
    CHECK(h.unhealthy);
    CHECK_EQ(h.fails, 0);
    CHECK_EQ(health_observe(&h, &pol, HEALTH_PROBE_OK, 11000), HEALTH_UP);
    CHECK(!h.unhealthy);
out:;
}

static void test_master_settings(void)
{
    struct health_facts f;

    memset(&f, 0, sizeof(f));
    f.semi_master = f.semi_after_sync = true;
    f.semi_timeout_ms = 4294967295ull;
    f.sync_binlog = f.flush_at_commit = 1;
    CHECK(health_master_unsafe(&f) == NULL);
    f.semi_timeout_ms = 10000;
    CHECK(strstr(health_master_unsafe(&f), "timeout") != NULL);
    f.semi_timeout_ms = 4294967295ull;
    f.semi_after_sync = false;
    CHECK(strstr(health_master_unsafe(&f), "AFTER_SYNC") != NULL);
    f.semi_after_sync = true;
    f.sync_binlog = 0;
    CHECK(strstr(health_master_unsafe(&f), "sync_binlog") != NULL);
    f.sync_binlog = 1;
    f.read_only = true;
    CHECK(strstr(health_master_unsafe(&f), "read_only") != NULL);
    f.read_only = false;
    f.is_replica = f.io_running = true;
    CHECK(strstr(health_master_unsafe(&f), "replicates") != NULL);
out:;
}

static void test_standby_settings(void)
{
    struct health_facts f;

    memset(&f, 0, sizeof(f));
    f.is_replica = f.io_running = f.sql_running = true;
    f.semi_slave = f.read_only = true;
    f.sync_relay_log = 1;
    CHECK(health_standby_unsafe(&f) == NULL);
    f.relay_log_recovery = true;
    CHECK(strstr(health_standby_unsafe(&f), "relay_log_recovery") != NULL);
    f.relay_log_recovery = false;
    f.semi_master = true;
    CHECK(strstr(health_standby_unsafe(&f), "SQL thread") != NULL);
    f.semi_master = false;
    f.is_replica = false;
    CHECK(strstr(health_standby_unsafe(&f), "not a replica") != NULL);
out:;
}

static void test_io_connected(void)
{
    CHECK(health_io_connected("Waiting for master to send event"));
    CHECK(health_io_connected("Queueing master event to the relay log"));
    CHECK(health_io_connected(NULL));
    CHECK(!health_io_connected("Reconnecting after a failed master event read"));
    CHECK(!health_io_connected("Waiting to reconnect after a failed master event read"));
    CHECK(!health_io_connected("Waiting to reconnect after a failed binlog dump request"));
    CHECK(!health_io_connected("Connecting to master"));
out:;
}

/* A master's semi-sync counters over time: killed standby, reconnect, load. */
static void test_acks_replay(void)
{
    struct health_acks a;
    struct health_facts f;
    uint64_t t = 1000;

    memset(&a, 0, sizeof(a));
    memset(&f, 0, sizeof(f));
    f.semi_master = f.semi_status_on = f.has_semi_status = true;
    f.semi_clients = 1;
    f.semi_yes_tx = 10;
    /* Under load: commits always waiting, but acknowledged between probes. */
    for (int i = 0; i < 50; i++) {
        f.semi_waiting = 3;
        f.semi_yes_tx += 7;
        CHECK(!health_acks_observe(&a, &f, 1500, t += 200));
    }
    /* The standby is killed and the master has not noticed: it still counts
     * one client, commits wait, none is acknowledged. Lost after 1.5 s. */
    for (int i = 1; i <= 10; i++) {
        bool lost = health_acks_observe(&a, &f, 1500, t += 200);

        CHECK_EQ(lost, i > 7);
    }
    CHECK_EQ(a.since_ms, t - 10 * 200);    /* the last probe that saw an ack */
    /* The master notices (no client): still lost; a commit acknowledged just
     * before does not clear it while no standby is connected. */
    f.semi_clients = 0;
    CHECK(health_acks_observe(&a, &f, 1500, t += 200));
    /* It comes back: acknowledged, nothing waits: clear at once. */
    f.semi_clients = 1;
    f.semi_waiting = 0;
    f.semi_yes_tx += 3;
    CHECK(!health_acks_observe(&a, &f, 1500, t += 200));
    CHECK(!a.stalled);
    /* An idle master losing its only standby: no client, no waiter. A
     * reconnect within the confirm time causes nothing. */
    f.semi_clients = 0;
    CHECK(!health_acks_observe(&a, &f, 1500, t += 200));
    CHECK(!health_acks_observe(&a, &f, 1500, t += 1000));
    f.semi_clients = 1;
    CHECK(!health_acks_observe(&a, &f, 1500, t += 200));
    f.semi_clients = 0;                 /* the confirm time starts again */
    CHECK(!health_acks_observe(&a, &f, 1500, t += 1000));
    CHECK(!health_acks_observe(&a, &f, 1500, t += 1000));
    CHECK(health_acks_observe(&a, &f, 1500, t += 600));
    /* Semi-sync off (no standby to acknowledge after a failover), or fallen
     * back to async, or counters unknown: commits do not wait. */
    f.semi_master = false;
    CHECK(!health_acks_observe(&a, &f, 1500, t += 200));
    f.semi_master = true;
    f.semi_status_on = false;
    CHECK(!health_acks_observe(&a, &f, 1500, t += 5000));
    f.semi_status_on = true;
    f.has_semi_status = false;
    CHECK(!health_acks_observe(&a, &f, 1500, t += 5000));
out:;
}

/* The standbys as this router probes them: killed while the master is
 * idle (its counters still count them), a router cut off from the standbys
 * alone, a standby pointed elsewhere, a map that just named a new master. */
static void test_standbys_replay(void)
{
    struct health_policy pol = { 3, 3000 };
    struct health sb[2];
    struct health_facts f[2], m;
    struct health_standbys s;
    uint64_t t = 1000, t0 = 0;
    unsigned serving;

    memset(sb, 0, sizeof(sb));
    memset(f, 0, sizeof(f));
    memset(&m, 0, sizeof(m));
    memset(&s, 0, sizeof(s));
    m.semi_master = m.semi_status_on = m.has_semi_status = true;
    m.semi_clients = 2;
    m.semi_yes_tx = 50;
    for (int k = 0; k < 2; k++) {
        f[k].is_replica = f[k].io_running = true;
        f[k].master_port = 3306;
    }
    /* Never probed: serving (unknown). */
    CHECK(health_standby_serving(&sb[0], &f[0], false, 3306, 1));
    for (int k = 0; k < 2; k++)
        health_observe(&sb[k], &pol, HEALTH_PROBE_OK, t);
    CHECK(health_standby_serving(&sb[0], &f[0], true, 3306, 1));
    CHECK(!health_standbys_observe(&s, &m, 2, 2, 1500, t));
    /* Both killed, the master idle: it still counts two clients, nothing
     * waits. Two failed probes each before they count (min_fails 2), then
     * lost 1.5 s after that was first seen. */
    t += 1000;
    for (int i = 0; i < 12; i++, t += 250) {
        serving = 0;
        for (int k = 0; k < 2; k++) {
            health_observe(&sb[k], &pol, HEALTH_PROBE_FAILED, t);
            if (health_standby_serving(&sb[k], &f[k], true, 3306, 2))
                serving++;
        }
        CHECK_EQ(serving, i == 0 ? 2u : 0u);
        if (i == 1)
            t0 = t;
        CHECK_EQ(health_standbys_observe(&s, &m, 2, serving, 1500, t), i >= 1 && t - t0 >= 1500);
    }
    CHECK(s.lost);
    /* One comes back and replicates: clear at once. */
    health_observe(&sb[0], &pol, HEALTH_PROBE_OK, t);
    CHECK(health_standby_serving(&sb[0], &f[0], true, 3306, 2));
    CHECK(!health_standbys_observe(&s, &m, 2, 1, 1500, t += 250));
    /* It answers but its IO thread retries (not connected), or it follows
     * another master (the one the map just replaced): not serving. */
    f[0].io_running = false;
    CHECK(!health_standby_serving(&sb[0], &f[0], true, 3306, 2));
    f[0].io_running = true;
    f[0].master_port = 3307;
    CHECK(!health_standby_serving(&sb[0], &f[0], true, 3306, 2));
    f[0].master_port = 3306;
    /* An error answer (too many connections): alive, counts as serving. */
    health_observe(&sb[1], &pol, HEALTH_PROBE_REFUSED, t);
    CHECK(health_standby_serving(&sb[1], &f[1], true, 3306, 2));
    /* A new master whose standbys, long gone from it in this router's
     * eyes, are repointed within the time: never lost. */
    memset(&s, 0, sizeof(s));
    CHECK(!health_standbys_observe(&s, &m, 2, 0, 1500, t += 250));
    CHECK(!health_standbys_observe(&s, &m, 2, 0, 1500, t += 1000));
    CHECK(!health_standbys_observe(&s, &m, 2, 1, 1500, t += 250));
    /* A router cut off from the standbys alone, the master busy with other
     * routers' writes: its acknowledgements go on, never lost. */
    for (int i = 0; i < 20; i++) {
        m.semi_yes_tx += 4;
        CHECK(!health_standbys_observe(&s, &m, 2, 0, 1500, t += 250));
    }
    /* The writes stop: lost 1.5 s after the last acknowledgement seen. */
    uint64_t last_ack = t;
    for (int i = 0; i < 10; i++) {
        t += 250;
        CHECK_EQ(health_standbys_observe(&s, &m, 2, 0, 1500, t), t - last_ack >= 1500);
    }
    /* ... and an acknowledgement (another router's write) ends it. */
    m.semi_yes_tx++;
    CHECK(!health_standbys_observe(&s, &m, 2, 0, 1500, t += 250));
    /* No standby in the map, semi-sync off, or no counters: never lost. */
    CHECK(!health_standbys_observe(&s, &m, 0, 0, 1500, t += 5000));
    m.semi_status_on = false;
    CHECK(!health_standbys_observe(&s, &m, 2, 0, 1500, t += 5000));
    CHECK(!health_standbys_observe(&s, &m, 2, 0, 1500, t += 5000));
    CHECK(!health_standbys_observe(&s, NULL, 2, 0, 1500, t += 5000));
out:;
}

int main(void)
{
    RUN(test_outage_replay);
    RUN(test_slow_probes_need_both_conditions);
    RUN(test_refused_is_alive);
    RUN(test_master_settings);
    RUN(test_standby_settings);
    RUN(test_io_connected);
    RUN(test_acks_replay);
    RUN(test_standbys_replay);
    return check_exit();
}
