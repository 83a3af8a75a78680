/*
 * tests/unit/test_handshake.c - greeting, HandshakeResponse41, and the
 * mysql_native_password check against MySQL's published hash.
 */
#include "protocol/handshake.h"

#include <string.h>

#include "check.h"
#include "protocol/packet.h"
#include "protocol/wire.h"

/* PASSWORD('app-pw') as MariaDB computes it (see tests/e2e/test_harness.py,
 * which checks the same value against a real server). */
static const char app_pw_hash[] = "*72B37E3F4D899EDC98A9363172669E192CE424D5";

static const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN] = "abcdefghijklmnopqrst";

static void test_native_check(void)
{
    uint8_t stage2[HANDSHAKE_SHA1_LEN], tok[HANDSHAKE_SHA1_LEN];

    CHECK_EQ(handshake_parse_hash(app_pw_hash, stage2), 0);
    handshake_native_token(scramble, "app-pw", tok);
    CHECK(handshake_native_check(scramble, tok, sizeof(tok), stage2, false));
    handshake_native_token(scramble, "app-pX", tok);
    CHECK(!handshake_native_check(scramble, tok, sizeof(tok), stage2, false));
    CHECK(!handshake_native_check(scramble, tok, 19, stage2, false));
    CHECK(!handshake_native_check(scramble, NULL, 0, stage2, false));
    CHECK(handshake_native_check(scramble, NULL, 0, stage2, true));
    CHECK(!handshake_native_check(scramble, tok, sizeof(tok), stage2, true));
out:;
}

static void test_parse_hash_rejects(void)
{
    uint8_t stage2[HANDSHAKE_SHA1_LEN];

    CHECK_EQ(handshake_parse_hash("A4B6157319038724E3560894F7F932C8886EBFCF", stage2), -1);
    CHECK_EQ(handshake_parse_hash("*A4B6157319038724E3560894F7F932C8886EBFC", stage2), -1);
    CHECK_EQ(handshake_parse_hash("*G4B6157319038724E3560894F7F932C8886EBFCF", stage2), -1);
out:;
}

static void test_greeting_layout(void)
{
    struct handshake_greeting g = {
        .server_version = "10.11.0-shardwire", .connection_id = 0x01020304,
        .capabilities = WIRE_CAP_PROTOCOL_41 | WIRE_CAP_PLUGIN_AUTH | WIRE_CAP_SECURE_CONNECTION,
        .charset = 45, .status = 2,
    };
    uint8_t buf[256];
    int n;

    memcpy(g.scramble, scramble, sizeof(scramble));
    n = handshake_write_greeting(buf, sizeof(buf), &g);
    CHECK(n > 0);
    CHECK_EQ(buf[0], 10);
    CHECK(strcmp((char *)buf + 1, "10.11.0-shardwire") == 0);
    {
        const uint8_t *p = buf + 1 + strlen(g.server_version) + 1;

        CHECK_EQ(packet_u32(p), 0x01020304);
        CHECK(memcmp(p + 4, scramble, 8) == 0);
        CHECK_EQ(p[12], 0);
        CHECK_EQ(packet_u16(p + 13), (uint16_t)g.capabilities);
        CHECK_EQ(p[15], 45);
        CHECK_EQ(p[20], 21);
        CHECK(memcmp(p + 31, scramble + 8, 12) == 0);
        CHECK(strcmp((const char *)p + 44, "mysql_native_password") == 0);
    }
    CHECK_EQ(handshake_write_greeting(buf, 20, &g), -1);
out:;
}

/* Builds a HandshakeResponse41 like libmysqlclient does. */
static size_t build_response(uint8_t *p, uint32_t caps, const char *user, const uint8_t *auth,
                             size_t auth_len, const char *db, const char *plugin)
{
    size_t n = 0;

    packet_put_u32(p, caps);
    packet_put_u32(p + 4, 1u << 24);
    p[8] = 33;
    memset(p + 9, 0, 23);
    n = 32;
    strcpy((char *)p + n, user);
    n += strlen(user) + 1;
    if (caps & WIRE_CAP_PLUGIN_AUTH_LENENC) {
        n += packet_write_lenenc(p + n, auth_len);
    } else {
        p[n++] = (uint8_t)auth_len;
    }
    memcpy(p + n, auth, auth_len);
    n += auth_len;
    if (db) {
        strcpy((char *)p + n, db);
        n += strlen(db) + 1;
    }
    if (plugin) {
        strcpy((char *)p + n, plugin);
        n += strlen(plugin) + 1;
    }
    return n;
}

static void test_parse_response(void)
{
    uint8_t buf[512], tok[HANDSHAKE_SHA1_LEN];
    struct handshake_response r;
    uint32_t caps = WIRE_CAP_PROTOCOL_41 | WIRE_CAP_SECURE_CONNECTION | WIRE_CAP_PLUGIN_AUTH |
                    WIRE_CAP_CONNECT_WITH_DB | WIRE_CAP_PLUGIN_AUTH_LENENC;
    size_t n;

    handshake_native_token(scramble, "app-pw", tok);
    n = build_response(buf, caps, "app", tok, sizeof(tok), "app", "mysql_native_password");
    CHECK_EQ(handshake_parse_response(buf, n, &r), 0);
    CHECK_EQ(r.charset, 33);
    CHECK_EQ(r.user_len, 3);
    CHECK(memcmp(buf + r.user_off, "app", 3) == 0);
    CHECK_EQ(r.auth_len, 20);
    CHECK(memcmp(buf + r.auth_off, tok, 20) == 0);
    CHECK_EQ(r.db_len, 3);
    CHECK_EQ(r.plugin_len, strlen("mysql_native_password"));
    CHECK(!r.ssl_request);

    /* Every truncation is an error or a shorter valid packet, never a read
     * past the end (ASan would see it). */
    for (size_t cut = 0; cut < n; cut++) {
        struct handshake_response t;

        (void)handshake_parse_response(buf, cut, &t);
    }
    CHECK_EQ(handshake_parse_response(buf, 20, &r), -1);

    /* Pre-4.1 clients are refused. */
    packet_put_u32(buf, caps & ~WIRE_CAP_PROTOCOL_41);
    CHECK_EQ(handshake_parse_response(buf, n, &r), -1);

    /* SSLRequest: just the 32-byte prefix. */
    packet_put_u32(buf, caps | WIRE_CAP_SSL);
    CHECK_EQ(handshake_parse_response(buf, 32, &r), 0);
    CHECK(r.ssl_request);
out:;
}

static void test_auth_switch(void)
{
    uint8_t buf[64];
    int n = handshake_write_auth_switch(buf, scramble);

    CHECK_EQ(n, 1 + 22 + 20 + 1);
    CHECK_EQ(buf[0], 0xfe);
    CHECK(strcmp((char *)buf + 1, "mysql_native_password") == 0);
    CHECK(memcmp(buf + 23, scramble, 20) == 0);
out:;
}

/* The server side's greeting, parsed by the client side, and back. */
static void test_client_side_roundtrip(void)
{
    struct handshake_greeting g = {
        .server_version = "10.11.19-MariaDB", .connection_id = 99,
        .capabilities = WIRE_CAP_PROTOCOL_41 | WIRE_CAP_PLUGIN_AUTH |
                        WIRE_CAP_SECURE_CONNECTION | WIRE_CAP_CONNECT_WITH_DB,
        .charset = 45, .status = 2,
    };
    struct handshake_server_greeting sg;
    struct handshake_response r;
    uint8_t greet[256], resp[512], stage2[HANDSHAKE_SHA1_LEN];
    int n;

    memcpy(g.scramble, scramble, sizeof(scramble));
    n = handshake_write_greeting(greet, sizeof(greet), &g);
    CHECK_EQ(handshake_parse_greeting(greet, (size_t)n, &sg), 0);
    CHECK_EQ(sg.connection_id, 99);
    CHECK_EQ(sg.capabilities, g.capabilities);
    CHECK(memcmp(sg.scramble, scramble, sizeof(scramble)) == 0);
    CHECK_EQ(sg.version_len, strlen("10.11.19-MariaDB"));
    CHECK_EQ(sg.plugin_len, strlen("mysql_native_password"));
    for (int cut = 0; cut < n - 22; cut++)
        CHECK_EQ(handshake_parse_greeting(greet, (size_t)cut, &sg), -1);

    n = handshake_write_client_response(resp, sizeof(resp), WIRE_CAP_LONG_PASSWORD, 45,
                                        "shardwire", "app-pw", scramble, "app");
    CHECK(n > 0);
    CHECK_EQ(handshake_parse_response(resp, (size_t)n, &r), 0);
    CHECK(r.capabilities & WIRE_CAP_LONG_PASSWORD);     /* CLIENT_MYSQL kept */
    CHECK(r.capabilities & WIRE_CAP_CONNECT_WITH_DB);
    CHECK_EQ(r.user_len, 9);
    CHECK_EQ(r.db_len, 3);
    CHECK_EQ(handshake_parse_hash(app_pw_hash, stage2), 0);
    CHECK(handshake_native_check(scramble, resp + r.auth_off, r.auth_len, stage2, false));
    CHECK_EQ(handshake_write_client_response(resp, 40, 0, 45, "shardwire", "x", scramble,
                                             "app"), -1);
out:;
}

static void test_parse_auth_switch(void)
{
    uint8_t buf[64];
    size_t po, pl, dof, dl;
    int n = handshake_write_auth_switch(buf, scramble);

    CHECK_EQ(handshake_parse_auth_switch(buf, (size_t)n, &po, &pl, &dof, &dl), 0);
    CHECK_EQ(pl, strlen("mysql_native_password"));
    CHECK_EQ(dl, 20);
    CHECK(memcmp(buf + dof, scramble, 20) == 0);
    CHECK_EQ(handshake_parse_auth_switch(buf + 1, (size_t)n - 1, &po, &pl, &dof, &dl), -1);
out:;
}

int main(void)
{
    RUN(test_client_side_roundtrip);
    RUN(test_parse_auth_switch);
    RUN(test_native_check);
    RUN(test_parse_hash_rejects);
    RUN(test_greeting_layout);
    RUN(test_parse_response);
    RUN(test_auth_switch);
    return check_exit();
}
