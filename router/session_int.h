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

static inline const struct config *cfg_of(const struct session *s)
{
    return s->w->router->cfg;
}

enum mem_verdict { MEM_OK, MEM_SESSION, MEM_ROUTER };

/* session.c */
void session_set_state(struct session *s, enum sess_state to);
void arm_timer(struct session *s, unsigned ms);
void arm_idle_timer(struct session *s);
uint8_t *pullup(struct evbuffer *buf, size_t n);
void send_packet(struct session *s, uint8_t seq, const uint8_t *payload, size_t len);
void send_err(struct session *s, uint8_t seq, uint16_t err_no, const char *sqlstate,
              const char *msg);
uint16_t client_status(const struct session *s);
void send_ok(struct session *s, uint8_t seq);
void mem_settle(struct session *s);
enum mem_verdict mem_check(struct session *s, size_t extra, char *msg, size_t cap);
void session_close(struct session *s, enum sess_end end);
void close_after_flush(struct session *s, enum sess_end end);
int peek_packet(struct evbuffer *in, uint32_t limit, struct packet_header *h);
void client_read(struct bufferevent *bev, void *arg);
void client_write(struct bufferevent *bev, void *arg);
void client_event(struct bufferevent *bev, short what, void *arg);

/* session_login.c */
unsigned charset_primary(uint8_t id);
void handle_handshake(struct session *s);
void handle_auth_switch(struct session *s);
void handle_change_user(struct session *s, const uint8_t *payload, size_t payload_len);

/* session_cmd.c */
void consume_command(struct session *s);
void answer_ok(struct session *s);
void answer_err(struct session *s, uint16_t err_no, const char *sqlstate,
                const char *msg);
void run_commands(struct session *s);
void process_commands(struct session *s);
bool input_over_budget(struct session *s);

/* session_pstmt.c */
void write_stmt_close(struct backend *be, uint32_t server_id);
void write_prepare(struct backend *be, const struct pstmt *ps);
int patch_stmt_id(struct evbuffer *buf, uint32_t id);
int forward_execute(struct session *s, struct evbuffer *in, struct evbuffer *out);
void handle_prepare(struct session *s, const uint8_t *payload, size_t payload_len);
void refuse_execute(struct session *s, struct pstmt *ps, uint16_t err_no,
                    const char *sqlstate, const char *msg);
void handle_execute(struct session *s, const uint8_t *payload, size_t payload_len);
void handle_long_data(struct session *s, const uint8_t *payload, size_t payload_len);
void handle_stmt_close(struct session *s, const uint8_t *payload, size_t payload_len);
void handle_stmt_reset(struct session *s, const uint8_t *payload, size_t payload_len);
void handle_fetch(struct session *s, const uint8_t *payload, size_t payload_len);
void prepare_done(struct session *s);

/* session_route.c */
bool holds_backend(const struct session *s);
void update_hold(struct session *s);
void recompute_sig(struct session *s);
void detach_backend(struct session *s, bool reusable);
void release_backend(struct session *s, bool reusable);
void analyze_with_rules(struct session *s, const char *sql, size_t len);
void reject_statement(struct session *s, const char *sql, size_t len);
void forward_command(struct session *s);
void start_statement(struct session *s, bool begins_txn);
void go_anywhere(struct session *s);
void unbuffer(struct session *s);
void handle_route(struct session *s);
void handle_query(struct session *s, const uint8_t *payload, size_t payload_len);
void reset_session_state(struct session *s);
void route_again(struct session *s);

/* session_relay.c */
void backend_lost(struct session *s, const char *why);
void relay(struct session *s);
void backend_read(struct bufferevent *bev, void *arg);
void backend_event(struct bufferevent *bev, short what, void *arg);

#endif
