/*
 * router/session.c - a session's life: accepting the client and sending the
 * greeting, state moves, timers, writing router-made packets to the client,
 * the memory a session holds, and closing.
 *
 * The other parts live beside it (router/session_int.h joins them):
 * session_login.c (how a client logs in), session_cmd.c (how a command is
 * framed, and the commands the router answers itself), session_pstmt.c
 * (prepared statements), session_route.c (where a statement goes:
 * routing, transactions, tracked session state, failover buffering) and
 * session_relay.c (how a reply travels back, and losing a backend).
 *
 * Must never: block, decode rows, or free a session inside its own
 * callback chain (session_close() hands it to the worker's reaper).
 */
#include "router/session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/packet.h"
#include "protocol/wire.h"
#include "router/backend.h"
#include "router/config.h"
#include "router/fault.h"
#include "router/log.h"
#include "router/pool.h"
#include "router/session_int.h"
#include "router/util.h"
#include "router/worker.h"

static void session_timer(evutil_socket_t fd, short what, void *arg);

static const char *const end_names[] = {
    "none", "quit", "client_eof", "client_timeout", "auth", "protocol",
    "backend_lost", "pool_timeout", "resource", "shutdown", "pinned_timeout",
};

static const char *const state_names[] = {
    "greeting", "auth_switch", "idle", "wait_pool", "syncing", "forwarding",
    "closing", "closed",
};

const char *sess_end_name(enum sess_end e)
{
    return end_names[e];
}

const char *sess_state_name(enum sess_state st)
{
    return state_names[st];
}

/* Legal moves; everything may go to CLOSING/CLOSED. */
static bool legal_move(enum sess_state from, enum sess_state to)
{
    if (to == SESS_CLOSING || to == SESS_CLOSED)
        return from != SESS_CLOSED;
    switch (from) {
    case SESS_GREETING:   return to == SESS_AUTH_SWITCH || to == SESS_IDLE;
    case SESS_AUTH_SWITCH: return to == SESS_IDLE;
    case SESS_IDLE:       return to == SESS_WAIT_POOL || to == SESS_SYNCING ||
                                 to == SESS_FORWARDING || to == SESS_AUTH_SWITCH;
    case SESS_WAIT_POOL:  return to == SESS_SYNCING || to == SESS_FORWARDING ||
                                 to == SESS_IDLE;
    case SESS_SYNCING:    return to == SESS_FORWARDING || to == SESS_IDLE;
    /* (SYNCING -> IDLE -> ... also covers the retry on a new connection.) */
    case SESS_FORWARDING: return to == SESS_IDLE;
    default:              return false;
    }
}

/* A session state as the client-connection gauges count it. */
static const int sess_conn[] = {
    [SESS_GREETING] = STATS_CONN_LOGIN,  [SESS_AUTH_SWITCH] = STATS_CONN_LOGIN,
    [SESS_IDLE] = STATS_CONN_IDLE,       [SESS_WAIT_POOL] = STATS_CONN_WAITING,
    [SESS_SYNCING] = STATS_CONN_ACTIVE,  [SESS_FORWARDING] = STATS_CONN_ACTIVE,
    [SESS_CLOSING] = STATS_CONN_CLOSING, [SESS_CLOSED] = STATS_CONN_CLOSING,
};

void session_set_state(struct session *s, enum sess_state to)
{
    if (!legal_move(s->state, to)) {
        log_error("session: illegal state move id=%" PRIu64 " from=%s to=%s", s->id,
                  state_names[s->state], state_names[to]);
        abort();
    }
    log_debug("session: state id=%" PRIu64 " %s -> %s", s->id, state_names[s->state],
              state_names[to]);
    stats_conn_move(s->w->counters, sess_conn[s->state], sess_conn[to]);
    s->state = to;
    if (to == SESS_IDLE || to == SESS_CLOSING || to == SESS_CLOSED)
        session_route_update_hold(s);
    /* a statement is over, and with it any transaction: a move's freeze of
     * its vbuckets no longer waits for it (router/vbtrack.h) */
    if ((to == SESS_IDLE && !s->route.in_txn) || to == SESS_CLOSING || to == SESS_CLOSED)
        vbtrack_leave(&s->w->router->vbt, &s->route.vbs);
}

void session_arm_timer(struct session *s, unsigned ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    if (ms == 0) {
        evtimer_del(s->timer);
        return;
    }
    evtimer_add(s->timer, &tv);
}

/* Idle: the general timeout, or the short one while holding a connection. */
void session_arm_idle_timer(struct session *s)
{
    const struct config *cfg = session_cfg(s);
    unsigned ms = cfg->idle_timeout_ms;

    if (s->be && cfg->pinned_idle_timeout_ms &&
        (ms == 0 || cfg->pinned_idle_timeout_ms < ms))
        ms = cfg->pinned_idle_timeout_ms;
    session_arm_timer(s, ms);
}

/* evbuffer_pullup() checked: NULL when the first <n> bytes of <buf> cannot
 * be made contiguous (out of memory; fault point "pullup"). */
uint8_t *session_pullup(struct evbuffer *buf, size_t n)
{
    if (fault_fail("pullup"))
        return NULL;
    return evbuffer_pullup(buf, (ev_ssize_t)n);
}

/* ---- writing to a peer's stream ----
 *
 * libevent reports a failed evbuffer_add() (out of memory), but
 * evbuffer_remove_buffer() drops what it cannot copy and still reports
 * success. Either way the stream to that peer (client or backend) has lost
 * bytes and can never be valid again, and the peer would wait for them
 * forever. So its socket is shut down: the event loop then reports the peer
 * gone, and the paths that exist for that run (a client: the session ends;
 * a backend: it is lost and the client gets error 2013).
 */
static void stream_broken(struct bufferevent *bev)
{
    int fd = bufferevent_getfd(bev);

    log_warn("session: out of memory writing to a connection; closing it fd=%d", fd);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/* Appends <n> bytes at <p> to <bev>'s output. */
void session_out_add(struct bufferevent *bev, const void *p, size_t n)
{
    if (evbuffer_add(bufferevent_get_output(bev), p, n) < 0)
        stream_broken(bev);
}

/* Moves the first <n> bytes of <src> to <bev>'s output. */
void session_out_move(struct evbuffer *src, struct bufferevent *bev, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    size_t before = evbuffer_get_length(out);

    evbuffer_remove_buffer(src, out, n);
    /* A filter (TLS) may consume its output as it is added, so its length
     * says nothing: only socket bufferevents are checked. */
    if (!bufferevent_get_underlying(bev) && evbuffer_get_length(out) != before + n)
        stream_broken(bev);
}

/* ---- writing packets to the client ---- */

void session_send_packet(struct session *s, uint8_t seq, const uint8_t *payload, size_t len)
{
    uint8_t hdr[PACKET_HEADER_LEN];

    /* Router-made packets are small; PACKET_MAX_PAYLOAD is never reached. */
    packet_write_header(hdr, (uint32_t)len, seq);
    session_out_add(s->bev, hdr, sizeof(hdr));
    session_out_add(s->bev, payload, len);
}

void session_send_err(struct session *s, uint8_t seq, uint16_t err_no, const char *sqlstate,
                      const char *msg)
{
    uint8_t buf[600];
    size_t n = strlen(msg);

    if (n > sizeof(buf) - 16)
        n = sizeof(buf) - 16;
    stats_error(s->w->counters, err_no, STATS_FROM_ROUTER);
    session_send_packet(s, seq, buf, reply_write_err(buf, err_no, sqlstate, msg, n));
}

uint16_t session_client_status(const struct session *s)
{
    uint16_t st = 0;

    if (s->route.autocommit)
        st |= WIRE_STATUS_AUTOCOMMIT;
    if (s->route.in_txn || s->route.txn_pending)
        st |= WIRE_STATUS_IN_TRANS;
    return st;
}

void session_send_ok(struct session *s, uint8_t seq)
{
    uint8_t buf[64];

    session_send_packet(s, seq, buf,
                        reply_write_ok(buf, 0, 0, session_client_status(s), 0, NULL, 0));
}

/* ---- memory budgets ----
 *
 * What a client can make the router hold beyond a session's fixed size:
 * its unprocessed input (half-received and pipelined commands), prepared
 * statement texts, long data, tracked SETs (kept twice: the list and the
 * state text), and a joined multi-packet command. Each session has
 * session_memory_limit; all together have router_memory_limit (an atomic
 * count every session settles into). Past either, what would grow is
 * refused with error 1041 naming the limit.
 */

static size_t session_mem(const struct session *s)
{
    return s->ps.stmts.bytes + s->route.state_bytes + s->route.sstate.len + s->cmd.scratch_cap +
           evbuffer_get_length(bufferevent_get_input(s->bev));
}

/* Brings the router-wide count up to date with what <s> holds now. */
void session_mem_settle(struct session *s)
{
    struct router *r = s->w->router;
    size_t now = session_mem(s);

    if (now >= s->mem_charged)
        atomic_fetch_add(&r->mem_used, now - s->mem_charged);
    else
        atomic_fetch_sub(&r->mem_used, s->mem_charged - now);
    s->mem_charged = now;
}

/* Whether <extra> more bytes fit, once the command in flight (whose bytes
 * are still in the input) is consumed. The message goes to <msg>. */
enum session_mem_verdict session_mem_check(struct session *s, size_t extra, char *msg, size_t cap)
{
    const struct config *cfg = session_cfg(s);
    uint64_t mine = (uint64_t)session_mem(s) - s->cmd.bytes + extra;
    uint64_t all = atomic_load(&s->w->router->mem_used) - s->mem_charged + mine;

    if (mine > cfg->session_memory_limit) {
        snprintf(msg, cap, "shardwire: this session would hold %" PRIu64 " bytes (prepared "
                 "statements, long data, session SETs, unread commands), over "
                 "session_memory_limit=%" PRIu64, mine, cfg->session_memory_limit);
        stats_reject(s->w->counters, &s->st, STATS_REJECT_MEMORY);
        return SESS_MEM_SESSION;
    }
    if (all > cfg->router_memory_limit) {
        snprintf(msg, cap, "shardwire: the router's sessions would hold %" PRIu64 " bytes, over "
                 "router_memory_limit=%" PRIu64 "; try again later", all,
                 cfg->router_memory_limit);
        stats_reject(s->w->counters, &s->st, STATS_REJECT_MEMORY);
        return SESS_MEM_ROUTER;
    }
    return SESS_MEM_OK;
}

/* ---- lifecycle ---- */

struct session *session_new(struct worker *w, int fd, const char *peer)
{
    const struct config *cfg = w->router->cfg;
    struct session *s = calloc(1, sizeof(*s));
    struct handshake_greeting g;
    uint8_t buf[256];
    int n;

    if (!s) {
        close(fd);
        return NULL;
    }
    s->w = w;
    s->id = atomic_fetch_add(&w->router->next_session_id, 1) + 1;
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    s->state = SESS_GREETING;
    s->route.autocommit = true;
    s->route.last_shard = -1;
    s->route.pending_modes = -1;
    s->login.charset = WIRE_CHARSET_UTF8MB4_GENERAL_CI;
    evutil_make_socket_nonblocking(fd);
    s->bev = s->raw_bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    s->timer = evtimer_new(w->base, session_timer, s);
    if (!s->bev || !s->timer || RAND_bytes(s->login.scramble, sizeof(s->login.scramble)) != 1) {
        if (s->bev)
            bufferevent_free(s->bev);
        else
            close(fd);
        if (s->timer)
            event_free(s->timer);
        free(s);
        return NULL;
    }
    /* Scramble bytes must not be NUL (the greeting NUL-terminates them) and
     * stay printable ASCII like MySQL's own. */
    for (size_t i = 0; i < sizeof(s->login.scramble); i++)
        s->login.scramble[i] = (uint8_t)(33 + s->login.scramble[i] % 94);
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    s->st.start_ms = now_ms();
    STATS_INC(w->counters->sessions_accepted);
    stats_conn_move(w->counters, -1, sess_conn[s->state]);

    g.server_version = cfg->server_version;
    g.connection_id = (uint32_t)s->id;
    memcpy(g.scramble, s->login.scramble, sizeof(g.scramble));
    g.capabilities = SESS_SERVER_CAPS | (w->router->tls ? WIRE_CAP_SSL : 0);
    g.charset = WIRE_CHARSET_UTF8MB4_GENERAL_CI;
    g.status = WIRE_STATUS_AUTOCOMMIT;
    n = handshake_write_greeting(buf, sizeof(buf), &g);
    if (n < 0) {
        session_close(s, SESS_END_RESOURCE);
        return s;
    }
    bufferevent_setcb(s->bev, session_client_read, session_client_write, session_client_event, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, cfg->max_allowed_packet + 65536);
    bufferevent_setwatermark(s->bev, EV_WRITE, SESS_OUT_LOW, 0);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    wflush_track(&s->wf, w, s->bev);    /* out of memory: libevent writes */
    session_send_packet(s, 0, buf, (size_t)n);
    session_arm_timer(s, cfg->handshake_timeout_ms);
    log_debug("session: accepted id=%" PRIu64 " peer=%s worker=%u", s->id, s->peer, w->id);
    return s;
}

void session_close(struct session *s, enum sess_end end)
{
    bool clean;
    char user[sizeof(s->login.user) * 4];

    if (s->state == SESS_CLOSED)
        return;
    s->end = end;
    log_info("session end id=%" PRIu64 " peer=%s user=%s end=%s state=%s shard=%s stmts=%u",
             s->id, s->peer,
             s->login.user[0] ? util_escape(user, sizeof(user), s->login.user,
                                            strlen(s->login.user)) : "-",
             end_names[end], state_names[s->state], s->be_shard[0] ? s->be_shard : "-",
             s->n_stmts);
    if (s->route.waiting_pool)
        pool_cancel_wait(s->route.waiting_pool, s);
    session_route_unbuffer(s);
    clean = s->state != SESS_FORWARDING && s->state != SESS_SYNCING;
    session_route_detach(s, clean);
    evtimer_del(s->timer);
    wflush_untrack(&s->wf, false);
    bufferevent_disable(s->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
    session_set_state(s, SESS_CLOSED);
    worker_reap(s->w, s);
}

/* Our side is written out: half-close, and wait (briefly) for the client. */
static void shut_write_when_flushed(struct session *s)
{
    if (s->wr_shut || evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
        return;
    s->wr_shut = true;
    if (!s->login.tls)        /* a TLS peer gets its close_notify when we free */
        shutdown(bufferevent_getfd(s->bev), SHUT_WR);
}

/*
 * Sends what is queued (a final ERR), then closes. A lingering close: the
 * client may still be sending (an oversize packet, say); closing with
 * unread input would reset the connection and could destroy the ERR before
 * the client reads it. So: flush, half-close, discard input until the
 * client closes or 2 s pass.
 */
void session_close_after_flush(struct session *s, enum sess_end end)
{
    s->end = end;
    if (s->route.waiting_pool)
        pool_cancel_wait(s->route.waiting_pool, s);
    session_route_unbuffer(s);
    evtimer_del(s->timer);
    session_route_detach(s, s->state != SESS_FORWARDING && s->state != SESS_SYNCING);
    session_set_state(s, SESS_CLOSING);
    bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
    bufferevent_enable(s->bev, EV_READ);
    evbuffer_drain(bufferevent_get_input(s->bev),
                   evbuffer_get_length(bufferevent_get_input(s->bev)));
    session_arm_timer(s, 2000);
    shut_write_when_flushed(s);
    session_mem_settle(s);          /* its input is gone */
}

void session_free(struct session *s)
{
    struct worker *w = s->w;

    if (s->prev)
        s->prev->next = s->next;
    else
        w->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    /* The filter first: it refers to the SSL and the socket's bufferevent,
     * which this session owns and frees after it. */
    wflush_untrack(&s->wf, false);
    if (s->bev != s->raw_bev)
        bufferevent_free(s->bev);
    if (s->login.ssl)
        SSL_free(s->login.ssl);
    bufferevent_free(s->raw_bev);
    event_free(s->timer);
    free(s->cmd.scratch);
    free(s->route.begin_sql);
    scope_buf_fini(&s->route.rewrite);
    free(s->route.pending_set);
    pstmt_table_fini(&s->ps.stmts);
    for (unsigned i = 0; i < s->route.n_state_stmts; i++)
        free(s->route.state_stmts[i]);
    sessstate_fini(&s->route.sstate);
    atomic_fetch_sub(&w->router->mem_used, s->mem_charged);
    stats_conn_move(w->counters, sess_conn[s->state], -1);
    atomic_fetch_sub(&w->router->n_clients, 1);
    free(s);
    worker_session_gone(w);
}

void session_shutdown(struct session *s)
{
    switch (s->state) {
    case SESS_GREETING:
    case SESS_AUTH_SWITCH:
    case SESS_IDLE:
        session_close(s, SESS_END_SHUTDOWN);
        break;
    case SESS_CLOSING:
    case SESS_CLOSED:
        break;
    default:
        s->shutdown_after = true;
        break;
    }
}

void session_kill(struct session *s)
{
    if (s->state == SESS_CLOSED)
        return;
    if (s->state == SESS_WAIT_POOL || s->state == SESS_SYNCING ||
        (s->state == SESS_FORWARDING && s->relay.reply_bytes == 0)) {
        session_send_err(s, (uint8_t)(s->cmd.last_seq + 1), WIRE_ER_SERVER_SHUTDOWN, "08S01",
                         "shardwire: server shutdown in progress");
    }
    session_close(s, SESS_END_SHUTDOWN);
}

/* The whole first packet in <in>, or 0 if it has not all arrived; -1 if
 * it is larger than any handshake packet can be. */
int session_peek_packet(struct evbuffer *in, uint32_t limit, struct packet_header *h)
{
    uint8_t hdr[PACKET_HEADER_LEN];

    if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ssize_t)sizeof(hdr))
        return 0;
    packet_read_header(hdr, sizeof(hdr), h);
    if (h->payload_len > limit)
        return -1;
    if (evbuffer_get_length(in) < PACKET_HEADER_LEN + (size_t)h->payload_len)
        return 0;
    return 1;
}

/* ---- client callbacks and timers ---- */

void session_client_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (s->state >= SESS_IDLE && s->state <= SESS_FORWARDING && session_cmd_input_over_budget(s))
        return;
    switch (s->state) {
    case SESS_GREETING:
        session_login_handshake(s);
        break;
    case SESS_AUTH_SWITCH:
        session_login_auth_switch(s);
        break;
    case SESS_IDLE:
        session_cmd_run(s);
        break;
    case SESS_CLOSING:
        evbuffer_drain(bufferevent_get_input(s->bev),
                       evbuffer_get_length(bufferevent_get_input(s->bev)));
        break;
    default:
        break;      /* pipelined: handled when the statement in flight ends */
    }
    session_mem_settle(s);
}

void session_client_write(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (s->state == SESS_CLOSING) {
        shut_write_when_flushed(s);
        return;
    }
    if (s->relay.be_paused && s->be) {
        s->relay.be_paused = false;
        bufferevent_enable(s->be->bev, EV_READ);
        session_relay(s);
    }
    if (s->cmd.out_blocked && s->state != SESS_CLOSED && s->state != SESS_CLOSING) {
        s->cmd.out_blocked = false;
        if (s->state == SESS_IDLE)
            session_cmd_process(s);
    }
}

void session_client_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        session_close(s, s->state == SESS_CLOSING ? s->end : SESS_END_CLIENT_EOF);
}

static void session_timer(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    char msg[400];

    (void)fd;
    (void)what;
    switch (s->state) {
    case SESS_IDLE:
        if (s->be && !session_route_holds_backend(s)) {
            /* Kept for one more statement after a write: give it back. */
            session_route_release(s, true);
            session_arm_idle_timer(s);
            return;
        }
        session_close(s, session_route_holds_backend(s) ? SESS_END_PINNED_TIMEOUT
                                                         : SESS_END_CLIENT_TIMEOUT);
        return;
    case SESS_GREETING:
    case SESS_AUTH_SWITCH:
    case SESS_CLOSING:
        session_close(s, s->state == SESS_CLOSING ? s->end : SESS_END_CLIENT_TIMEOUT);
        return;
    case SESS_WAIT_POOL: {
        struct pool *p = s->route.waiting_pool;

        if (s->route.buffered) {
            /* Held for a master: route again from the key (the map may
             * name a new one now). */
            s->route.buffered = false;
            session_set_state(s, SESS_IDLE);
            session_route_again(s);
            if (s->state == SESS_IDLE) {
                /* answered at once (a move's hold ran out): go on with the
                 * client's next command, as after any answer */
                session_arm_idle_timer(s);
                session_cmd_process(s);
            }
            return;
        }
        session_route_unbuffer(s);
        if (p) {
            pool_cancel_wait(p, s);
            STATS_INC(p->st->pool_timeouts);
        }
        snprintf(msg, sizeof(msg),
                 "shardwire: no connection to shard %s within %u ms (%s)",
                 p ? p->shard : "?", session_cfg(s)->pool_wait_timeout_ms,
                 p && p->last_error[0] ? p->last_error : "pool exhausted");
        STATS_INC(s->w->counters->backend_errors);
        session_cmd_answer_err(s, WIRE_ER_CONNECT_TO_BACKEND, "HY000", msg);
        session_set_state(s, SESS_IDLE);
        session_arm_idle_timer(s);
        session_cmd_process(s);
        return;
    }
    case SESS_SYNCING:
    case SESS_FORWARDING:
        session_relay_backend_lost(s, "query timeout");
        return;
    case SESS_CLOSED:
        return;
    }
}
