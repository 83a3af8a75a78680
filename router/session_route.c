/*
 * router/session_route.c - where a statement goes: the analysis and the
 * operator's rules, the key's shard, attaching and giving back backend
 * connections, bringing a connection to the session's state (tracked SETs,
 * charset, a deferred BEGIN), transactions, the pinned-connection budget,
 * and holding a statement while its shard has no reachable master.
 *
 * Must never: send a statement by a shard index saved across a map swap, or
 * let a transaction move to another connection.
 */
#include "router/session_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/packet.h"
#include "protocol/wire.h"
#include "router/backend.h"
#include "router/config.h"
#include "router/control.h"
#include "router/fault.h"
#include "router/decide.h"
#include "router/log.h"
#include "router/mapwatch.h"
#include "router/pool.h"
#include "router/util.h"
#include "router/worker.h"
#include "shardmap/smap.h"
#include "shardmap/vbucket.h"

/* ---- connections held between statements ----
 *
 * A session in a transaction, with pinned state or an open cursor keeps
 * its backend connection while its client thinks. Unbounded, a few idle
 * such clients take every connection of a shard. So: such sessions of one
 * shard may hold at most pool_max_pinned_per_shard connections router-wide
 * (pool_budget.held; a statement that would hold one more is refused before
 * it runs), and an idle session holding a connection times out after
 * pinned_idle_timeout_ms instead of idle_timeout_ms.
 */

static unsigned pinned_cap(const struct config *cfg)
{
    unsigned cap = cfg->pool_max_pinned_per_shard;

    if (cap == 0)
        cap = cfg->pool_max_per_shard * 3 / 4;
    return cap ? cap : 1;
}

bool session_route_holds_backend(const struct session *s)
{
    return s->be && (s->route.in_txn || s->route.pinned || s->ps.cursor_stmt);
}

/* Makes the budget's count agree with whether <s> holds its connection. */
void session_route_update_hold(struct session *s)
{
    struct pool_budget *b = session_route_holds_backend(s) ? s->be->pool->budget : NULL;

    if (b == s->route.held)
        return;
    if (s->route.held)
        atomic_fetch_sub(&s->route.held->held, 1);
    if (b)
        atomic_fetch_add(&b->held, 1);
    s->route.held = b;
}

/* Takes one from <b>'s count of held connections if it is below <cap>. */
static bool hold_take(struct pool_budget *b, unsigned cap)
{
    unsigned n = atomic_load(&b->held);

    while (n < cap)
        if (atomic_compare_exchange_weak(&b->held, &n, n + 1))
            return true;
    return false;
}

/* Whether the statement being routed will leave the session holding a
 * connection afterwards. */
static bool will_hold(const struct session *s, bool begins_txn)
{
    return s->route.pinned || s->cmd.ar.pins_session || s->ps.cursor_stmt || s->route.in_txn ||
           !s->route.autocommit || (begins_txn && s->route.txn_pending);
}

/* ---- session state (SET statements replayed on other backends) ---- */

/* Out of memory leaves the session's state unknown: it then matches no
 * connection, so every statement replays it (slow, never wrong). */
void session_route_recompute_sig(struct session *s)
{
    sessstate_build(&s->route.sstate, s->route.state_stmts, s->route.n_state_stmts,
                    s->login.charset);
}

/* Gives the backend back (or drops it) when the session stops using it. */
void session_route_detach(struct session *s, bool reusable)
{
    struct backend *be = s->be;

    if (!be)
        return;
    s->be = NULL;
    /* Reading stays enabled: the pool watches idle connections too, and
     * every disable/enable pair would cost two epoll_ctl calls. */
    bufferevent_setcb(be->bev, NULL, NULL, NULL, NULL);
    if (!reusable || s->route.in_txn) {
        pool_discard(be);
        return;
    }
    /* It holds state we cannot see (locks, LAST_INSERT_ID(expr), user
     * variables): reset before reuse, so no other session reads it. The
     * auto-increment id an INSERT leaves is not reason enough: a statement
     * that reads it (LAST_INSERT_ID(), @@identity) resets a connection it
     * did not hold first (reads_prev_stmt), so the many INSERTs cost no
     * COM_RESET_CONNECTION. */
    if (s->route.pinned)
        sessstate_forget(&be->sstate);
    pool_release(be);
}

/* Gives the backend back as session_route_detach() does, and the session's
 * claim on its shard's pinned budget with it when it is between
 * statements. */
void session_route_release(struct session *s, bool reusable)
{
    session_route_detach(s, reusable);
    if (s->state == SESS_IDLE)
        session_route_update_hold(s);
}

/* The tenant scope of statement <sql>/<len> (docs/orms.md): its leading
 * comment's user (into <ckey>), else the transaction's, else the session's.
 * Returns the key length with *<key> set, 0 when unscoped, -1 for a
 * malformed scope comment, -2 for a comment naming another user than the
 * transaction's or session's scope. */
static int effective_scope(const struct session *s, const char *sql, size_t len,
                           char ckey[ANALYZE_KEY_MAX], const char **key)
{
    int n = scope_comment(sql, len, analyze_config_of(s->w->analyze)->key_type, ckey);
    size_t klen = session_route_scope(s, key);

    if (n == 0)
        return (int)klen;
    /* a comment naming another user than a scoped session's: refused
     * (-2), as any statement naming another user is there */
    if (n > 0 && klen > 0 && (klen != (size_t)n || memcmp(*key, ckey, klen) != 0))
        return -2;
    *key = ckey;
    return n;
}

void session_route_set_scope(struct session *s, unsigned scope, bool on, const char *key,
                             size_t len)
{
    if (scope == ANALYZE_SCOPE_SESSION) {
        s->route.scoped = on;
        s->route.scope_len = on ? len : 0;
        memcpy(s->route.scope_key, key, s->route.scope_len);
    } else if (scope == ANALYZE_SCOPE_TXN) {
        s->route.txn_scoped = on;
        s->route.txn_scope_len = on ? len : 0;
        memcpy(s->route.txn_scope_key, key, s->route.txn_scope_len);
    }
}

size_t session_route_scope(const struct session *s, const char **key)
{
    if (s->route.txn_scoped) {
        *key = s->route.txn_scope_key;
        return s->route.txn_scope_len;
    }
    if (s->route.scoped) {
        *key = s->route.scope_key;
        return s->route.scope_len;
    }
    *key = NULL;
    return 0;
}

static void set_reject(struct analyze_result *ar, const char *msg)
{
    ar->kind = ANALYZE_REJECT;
    ar->err_no = WIRE_ER_NOT_SUPPORTED_YET;
    memcpy(ar->sqlstate, "42000", 6);
    ar->msg = msg;
    ar->offset = 0;
}

/* The analyzer's decision (on a scoped session: with the scope's rewrite,
 * protocol/scope.h, and a prepared statement's key '?'s noted in
 * <scope_params> when <prepared>), then the operator's rules on top
 * (docs/config.md). */
void session_route_analyze(struct session *s, const char *sql, size_t len, bool prepared)
{
    char ckey[ANALYZE_KEY_MAX];
    const char *key = NULL;
    int verdict = SCOPE_ASIS, rc;
    int klen = effective_scope(s, sql, len, ckey, &key);

    analyze_set_sql_mode(s->w->analyze, s->route.sql_modes);
    s->route.rewritten = false;
    if (klen < 0) {
        s->cmd.ar.stmt = ANALYZE_STMT_OTHER;
        set_reject(&s->cmd.ar, klen == -2 ?
                   "shardwire: the statement's scope comment names another user than the "
                   "session's (SET @shardwire_user / @shardwire_txn_user); a scoped session may "
                   "touch only its user's rows" :
                   "shardwire: malformed scope comment: write "
                   "/* shardwire:user=42 */ at the start of the statement");
        return;
    }
    if (klen > 0)
        rc = decide_scoped(s->w->analyze, s->w->router->rules, sql, len, key, (size_t)klen,
                           prepared, &s->route.rewrite, &s->cmd.ar, &verdict);
    else
        rc = decide_statement(s->w->analyze, s->w->router->rules, sql, len, &s->cmd.ar);
    if (verdict == SCOPE_REWRITTEN) {
        if (s->route.rewrite.len + 1 >= PACKET_MAX_PAYLOAD)
            set_reject(&s->cmd.ar, "shardwire: statement too long to add the session's user to");
        else
            s->route.rewritten = true;
    }

    if (rc < 0)
        log_warn("session: analyzer out of memory id=%" PRIu64, s->id);
    else if (rc > 0)
        log_debug("session: rule applied id=%" PRIu64, s->id);
}

void session_route_reject(struct session *s, const char *sql, size_t len)
{
    const struct analyze_result *ar = &s->cmd.ar;
    char msg[512];
    size_t off = ar->offset < len ? ar->offset : len;
    size_t n = len - off < 40 ? len - off : 40;

    stats_reject(s->w->counters, &s->st, ar->err_no == WIRE_ER_SPECIFIC_ACCESS_DENIED ?
                                             STATS_REJECT_RULE : STATS_REJECT_ANALYZER);
    if (n > 0)
        snprintf(msg, sizeof(msg), "%s (near '%.*s' at offset %zu)",
                 ar->msg ? ar->msg : "shardwire: statement refused", (int)n, sql + off, off);
    else
        snprintf(msg, sizeof(msg), "%s", ar->msg ? ar->msg : "shardwire: statement refused");
    session_cmd_answer_err(s, ar->err_no ? ar->err_no : WIRE_ER_NOT_SUPPORTED_YET,
                           ar->sqlstate[0] ? ar->sqlstate : "42000", msg);
}

static void backend_attach(struct session *s, struct backend *be)
{
    /* A statement reading what the connection's previous statement left
     * (SHOW WARNINGS, FOUND_ROWS(), ...) on a connection this session did
     * not hold would read another session's: reset it first. (A used
     * connection in the default state has the fresh signature too, so this
     * resets a new one as well; such statements are rare first statements.) */
    if (s->cmd.ar.reads_prev_stmt) {
        sessstate_forget(&be->sstate);
        s->route.clear_prev = true;
    }
    s->be = be;
    snprintf(s->be_shard, sizeof(s->be_shard), "%s", be->pool->shard);
    bufferevent_setcb(be->bev, session_relay_backend_read, NULL, session_relay_backend_event, s);
    /* Writing is always enabled (a write event is only armed while output is
     * pending); reading normally is too, so this costs no syscall. */
    bufferevent_enable(be->bev, EV_READ);
}

static void write_query(struct backend *be, const char *sql, size_t len)
{
    uint8_t hdr[PACKET_HEADER_LEN + 1];

    packet_write_header(hdr, (uint32_t)(len + 1), 0);
    hdr[PACKET_HEADER_LEN] = WIRE_COM_QUERY;
    session_out_add(be->bev, hdr, sizeof(hdr));
    session_out_add(be->bev, sql, len);
}

void session_route_forward(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    enum reply_kind kind = REPLY_QUERY;

    switch (s->cmd.code) {
    case WIRE_COM_QUERY:        kind = REPLY_QUERY; break;
    case WIRE_COM_FIELD_LIST:   kind = REPLY_FIELD_LIST; break;
    case WIRE_COM_STMT_PREPARE: kind = REPLY_PREPARE; break;
    case WIRE_COM_STMT_EXECUTE: kind = REPLY_EXECUTE; break;
    case WIRE_COM_STMT_FETCH:   kind = REPLY_FETCH; break;
    default:                    kind = REPLY_SIMPLE; break;
    }
    if (s->cmd.code == WIRE_COM_STMT_EXECUTE) {
        if (session_pstmt_forward_execute(s, in) < 0) {
            session_pstmt_refuse_execute(s, s->ps.cur, WIRE_ER_WRONG_ARGUMENTS, "HY000",
                    "shardwire: cannot forward this COM_STMT_EXECUTE (malformed, or "
                    "parameter types never sent)");
            if (s->be->state == BACKEND_BROKEN)
                session_route_detach(s, false);
            if (s->state != SESS_IDLE)
                session_set_state(s, SESS_IDLE);
            session_arm_idle_timer(s);
            /* Go on with the next command from the loop, not from here. */
            bufferevent_trigger(s->bev, EV_READ,
                                BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
    } else if (s->cmd.code == WIRE_COM_STMT_FETCH || s->cmd.code == WIRE_COM_STMT_RESET) {
        struct pstmt_backend_entry *e = pstmt_cache_find(&s->be->stmts, s->ps.cur);

        if (session_pstmt_patch_id(in, e ? e->server_id : 0) < 0) {
            session_cmd_answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                                   "shardwire: out of memory");
            if (s->state != SESS_IDLE)
                session_set_state(s, SESS_IDLE);
            session_arm_idle_timer(s);
            bufferevent_trigger(s->bev, EV_READ,
                                BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
        session_out_move(in, s->be->bev, s->cmd.bytes);
    } else if (s->route.rewritten && s->cmd.code == WIRE_COM_QUERY) {
        /* the scoped rewrite goes instead of the client's text */
        evbuffer_drain(in, s->cmd.bytes);
        write_query(s->be, s->route.rewrite.p, s->route.rewrite.len);
    } else if (s->cmd.code == WIRE_COM_STMT_PREPARE && s->ps.cur->client_sql) {
        evbuffer_drain(in, s->cmd.bytes);
        session_pstmt_write_prepare(s->be, s->ps.cur);      /* its rewrite */
    } else {
        session_out_move(in, s->be->bev, s->cmd.bytes);
    }
    stats_sent(&s->st, s->be->pool->st, s->cmd.bytes);
    s->cmd.bytes = 0;
    reply_begin(&s->relay.reply, kind, false);
    s->relay.fwd_left = 0;
    s->relay.reply_bytes = 0;
    session_set_state(s, SESS_FORWARDING);
    session_arm_timer(s, session_cfg(s)->query_timeout_ms);
}

/*
 * The backend is attached: bring it to the session's state (reset, charset,
 * tracked SETs, a deferred BEGIN), then forward the statement. Those
 * router-made statements are pipelined; their replies are checked before
 * the client's statement is sent, so a failed BEGIN can never leave the
 * statement running in autocommit.
 */
void session_route_start(struct session *s, bool begins_txn)
{
    struct backend *be = s->be;
    unsigned n = 0;

    if (!sessstate_equal(&be->sstate, &s->route.sstate)) {
        if (!sessstate_is_fresh(&be->sstate, WIRE_CHARSET_UTF8MB4_GENERAL_CI)) {
            uint8_t pkt[PACKET_HEADER_LEN + 1];

            packet_write_header(pkt, 1, 0);
            pkt[PACKET_HEADER_LEN] = WIRE_COM_RESET_CONNECTION;
            session_out_add(be->bev, pkt, sizeof(pkt));
            /* The reset deallocates the server's prepared statements too. */
            pstmt_cache_clear(&be->stmts);
            n++;
        }
        if (s->login.charset != WIRE_CHARSET_UTF8MB4_GENERAL_CI) {
            char sql[160];
            unsigned cs = session_login_charset_primary(s->login.charset);
            int len = snprintf(sql, sizeof(sql),
                               "SET character_set_client=%u, character_set_results=%u, "
                               "collation_connection=%u",
                               cs, cs, s->login.charset);

            write_query(be, sql, (size_t)len);
            n++;
        }
        for (unsigned i = 0; i < s->route.n_state_stmts; i++) {
            write_query(be, s->route.state_stmts[i], strlen(s->route.state_stmts[i]));
            n++;
        }
        sessstate_copy(&be->sstate, &s->route.sstate);
    }
    if (s->route.clear_prev) {
        /* COM_RESET_CONNECTION clears warnings but not FOUND_ROWS() */
        write_query(be, "SELECT 0 LIMIT 0", 16);
        s->route.clear_prev = false;
        n++;
    }
    s->relay.sync_had_begin = false;
    if (begins_txn && s->route.txn_pending) {
        write_query(be, s->route.begin_sql, strlen(s->route.begin_sql));
        s->route.txn_pending = false;
        s->relay.sync_had_begin = true;
        n++;
    }
    s->relay.sync_prepare = false;
    if (s->cmd.code == WIRE_COM_STMT_EXECUTE && !pstmt_cache_find(&be->stmts, s->ps.cur)) {
        /* First use of this statement on this connection: prepare it here. */
        session_pstmt_write_prepare(be, s->ps.cur);
        s->relay.sync_prepare = true;
        n++;
    }
    if (n == 0) {
        session_route_forward(s);
        return;
    }
    s->relay.sync_pending = n;
    s->relay.sync_failed = false;
    reply_begin(&s->relay.reply, n == 1 && s->relay.sync_prepare ? REPLY_PREPARE : REPLY_QUERY,
                false);
    session_set_state(s, SESS_SYNCING);
    session_arm_timer(s, session_cfg(s)->query_timeout_ms);
}

/*
 * The attached backend was opened to a master the map no longer names (the
 * pool's generation moved on). Outside a transaction it is dropped quietly
 * and the statement goes to the new master. A transaction, or state only
 * that connection held, cannot follow: the statement fails, the connection
 * is closed (so the old master rolls the transaction back), and the session
 * starts afresh. Returns true when the statement was answered.
 */
static bool drop_stale_backend(struct session *s)
{
    char msg[300];
    bool lost = s->route.in_txn || s->route.pinned || s->ps.cursor_stmt;

    if (!s->be || s->be->generation == s->be->pool->generation)
        return false;
    log_info("session: master changed under the session id=%" PRIu64 " shard=%s%s", s->id,
             s->be_shard, lost ? " (transaction or session state lost)" : "");
    session_route_detach(s, false);
    session_route_update_hold(s);
    if (!lost)
        return false;
    snprintf(msg, sizeof(msg),
             "shardwire: the master of shard %s changed during this %s; it was rolled back "
             "on the old master. Retry it.", s->be_shard,
             s->route.in_txn ? "transaction" : "session's pinned state");
    s->route.in_txn = s->route.pinned = false;
    s->ps.cursor_stmt = 0;
    session_cmd_answer_err(s, WIRE_ER_BACKEND_GONE, "HY000", msg);
    return true;
}

/*
 * A statement about to run on pool <p> that will leave the session holding
 * its connection takes its place in the shard's held count now, before it
 * runs. Returns false when the count is full (the statement was answered
 * with error 1203 and does not run).
 */
static bool reserve_hold(struct session *s, struct pool *p, bool begins_txn)
{
    unsigned cap;
    char msg[400];

    if (!will_hold(s, begins_txn) || s->route.held == p->budget)
        return true;
    cap = pinned_cap(session_cfg(s));
    if (!hold_take(p->budget, cap)) {
        snprintf(msg, sizeof(msg),
                 "shardwire: %u sessions already hold connections of shard %s between "
                 "statements (transactions, user variables, other pinned state; "
                 "pool_max_pinned_per_shard=%u); finish them, or retry later",
                 cap, p->shard, cap);
        STATS_INC(s->w->counters->backend_errors);
        s->route.pinned = s->route.pinned_before;       /* the statement does not run */
        session_cmd_answer_err(s, 1203, "42000", msg);
        return false;
    }
    if (s->route.held)
        atomic_fetch_sub(&s->route.held->held, 1);
    s->route.held = p->budget;
    return true;
}

/* Sends the statement to shard <idx> (of the worker's map). */
static void go_to_shard(struct session *s, unsigned idx, bool begins_txn)
{
    struct pool *p = worker_pool(s->w, idx);
    struct backend *be;

    if (drop_stale_backend(s))
        return;
    if (!p) {       /* the worker has no map yet (it could not apply one) */
        session_cmd_answer_err(s, WIRE_ER_CONNECT_TO_BACKEND, "HY000",
                               "shardwire: no shard map in use on this worker");
        return;
    }
    s->route.last_shard = (int)idx;
    s->route.txn_begins = begins_txn;     /* for session_backend_ready() and retries */
    if (!(s->be && s->be->pool == p))
        session_route_detach(s, true);
    if (!reserve_hold(s, p, begins_txn))
        return;
    if (s->be) {
        session_route_start(s, begins_txn);
        return;
    }
    be = pool_acquire(p, s);
    if (be) {
        backend_attach(s, be);
        session_route_start(s, begins_txn);
        return;
    }
    session_set_state(s, SESS_WAIT_POOL);
    session_arm_timer(s, session_cfg(s)->pool_wait_timeout_ms);
}

/* A statement that needs no particular shard: the attached backend, or the
 * shard used last, or the first. */
void session_route_anywhere(struct session *s)
{
    if (drop_stale_backend(s))
        return;
    if (s->be) {
        if (reserve_hold(s, s->be->pool, false))
            session_route_start(s, false);
        return;
    }
    go_to_shard(s, s->route.last_shard >= 0 && (unsigned)s->route.last_shard < s->w->n_pools ?
                       (unsigned)s->route.last_shard : 0, false);
}

void session_backend_ready(struct session *s, struct backend *be)
{
    evtimer_del(s->timer);
    session_route_unbuffer(s);
    backend_attach(s, be);
    session_route_start(s, s->route.txn_begins);
}

/* How often a held statement tries its shard again: the map may name a new
 * master by then (a failover), or the old one may answer again. A shard
 * paused for a switchover is tried more often: its pause is short. */
#define SESS_BUFFER_RETRY_MS 100
#define SESS_PAUSE_RETRY_MS  10

/*
 * The shard's master cannot be reached: hold the statement instead of
 * failing it, when it can be sent anywhere later (no transaction, no state
 * tied to a connection), for at most failover_buffer_ms, with at most
 * failover_buffer_max statements held router-wide. The client sees a pause
 * while a failover replaces the master. Returns true when held.
 */
static bool hold_statement(struct session *s, unsigned hold_ms, unsigned retry_ms)
{
    const struct config *cfg = session_cfg(s);
    uint64_t now = now_ms();
    struct timeval tv;
    unsigned ms;

    if (!hold_ms || s->route.in_txn || s->route.pinned || s->ps.cursor_stmt || s->be)
        return false;
    if (!s->route.buffer_until_ms) {
        if (atomic_fetch_add(&s->w->router->n_buffered, 1) >= cfg->failover_buffer_max) {
            atomic_fetch_sub(&s->w->router->n_buffered, 1);
            return false;
        }
        s->route.buffer_until_ms = now + hold_ms;
    }
    if (now >= s->route.buffer_until_ms)
        return false;
    ms = (unsigned)(s->route.buffer_until_ms - now);
    if (ms > retry_ms)
        ms = retry_ms;
    tv.tv_sec = 0;
    tv.tv_usec = (suseconds_t)ms * 1000;
    s->route.buffered = true;
    evtimer_add(s->timer, &tv);
    return true;
}

/* Held for a master (failover or switchover): failover_buffer_ms at most. */
static bool buffer_statement(struct session *s, unsigned retry_ms)
{
    return hold_statement(s, session_cfg(s)->failover_buffer_ms, retry_ms);
}

/* How often a statement held for a frozen vbucket looks at the map again:
 * the flip ends the freeze, and the pause should be no longer than that. */
#define SESS_MOVE_RETRY_MS 2

/*
 * The statement's vbucket is frozen for a move's cutover (docs/moves.md):
 * hold it in SESS_WAIT_POOL, the failover buffering's way, and route it
 * again from its key (never by a saved shard index) every
 * SESS_MOVE_RETRY_MS, for at most move_hold_ms. A connection kept only for
 * LAST_INSERT_ID() and the like goes back to the pool first: after the move
 * the user's rows are on another shard. Returns true when held.
 */
static bool hold_for_move(struct session *s)
{
    if (s->be && !s->route.in_txn && !s->route.pinned && !s->ps.cursor_stmt)
        session_route_detach(s, true);
    if (!hold_statement(s, session_cfg(s)->move_hold_ms, SESS_MOVE_RETRY_MS))
        return false;
    s->route.move_held = true;
    if (s->state != SESS_WAIT_POOL)
        session_set_state(s, SESS_WAIT_POOL);
    return true;
}

/* The statement is no longer held (it got a connection, or an answer). */
void session_route_unbuffer(struct session *s)
{
    if (s->route.buffer_until_ms) {
        atomic_fetch_sub(&s->w->router->n_buffered, 1);
        s->route.buffer_until_ms = 0;
    }
    s->route.buffered = false;
    s->route.move_held = false;
}

void session_backend_failed(struct session *s, const char *msg, bool unreachable)
{
    evtimer_del(s->timer);
    if (unreachable && buffer_statement(s, SESS_BUFFER_RETRY_MS))
        return;                     /* stays in WAIT_POOL; session_timer retries */
    session_route_unbuffer(s);
    STATS_INC(s->w->counters->backend_errors);
    session_cmd_answer_err(s, WIRE_ER_CONNECT_TO_BACKEND, "HY000", msg);
    session_set_state(s, SESS_IDLE);
    session_arm_idle_timer(s);
    session_cmd_process(s);
}

/*
 * Shard <sh> is paused (`shardctl switchover`): the statement is held like
 * one whose master cannot be reached and routed again from its key every
 * SESS_PAUSE_RETRY_MS, so it reaches the new master as soon as the map
 * names it. A transaction or pinned state cannot move: those statements go
 * on to the old master, which the switchover fences (they then fail).
 * Returns true when held.
 */
static bool hold_for_pause(struct session *s)
{
    if (s->route.in_txn || s->route.pinned || s->ps.cursor_stmt)
        return false;
    if (s->be && !session_route_holds_backend(s))
        session_route_release(s, true);     /* kept after a write: give it back */
    if (s->be)
        return false;
    session_set_state(s, SESS_WAIT_POOL);
    if (buffer_statement(s, SESS_PAUSE_RETRY_MS))
        return true;
    session_set_state(s, SESS_IDLE);
    return false;
}

/* Refuses the statement with error 1290 and <msg>, counted as <why>; a
 * statement held for a master (routed again) is no longer held. */
static void refuse_write(struct session *s, enum stats_reject why, const char *msg)
{
    session_route_unbuffer(s);
    stats_reject(s->w->counters, &s->st, why);
    session_cmd_answer_err(s, WIRE_ER_OPTION_PREVENTS, "HY000", msg);
}

/* The router lease (docs/failover.md): no write leaves a router whose map
 * ZooKeeper has not confirmed within map_lease_ms. Returns true when the
 * statement was refused. */
static bool refuse_without_lease(struct session *s)
{
    struct mapwatch *mw = s->w->router->mw;
    char msg[300];

    if (!s->cmd.ar.is_write || mapwatch_lease_ok(mw))
        return false;
    snprintf(msg, sizeof(msg),
             "shardwire: writes refused: this router has not heard from ZooKeeper for %" PRIu64
             " ms (map_lease_ms=%u), so its map may name a replaced master; reads are served",
             mapwatch_silence_ms(mw), session_cfg(s)->map_lease_ms);
    refuse_write(s, STATS_REJECT_LEASE, msg);
    return true;
}

/*
 * A shard whose master no semi-sync standby has acknowledged for
 * standby_lost_ms (docs/failover.md "A shard with no standby"): its commits
 * would wait until a standby returns, so a write (<commit> false) or the
 * COMMIT of a transaction that wrote (<commit> true) is refused at once
 * rather than joining them. Reads go on; the transaction stays open.
 * Returns true when the statement was refused.
 */
static bool refuse_without_standby(struct session *s, const struct smap_shard *sh, bool commit)
{
    uint64_t stalled_ms;
    char master[SMAP_ENDPOINT_STR_MAX], msg[1024];

    if (!control_writes_refused(s->w->router->control, sh->name, &stalled_ms))
        return false;
    smap_format_endpoint(&sh->master, master, sizeof(master));
    snprintf(msg, sizeof(msg),
             "shardwire: %s refused: no standby of shard %s has acknowledged a commit on its "
             "master %s for %" PRIu64 " ms (all down or cut off), and a commit there waits "
             "until one does (semi-sync never falls back, so no acknowledged write is lost); "
             "reads are served. Restart or reattach a standby (docs/failover.md)%s",
             commit ? "COMMIT" : "write", sh->name, master, stalled_ms,
             commit ? "; the transaction is still open: ROLLBACK, or COMMIT again once a "
                      "standby is back" : "");
    refuse_write(s, STATS_REJECT_NO_STANDBY, msg);
    return true;
}

/* A COMMIT (or a BEGIN, which commits first) of a transaction that wrote
 * on a shard whose writes are refused: refused too (see above). */
static bool refuse_commit_without_standby(struct session *s)
{
    const struct smap *m = s->w->map;
    uint64_t stalled_ms;
    int i;

    if (!s->be || !s->route.in_txn || !s->route.txn_changed || !m ||
        !control_writes_refused(s->w->router->control, s->be_shard, &stalled_ms))
        return false;
    i = smap_find_shard(m, s->be_shard);
    return i >= 0 && refuse_without_standby(s, smap_shard(m, (unsigned)i), true);
}

/* A write that goes to no user's shard (an admin statement an operator's
 * allow rule lets through, analyze.c: GRANT, FLUSH, OPTIMIZE ... go to the
 * binary log): the lease and the standby check as for a routed write, on
 * the shard session_route_anywhere() sends it to. */
static bool refuse_unrouted_write(struct session *s)
{
    const struct smap *m = s->w->map;
    int idx = s->route.last_shard >= 0 ? s->route.last_shard : 0, cur;

    if (!s->cmd.ar.is_write)
        return false;
    if (refuse_without_lease(s))
        return true;
    if (!m)
        return false;
    if (s->be && (cur = smap_find_shard(m, s->be_shard)) >= 0)
        idx = cur;
    return (unsigned)idx < smap_n_shards(m) &&
           refuse_without_standby(s, smap_shard(m, (unsigned)idx), false);
}

void session_route_by_key(struct session *s)
{
    const struct smap *m = s->w->map;
    uint32_t vb;
    unsigned idx, held_ms;
    const struct smap_shard *sh;

    if (!m) {
        go_to_shard(s, 0, true);        /* answers "no shard map" */
        return;
    }
    vb = vbucket_of(s->cmd.ar.key, s->cmd.ar.key_len, smap_n_vbuckets(m));
    idx = smap_shard_of_vbucket(m, vb);
    sh = smap_shard(m, idx);

    STATS_INC(s->w->counters->routed);
    stats_route(&s->st, vb);
    if (log_threshold >= LOG_DEBUG) {
        char key[ANALYZE_KEY_MAX * 4];

        log_debug("session: route id=%" PRIu64 " key=%s vbucket=%u shard=%s", s->id,
                  util_escape(key, sizeof(key), s->cmd.ar.key, s->cmd.ar.key_len), vb, sh->name);
    }
    if (s->be && s->route.in_txn && !s->route.pinned && !s->route.txn_wrote &&
        !s->route.autocommit && strcmp(s->be_shard, sh->name) != 0) {
        /* An implicit transaction (autocommit off, no BEGIN) that has only
         * read: it ends here, rolled back with its connection (nothing to
         * lose), and the statement opens the next one on its own shard
         * (docs/orms.md "Transactions with autocommit off"). */
        log_debug("session: read-only implicit transaction moves id=%" PRIu64 " from=%s to=%s",
                  s->id, s->be_shard, sh->name);
        session_route_detach(s, false);
        s->route.in_txn = false;
    }
    if (smap_vbucket_state(m, vb) != SMAP_VB_NORMAL && !vbtrack_holds(&s->route.vbs, vb)) {
        char msg[300];

        if (hold_for_move(s))
            return;
        held_ms = s->route.move_held ? session_cfg(s)->move_hold_ms : 0;
        session_route_unbuffer(s);
        snprintf(msg, sizeof(msg),
                 "shardwire: vbucket %u (%s %.*s) is being moved to another shard; %s",
                 vb, session_cfg(s)->analyze.key_columns[0], (int)s->cmd.ar.key_len,
                 s->cmd.ar.key,
                 held_ms ? "the statement was held move_hold_ms and the move's cutover did "
                           "not end; try again" :
                 s->route.in_txn || s->route.pinned ? "this transaction (or pinned session) "
                                                      "cannot reach it until the cutover "
                                                      "ends; roll back and try again" :
                 "too many statements held; try again");
        session_cmd_answer_err(s, WIRE_ER_LOCK_WAIT_TIMEOUT, "HY000", msg);
        return;
    }
    if (s->be && (s->route.in_txn || s->route.pinned) && strcmp(s->be_shard, sh->name) != 0) {
        char msg[600];

        snprintf(msg, sizeof(msg),
                 "shardwire: this %s is bound to shard %s, but %s %.*s lives on shard %s; "
                 "finish it (COMMIT or ROLLBACK) before touching another user's shard "
                 "(a transaction that wrote, locked rows or began with BEGIN cannot move)",
                 s->route.in_txn ? "transaction" : "session (it holds connection state)",
                 s->be_shard, session_cfg(s)->analyze.key_columns[0], (int)s->cmd.ar.key_len,
                 s->cmd.ar.key, sh->name);
        stats_reject(s->w->counters, &s->st, STATS_REJECT_CROSS_SHARD);
        session_cmd_answer_err(s, WIRE_ER_NOT_SUPPORTED_YET, "42000", msg);
        return;
    }
    /* a statement held for a move whose vbucket is free again goes on (one
     * held for a master keeps its failover_buffer_ms deadline) */
    if (s->route.move_held)
        session_route_unbuffer(s);
    if (refuse_without_lease(s))
        return;
    if (sh->paused && hold_for_pause(s))
        return;
    /* after the pause: a switchover leaves the old master without standbys
     * for a moment, and its held statements go to the new one */
    if (s->cmd.ar.is_write && s->cmd.code != WIRE_COM_STMT_PREPARE &&
        refuse_without_standby(s, sh, false))
        return;                         /* (its EXECUTE is refused, not the PREPARE) */
    vbtrack_enter(&s->w->router->vbt, &s->route.vbs, vb);
    if (s->cmd.ar.is_write || s->cmd.ar.locks_rows)
        s->route.txn_wrote = true;      /* cleared when no transaction remains */
    if (s->cmd.ar.is_write && s->cmd.code != WIRE_COM_STMT_PREPARE)
        s->route.txn_changed = true;    /* likewise */
    go_to_shard(s, idx, true);
}

static void handle_session_stmt(struct session *s, const char *sql, size_t len)
{
    switch (s->cmd.ar.stmt) {
    case ANALYZE_STMT_BEGIN:
        if (s->route.in_txn && s->be) {
            if (refuse_commit_without_standby(s))
                return;
            break;                          /* the backend commits and begins anew */
        }
        free(s->route.begin_sql);
        s->route.begin_sql = strndup(sql, len);
        if (!s->route.begin_sql) {
            session_cmd_answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                                   "shardwire: out of memory");
            return;
        }
        s->route.txn_pending = true;
        s->route.txn_wrote = true;      /* an explicit transaction stays on its shard */
        session_cmd_answer_ok(s);
        return;
    case ANALYZE_STMT_COMMIT:
    case ANALYZE_STMT_ROLLBACK:
        s->route.txn_scoped = false;    /* SET @shardwire_txn_user ends with it */
        if (!s->route.in_txn) {
            s->route.txn_pending = false;
            session_cmd_answer_ok(s);
            return;
        }
        if (s->cmd.ar.stmt == ANALYZE_STMT_COMMIT && refuse_commit_without_standby(s))
            return;
        break;
    case ANALYZE_STMT_SAVEPOINT:
        if (s->route.txn_pending && !s->route.in_txn) {
            session_cmd_answer_err(s, WIRE_ER_NOT_SUPPORTED_YET, "42000",
                    "shardwire: SAVEPOINT before the transaction's first statement: the "
                    "shard is not known yet; run a statement for the user first");
            return;
        }
        break;
    case ANALYZE_STMT_SET:
        if (s->cmd.ar.pins_session)
            break;                          /* user variables: pinned, not replayed */
        {
            char msg[300];

            /* Kept twice: in the list and in the state text. */
            if (session_mem_check(s, 2 * len + 2, msg, sizeof(msg)) != SESS_MEM_OK) {
                session_cmd_answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", msg);
                return;
            }
        }
        /* Without its copy the SET could not be replayed on other
         * connections: it must not run at all. */
        free(s->route.pending_set);
        s->route.pending_set = fault_fail("set_copy") ? NULL : strndup(sql, len);
        if (!s->route.pending_set) {
            session_cmd_answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                                   "shardwire: out of memory; the SET was not run");
            return;
        }
        s->cmd.kind = SESS_CMD_TRACK_SET;
        if (s->cmd.ar.sets_sql_mode)
            s->route.pending_modes = (int)s->cmd.ar.sql_mode;
        break;
    default:
        break;
    }
    if (refuse_unrouted_write(s))
        return;
    if (s->cmd.ar.pins_session)
        s->route.pinned = true;
    session_route_anywhere(s);
}

/* Operator rules, then the analyzer; then route, answer, or refuse. */
void session_route_query(struct session *s, const uint8_t *payload, size_t payload_len)
{
    const char *sql = (const char *)payload + 1;
    size_t len = payload_len - 1;

    session_route_analyze(s, sql, len, false);
    if (s->route.move_cut && session_move_answer_cut(s, s->cmd.ar.stmt == ANALYZE_STMT_ROLLBACK))
        return;
    switch (s->cmd.ar.kind) {
    case ANALYZE_REJECT:
        session_route_reject(s, sql, len);
        return;
    case ANALYZE_LOCAL:
        if (s->cmd.ar.scope != ANALYZE_SCOPE_NONE && s->cmd.ar.param_index >= 0) {
            session_cmd_answer_err(s, WIRE_ER_PARSE, "42000",
                                   "shardwire: '?' placeholders need a prepared statement");
            return;
        }
        if (s->cmd.ar.scope != ANALYZE_SCOPE_NONE)
            session_route_set_scope(s, s->cmd.ar.scope, !s->cmd.ar.scope_clear, s->cmd.ar.key,
                                    s->cmd.ar.key_len);
        session_cmd_answer_ok(s);
        return;
    case ANALYZE_ROUTE:
        if (s->cmd.ar.param_index >= 0) {
            session_cmd_answer_err(s, WIRE_ER_PARSE, "42000",
                                   "shardwire: '?' placeholders need a prepared statement");
            return;
        }
        if (s->cmd.ar.pins_session)
            s->route.pinned = true;
        session_route_by_key(s);
        return;
    case ANALYZE_SESSION:
        handle_session_stmt(s, sql, len);
        return;
    }
}

/*
 * Back to a fresh session (COM_RESET_CONNECTION, COM_CHANGE_USER): tracked
 * state, transaction, pins and prepared statements are dropped. The backend
 * keeps our old state; a reset before its next use clears it (an open
 * transaction dies with the connection).
 */
void session_route_reset_state(struct session *s)
{
    if (s->be) {
        sessstate_forget(&s->be->sstate);
        session_route_detach(s, !s->route.in_txn);
    }
    for (unsigned i = 0; i < s->route.n_state_stmts; i++)
        free(s->route.state_stmts[i]);
    s->route.n_state_stmts = 0;
    s->route.state_bytes = 0;
    s->route.in_txn = s->route.txn_pending = s->route.pinned = false;
    s->route.txn_wrote = s->route.txn_changed = false;
    s->route.move_cut = false;      /* the transaction it would hear of is gone anyway */
    s->route.autocommit = true;
    s->route.sql_modes = 0;
    s->route.scoped = s->route.txn_scoped = false;
    s->ps.cursor_stmt = 0;
    session_route_update_hold(s);
    pstmt_table_fini(&s->ps.stmts);
    session_route_recompute_sig(s);
}

/*
 * Sends the statement in flight again, choosing its shard afresh. The map may
 * have changed since the statement was first routed, and shard indexes shift
 * when a shard is added (shards are sorted by name), so a saved index could
 * name another shard or none.
 */
void session_route_again(struct session *s)
{
    if (s->cmd.ar.kind == ANALYZE_ROUTE &&
        !(s->cmd.code == WIRE_COM_STMT_PREPARE && s->cmd.ar.param_index >= 0))
        session_route_by_key(s);
    else
        session_route_anywhere(s);
}
