/*
 * router/control.c - the control thread: health checks (see control.h).
 *
 * One probe per server and interval, each a small state machine over
 * MariaDB Connector/C's non-blocking calls (_start/_cont) driven by this
 * thread's event base: connect, read the settings row, and on standbys
 * SHOW SLAVE STATUS. A probe that has not finished by its deadline is
 * aborted and counts as failed: a SIGSTOPped master accepts TCP connections
 * (the kernel does) but never answers, and must look dead.
 */
#include "router/control.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "router/admin.h"
#include "router/config.h"
#include "router/health.h"
#include "router/log.h"
#include "router/util.h"
#include "router/worker.h"
#include "shardmap/smap.h"

enum probe_step {
    PROBE_IDLE,
    PROBE_CONNECT,
    PROBE_VARS_QUERY,
    PROBE_VARS_STORE,
    PROBE_SLAVE_QUERY,
    PROBE_SLAVE_STORE,
};

/* The settings row; the order is control_vars_sql's. */
static const char control_vars_sql[] =
    "SELECT @@read_only, @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_master_wait_point,"
    " @@rpl_semi_sync_master_timeout, @@rpl_semi_sync_slave_enabled, @@sync_binlog,"
    " @@innodb_flush_log_at_trx_commit, @@relay_log_recovery, @@sync_relay_log,"
    " @@gtid_binlog_pos, @@gtid_slave_pos,"
    " (SELECT GROUP_CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS"
    "  WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_STATUS', 'RPL_SEMI_SYNC_MASTER_CLIENTS',"
    "  'RPL_SEMI_SYNC_MASTER_WAIT_SESSIONS', 'RPL_SEMI_SYNC_MASTER_YES_TX'))";
#define CONTROL_VARS_N 12

/* Whether a shard's master gets semi-sync acknowledgements, for the workers
 * (control_writes_refused()). One slot per shard name ever seen, appended
 * by the control thread and never moved or freed before control_stop(), so
 * a worker reads them without a lock. */
struct ackslot {
    char             shard[SMAP_NAME_MAX];
    _Atomic uint64_t lost_since_ms;     /* 0: acknowledged; else when the stall began */
};

struct target {
    struct control      *c;
    char                 shard[SMAP_NAME_MAX];
    bool                 is_master;
    struct smap_endpoint ep;
    bool                 in_map;        /* mark for the sweep after a map change */

    struct health        h;
    struct health_facts  facts;         /* from the last successful probe */
    bool                 has_facts;
    char                 error[200];    /* the last failure, for status */
    const char          *unsafe;        /* what health_*_unsafe() said last */
    struct health_acks   acks;          /* masters: do commits get acknowledged? */
    struct health_standbys sbs;         /* masters: the same from the standbys' probes */

    /* the probe in flight */
    enum probe_step      step;
    MYSQL               *m;
    MYSQL_RES           *res;
    struct health_facts  next;          /* filled while probing */
    struct event        *io;            /* the socket, re-assigned per wait */
    struct event        *deadline;
    bool                 io_added;
};

struct control {
    struct router       *r;
    struct admin        *admin;         /* the admin HTTP listener on this loop; may be NULL */
    bool                 health_on;     /* control_user configured */
    pthread_t            thread;
    struct event_base   *base;
    struct event        *tick;
    struct event        *stop;
    struct health_policy pol;
    unsigned             timeout_ms;

    pthread_mutex_t      lock;          /* guards the targets for control_status() */
    struct target      **t;
    unsigned             n_t;
    uint64_t             map_version;
    bool                 have_map;
    _Atomic uint64_t     generation;    /* bumped when any verdict or warning changes */

    unsigned             standby_lost_ms;   /* config; 0: writes are never refused */
    struct ackslot     **slots;         /* [SMAP_MAX_SHARDS]; written by the control thread */
    _Atomic unsigned     n_slots;       /* published after the slot is filled in */
    _Atomic unsigned     n_lost;        /* slots with lost_since_ms set: 0 is the fast path */
    bool                 slots_full_logged;
};

static void probe_advance(struct target *t, int status);

static const char *role_name(const struct target *t)
{
    return t->is_master ? "master" : "standby";
}

/* ---------------------------------------------------------------- facts */

static bool on_word(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "ON") == 0 || strcasecmp(v, "YES") == 0);
}

static unsigned num_of(const char *v)
{
    return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

static void copy_str(char *dst, size_t cap, const char *v)
{
    snprintf(dst, cap, "%s", v ? v : "");
}

/* The semi-sync counters, "NAME=VALUE,NAME=VALUE,..." (GROUP_CONCAT of
 * GLOBAL_STATUS; NULL when the server has none of them). */
static void read_semi_status(struct health_facts *f, const char *v)
{
    static const char *const names[4] = {
        "RPL_SEMI_SYNC_MASTER_STATUS", "RPL_SEMI_SYNC_MASTER_CLIENTS",
        "RPL_SEMI_SYNC_MASTER_WAIT_SESSIONS", "RPL_SEMI_SYNC_MASTER_YES_TX",
    };
    char val[4][32] = { { 0 } };
    unsigned seen = 0;

    while (v && *v) {
        const char *end = v + strcspn(v, ","), *eq = memchr(v, '=', (size_t)(end - v));

        for (unsigned k = 0; eq && k < 4; k++) {
            if ((size_t)(eq - v) != strlen(names[k]) ||
                strncasecmp(v, names[k], (size_t)(eq - v)) != 0)
                continue;
            snprintf(val[k], sizeof(val[k]), "%.*s", (int)(end - eq - 1), eq + 1);
            seen |= 1u << k;
        }
        v = *end ? end + 1 : end;
    }
    f->has_semi_status = seen == 15;
    f->semi_status_on = on_word(val[0]);
    f->semi_clients = num_of(val[1]);
    f->semi_waiting = num_of(val[2]);
    f->semi_yes_tx = strtoull(val[3], NULL, 10);
}

static int read_vars(struct target *t)
{
    MYSQL_ROW row = mysql_fetch_row(t->res);
    struct health_facts *f = &t->next;

    if (!row || mysql_num_fields(t->res) != CONTROL_VARS_N)
        return -1;
    f->read_only = on_word(row[0]);
    f->semi_master = on_word(row[1]);
    f->semi_after_sync = row[2] && strcasecmp(row[2], "AFTER_SYNC") == 0;
    f->semi_timeout_ms = row[3] ? strtoull(row[3], NULL, 10) : 0;
    f->semi_slave = on_word(row[4]);
    f->sync_binlog = num_of(row[5]);
    f->flush_at_commit = num_of(row[6]);
    f->relay_log_recovery = on_word(row[7]);
    f->sync_relay_log = num_of(row[8]);
    copy_str(f->gtid_binlog_pos, sizeof(f->gtid_binlog_pos), row[9]);
    copy_str(f->gtid_slave_pos, sizeof(f->gtid_slave_pos), row[10]);
    read_semi_status(f, row[11]);
    return 0;
}

static void read_slave_status(struct target *t)
{
    MYSQL_ROW row = mysql_fetch_row(t->res);
    MYSQL_FIELD *fl = mysql_fetch_fields(t->res);
    unsigned n = mysql_num_fields(t->res);
    struct health_facts *f = &t->next;

    const char *io_state = NULL;

    f->is_replica = row != NULL;
    f->lag_s = -1;
    if (!row)
        return;
    for (unsigned i = 0; i < n; i++) {
        const char *name = fl[i].name, *v = row[i];

        if (strcmp(name, "Slave_IO_State") == 0)
            io_state = v;
        else if (strcmp(name, "Slave_IO_Running") == 0)
            f->io_running = v && strcmp(v, "Yes") == 0;
        else if (strcmp(name, "Slave_SQL_Running") == 0)
            f->sql_running = v && strcmp(v, "Yes") == 0;
        else if (strcmp(name, "Seconds_Behind_Master") == 0)
            f->lag_s = v ? (int64_t)strtoll(v, NULL, 10) : -1;
        else if (strcmp(name, "Master_Host") == 0)
            copy_str(f->master_host, sizeof(f->master_host), v);
        else if (strcmp(name, "Master_Port") == 0)
            f->master_port = num_of(v);
        else if (strcmp(name, "Gtid_IO_Pos") == 0)
            copy_str(f->gtid_io_pos, sizeof(f->gtid_io_pos), v);
    }
    /* retrying a lost master: running, but it does not see it */
    f->io_running = f->io_running && health_io_connected(io_state);
}

/* ---------------------------------------------------------------- acks */

/* Publishes for the workers whether the master of <shard> gets semi-sync
 * acknowledgements: <lost_since_ms> 0 when it does, else when the stall
 * began. Control thread only (the one writer of the slots). */
static void ack_publish(struct control *c, const char *shard, uint64_t lost_since_ms)
{
    unsigned n = atomic_load_explicit(&c->n_slots, memory_order_relaxed);
    struct ackslot *sl = NULL;
    uint64_t was;

    for (unsigned i = 0; i < n && !sl; i++)
        if (strcmp(c->slots[i]->shard, shard) == 0)
            sl = c->slots[i];
    if (!sl) {
        if (!lost_since_ms)
            return;
        sl = n < SMAP_MAX_SHARDS ? calloc(1, sizeof(*sl)) : NULL;
        if (!sl) {
            if (!c->slots_full_logged)
                log_error("health: out of memory: writes to shard=%s are not refused while "
                          "its master has no standby", shard);
            c->slots_full_logged = true;
            return;
        }
        snprintf(sl->shard, sizeof(sl->shard), "%s", shard);
        c->slots[n] = sl;
        atomic_store_explicit(&c->n_slots, n + 1, memory_order_release);
    }
    was = atomic_exchange(&sl->lost_since_ms, lost_since_ms);
    if (!was && lost_since_ms)
        atomic_fetch_add(&c->n_lost, 1);
    else if (was && !lost_since_ms)
        atomic_fetch_sub(&c->n_lost, 1);
}

/* Whether writes to master <t>'s shard are refused: its own counters or
 * this router's probes of its standbys say no acknowledgement can come. */
static bool ack_refusing(const struct target *t)
{
    return t->acks.lost || t->sbs.lost;
}

/* The stall of <t>'s acknowledgements began at this time, or 0 when they
 * flow. */
static uint64_t ack_lost_since(const struct target *t)
{
    uint64_t since = UINT64_MAX;

    if (t->acks.lost)
        since = t->acks.since_ms;
    if (t->sbs.lost && t->sbs.since_ms < since)
        since = t->sbs.since_ms;
    return since == UINT64_MAX ? 0 : since ? since : 1;
}

/* After a map change: every shard's slot follows its current master. */
static void ack_sync(struct control *c)
{
    unsigned n = atomic_load_explicit(&c->n_slots, memory_order_relaxed);

    for (unsigned i = 0; i < n; i++) {
        uint64_t since = 0;

        for (unsigned k = 0; k < c->n_t && !since; k++)
            if (c->t[k]->is_master && strcmp(c->t[k]->shard, c->slots[i]->shard) == 0)
                since = ack_lost_since(c->t[k]);
        ack_publish(c, c->slots[i]->shard, since);
    }
}

/* The master target of <shard>, or NULL. */
static struct target *master_of(struct control *c, const char *shard)
{
    for (unsigned i = 0; i < c->n_t; i++)
        if (c->t[i]->is_master && strcmp(c->t[i]->shard, shard) == 0)
            return c->t[i];
    return NULL;
}

/* Feeds this router's probes of <m>'s standbys to its health_standbys
 * (under the lock). A master that does not answer is failover's business. */
static void standbys_observe(struct control *c, struct target *m, uint64_t now)
{
    unsigned n = 0, serving = 0;

    for (unsigned i = 0; i < c->n_t; i++) {
        const struct target *t = c->t[i];

        if (t->is_master || strcmp(t->shard, m->shard) != 0)
            continue;
        n++;
        if (health_standby_serving(&t->h, &t->facts, t->has_facts, m->ep.port,
                                   c->pol.down_after_fails))
            serving++;
    }
    health_standbys_observe(&m->sbs, m->h.verdict == HEALTH_UP && m->has_facts ? &m->facts
                                                                            : NULL,
                            n, serving, c->standby_lost_ms, now);
}

/* Feeds <t>'s probe result to its shard's acknowledgement state (under the
 * lock); returns the shard's master target when the state the workers read
 * must change, else NULL. */
static struct target *ack_observe(struct target *t, enum health_probe result,
                                  enum health_verdict after, uint64_t now)
{
    struct target *m = t->is_master ? t : master_of(t->c, t->shard);
    bool was;

    if (!m || !t->c->standby_lost_ms)
        return NULL;
    was = ack_refusing(m);
    if (t->is_master && result == HEALTH_PROBE_OK)
        health_acks_observe(&t->acks, &t->facts, t->c->standby_lost_ms, now);
    else if (t->is_master && after == HEALTH_DOWN)
        memset(&t->acks, 0, sizeof(t->acks));   /* a dead master: failover's business */
    standbys_observe(t->c, m, now);
    return was != ack_refusing(m) ? m : NULL;
}

/* Logs and publishes a change of master <t>'s acknowledgement state. */
static void ack_changed(struct target *t)
{
    uint64_t since = ack_lost_since(t);
    char addr[SMAP_ENDPOINT_STR_MAX];

    smap_format_endpoint(&t->ep, addr, sizeof(addr));
    ack_publish(t->c, t->shard, since);
    if (since)
        log_warn("health: writes refused shard=%s master=%s reason=\"%s for %" PRIu64
                 " ms\" standbys_connected=%u commits_waiting=%u (docs/failover.md)", t->shard,
                 addr, t->acks.lost ? "no semi-sync standby acknowledged a commit"
                                    : "no standby answers this router's probes replicating "
                                      "from the master, and no commit was acknowledged",
                 now_ms() - since, t->facts.semi_clients, t->facts.semi_waiting);
    else
        log_info("health: writes accepted again shard=%s master=%s standbys_connected=%u",
                 t->shard, addr, t->has_facts ? t->facts.semi_clients : 0);
}

/* ---------------------------------------------------------------- probes */

static void probe_close(struct target *t)
{
    if (t->io_added) {
        event_del(t->io);
        t->io_added = false;
    }
    evtimer_del(t->deadline);
    if (t->res) {
        mysql_free_result(t->res);
        t->res = NULL;
    }
    if (t->m) {
        int fd = (int)mysql_get_socket(t->m);

        /* A hung server must not make the COM_QUIT write wait. */
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
        mysql_close(t->m);
        t->m = NULL;
    }
    t->step = PROBE_IDLE;
}

/* Ends the probe of <t> with <result>; <why> describes a failure. */
static void probe_done(struct target *t, enum health_probe result, const char *why)
{
    struct control *c = t->c;
    uint64_t now = now_ms();
    enum health_verdict before = t->h.verdict, after;
    const char *unsafe = NULL;
    bool replication_changed = false;
    struct target *acks_changed;
    char addr[SMAP_ENDPOINT_STR_MAX];

    probe_close(t);
    smap_format_endpoint(&t->ep, addr, sizeof(addr));
    pthread_mutex_lock(&c->lock);
    after = health_observe(&t->h, &c->pol, result, now);
    if (result == HEALTH_PROBE_OK) {
        /* What failover detection reads of a standby (detect.c: is it still
         * replicating from the master?) goes out at once, not with the
         * next 5 s refresh of the registration: a stale io=1 vetoed the
         * failover of a killed master for up to 5 s. */
        if (t->has_facts && (t->facts.is_replica != t->next.is_replica ||
                             t->facts.io_running != t->next.io_running ||
                             t->facts.master_port != t->next.master_port ||
                             t->facts.semi_clients != t->next.semi_clients ||
                             strcmp(t->facts.master_host, t->next.master_host) != 0))
            replication_changed = true;
        t->facts = t->next;
        t->has_facts = true;
        t->error[0] = 0;
        unsafe = t->is_master ? health_master_unsafe(&t->facts)
                              : health_standby_unsafe(&t->facts);
    } else {
        /* One line of key=value words in the registration: no quotes or
         * control bytes from a server's message. */
        snprintf(t->error, sizeof(t->error), "%s", why ? why : "");
        for (char *e = t->error; *e; e++)
            if (*e == '"' || (unsigned char)*e < 0x20)
                *e = '\'';
        unsafe = t->unsafe;          /* unknown now: keep the last word */
    }
    acks_changed = ack_observe(t, result, after, now);
    pthread_mutex_unlock(&c->lock);
    if (acks_changed)
        ack_changed(acks_changed);
    if (before != after || unsafe != t->unsafe || replication_changed || acks_changed)
        c->generation++;
    if (before != after) {
        if (after == HEALTH_DOWN || (after == HEALTH_SUSPECT && before == HEALTH_UP))
            log_warn("health: server %s shard=%s role=%s server=%s was=%s fails=%u error=\"%s\"",
                     health_verdict_name(after), t->shard, role_name(t), addr,
                     health_verdict_name(before), t->h.fails, t->error);
        else
            log_info("health: server %s shard=%s role=%s server=%s was=%s",
                     health_verdict_name(after), t->shard, role_name(t), addr,
                     health_verdict_name(before));
    }
    if (result == HEALTH_PROBE_OK && unsafe != t->unsafe) {
        if (unsafe)
            log_warn("health: %s is not in the lossless replication setup shard=%s server=%s "
                     "problem=\"%s\" (docs/failover.md)", role_name(t), t->shard, addr, unsafe);
        else if (t->unsafe)
            log_info("health: %s setup is lossless again shard=%s server=%s", role_name(t),
                     t->shard, addr);
        pthread_mutex_lock(&c->lock);
        t->unsafe = unsafe;
        pthread_mutex_unlock(&c->lock);
    }
}

/* A failed library call: server errors (< 2000) mean the server is alive. */
static void probe_failed_call(struct target *t, const char *what)
{
    unsigned e = mysql_errno(t->m);
    char why[sizeof(t->error)];

    snprintf(why, sizeof(why), "%s: %s (%u)", what, mysql_error(t->m), e);
    probe_done(t, e > 0 && e < 2000 ? HEALTH_PROBE_REFUSED : HEALTH_PROBE_FAILED, why);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct target *t = arg;
    int status = 0;

    (void)fd;
    t->io_added = false;
    if (what & EV_READ)
        status |= MYSQL_WAIT_READ;
    if (what & EV_WRITE)
        status |= MYSQL_WAIT_WRITE;
    if (what & EV_TIMEOUT)
        status |= MYSQL_WAIT_TIMEOUT;
    probe_advance(t, status);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct target *t = arg;
    char why[96];

    (void)fd;
    (void)what;
    snprintf(why, sizeof(why), "no answer within %u ms", t->c->timeout_ms);
    probe_done(t, HEALTH_PROBE_FAILED, why);
}

/* Waits for what <status> (MYSQL_WAIT_*) asks, then continues the step. */
static void probe_wait(struct target *t, int status)
{
    short ev = 0;
    struct timeval tv, *tvp = NULL;
    int fd = (int)mysql_get_socket(t->m);

    if (status & MYSQL_WAIT_READ)
        ev |= EV_READ;
    if (status & MYSQL_WAIT_WRITE)
        ev |= EV_WRITE;
    if (status & MYSQL_WAIT_TIMEOUT) {
        unsigned ms = mysql_get_timeout_value_ms(t->m);

        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        tvp = &tv;
    }
    if (event_assign(t->io, t->c->base, ev ? fd : -1, ev, on_io, t) < 0 ||
        event_add(t->io, tvp) < 0) {
        probe_done(t, HEALTH_PROBE_FAILED, "cannot wait for the server (libevent)");
        return;
    }
    t->io_added = true;
}

/* Runs the current step's _start (<status> 0) or _cont; on completion moves
 * to the next step, until the probe is done or must wait. */
static void probe_advance(struct target *t, int status)
{
    const struct config *cfg = t->c->r->cfg;
    MYSQL *ret_m = NULL;
    int ret = 0;

    for (;;) {
        bool cont = status != 0;

        switch (t->step) {
        case PROBE_IDLE:
            return;
        case PROBE_CONNECT:
            status = cont ? mysql_real_connect_cont(&ret_m, t->m, status)
                          : mysql_real_connect_start(&ret_m, t->m, t->ep.host, cfg->control_user,
                                                     cfg->control_password, NULL, t->ep.port,
                                                     NULL, 0);
            if (status)
                break;
            if (!ret_m) {
                probe_failed_call(t, "connect");
                return;
            }
            t->step = PROBE_VARS_QUERY;
            continue;
        case PROBE_VARS_QUERY:
            status = cont ? mysql_real_query_cont(&ret, t->m, status)
                          : mysql_real_query_start(&ret, t->m, control_vars_sql,
                                                   sizeof(control_vars_sql) - 1);
            if (status)
                break;
            if (ret) {
                probe_failed_call(t, "settings query");
                return;
            }
            t->step = PROBE_VARS_STORE;
            continue;
        case PROBE_VARS_STORE:
            status = cont ? mysql_store_result_cont(&t->res, t->m, status)
                          : mysql_store_result_start(&t->res, t->m);
            if (status)
                break;
            if (!t->res || read_vars(t) < 0) {
                probe_failed_call(t, "settings row");
                return;
            }
            mysql_free_result(t->res);
            t->res = NULL;
            t->step = PROBE_SLAVE_QUERY;
            continue;
        case PROBE_SLAVE_QUERY:
            status = cont ? mysql_real_query_cont(&ret, t->m, status)
                          : mysql_real_query_start(&ret, t->m, "SHOW SLAVE STATUS", 17);
            if (status)
                break;
            if (ret) {
                probe_failed_call(t, "SHOW SLAVE STATUS");
                return;
            }
            t->step = PROBE_SLAVE_STORE;
            continue;
        case PROBE_SLAVE_STORE:
            status = cont ? mysql_store_result_cont(&t->res, t->m, status)
                          : mysql_store_result_start(&t->res, t->m);
            if (status)
                break;
            if (!t->res) {
                probe_failed_call(t, "SHOW SLAVE STATUS result");
                return;
            }
            read_slave_status(t);
            probe_done(t, HEALTH_PROBE_OK, NULL);
            return;
        }
        probe_wait(t, status);
        return;
    }
}

static void probe_start(struct target *t)
{
    const struct control *c = t->c;
    unsigned secs = (c->timeout_ms + 999) / 1000;
    struct timeval tv = { c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000 };
    my_bool off = 0;

    memset(&t->next, 0, sizeof(t->next));
    t->m = mysql_init(NULL);
    if (!t->m) {
        probe_done(t, HEALTH_PROBE_FAILED, "out of memory");
        return;
    }
    /* Our deadline is the real bound; the library's own timeouts only
     * back it up (they are whole seconds). */
    mysql_options(t->m, MYSQL_OPT_NONBLOCK, 0);
    mysql_options(t->m, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
    mysql_options(t->m, MYSQL_OPT_READ_TIMEOUT, &secs);
    mysql_options(t->m, MYSQL_OPT_WRITE_TIMEOUT, &secs);
    mysql_options(t->m, MYSQL_REPORT_DATA_TRUNCATION, &off);
    t->step = PROBE_CONNECT;
    evtimer_add(t->deadline, &tv);
    probe_advance(t, 0);
}

/* ---------------------------------------------------------------- targets */

static void target_free(struct target *t)
{
    if (!t)
        return;
    probe_close(t);
    if (t->io)
        event_free(t->io);
    if (t->deadline)
        event_free(t->deadline);
    free(t);
}

static struct target *find_target(struct control *c, const char *shard, bool is_master,
                                  const struct smap_endpoint *ep)
{
    for (unsigned i = 0; i < c->n_t; i++) {
        struct target *t = c->t[i];

        if (t->is_master == is_master && strcmp(t->shard, shard) == 0 &&
            smap_endpoint_eq(&t->ep, ep))
            return t;
    }
    return NULL;
}

static int add_target(struct control *c, const char *shard, bool is_master,
                      const struct smap_endpoint *ep)
{
    struct target *t = find_target(c, shard, is_master, ep), **nt;

    if (t) {
        t->in_map = true;
        return 0;
    }
    t = calloc(1, sizeof(*t));
    nt = realloc(c->t, (c->n_t + 1) * sizeof(*c->t));
    if (!t || !nt) {
        free(t);
        if (nt)
            c->t = nt;
        return -1;
    }
    c->t = nt;
    t->c = c;
    snprintf(t->shard, sizeof(t->shard), "%s", shard);
    t->is_master = is_master;
    t->ep = *ep;
    t->in_map = true;
    t->io = event_new(c->base, -1, 0, on_io, t);
    t->deadline = evtimer_new(c->base, on_deadline, t);
    if (!t->io || !t->deadline) {
        target_free(t);
        return -1;
    }
    c->t[c->n_t++] = t;
    return 0;
}

/* Brings the targets in line with the router's current map: new servers
 * are added (unknown until probed), servers gone from it are dropped. */
static void sync_targets(struct control *c)
{
    struct router *r = c->r;
    struct smap *m;
    unsigned keep = 0;

    pthread_mutex_lock(&r->map_lock);
    m = r->map ? smap_ref(r->map) : NULL;
    pthread_mutex_unlock(&r->map_lock);
    if (!m)
        return;
    if (c->have_map && smap_version(m) == c->map_version) {
        smap_unref(m);
        return;
    }
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->n_t; i++)
        c->t[i]->in_map = false;
    for (unsigned i = 0; i < smap_n_shards(m); i++) {
        const struct smap_shard *s = smap_shard(m, i);
        int rc = add_target(c, s->name, true, &s->master);

        for (unsigned k = 0; k < s->n_standbys && rc == 0; k++)
            rc = add_target(c, s->name, false, &s->standbys[k]);
        if (rc < 0)
            log_warn("health: out of memory adding the servers of shard=%s", s->name);
    }
    for (unsigned i = 0; i < c->n_t; i++) {
        if (c->t[i]->in_map)
            c->t[keep++] = c->t[i];
        else
            target_free(c->t[i]);
    }
    c->n_t = keep;
    ack_sync(c);
    c->map_version = smap_version(m);
    c->have_map = true;
    c->generation++;
    pthread_mutex_unlock(&c->lock);
    smap_unref(m);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;

    (void)fd;
    (void)what;
    sync_targets(c);
    for (unsigned i = 0; i < c->n_t; i++)
        if (c->t[i]->step == PROBE_IDLE)
            probe_start(c->t[i]);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;

    (void)fd;
    (void)what;
    event_base_loopbreak(c->base);
}

static void *control_main(void *arg)
{
    struct control *c = arg;

    mysql_thread_init();
    if (c->health_on)
        on_tick(-1, 0, c);
    event_base_dispatch(c->base);
    for (unsigned i = 0; i < c->n_t; i++)
        probe_close(c->t[i]);
    mysql_thread_end();
    return NULL;
}

struct control *control_start(struct router *r, char **errp)
{
    const struct config *cfg = r->cfg;
    struct control *c;
    unsigned ms = cfg->health_interval_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    *errp = NULL;
    if (!cfg->control_user && !cfg->admin_listen)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c) {
        *errp = strdup("out of memory");
        return NULL;
    }
    c->r = r;
    c->health_on = cfg->control_user != NULL;
    c->pol.down_after_fails = cfg->health_down_after_fails;
    c->pol.down_after_ms = cfg->health_down_after_ms;
    c->timeout_ms = cfg->health_timeout_ms;
    c->standby_lost_ms = c->health_on ? cfg->standby_lost_ms : 0;
    if (c->standby_lost_ms)
        c->slots = calloc(SMAP_MAX_SHARDS, sizeof(*c->slots));
    pthread_mutex_init(&c->lock, NULL);
    c->base = event_base_new();
    c->tick = c->base ? event_new(c->base, -1, EV_PERSIST, on_tick, c) : NULL;
    c->stop = c->base ? event_new(c->base, -1, 0, on_stop, c) : NULL;
    if (!c->tick || !c->stop || (c->standby_lost_ms && !c->slots) ||
        (c->health_on && event_add(c->tick, &tv) < 0)) {
        *errp = strdup("health checks: cannot set up the control thread's event base");
        control_stop(c);
        return NULL;
    }
    c->admin = admin_start(r, c->base, errp);
    if (!c->admin && *errp) {
        control_stop(c);
        return NULL;
    }
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        *errp = util_fmt("health checks: cannot start the control thread: %s", strerror(errno));
        control_stop(c);
        return NULL;
    }
    return c;
}

void control_stop(struct control *c)
{
    if (!c)
        return;
    if (c->thread) {
        event_active(c->stop, 0, 0);
        pthread_join(c->thread, NULL);
    }
    for (unsigned i = 0; i < c->n_t; i++)
        target_free(c->t[i]);
    free(c->t);
    for (unsigned i = 0; i < c->n_slots; i++)
        free(c->slots[i]);
    free(c->slots);
    admin_free(c->admin);
    if (c->tick)
        event_free(c->tick);
    if (c->stop)
        event_free(c->stop);
    if (c->base)
        event_base_free(c->base);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool control_health_on(const struct control *c)
{
    return c->health_on;
}

bool control_writes_refused(struct control *c, const char *shard, uint64_t *stalled_ms)
{
    unsigned n;

    if (!c || atomic_load_explicit(&c->n_lost, memory_order_relaxed) == 0)
        return false;
    n = atomic_load_explicit(&c->n_slots, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        const struct ackslot *sl = c->slots[i];
        uint64_t since;

        if (strcmp(sl->shard, shard) != 0)
            continue;
        since = atomic_load_explicit(&sl->lost_since_ms, memory_order_relaxed);
        if (!since)
            return false;
        *stalled_ms = now_ms() - since;
        return true;
    }
    return false;
}

void control_foreach(struct control *c, control_server_fn *fn, void *arg)
{
    uint64_t now = now_ms();

    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->n_t; i++) {
        const struct target *t = c->t[i];
        struct control_server v;

        memset(&v, 0, sizeof(v));
        v.shard = t->shard;
        v.role = role_name(t);
        smap_format_endpoint(&t->ep, v.server, sizeof(v.server));
        v.verdict = t->h.verdict;
        v.for_ms = t->h.verdict == HEALTH_UNKNOWN ? 0 : now - t->h.since_ms;
        v.unhealthy = t->h.unhealthy;
        v.has_facts = t->has_facts;
        v.safe = t->has_facts && !t->unsafe;
        v.is_replica = t->has_facts && t->facts.is_replica;
        v.io_running = t->facts.io_running;
        v.sql_running = t->facts.sql_running;
        v.lag_s = t->facts.lag_s;
        v.error = t->error[0] ? t->error : NULL;
        v.unsafe = t->unsafe;
        v.has_acks = t->is_master && t->has_facts && t->facts.has_semi_status &&
                     t->facts.semi_master;
        v.semi_clients = t->facts.semi_clients;
        v.semi_waiting = t->facts.semi_waiting;
        v.writes_refused = ack_refusing(t);
        v.stalled_ms = v.writes_refused ? now - ack_lost_since(t) : 0;
        fn(&v, arg);
    }
    pthread_mutex_unlock(&c->lock);
}

uint64_t control_generation(struct control *c)
{
    return c->generation;
}

size_t control_status(struct control *c, char *buf, size_t cap, const char *prefix)
{
    size_t n = 0;

    if (cap)
        buf[0] = 0;
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->n_t; i++) {
        const struct target *t = c->t[i];
        char addr[SMAP_ENDPOINT_STR_MAX], line[1024];
        int l;

        smap_format_endpoint(&t->ep, addr, sizeof(addr));
        l = snprintf(line, sizeof(line),
                     "%sshard=%s role=%s server=%s verdict=%s for_ms=%" PRIu64 " fails=%u"
                     " unhealthy=%d safe=%d", prefix, t->shard, role_name(t), addr,
                     health_verdict_name(t->h.verdict),
                     t->h.verdict == HEALTH_UNKNOWN ? 0 : now_ms() - t->h.since_ms, t->h.fails,
                     t->h.unhealthy, t->has_facts && !t->unsafe);
        if (l > 0 && t->has_facts && t->facts.is_replica)
            l += snprintf(line + l, sizeof(line) - (size_t)l,
                          " lag_s=%" PRId64 " io=%d sql=%d source=%s:%u gtid_io_pos=%s",
                          t->facts.lag_s, t->facts.io_running, t->facts.sql_running,
                          t->facts.master_host[0] ? t->facts.master_host : "-",
                          t->facts.master_port,
                          t->facts.gtid_io_pos[0] ? t->facts.gtid_io_pos : "-");
        if (l > 0 && t->is_master && t->has_facts && t->facts.has_semi_status &&
            t->facts.semi_master && (size_t)l < sizeof(line))
            l += snprintf(line + l, sizeof(line) - (size_t)l, " semi_clients=%u",
                          t->facts.semi_clients);
        if (l > 0 && ack_refusing(t) && (size_t)l < sizeof(line))
            l += snprintf(line + l, sizeof(line) - (size_t)l,
                          " writes_refused=no_standby stalled_ms=%" PRIu64,
                          now_ms() - ack_lost_since(t));
        if (l > 0 && t->error[0] && (size_t)l < sizeof(line))
            l += snprintf(line + l, sizeof(line) - (size_t)l, " error=\"%s\"", t->error);
        if (l > 0 && t->unsafe && (size_t)l < sizeof(line))
            l += snprintf(line + l, sizeof(line) - (size_t)l, " unsafe=\"%s\"", t->unsafe);
        if (l < 0)
            continue;
        if ((size_t)l >= sizeof(line))
            l = sizeof(line) - 1;
        if (n + (size_t)l + 1 < cap) {
            memcpy(buf + n, line, (size_t)l);
            buf[n + (size_t)l] = '\n';
            buf[n + (size_t)l + 1] = 0;
        }
        n += (size_t)l + 1;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}
