/*
 * router/session_login.c - how a client logs in: the HandshakeResponse41,
 * TLS, the switch to mysql_native_password, COM_CHANGE_USER, and the
 * character sets a client may use.
 *
 * Must never: tell an unknown user from a wrong password (by answer or by
 * time), or write a client's user name unescaped into the log.
 */
#include "router/session_int.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/packet.h"
#include "protocol/wire.h"
#include "router/config.h"
#include "router/fault.h"
#include "router/log.h"
#include "router/util.h"
#include "router/worker.h"

/*
 * Checks the client's proof <tok>/<len> for user <u>. An unknown user (<u>
 * NULL) gets the same hash work against a throw-away hash, so the time of
 * the answer does not tell which user names exist.
 */
static bool auth_check(const struct session *s, const struct config_user *u,
                       const uint8_t *tok, size_t len)
{
    static const uint8_t no_user[HANDSHAKE_SHA1_LEN];
    bool ok = handshake_native_check(s->login.scramble, tok, len, u ? u->stage2 : no_user,
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
    session_send_err(s, seq, WIRE_ER_ACCESS_DENIED, "28000", msg);
    session_close_after_flush(s, SESS_END_AUTH);
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
    if (len >= sizeof(s->login.user) || memchr(name, 0, len)) {
        s->login.user[0] = 0;
        auth_failed(s, seq, name, len, with_password);
        return -1;
    }
    memcpy(s->login.user, name, len);
    s->login.user[len] = 0;
    stats_user(&s->st, s->login.user);
    return 0;
}

/* Authentication passed: check the database, say OK, go idle. */
static void auth_ok(struct session *s, uint8_t seq, const char *db, size_t db_len)
{
    const struct config *cfg = session_cfg(s);

    if (db_len && (strlen(cfg->analyze.database) != db_len ||
                   memcmp(db, cfg->analyze.database, db_len) != 0)) {
        char msg[256];

        snprintf(msg, sizeof(msg),
                 "shardwire: access denied to database '%.*s': this router serves only '%s'",
                 (int)(db_len > 64 ? 64 : db_len), db, cfg->analyze.database);
        session_send_err(s, seq, WIRE_ER_DBACCESS_DENIED, "42000", msg);
        session_close_after_flush(s, SESS_END_AUTH);
        return;
    }
    session_send_ok(s, seq);
    session_set_state(s, SESS_IDLE);
    session_arm_idle_timer(s);
    if (log_threshold >= LOG_DEBUG) {
        char user[sizeof(s->login.user) * 4];

        log_debug("session: authenticated id=%" PRIu64 " user=%s", s->id,
                  util_escape(user, sizeof(user), s->login.user, strlen(s->login.user)));
    }
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
        session_close_after_flush(s, SESS_END_RESOURCE);
        return;
    }
    bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
    /* The filter writes the socket through its own callbacks. */
    wflush_untrack(&s->wf, true);
    if (!fault_fail("tls_filter"))
        tls = bufferevent_openssl_filter_new(s->w->base, s->bev, ssl,
                                             BUFFEREVENT_SSL_ACCEPTING, 0);
    if (!tls) {
        SSL_free(ssl);      /* ours alone: see above */
        bufferevent_setcb(s->bev, session_client_read, session_client_write,
                          session_client_event, s);
        session_close_after_flush(s, SESS_END_RESOURCE);
        return;
    }
    s->login.ssl = ssl;
    s->bev = tls;
    s->login.tls = true;
    bufferevent_setcb(s->bev, session_client_read, session_client_write, session_client_event, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, session_cfg(s)->max_allowed_packet + 65536);
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
unsigned session_login_charset_primary(uint8_t id)
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

/*
 * The login packet at the head of the input (at most <max> bytes of
 * payload), contiguous: its payload, with its header in <*h>. NULL when it
 * has not all arrived yet, or when it was refused (a bad or oversize packet
 * gets error <bad_seq>, out of memory its own; the session then closes).
 */
static const uint8_t *login_packet(struct session *s, size_t max, uint8_t bad_seq,
                                   struct packet_header *h)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    const uint8_t *p;
    int k = session_peek_packet(in, max, h);

    if (k == 0)
        return NULL;
    if (k < 0) {
        session_send_err(s, bad_seq, WIRE_ER_HANDSHAKE, "08S01", "Bad handshake");
        session_close_after_flush(s, SESS_END_PROTOCOL);
        return NULL;
    }
    p = session_pullup(in, PACKET_HEADER_LEN + h->payload_len);
    if (!p) {
        session_send_err(s, (uint8_t)(h->seq + 1), WIRE_ER_OUT_OF_RESOURCES, "HY000",
                         "shardwire: out of memory");
        session_close_after_flush(s, SESS_END_RESOURCE);
        return NULL;
    }
    return p + PACKET_HEADER_LEN;
}

void session_login_handshake(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    const struct config *cfg = session_cfg(s);
    struct handshake_response r;
    struct packet_header h;
    const struct config_user *u;
    const uint8_t *p = login_packet(s, 65536, 2, &h);

    if (!p)
        return;
    if (handshake_parse_response(p, h.payload_len, &r) < 0) {
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        session_send_err(s, (uint8_t)(h.seq + 1), WIRE_ER_HANDSHAKE, "08S01", "Bad handshake");
        session_close_after_flush(s, SESS_END_PROTOCOL);
        return;
    }
    if (r.ssl_request) {
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        if (!s->w->router->tls || s->login.tls) {
            session_send_err(s, (uint8_t)(h.seq + 1), WIRE_ER_HANDSHAKE, "08S01",
                             s->login.tls ? "Bad handshake"
                                          : "shardwire: TLS is not enabled on this router");
            session_close_after_flush(s, SESS_END_PROTOCOL);
            return;
        }
        start_tls(s);
        return;
    }
    if (cfg->require_secure_transport && !s->login.tls) {
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        session_send_err(s, (uint8_t)(h.seq + 1), 3159, "08004",
                         "Connections using insecure transport are prohibited while "
                         "--require_secure_transport=ON.");
        session_close_after_flush(s, SESS_END_AUTH);
        return;
    }
    s->login.client_caps = r.capabilities & (SESS_SERVER_CAPS | WIRE_CAP_SSL);
    if (r.charset && client_charset(r.charset, cfg->analyze.key_type) < 0) {
        char msg[200];

        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        snprintf(msg, sizeof(msg),
                 "shardwire: the client character set (collation id %u) is not supported; "
                 "connect with utf8mb4 (or binary%s)", r.charset,
                 cfg->analyze.key_type == ANALYZE_KEY_INT ? ", utf8mb3, ascii" : "");
        session_send_err(s, (uint8_t)(h.seq + 1), 1115, "42000", msg);
        session_close_after_flush(s, SESS_END_PROTOCOL);
        return;
    }
    if (r.charset)
        s->login.charset = (uint8_t)client_charset(r.charset, cfg->analyze.key_type);
    session_route_recompute_sig(s);
    if (set_user(s, (uint8_t)(h.seq + 1), (const char *)p + r.user_off, r.user_len,
                 r.auth_len > 0) < 0) {
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        return;
    }
    u = config_find_user(cfg, s->login.user, strlen(s->login.user));

    if (r.plugin_len && !(r.plugin_len == strlen(HANDSHAKE_NATIVE_PLUGIN) &&
                          memcmp(p + r.plugin_off, HANDSHAKE_NATIVE_PLUGIN, r.plugin_len) == 0)) {
        uint8_t buf[64];
        size_t db_off = r.db_off, db_len = r.db_len;

        /* Keep the database name for after the switch: in the scratch buffer. */
        free(s->cmd.scratch);
        s->cmd.scratch = db_len ? strndup((const char *)p + db_off, db_len) : NULL;
        s->cmd.scratch_cap = db_len;
        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        session_send_packet(s, (uint8_t)(h.seq + 1), buf,
                            (size_t)handshake_write_auth_switch(buf, s->login.scramble));
        session_set_state(s, SESS_AUTH_SWITCH);
        return;
    }
    if (!auth_check(s, u, p + r.auth_off, r.auth_len)) {
        bool with_password = r.auth_len > 0;

        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        auth_failed(s, (uint8_t)(h.seq + 1), s->login.user, strlen(s->login.user), with_password);
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

void session_login_auth_switch(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    const struct config_user *u = config_find_user(session_cfg(s), s->login.user,
                                                   strlen(s->login.user));
    struct packet_header h;
    const uint8_t *p = login_packet(s, 1024, 4, &h);
    char *db = s->cmd.scratch;

    if (!p)
        return;
    if (!auth_check(s, u, p, h.payload_len)) {
        bool with_password = h.payload_len > 0;

        evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
        auth_failed(s, (uint8_t)(h.seq + 1), s->login.user, strlen(s->login.user), with_password);
        return;
    }
    evbuffer_drain(in, PACKET_HEADER_LEN + h.payload_len);
    s->cmd.scratch = NULL;
    s->cmd.scratch_cap = 0;
    auth_ok(s, (uint8_t)(h.seq + 1), db, db ? strlen(db) : 0);
    free(db);
}

/*
 * COM_CHANGE_USER: a fresh session for another (or the same) app user. Its
 * state is dropped as for COM_RESET_CONNECTION. As on the server, the
 * client proves the password against the connection's original scramble;
 * a client that used another plugin is switched to mysql_native_password.
 */
void session_login_change_user(struct session *s, const uint8_t *payload, size_t payload_len)
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
        session_cmd_answer_err(s, WIRE_ER_UNKNOWN_COM, "08S01", "Malformed COM_CHANGE_USER");
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
        client_charset((uint8_t)charset, session_cfg(s)->analyze.key_type) >= 0)
        s->login.charset = (uint8_t)client_charset((uint8_t)charset,
                                                   session_cfg(s)->analyze.key_type);
    session_route_reset_state(s);
    if (user_len >= sizeof(s->login.user) || memchr(body + user_off, 0, user_len)) {
        uint8_t seq = (uint8_t)(s->cmd.last_seq + 1);
        char name[64];

        /* Copied out first: consuming the command frees <body>. */
        snprintf(name, sizeof(name), "%.*s", (int)(sizeof(name) - 1), (const char *)body + user_off);
        session_cmd_consume(s);
        s->login.user[0] = 0;
        auth_failed(s, seq, name, strlen(name), alen > 0);
        return;
    }
    memcpy(s->login.user, body + user_off, user_len);
    s->login.user[user_len] = 0;
    u = config_find_user(session_cfg(s), s->login.user, user_len);
    if (native) {
        char db[ANALYZE_NAME_MAX * 2];
        size_t n = db_len < sizeof(db) ? db_len : sizeof(db) - 1;
        uint8_t seq = (uint8_t)(s->cmd.last_seq + 1);

        memcpy(db, body + db_off, n);
        if (!auth_check(s, u, body + auth_off, alen)) {
            session_cmd_consume(s);
            auth_failed(s, seq, s->login.user, strlen(s->login.user), alen > 0);
            return;
        }
        session_cmd_consume(s);
        session_set_state(s, SESS_AUTH_SWITCH);     /* auth_ok() moves on to IDLE */
        auth_ok(s, seq, db, n);
        return;
    }
    {
        /* <body> may live in s->cmd.scratch itself (a command joined from
         * several packets): copy before freeing. */
        char *db = db_len ? strndup((const char *)body + db_off, db_len) : NULL;

        free(s->cmd.scratch);
        s->cmd.scratch = db;
        s->cmd.scratch_cap = 0;
    }
    session_cmd_consume(s);
    session_send_packet(s, (uint8_t)(s->cmd.last_seq + 1), buf,
                        (size_t)handshake_write_auth_switch(buf, s->login.scramble));
    session_set_state(s, SESS_AUTH_SWITCH);
}
