/*
 * router/health.c - verdicts from probe results, and the lossless-settings
 * checks. Pure: no clock, no I/O.
 */
#include "router/health.h"

#include <string.h>
#include <strings.h>

static const char *const health_names[] = { "unknown", "up", "suspect", "down" };

const char *health_verdict_name(enum health_verdict v)
{
    return (unsigned)v < sizeof(health_names) / sizeof(health_names[0]) ? health_names[v] : "?";
}

static void health_enter(struct health *h, enum health_verdict v, uint64_t now_ms)
{
    if (h->verdict != v) {
        h->verdict = v;
        h->since_ms = now_ms;
    }
}

enum health_verdict health_observe(struct health *h, const struct health_policy *pol,
                                   enum health_probe probe, uint64_t now_ms)
{
    unsigned need = pol->down_after_fails ? pol->down_after_fails : 1;

    if (probe != HEALTH_PROBE_FAILED) {
        /* An error answer is a live server: "too many connections" or an
         * access problem must never look like a dead master. */
        h->fails = 0;
        h->unhealthy = probe == HEALTH_PROBE_REFUSED;
        h->last_ok_ms = now_ms;
        health_enter(h, HEALTH_UP, now_ms);
        return h->verdict;
    }
    if (h->fails == 0)
        h->first_fail_ms = now_ms;
    if (h->fails < UINT32_MAX)
        h->fails++;
    h->unhealthy = false;
    if (h->fails >= need && now_ms - h->first_fail_ms >= pol->down_after_ms)
        health_enter(h, HEALTH_DOWN, now_ms);
    else if (h->verdict != HEALTH_DOWN)
        health_enter(h, HEALTH_SUSPECT, now_ms);
    return h->verdict;
}

bool health_io_connected(const char *state)
{
    if (!state)
        return true;
    if (strncasecmp(state, "Connecting", 10) == 0)
        return false;
    for (const char *p = state; *p; p++)
        if (strncasecmp(p, "reconnect", 9) == 0)
            return false;
    return true;
}

bool health_acks_observe(struct health_acks *a, const struct health_facts *f,
                         uint64_t lost_after_ms, uint64_t now_ms)
{
    bool on = f->has_semi_status && f->semi_master && f->semi_status_on;

    if (!on || (f->semi_clients > 0 && f->semi_waiting == 0)) {
        memset(a, 0, sizeof(*a));
        return false;
    }
    /* An acknowledgement since the last probe: a standby works, and the
     * commits still waiting are newer ones (a busy master always has some). */
    if (!a->stalled || f->semi_yes_tx != a->yes_tx) {
        a->stalled = true;
        a->lost = false;
        a->since_ms = now_ms;
    }
    a->yes_tx = f->semi_yes_tx;
    if (now_ms - a->since_ms >= lost_after_ms)
        a->lost = true;
    return a->lost;
}

bool health_standby_serving(const struct health *h, const struct health_facts *f,
                            bool has_facts, unsigned master_port, unsigned min_fails)
{
    if (h->verdict == HEALTH_UNKNOWN)
        return true;
    if (h->fails > 0)
        return h->fails < (min_fails ? min_fails : 1);  /* one slow probe: not yet */
    if (h->unhealthy || !has_facts)
        return true;         /* alive, replication unknown */
    return f->is_replica && f->io_running && (!f->master_port || f->master_port == master_port);
}

bool health_standbys_observe(struct health_standbys *s, const struct health_facts *master,
                             unsigned n_standbys, unsigned n_serving, uint64_t lost_after_ms,
                             uint64_t now_ms)
{
    bool on = master && master->has_semi_status && master->semi_master &&
              master->semi_status_on;

    if (!on || n_standbys == 0 || n_serving > 0) {
        memset(s, 0, sizeof(*s));
        return false;
    }
    if (!s->down) {
        s->down = true;
        s->since_ms = now_ms;
        s->yes_tx = master->semi_yes_tx;
    } else if (master->semi_yes_tx != s->yes_tx) {
        /* Acknowledged since the standbys looked gone: one serves, this
         * router just cannot see it. */
        s->since_ms = now_ms;
        s->yes_tx = master->semi_yes_tx;
        s->lost = false;
    }
    if (now_ms >= s->since_ms && now_ms - s->since_ms >= lost_after_ms)
        s->lost = true;
    return s->lost;
}

const char *health_master_unsafe(const struct health_facts *f)
{
    if (f->is_replica && (f->io_running || f->sql_running))
        return "it replicates from another server";
    if (f->read_only)
        return "read_only=ON";
    if (!f->semi_master)
        return "rpl_semi_sync_master_enabled=OFF (acknowledged writes can be lost)";
    if (!f->semi_after_sync)
        return "rpl_semi_sync_master_wait_point is not AFTER_SYNC";
    if (f->semi_timeout_ms < HEALTH_SEMI_TIMEOUT_MIN_MS)
        return "rpl_semi_sync_master_timeout is short: the master falls back to async "
               "(set 4294967295)";
    if (f->sync_binlog != 1)
        return "sync_binlog is not 1";
    if (f->flush_at_commit != 1)
        return "innodb_flush_log_at_trx_commit is not 1";
    return 0;
}

const char *health_standby_unsafe(const struct health_facts *f)
{
    if (!f->is_replica)
        return "it is not a replica (SHOW SLAVE STATUS is empty)";
    if (!f->semi_slave)
        return "rpl_semi_sync_slave_enabled=OFF";
    if (f->semi_master)
        return "rpl_semi_sync_master_enabled=ON on a standby blocks its own SQL thread";
    if (f->relay_log_recovery)
        return "relay_log_recovery=ON discards acknowledged transactions on restart";
    if (f->sync_relay_log != 1)
        return "sync_relay_log is not 1";
    if (!f->read_only)
        return "read_only=OFF";
    return 0;
}
