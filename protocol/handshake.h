/*
 * protocol/handshake.h - the connection phase as a server: HandshakeV10,
 * HandshakeResponse41, auth switch, and the mysql_native_password check.
 *
 * Pure: the caller supplies the scramble (random bytes) and the buffers.
 */
#ifndef SHARDWIRE_PROTOCOL_HANDSHAKE_H
#define SHARDWIRE_PROTOCOL_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HANDSHAKE_SCRAMBLE_LEN 20
#define HANDSHAKE_SHA1_LEN     20
#define HANDSHAKE_NATIVE_PLUGIN "mysql_native_password"

struct handshake_greeting {
    const char *server_version;     /* NUL-terminated, e.g. "10.11.6-MariaDB-shardwire" */
    uint32_t    connection_id;
    uint8_t     scramble[HANDSHAKE_SCRAMBLE_LEN];
    uint32_t    capabilities;
    uint8_t     charset;
    uint16_t    status;
};

/* Writes the HandshakeV10 payload for <g> to <out> (room for <cap> bytes).
 * Returns the payload length, or -1 if <cap> is too small (256 always does
 * for a version string under 100 bytes). */
int handshake_write_greeting(uint8_t *out, size_t cap, const struct handshake_greeting *g);

/* What a HandshakeResponse41 carried. Offsets/lengths index the payload. */
struct handshake_response {
    uint32_t capabilities;
    uint32_t max_packet;
    uint8_t  charset;
    size_t   user_off, user_len;
    size_t   auth_off, auth_len;
    size_t   db_off, db_len;           /* db_len 0: none */
    size_t   plugin_off, plugin_len;   /* plugin_len 0: none named */
    bool     ssl_request;              /* only the 32-byte SSLRequest prefix */
};

/* Parses a HandshakeResponse41 (or SSLRequest) payload. Returns 0, or -1 if
 * it is malformed or the client does not speak protocol 4.1. */
int handshake_parse_response(const uint8_t *p, size_t len, struct handshake_response *r);

/* Writes an AuthSwitchRequest payload asking for mysql_native_password with
 * <scramble>. Returns the length (always < 64). */
int handshake_write_auth_switch(uint8_t *out, const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN]);

/*
 * Checks a mysql_native_password response <resp>/<resp_len> against
 * <stage2> = SHA1(SHA1(password)), as stored by MySQL (`*HEX` in
 * mysql.user). An empty response matches only an empty password, which we
 * represent as an all-zero <stage2> with <empty_password> set.
 */
bool handshake_native_check(const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN],
                            const uint8_t *resp, size_t resp_len,
                            const uint8_t stage2[HANDSHAKE_SHA1_LEN], bool empty_password);

/* Computes the client's token for <password> (used by tests and tools). */
void handshake_native_token(const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN],
                            const char *password, uint8_t out[HANDSHAKE_SHA1_LEN]);

/* Parses "*<40 hex>" (MySQL's PASSWORD() text) into <stage2>. Returns 0 or -1. */
int handshake_parse_hash(const char *text, uint8_t stage2[HANDSHAKE_SHA1_LEN]);

/* ---- the client side, for the router's own backend connections ---- */

/* What a server's HandshakeV10 said. Offsets index the payload. */
struct handshake_server_greeting {
    uint32_t connection_id;
    uint32_t capabilities;          /* the low and high 16 bits */
    uint8_t  charset;
    uint16_t status;
    uint8_t  scramble[HANDSHAKE_SCRAMBLE_LEN];
    size_t   version_off, version_len;
    size_t   plugin_off, plugin_len;
};

/* Parses a server greeting. Returns 0, or -1 if it is malformed, not
 * protocol 10, or offers fewer than 20 scramble bytes (pre-4.1 servers). */
int handshake_parse_greeting(const uint8_t *p, size_t len, struct handshake_server_greeting *g);

/* Writes a HandshakeResponse41 payload logging in <user> with the
 * mysql_native_password token for <password> and <scramble>, asking for
 * <capabilities>, charset <charset> and database <db> (may be NULL).
 * Returns the length, or -1 if <cap> is too small. */
int handshake_write_client_response(uint8_t *out, size_t cap, uint32_t capabilities,
                                    uint8_t charset, const char *user, const char *password,
                                    const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN],
                                    const char *db);

/* Parses an AuthSwitchRequest (0xfe, plugin name, data). Returns 0 with the
 * plugin name and its data located in <p>, or -1. */
int handshake_parse_auth_switch(const uint8_t *p, size_t len, size_t *plugin_off,
                                size_t *plugin_len, size_t *data_off, size_t *data_len);

#endif
