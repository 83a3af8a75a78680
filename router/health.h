/*
 * router/health.h - what the probes of one server mean: its verdict over
 * time, and whether its replication settings are the lossless ones.
 *
 * Pure: probe results and the clock come in as arguments, so a test can
 * replay a 30 s outage in a loop. The control thread (router/control.c)
 * takes the probes and calls these.
 */
#ifndef SHARDWIRE_ROUTER_HEALTH_H
#define SHARDWIRE_ROUTER_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum health_verdict {
    HEALTH_UNKNOWN,    /* not probed yet */
    HEALTH_UP,         /* answered the last probe (maybe with an error: see <unhealthy>) */
    HEALTH_SUSPECT,    /* the last probe(s) failed, not yet long enough for DOWN */
    HEALTH_DOWN,       /* failed for down_after_fails probes and down_after_ms */
};

enum health_probe {
    HEALTH_PROBE_OK,         /* connected and the query answered */
    HEALTH_PROBE_REFUSED,    /* the server answered with an error (1040 too many
                                connections, 1045 access denied, ...): alive */
    HEALTH_PROBE_FAILED,     /* no connection, reset, or no answer within the timeout */
};

struct health_policy {
    unsigned down_after_fails;   /* consecutive failed probes, at least 1 */
    uint64_t down_after_ms;      /* since the first of them */
};

struct health {
    enum health_verdict verdict;
    unsigned            fails;          /* consecutive failed probes */
    bool                unhealthy;      /* UP, but the last probe got an error */
    uint64_t            since_ms;       /* when <verdict> was entered */
    uint64_t            first_fail_ms;  /* when the current run of failures began */
    uint64_t            last_ok_ms;     /* the last probe that reached the server */
};

/* Feeds one probe result taken at <now_ms>; returns the new verdict. */
enum health_verdict health_observe(struct health *h, const struct health_policy *pol,
                                   enum health_probe probe, uint64_t now_ms);

const char *health_verdict_name(enum health_verdict v);

/* What a successful probe read from a server. */
struct health_facts {
    bool     read_only;
    bool     semi_master;           /* rpl_semi_sync_master_enabled */
    bool     semi_after_sync;       /* rpl_semi_sync_master_wait_point = AFTER_SYNC */
    uint64_t semi_timeout_ms;       /* rpl_semi_sync_master_timeout */
    bool     semi_slave;            /* rpl_semi_sync_slave_enabled */
    unsigned sync_binlog;
    unsigned flush_at_commit;       /* innodb_flush_log_at_trx_commit */
    bool     relay_log_recovery;
    unsigned sync_relay_log;
    char     gtid_binlog_pos[256];
    /* Semi-sync, master side (the server's status counters), for
     * health_acks_observe(): */
    bool     has_semi_status;       /* the four counters below were read */
    bool     semi_status_on;        /* Rpl_semi_sync_master_status: commits wait for an ack */
    unsigned semi_clients;          /* Rpl_semi_sync_master_clients: semi-sync standbys
                                     * connected (as the master knows: a killed standby
                                     * counts until the master next writes to it) */
    unsigned semi_waiting;          /* Rpl_semi_sync_master_wait_sessions: commits waiting */
    uint64_t semi_yes_tx;           /* Rpl_semi_sync_master_yes_tx: commits acknowledged */
    /* Replicas only (SHOW SLAVE STATUS had a row): */
    bool     is_replica;
    bool     io_running;            /* Slave_IO_Running = Yes and connected to its master
                                     * (health_io_connected of Slave_IO_State) */
    bool     sql_running;           /* Slave_SQL_Running = Yes */
    int64_t  lag_s;                 /* Seconds_Behind_Master; -1 when NULL */
    char     master_host[256];
    unsigned master_port;
    char     gtid_io_pos[256];
    char     gtid_slave_pos[256];
};

/* The semi-sync no-fallback timeout the lossless setup needs at least
 * (FIELD-NOTES: no value falls back; 4294967295 is the safe choice). */
#define HEALTH_SEMI_TIMEOUT_MIN_MS 4000000000ull

/*
 * Whether <f>, read from a shard's master, is the lossless setup: semi-sync
 * on, AFTER_SYNC, a timeout that never falls back to async, sync_binlog=1,
 * innodb_flush_log_at_trx_commit=1, writable. Returns NULL if so, else a
 * static string naming the first setting that is not.
 */
const char *health_master_unsafe(const struct health_facts *f);

/*
 * Whether a replica whose Slave_IO_Running says Yes is connected to its
 * master, from its Slave_IO_State <state> (NULL: unknown, counts as
 * connected). MariaDB keeps Slave_IO_Running = Yes while the IO thread
 * retries a lost master ("Reconnecting after a failed master event read",
 * "Waiting to reconnect after ...", "Connecting to master"): such a standby
 * no longer sees its master and must not veto a failover.
 */
bool health_io_connected(const char *state);

/*
 * Whether a master's commits can get their semi-sync acknowledgement. With
 * no fallback to async (the lossless setup), a master that no standby
 * acknowledges makes every commit wait until one returns; the router then
 * refuses writes to the shard at once instead of letting them join the wait
 * (docs/failover.md "A shard with no standby").
 *
 * A probe sees the acknowledgements **stalled** when semi-sync is on and
 * either no semi-sync standby is connected, or commits are waiting and
 * none was acknowledged since the stall began (a killed standby the master
 * has not noticed yet, a stopped or cut-off one). Acknowledgements are
 * **lost** once stalled for <lost_after_ms>, so a standby that reconnects
 * causes no error; lost ends with the first probe that sees a standby
 * connected and no commit waiting, or an acknowledgement given.
 */
struct health_acks {
    bool     stalled;       /* the probes since <since_ms> all saw a stall */
    bool     lost;          /* stalled for lost_after_ms: refuse writes */
    uint64_t since_ms;      /* when the stall began */
    uint64_t yes_tx;        /* semi_yes_tx at the last probe of the stall */
};

/* Feeds the facts <f> of one successful probe of a master at <now_ms>
 * (facts without has_semi_status, or semi-sync off, end any stall).
 * Returns <a>->lost. */
bool health_acks_observe(struct health_acks *a, const struct health_facts *f,
                         uint64_t lost_after_ms, uint64_t now_ms);

/*
 * The same question from this router's own probes of the standbys, for a
 * master that does not know yet: a standby killed while its master is idle
 * stays in Rpl_semi_sync_master_clients until the master next writes to it
 * (its heartbeat, slave_net_timeout / 2), so the counters above see nothing
 * wrong and the first commits would wait that long.
 *
 * A standby **serves** the master on port <master_port> unless this
 * router's last <min_fails> probes of it failed (no connection or no
 * answer in time: one slow probe on a loaded router is not enough; an
 * error answer is a live server and counts as serving), or it answered
 * and is no replica, its IO thread is not connected
 * (health_io_connected()), or it replicates from another port. The port
 * alone is compared: a standby may name its master by another host name
 * than the map, and a wrong "serving" only delays the refusal to the
 * master's own view. Unknown (never probed) counts as serving.
 *
 * Acknowledgements are **lost** when the shard has standbys, none serves,
 * semi-sync is on at the master (<master> has_semi_status), and the
 * master acknowledged no commit (semi_yes_tx unchanged) for <lost_after_ms>
 * since this was first seen (not since the standbys stopped: the counter
 * must be watched over the whole time, and a standby's state may be
 * relative to a master the map has just replaced). The master's counter is the
 * check against this router's own network: a router cut off from the
 * standbys alone sees them down, but commits that other routers (or its
 * own clients before the refusal) send keep being acknowledged and end the
 * loss at once. Lost ends when a standby serves again or the master
 * acknowledges a commit.
 */
struct health_standbys {
    bool     down;          /* no standby served at the last evaluation */
    bool     lost;          /* refuse writes */
    uint64_t since_ms;      /* first seen with no standby serving, or the last
                             * acknowledgement seen since */
    uint64_t yes_tx;        /* the master's semi_yes_tx then */
};

/* Whether the standby probed as <h> with facts <f> (<has_facts>: a probe
 * succeeded once) serves the master on <master_port> (<min_fails>: failed
 * probes in a row that count, at least 1). */
bool health_standby_serving(const struct health *h, const struct health_facts *f,
                            bool has_facts, unsigned master_port, unsigned min_fails);

/* Feeds one evaluation at <now_ms>: <n_standbys> in the map, <n_serving>
 * of them serving; <master> the facts of the master's last successful
 * probe (NULL: none). Returns <s>->lost. */
bool health_standbys_observe(struct health_standbys *s, const struct health_facts *master,
                             unsigned n_standbys, unsigned n_serving, uint64_t lost_after_ms,
                             uint64_t now_ms);

/* The same for a standby: a replica, semi-sync replica side on, not
 * semi-sync master, relay_log_recovery=0, sync_relay_log=1, read_only. */
const char *health_standby_unsafe(const struct health_facts *f);

#endif
