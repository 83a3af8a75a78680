/*
 * router/session_move.c - ending the work that keeps a move's frozen
 * vbuckets busy past move_drain_ms (docs/moves.md, "cutover"), so that one
 * idle open transaction cannot stall a move.
 *
 * The main thread (router/mapwatch.c) posts session_move_cut() to every
 * worker once the freeze has waited move_drain_ms; each worker ends, for
 * its own sessions, whatever its map's frozen vbuckets still count
 * (router/vbtrack.h): the backend connection is closed (the server rolls
 * the transaction back; it never goes back to the pool), the client gets
 * an error saying what happened and that it may retry, and the session
 * goes on. Nothing here takes a lock: the counts are the session's own and
 * the map is the worker's.
 *
 * Must never: touch another worker's session, let a client believe a cut
 * transaction committed, or return a cut connection to the pool.
 */
#include "router/session_int.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/wire.h"
#include "router/backend.h"
#include "router/log.h"
#include "router/pool.h"
#include "shardmap/smap.h"

/* ER_LOCK_DEADLOCK: "the transaction was rolled back; restart it". Drivers
 * and ORMs retry a transaction on it (SQLSTATE 40001, serialization
 * failure), which is what a client of a cut transaction should do. */
#define SESS_ER_TXN_ROLLED_BACK 1213

/* What a cut did to the statement or transaction, for the client. */
enum move_outcome {
    MOVE_ROLLED_BACK,   /* a transaction: gone, nothing of it committed */
    MOVE_NOT_RUN,       /* a statement not sent to the server yet */
    MOVE_UNKNOWN,       /* an autocommit statement (or COMMIT) in flight: it may
                           have committed before the connection closed */
};

static const char *const outcome_names[] = { "rolled_back", "not_run", "unknown" };

/* "vbucket 5" or "its vbuckets" (a transaction over more vbuckets than a
 * session records, vbtrack.h). */
static void vb_text(char *buf, size_t cap, uint32_t vb)
{
    if (vb == UINT32_MAX)
        snprintf(buf, cap, "one of the vbuckets it used");
    else
        snprintf(buf, cap, "vbucket %u", vb);
}

/* <state_lost>: the session also had state only that connection held (user
 * variables, a cursor: pinned), which is gone with it. */
static void cut_message(const struct session *s, enum move_outcome o, uint32_t vb,
                        bool state_lost, char *msg, size_t cap)
{
    char what[48];
    unsigned ms = session_cfg(s)->move_drain_ms;
    size_t n;

    vb_text(what, sizeof(what), vb);
    switch (o) {
    case MOVE_ROLLED_BACK:
        snprintf(msg, cap, "shardwire: this transaction was rolled back: %s is being moved to "
                 "another shard, and the transaction was still open on it %u ms "
                 "(move_drain_ms) after the move froze it. Retry the transaction.", what, ms);
        break;
    case MOVE_NOT_RUN:
        snprintf(msg, cap, "shardwire: the statement was not run: %s is being moved to "
                 "another shard, and the statement was still waiting on it %u ms "
                 "(move_drain_ms) after the move froze it. Retry it.", what, ms);
        break;
    case MOVE_UNKNOWN:
        snprintf(msg, cap, "shardwire: the statement was cut: %s is being moved to another "
                 "shard, and the statement was still running on it %u ms (move_drain_ms) "
                 "after the move froze it; whether it took effect is unknown. Check, then "
                 "retry it.", what, ms);
        break;
    }
    n = strlen(msg);
    if (state_lost && n < cap)
        snprintf(msg + n, cap - n, " The session's state on that connection (user variables, "
                 "temporary tables, cursors) is gone too.");
}

/* ---- the server side of a cut statement ----
 *
 * Closing its connection ends a transaction that waits for its client, but
 * not a statement the server is running: that goes on (SELECT SLEEP(60) for
 * a minute, an UPDATE to its commit) holding its locks on the source, where
 * the move's cleanup then waits for them. So the connection of a cut
 * statement is killed on the server (KILL CONNECTION, by the router's own
 * backend account, which may kill its own connections), from a short-lived
 * thread (the client library blocks; a worker must not). The freeze is
 * acknowledged only once that returned (vbtrack.killing): by then the
 * statement has stopped, or committed already (MOVE_UNKNOWN says so).
 */
struct kill_job {
    struct vbtrack      *t;
    struct smap_endpoint ep;
    uint32_t             thread_id;
    char                *user, *password;
};

#define MOVE_KILL_TIMEOUT_S 2     /* connect, write and read: the ack waits for it */

static void kill_job_free(struct kill_job *k)
{
    free(k->user);
    free(k->password);
    free(k);
}

static void *kill_main(void *arg)
{
    struct kill_job *k = arg;
    unsigned secs = MOVE_KILL_TIMEOUT_S;
    char sql[64];
    MYSQL *m;

    mysql_thread_init();
    m = mysql_init(NULL);
    if (m) {
        mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
        mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &secs);
        mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &secs);
        snprintf(sql, sizeof(sql), "KILL CONNECTION %" PRIu32, k->thread_id);
        /* 1094, unknown thread: it ended by itself meanwhile */
        if ((!mysql_real_connect(m, k->ep.host, k->user, k->password, NULL, k->ep.port, NULL,
                                 0) || mysql_query(m, sql) != 0) && mysql_errno(m) != 1094)
            log_warn("move: cannot kill a cut statement on its server server=%s:%u "
                     "thread_id=%" PRIu32 ": %s", k->ep.host, k->ep.port, k->thread_id,
                     mysql_error(m));
        else
            log_info("move: cut statement killed on its server server=%s:%u thread_id=%" PRIu32,
                     k->ep.host, k->ep.port, k->thread_id);
        mysql_close(m);
    }
    mysql_thread_end();
    atomic_fetch_sub(&k->t->killing, 1);
    kill_job_free(k);
    return NULL;
}

/* Kills the server connection of <s>'s backend (a statement of its may be
 * running there), unless the master changed under it (router/pool.c cut it
 * then). */
static void kill_server_side(struct session *s)
{
    const struct config *cfg = session_cfg(s);
    struct vbtrack *t = &s->w->router->vbt;
    struct backend *be = s->be;
    struct kill_job *k;
    pthread_attr_t attr;
    pthread_t th;
    int rc = -1;

    if (!be || be->generation != be->pool->generation || !be->login.thread_id)
        return;
    k = calloc(1, sizeof(*k));
    if (k) {
        k->t = t;
        k->ep = be->pool->endpoint;
        k->thread_id = be->login.thread_id;
        k->user = strdup(cfg->backend_user);
        k->password = strdup(cfg->backend_password ? cfg->backend_password : "");
    }
    atomic_fetch_add(&t->killing, 1);
    if (k && k->user && k->password && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&th, &attr, kill_main, k);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        atomic_fetch_sub(&t->killing, 1);
        log_warn("move: cannot start killing a cut statement on its server thread_id=%" PRIu32
                 " (out of memory or threads); it runs on until it ends",
                 be->login.thread_id);
        if (k)
            kill_job_free(k);
    }
}

/* The transaction, connection state and cursor that lived on the closed
 * connection are gone. */
static void forget_transaction(struct session *s)
{
    s->route.in_txn = false;
    s->route.txn_pending = false;
    s->route.txn_wrote = false;
    s->route.txn_scoped = false;
    s->route.pinned = false;
    s->ps.cursor_stmt = 0;
    s->relay.be_paused = false;
}

/* Idle inside a transaction: closes its connection now (the server rolls
 * it back, releasing its locks); the client hears of it with its next
 * statement (session_move_answer_cut). */
static void cut_idle(struct session *s, uint32_t vb)
{
    s->route.move_cut_state = s->route.pinned || s->ps.cursor_stmt;
    session_route_detach(s, false);
    forget_transaction(s);
    s->route.move_cut = true;
    s->route.move_cut_vb = vb;
    session_route_update_hold(s);
    vbtrack_leave(&s->w->router->vbt, &s->route.vbs);
    session_arm_idle_timer(s);
}

/* A statement waiting for a connection, bringing one to the session's
 * state, or running: ended with an error now. Returns what it did. */
static enum move_outcome cut_statement(struct session *s, uint32_t vb)
{
    bool txn = s->route.in_txn || s->route.txn_pending || !s->route.autocommit ||
               (s->state != SESS_WAIT_POOL && s->relay.sync_had_begin);
    bool sent = s->state == SESS_FORWARDING;
    bool state_lost = s->route.pinned || s->ps.cursor_stmt;
    bool partial = sent && s->relay.reply_bytes > 0;
    enum move_outcome o;
    char msg[512];

    if (txn && !(sent && s->cmd.ar.stmt == ANALYZE_STMT_COMMIT))
        o = MOVE_ROLLED_BACK;
    else
        o = sent ? MOVE_UNKNOWN : MOVE_NOT_RUN;
    evtimer_del(s->timer);
    if (s->route.waiting_pool)
        pool_cancel_wait(s->route.waiting_pool, s);
    session_route_unbuffer(s);
    if (s->state != SESS_WAIT_POOL)
        kill_server_side(s);
    session_route_detach(s, false);
    forget_transaction(s);
    if (partial) {
        /* part of its reply is with the client already: an error now
         * would corrupt it, as when a backend is lost mid-reply */
        session_close(s, SESS_END_BACKEND_LOST);
        return o;
    }
    cut_message(s, o, vb, state_lost, msg, sizeof(msg));
    /* a statement not sent still has its packets in the input; one sent
     * has none left (consumed when forwarded) */
    if (o == MOVE_ROLLED_BACK)
        session_cmd_answer_err(s, SESS_ER_TXN_ROLLED_BACK, "40001", msg);
    else if (o == MOVE_NOT_RUN)
        session_cmd_answer_err(s, WIRE_ER_LOCK_WAIT_TIMEOUT, "HY000", msg);
    else
        session_cmd_answer_err(s, WIRE_ER_BACKEND_GONE, "HY000", msg);
    session_set_state(s, SESS_IDLE);
    session_arm_idle_timer(s);
    /* commands the client pipelined behind it: from the loop, not from
     * inside this message */
    bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    return o;
}

void session_move_cut(struct worker *w, void *arg)
{
    const struct smap *m = w->map;
    uint64_t version = *(uint64_t *)arg;
    unsigned n = 0;

    free(arg);
    /* Only for the freeze that waited move_drain_ms: a newer map (another
     * move's freeze, or the flip) starts its own wait in mapwatch. Not
     * while the worker shuts down: its sessions end by themselves, and
     * this may run after its loop (worker_free). */
    if (!m || smap_n_frozen(m) == 0 || smap_version(m) != version || w->shutting_down)
        return;
    for (struct session *s = w->sessions; s; s = s->next) {
        enum sess_state was = s->state;
        enum move_outcome o;
        uint32_t vb;

        if (s->state < SESS_IDLE || s->state > SESS_FORWARDING ||
            !vbtrack_blocks(&s->route.vbs, m, &vb))
            continue;
        if (s->state == SESS_IDLE) {
            cut_idle(s, vb);
            o = MOVE_ROLLED_BACK;
        } else {
            o = cut_statement(s, vb);
        }
        n++;
        log_info("move: cut id=%" PRIu64 " vbucket=%d shard=%s state=%s outcome=%s%s (on a "
                 "frozen vbucket past move_drain_ms)", s->id, vb == UINT32_MAX ? -1 : (int)vb,
                 s->be_shard[0] ? s->be_shard : "-", sess_state_name(was), outcome_names[o],
                 s->state == SESS_CLOSED || s->state == SESS_CLOSING ? " session_closed" : "");
    }
    if (n)
        log_warn("move: %u transactions or statements cut on frozen vbuckets worker=%u "
                 "map_version=%" PRIu64, n, w->id, smap_version(m));
}

bool session_move_answer_cut(struct session *s, bool rollback)
{
    char msg[512];

    if (!s->route.move_cut)
        return false;
    s->route.move_cut = false;
    if (rollback)
        return false;
    cut_message(s, MOVE_ROLLED_BACK, s->route.move_cut_vb, s->route.move_cut_state, msg,
                sizeof(msg));
    session_cmd_answer_err(s, SESS_ER_TXN_ROLLED_BACK, "40001", msg);
    return true;
}
