/*
 * router/promote.c - master replacement (see promote.h for the phases and
 * why each step is where it is; ../shared/FIELD-NOTES.md for the MariaDB
 * facts they rest on).
 */
#include "router/promote.h"

#include <mysql.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/util.h"


static void say(struct promote *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct promote *p, const char *fmt, ...)
{
    char line[600];
    va_list ap;

    if (!p->o.progress)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    p->o.progress(p->o.progress_arg, line);
}

static const char *addr_of(const struct promote_server *s, char *buf, size_t cap)
{
    smap_format_endpoint(&s->ep, buf, cap);
    return buf;
}

/* Connects <s> with the control account; on failure s->m stays NULL and
 * s->err says why. */
static void server_connect(struct promote *p, struct promote_server *s)
{
    unsigned secs = (p->o.timeout_ms + 999) / 1000;
    MYSQL *m = mysql_init(NULL);

    if (!m) {
        snprintf(s->err, sizeof(s->err), "out of memory");
        return;
    }
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &secs);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &secs);
    if (!mysql_real_connect(m, s->ep.host, p->o.user, p->o.password, NULL, s->ep.port, NULL,
                            0)) {
        snprintf(s->err, sizeof(s->err), "%s (%u)", mysql_error(m), mysql_errno(m));
        mysql_close(m);
        return;
    }
    s->m = m;
}

/* Whether the runner may still change servers (promote_opts.may_act): asked
 * before every such statement, so that one which was paused (SIGSTOP, a VM
 * freeze) and was replaced meanwhile stops at its next statement instead of
 * undoing its successor's work. Once false, false for good. */
static bool may_act(struct promote *p)
{
    if (!p->stood_down && p->o.may_act && !p->o.may_act(p->o.may_act_arg)) {
        p->stood_down = true;
        say(p, "stood down: another runner owns shard %s now; changing nothing more",
            p->shard);
    }
    return !p->stood_down;
}

/* Runs <sql>, which changes <s>, if may_act(). Returns 0, or -1 with s->err
 * set. */
static int run(struct promote *p, struct promote_server *s, const char *sql)
{
    MYSQL_RES *res;

    if (!s->m) {
        snprintf(s->err, sizeof(s->err), "not connected");
        return -1;
    }
    if (!may_act(p)) {
        snprintf(s->err, sizeof(s->err), "%.80s: not sent: stood down (another runner owns "
                 "the shard now)", sql);
        return -1;
    }
    if (mysql_query(s->m, sql) != 0) {
        /* the statement's head is enough to tell which one failed */
        snprintf(s->err, sizeof(s->err), "%.80s: %.150s (%u)", sql, mysql_error(s->m),
                 mysql_errno(s->m));
        return -1;
    }
    res = mysql_store_result(s->m);
    if (res)
        mysql_free_result(res);
    return 0;
}

/* Runs <sql> returning one row; copies its column <col> (NULL as "") into
 * <out>. Returns 0, 1 when there is no row, or -1 with s->err set. */
static int run_value(struct promote_server *s, const char *sql, const char *col, char *out,
                     size_t cap)
{
    MYSQL_RES *res;
    MYSQL_ROW row;
    MYSQL_FIELD *f;
    unsigned n;
    int rc = 1;

    out[0] = 0;
    if (!s->m) {
        snprintf(s->err, sizeof(s->err), "not connected");
        return -1;
    }
    if (mysql_query(s->m, sql) != 0 || !(res = mysql_store_result(s->m))) {
        /* the statement's head is enough to tell which one failed */
        snprintf(s->err, sizeof(s->err), "%.80s: %.150s (%u)", sql, mysql_error(s->m),
                 mysql_errno(s->m));
        return -1;
    }
    row = mysql_fetch_row(res);
    f = mysql_fetch_fields(res);
    n = mysql_num_fields(res);
    if (row) {
        rc = -1;
        for (unsigned i = 0; i < n; i++) {
            if (!col || strcmp(f[i].name, col) == 0) {
                snprintf(out, cap, "%s", row[i] ? row[i] : "");
                rc = 0;
                break;
            }
        }
        if (rc < 0)
            snprintf(s->err, sizeof(s->err), "%.120s: no column %s", sql, col ? col : "(first)");
    }
    mysql_free_result(res);
    return rc;
}

/* The old master, if it answers: read-only, and its client connections
 * cut, so nothing it still holds can be acknowledged to a client. With
 * every standby's IO thread stopped a commit there could not complete
 * anyway (semi-sync without fallback): this is the second layer. */
static void fence_master(struct promote *p)
{
    struct promote_server *ms = &p->master;
    MYSQL_RES *res;
    MYSQL_ROW row;
    char a[SMAP_ENDPOINT_STR_MAX], sql[64];
    unsigned killed = 0;

    if (!ms->m)
        return;
    addr_of(ms, a, sizeof(a));
    if (run(p, ms, "SET GLOBAL read_only = 1") == 0) {
        p->fenced = true;
        say(p, "fence: old master %s is read-only", a);
    } else {
        /* It blocks while a commit waits for an acknowledgement: the
         * semi-sync layer holds it then. */
        say(p, "fence: old master %s: read_only not set (%s); semi-sync keeps it from "
               "committing", a, ms->err);
    }
    if (!may_act(p))
        return;
    if (mysql_query(ms->m, "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> "
                           "CONNECTION_ID() AND COMMAND NOT IN ('Binlog Dump', 'Daemon') "
                           "AND USER NOT IN ('system user', 'event_scheduler')") != 0 ||
        !(res = mysql_store_result(ms->m))) {
        say(p, "fence: old master %s: cannot list connections: %s", a, mysql_error(ms->m));
        return;
    }
    while ((row = mysql_fetch_row(res)) != NULL) {
        if (!row[0])
            continue;
        snprintf(sql, sizeof(sql), "KILL CONNECTION %s", row[0]);
        if (mysql_query(ms->m, sql) == 0)
            killed++;
    }
    mysql_free_result(res);
    say(p, "fence: old master %s: %u client connections killed", a, killed);
}

static int read_received(struct promote *p, struct promote_server *s, char **errp)
{
    char a[SMAP_ENDPOINT_STR_MAX];

    addr_of(s, a, sizeof(a));
    if (run_value(s, "SHOW SLAVE STATUS", "Gtid_IO_Pos", s->received_text,
                  sizeof(s->received_text)) != 0) {
        *errp = util_fmt("standby %s: cannot read its replication position: %s", a,
                        s->err[0] ? s->err : "it is not a replica");
        return -1;
    }
    if (gtid_parse(s->received_text, strlen(s->received_text), &s->received) < 0) {
        *errp = util_fmt("standby %s: unreadable Gtid_IO_Pos '%s'", a, s->received_text);
        return -1;
    }
    (void)p;
    return 0;
}

/* The candidate must hold every transaction any standby received: each
 * acknowledged transaction is in at least one standby's relay log. */
static int choose(struct promote *p, char **errp)
{
    char a[SMAP_ENDPOINT_STR_MAX], b[SMAP_ENDPOINT_STR_MAX];

    p->candidate = -1;
    for (unsigned i = 0; i < p->n_standbys; i++) {
        bool all = true;

        if (p->o.to && !smap_endpoint_eq(p->o.to, &p->standbys[i].ep))
            continue;
        for (unsigned j = 0; j < p->n_standbys && all; j++)
            all = gtid_covers(&p->standbys[i].received, &p->standbys[j].received);
        if (all) {
            p->candidate = (int)i;
            break;
        }
    }
    if (p->candidate >= 0)
        return 0;
    if (p->o.to) {
        for (unsigned i = 0; i < p->n_standbys; i++)
            if (smap_endpoint_eq(p->o.to, &p->standbys[i].ep))
                for (unsigned j = 0; j < p->n_standbys; j++)
                    if (!gtid_covers(&p->standbys[i].received, &p->standbys[j].received)) {
                        *errp = util_fmt("%s lacks transactions that %s received (%s vs %s): "
                                        "promoting it could lose acknowledged writes",
                                        addr_of(&p->standbys[i], a, sizeof(a)),
                                        addr_of(&p->standbys[j], b, sizeof(b)),
                                        p->standbys[i].received_text,
                                        p->standbys[j].received_text);
                        return -1;
                    }
        smap_format_endpoint(p->o.to, a, sizeof(a));
        *errp = util_fmt("%s is not a standby of shard %s", a, p->shard);
        return -1;
    }
    *errp = util_fmt("no standby of shard %s holds every transaction the others received "
                    "(diverged histories): not promoting", p->shard);
    return -1;
}

/* Lets the candidate apply everything it received. Only the SQL thread is
 * (re)started: starting the IO thread would purge the relay log, and with it
 * acknowledged transactions the dead master cannot send again. */
static int wait_applied(struct promote *p, struct promote_server *s, char **errp)
{
    char a[SMAP_ENDPOINT_STR_MAX], sql[700], v[64];
    uint64_t deadline = now_ms() + p->o.apply_timeout_ms;

    addr_of(s, a, sizeof(a));
    if (run(p, s, "START SLAVE SQL_THREAD") < 0) {
        *errp = util_fmt("candidate %s: %s", a, s->err);
        return -1;
    }
    if (s->received.n == 0)
        return 0;
    /* In steps of 1 s so that no statement outlives the read timeout. */
    snprintf(sql, sizeof(sql), "SELECT MASTER_GTID_WAIT('%s', 1)", s->received_text);
    for (;;) {
        if (run_value(s, sql, NULL, v, sizeof(v)) != 0) {
            *errp = util_fmt("candidate %s: %s", a, s->err);
            return -1;
        }
        if (strcmp(v, "0") == 0)
            return 0;
        if (now_ms() >= deadline) {
            *errp = util_fmt("candidate %s has not applied its relay log (up to %s) within "
                            "%u ms; its SQL thread may be stuck (SHOW SLAVE STATUS)", a,
                            s->received_text, p->o.apply_timeout_ms);
            return -1;
        }
    }
}

/* <p> for shard <s>: its master and standbys, not connected yet. */
static void promote_init(struct promote *p, const struct smap_shard *s,
                         const struct promote_opts *o)
{
    memset(p, 0, sizeof(*p));
    p->o = *o;
    p->candidate = -1;
    snprintf(p->shard, sizeof(p->shard), "%s", s->name);
    p->master.ep = s->master;
    p->n_standbys = s->n_standbys;
    for (unsigned i = 0; i < s->n_standbys; i++)
        p->standbys[i].ep = s->standbys[i];
}

int promote_prepare(struct promote *p, const struct smap_shard *s, const struct promote_opts *o,
                    char **errp)
{
    char a[SMAP_ENDPOINT_STR_MAX], msid[32];
    struct promote_server *c;

    promote_init(p, s, o);
    *errp = NULL;
    if (p->n_standbys == 0) {
        *errp = util_fmt("shard %s has no standby to promote", p->shard);
        return -1;
    }
    if (o->to) {
        bool found = false;

        for (unsigned i = 0; i < p->n_standbys; i++)
            found = found || smap_endpoint_eq(o->to, &p->standbys[i].ep);
        if (!found) {
            smap_format_endpoint(o->to, a, sizeof(a));
            *errp = util_fmt("%s is not a standby of shard %s", a, p->shard);
            return -1;
        }
    }
    server_connect(p, &p->master);
    addr_of(&p->master, a, sizeof(a));
    if (p->master.m && !o->force) {
        *errp = util_fmt("the master %s of shard %s answers: refusing to fail over a live "
                        "master (use switchover, or --force to fence it)", a, p->shard);
        return -1;
    }
    say(p, "check: master %s %s", a, p->master.m ? "answers (forced: it will be fenced)"
                                                : "does not answer");
    /* Every standby must answer: one that does not may hold acknowledged
     * transactions the others lack, and promoting without it could lose
     * them. */
    for (unsigned i = 0; i < p->n_standbys; i++) {
        server_connect(p, &p->standbys[i]);
        if (!p->standbys[i].m) {
            *errp = util_fmt("standby %s of shard %s does not answer (%s): it may hold "
                            "acknowledged transactions the others lack, so no standby can be "
                            "proven safe to promote", addr_of(&p->standbys[i], a, sizeof(a)),
                            p->shard, p->standbys[i].err);
            return -1;
        }
        /* MariaDB empties a GTID replica's relay log when it starts,
         * whatever relay_log_recovery says: restarted and not connected
         * since (no Master_Server_Id yet), it holds what it applied, not
         * all it acknowledged (docs/failover.md "A master and standbys
         * crashing together"). */
        if (run_value(&p->standbys[i], "SHOW SLAVE STATUS", "Master_Server_Id", msid,
                      sizeof(msid)) == 0 && strcmp(msid, "0") == 0) {
            *errp = util_fmt("standby %s of shard %s restarted and has not reached its master "
                            "since: its relay log (what it acknowledged) was emptied at "
                            "startup, so no standby can be proven to hold every acknowledged "
                            "transaction; start the old master",
                            addr_of(&p->standbys[i], a, sizeof(a)), p->shard);
            return -1;
        }
    }
    for (unsigned i = 0; i < p->n_standbys; i++) {
        if (run(p, &p->standbys[i], "STOP SLAVE IO_THREAD") < 0) {
            *errp = util_fmt("standby %s: %s", addr_of(&p->standbys[i], a, sizeof(a)),
                            p->standbys[i].err);
            promote_abort(p);
            return -1;
        }
        p->io_stopped = true;
    }
    say(p, "stop: replication IO threads stopped on %u standby(s); the old master can get "
           "no more acknowledgements", p->n_standbys);
    fence_master(p);
    for (unsigned i = 0; i < p->n_standbys; i++) {
        if (read_received(p, &p->standbys[i], errp) < 0) {
            promote_abort(p);
            return -1;
        }
        say(p, "position: standby %s received %s", addr_of(&p->standbys[i], a, sizeof(a)),
            p->standbys[i].received_text[0] ? p->standbys[i].received_text : "(nothing)");
    }
    if (choose(p, errp) < 0) {
        promote_abort(p);
        return -1;
    }
    c = &p->standbys[p->candidate];
    say(p, "candidate: %s", addr_of(c, a, sizeof(a)));
    if (wait_applied(p, c, errp) < 0) {
        promote_abort(p);
        return -1;
    }
    say(p, "applied: %s has applied everything it received", a);
    return 0;
}

/* Names the transactions of <x> that <m> lacks (per domain, a sequence
 * beyond <m>'s, or a domain <m> never had). Returns their count. */
static unsigned errant(const struct gtid_pos *x, const struct gtid_pos *m, char *buf, size_t cap)
{
    unsigned n = 0;
    size_t len = 0;

    buf[0] = 0;
    for (unsigned k = 0; k < x->n; k++) {
        bool ok = false;

        for (unsigned j = 0; j < m->n && !ok; j++)
            ok = m->g[j].domain == x->g[k].domain && m->g[j].seq >= x->g[k].seq;
        if (ok)
            continue;
        n++;
        if (len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s%u-%u-%llu", n > 1 ? "," : "",
                                    x->g[k].domain, x->g[k].server,
                                    (unsigned long long)x->g[k].seq);
    }
    return n;
}

/* Waits until <x>'s replication threads both run. Returns 0, or -1 with
 * <why> set (an IO error such as 1236: the master's binlog lacks <x>'s
 * position, i.e. <x> has errant transactions). */
static int wait_replicating(struct promote_server *x, unsigned timeout_ms, char *why, size_t cap)
{
    uint64_t deadline = now_ms() + timeout_ms;
    char io[32], sql[32], err_no[16], err[400];

    for (;;) {
        if (run_value(x, "SHOW SLAVE STATUS", "Slave_IO_Running", io, sizeof(io)) != 0 ||
            run_value(x, "SHOW SLAVE STATUS", "Slave_SQL_Running", sql, sizeof(sql)) != 0 ||
            run_value(x, "SHOW SLAVE STATUS", "Last_IO_Errno", err_no, sizeof(err_no)) != 0) {
            snprintf(why, cap, "%s", x->err);
            return -1;
        }
        if (strcmp(io, "Yes") == 0 && strcmp(sql, "Yes") == 0)
            return 0;
        if (strcmp(err_no, "0") != 0 && strcmp(err_no, "") != 0) {
            run_value(x, "SHOW SLAVE STATUS", "Last_IO_Error", err, sizeof(err));
            snprintf(why, cap, "replication error %s: %s", err_no, err);
            return -1;
        }
        if (now_ms() >= deadline) {
            snprintf(why, cap, "replication threads not running after %u ms (IO %s, SQL %s)",
                     timeout_ms, io, sql);
            return -1;
        }
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

int promote_rejoin(struct promote *p, const struct smap_shard *s,
                   const struct smap_endpoint *server, const char *repl_user,
                   const char *repl_password, const struct promote_opts *o, char **errp)
{
    struct promote_server *m = &p->master, *x = &p->standbys[0];
    char a[SMAP_ENDPOINT_STR_MAX], ma[SMAP_ENDPOINT_STR_MAX], sql[900], why[500], list[300];
    char xpos[512], mpos[512], v[64];
    struct gtid_pos xg, mg;

    memset(p, 0, sizeof(*p));
    p->o = *o;
    p->candidate = -1;
    snprintf(p->shard, sizeof(p->shard), "%s", s->name);
    p->master.ep = s->master;
    p->n_standbys = 1;
    x->ep = *server;
    *errp = NULL;
    addr_of(x, a, sizeof(a));
    addr_of(m, ma, sizeof(ma));
    if (strpbrk(repl_user, "'\\") || strpbrk(repl_password, "'\\")) {
        *errp = util_fmt("the replication user name and password may not hold quotes or "
                        "backslashes");
        return -1;
    }
    server_connect(p, m);
    if (!m->m) {
        *errp = util_fmt("the master %s of shard %s does not answer (%s)", ma, p->shard, m->err);
        return -1;
    }
    server_connect(p, x);
    if (!x->m) {
        *errp = util_fmt("%s does not answer (%s)", a, x->err);
        return -1;
    }
    /* Before anything else: it must never take a write again on its own. */
    if (run(p, x, "SET GLOBAL read_only = 1") < 0) {
        *errp = util_fmt("%s: %s", a, x->err);
        return -1;
    }
    say(p, "fence: %s is read-only", a);
    if (run_value(x, "SELECT @@gtid_binlog_pos", NULL, xpos, sizeof(xpos)) != 0 ||
        run_value(m, "SELECT @@gtid_binlog_pos", NULL, mpos, sizeof(mpos)) != 0 ||
        gtid_parse(xpos, strlen(xpos), &xg) < 0 || gtid_parse(mpos, strlen(mpos), &mg) < 0) {
        *errp = util_fmt("cannot read the GTID positions of %s and %s", a, ma);
        return -1;
    }
    say(p, "position: %s has %s, the master %s has %s", a, xpos[0] ? xpos : "(nothing)", ma,
        mpos[0] ? mpos : "(nothing)");
    if (errant(&xg, &mg, list, sizeof(list)) > 0) {
        *errp = util_fmt("%s has transactions the master %s lacks (%s): it needs a rebuild "
                        "(or a restart with --init-rpl-role=SLAVE, which truncates an "
                        "unacknowledged tail)", a, ma, list);
        return -1;
    }
    snprintf(sql, sizeof(sql), "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%u, "
             "MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=current_pos, "
             "MASTER_CONNECT_RETRY=1", m->ep.host, m->ep.port, repl_user, repl_password);
    /* Master-side semi-sync on a standby would block its own SQL thread. */
    if (run(p, x, "STOP SLAVE") < 0 || run(p, x, "SET GLOBAL rpl_semi_sync_master_enabled = 0") < 0 ||
        run(p, x, "SET GLOBAL rpl_semi_sync_slave_enabled = 1") < 0 ||
        run(p, x, "SET GLOBAL sync_relay_log = 1") < 0 || run(p, x, sql) < 0 ||
        run(p, x, "START SLAVE") < 0) {
        *errp = util_fmt("%s: %s", a, x->err);
        return -1;
    }
    if (wait_replicating(x, p->o.timeout_ms, why, sizeof(why)) < 0) {
        run(p, x, "STOP SLAVE");
        run(p, x, "RESET SLAVE ALL");
        *errp = util_fmt("%s cannot replicate from %s: %s%s", a, ma, why,
                        strstr(why, "1236") ? " (its history diverged: it needs a rebuild)" : "");
        return -1;
    }
    say(p, "replicating: %s replicates from %s", a, ma);
    if (mpos[0]) {
        uint64_t deadline = now_ms() + p->o.apply_timeout_ms;

        snprintf(sql, sizeof(sql), "SELECT MASTER_GTID_WAIT('%s', 1)", mpos);
        for (;;) {
            char err_no[16], err[400];

            if (run_value(x, sql, NULL, v, sizeof(v)) != 0) {
                *errp = util_fmt("%s: %s", a, x->err);
                return -1;
            }
            if (strcmp(v, "0") == 0)
                break;
            /* The IO thread runs for a moment before the master refuses a
             * position it does not have (1236): keep looking for that. */
            if (run_value(x, "SHOW SLAVE STATUS", "Last_IO_Errno", err_no, sizeof(err_no)) == 0 &&
                strcmp(err_no, "0") != 0 && err_no[0]) {
                run_value(x, "SHOW SLAVE STATUS", "Last_IO_Error", err, sizeof(err));
                run(p, x, "STOP SLAVE");
                run(p, x, "RESET SLAVE ALL");
                *errp = util_fmt("%s cannot replicate from %s: replication error %s: %s%s", a, ma,
                                err_no, err, strcmp(err_no, "1236") == 0
                                ? " (its history diverged: it needs a rebuild)" : "");
                return -1;
            }
            if (now_ms() >= deadline) {
                *errp = util_fmt("%s has not caught up with %s within %u ms", a, ma,
                                p->o.apply_timeout_ms);
                return -1;
            }
        }
    }
    say(p, "caught up: %s", a);
    return 0;
}

int promote_rejoin_finish(struct promote *p, char **errp)
{
    struct promote_server *m = &p->master;
    char ma[SMAP_ENDPOINT_STR_MAX], v[16];

    addr_of(m, ma, sizeof(ma));
    if (run_value(m, "SELECT @@rpl_semi_sync_master_enabled", NULL, v, sizeof(v)) != 0) {
        *errp = util_fmt("master %s: %s", ma, m->err);
        return -1;
    }
    if (strcmp(v, "1") == 0)
        return 0;
    if (run(p, m, "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC") < 0 ||
        run(p, m, "SET GLOBAL rpl_semi_sync_master_timeout = 4294967295") < 0 ||
        run(p, m, "SET GLOBAL rpl_semi_sync_master_enabled = 1") < 0) {
        *errp = util_fmt("master %s: %s", ma, m->err);
        return -1;
    }
    say(p, "lossless: semi-sync is on again on the master %s", ma);
    return 0;
}

const struct smap_endpoint *promote_candidate(const struct promote *p)
{
    return p->candidate >= 0 ? &p->standbys[p->candidate].ep : NULL;
}

int promote_finish(struct promote *p, char **errp)
{
    struct promote_server *c = &p->standbys[p->candidate];
    char a[SMAP_ENDPOINT_STR_MAX], b[SMAP_ENDPOINT_STR_MAX], sql[700];
    unsigned repointed = 0;

    addr_of(c, a, sizeof(a));
    if (run(p, c, "STOP SLAVE") < 0 || run(p, c, "RESET SLAVE ALL") < 0) {
        *errp = util_fmt("promote %s: %s (the map names it master already; finish by hand: "
                        "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0)", a, c->err);
        return -1;
    }
    /* Semi-sync on before any standby connects to it (the order switchover
     * uses; set after the standbys were repointed, these SETs twice outlived
     * a 3 s statement timeout in test_failover on a loaded machine). It is
     * read-only: nothing waits for an acknowledgement yet. */
    if (run(p, c, "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC") < 0 ||
        run(p, c, "SET GLOBAL rpl_semi_sync_master_timeout = 4294967295") < 0 ||
        run(p, c, "SET GLOBAL rpl_semi_sync_master_enabled = 1") < 0) {
        *errp = util_fmt("promote %s: %s (left read-only)", a, c->err);
        return -1;
    }
    for (unsigned i = 0; i < p->n_standbys; i++) {
        struct promote_server *s = &p->standbys[i];

        if ((int)i == p->candidate)
            continue;
        addr_of(s, b, sizeof(b));
        snprintf(sql, sizeof(sql), "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%u, "
                 "MASTER_USE_GTID=slave_pos", c->ep.host, c->ep.port);
        if (run(p, s, "STOP SLAVE") < 0 || run(p, s, sql) < 0 || run(p, s, "START SLAVE") < 0) {
            say(p, "repoint: standby %s: %s (repoint it by hand)", b, s->err);
            continue;
        }
        repointed++;
        say(p, "repoint: standby %s replicates from %s", b, a);
    }
    /* Lossless from the first write if a standby can acknowledge; with none
     * left, semi-sync without fallback would block every write, so the new
     * master runs without it and the health checks report it. */
    if (repointed == 0) {
        if (run(p, c, "SET GLOBAL rpl_semi_sync_master_enabled = 0") < 0) {
            *errp = util_fmt("promote %s: %s (left read-only)", a, c->err);
            return -1;
        }
        say(p, "warning: shard %s has no standby now: writes are not protected by semi-sync "
               "until one is attached", p->shard);
    }
    if (run(p, c, "SET GLOBAL read_only = 0") < 0) {
        *errp = util_fmt("promote %s: %s (it is master in the map but read-only)", a, c->err);
        return -1;
    }
    say(p, "writable: %s is the master of shard %s", a, p->shard);
    return 0;
}

int promote_resume(struct promote *p, const struct smap_shard *s, const struct promote_opts *o,
                   char **errp)
{
    char a[SMAP_ENDPOINT_STR_MAX];

    memset(p, 0, sizeof(*p));
    p->o = *o;
    snprintf(p->shard, sizeof(p->shard), "%s", s->name);
    p->n_standbys = 1;
    p->standbys[0].ep = s->master;
    for (unsigned i = 0; i < s->n_standbys && p->n_standbys < SMAP_MAX_STANDBYS; i++)
        p->standbys[p->n_standbys++].ep = s->standbys[i];
    for (unsigned i = 0; i < p->n_standbys; i++)
        server_connect(p, &p->standbys[i]);
    if (!p->standbys[0].m) {
        *errp = util_fmt("the new master %s of shard %s does not answer (%s)",
                        addr_of(&p->standbys[0], a, sizeof(a)), p->shard, p->standbys[0].err);
        return -1;
    }
    p->candidate = 0;
    say(p, "resume: finishing the promotion of %s", addr_of(&p->standbys[0], a, sizeof(a)));
    return promote_finish(p, errp);
}

/* ---------------------------------------------------------------- switchover */

int promote_switch_check(struct promote *p, const struct smap_shard *s,
                         const struct promote_opts *o, unsigned max_lag_s, char **errp)
{
    char a[SMAP_ENDPOINT_STR_MAX], io[16], sql[16], lag[32], src_port[16], src_host[300];

    promote_init(p, s, o);
    *errp = NULL;
    if (p->n_standbys == 0) {
        *errp = util_fmt("shard %s has no standby to switch over to", p->shard);
        return -1;
    }
    for (unsigned i = 0; o->to && i < p->n_standbys; i++)
        if (smap_endpoint_eq(o->to, &p->standbys[i].ep))
            p->candidate = (int)i;
    if (o->to && p->candidate < 0) {
        smap_format_endpoint(o->to, a, sizeof(a));
        *errp = util_fmt("%s is not a standby of shard %s", a, p->shard);
        return -1;
    }
    server_connect(p, &p->master);
    if (!p->master.m) {
        *errp = util_fmt("the master %s of shard %s does not answer (%s): a switchover needs "
                        "a live master (use failover)", addr_of(&p->master, a, sizeof(a)),
                        p->shard, p->master.err);
        return -1;
    }
    for (unsigned i = 0; i < p->n_standbys; i++) {
        struct promote_server *x = &p->standbys[i];

        server_connect(p, x);
        if (!x->m) {
            *errp = util_fmt("standby %s of shard %s does not answer (%s)",
                            addr_of(x, a, sizeof(a)), p->shard, x->err);
            return -1;
        }
        addr_of(x, a, sizeof(a));
        if (run_value(x, "SHOW SLAVE STATUS", "Slave_IO_Running", io, sizeof(io)) != 0 ||
            run_value(x, "SHOW SLAVE STATUS", "Slave_SQL_Running", sql, sizeof(sql)) != 0 ||
            run_value(x, "SHOW SLAVE STATUS", "Seconds_Behind_Master", lag, sizeof(lag)) != 0 ||
            run_value(x, "SHOW SLAVE STATUS", "Master_Host", src_host, sizeof(src_host)) != 0 ||
            run_value(x, "SHOW SLAVE STATUS", "Master_Port", src_port, sizeof(src_port)) != 0 ||
            read_received(p, x, errp) < 0) {
            if (!*errp)
                *errp = util_fmt("standby %s is not a replica (%s)", a, x->err);
            return -1;
        }
        /* Only the target must be caught up; every standby must follow
         * this master (it will be repointed). */
        if (strcmp(src_host, p->master.ep.host) != 0 ||
            strtoul(src_port, NULL, 10) != p->master.ep.port) {
            *errp = util_fmt("standby %s replicates from %s:%s, not from the master", a,
                            src_host, src_port);
            return -1;
        }
        if (p->candidate < 0 || (int)i == p->candidate) {
            if (strcmp(io, "Yes") != 0 || strcmp(sql, "Yes") != 0) {
                if (p->candidate >= 0 || i + 1 == p->n_standbys) {
                    *errp = util_fmt("standby %s is not replicating (IO thread %s, SQL thread "
                                    "%s)", a, io, sql);
                    return -1;
                }
                continue;
            }
            if (!lag[0] || strtoul(lag, NULL, 10) > max_lag_s) {
                if (p->candidate >= 0 || i + 1 == p->n_standbys) {
                    *errp = util_fmt("standby %s is %s s behind the master (at most %u s "
                                    "allowed)", a, lag[0] ? lag : "?", max_lag_s);
                    return -1;
                }
                continue;
            }
            if (p->candidate < 0)
                p->candidate = (int)i;
        }
    }
    say(p, "check: master %s answers; target %s replicates and is caught up",
        addr_of(&p->master, a, sizeof(a)), addr_of(&p->standbys[p->candidate], src_host,
                                                   sizeof(src_host)));
    return 0;
}

int promote_switch_fence(struct promote *p, char **errp)
{
    struct promote_server *c = &p->standbys[p->candidate];
    char a[SMAP_ENDPOINT_STR_MAX], b[SMAP_ENDPOINT_STR_MAX], pos[512], sql[700], v[64];
    uint64_t deadline = now_ms() + p->o.apply_timeout_ms;

    addr_of(&p->master, a, sizeof(a));
    addr_of(c, b, sizeof(b));
    fence_master(p);
    if (!p->fenced) {
        *errp = util_fmt("the master %s could not be made read-only (%s)", a, p->master.err);
        return -1;
    }
    if (run_value(&p->master, "SELECT @@gtid_binlog_pos", NULL, pos, sizeof(pos)) != 0) {
        *errp = util_fmt("master %s: %s", a, p->master.err);
        promote_abort(p);
        return -1;
    }
    say(p, "position: the master %s has written %s", a, pos[0] ? pos : "(nothing)");
    snprintf(sql, sizeof(sql), "SELECT MASTER_GTID_WAIT('%s', 0.2)", pos);
    while (pos[0]) {
        if (run_value(c, sql, NULL, v, sizeof(v)) != 0) {
            *errp = util_fmt("target %s: %s", b, c->err);
            promote_abort(p);
            return -1;
        }
        if (strcmp(v, "0") == 0)
            break;
        if (now_ms() >= deadline) {
            *errp = util_fmt("target %s has not applied the master's last transaction (%s) "
                            "within %u ms", b, pos, p->o.apply_timeout_ms);
            promote_abort(p);
            return -1;
        }
    }
    say(p, "caught up: %s has applied everything the master wrote", b);
    return 0;
}

int promote_switch_finish(struct promote *p, const char *repl_user, const char *repl_password,
                          char **errp)
{
    struct promote_server *c = &p->standbys[p->candidate], *old = &p->master;
    char a[SMAP_ENDPOINT_STR_MAX], b[SMAP_ENDPOINT_STR_MAX], sql[900], why[400];

    addr_of(c, a, sizeof(a));
    addr_of(old, b, sizeof(b));
    if (run(p, c, "STOP SLAVE") < 0 || run(p, c, "RESET SLAVE ALL") < 0 ||
        run(p, c, "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC") < 0 ||
        run(p, c, "SET GLOBAL rpl_semi_sync_master_timeout = 4294967295") < 0 ||
        run(p, c, "SET GLOBAL rpl_semi_sync_master_enabled = 1") < 0) {
        *errp = util_fmt("promote %s: %s (the old master %s is read-only; finish by hand or "
                        "make it writable again)", a, c->err, b);
        return -1;
    }
    say(p, "promote: %s is a lossless master (read-only until the others follow)", a);
    /* The old master becomes a standby: no master-side semi-sync (it would
     * block its own SQL thread), the standby's settings, then replication
     * from the new master starting at its own history. */
    snprintf(sql, sizeof(sql), "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%u, "
             "MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_USE_GTID=current_pos, "
             "MASTER_CONNECT_RETRY=1", c->ep.host, c->ep.port, repl_user, repl_password);
    /* STOP SLAVE first: a resumed switchover may find it replicating already
     * (CHANGE MASTER refuses a running replica). */
    if (run(p, old, "SET GLOBAL rpl_semi_sync_master_enabled = 0") < 0 ||
        run(p, old, "STOP SLAVE") < 0 ||
        run(p, old, "SET GLOBAL rpl_semi_sync_slave_enabled = 1") < 0 ||
        run(p, old, "SET GLOBAL sync_relay_log = 1") < 0 || run(p, old, sql) < 0 ||
        run(p, old, "START SLAVE") < 0) {
        *errp = util_fmt("demote %s: %s (%s is master but read-only: repoint the old master "
                        "by hand, then SET GLOBAL read_only=0 on %s)", b, old->err, a, a);
        return -1;
    }
    if (wait_replicating(old, p->o.timeout_ms, why, sizeof(why)) < 0) {
        *errp = util_fmt("the old master %s does not replicate from %s: %s (%s is master but "
                        "read-only)", b, a, why, a);
        return -1;
    }
    say(p, "demote: the old master %s replicates from %s", b, a);
    if (run(p, c, "SET GLOBAL read_only = 0") < 0) {
        *errp = util_fmt("promote %s: %s (it is master but read-only)", a, c->err);
        return -1;
    }
    p->fenced = false;
    say(p, "writable: %s is the master of shard %s", a, p->shard);
    return 0;
}

void promote_switch_repoint(struct promote *p)
{
    struct promote_server *c = &p->standbys[p->candidate];
    char a[SMAP_ENDPOINT_STR_MAX], sql[700];

    addr_of(c, a, sizeof(a));
    for (unsigned i = 0; i < p->n_standbys; i++) {
        struct promote_server *x = &p->standbys[i];
        char xa[SMAP_ENDPOINT_STR_MAX];

        if ((int)i == p->candidate)
            continue;
        addr_of(x, xa, sizeof(xa));
        snprintf(sql, sizeof(sql), "CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%u, "
                 "MASTER_USE_GTID=slave_pos", c->ep.host, c->ep.port);
        if (run(p, x, "STOP SLAVE") < 0 || run(p, x, sql) < 0 || run(p, x, "START SLAVE") < 0)
            say(p, "repoint: standby %s: %s (repoint it by hand)", xa, x->err);
        else
            say(p, "repoint: standby %s replicates from %s", xa, a);
    }
}

int promote_switch_resume(struct promote *p, const struct smap_shard *s,
                          const struct smap_endpoint *old, const struct smap_endpoint *target,
                          const struct promote_opts *o, char **errp)
{
    char a[SMAP_ENDPOINT_STR_MAX];

    memset(p, 0, sizeof(*p));
    p->o = *o;
    p->candidate = 0;
    snprintf(p->shard, sizeof(p->shard), "%s", s->name);
    p->master.ep = *old;
    p->standbys[p->n_standbys++].ep = *target;
    for (unsigned i = 0; i <= s->n_standbys && p->n_standbys < SMAP_MAX_STANDBYS; i++) {
        const struct smap_endpoint *e = i == 0 ? &s->master : &s->standbys[i - 1];

        if (!smap_endpoint_eq(e, old) && !smap_endpoint_eq(e, target))
            p->standbys[p->n_standbys++].ep = *e;
    }
    server_connect(p, &p->master);
    for (unsigned i = 0; i < p->n_standbys; i++)
        server_connect(p, &p->standbys[i]);
    if (!p->master.m) {
        *errp = util_fmt("the old master %s does not answer (%s)",
                         addr_of(&p->master, a, sizeof(a)), p->master.err);
        return -1;
    }
    if (!p->standbys[0].m) {
        *errp = util_fmt("the target %s does not answer (%s)",
                         addr_of(&p->standbys[0], a, sizeof(a)), p->standbys[0].err);
        return -1;
    }
    addr_of(&p->master, a, sizeof(a));
    say(p, "resume: the switchover of shard %s from %s to %s:%u", p->shard, a,
        p->standbys[0].ep.host, p->standbys[0].ep.port);
    return 0;
}

int promote_switch_rollback(struct promote *p, const struct smap_shard *s,
                            const struct promote_opts *o, char **errp)
{
    char a[SMAP_ENDPOINT_STR_MAX], host[300];

    memset(p, 0, sizeof(*p));
    p->o = *o;
    p->candidate = -1;
    snprintf(p->shard, sizeof(p->shard), "%s", s->name);
    p->master.ep = s->master;
    addr_of(&p->master, a, sizeof(a));
    server_connect(p, &p->master);
    if (!p->master.m) {
        *errp = util_fmt("the master %s does not answer (%s)", a, p->master.err);
        return -1;
    }
    /* A master that replicates was demoted: not ours to make writable. */
    if (run_value(&p->master, "SHOW SLAVE STATUS", "Master_Host", host, sizeof(host)) < 0) {
        *errp = util_fmt("master %s: %s", a, p->master.err);
        return -1;
    }
    if (host[0]) {
        *errp = util_fmt("master %s replicates from %s: it was demoted; not made writable", a,
                         host);
        return -1;
    }
    if (run(p, &p->master, "SET GLOBAL read_only = 0") < 0) {
        *errp = util_fmt("master %s: %s (it stays read-only)", a, p->master.err);
        return -1;
    }
    say(p, "rollback: master %s is writable again", a);
    return 0;
}

void promote_abort(struct promote *p)
{
    char a[SMAP_ENDPOINT_STR_MAX], sql[700], v[64];

    /* Undoing is acting too: a successor may have promoted by now. */
    if (!may_act(p))
        return;
    if (p->io_stopped) {
        for (unsigned i = 0; i < p->n_standbys; i++) {
            struct promote_server *s = &p->standbys[i];

            if (!s->m)
                continue;
            addr_of(s, a, sizeof(a));
            /* Apply what was received before the IO thread restarts and
             * purges the relay log. */
            if (s->received_text[0]) {
                snprintf(sql, sizeof(sql), "SELECT MASTER_GTID_WAIT('%s', %u)",
                         s->received_text, (p->o.timeout_ms + 999) / 1000);
                run_value(s, sql, NULL, v, sizeof(v));
            }
            if (run(p, s, "START SLAVE") < 0)
                say(p, "abort: standby %s: %s", a, s->err);
            else
                say(p, "abort: standby %s replicates again", a);
        }
        p->io_stopped = false;
    }
    if (p->fenced && p->master.m) {
        addr_of(&p->master, a, sizeof(a));
        if (run(p, &p->master, "SET GLOBAL read_only = 0") < 0)
            say(p, "abort: master %s stays read-only: %s", a, p->master.err);
        else
            say(p, "abort: master %s is writable again", a);
        p->fenced = false;
    }
}

void promote_free(struct promote *p)
{
    if (p->master.m)
        mysql_close(p->master.m);
    p->master.m = NULL;
    for (unsigned i = 0; i < p->n_standbys; i++) {
        if (p->standbys[i].m)
            mysql_close(p->standbys[i].m);
        p->standbys[i].m = NULL;
    }
}
