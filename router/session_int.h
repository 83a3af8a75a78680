/*
 * router/session_int.h - what the parts of a session (router/session*.c)
 * call of each other. Private to them: nothing else includes it.
 */
#ifndef SHARDWIRE_ROUTER_SESSION_INT_H
#define SHARDWIRE_ROUTER_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/config.h"
#include "router/session.h"
#include "router/worker.h"

struct bufferevent;
struct evbuffer;
struct packet_header;

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

static inline const struct config *session_cfg(const struct session *s)
{
    return s->w->router->cfg;
}

enum session_mem_verdict { SESS_MEM_OK, SESS_MEM_SESSION, SESS_MEM_ROUTER };

/* session.c */
void session_set_state(struct session *s, enum sess_state to);
void session_arm_timer(struct session *s, unsigned ms);
void session_arm_idle_timer(struct session *s);
uint8_t *session_pullup(struct evbuffer *buf, size_t n);
void session_out_add(struct bufferevent *bev, const void *p, size_t n);
void session_out_move(struct evbuffer *src, struct bufferevent *bev, size_t n);
void session_send_packet(struct session *s, uint8_t seq, const uint8_t *payload, size_t len);
void session_send_err(struct session *s, uint8_t seq, uint16_t err_no, const char *sqlstate,
                      const char *msg);
uint16_t session_client_status(const struct session *s);
void session_send_ok(struct session *s, uint8_t seq);
void session_mem_settle(struct session *s);
enum session_mem_verdict session_mem_check(struct session *s, size_t extra, char *msg, size_t cap);
void session_close(struct session *s, enum sess_end end);
void session_close_after_flush(struct session *s, enum sess_end end);
int session_peek_packet(struct evbuffer *in, uint32_t limit, struct packet_header *h);
void session_client_read(struct bufferevent *bev, void *arg);
void session_client_write(struct bufferevent *bev, void *arg);
void session_client_event(struct bufferevent *bev, short what, void *arg);

/* session_login.c */
unsigned session_login_charset_primary(uint8_t id);
void session_login_handshake(struct session *s);
void session_login_auth_switch(struct session *s);
void session_login_change_user(struct session *s, const uint8_t *payload, size_t payload_len);

/* session_cmd.c */
void session_cmd_consume(struct session *s);
void session_cmd_answer_ok(struct session *s);
void session_cmd_answer_err(struct session *s, uint16_t err_no, const char *sqlstate,
                            const char *msg);
void session_cmd_run(struct session *s);
void session_cmd_process(struct session *s);
bool session_cmd_input_over_budget(struct session *s);

/* session_pstmt.c */
void session_pstmt_write_close(struct backend *be, uint32_t server_id);
void session_pstmt_write_prepare(struct backend *be, const struct pstmt *ps);
int session_pstmt_patch_id(struct evbuffer *buf, uint32_t id);
int session_pstmt_forward_execute(struct session *s, struct evbuffer *in);
void session_pstmt_prepare(struct session *s, const uint8_t *payload, size_t payload_len);
void session_pstmt_refuse_execute(struct session *s, struct pstmt *ps, uint16_t err_no,
                                  const char *sqlstate, const char *msg);
void session_pstmt_execute(struct session *s, const uint8_t *payload, size_t payload_len);
void session_pstmt_long_data(struct session *s, const uint8_t *payload, size_t payload_len);
void session_pstmt_close(struct session *s, const uint8_t *payload, size_t payload_len);
void session_pstmt_reset(struct session *s, const uint8_t *payload, size_t payload_len);
void session_pstmt_fetch(struct session *s, const uint8_t *payload, size_t payload_len);
void session_pstmt_prepare_done(struct session *s);

/* session_route.c */
bool session_route_holds_backend(const struct session *s);
void session_route_update_hold(struct session *s);
void session_route_recompute_sig(struct session *s);
void session_route_detach(struct session *s, bool reusable);
void session_route_release(struct session *s, bool reusable);
void session_route_analyze(struct session *s, const char *sql, size_t len, bool prepared);
/* The session's tenant scope (the transaction's, else the session's): the
 * key's length with *<key> set, or 0 when unscoped. */
size_t session_route_scope(const struct session *s, const char **key);
/* Sets (<on>: to the canonical key <key>/<len>) or ends the tenant scope
 * <scope> (ANALYZE_SCOPE_SESSION or _TXN) of <s>. */
void session_route_set_scope(struct session *s, unsigned scope, bool on, const char *key,
                             size_t len);
void session_route_reject(struct session *s, const char *sql, size_t len);
void session_route_forward(struct session *s);
void session_route_start(struct session *s, bool begins_txn);
void session_route_anywhere(struct session *s);
void session_route_unbuffer(struct session *s);
void session_route_by_key(struct session *s);
void session_route_query(struct session *s, const uint8_t *payload, size_t payload_len);
void session_route_reset_state(struct session *s);
void session_route_again(struct session *s);

/* session_move.c */
/* The statement being dispatched comes after session_move_cut() ended the
 * session's idle transaction: answers it with the error that says so and
 * returns true; a ROLLBACK (<rollback>) is let through (it is answered OK:
 * the transaction is gone). False when nothing was cut. */
bool session_move_answer_cut(struct session *s, bool rollback);

/* session_relay.c */
void session_relay_backend_lost(struct session *s, const char *why);
void session_relay(struct session *s);
void session_relay_backend_read(struct bufferevent *bev, void *arg);
void session_relay_backend_event(struct bufferevent *bev, short what, void *arg);

#endif
