/*
 * router/session_relay.c - how a reply travels back: the replies to
 * router-made statements, relaying the client's reply byte for byte, the
 * end of a statement, and losing the backend mid-statement.
 *
 * Must never: forward a LOCAL INFILE request, or decode rows.
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
#include "router/log.h"
#include "router/pool.h"
#include "router/util.h"
#include "router/worker.h"

static void statement_done(struct session *s)
{
    const struct reply *r = &s->relay.reply;

    evtimer_del(s->timer);
    stats_reply(s->w->counters, &s->st, r->is_error, r->err_no, r->rows,
                s->relay.reply_bytes);
    /* A PREPARE reply carries no status flags. */
    if (!r->is_error && s->route.pending_modes >= 0)
        s->route.sql_modes = (unsigned)s->route.pending_modes;
    s->route.pending_modes = -1;
    if (!r->is_error && s->cmd.code != WIRE_COM_STMT_PREPARE) {
        s->route.in_txn = (r->status & WIRE_STATUS_IN_TRANS) != 0;
        if (!s->route.in_txn)
            s->route.txn_wrote = s->route.txn_changed = false;
        s->route.autocommit = (r->status & WIRE_STATUS_AUTOCOMMIT) != 0;
        if (r->insert_id)
            s->route.last_insert_id = r->insert_id;
    }
    if (s->cmd.code == WIRE_COM_STMT_PREPARE)
        session_pstmt_prepare_done(s);
    else if (s->cmd.code == WIRE_COM_STMT_EXECUTE && !r->is_error &&
             (r->status & WIRE_STATUS_CURSOR_EXISTS))
        s->ps.cursor_stmt = s->ps.cur->id;     /* FETCH must find this connection */
    if (s->route.pending_set) {
        if (!r->is_error) {
            if (s->route.n_state_stmts < SESS_MAX_STATE_STMTS) {
                s->route.state_bytes += strlen(s->route.pending_set) + 1;
                s->route.state_stmts[s->route.n_state_stmts++] = s->route.pending_set;
                s->route.pending_set = NULL;
                session_route_recompute_sig(s);
                sessstate_copy(&s->be->sstate, &s->route.sstate);
            } else {
                s->route.pinned = true;   /* too much state to replay: stay put */
            }
        }
        free(s->route.pending_set);
        s->route.pending_set = NULL;
    }
    session_set_state(s, SESS_IDLE);
    if (s->shutdown_after) {
        session_close_after_flush(s, SESS_END_SHUTDOWN);
        return;
    }
    /* Multiplexing: with nothing tying the session to this connection, it
     * goes back to the pool. Kept: inside a transaction, with state we
     * cannot replay, with an open cursor, and after a write, a warning or an
     * error, so that LAST_INSERT_ID(), ROW_COUNT(), SHOW WARNINGS and SHOW
     * ERRORS that follow see the right connection; a PREPARE in between
     * (drivers prepare the SELECT LAST_INSERT_ID() they run next) does not
     * count as that statement. */
    if (s->be && !s->route.in_txn && !s->route.pinned && !s->ps.cursor_stmt && !r->is_error &&
        r->warnings == 0 && !s->cmd.ar.is_write &&
        !(s->cmd.code == WIRE_COM_STMT_PREPARE && s->ps.kept_be))
        session_route_detach(s, true);
    session_arm_idle_timer(s);
}

/* The backend connection failed while the session used it. */
void session_relay_backend_lost(struct session *s, const char *why)
{
    char msg[400];
    bool in_txn = s->route.in_txn;

    unsigned suppressed;

    STATS_INC(s->w->counters->backend_errors);
    if (log_limit_pass(&s->w->backend_lost_log, now_ms(), 5000, &suppressed))
        log_warn("session: backend lost id=%" PRIu64 " shard=%s state=%s why=%s suppressed=%u",
                 s->id, s->be_shard, sess_state_name(s->state), why, suppressed);
    snprintf(msg, sizeof(msg), "shardwire: lost connection to shard %s during the statement (%s)%s",
             s->be_shard, why, in_txn ? "; the transaction was rolled back" : "");
    if (s->state == SESS_SYNCING && !in_txn && !s->route.pinned && !s->ps.cursor_stmt &&
        !s->route.retried) {
        /* The client's statement was not sent yet: a pooled connection that
         * died while idle is replaced without the client noticing, once. */
        session_route_detach(s, false);
        s->route.retried = true;
        if (s->relay.sync_had_begin)
            s->route.txn_pending = true;
        session_set_state(s, SESS_IDLE);
        log_info("session: retrying on a new connection id=%" PRIu64 " shard=%s", s->id,
                 s->be_shard);
        session_route_again(s);
        return;
    }
    if (s->state == SESS_SYNCING || s->state == SESS_FORWARDING) {
        bool partial = s->state == SESS_FORWARDING && s->relay.reply_bytes > 0;

        if (s->state == SESS_SYNCING)
            session_cmd_consume(s);
        session_route_detach(s, false);
        s->route.in_txn = false;
        stats_answer(s->w->counters, &s->st, true);
        session_send_err(s, partial ? (uint8_t)(s->relay.last_seq + 1)
                                    : (uint8_t)(s->cmd.last_seq + 1),
                         WIRE_ER_BACKEND_GONE, "HY000", msg);
        if (partial || in_txn) {
            session_close_after_flush(s, SESS_END_BACKEND_LOST);
            return;
        }
        session_set_state(s, SESS_IDLE);
        session_arm_idle_timer(s);
        session_cmd_process(s);
        return;
    }
    /* Idle with a backend attached. Cut because the master changed
     * (pool_cut_busy): the old master has rolled back what it held; the
     * session stays, and its next statement hears of it (drop_stale_backend
     * in session_route.c). */
    if (s->be->generation != s->be->pool->generation) {
        bufferevent_disable(s->be->bev, EV_READ | EV_WRITE);
        bufferevent_setcb(s->be->bev, NULL, NULL, NULL, NULL);
        return;
    }
    session_route_detach(s, false);
    s->route.in_txn = false;
    session_route_update_hold(s);
    if (in_txn)
        session_close_after_flush(s, SESS_END_BACKEND_LOST);
}

/* Reads the replies to router-made statements; returns true when they are
 * all in (the statement may go on or has been failed). */
static void sync_read(struct session *s, struct evbuffer *in)
{
    while (s->relay.sync_pending > 0) {
        struct packet_header h;
        const uint8_t *p;
        int k = session_peek_packet(in, PACKET_MAX_PAYLOAD, &h);

        if (k <= 0)
            return;
        p = session_pullup(in, PACKET_HEADER_LEN + h.payload_len);
        if (!p) {
            session_relay_backend_lost(s, "out of memory");
            return;
        }
        p += PACKET_HEADER_LEN;
        if (s->relay.reply.state == REPLY_FIRST && h.payload_len > 0 &&
            p[0] == WIRE_HDR_LOCAL_INFILE) {
            session_relay_backend_lost(s, "the server asked for a local file (LOAD DATA LOCAL)");
            return;
        }
        k = reply_feed(&s->relay.reply, p, h.payload_len, h.payload_len);
        if (k < 0) {
            session_relay_backend_lost(s, "malformed reply");
            return;
        }
        if (k == 1 && s->relay.reply.is_error && !s->relay.sync_failed) {
            size_t off, n;
            uint16_t err_no;

            s->relay.sync_failed = true;
            if (reply_parse_err(p, h.payload_len, &err_no, &off, &n) == 0) {
                s->relay.sync_errno = err_no;
                snprintf(s->relay.sync_err, sizeof(s->relay.sync_err), "%.*s",
                         (int)(n > 200 ? 200 : n), (const char *)p + off);
            }
        }
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        if (k == 1) {
            if (s->relay.sync_pending == 1 && s->relay.sync_prepare && !s->relay.reply.is_error) {
                uint32_t evicted;

                int k = pstmt_cache_add(&s->be->stmts, s->ps.cur, s->relay.reply.stmt_id, &evicted);

                /* Not cached (-1): session_pstmt_forward_execute() then refuses the EXECUTE. */
                if (k != 0)
                    session_pstmt_write_close(s->be, k > 0 ? evicted : s->relay.reply.stmt_id);
            }
            s->relay.sync_pending--;
            reply_begin(&s->relay.reply,
                        s->relay.sync_pending == 1 && s->relay.sync_prepare ? REPLY_PREPARE
                                                                            : REPLY_QUERY,
                        false);
        }
    }
    if (s->relay.sync_failed) {
        char msg[400];

        /* The backend's state is now unknown: reset it before any reuse. */
        sessstate_forget(&s->be->sstate);
        snprintf(msg, sizeof(msg), "shardwire: could not prepare shard %s connection: %s",
                 s->be_shard, s->relay.sync_err);
        session_cmd_answer_err(s, s->relay.sync_errno ? s->relay.sync_errno : WIRE_ER_UNKNOWN,
                               "HY000", msg);
        session_set_state(s, SESS_IDLE);
        session_arm_idle_timer(s);
        session_cmd_process(s);
        return;
    }
    session_route_forward(s);
}

/*
 * Moves reply packets from the backend to the client, judging each packet by
 * its header and first bytes only. Large packets are streamed as they come.
 */
void session_relay(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->be->bev);
    struct evbuffer *out = bufferevent_get_output(s->bev);

    for (;;) {
        size_t have = evbuffer_get_length(in);

        if (s->relay.fwd_left > 0) {
            size_t n = have < s->relay.fwd_left ? have : s->relay.fwd_left;

            if (n == 0)
                break;
            session_out_move(in, s->bev, n);
            s->relay.fwd_left -= (uint32_t)n;
            s->relay.reply_bytes += n;
            continue;
        }
        if (s->relay.reply.state == REPLY_DONE)
            break;
        {
            uint8_t head[PACKET_HEADER_LEN + REPLY_PEEK];
            struct packet_header h;
            size_t need;
            bool first = s->relay.reply.state == REPLY_FIRST && !s->relay.reply.in_continuation;
            int k;

            if (have < PACKET_HEADER_LEN)
                break;
            evbuffer_copyout(in, head, PACKET_HEADER_LEN);
            packet_read_header(head, PACKET_HEADER_LEN, &h);
            need = h.payload_len < REPLY_PEEK ? h.payload_len : REPLY_PEEK;
            if (have < PACKET_HEADER_LEN + need)
                break;
            evbuffer_copyout(in, head, PACKET_HEADER_LEN + need);
            if (first && need > 0 && head[PACKET_HEADER_LEN] == WIRE_HDR_LOCAL_INFILE) {
                /* The shard asks for a file from the client (LOAD DATA
                 * LOCAL). Forwarded, a client library with local files on
                 * would send one. Never forwarded: the client gets an error
                 * and the connection, whose server now waits for file
                 * contents, is dropped. */
                session_relay_backend_lost(s, "the server asked for a local file (LOAD DATA "
                                              "LOCAL), which the router never forwards");
                return;
            }
            k = reply_feed(&s->relay.reply, head + PACKET_HEADER_LEN, need, h.payload_len);
            if (k < 0) {
                session_relay_backend_lost(s, "malformed reply");
                return;
            }
            s->relay.last_seq = h.seq;
            if (s->cmd.code == WIRE_COM_STMT_PREPARE && s->relay.reply_bytes == 0 &&
                head[PACKET_HEADER_LEN] == WIRE_HDR_OK && h.payload_len <= REPLY_PEEK) {
                /* The client gets our statement id, not the server's. */
                packet_put_u32(head + PACKET_HEADER_LEN + 1, s->ps.cur->id);
                evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
                session_out_add(s->bev, head, PACKET_HEADER_LEN + h.payload_len);
                s->relay.reply_bytes += PACKET_HEADER_LEN + h.payload_len;
                continue;
            }
            s->relay.fwd_left = PACKET_HEADER_LEN + h.payload_len;
        }
    }
    if (s->relay.reply.state == REPLY_DONE && s->relay.fwd_left == 0) {
        if (evbuffer_get_length(in) > 0) {
            session_relay_backend_lost(s, "data after the end of the reply");
            return;
        }
        statement_done(s);
        if (s->state == SESS_IDLE)
            session_cmd_process(s);
        return;
    }
    if (evbuffer_get_length(out) > SESS_OUT_HIGH) {
        /* The client reads slower than the backend sends: wait for it. */
        bufferevent_disable(s->be->bev, EV_READ);
        s->relay.be_paused = true;
    }
}

void session_relay_backend_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    switch (s->state) {
    case SESS_SYNCING:
        sync_read(s, in);
        return;
    case SESS_FORWARDING:
        session_relay(s);
        return;
    default:
        session_relay_backend_lost(s, "unexpected data from the server");
        return;
    }
}

void session_relay_backend_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        session_relay_backend_lost(s, (what & BEV_EVENT_EOF) ? "connection closed by the server"
                                                              : "connection error");
}
