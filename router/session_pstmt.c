/*
 * router/session_pstmt.c - prepared statements: PREPARE, EXECUTE (routed by
 * its key parameter, with ids rewritten and parameter types re-sent), long
 * data, FETCH, RESET and CLOSE, and remembering the server's statements on
 * each backend connection.
 *
 * Must never: run an EXECUTE whose long data was refused, or send long data
 * that a refused EXECUTE would leave on the server.
 */
#include "router/session_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/packet.h"
#include "protocol/reply.h"
#include "protocol/stmt.h"
#include "protocol/wire.h"
#include "router/backend.h"
#include "router/fault.h"
#include "router/worker.h"

void session_pstmt_write_close(struct backend *be, uint32_t server_id)
{
    uint8_t pkt[PACKET_HEADER_LEN + 5];

    packet_write_header(pkt, 5, 0);
    pkt[PACKET_HEADER_LEN] = WIRE_COM_STMT_CLOSE;
    packet_put_u32(pkt + PACKET_HEADER_LEN + 1, server_id);
    session_out_add(be->bev, pkt, sizeof(pkt));
}

void session_pstmt_write_prepare(struct backend *be, const struct pstmt *ps)
{
    uint8_t hdr[PACKET_HEADER_LEN + 1];

    packet_write_header(hdr, (uint32_t)(ps->sql_len + 1), 0);
    hdr[PACKET_HEADER_LEN] = WIRE_COM_STMT_PREPARE;
    session_out_add(be->bev, hdr, sizeof(hdr));
    session_out_add(be->bev, ps->sql, ps->sql_len);
}

/* Rewrites the statement id of the packet at the head of <buf> (a COM_STMT_*
 * command: the id follows the command byte). Returns 0, or -1 when out of
 * memory (nothing changed). */
int session_pstmt_patch_id(struct evbuffer *buf, uint32_t id)
{
    uint8_t *p = session_pullup(buf, PACKET_HEADER_LEN + 5);

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
int session_pstmt_forward_execute(struct session *s, struct evbuffer *in)
{
    struct bufferevent *out = s->be->bev;
    struct pstmt *ps = s->ps.cur;
    struct pstmt_backend_entry *e = pstmt_cache_find(&s->be->stmts, ps);
    size_t payload_len = s->cmd.bytes - PACKET_HEADER_LEN;
    struct stmt_execute ex;
    bool need_types;
    uint8_t *p;

    if (!e)
        return -1;
    p = session_pullup(in, s->cmd.bytes < PACKET_HEADER_LEN + PACKET_MAX_PAYLOAD
                               ? s->cmd.bytes : PACKET_HEADER_LEN + PACKET_MAX_PAYLOAD);
    /* Only the first packet is contiguous at <p>; the fields parsed here all
     * lie in it. */
    if (!p || stmt_parse_execute(p + PACKET_HEADER_LEN,
                                 payload_len < PACKET_MAX_PAYLOAD ? payload_len : PACKET_MAX_PAYLOAD,
                                 ps->n_params, &ex) < 0)
        return -1;
    need_types = !(ps->n_params == 0 || ex.new_types || e->types_sig == ps->types_sig);
    /* Every refusal comes before any long data moves to the server, which
     * would keep it for the next EXECUTE of its statement. */
    if (need_types && (s->cmd.bytes != PACKET_HEADER_LEN + payload_len ||
                       payload_len + 2 * (size_t)ps->n_params >= PACKET_MAX_PAYLOAD || !ps->types))
        return -1;
    while (ps->long_data && evbuffer_get_length(ps->long_data) >= PACKET_HEADER_LEN) {
        uint8_t hdr[PACKET_HEADER_LEN];

        evbuffer_copyout(ps->long_data, hdr, sizeof(hdr));
        if (session_pstmt_patch_id(ps->long_data, e->server_id) < 0) {
            s->be->state = BACKEND_BROKEN;      /* its server holds part of the data */
            return -1;
        }
        session_out_move(ps->long_data, out, PACKET_HEADER_LEN + packet_u24(hdr));
    }
    pstmt_clear_long_data(ps);
    packet_put_u32(p + PACKET_HEADER_LEN + 1, e->server_id);
    if (!need_types) {
        if (ex.new_types)
            e->types_sig = ps->types_sig;
        session_out_move(in, out, s->cmd.bytes);
        return 0;
    }
    /* Re-send the remembered types: bound flag 1, types after it. */
    {
        uint8_t hdr[PACKET_HEADER_LEN], one = 1;
        size_t head = ex.values_off - 1;     /* up to the bound flag */

        packet_write_header(hdr, (uint32_t)(payload_len + 2 * (size_t)ps->n_params), p[3]);
        session_out_add(out, hdr, sizeof(hdr));
        session_out_add(out, p + PACKET_HEADER_LEN, head);
        session_out_add(out, &one, 1);
        session_out_add(out, ps->types, 2 * (size_t)ps->n_params);
        session_out_add(out, p + PACKET_HEADER_LEN + ex.values_off, payload_len - ex.values_off);
        evbuffer_drain(in, s->cmd.bytes);
    }
    e->types_sig = ps->types_sig;
    return 0;
}

static struct pstmt *find_stmt(struct session *s, const uint8_t *payload, size_t payload_len,
                               const char *what)
{
    struct pstmt *ps = payload_len >= 5 ? pstmt_find(&s->ps.stmts, packet_u32(payload + 1)) : NULL;
    char msg[200];

    if (ps)
        return ps;
    snprintf(msg, sizeof(msg), "Unknown prepared statement handler (%u) given to %s",
             payload_len >= 5 ? packet_u32(payload + 1) : 0, what);
    session_cmd_answer_err(s, WIRE_ER_UNKNOWN_STMT_HANDLER, "HY000", msg);
    return NULL;
}

/* Sends the statement in flight where its analysis says: the key's shard, or
 * (no key needed) the attached backend or any. */
static void go_by_analysis(struct session *s)
{
    if (s->cmd.ar.kind == ANALYZE_ROUTE)
        session_route_by_key(s);
    else
        session_route_anywhere(s);
}

/* Notes the session's tenant scope as the one <ps> is read under now. */
static void note_scope(struct session *s, struct pstmt *ps)
{
    const char *key;

    ps->scope_len = session_route_scope(s, &key);
    ps->scoped = ps->scope_len > 0;
    if (ps->scoped)
        memcpy(ps->scope_key, key, ps->scope_len);
}

/* Whether the session's tenant scope is another than <ps> was read under. */
static bool scope_moved(struct session *s, const struct pstmt *ps)
{
    const char *key;
    size_t klen = session_route_scope(s, &key);

    return klen != ps->scope_len || (klen && memcmp(key, ps->scope_key, klen) != 0);
}

/*
 * Reads <ps> again under the session's tenant scope, which changed since it
 * was read (drivers keep a statement prepared for the connection's life, and
 * a pooled connection serves one user after another): the new analysis and
 * the text servers prepare (the new scope's rewrite, or the client's own)
 * replace the old ones. The server's statement for the new text is prepared
 * lazily, like any on a connection that has not seen it. Returns 0, or -1
 * after answering the EXECUTE (the statement is refused under this scope).
 */
static int reread_scoped(struct session *s, struct pstmt *ps)
{
    size_t len;
    const char *sql = pstmt_client_sql(ps, &len);
    unsigned n_params = ps->n_params;       /* the server's count */

    session_route_analyze(s, sql, len, true);
    if (s->cmd.ar.kind == ANALYZE_REJECT) {
        stats_reject(s->w->counters, &s->st, STATS_REJECT_ANALYZER);
        session_pstmt_refuse_execute(s, ps, s->cmd.ar.err_no, s->cmd.ar.sqlstate,
                                     s->cmd.ar.msg ? s->cmd.ar.msg : "shardwire: refused");
        return -1;
    }
    if (pstmt_set_sent(ps, s->route.rewritten ? s->route.rewrite.p : NULL,
                       s->route.rewrite.len) < 0) {
        session_pstmt_refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                                     "shardwire: out of memory");
        return -1;
    }
    ps->ar = s->cmd.ar;
    note_scope(s, ps);
    if (ps->ar.kind == ANALYZE_ROUTE && ps->ar.scope_params && ps->ar.n_params != n_params)
        ps->miscounted = true;      /* as session_pstmt_prepare_done() */
    return 0;
}

static int bound_key(struct session *s, struct pstmt *ps, const uint8_t *payload,
                     size_t payload_len, const struct stmt_execute *ex, unsigned i,
                     char key[ANALYZE_KEY_MAX]);

/*
 * Adds the statement being prepared to the session's table, after checking
 * that <mem> more bytes fit the session's and the router's memory limits.
 * Returns it, or NULL when it answered the client with the error.
 */
static struct pstmt *register_stmt(struct session *s, const char *sql, size_t len, size_t mem)
{
    struct pstmt *ps;
    char msg[300];

    if (session_mem_check(s, mem, msg, sizeof(msg)) != SESS_MEM_OK) {
        session_cmd_answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", msg);
        return NULL;
    }
    ps = pstmt_add(&s->ps.stmts, sql, len, &s->cmd.ar);
    if (!ps)
        session_cmd_answer_err(s, 1461, "42000",
                               "Can't create more than max_prepared_stmt_count statements (current "
                               "value: 16382)");
    return ps;
}

/*
 * A PREPARE the router answers itself: SET @shardwire_user (or
 * @shardwire_txn_user) = ? or = K, sent prepared by drivers that prepare
 * everything. No server sees it; each EXECUTE sets the scope
 * (execute_local()). The reply is the server's: PREPARE_OK, then a
 * definition per parameter and an EOF.
 */
static void prepare_local(struct session *s, const char *sql, size_t len)
{
    /* a parameter: "?", binary VAR_STRING, as MariaDB describes one */
    static const uint8_t param_def[] = {3, 'd', 'e', 'f', 0, 0, 0, 1, '?', 0, 0x0c, 63, 0,
                                        0, 0, 0, 0, 0xfd, 0x80, 0, 0, 0, 0};
    uint8_t ok[12], eof[16], seq = (uint8_t)(s->cmd.last_seq + 1);
    struct pstmt *ps = register_stmt(s, sql, len, len);

    if (!ps)
        return;
    ps->local = true;
    ps->n_params = (uint16_t)s->cmd.ar.n_params;
    ps->sql_modes = s->route.sql_modes;
    stats_answer(s->w->counters, &s->st, false);
    session_cmd_consume(s);
    ok[0] = 0x00;
    packet_put_u32(ok + 1, ps->id);
    ok[5] = ok[6] = 0;                      /* no columns */
    ok[7] = (uint8_t)ps->n_params;
    ok[8] = (uint8_t)(ps->n_params >> 8);
    ok[9] = ok[10] = ok[11] = 0;            /* filler, no warnings */
    session_send_packet(s, seq++, ok, sizeof(ok));
    for (unsigned i = 0; i < ps->n_params; i++)
        session_send_packet(s, seq++, param_def, sizeof(param_def));
    if (ps->n_params)
        session_send_packet(s, seq, eof, reply_write_eof(eof, 0, session_client_status(s)));
}

/* EXECUTE of a statement prepare_local() answered: sets the scope to the
 * statement's key, or the one bound to its '?' (NULL ends the scope). */
static void execute_local(struct session *s, struct pstmt *ps, const uint8_t *payload,
                          size_t payload_len, const struct stmt_execute *ex)
{
    const struct analyze_result *ar = &ps->ar;
    char key[ANALYZE_KEY_MAX];
    int n = (int)ar->key_len;

    if (ar->param_index >= 0) {
        unsigned i = (unsigned)ar->param_index;
        bool is_long = ps->long_mask && (ps->long_mask[i / 8] >> (i % 8) & 1);
        struct stmt_value v = { 0 };

        if (!is_long && stmt_param(payload, payload_len, ex, ps->types, ps->n_params,
                                   ps->long_mask, i, &v) == 0 && v.is_null)
            n = -1;
        else if ((n = bound_key(s, ps, payload, payload_len, ex, i, key)) < 0)
            return;
    } else if (!ar->scope_clear) {
        memcpy(key, ar->key, ar->key_len);
    }
    session_route_set_scope(s, ar->scope, !ar->scope_clear && n >= 0, key, n >= 0 ? (size_t)n : 0);
    pstmt_clear_long_data(ps);
    session_cmd_answer_ok(s);
}

void session_pstmt_prepare(struct session *s, const uint8_t *payload, size_t payload_len)
{
    const char *sql = (const char *)payload + 1;
    size_t len = payload_len - 1;
    struct pstmt *ps;

    s->ps.kept_be = s->be != NULL;
    session_route_analyze(s, sql, len, true);
    if (s->cmd.ar.kind == ANALYZE_REJECT) {
        session_route_reject(s, sql, len);
        return;
    }
    if (s->cmd.ar.kind == ANALYZE_LOCAL && s->cmd.ar.scope != ANALYZE_SCOPE_NONE) {
        prepare_local(s, sql, len);
        return;
    }
    switch (s->cmd.ar.stmt) {
    case ANALYZE_STMT_BEGIN:
    case ANALYZE_STMT_COMMIT:
    case ANALYZE_STMT_ROLLBACK:
    case ANALYZE_STMT_SAVEPOINT:
    case ANALYZE_STMT_USE:
        session_cmd_answer_err(s, 1295, "HY000",
                "shardwire: transaction control and USE cannot be prepared; send them as "
                "plain queries");
        return;
    default:
        break;
    }
    if (s->cmd.ar.kind == ANALYZE_ROUTE && s->cmd.ar.param_index >= 0 && s->cmd.ar.key_len == 0 &&
        s->cmd.ar.n_params == 0) {
        session_cmd_answer_err(s, WIRE_ER_UNKNOWN, "HY000", "shardwire: inconsistent analysis");
        return;
    }
    ps = register_stmt(s, sql, len, len + (s->route.rewritten ? s->route.rewrite.len : 0));
    if (!ps)
        return;
    if (s->route.rewritten && pstmt_set_sent(ps, s->route.rewrite.p, s->route.rewrite.len) < 0) {
        pstmt_remove(&s->ps.stmts, ps->id);
        session_cmd_answer_err(s, WIRE_ER_OUT_OF_RESOURCES, "HY000", "shardwire: out of memory");
        return;
    }
    ps->n_params = (uint16_t)s->cmd.ar.n_params;
    ps->sql_modes = s->route.sql_modes;
    note_scope(s, ps);
    s->ps.cur = ps;
    s->cmd.kind = SESS_CMD_PREPARE;
    if (s->cmd.ar.pins_session)
        s->route.pinned = true;
    /* A statement routed by a parameter can be prepared anywhere: every
     * shard has the same schema. A literal key picks its shard now. */
    if (s->cmd.ar.kind == ANALYZE_ROUTE && s->cmd.ar.param_index < 0)
        session_route_by_key(s);
    else
        session_route_anywhere(s);
}

/* An EXECUTE refused by the router: as on the server, the statement's long
 * data is spent, so a later EXECUTE never replays it. */
void session_pstmt_refuse_execute(struct session *s, struct pstmt *ps, uint16_t err_no,
                                  const char *sqlstate, const char *msg)
{
    pstmt_clear_long_data(ps);
    session_cmd_answer_err(s, err_no, sqlstate, msg);
}

/*
 * The canonical key bound to '?' <i> of the EXECUTE <payload> (parsed into
 * <ex>) of <ps>, into <key>. Returns its length, or -1 after refusing the
 * EXECUTE (NULL, sent as long data, or not a valid key).
 */
static int bound_key(struct session *s, struct pstmt *ps, const uint8_t *payload,
                     size_t payload_len, const struct stmt_execute *ex, unsigned i,
                     char key[ANALYZE_KEY_MAX])
{
    const struct analyze_config *cfg = analyze_config_of(s->w->analyze);
    bool is_long = ps->long_mask && i < ps->n_params && (ps->long_mask[i / 8] >> (i % 8) & 1);
    struct stmt_value v = { 0 };
    char msg[300];
    int n = -1;

    if (!is_long && stmt_param(payload, payload_len, ex, ps->types, ps->n_params,
                               ps->long_mask, i, &v) == 0)
        n = stmt_key_of(payload, &v, cfg->key_type, key);
    if (n >= 0)
        return n;
    snprintf(msg, sizeof(msg),
             "shardwire: parameter %u carries the %s and must be one valid %s key; got %s",
             i + 1, cfg->key_columns[0], cfg->key_type == ANALYZE_KEY_INT ? "integer" : "string",
             is_long ? "long data (COM_STMT_SEND_LONG_DATA)" :
             v.is_null ? "NULL" : "a value that is not one");
    stats_reject(s->w->counters, &s->st, STATS_REJECT_PARAMS);
    session_pstmt_refuse_execute(s, ps, WIRE_ER_NOT_SUPPORTED_YET, "42000", msg);
    return -1;
}

/*
 * Checks that every '?' i < 64 in <params> binds the key s->cmd.ar.key:
 * the session's user (<scope>), or the one bound to '?' param_index.
 * Returns 0, or -1 after refusing the EXECUTE.
 */
static int check_bound_keys(struct session *s, struct pstmt *ps, const uint8_t *payload,
                            size_t payload_len, const struct stmt_execute *ex, uint64_t params,
                            bool scope)
{
    const char *col = analyze_config_of(s->w->analyze)->key_columns[0];

    char key[ANALYZE_KEY_MAX], msg[300];

    for (; params; params &= params - 1) {
        unsigned i = (unsigned)__builtin_ctzll(params);
        int n = bound_key(s, ps, payload, payload_len, ex, i, key);

        if (n < 0)
            return -1;
        if ((size_t)n == s->cmd.ar.key_len && memcmp(key, s->cmd.ar.key, (size_t)n) == 0)
            continue;
        if (scope)
            snprintf(msg, sizeof(msg),
                     "shardwire: parameter %u names another user (%s) than the statement's "
                     "scope (SET @shardwire_user, @shardwire_txn_user or its scope comment); "
                     "a scoped session may touch only its user's rows",
                     i + 1, col);
        else
            snprintf(msg, sizeof(msg),
                     "shardwire: parameters %d and %u give two different %s values; one "
                     "statement may touch one user's rows only", ps->ar.param_index + 1, i + 1,
                     col);
        stats_reject(s->w->counters, &s->st, STATS_REJECT_PARAMS);
        session_pstmt_refuse_execute(s, ps, WIRE_ER_NOT_SUPPORTED_YET, "42000", msg);
        return -1;
    }
    return 0;
}

void session_pstmt_execute(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct pstmt *ps = find_stmt(s, payload, payload_len, "mysqld_stmt_execute");
    struct stmt_execute ex;
    char msg[300];

    if (!ps)
        return;
    if (ps->long_failed) {
        session_pstmt_refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                "shardwire: long data sent for this statement was refused (over "
                "max_allowed_packet or a memory limit); the statement was not executed");
        return;
    }
    if (stmt_parse_execute(payload, payload_len, ps->n_params, &ex) < 0) {
        session_pstmt_refuse_execute(s, ps, WIRE_ER_WRONG_ARGUMENTS, "HY000",
                                 "Incorrect arguments to mysqld_stmt_execute");
        return;
    }
    if (ex.new_types && pstmt_set_types(ps, payload + ex.types_off) < 0) {
        session_pstmt_refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                                     "shardwire: out of memory");
        return;
    }
    if (ps->n_params > 0 && !ps->types) {
        session_pstmt_refuse_execute(s, ps, WIRE_ER_WRONG_ARGUMENTS, "HY000",
                "Incorrect arguments to mysqld_stmt_execute (no parameter types sent)");
        return;
    }
    if (ps->local) {
        execute_local(s, ps, payload, payload_len, &ex);
        return;
    }
    if (ps->miscounted) {
        session_pstmt_refuse_execute(s, ps, WIRE_ER_NOT_SUPPORTED_YET, "42000",
                "shardwire: the server and the router count this statement's parameters "
                "differently; it cannot be routed");
        return;
    }
    /* read at PREPARE for the sql_mode of then (the server parsed it under
     * that mode too): never executed under another */
    if (ps->sql_modes != s->route.sql_modes) {
        session_pstmt_refuse_execute(s, ps, WIRE_ER_NOT_SUPPORTED_YET, "42000",
                "shardwire: sql_mode changed since this statement was prepared; prepare "
                "it again");
        return;
    }
    /* and for the tenant scope of then: under another, read again */
    if (ps->ar.kind == ANALYZE_ROUTE && scope_moved(s, ps) &&
        reread_scoped(s, ps) < 0)
        return;
    s->ps.cur = ps;
    s->cmd.ar = ps->ar;
    s->cmd.kind = SESS_CMD_STMT;
    if (s->route.move_cut && session_move_answer_cut(s, ps->ar.stmt == ANALYZE_STMT_ROLLBACK)) {
        pstmt_clear_long_data(ps);
        return;
    }
    if (ps->ar.kind == ANALYZE_REJECT) {
        session_pstmt_refuse_execute(s, ps, ps->ar.err_no, ps->ar.sqlstate, ps->ar.msg);
        return;
    }
    if (ps->ar.kind == ANALYZE_SESSION && ps->ar.stmt == ANALYZE_STMT_SET &&
        !ps->ar.pins_session) {
        /* A prepared SET (Node mysql2's execute(), PDO without emulation)
         * changes session state like a plain one. Without parameters its
         * text replays as a query on other connections; with them it cannot
         * be replayed, so the session stays on this connection. */
        free(s->route.pending_set);
        s->route.pending_set = NULL;
        if (ps->n_params == 0 &&
            session_mem_check(s, 2 * ps->sql_len + 2, msg, sizeof(msg)) != SESS_MEM_OK) {
            session_pstmt_refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000", msg);
            return;
        }
        if (ps->ar.sets_sql_mode)
            s->route.pending_modes = (int)ps->ar.sql_mode;
        if (ps->n_params == 0) {
            s->route.pending_set = fault_fail("set_copy") ? NULL : strndup(ps->sql, ps->sql_len);
            if (!s->route.pending_set) {
                session_pstmt_refuse_execute(s, ps, WIRE_ER_OUT_OF_RESOURCES, "HY000",
                                         "shardwire: out of memory; the SET was not run");
                return;
            }
        } else {
            s->route.pinned = true;
        }
    }
    if (ps->ar.kind == ANALYZE_ROUTE && ps->ar.param_index >= 0) {
        uint64_t params = ps->ar.key_params ? ps->ar.key_params
                                            : (uint64_t)1 << (ps->ar.param_index & 63);
        int n = bound_key(s, ps, payload, payload_len, &ex, (unsigned)ps->ar.param_index,
                          s->cmd.ar.key);

        if (n < 0)
            return;
        s->cmd.ar.key_len = (size_t)n;
        /* Every '?' that carries the key (a multi-row INSERT has one per
         * row) must name the same user; the lowest is param_index (the
         * analysis tracks the first 64 parameters). */
        params &= ~((uint64_t)1 << (ps->ar.param_index & 63));
        if (check_bound_keys(s, ps, payload, payload_len, &ex, params, false) < 0)
            return;
    }
    /* On a scoped session each '?' where the key goes was read as the
     * scope's user: it must bind exactly that. */
    if (ps->ar.kind == ANALYZE_ROUTE && ps->ar.scope_params &&
        check_bound_keys(s, ps, payload, payload_len, &ex, ps->ar.scope_params, true) < 0)
        return;
    go_by_analysis(s);
}

void session_pstmt_long_data(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct pstmt *ps = payload_len >= 7 ? pstmt_find(&s->ps.stmts, packet_u32(payload + 1)) : NULL;
    struct evbuffer *in = bufferevent_get_input(s->bev);
    unsigned param = payload_len >= 7 ? packet_u16(payload + 5) : 0;
    char msg[300];

    /* No reply, ever; an unknown statement or parameter is reported by the
     * EXECUTE that follows (the server's own behaviour). */
    if (!ps || param >= ps->n_params || s->cmd.bytes != PACKET_HEADER_LEN + payload_len) {
        session_cmd_consume(s);
        return;
    }
    if (!ps->long_data)
        ps->long_data = evbuffer_new();
    if (!ps->long_mask)
        ps->long_mask = calloc(((size_t)ps->n_params + 7) / 8, 1);
    if (ps->long_failed || !ps->long_data || !ps->long_mask ||
        ps->long_bytes + s->cmd.bytes > session_cfg(s)->max_allowed_packet ||
        session_mem_check(s, s->cmd.bytes, msg, sizeof(msg)) != SESS_MEM_OK) {
        /* Refused: the data is dropped and the EXECUTE that follows
         * fails, rather than running without it. */
        session_cmd_consume(s);
        pstmt_clear_long_data(ps);
        ps->long_failed = true;
        return;
    }
    ps->long_mask[param / 8] |= (uint8_t)(1u << (param % 8));
    {
        size_t before = evbuffer_get_length(ps->long_data);

        /* A short move (out of memory) would send the EXECUTE with part
         * of the value: refused like data over the limits. */
        evbuffer_remove_buffer(in, ps->long_data, s->cmd.bytes);
        if (evbuffer_get_length(ps->long_data) != before + s->cmd.bytes) {
            s->cmd.bytes = 0;       /* out of the input already */
            pstmt_clear_long_data(ps);
            ps->long_failed = true;
            return;
        }
    }
    pstmt_long_data_added(ps, s->cmd.bytes);
    s->cmd.bytes = 0;
}

void session_pstmt_close(struct session *s, const uint8_t *payload, size_t payload_len)
{
    uint32_t id = payload_len >= 5 ? packet_u32(payload + 1) : 0;

    /* No reply. The server-side statements stay cached on their backend
     * connections for whoever runs the same SQL next. */
    session_cmd_consume(s);
    if (s->ps.cursor_stmt == id)
        s->ps.cursor_stmt = 0;
    pstmt_remove(&s->ps.stmts, id);
}

void session_pstmt_reset(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct pstmt *ps = find_stmt(s, payload, payload_len, "mysqld_stmt_reset");

    if (!ps)
        return;
    pstmt_clear_long_data(ps);
    if (s->ps.cursor_stmt == ps->id && s->be && pstmt_cache_find(&s->be->stmts, ps)) {
        /* Closes the open cursor on the server. */
        s->ps.cursor_stmt = 0;
        s->ps.cur = ps;
        s->cmd.kind = SESS_CMD_STMT;
        session_route_start(s, false);
        return;
    }
    session_cmd_answer_ok(s);
}

void session_pstmt_fetch(struct session *s, const uint8_t *payload, size_t payload_len)
{
    struct pstmt *ps = find_stmt(s, payload, payload_len, "mysqld_stmt_fetch");
    char msg[120];

    if (!ps)
        return;
    if (s->ps.cursor_stmt != ps->id || !s->be || !pstmt_cache_find(&s->be->stmts, ps)) {
        snprintf(msg, sizeof(msg), "The statement (%u) has no open cursor.", ps->id);
        session_cmd_answer_err(s, 1421, "HY000", msg);
        return;
    }
    s->ps.cur = ps;
    s->cmd.kind = SESS_CMD_STMT;
    session_route_start(s, false);
}

/* A PREPARE went through: remember the server's statement on this
 * connection, and the parameter count the server found. */
void session_pstmt_prepare_done(struct session *s)
{
    const struct reply *r = &s->relay.reply;
    struct pstmt *ps = s->ps.cur;
    uint32_t evicted;

    s->ps.cur = NULL;
    if (r->is_error) {
        pstmt_remove(&s->ps.stmts, ps->id);
        return;
    }
    if (ps->ar.kind == ANALYZE_ROUTE && (ps->ar.param_index >= 0 || ps->ar.scope_params) &&
        ps->n_params != r->n_params)
        ps->miscounted = true;  /* the key's '?'s cannot be trusted: never executed */
    ps->n_params = r->n_params;
    ps->n_columns = r->n_columns;
    if (pstmt_cache_find(&s->be->stmts, ps))
        session_pstmt_write_close(s->be, r->stmt_id);        /* the connection had it already */
    else
        switch (pstmt_cache_add(&s->be->stmts, ps, r->stmt_id, &evicted)) {
        case 1:
            session_pstmt_write_close(s->be, evicted);
            break;
        case -1:        /* not cached: an EXECUTE prepares it again */
            session_pstmt_write_close(s->be, r->stmt_id);
            break;
        default:
            break;
        }
}
