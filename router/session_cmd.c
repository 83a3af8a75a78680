/*
 * router/session_cmd.c - how a command is framed (all its packets, up to
 * max_allowed_packet), dispatched, and bounded per wakeup and by memory;
 * and the simple commands the router answers itself (PING, INIT_DB,
 * STATISTICS, SET_OPTION, RESET_CONNECTION, QUIT).
 *
 * Must never: keep a pointer into the client's input across a call that
 * can consume or move it.
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
#include "router/worker.h"

/*
 * Finds the command at the head of the client's input: all its packets
 * (a payload of exactly PACKET_MAX_PAYLOAD continues). Returns 1 with
 * <s->cmd.bytes>/<s->cmd.last_seq>/<*payload_len> set, 0 if it has not all
 * arrived, -1 if it is larger than max_allowed_packet.
 */
static int command_ready(struct session *s, size_t *payload_len)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t have = evbuffer_get_length(in), pos = 0, total = 0;
    uint32_t limit = session_cfg(s)->max_allowed_packet;

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
            s->cmd.bytes = pos;
            s->cmd.last_seq = hdr[3];
            *payload_len = total;
            return 1;
        }
    }
}

/* The command's payload as one contiguous block (joined into s->cmd.scratch
 * when it spans packets). NULL when out of memory. */
static const uint8_t *command_payload(struct session *s, size_t payload_len)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t pos = 0, at = 0;

    if (s->cmd.bytes == PACKET_HEADER_LEN + payload_len) {
        const uint8_t *p = session_pullup(in, s->cmd.bytes);

        return p ? p + PACKET_HEADER_LEN : NULL;
    }
    if (s->cmd.scratch_cap < payload_len) {
        char *n = realloc(s->cmd.scratch, payload_len);

        if (!n)
            return NULL;
        s->cmd.scratch = n;
        s->cmd.scratch_cap = payload_len;
    }
    while (at < payload_len) {
        uint8_t hdr[PACKET_HEADER_LEN];
        struct evbuffer_ptr ptr;
        uint32_t len;

        evbuffer_ptr_set(in, &ptr, pos, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(in, &ptr, hdr, sizeof(hdr));
        len = packet_u24(hdr);
        evbuffer_ptr_set(in, &ptr, pos + PACKET_HEADER_LEN, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(in, &ptr, s->cmd.scratch + at, len);
        at += len;
        pos += PACKET_HEADER_LEN + len;
    }
    return (const uint8_t *)s->cmd.scratch;
}

/* The command was answered by the router: drop its packets. */
void session_cmd_consume(struct session *s)
{
    evbuffer_drain(bufferevent_get_input(s->bev), s->cmd.bytes);
    s->cmd.bytes = 0;
}

void session_cmd_answer_ok(struct session *s)
{
    stats_answer(s->w->counters, &s->st, false);
    session_cmd_consume(s);
    session_send_ok(s, (uint8_t)(s->cmd.last_seq + 1));
}

void session_cmd_answer_err(struct session *s, uint16_t err_no, const char *sqlstate,
                            const char *msg)
{
    stats_answer(s->w->counters, &s->st, true);
    session_cmd_consume(s);
    session_send_err(s, (uint8_t)(s->cmd.last_seq + 1), err_no, sqlstate, msg);
}

static void handle_init_db(struct session *s, const uint8_t *payload, size_t payload_len)
{
    const char *db = session_cfg(s)->analyze.database;
    char msg[256];

    if (payload_len - 1 == strlen(db) && memcmp(payload + 1, db, payload_len - 1) == 0) {
        session_cmd_answer_ok(s);
        return;
    }
    snprintf(msg, sizeof(msg),
             "shardwire: access denied to database '%.*s': this router serves only '%s'",
             (int)(payload_len - 1 > 64 ? 64 : payload_len - 1), (const char *)payload + 1, db);
    session_cmd_answer_err(s, WIRE_ER_DBACCESS_DENIED, "42000", msg);
}

static void handle_reset_connection(struct session *s, const uint8_t *payload,
                                    size_t payload_len)
{
    (void)payload;
    (void)payload_len;
    session_route_reset_state(s);
    session_cmd_answer_ok(s);
}

/* COM_STATISTICS: one text packet, no OK. */
static void handle_statistics(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct stats *st = s->w->counters;
    char text[256];
    int n;

    (void)payload;
    (void)payload_len;
    n = snprintf(text, sizeof(text),
                 "Threads: %u  Questions: %" PRIu64 "  Routed: %" PRIu64 "  Rejected: %" PRIu64
                 "  (shardwire %s, this worker)",
                 atomic_load(&s->w->router->n_clients), stats_statements(st),
                 STATS_GET(st->routed), stats_rejected(st), SHARDWIRE_VERSION);
    session_cmd_consume(s);
    session_send_packet(s, (uint8_t)(s->cmd.last_seq + 1), (const uint8_t *)text, (size_t)n);
}

/* COM_SET_OPTION: multi-statements on/off. Answered with an EOF, as the
 * server does; each query is still analysed as one statement (a second
 * one after ';' is refused), so ON changes nothing else. */
static void handle_set_option(struct session *s, const uint8_t *payload, size_t payload_len)
{
    uint8_t buf[8];

    if (payload_len != 3 || packet_u16(payload + 1) > 1) {
        session_cmd_answer_err(s, WIRE_ER_UNKNOWN_COM, "08S01", "Unknown command");
        return;
    }
    session_cmd_consume(s);
    session_send_packet(s, (uint8_t)(s->cmd.last_seq + 1), buf,
                        reply_write_eof(buf, 0, session_client_status(s)));
}

static void handle_quit(struct session *s, const uint8_t *payload, size_t payload_len)
{
    (void)payload;
    (void)payload_len;
    session_cmd_consume(s);
    session_close(s, SESS_END_QUIT);
}

static void handle_ping(struct session *s, const uint8_t *payload, size_t payload_len)
{
    (void)payload;
    (void)payload_len;
    session_cmd_answer_ok(s);
}

/* COM_FIELD_LIST: deprecated, but some drivers send it; any shard has the
 * schema. */
static void handle_field_list(struct session *s, const uint8_t *payload, size_t payload_len)
{
    (void)payload;
    (void)payload_len;
    session_route_anywhere(s);
}

typedef void command_fn(struct session *s, const uint8_t *payload, size_t payload_len);

/* The commands we serve; anything else gets ER_UNKNOWN_COM. */
static command_fn *const commands[256] = {
    [WIRE_COM_QUIT] = handle_quit,
    [WIRE_COM_PING] = handle_ping,
    [WIRE_COM_INIT_DB] = handle_init_db,
    [WIRE_COM_QUERY] = session_route_query,
    [WIRE_COM_FIELD_LIST] = handle_field_list,
    [WIRE_COM_STATISTICS] = handle_statistics,
    [WIRE_COM_CHANGE_USER] = session_login_change_user,
    [WIRE_COM_STMT_PREPARE] = session_pstmt_prepare,
    [WIRE_COM_STMT_EXECUTE] = session_pstmt_execute,
    [WIRE_COM_STMT_SEND_LONG_DATA] = session_pstmt_long_data,
    [WIRE_COM_STMT_CLOSE] = session_pstmt_close,
    [WIRE_COM_STMT_RESET] = session_pstmt_reset,
    [WIRE_COM_SET_OPTION] = handle_set_option,
    [WIRE_COM_STMT_FETCH] = session_pstmt_fetch,
    [WIRE_COM_RESET_CONNECTION] = handle_reset_connection,
};

/* Dispatches the complete command at the head of the input. */
static void dispatch(struct session *s, size_t payload_len)
{
    const uint8_t *payload;
    char msg[128];

    s->n_stmts++;
    s->route.pinned_before = s->route.pinned;
    s->cmd.kind = SESS_CMD_FORWARD;
    s->route.retried = false;
    free(s->route.pending_set);
    s->route.pending_set = NULL;
    s->route.pending_modes = -1;
    s->route.rewritten = false;
    if (payload_len == 0) {
        session_cmd_answer_err(s, WIRE_ER_UNKNOWN_COM, "08S01", "shardwire: empty command packet");
        return;
    }
    payload = command_payload(s, payload_len);
    if (!payload) {
        session_cmd_answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", "shardwire: out of memory");
        return;
    }
    s->cmd.code = payload[0];
    stats_begin(s->w->counters, &s->st, s->cmd.code, s->login.user);
    if (!commands[s->cmd.code]) {
        snprintf(msg, sizeof(msg), "shardwire: unknown or unsupported command 0x%02x", s->cmd.code);
        session_cmd_answer_err(s, WIRE_ER_UNKNOWN_COM, "08S01", msg);
        return;
    }
    commands[s->cmd.code](s, payload, payload_len);
    /* A joined multi-packet command is not needed once handled (its bytes
     * left the input or were answered): give the memory back rather than
     * keep up to max_allowed_packet per session. After an auth switch the
     * scratch holds the database name instead. */
    if (payload == (const uint8_t *)s->cmd.scratch && s->state != SESS_AUTH_SWITCH &&
        s->state != SESS_CLOSED) {
        free(s->cmd.scratch);
        s->cmd.scratch = NULL;
        s->cmd.scratch_cap = 0;
    }
}

void session_cmd_run(struct session *s)
{
    s->cmd.burst = 0;
    while (s->state == SESS_IDLE) {
        size_t payload_len;
        int k = command_ready(s, &payload_len);

        if (k == 0)
            return;
        if (k < 0) {
            session_send_err(s, 1, WIRE_ER_NET_PACKET_TOO_LARGE, "08S01",
                             "Got a packet bigger than 'max_allowed_packet' bytes");
            session_close_after_flush(s, SESS_END_PROTOCOL);
            return;
        }
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SESS_OUT_HIGH) {
            /* The client sends commands but does not read the replies:
             * handle no more until it does (session_client_write() resumes), whatever
             * kind of reply it is, so its unread output stays bounded. Its
             * input is bounded by the read watermark (one command). */
            s->cmd.out_blocked = true;
            return;
        }
        if (++s->cmd.burst > SESS_BURST) {
            /* Let other sessions run; come back on the next loop turn. */
            bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            return;
        }
        session_arm_idle_timer(s);
        dispatch(s, payload_len);
    }
}

void session_cmd_process(struct session *s)
{
    session_cmd_run(s);
    session_mem_settle(s);
}

/*
 * The client's unprocessed input (a half-received command, pipelined ones)
 * passes session_memory_limit by itself (what the session holds otherwise
 * is checked when it grows: a PREPARE, a SET, long data), or passes 64 kB
 * while the router is over router_memory_limit: the session is closed,
 * with error 1041 when it is between statements. Returns true when it was.
 */
bool session_cmd_input_over_budget(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t have = evbuffer_get_length(in);
    enum session_mem_verdict v = SESS_MEM_OK;
    char msg[300];
    uint8_t hdr[PACKET_HEADER_LEN];

    if (have > session_cfg(s)->session_memory_limit) {
        v = SESS_MEM_SESSION;
        snprintf(msg, sizeof(msg), "shardwire: %zu bytes of unprocessed commands, over "
                 "session_memory_limit=%" PRIu64, have, session_cfg(s)->session_memory_limit);
    } else if (have > 65536 && session_mem_check(s, 0, msg, sizeof(msg)) == SESS_MEM_ROUTER) {
        v = SESS_MEM_ROUTER;
    }
    if (v == SESS_MEM_OK)
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
        session_send_err(s, seq, WIRE_ER_OUT_OF_RESOURCES, "HY000", msg);
        session_close_after_flush(s, SESS_END_RESOURCE);
    } else {
        /* A reply is being relayed: an ERR now would corrupt it. */
        session_close(s, SESS_END_RESOURCE);
    }
    return true;
}
