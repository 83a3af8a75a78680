/*
 * router/session.c - the client side of the router: handshake, auth,
 * command dispatch, routing, backend state sync, and reply relaying.
 *
 * Must never: block, decode rows, or free a session inside its own
 * callback chain (session_close() hands it to the worker's reaper).
 */
#include "router/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "protocol/packet.h"
#include "protocol/stmt.h"
#include "protocol/wire.h"
#include "router/backend.h"
#include "router/config.h"
#include "router/fault.h"
#include "router/decide.h"
#include "router/log.h"
#include "router/pool.h"
#include "router/rules.h"
#include "router/util.h"
#include "router/worker.h"
#include "shardmap/smap.h"
#include "shardmap/vbucket.h"

/* What we offer clients (plus SSL when TLS is configured). Not offered, on
 * purpose: COMPRESS, LOCAL_FILES (LOAD DATA LOCAL is refused), MULTI_STATEMENTS (one
 * statement per query, so each is analysed), DEPRECATE_EOF and
 * SESSION_TRACK (backend connections use neither, so replies are relayed
 * byte for byte), FOUND_ROWS (backend connections report changed rows). */
#define SESS_SERVER_CAPS                                                           \
    (WIRE_CAP_LONG_PASSWORD | WIRE_CAP_LONG_FLAG | WIRE_CAP_CONNECT_WITH_DB |      \
     WIRE_CAP_NO_SCHEMA | WIRE_CAP_ODBC | WIRE_CAP_IGNORE_SPACE |                  \
     WIRE_CAP_PROTOCOL_41 | WIRE_CAP_INTERACTIVE | WIRE_CAP_IGNORE_SIGPIPE |       \
     WIRE_CAP_TRANSACTIONS | WIRE_CAP_SECURE_CONNECTION | WIRE_CAP_MULTI_RESULTS | \
     WIRE_CAP_PS_MULTI_RESULTS | WIRE_CAP_PLUGIN_AUTH | WIRE_CAP_CONNECT_ATTRS |   \
     WIRE_CAP_PLUGIN_AUTH_LENENC)

#define SESS_BURST            32          /* statements per wakeup before yielding */
#define SESS_OUT_HIGH         (1u << 20)  /* pause the backend above this much unsent */
#define SESS_OUT_LOW          (256u << 10)

static void client_read(struct bufferevent *bev, void *arg);
static void client_write(struct bufferevent *bev, void *arg);
static void client_event(struct bufferevent *bev, short what, void *arg);
static void backend_read(struct bufferevent *bev, void *arg);
static void backend_event(struct bufferevent *bev, short what, void *arg);
static void session_timer(evutil_socket_t fd, short what, void *arg);
static void process_commands(struct session *s);
static int command_ready(struct session *s, size_t *payload_len);
static void session_close(struct session *s, enum sess_end end);
static void refuse_execute(struct session *s, struct pstmt *ps, uint16_t err_no,
                           const char *sqlstate, const char *msg);

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

static void update_hold(struct session *s);
static void unbuffer(struct session *s);

static void session_set_state(struct session *s, enum sess_state to)
{
    if (!legal_move(s->state, to)) {
        log_error("session: illegal state move id=%" PRIu64 " from=%s to=%s", s->id,
                  state_names[s->state], state_names[to]);
        abort();
    }
    log_debug("session: state id=%" PRIu64 " %s -> %s", s->id, state_names[s->state],
              state_names[to]);
    s->state = to;
    if (to == SESS_IDLE || to == SESS_CLOSING || to == SESS_CLOSED)
        update_hold(s);
}

static const struct config *cfg_of(const struct session *s)
{
    return s->w->router->cfg;
}

static void arm_timer(struct session *s, unsigned ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    if (ms == 0) {
        evtimer_del(s->timer);
        return;
    }
    evtimer_add(s->timer, &tv);
}

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

static bool holds_backend(const struct session *s)
{
    return s->be && (s->in_txn || s->pinned || s->cursor_stmt);
}

/* Makes the budget's count agree with whether <s> holds its connection. */
static void update_hold(struct session *s)
{
    struct pool_budget *b = holds_backend(s) ? s->be->pool->budget : NULL;

    if (b == s->held)
        return;
    if (s->held)
        atomic_fetch_sub(&s->held->held, 1);
    if (b)
        atomic_fetch_add(&b->held, 1);
    s->held = b;
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
    return s->pinned || s->ar.pins_session || s->cursor_stmt || s->in_txn || !s->autocommit ||
           (begins_txn && s->txn_pending);
}

/* Idle: the general timeout, or the short one while holding a connection. */
static void arm_idle_timer(struct session *s)
{
    const struct config *cfg = cfg_of(s);
    unsigned ms = cfg->idle_timeout_ms;

    if (s->be && cfg->pinned_idle_timeout_ms &&
        (ms == 0 || cfg->pinned_idle_timeout_ms < ms))
        ms = cfg->pinned_idle_timeout_ms;
    arm_timer(s, ms);
}

/* evbuffer_pullup() checked: NULL when the first <n> bytes of <buf> cannot
 * be made contiguous (out of memory; fault point "pullup"). */
static uint8_t *pullup(struct evbuffer *buf, size_t n)
{
    if (fault_fail("pullup"))
        return NULL;
    return evbuffer_pullup(buf, (ev_ssize_t)n);
}

/* ---- writing packets to the client ---- */

static void send_packet(struct session *s, uint8_t seq, const uint8_t *payload, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    uint8_t hdr[PACKET_HEADER_LEN];

    /* Router-made packets are small; PACKET_MAX_PAYLOAD is never reached. */
    packet_write_header(hdr, (uint32_t)len, seq);
    evbuffer_add(out, hdr, sizeof(hdr));
    evbuffer_add(out, payload, len);
}

static void send_err(struct session *s, uint8_t seq, uint16_t err_no, const char *sqlstate,
                     const char *msg)
{
    uint8_t buf[600];
    size_t n = strlen(msg);

    if (n > sizeof(buf) - 16)
        n = sizeof(buf) - 16;
    send_packet(s, seq, buf, reply_write_err(buf, err_no, sqlstate, msg, n));
}

static uint16_t client_status(const struct session *s)
{
    uint16_t st = 0;

    if (s->autocommit)
        st |= WIRE_STATUS_AUTOCOMMIT;
    if (s->in_txn || s->txn_pending)
        st |= WIRE_STATUS_IN_TRANS;
    return st;
}

static void send_ok(struct session *s, uint8_t seq)
{
    uint8_t buf[64];

    send_packet(s, seq, buf, reply_write_ok(buf, 0, 0, client_status(s), 0, NULL, 0));
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
    return s->stmts.bytes + s->state_bytes + s->sstate.len + s->scratch_cap +
           evbuffer_get_length(bufferevent_get_input(s->bev));
}

/* Brings the router-wide count up to date with what <s> holds now. */
static void mem_settle(struct session *s)
{
    struct router *r = s->w->router;
    size_t now = session_mem(s);

    if (now >= s->mem_charged)
        atomic_fetch_add(&r->mem_used, now - s->mem_charged);
    else
        atomic_fetch_sub(&r->mem_used, s->mem_charged - now);
    s->mem_charged = now;
}

enum mem_verdict { MEM_OK, MEM_SESSION, MEM_ROUTER };

/* Whether <extra> more bytes fit, once the command in flight (whose bytes
 * are still in the input) is consumed. The message goes to <msg>. */
static enum mem_verdict mem_check(struct session *s, size_t extra, char *msg, size_t cap)
{
    const struct config *cfg = cfg_of(s);
    uint64_t mine = (uint64_t)session_mem(s) - s->cmd_bytes + extra;
    uint64_t all = atomic_load(&s->w->router->mem_used) - s->mem_charged + mine;

    if (mine > cfg->session_memory_limit) {
        snprintf(msg, cap, "shardwire: this session would hold %" PRIu64 " bytes (prepared "
                 "statements, long data, session SETs, unread commands), over "
                 "session_memory_limit=%" PRIu64, mine, cfg->session_memory_limit);
        return MEM_SESSION;
    }
    if (all > cfg->router_memory_limit) {
        snprintf(msg, cap, "shardwire: the router's sessions would hold %" PRIu64 " bytes, over "
                 "router_memory_limit=%" PRIu64 "; try again later", all,
                 cfg->router_memory_limit);
        return MEM_ROUTER;
    }
    return MEM_OK;
}

/* ---- session state (SET statements replayed on other backends) ---- */

/* Out of memory leaves the session's state unknown: it then matches no
 * connection, so every statement replays it (slow, never wrong). */
static void recompute_sig(struct session *s)
{
    sessstate_build(&s->sstate, s->state_stmts, s->n_state_stmts, s->charset);
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
    s->autocommit = true;
    s->last_shard = -1;
    s->charset = WIRE_CHARSET_UTF8MB4_GENERAL_CI;
    evutil_make_socket_nonblocking(fd);
    s->bev = s->raw_bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    s->timer = evtimer_new(w->base, session_timer, s);
    if (!s->bev || !s->timer || RAND_bytes(s->scramble, sizeof(s->scramble)) != 1) {
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
    for (size_t i = 0; i < sizeof(s->scramble); i++)
        s->scramble[i] = (uint8_t)(33 + s->scramble[i] % 94);
    s->next = w->sessions;
    if (w->sessions)
        w->sessions->prev = s;
    w->sessions = s;
    atomic_fetch_add(&w->stats.sessions_accepted, 1);
    atomic_fetch_add(&w->stats.sessions_open, 1);

    g.server_version = cfg->server_version;
    g.connection_id = (uint32_t)s->id;
    memcpy(g.scramble, s->scramble, sizeof(g.scramble));
    g.capabilities = SESS_SERVER_CAPS | (w->router->tls ? WIRE_CAP_SSL : 0);
    g.charset = WIRE_CHARSET_UTF8MB4_GENERAL_CI;
    g.status = WIRE_STATUS_AUTOCOMMIT;
    n = handshake_write_greeting(buf, sizeof(buf), &g);
    if (n < 0) {
        session_close(s, SESS_END_RESOURCE);
        return s;
    }
    bufferevent_setcb(s->bev, client_read, client_write, client_event, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, cfg->max_allowed_packet + 65536);
    bufferevent_setwatermark(s->bev, EV_WRITE, SESS_OUT_LOW, 0);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    send_packet(s, 0, buf, (size_t)n);
    arm_timer(s, cfg->handshake_timeout_ms);
    log_debug("session: accepted id=%" PRIu64 " peer=%s worker=%u", s->id, s->peer, w->id);
    return s;
}

/* Gives the backend back (or drops it) when the session stops using it. */
static void detach_backend(struct session *s, bool reusable)
{
    struct backend *be = s->be;

    if (!be)
        return;
    s->be = NULL;
    /* Reading stays enabled: the pool watches idle connections too, and
     * every disable/enable pair would cost two epoll_ctl calls. */
    bufferevent_setcb(be->bev, NULL, NULL, NULL, NULL);
    if (!reusable || s->in_txn) {
        s->be_insert_id = false;
        pool_discard(be);
        return;
    }
    /* It holds state we cannot see (locks, LAST_INSERT_ID(expr), user
     * variables, an auto-increment id of this user's row): reset before
     * reuse, so no other session reads it. */
    if (s->pinned || s->be_insert_id)
        sessstate_forget(&be->sstate);
    s->be_insert_id = false;
    pool_release(be);
}

/* Gives the backend back as detach_backend() does, and the session's
 * claim on its shard's pinned budget with it when it is between
 * statements. */
static void release_backend(struct session *s, bool reusable)
{
    detach_backend(s, reusable);
    if (s->state == SESS_IDLE)
        update_hold(s);
}

static void session_close(struct session *s, enum sess_end end)
{
    bool clean;
    char user[sizeof(s->user) * 4];

    if (s->state == SESS_CLOSED)
        return;
    s->end = end;
    log_info("session end id=%" PRIu64 " peer=%s user=%s end=%s state=%s shard=%s stmts=%u",
             s->id, s->peer,
             s->user[0] ? util_escape(user, sizeof(user), s->user, strlen(s->user)) : "-",
             end_names[end], state_names[s->state], s->be_shard[0] ? s->be_shard : "-",
             s->n_stmts);
    if (s->waiting_pool)
        pool_cancel_wait(s->waiting_pool, s);
    unbuffer(s);
    clean = s->state != SESS_FORWARDING && s->state != SESS_SYNCING;
    detach_backend(s, clean);
    evtimer_del(s->timer);
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
    if (!s->tls)        /* a TLS peer gets its close_notify when we free */
        shutdown(bufferevent_getfd(s->bev), SHUT_WR);
}

/*
 * Sends what is queued (a final ERR), then closes. A lingering close: the
 * client may still be sending (an oversize packet, say); closing with
 * unread input would reset the connection and could destroy the ERR before
 * the client reads it. So: flush, half-close, discard input until the
 * client closes or 2 s pass.
 */
static void close_after_flush(struct session *s, enum sess_end end)
{
    s->end = end;
    if (s->waiting_pool)
        pool_cancel_wait(s->waiting_pool, s);
    unbuffer(s);
    evtimer_del(s->timer);
    detach_backend(s, s->state != SESS_FORWARDING && s->state != SESS_SYNCING);
    session_set_state(s, SESS_CLOSING);
    bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
    bufferevent_enable(s->bev, EV_READ);
    evbuffer_drain(bufferevent_get_input(s->bev),
                   evbuffer_get_length(bufferevent_get_input(s->bev)));
    arm_timer(s, 2000);
    shut_write_when_flushed(s);
    mem_settle(s);          /* its input is gone */
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
    if (s->bev != s->raw_bev)
        bufferevent_free(s->bev);
    if (s->ssl)
        SSL_free(s->ssl);
    bufferevent_free(s->raw_bev);
    event_free(s->timer);
    free(s->scratch);
    free(s->begin_sql);
    free(s->pending_set);
    pstmt_table_fini(&s->stmts);
    for (unsigned i = 0; i < s->n_state_stmts; i++)
        free(s->state_stmts[i]);
    sessstate_fini(&s->sstate);
    atomic_fetch_sub(&w->router->mem_used, s->mem_charged);
    atomic_fetch_sub(&w->stats.sessions_open, 1);
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
        (s->state == SESS_FORWARDING && s->reply_bytes == 0)) {
        send_err(s, (uint8_t)(s->cmd_last_seq + 1), WIRE_ER_SERVER_SHUTDOWN, "08S01",
                 "shardwire: server shutdown in progress");
    }
    session_close(s, SESS_END_SHUTDOWN);
}

/* ---- handshake ---- */

/*
 * Checks the client's proof <tok>/<len> for user <u>. An unknown user (<u>
 * NULL) gets the same hash work against a throw-away hash, so the time of
 * the answer does not tell which user names exist.
 */
static bool auth_check(const struct session *s, const struct config_user *u,
                       const uint8_t *tok, size_t len)
{
    static const uint8_t no_user[HANDSHAKE_SHA1_LEN];
    bool ok = handshake_native_check(s->scramble, tok, len, u ? u->stage2 : no_user,
                                     u ? u->empty_password : false);

    /* (A test counts this point: the hash work ran, known user or not.) */
    if (fault_fail("auth_check"))
        ok = false;
    return u && ok;
}

/* <with_password>: the client sent a non-empty proof (the server's "using
 * password: YES/NO"). */
static void auth_failed(struct session *s, uint8_t seq, const char *user, size_t user_len,
                        bool with_password)
{
    char msg[256];

    snprintf(msg, sizeof(msg), "Access denied for user '%.*s'@'%s' (using password: %s)",
             (int)(user_len > 64 ? 64 : user_len), user, s->peer, with_password ? "YES" : "NO");
    send_err(s, seq, WIRE_ER_ACCESS_DENIED, "28000", msg);
    close_after_flush(s, SESS_END_AUTH);
}

/*
 * Takes the client's user name <name>/<len> as the session's. A name that
 * does not fit is refused rather than cut: a cut name could be another
 * configured user's, looked up again after an auth switch. Returns 0, or
 * -1 when refused (access denied sent).
 */
static int set_user(struct session *s, uint8_t seq, const char *name, size_t len,
                    bool with_password)
{
    if (len >= sizeof(s->user) || memchr(name, 0, len)) {
        s->user[0] = 0;
        auth_failed(s, seq, name, len, with_password);
        return -1;
    }
    memcpy(s->user, name, len);
    s->user[len] = 0;
    return 0;
}

/* Authentication passed: check the database, say OK, go idle. */
static void auth_ok(struct session *s, uint8_t seq, const char *db, size_t db_len)
{
    const struct config *cfg = cfg_of(s);

    if (db_len && (strlen(cfg->analyze.database) != db_len ||
                   memcmp(db, cfg->analyze.database, db_len) != 0)) {
        char msg[256];

        snprintf(msg, sizeof(msg),
                 "shardwire: access denied to database '%.*s': this router serves only '%s'",
                 (int)(db_len > 64 ? 64 : db_len), db, cfg->analyze.database);
        send_err(s, seq, WIRE_ER_DBACCESS_DENIED, "42000", msg);
        close_after_flush(s, SESS_END_AUTH);
        return;
    }
    send_ok(s, seq);
    session_set_state(s, SESS_IDLE);
    arm_idle_timer(s);
    if (log_threshold >= LOG_DEBUG) {
        char user[sizeof(s->user) * 4];

        log_debug("session: authenticated id=%" PRIu64 " user=%s", s->id,
                  util_escape(user, sizeof(user), s->user, strlen(s->user)));
    }
}

/* The whole first packet in <in>, or 0 if it has not all arrived; -1 if
 * it is larger than any handshake packet can be. */
static int peek_packet(struct evbuffer *in, uint32_t limit, struct packet_header *h)
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

/*
 * The client sent an SSLRequest: from here on the connection is TLS. The
 * socket's bufferevent gets an OpenSSL filter on top; the handshake
 * response then arrives through it.
 *
 * The filter is made without BEV_OPT_CLOSE_ON_FREE, so the session keeps
 * owning the SSL object and the socket's bufferevent: with that option,
 * libevent frees both itself when making the filter fails part way, and the
 * caller cannot tell whether it did (freeing them again is a double free).
 */
static void start_tls(struct session *s)
{
    SSL *ssl = fault_fail("ssl_new") ? NULL : SSL_new(s->w->router->tls);
    struct bufferevent *tls = NULL;

    if (!ssl) {
        close_after_flush(s, SESS_END_RESOURCE);
        return;
    }
    bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
    if (!fault_fail("tls_filter"))
        tls = bufferevent_openssl_filter_new(s->w->base, s->bev, ssl,
                                             BUFFEREVENT_SSL_ACCEPTING, 0);
    if (!tls) {
        SSL_free(ssl);      /* ours alone: see above */
        bufferevent_setcb(s->bev, client_read, client_write, client_event, s);
        close_after_flush(s, SESS_END_RESOURCE);
        return;
    }
    s->ssl = ssl;
    s->bev = tls;
    s->tls = true;
    bufferevent_setcb(s->bev, client_read, client_write, client_event, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, cfg_of(s)->max_allowed_packet + 65536);
    bufferevent_setwatermark(s->bev, EV_WRITE, SESS_OUT_LOW, 0);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/*
 * The collation a client's handshake may announce, as the id used on the
 * backends, or -1. Only character sets the analyzer reads as the server
 * does are allowed (docs/query-rules.md): in gbk, sjis and friends a
 * multi-byte character can end in a backslash byte and hide a quote, and in
 * latin1 byte 0xa0 is whitespace. utf8mb4_0900_ai_ci (255, MySQL 8 clients'
 * default) becomes utf8mb4_unicode_ci, which MariaDB knows.
 */
/* The character set's own (primary) collation id, which is what
 * character_set_client/results accept as a number. */
static unsigned charset_primary(uint8_t id)
{
    if (id == 11 || id == 65)
        return 11;                  /* ascii */
    if (id == 63)
        return 63;                  /* binary */
    if (id == 33 || id == 83 || (id >= 192 && id <= 215) || id == 223)
        return 33;                  /* utf8mb3 */
    return 45;                      /* utf8mb4 */
}

/* The collation id to use for a client's <id>, or -1 when refused. With
 * string keys only utf8mb4 and binary: a literal is converted from the
 * client's character set to utf8mb4 before it is compared, and ascii or
 * utf8mb3 would turn a key's characters they cannot hold into '?'
 * (docs/query-rules.md, section 5). */
static int client_charset(uint8_t id, enum analyze_key_type kt)
{
    if (id == 255)
        return 224;
    if (id == 45 || id == 46 || id == 63 || (id >= 224 && id <= 247))
        return id;
    if (kt == ANALYZE_KEY_INT &&
        (id == 11 || id == 33 || id == 65 || id == 83 || (id >= 192 && id <= 215) || id == 223))
        return id;
    return -1;
}

static void handle_handshake(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    const struct config *cfg = cfg_of(s);
    struct handshake_response r;
    struct packet_header h;
    const struct config_user *u;
    const uint8_t *p;
    int k = peek_packet(in, 65536, &h);

    if (k == 0)
        return;
    if (k < 0) {
        send_err(s, 2, WIRE_ER_HANDSHAKE, "08S01", "Bad handshake");
        close_after_flush(s, SESS_END_PROTOCOL);
        return;
    }
    p = pullup(in, PACKET_HEADER_LEN + h.payload_len);
    if (!p) {
        send_err(s, (uint8_t)(h.seq + 1), WIRE_ER_OUT_OF_RESOURCES, "HY000",
                 "shardwire: out of memory");
        close_after_flush(s, SESS_END_RESOURCE);
        return;
    }
    p += PACKET_HEADER_LEN;
    if (handshake_parse_response(p, h.payload_len, &r) < 0) {
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        send_err(s, (uint8_t)(h.seq + 1), WIRE_ER_HANDSHAKE, "08S01", "Bad handshake");
        close_after_flush(s, SESS_END_PROTOCOL);
        return;
    }
    if (r.ssl_request) {
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        if (!s->w->router->tls || s->tls) {
            send_err(s, (uint8_t)(h.seq + 1), WIRE_ER_HANDSHAKE, "08S01",
                     s->tls ? "Bad handshake" : "shardwire: TLS is not enabled on this router");
            close_after_flush(s, SESS_END_PROTOCOL);
            return;
        }
        start_tls(s);
        return;
    }
    if (cfg->require_secure_transport && !s->tls) {
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        send_err(s, (uint8_t)(h.seq + 1), 3159, "08004",
                 "Connections using insecure transport are prohibited while "
                 "--require_secure_transport=ON.");
        close_after_flush(s, SESS_END_AUTH);
        return;
    }
    s->client_caps = r.capabilities & (SESS_SERVER_CAPS | WIRE_CAP_SSL);
    if (r.charset && client_charset(r.charset, cfg->analyze.key_type) < 0) {
        char msg[200];

        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        snprintf(msg, sizeof(msg),
                 "shardwire: the client character set (collation id %u) is not supported; "
                 "connect with utf8mb4 (or binary%s)", r.charset,
                 cfg->analyze.key_type == ANALYZE_KEY_INT ? ", utf8mb3, ascii" : "");
        send_err(s, (uint8_t)(h.seq + 1), 1115, "42000", msg);
        close_after_flush(s, SESS_END_PROTOCOL);
        return;
    }
    if (r.charset)
        s->charset = (uint8_t)client_charset(r.charset, cfg->analyze.key_type);
    recompute_sig(s);
    if (set_user(s, (uint8_t)(h.seq + 1), (const char *)p + r.user_off, r.user_len,
                 r.auth_len > 0) < 0) {
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        return;
    }
    u = config_find_user(cfg, s->user, strlen(s->user));

    if (r.plugin_len && !(r.plugin_len == strlen(HANDSHAKE_NATIVE_PLUGIN) &&
                          memcmp(p + r.plugin_off, HANDSHAKE_NATIVE_PLUGIN, r.plugin_len) == 0)) {
        uint8_t buf[64];
        size_t db_off = r.db_off, db_len = r.db_len;

        /* Keep the database name for after the switch: in the scratch buffer. */
        free(s->scratch);
        s->scratch = db_len ? strndup((const char *)p + db_off, db_len) : NULL;
        s->scratch_cap = db_len;
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        send_packet(s, (uint8_t)(h.seq + 1), buf, (size_t)handshake_write_auth_switch(buf, s->scramble));
        session_set_state(s, SESS_AUTH_SWITCH);
        return;
    }
    if (!auth_check(s, u, p + r.auth_off, r.auth_len)) {
        bool with_password = r.auth_len > 0;

        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        auth_failed(s, (uint8_t)(h.seq + 1), s->user, strlen(s->user), with_password);
        return;
    }
    {
        char db[ANALYZE_NAME_MAX * 2];
        size_t n = r.db_len < sizeof(db) ? r.db_len : sizeof(db) - 1;

        memcpy(db, p + r.db_off, n);
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        auth_ok(s, (uint8_t)(h.seq + 1), db, n);
    }
}

static void handle_auth_switch(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    const struct config_user *u = config_find_user(cfg_of(s), s->user, strlen(s->user));
    struct packet_header h;
    const uint8_t *p;
    int k = peek_packet(in, 1024, &h);
    char *db = s->scratch;

    if (k == 0)
        return;
    if (k < 0) {
        send_err(s, 4, WIRE_ER_HANDSHAKE, "08S01", "Bad handshake");
        close_after_flush(s, SESS_END_PROTOCOL);
        return;
    }
    p = pullup(in, PACKET_HEADER_LEN + h.payload_len);
    if (!p) {
        send_err(s, (uint8_t)(h.seq + 1), WIRE_ER_OUT_OF_RESOURCES, "HY000",
                 "shardwire: out of memory");
        close_after_flush(s, SESS_END_RESOURCE);
        return;
    }
    p += PACKET_HEADER_LEN;
    if (!auth_check(s, u, p, h.payload_len)) {
        bool with_password = h.payload_len > 0;

        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        auth_failed(s, (uint8_t)(h.seq + 1), s->user, strlen(s->user), with_password);
        return;
    }
    evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
    s->scratch = NULL;
    s->scratch_cap = 0;
    auth_ok(s, (uint8_t)(h.seq + 1), db, db ? strlen(db) : 0);
    free(db);
}

/* ---- commands ---- */

/*
 * Finds the command at the head of the client's input: all its packets
 * (a payload of exactly PACKET_MAX_PAYLOAD continues). Returns 1 with
 * <s->cmd_bytes>/<s->cmd_last_seq>/<*payload_len> set, 0 if it has not all
 * arrived, -1 if it is larger than max_allowed_packet.
 */
static int command_ready(struct session *s, size_t *payload_len)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t have = evbuffer_get_length(in), pos = 0, total = 0;
    uint32_t limit = cfg_of(s)->max_allowed_packet;

    for (;;) {
        uint8_t hdr[PACKET_HEADER_LEN];
        struct evbuffer_ptr ptr;
        uint32_t len;

        if (have < pos + PACKET_HEADER_LEN)
            return 0;
        if (evbuffer_ptr_set(in, &ptr, pos, EVBUFFER_PTR_SET) < 0 ||
            evbuffer_copyout_from(in, &ptr, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr))
            return 0;
        len = packet_u24(hdr);
        total += len;
        if (total > limit)
            return -1;
        pos += PACKET_HEADER_LEN + len;
        if (have < pos)
            return 0;
        if (len < PACKET_MAX_PAYLOAD) {
            s->cmd_bytes = pos;
            s->cmd_last_seq = hdr[3];
            *payload_len = total;
            return 1;
        }
    }
}

/* The command's payload as one contiguous block (joined into s->scratch
 * when it spans packets). NULL when out of memory. */
static const uint8_t *command_payload(struct session *s, size_t payload_len)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t pos = 0, at = 0;

    if (s->cmd_bytes == PACKET_HEADER_LEN + payload_len) {
        const uint8_t *p = pullup(in, s->cmd_bytes);

        return p ? p + PACKET_HEADER_LEN : NULL;
    }
    if (s->scratch_cap < payload_len) {
        char *n = realloc(s->scratch, payload_len);

        if (!n)
            return NULL;
        s->scratch = n;
        s->scratch_cap = payload_len;
    }
    while (at < payload_len) {
        uint8_t hdr[PACKET_HEADER_LEN];
        struct evbuffer_ptr ptr;
        uint32_t len;

        evbuffer_ptr_set(in, &ptr, pos, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(in, &ptr, hdr, sizeof(hdr));
        len = packet_u24(hdr);
        evbuffer_ptr_set(in, &ptr, pos + PACKET_HEADER_LEN, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(in, &ptr, s->scratch + at, len);
        at += len;
        pos += PACKET_HEADER_LEN + len;
    }
    return (const uint8_t *)s->scratch;
}

/* The command was answered by the router: drop its packets. */
static void consume_command(struct session *s)
{
    evbuffer_drain(bufferevent_get_input(s->bev), s->cmd_bytes);
    s->cmd_bytes = 0;
}

static void answer_ok(struct session *s)
{
    consume_command(s);
    send_ok(s, (uint8_t)(s->cmd_last_seq + 1));
}

static void answer_err(struct session *s, uint16_t err_no, const char *sqlstate,
                       const char *msg)
{
    consume_command(s);
    send_err(s, (uint8_t)(s->cmd_last_seq + 1), err_no, sqlstate, msg);
}

/* The analyzer's decision, then the operator's rules on top (docs/config.md). */
static void analyze_with_rules(struct session *s, const char *sql, size_t len)
{
    int rc = decide_statement(s->w->analyze, s->w->router->rules, sql, len, &s->ar);

    if (rc < 0)
        log_warn("session: analyzer out of memory id=%" PRIu64, s->id);
    else if (rc > 0)
        log_debug("session: rule applied id=%" PRIu64, s->id);
}

static void reject_statement(struct session *s, const char *sql, size_t len)
{
    const struct analyze_result *ar = &s->ar;
    char msg[512];
    size_t off = ar->offset < len ? ar->offset : len;
    size_t n = len - off < 40 ? len - off : 40;

    atomic_fetch_add(&s->w->stats.rejected, 1);
    if (n > 0)
        snprintf(msg, sizeof(msg), "%s (near '%.*s' at offset %zu)",
                 ar->msg ? ar->msg : "shardwire: statement refused", (int)n, sql + off, off);
    else
        snprintf(msg, sizeof(msg), "%s", ar->msg ? ar->msg : "shardwire: statement refused");
    answer_err(s, ar->err_no ? ar->err_no : WIRE_ER_NOT_SUPPORTED_YET,
               ar->sqlstate[0] ? ar->sqlstate : "42000", msg);
}

static void backend_attach(struct session *s, struct backend *be)
{
    /* A statement reading what the connection's previous statement left
     * (SHOW WARNINGS, FOUND_ROWS(), ...) on a connection this session did
     * not hold would read another session's: reset it first. (A used
     * connection in the default state has the fresh signature too, so this
     * resets a new one as well; such statements are rare first statements.) */
    if (s->ar.reads_prev_stmt) {
        sessstate_forget(&be->sstate);
        s->clear_prev = true;
    }
    s->be = be;
    snprintf(s->be_shard, sizeof(s->be_shard), "%s", be->pool->shard);
    bufferevent_setcb(be->bev, backend_read, NULL, backend_event, s);
    /* Writing is always enabled (a write event is only armed while output is
     * pending); reading normally is too, so this costs no syscall. */
    bufferevent_enable(be->bev, EV_READ);
}

static void write_query(struct backend *be, const char *sql, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(be->bev);
    uint8_t hdr[PACKET_HEADER_LEN + 1];

    packet_write_header(hdr, (uint32_t)(len + 1), 0);
    hdr[PACKET_HEADER_LEN] = WIRE_COM_QUERY;
    evbuffer_add(out, hdr, sizeof(hdr));
    evbuffer_add(out, sql, len);
}

static void write_stmt_close(struct backend *be, uint32_t server_id)
{
    uint8_t pkt[PACKET_HEADER_LEN + 5];

    packet_write_header(pkt, 5, 0);
    pkt[PACKET_HEADER_LEN] = WIRE_COM_STMT_CLOSE;
    packet_put_u32(pkt + PACKET_HEADER_LEN + 1, server_id);
    evbuffer_add(bufferevent_get_output(be->bev), pkt, sizeof(pkt));
}

static void write_prepare(struct backend *be, const struct pstmt *ps)
{
    struct evbuffer *out = bufferevent_get_output(be->bev);
    uint8_t hdr[PACKET_HEADER_LEN + 1];

    packet_write_header(hdr, (uint32_t)(ps->sql_len + 1), 0);
    hdr[PACKET_HEADER_LEN] = WIRE_COM_STMT_PREPARE;
    evbuffer_add(out, hdr, sizeof(hdr));
    evbuffer_add(out, ps->sql, ps->sql_len);
}

/* Rewrites the statement id of the packet at the head of <buf> (a COM_STMT_*
 * command: the id follows the command byte). Returns 0, or -1 when out of
 * memory (nothing changed). */
static int patch_stmt_id(struct evbuffer *buf, uint32_t id)
{
    uint8_t *p = pullup(buf, PACKET_HEADER_LEN + 5);

    if (!p)
        return -1;
    packet_put_u32(p + PACKET_HEADER_LEN + 1, id);
    return 0;
}

/*
 * Moves an EXECUTE to the backend under the server's statement id, after
 * the statement's buffered long data. If the server has not seen this
 * statement's parameter types (it was prepared there lazily, and this
 * client sends types only on its first EXECUTE), they are put back into the
 * packet. Returns 0, or -1 if the packet cannot be rewritten (then nothing
 * was sent).
 */
static int forward_execute(struct session *s, struct evbuffer *in, struct evbuffer *out)
{
    struct pstmt *ps = s->cur_ps;
    struct pstmt_backend_entry *e = pstmt_cache_find(&s->be->stmts, ps);
    size_t payload_len = s->cmd_bytes - PACKET_HEADER_LEN;
    struct stmt_execute ex;
    bool need_types;
    uint8_t *p;

    if (!e)
        return -1;
    p = pullup(in, s->cmd_bytes < PACKET_HEADER_LEN + PACKET_MAX_PAYLOAD
                       ? s->cmd_bytes : PACKET_HEADER_LEN + PACKET_MAX_PAYLOAD);
    /* Only the first packet is contiguous at <p>; the fields parsed here all
     * lie in it. */
    if (!p || stmt_parse_execute(p + PACKET_HEADER_LEN,
                                 payload_len < PACKET_MAX_PAYLOAD ? payload_len : PACKET_MAX_PAYLOAD,
                                 ps->n_params, &ex) < 0)
        return -1;
    need_types = !(ps->n_params == 0 || ex.new_types || e->types_sig == ps->types_sig);
    /* Every refusal comes before any long data moves to the server, which
     * would keep it for the next EXECUTE of its statement. */
    if (need_types && (s->cmd_bytes != PACKET_HEADER_LEN + payload_len ||
                       payload_len + 2 * (size_t)ps->n_params >= PACKET_MAX_PAYLOAD || !ps->types))
        return -1;
    while (ps->long_data && evbuffer_get_length(ps->long_data) >= PACKET_HEADER_LEN) {
        uint8_t hdr[PACKET_HEADER_LEN];

        evbuffer_copyout(ps->long_data, hdr, sizeof(hdr));
        if (patch_stmt_id(ps->long_data, e->server_id) < 0) {
            s->be->state = BACKEND_BROKEN;      /* its server holds part of the data */
            return -1;
        }
        evbuffer_remove_buffer(ps->long_data, out, PACKET_HEADER_LEN + packet_u24(hdr));
    }
    pstmt_clear_long_data(ps);
    packet_put_u32(p + PACKET_HEADER_LEN + 1, e->server_id);
    if (!need_types) {
        if (ex.new_types)
            e->types_sig = ps->types_sig;
        evbuffer_remove_buffer(in, out, s->cmd_bytes);
        return 0;
    }
    /* Re-send the remembered types: bound flag 1, types after it. */
    {
        uint8_t hdr[PACKET_HEADER_LEN], one = 1;
        size_t head = ex.values_off - 1;     /* up to the bound flag */

        packet_write_header(hdr, (uint32_t)(payload_len + 2 * (size_t)ps->n_params), p[3]);
        evbuffer_add(out, hdr, sizeof(hdr));
        evbuffer_add(out, p + PACKET_HEADER_LEN, head);
        evbuffer_add(out, &one, 1);
        evbuffer_add(out, ps->types, 2 * (size_t)ps->n_params);
        evbuffer_add(out, p + PACKET_HEADER_LEN + ex.values_off, payload_len - ex.values_off);
        evbuffer_drain(in, s->cmd_bytes);
    }
    e->types_sig = ps->types_sig;
    return 0;
}

static void forward_command(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    struct evbuffer *out = bufferevent_get_output(s->be->bev);
    enum reply_kind kind = REPLY_QUERY;

    switch (s->cmd) {
    case WIRE_COM_QUERY:        kind = REPLY_QUERY; break;
    case WIRE_COM_FIELD_LIST:   kind = REPLY_FIELD_LIST; break;
    case WIRE_COM_STMT_PREPARE: kind = REPLY_PREPARE; break;
    case WIRE_COM_STMT_EXECUTE: kind = REPLY_EXECUTE; break;
    case WIRE_COM_STMT_FETCH:   kind = REPLY_FETCH; break;
    default:                    kind = REPLY_SIMPLE; break;
    }
    if (s->cmd == WIRE_COM_STMT_EXECUTE) {
        if (forward_execute(s, in, out) < 0) {
            refuse_execute(s, s->cur_ps, WIRE_ER_WRONG_ARGUMENTS, "HY000",
                       "shardwire: cannot forward this COM_STMT_EXECUTE (malformed, or "
                       "parameter types never sent)");
            if (s->be->state == BACKEND_BROKEN)
                detach_backend(s, false);
            if (s->state != SESS_IDLE)
                session_set_state(s, SESS_IDLE);
            arm_idle_timer(s);
            /* Go on with the next command from the loop, not from here. */
            bufferevent_trigger(s->bev, EV_READ,
                                BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
    } else if (s->cmd == WIRE_COM_STMT_FETCH || s->cmd == WIRE_COM_STMT_RESET) {
        struct pstmt_backend_entry *e = pstmt_cache_find(&s->be->stmts, s->cur_ps);

        if (patch_stmt_id(in, e ? e->server_id : 0) < 0) {
            answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", "shardwire: out of memory");
            if (s->state != SESS_IDLE)
                session_set_state(s, SESS_IDLE);
            arm_idle_timer(s);
            bufferevent_trigger(s->bev, EV_READ,
                                BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
        evbuffer_remove_buffer(in, out, s->cmd_bytes);
    } else {
        evbuffer_remove_buffer(in, out, s->cmd_bytes);
    }
    s->cmd_bytes = 0;
    reply_begin(&s->reply, kind, false);
    s->fwd_left = 0;
    s->reply_bytes = 0;
    session_set_state(s, SESS_FORWARDING);
    arm_timer(s, cfg_of(s)->query_timeout_ms);
}

/*
 * The backend is attached: bring it to the session's state (reset, charset,
 * tracked SETs, a deferred BEGIN), then forward the statement. Those
 * router-made statements are pipelined; their replies are checked before
 * the client's statement is sent, so a failed BEGIN can never leave the
 * statement running in autocommit.
 */
static void start_statement(struct session *s, bool begins_txn)
{
    struct backend *be = s->be;
    unsigned n = 0;

    if (!sessstate_equal(&be->sstate, &s->sstate)) {
        if (!sessstate_is_fresh(&be->sstate, WIRE_CHARSET_UTF8MB4_GENERAL_CI)) {
            struct evbuffer *out = bufferevent_get_output(be->bev);
            uint8_t pkt[PACKET_HEADER_LEN + 1];

            packet_write_header(pkt, 1, 0);
            pkt[PACKET_HEADER_LEN] = WIRE_COM_RESET_CONNECTION;
            evbuffer_add(out, pkt, sizeof(pkt));
            /* The reset deallocates the server's prepared statements too. */
            pstmt_cache_clear(&be->stmts);
            n++;
        }
        if (s->charset != WIRE_CHARSET_UTF8MB4_GENERAL_CI) {
            char sql[160];
            unsigned cs = charset_primary(s->charset);
            int len = snprintf(sql, sizeof(sql),
                               "SET character_set_client=%u, character_set_results=%u, "
                               "collation_connection=%u",
                               cs, cs, s->charset);

            write_query(be, sql, (size_t)len);
            n++;
        }
        for (unsigned i = 0; i < s->n_state_stmts; i++) {
            write_query(be, s->state_stmts[i], strlen(s->state_stmts[i]));
            n++;
        }
        sessstate_copy(&be->sstate, &s->sstate);
    }
    if (s->clear_prev) {
        /* COM_RESET_CONNECTION clears warnings but not FOUND_ROWS() */
        write_query(be, "SELECT 0 LIMIT 0", 16);
        s->clear_prev = false;
        n++;
    }
    s->sync_had_begin = false;
    if (begins_txn && s->txn_pending) {
        write_query(be, s->begin_sql, strlen(s->begin_sql));
        s->txn_pending = false;
        s->sync_had_begin = true;
        n++;
    }
    s->sync_prepare = false;
    if (s->cmd == WIRE_COM_STMT_EXECUTE && !pstmt_cache_find(&be->stmts, s->cur_ps)) {
        /* First use of this statement on this connection: prepare it here. */
        write_prepare(be, s->cur_ps);
        s->sync_prepare = true;
        n++;
    }
    if (n == 0) {
        forward_command(s);
        return;
    }
    s->sync_pending = n;
    s->sync_failed = false;
    reply_begin(&s->reply, n == 1 && s->sync_prepare ? REPLY_PREPARE : REPLY_QUERY, false);
    session_set_state(s, SESS_SYNCING);
    arm_timer(s, cfg_of(s)->query_timeout_ms);
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
    bool lost = s->in_txn || s->pinned || s->cursor_stmt;

    if (!s->be || s->be->generation == s->be->pool->generation)
        return false;
    log_info("session: master changed under the session id=%" PRIu64 " shard=%s%s", s->id,
             s->be_shard, lost ? " (transaction or session state lost)" : "");
    detach_backend(s, false);
    update_hold(s);
    if (!lost)
        return false;
    snprintf(msg, sizeof(msg),
             "shardwire: the master of shard %s changed during this %s; it was rolled back "
             "on the old master. Retry it.", s->be_shard,
             s->in_txn ? "transaction" : "session's pinned state");
    s->in_txn = s->pinned = false;
    s->cursor_stmt = 0;
    answer_err(s, WIRE_ER_BACKEND_GONE, "HY000", msg);
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

    if (!will_hold(s, begins_txn) || s->held == p->budget)
        return true;
    cap = pinned_cap(cfg_of(s));
    if (!hold_take(p->budget, cap)) {
        snprintf(msg, sizeof(msg),
                 "shardwire: %u sessions already hold connections of shard %s between "
                 "statements (transactions, user variables, other pinned state; "
                 "pool_max_pinned_per_shard=%u); finish them, or retry later",
                 cap, p->shard, cap);
        atomic_fetch_add(&s->w->stats.backend_errors, 1);
        s->pinned = s->pinned_before;       /* the statement does not run */
        answer_err(s, 1203, "42000", msg);
        return false;
    }
    if (s->held)
        atomic_fetch_sub(&s->held->held, 1);
    s->held = p->budget;
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
        answer_err(s, WIRE_ER_CONNECT_TO_BACKEND, "HY000",
                   "shardwire: no shard map in use on this worker");
        return;
    }
    s->last_shard = (int)idx;
    s->txn_begins = begins_txn;     /* for session_backend_ready() and retries */
    if (!(s->be && s->be->pool == p))
        detach_backend(s, true);
    if (!reserve_hold(s, p, begins_txn))
        return;
    if (s->be) {
        start_statement(s, begins_txn);
        return;
    }
    be = pool_acquire(p, s);
    if (be) {
        backend_attach(s, be);
        start_statement(s, begins_txn);
        return;
    }
    session_set_state(s, SESS_WAIT_POOL);
    arm_timer(s, cfg_of(s)->pool_wait_timeout_ms);
}

/* A statement that needs no particular shard: the attached backend, or the
 * shard used last, or the first. */
static void go_anywhere(struct session *s)
{
    if (drop_stale_backend(s))
        return;
    if (s->be) {
        if (reserve_hold(s, s->be->pool, false))
            start_statement(s, false);
        return;
    }
    go_to_shard(s, s->last_shard >= 0 && (unsigned)s->last_shard < s->w->n_pools ?
                       (unsigned)s->last_shard : 0, false);
}

void session_backend_ready(struct session *s, struct backend *be)
{
    evtimer_del(s->timer);
    unbuffer(s);
    backend_attach(s, be);
    start_statement(s, s->txn_begins);
}

/* How often a held statement tries its shard again: the map may name a new
 * master by then (a failover), or the old one may answer again. */
#define SESS_BUFFER_RETRY_MS 100

/*
 * The shard's master cannot be reached: hold the statement instead of
 * failing it, when it can be sent anywhere later (no transaction, no state
 * tied to a connection), for at most failover_buffer_ms, with at most
 * failover_buffer_max statements held router-wide. The client sees a pause
 * while a failover replaces the master. Returns true when held.
 */
static bool buffer_statement(struct session *s)
{
    const struct config *cfg = cfg_of(s);
    uint64_t now = now_ms();
    struct timeval tv;
    unsigned ms;

    if (!cfg->failover_buffer_ms || s->in_txn || s->pinned || s->cursor_stmt || s->be)
        return false;
    if (!s->buffer_until_ms) {
        if (atomic_fetch_add(&s->w->router->n_buffered, 1) >= cfg->failover_buffer_max) {
            atomic_fetch_sub(&s->w->router->n_buffered, 1);
            return false;
        }
        s->buffer_until_ms = now + cfg->failover_buffer_ms;
    }
    if (now >= s->buffer_until_ms)
        return false;
    ms = (unsigned)(s->buffer_until_ms - now);
    if (ms > SESS_BUFFER_RETRY_MS)
        ms = SESS_BUFFER_RETRY_MS;
    tv.tv_sec = 0;
    tv.tv_usec = (suseconds_t)ms * 1000;
    s->buffered = true;
    evtimer_add(s->timer, &tv);
    return true;
}

/* The statement is no longer held (it got a connection, or an answer). */
static void unbuffer(struct session *s)
{
    if (s->buffer_until_ms) {
        atomic_fetch_sub(&s->w->router->n_buffered, 1);
        s->buffer_until_ms = 0;
    }
    s->buffered = false;
}

void session_backend_failed(struct session *s, const char *msg, bool unreachable)
{
    evtimer_del(s->timer);
    if (unreachable && buffer_statement(s))
        return;                     /* stays in WAIT_POOL; session_timer retries */
    unbuffer(s);
    atomic_fetch_add(&s->w->stats.backend_errors, 1);
    answer_err(s, WIRE_ER_CONNECT_TO_BACKEND, "HY000", msg);
    session_set_state(s, SESS_IDLE);
    arm_idle_timer(s);
    process_commands(s);
}

static void handle_route(struct session *s)
{
    const struct smap *m = s->w->map;
    uint32_t vb;
    unsigned idx;
    const struct smap_shard *sh;

    if (!m) {
        go_to_shard(s, 0, true);        /* answers "no shard map" */
        return;
    }
    vb = vbucket_of(s->ar.key, s->ar.key_len, smap_n_vbuckets(m));
    idx = smap_shard_of_vbucket(m, vb);
    sh = smap_shard(m, idx);

    atomic_fetch_add(&s->w->stats.routed, 1);
    if (log_threshold >= LOG_DEBUG) {
        char key[ANALYZE_KEY_MAX * 4];

        log_debug("session: route id=%" PRIu64 " key=%s vbucket=%u shard=%s", s->id,
                  util_escape(key, sizeof(key), s->ar.key, s->ar.key_len), vb, sh->name);
    }
    if (s->be && (s->in_txn || s->pinned) && strcmp(s->be_shard, sh->name) != 0) {
        char msg[400];

        snprintf(msg, sizeof(msg),
                 "shardwire: this %s is bound to shard %s, but %s %.*s lives on shard %s; "
                 "finish it (COMMIT or ROLLBACK) before touching another user's shard",
                 s->in_txn ? "transaction" : "session (it holds connection state)",
                 s->be_shard, cfg_of(s)->analyze.key_columns[0], (int)s->ar.key_len,
                 s->ar.key, sh->name);
        answer_err(s, WIRE_ER_NOT_SUPPORTED_YET, "42000", msg);
        return;
    }
    go_to_shard(s, idx, true);
}

static void handle_session_stmt(struct session *s, const char *sql, size_t len)
{
    switch (s->ar.stmt) {
    case ANALYZE_STMT_BEGIN:
        if (s->in_txn && s->be)
            break;                          /* the backend commits and begins anew */
        free(s->begin_sql);
        s->begin_sql = strndup(sql, len);
        if (!s->begin_sql) {
            answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", "shardwire: out of memory");
            return;
        }
        s->txn_pending = true;
        answer_ok(s);
        return;
    case ANALYZE_STMT_COMMIT:
    case ANALYZE_STMT_ROLLBACK:
        if (!s->in_txn) {
            s->txn_pending = false;
            answer_ok(s);
            return;
        }
        break;
    case ANALYZE_STMT_SAVEPOINT:
        if (s->txn_pending && !s->in_txn) {
            answer_err(s, WIRE_ER_NOT_SUPPORTED_YET, "42000",
                       "shardwire: SAVEPOINT before the transaction's first statement: the "
                       "shard is not known yet; run a statement for the user first");
            return;
        }
        break;
    case ANALYZE_STMT_SET:
        if (s->ar.pins_session)
            break;                          /* user variables: pinned, not replayed */
        {
            char msg[300];

            /* Kept twice: in the list and in the state text. */
            if (mem_check(s, 2 * len + 2, msg, sizeof(msg)) != MEM_OK) {
                answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", msg);
                return;
            }
        }
        /* Without its copy the SET could not be replayed on other
         * connections: it must not run at all. */
        free(s->pending_set);
        s->pending_set = fault_fail("set_copy") ? NULL : strndup(sql, len);
        if (!s->pending_set) {
            answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                       "shardwire: out of memory; the SET was not run");
            return;
        }
        s->cmd_kind = SESS_CMD_TRACK_SET;
        break;
    default:
        break;
    }
    if (s->ar.pins_session)
        s->pinned = true;
    go_anywhere(s);
}

/* Operator rules, then the analyzer; then route, answer, or refuse. */
static void handle_query(struct session *s, const uint8_t *payload, size_t payload_len)
{
    const char *sql = (const char *)payload + 1;
    size_t len = payload_len - 1;

    analyze_with_rules(s, sql, len);
    switch (s->ar.kind) {
    case ANALYZE_REJECT:
        reject_statement(s, sql, len);
        return;
    case ANALYZE_LOCAL:
        answer_ok(s);
        return;
    case ANALYZE_ROUTE:
        if (s->ar.param_index >= 0) {
            answer_err(s, WIRE_ER_PARSE, "42000",
                       "shardwire: '?' placeholders need a prepared statement");
            return;
        }
        if (s->ar.pins_session)
            s->pinned = true;
        handle_route(s);
        return;
    case ANALYZE_SESSION:
        handle_session_stmt(s, sql, len);
        return;
    }
}

/* ---- prepared statements ---- */

static struct pstmt *find_stmt(struct session *s, const uint8_t *payload, size_t payload_len,
                               const char *what)
{
    struct pstmt *ps = payload_len >= 5 ? pstmt_find(&s->stmts, packet_u32(payload + 1)) : NULL;
    char msg[200];

    if (ps)
        return ps;
    snprintf(msg, sizeof(msg), "Unknown prepared statement handler (%u) given to %s",
             payload_len >= 5 ? packet_u32(payload + 1) : 0, what);
    answer_err(s, WIRE_ER_UNKNOWN_STMT_HANDLER, "HY000", msg);
    return NULL;
}

/* Sends the statement in flight where its analysis says: the key's shard, or
 * (no key needed) the attached backend or any. */
static void go_by_analysis(struct session *s)
{
    if (s->ar.kind == ANALYZE_ROUTE)
        handle_route(s);
    else
        go_anywhere(s);
}

static void handle_prepare(struct session *s, const uint8_t *payload, size_t payload_len)
{
    const char *sql = (const char *)payload + 1;
    size_t len = payload_len - 1;
    struct pstmt *ps;

    s->kept_be = s->be != NULL;
    analyze_with_rules(s, sql, len);
    if (s->ar.kind == ANALYZE_REJECT) {
        reject_statement(s, sql, len);
        return;
    }
    switch (s->ar.stmt) {
    case ANALYZE_STMT_BEGIN:
    case ANALYZE_STMT_COMMIT:
    case ANALYZE_STMT_ROLLBACK:
    case ANALYZE_STMT_SAVEPOINT:
    case ANALYZE_STMT_USE:
        answer_err(s, 1295, "HY000",
                   "shardwire: transaction control and USE cannot be prepared; send them as "
                   "plain queries");
        return;
    default:
        break;
    }
    if (s->ar.kind == ANALYZE_ROUTE && s->ar.param_index >= 0 && s->ar.key_len == 0 &&
        s->ar.n_params == 0) {
        answer_err(s, WIRE_ER_UNKNOWN, "HY000", "shardwire: inconsistent analysis");
        return;
    }
    {
        char msg[300];

        if (mem_check(s, len, msg, sizeof(msg)) != MEM_OK) {
            answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", msg);
            return;
        }
    }
    ps = pstmt_add(&s->stmts, sql, len, &s->ar);
    if (!ps) {
        answer_err(s, 1461, "42000",
                   "Can't create more than max_prepared_stmt_count statements (current "
                   "value: 16382)");
        return;
    }
    ps->n_params = (uint16_t)s->ar.n_params;
    s->cur_ps = ps;
    s->cmd_kind = SESS_CMD_PREPARE;
    if (s->ar.pins_session)
        s->pinned = true;
    /* A statement routed by a parameter can be prepared anywhere: every
     * shard has the same schema. A literal key picks its shard now. */
    if (s->ar.kind == ANALYZE_ROUTE && s->ar.param_index < 0)
        handle_route(s);
    else
        go_anywhere(s);
}

/* An EXECUTE refused by the router: as on the server, the statement's long
 * data is spent, so a later EXECUTE never replays it. */
static void refuse_execute(struct session *s, struct pstmt *ps, uint16_t err_no,
                           const char *sqlstate, const char *msg)
{
    pstmt_clear_long_data(ps);
    answer_err(s, err_no, sqlstate, msg);
}

static void handle_execute(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct pstmt *ps = find_stmt(s, payload, payload_len, "mysqld_stmt_execute");
    struct stmt_execute ex;
    char msg[300];

    if (!ps)
        return;
    if (ps->long_failed) {
        refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                       "shardwire: long data sent for this statement was refused (over "
                       "max_allowed_packet or a memory limit); the statement was not executed");
        return;
    }
    if (stmt_parse_execute(payload, payload_len, ps->n_params, &ex) < 0) {
        refuse_execute(s, ps, WIRE_ER_WRONG_ARGUMENTS, "HY000",
                   "Incorrect arguments to mysqld_stmt_execute");
        return;
    }
    if (ex.new_types && pstmt_set_types(ps, payload + ex.types_off) < 0) {
        refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000", "shardwire: out of memory");
        return;
    }
    if (ps->n_params > 0 && !ps->types) {
        refuse_execute(s, ps, WIRE_ER_WRONG_ARGUMENTS, "HY000",
                   "Incorrect arguments to mysqld_stmt_execute (no parameter types sent)");
        return;
    }
    s->cur_ps = ps;
    s->ar = ps->ar;
    s->cmd_kind = SESS_CMD_STMT;
    if (ps->ar.kind == ANALYZE_REJECT) {
        refuse_execute(s, ps, ps->ar.err_no, ps->ar.sqlstate, ps->ar.msg);
        return;
    }
    if (ps->ar.kind == ANALYZE_SESSION && ps->ar.stmt == ANALYZE_STMT_SET &&
        !ps->ar.pins_session) {
        /* A prepared SET (Node mysql2's execute(), PDO without emulation)
         * changes session state like a plain one. Without parameters its
         * text replays as a query on other connections; with them it cannot
         * be replayed, so the session stays on this connection. */
        free(s->pending_set);
        s->pending_set = NULL;
        if (ps->n_params == 0 && mem_check(s, 2 * ps->sql_len + 2, msg, sizeof(msg)) != MEM_OK) {
            refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000", msg);
            return;
        }
        if (ps->n_params == 0) {
            s->pending_set = fault_fail("set_copy") ? NULL : strndup(ps->sql, ps->sql_len);
            if (!s->pending_set) {
                refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                           "shardwire: out of memory; the SET was not run");
                return;
            }
        } else {
            s->pinned = true;
        }
    }
    if (ps->ar.kind == ANALYZE_ROUTE && ps->ar.param_index >= 0) {
        uint64_t params = ps->ar.key_params ? ps->ar.key_params
                                            : (uint64_t)1 << (ps->ar.param_index & 63);

        /* Every '?' that carries the key (a multi-row INSERT has one per
         * row) must name the same user; the lowest is param_index. */
        for (unsigned i = (unsigned)ps->ar.param_index; i < ps->n_params && params; i++) {
            struct stmt_value v = { 0 };
            char key[ANALYZE_KEY_MAX];
            int n = -1;

            if (i != (unsigned)ps->ar.param_index && (i >= 64 || !(params >> i & 1)))
                continue;
            if (stmt_param(payload, payload_len, &ex, ps->types, ps->n_params, ps->long_mask, i,
                           &v) == 0)
                n = stmt_key_of(payload, &v, cfg_of(s)->analyze.key_type, key);
            if (n < 0) {
                snprintf(msg, sizeof(msg),
                         "shardwire: parameter %u carries the %s and must be one valid %s key; "
                         "got %s", i + 1, cfg_of(s)->analyze.key_columns[0],
                         cfg_of(s)->analyze.key_type == ANALYZE_KEY_INT ? "integer" : "string",
                         v.is_null ? "NULL" : "a value that is not one");
                atomic_fetch_add(&s->w->stats.rejected, 1);
                refuse_execute(s, ps, WIRE_ER_NOT_SUPPORTED_YET, "42000", msg);
                return;
            }
            if (i == (unsigned)ps->ar.param_index) {
                memcpy(s->ar.key, key, (size_t)n);
                s->ar.key_len = (size_t)n;
            } else if ((size_t)n != s->ar.key_len || memcmp(key, s->ar.key, (size_t)n) != 0) {
                snprintf(msg, sizeof(msg),
                         "shardwire: parameters %d and %u give two different %s values; one "
                         "statement may touch one user's rows only", ps->ar.param_index + 1,
                         i + 1, cfg_of(s)->analyze.key_columns[0]);
                atomic_fetch_add(&s->w->stats.rejected, 1);
                refuse_execute(s, ps, WIRE_ER_NOT_SUPPORTED_YET, "42000", msg);
                return;
            }
            if (i >= 63)
                break;      /* the analysis tracks the first 64 parameters */
        }
    }
    go_by_analysis(s);
}

static void handle_long_data(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct pstmt *ps = payload_len >= 7 ? pstmt_find(&s->stmts, packet_u32(payload + 1)) : NULL;
    struct evbuffer *in = bufferevent_get_input(s->bev);
    unsigned param = payload_len >= 7 ? packet_u16(payload + 5) : 0;
    char msg[300];

    /* No reply, ever; an unknown statement or parameter is reported by the
     * EXECUTE that follows (the server's own behaviour). */
    if (!ps || param >= ps->n_params || s->cmd_bytes != PACKET_HEADER_LEN + payload_len) {
        consume_command(s);
        return;
    }
    if (!ps->long_data)
        ps->long_data = evbuffer_new();
    if (!ps->long_mask)
        ps->long_mask = calloc(((size_t)ps->n_params + 7) / 8, 1);
    if (ps->long_failed || !ps->long_data || !ps->long_mask ||
        ps->long_bytes + s->cmd_bytes > cfg_of(s)->max_allowed_packet ||
        mem_check(s, s->cmd_bytes, msg, sizeof(msg)) != MEM_OK) {
        /* Refused: the data is dropped and the EXECUTE that follows
         * fails, rather than running without it. */
        consume_command(s);
        pstmt_clear_long_data(ps);
        ps->long_failed = true;
        return;
    }
    ps->long_mask[param / 8] |= (uint8_t)(1u << (param % 8));
    evbuffer_remove_buffer(in, ps->long_data, s->cmd_bytes);
    pstmt_long_data_added(ps, s->cmd_bytes);
    s->cmd_bytes = 0;
}

static void handle_stmt_close(struct session *s, const uint8_t *payload, size_t payload_len)
{
    uint32_t id = payload_len >= 5 ? packet_u32(payload + 1) : 0;

    /* No reply. The server-side statements stay cached on their backend
     * connections for whoever runs the same SQL next. */
    consume_command(s);
    if (s->cursor_stmt == id)
        s->cursor_stmt = 0;
    pstmt_remove(&s->stmts, id);
}

static void handle_stmt_reset(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct pstmt *ps = find_stmt(s, payload, payload_len, "mysqld_stmt_reset");

    if (!ps)
        return;
    pstmt_clear_long_data(ps);
    if (s->cursor_stmt == ps->id && s->be && pstmt_cache_find(&s->be->stmts, ps)) {
        /* Closes the open cursor on the server. */
        s->cursor_stmt = 0;
        s->cur_ps = ps;
        s->cmd_kind = SESS_CMD_STMT;
        start_statement(s, false);
        return;
    }
    answer_ok(s);
}

static void handle_fetch(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct pstmt *ps = find_stmt(s, payload, payload_len, "mysqld_stmt_fetch");
    char msg[120];

    if (!ps)
        return;
    if (s->cursor_stmt != ps->id || !s->be || !pstmt_cache_find(&s->be->stmts, ps)) {
        snprintf(msg, sizeof(msg), "The statement (%u) has no open cursor.", ps->id);
        answer_err(s, 1421, "HY000", msg);
        return;
    }
    s->cur_ps = ps;
    s->cmd_kind = SESS_CMD_STMT;
    start_statement(s, false);
}

static void handle_init_db(struct session *s, const uint8_t *payload, size_t payload_len)
{
    const char *db = cfg_of(s)->analyze.database;
    char msg[256];

    if (payload_len - 1 == strlen(db) && memcmp(payload + 1, db, payload_len - 1) == 0) {
        answer_ok(s);
        return;
    }
    snprintf(msg, sizeof(msg),
             "shardwire: access denied to database '%.*s': this router serves only '%s'",
             (int)(payload_len - 1 > 64 ? 64 : payload_len - 1), (const char *)payload + 1, db);
    answer_err(s, WIRE_ER_DBACCESS_DENIED, "42000", msg);
}

/*
 * Back to a fresh session (COM_RESET_CONNECTION, COM_CHANGE_USER): tracked
 * state, transaction, pins and prepared statements are dropped. The backend
 * keeps our old state; a reset before its next use clears it (an open
 * transaction dies with the connection).
 */
static void reset_session_state(struct session *s)
{
    if (s->be) {
        sessstate_forget(&s->be->sstate);
        detach_backend(s, !s->in_txn);
    }
    for (unsigned i = 0; i < s->n_state_stmts; i++)
        free(s->state_stmts[i]);
    s->n_state_stmts = 0;
    s->state_bytes = 0;
    s->in_txn = s->txn_pending = s->pinned = false;
    s->autocommit = true;
    s->cursor_stmt = 0;
    update_hold(s);
    pstmt_table_fini(&s->stmts);
    recompute_sig(s);
}

static void handle_reset_connection(struct session *s, const uint8_t *payload,
                                    size_t payload_len)
{
    (void)payload;
    (void)payload_len;
    reset_session_state(s);
    answer_ok(s);
}

/* COM_STATISTICS: one text packet, no OK. */
static void handle_statistics(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct worker_stats *st = &s->w->stats;
    char text[256];
    int n;

    (void)payload;
    (void)payload_len;
    n = snprintf(text, sizeof(text),
                 "Threads: %u  Questions: %" PRIu64 "  Routed: %" PRIu64 "  Rejected: %" PRIu64
                 "  (shardwire %s, this worker)",
                 atomic_load(&s->w->router->n_clients), atomic_load(&st->statements),
                 atomic_load(&st->routed), atomic_load(&st->rejected), SHARDWIRE_VERSION);
    consume_command(s);
    send_packet(s, (uint8_t)(s->cmd_last_seq + 1), (const uint8_t *)text, (size_t)n);
}

/* COM_SET_OPTION: multi-statements on/off. Answered with an EOF, as the
 * server does; each query is still analysed as one statement (a second
 * one after ';' is refused), so ON changes nothing else. */
static void handle_set_option(struct session *s, const uint8_t *payload, size_t payload_len)
{
    uint8_t buf[8];

    if (payload_len != 3 || packet_u16(payload + 1) > 1) {
        answer_err(s, WIRE_ER_UNKNOWN_COM, "08S01", "Unknown command");
        return;
    }
    consume_command(s);
    send_packet(s, (uint8_t)(s->cmd_last_seq + 1), buf,
                reply_write_eof(buf, 0, client_status(s)));
}

/*
 * COM_CHANGE_USER: a fresh session for another (or the same) app user. Its
 * state is dropped as for COM_RESET_CONNECTION. As on the server, the
 * client proves the password against the connection's original scramble;
 * a client that used another plugin is switched to mysql_native_password.
 */
static void handle_change_user(struct session *s, const uint8_t *payload, size_t payload_len)
{
    const uint8_t *body = payload + 1;
    struct packet_reader rd;
    size_t user_off, user_len, auth_off = 0, db_off = 0, db_len = 0;
    size_t plugin_off = 0, plugin_len = 0;
    uint16_t charset = 0;
    uint8_t alen = 0, buf[64];
    const struct config_user *u;
    bool native;

    packet_reader_init(&rd, body, payload_len - 1);
    if (packet_get_cstr(&rd, &user_off, &user_len) < 0 || packet_get_u8(&rd, &alen) < 0 ||
        packet_get_bytes(&rd, alen, &auth_off) < 0) {
        answer_err(s, WIRE_ER_UNKNOWN_COM, "08S01", "Malformed COM_CHANGE_USER");
        return;
    }
    if (packet_remaining(&rd) > 0 && packet_get_cstr(&rd, &db_off, &db_len) < 0)
        db_len = 0;
    if (packet_remaining(&rd) >= 2 && packet_get_u16(&rd, &charset) == 0 &&
        packet_remaining(&rd) > 0 && packet_get_cstr(&rd, &plugin_off, &plugin_len) < 0)
        plugin_len = 0;
    native = plugin_len == 0 || (plugin_len == strlen(HANDSHAKE_NATIVE_PLUGIN) &&
                                 memcmp(body + plugin_off, HANDSHAKE_NATIVE_PLUGIN,
                                        plugin_len) == 0);
    if (charset && charset < 256 &&
        client_charset((uint8_t)charset, cfg_of(s)->analyze.key_type) >= 0)
        s->charset = (uint8_t)client_charset((uint8_t)charset, cfg_of(s)->analyze.key_type);
    reset_session_state(s);
    if (user_len >= sizeof(s->user) || memchr(body + user_off, 0, user_len)) {
        uint8_t seq = (uint8_t)(s->cmd_last_seq + 1);
        char name[64];

        /* Copied out first: consuming the command frees <body>. */
        snprintf(name, sizeof(name), "%.*s", (int)(sizeof(name) - 1), (const char *)body + user_off);
        consume_command(s);
        s->user[0] = 0;
        auth_failed(s, seq, name, strlen(name), alen > 0);
        return;
    }
    memcpy(s->user, body + user_off, user_len);
    s->user[user_len] = 0;
    u = config_find_user(cfg_of(s), s->user, user_len);
    if (native) {
        char db[ANALYZE_NAME_MAX * 2];
        size_t n = db_len < sizeof(db) ? db_len : sizeof(db) - 1;
        uint8_t seq = (uint8_t)(s->cmd_last_seq + 1);

        memcpy(db, body + db_off, n);
        if (!auth_check(s, u, body + auth_off, alen)) {
            consume_command(s);
            auth_failed(s, seq, s->user, strlen(s->user), alen > 0);
            return;
        }
        consume_command(s);
        session_set_state(s, SESS_AUTH_SWITCH);     /* auth_ok() moves on to IDLE */
        auth_ok(s, seq, db, n);
        return;
    }
    {
        /* <body> may live in s->scratch itself (a command joined from
         * several packets): copy before freeing. */
        char *db = db_len ? strndup((const char *)body + db_off, db_len) : NULL;

        free(s->scratch);
        s->scratch = db;
        s->scratch_cap = 0;
    }
    consume_command(s);
    send_packet(s, (uint8_t)(s->cmd_last_seq + 1), buf,
                (size_t)handshake_write_auth_switch(buf, s->scramble));
    session_set_state(s, SESS_AUTH_SWITCH);
}

static void handle_quit(struct session *s, const uint8_t *payload, size_t payload_len)
{
    (void)payload;
    (void)payload_len;
    consume_command(s);
    session_close(s, SESS_END_QUIT);
}

static void handle_ping(struct session *s, const uint8_t *payload, size_t payload_len)
{
    (void)payload;
    (void)payload_len;
    answer_ok(s);
}

/* COM_FIELD_LIST: deprecated, but some drivers send it; any shard has the
 * schema. */
static void handle_field_list(struct session *s, const uint8_t *payload, size_t payload_len)
{
    (void)payload;
    (void)payload_len;
    go_anywhere(s);
}

typedef void command_fn(struct session *s, const uint8_t *payload, size_t payload_len);

/* The commands we serve; anything else gets ER_UNKNOWN_COM. */
static command_fn *const commands[256] = {
    [WIRE_COM_QUIT] = handle_quit,
    [WIRE_COM_PING] = handle_ping,
    [WIRE_COM_INIT_DB] = handle_init_db,
    [WIRE_COM_QUERY] = handle_query,
    [WIRE_COM_FIELD_LIST] = handle_field_list,
    [WIRE_COM_STATISTICS] = handle_statistics,
    [WIRE_COM_CHANGE_USER] = handle_change_user,
    [WIRE_COM_STMT_PREPARE] = handle_prepare,
    [WIRE_COM_STMT_EXECUTE] = handle_execute,
    [WIRE_COM_STMT_SEND_LONG_DATA] = handle_long_data,
    [WIRE_COM_STMT_CLOSE] = handle_stmt_close,
    [WIRE_COM_STMT_RESET] = handle_stmt_reset,
    [WIRE_COM_SET_OPTION] = handle_set_option,
    [WIRE_COM_STMT_FETCH] = handle_fetch,
    [WIRE_COM_RESET_CONNECTION] = handle_reset_connection,
};

/* Dispatches the complete command at the head of the input. */
static void dispatch(struct session *s, size_t payload_len)
{
    const uint8_t *payload;
    char msg[128];

    s->n_stmts++;
    s->pinned_before = s->pinned;
    s->cmd_kind = SESS_CMD_FORWARD;
    s->retried = false;
    free(s->pending_set);
    s->pending_set = NULL;
    atomic_fetch_add(&s->w->stats.statements, 1);
    if (payload_len == 0) {
        answer_err(s, WIRE_ER_UNKNOWN_COM, "08S01", "shardwire: empty command packet");
        return;
    }
    payload = command_payload(s, payload_len);
    if (!payload) {
        answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", "shardwire: out of memory");
        return;
    }
    s->cmd = payload[0];
    if (!commands[s->cmd]) {
        snprintf(msg, sizeof(msg), "shardwire: unknown or unsupported command 0x%02x", s->cmd);
        answer_err(s, WIRE_ER_UNKNOWN_COM, "08S01", msg);
        return;
    }
    commands[s->cmd](s, payload, payload_len);
    /* A joined multi-packet command is not needed once handled (its bytes
     * left the input or were answered): give the memory back rather than
     * keep up to max_allowed_packet per session. After an auth switch the
     * scratch holds the database name instead. */
    if (payload == (const uint8_t *)s->scratch && s->state != SESS_AUTH_SWITCH &&
        s->state != SESS_CLOSED) {
        free(s->scratch);
        s->scratch = NULL;
        s->scratch_cap = 0;
    }
}

static void run_commands(struct session *s)
{
    s->burst = 0;
    while (s->state == SESS_IDLE) {
        size_t payload_len;
        int k = command_ready(s, &payload_len);

        if (k == 0)
            return;
        if (k < 0) {
            send_err(s, 1, WIRE_ER_NET_PACKET_TOO_LARGE, "08S01",
                     "Got a packet bigger than 'max_allowed_packet' bytes");
            close_after_flush(s, SESS_END_PROTOCOL);
            return;
        }
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SESS_OUT_HIGH) {
            /* The client sends commands but does not read the replies:
             * handle no more until it does (client_write() resumes), whatever
             * kind of reply it is, so its unread output stays bounded. Its
             * input is bounded by the read watermark (one command). */
            s->out_blocked = true;
            return;
        }
        if (++s->burst > SESS_BURST) {
            /* Let other sessions run; come back on the next loop turn. */
            bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
        arm_idle_timer(s);
        dispatch(s, payload_len);
    }
}

static void process_commands(struct session *s)
{
    run_commands(s);
    mem_settle(s);
}

/*
 * The client's unprocessed input (a half-received command, pipelined ones)
 * passes session_memory_limit by itself (what the session holds otherwise
 * is checked when it grows: a PREPARE, a SET, long data), or passes 64 kB
 * while the router is over router_memory_limit: the session is closed,
 * with error 1041 when it is between statements. Returns true when it was.
 */
static bool input_over_budget(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t have = evbuffer_get_length(in);
    enum mem_verdict v = MEM_OK;
    char msg[300];
    uint8_t hdr[PACKET_HEADER_LEN];

    if (have > cfg_of(s)->session_memory_limit) {
        v = MEM_SESSION;
        snprintf(msg, sizeof(msg), "shardwire: %zu bytes of unprocessed commands, over "
                 "session_memory_limit=%" PRIu64, have, cfg_of(s)->session_memory_limit);
    } else if (have > 65536 && mem_check(s, 0, msg, sizeof(msg)) == MEM_ROUTER) {
        v = MEM_ROUTER;
    }
    if (v == MEM_OK)
        return false;
    if (s->state == SESS_IDLE) {
        size_t payload_len;

        /* A complete command at the head is judged by its handler (a
         * PREPARE, a SET) and refused alone, the session going on. */
        if (command_ready(s, &payload_len) != 0)
            return false;
    }
    if (s->state == SESS_IDLE) {
        uint8_t seq = 1;

        if (evbuffer_copyout(in, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr))
            seq = (uint8_t)(hdr[3] + 1);
        send_err(s, seq, WIRE_ER_OUT_OF_RESOURCES, "HY000", msg);
        close_after_flush(s, SESS_END_RESOURCE);
    } else {
        /* A reply is being relayed: an ERR now would corrupt it. */
        session_close(s, SESS_END_RESOURCE);
    }
    return true;
}

/* ---- the backend's reply ---- */

/* A PREPARE went through: remember the server's statement on this
 * connection, and the parameter count the server found. */
static void prepare_done(struct session *s)
{
    const struct reply *r = &s->reply;
    struct pstmt *ps = s->cur_ps;
    uint32_t evicted;

    s->cur_ps = NULL;
    if (r->is_error) {
        pstmt_remove(&s->stmts, ps->id);
        return;
    }
    if (ps->ar.kind == ANALYZE_ROUTE && ps->ar.param_index >= 0 &&
        ps->n_params != r->n_params) {
        /* The analysis and the server disagree on where the '?'s are: the
         * routing parameter cannot be trusted. */
        ps->ar.kind = ANALYZE_REJECT;
        ps->ar.err_no = WIRE_ER_NOT_SUPPORTED_YET;
        memcpy(ps->ar.sqlstate, "42000", 6);
        ps->ar.msg = "shardwire: the server and the router count this statement's "
                     "parameters differently; it cannot be routed";
    }
    ps->n_params = r->n_params;
    ps->n_columns = r->n_columns;
    if (pstmt_cache_find(&s->be->stmts, ps))
        write_stmt_close(s->be, r->stmt_id);        /* the connection had it already */
    else
        switch (pstmt_cache_add(&s->be->stmts, ps, r->stmt_id, &evicted)) {
        case 1:
            write_stmt_close(s->be, evicted);
            break;
        case -1:        /* not cached: an EXECUTE prepares it again */
            write_stmt_close(s->be, r->stmt_id);
            break;
        default:
            break;
        }
}

static void statement_done(struct session *s)
{
    const struct reply *r = &s->reply;

    evtimer_del(s->timer);
    /* A PREPARE reply carries no status flags. */
    if (!r->is_error && s->cmd != WIRE_COM_STMT_PREPARE) {
        s->in_txn = (r->status & WIRE_STATUS_IN_TRANS) != 0;
        s->autocommit = (r->status & WIRE_STATUS_AUTOCOMMIT) != 0;
        if (r->insert_id) {
            s->last_insert_id = r->insert_id;
            s->be_insert_id = true;
        }
    }
    if (s->cmd == WIRE_COM_STMT_PREPARE)
        prepare_done(s);
    else if (s->cmd == WIRE_COM_STMT_EXECUTE && !r->is_error &&
             (r->status & WIRE_STATUS_CURSOR_EXISTS))
        s->cursor_stmt = s->cur_ps->id;     /* FETCH must find this connection */
    if (s->pending_set) {
        if (!r->is_error) {
            if (s->n_state_stmts < SESS_MAX_STATE_STMTS) {
                s->state_bytes += strlen(s->pending_set) + 1;
                s->state_stmts[s->n_state_stmts++] = s->pending_set;
                s->pending_set = NULL;
                recompute_sig(s);
                sessstate_copy(&s->be->sstate, &s->sstate);
            } else {
                s->pinned = true;   /* too much state to replay: stay put */
            }
        }
        free(s->pending_set);
        s->pending_set = NULL;
    }
    session_set_state(s, SESS_IDLE);
    if (s->shutdown_after) {
        close_after_flush(s, SESS_END_SHUTDOWN);
        return;
    }
    /* Multiplexing: with nothing tying the session to this connection, it
     * goes back to the pool. Kept: inside a transaction, with state we
     * cannot replay, with an open cursor, and after a write, a warning or an
     * error, so that LAST_INSERT_ID(), ROW_COUNT(), SHOW WARNINGS and SHOW
     * ERRORS that follow see the right connection; a PREPARE in between
     * (drivers prepare the SELECT LAST_INSERT_ID() they run next) does not
     * count as that statement. */
    if (s->be && !s->in_txn && !s->pinned && !s->cursor_stmt && !r->is_error &&
        r->warnings == 0 && !s->ar.is_write &&
        !(s->cmd == WIRE_COM_STMT_PREPARE && s->kept_be))
        detach_backend(s, true);
    arm_idle_timer(s);
}

/*
 * Sends the statement in flight again, choosing its shard afresh. The map may
 * have changed since the statement was first routed, and shard indexes shift
 * when a shard is added (shards are sorted by name), so a saved index could
 * name another shard or none.
 */
static void route_again(struct session *s)
{
    if (s->ar.kind == ANALYZE_ROUTE &&
        !(s->cmd == WIRE_COM_STMT_PREPARE && s->ar.param_index >= 0))
        handle_route(s);
    else
        go_anywhere(s);
}

/* The backend connection failed while the session used it. */
static void backend_lost(struct session *s, const char *why)
{
    char msg[400];
    bool in_txn = s->in_txn;

    unsigned suppressed;

    atomic_fetch_add(&s->w->stats.backend_errors, 1);
    if (log_limit_pass(&s->w->backend_lost_log, now_ms(), 5000, &suppressed))
        log_warn("session: backend lost id=%" PRIu64 " shard=%s state=%s why=%s suppressed=%u",
                 s->id, s->be_shard, state_names[s->state], why, suppressed);
    snprintf(msg, sizeof(msg), "shardwire: lost connection to shard %s during the statement (%s)%s",
             s->be_shard, why, in_txn ? "; the transaction was rolled back" : "");
    if (s->state == SESS_SYNCING && !in_txn && !s->pinned && !s->cursor_stmt && !s->retried) {
        /* The client's statement was not sent yet: a pooled connection that
         * died while idle is replaced without the client noticing, once. */
        detach_backend(s, false);
        s->retried = true;
        if (s->sync_had_begin)
            s->txn_pending = true;
        session_set_state(s, SESS_IDLE);
        log_info("session: retrying on a new connection id=%" PRIu64 " shard=%s", s->id,
                 s->be_shard);
        route_again(s);
        return;
    }
    if (s->state == SESS_SYNCING || s->state == SESS_FORWARDING) {
        bool partial = s->state == SESS_FORWARDING && s->reply_bytes > 0;

        if (s->state == SESS_SYNCING)
            consume_command(s);
        detach_backend(s, false);
        s->in_txn = false;
        send_err(s, partial ? (uint8_t)(s->last_seq + 1) : (uint8_t)(s->cmd_last_seq + 1),
                 WIRE_ER_BACKEND_GONE, "HY000", msg);
        if (partial || in_txn) {
            close_after_flush(s, SESS_END_BACKEND_LOST);
            return;
        }
        session_set_state(s, SESS_IDLE);
        arm_idle_timer(s);
        process_commands(s);
        return;
    }
    /* Idle with a backend attached. */
    detach_backend(s, false);
    s->in_txn = false;
    update_hold(s);
    if (in_txn)
        close_after_flush(s, SESS_END_BACKEND_LOST);
}

/* Reads the replies to router-made statements; returns true when they are
 * all in (the statement may go on or has been failed). */
static void sync_read(struct session *s, struct evbuffer *in)
{
    while (s->sync_pending > 0) {
        struct packet_header h;
        const uint8_t *p;
        int k = peek_packet(in, PACKET_MAX_PAYLOAD, &h);

        if (k <= 0)
            return;
        p = pullup(in, PACKET_HEADER_LEN + h.payload_len);
        if (!p) {
            backend_lost(s, "out of memory");
            return;
        }
        p += PACKET_HEADER_LEN;
        if (s->reply.state == REPLY_FIRST && h.payload_len > 0 && p[0] == WIRE_HDR_LOCAL_INFILE) {
            backend_lost(s, "the server asked for a local file (LOAD DATA LOCAL)");
            return;
        }
        k = reply_feed(&s->reply, p, h.payload_len, h.payload_len);
        if (k < 0) {
            backend_lost(s, "malformed reply");
            return;
        }
        if (k == 1 && s->reply.is_error && !s->sync_failed) {
            size_t off, n;
            uint16_t err_no;

            s->sync_failed = true;
            if (reply_parse_err(p, h.payload_len, &err_no, &off, &n) == 0) {
                s->sync_errno = err_no;
                snprintf(s->sync_err, sizeof(s->sync_err), "%.*s", (int)(n > 200 ? 200 : n),
                         (const char *)p + off);
            }
        }
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        if (k == 1) {
            if (s->sync_pending == 1 && s->sync_prepare && !s->reply.is_error) {
                uint32_t evicted;

                int k = pstmt_cache_add(&s->be->stmts, s->cur_ps, s->reply.stmt_id, &evicted);

                /* Not cached (-1): forward_execute() then refuses the EXECUTE. */
                if (k != 0)
                    write_stmt_close(s->be, k > 0 ? evicted : s->reply.stmt_id);
            }
            s->sync_pending--;
            reply_begin(&s->reply, s->sync_pending == 1 && s->sync_prepare ? REPLY_PREPARE
                                                                          : REPLY_QUERY, false);
        }
    }
    if (s->sync_failed) {
        char msg[400];

        /* The backend's state is now unknown: reset it before any reuse. */
        sessstate_forget(&s->be->sstate);
        snprintf(msg, sizeof(msg), "shardwire: could not prepare shard %s connection: %s",
                 s->be_shard, s->sync_err);
        answer_err(s, s->sync_errno ? s->sync_errno : WIRE_ER_UNKNOWN, "HY000", msg);
        session_set_state(s, SESS_IDLE);
        arm_idle_timer(s);
        process_commands(s);
        return;
    }
    forward_command(s);
}

/*
 * Moves reply packets from the backend to the client, judging each packet by
 * its header and first bytes only. Large packets are streamed as they come.
 */
static void relay(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->be->bev);
    struct evbuffer *out = bufferevent_get_output(s->bev);

    for (;;) {
        size_t have = evbuffer_get_length(in);

        if (s->fwd_left > 0) {
            size_t n = have < s->fwd_left ? have : s->fwd_left;

            if (n == 0)
                break;
            evbuffer_remove_buffer(in, out, n);
            s->fwd_left -= (uint32_t)n;
            s->reply_bytes += n;
            continue;
        }
        if (s->reply.state == REPLY_DONE)
            break;
        {
            uint8_t head[PACKET_HEADER_LEN + REPLY_PEEK];
            struct packet_header h;
            size_t need;
            bool first = s->reply.state == REPLY_FIRST && !s->reply.in_continuation;
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
                backend_lost(s, "the server asked for a local file (LOAD DATA LOCAL), which "
                                "the router never forwards");
                return;
            }
            k = reply_feed(&s->reply, head + PACKET_HEADER_LEN, need, h.payload_len);
            if (k < 0) {
                backend_lost(s, "malformed reply");
                return;
            }
            s->last_seq = h.seq;
            if (s->cmd == WIRE_COM_STMT_PREPARE && s->reply_bytes == 0 &&
                head[PACKET_HEADER_LEN] == WIRE_HDR_OK && h.payload_len <= REPLY_PEEK) {
                /* The client gets our statement id, not the server's. */
                packet_put_u32(head + PACKET_HEADER_LEN + 1, s->cur_ps->id);
                evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
                evbuffer_add(out, head, PACKET_HEADER_LEN + h.payload_len);
                s->reply_bytes += PACKET_HEADER_LEN + h.payload_len;
                continue;
            }
            s->fwd_left = PACKET_HEADER_LEN + h.payload_len;
        }
    }
    if (s->reply.state == REPLY_DONE && s->fwd_left == 0) {
        if (evbuffer_get_length(in) > 0) {
            backend_lost(s, "data after the end of the reply");
            return;
        }
        statement_done(s);
        if (s->state == SESS_IDLE)
            process_commands(s);
        return;
    }
    if (evbuffer_get_length(out) > SESS_OUT_HIGH) {
        /* The client reads slower than the backend sends: wait for it. */
        bufferevent_disable(s->be->bev, EV_READ);
        s->be_paused = true;
    }
}

static void backend_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    switch (s->state) {
    case SESS_SYNCING:
        sync_read(s, in);
        return;
    case SESS_FORWARDING:
        relay(s);
        return;
    default:
        backend_lost(s, "unexpected data from the server");
        return;
    }
}

static void backend_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        backend_lost(s, (what & BEV_EVENT_EOF) ? "connection closed by the server"
                                                : "connection error");
}

/* ---- client callbacks and timers ---- */

static void client_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (s->state >= SESS_IDLE && s->state <= SESS_FORWARDING && input_over_budget(s))
        return;
    switch (s->state) {
    case SESS_GREETING:
        handle_handshake(s);
        break;
    case SESS_AUTH_SWITCH:
        handle_auth_switch(s);
        break;
    case SESS_IDLE:
        run_commands(s);
        break;
    case SESS_CLOSING:
        evbuffer_drain(bufferevent_get_input(s->bev),
                       evbuffer_get_length(bufferevent_get_input(s->bev)));
        break;
    default:
        break;      /* pipelined: handled when the statement in flight ends */
    }
    mem_settle(s);
}

static void client_write(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (s->state == SESS_CLOSING) {
        shut_write_when_flushed(s);
        return;
    }
    if (s->be_paused && s->be) {
        s->be_paused = false;
        bufferevent_enable(s->be->bev, EV_READ);
        relay(s);
    }
    if (s->out_blocked && s->state != SESS_CLOSED && s->state != SESS_CLOSING) {
        s->out_blocked = false;
        if (s->state == SESS_IDLE)
            process_commands(s);
    }
}

static void client_event(struct bufferevent *bev, short what, void *arg)
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
        if (s->be && !holds_backend(s)) {
            /* Kept for one more statement after a write: give it back. */
            release_backend(s, true);
            arm_idle_timer(s);
            return;
        }
        session_close(s, holds_backend(s) ? SESS_END_PINNED_TIMEOUT : SESS_END_CLIENT_TIMEOUT);
        return;
    case SESS_GREETING:
    case SESS_AUTH_SWITCH:
    case SESS_CLOSING:
        session_close(s, s->state == SESS_CLOSING ? s->end : SESS_END_CLIENT_TIMEOUT);
        return;
    case SESS_WAIT_POOL: {
        struct pool *p = s->waiting_pool;

        if (s->buffered) {
            /* Held for a master: route again from the key (the map may
             * name a new one now). */
            s->buffered = false;
            session_set_state(s, SESS_IDLE);
            route_again(s);
            return;
        }
        unbuffer(s);
        if (p)
            pool_cancel_wait(p, s);
        snprintf(msg, sizeof(msg),
                 "shardwire: no connection to shard %s within %u ms (%s)",
                 p ? p->shard : "?", cfg_of(s)->pool_wait_timeout_ms,
                 p && p->last_error[0] ? p->last_error : "pool exhausted");
        atomic_fetch_add(&s->w->stats.backend_errors, 1);
        answer_err(s, WIRE_ER_CONNECT_TO_BACKEND, "HY000", msg);
        session_set_state(s, SESS_IDLE);
        arm_idle_timer(s);
        process_commands(s);
        return;
    }
    case SESS_SYNCING:
    case SESS_FORWARDING:
        backend_lost(s, "query timeout");
        return;
    case SESS_CLOSED:
        return;
    }
}
