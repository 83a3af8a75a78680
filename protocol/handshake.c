/*
 * protocol/handshake.c - server side of the MySQL connection phase.
 */
#include "protocol/handshake.h"

#include <openssl/sha.h>
#include <string.h>

#include "protocol/packet.h"
#include "protocol/wire.h"

int handshake_write_greeting(uint8_t *out, size_t cap, const struct handshake_greeting *g)
{
    size_t vlen = strlen(g->server_version);
    size_t need = 1 + vlen + 1 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10 + 13 +
                  sizeof(HANDSHAKE_NATIVE_PLUGIN);
    uint8_t *p = out;

    if (need > cap)
        return -1;
    *p++ = 10;
    memcpy(p, g->server_version, vlen + 1);
    p += vlen + 1;
    packet_put_u32(p, g->connection_id);
    p += 4;
    memcpy(p, g->scramble, 8);
    p += 8;
    *p++ = 0;
    packet_put_u16(p, (uint16_t)g->capabilities);
    p += 2;
    *p++ = g->charset;
    packet_put_u16(p, g->status);
    p += 2;
    packet_put_u16(p, (uint16_t)(g->capabilities >> 16));
    p += 2;
    *p++ = HANDSHAKE_SCRAMBLE_LEN + 1;
    memset(p, 0, 10);
    p += 10;
    memcpy(p, g->scramble + 8, HANDSHAKE_SCRAMBLE_LEN - 8);
    p += HANDSHAKE_SCRAMBLE_LEN - 8;
    *p++ = 0;
    memcpy(p, HANDSHAKE_NATIVE_PLUGIN, sizeof(HANDSHAKE_NATIVE_PLUGIN));
    p += sizeof(HANDSHAKE_NATIVE_PLUGIN);
    return (int)(p - out);
}

int handshake_parse_response(const uint8_t *p, size_t len, struct handshake_response *r)
{
    struct packet_reader rd;
    uint64_t n;

    memset(r, 0, sizeof(*r));
    packet_reader_init(&rd, p, len);
    if (packet_get_u32(&rd, &r->capabilities) < 0 ||
        !(r->capabilities & WIRE_CAP_PROTOCOL_41))
        return -1;
    packet_get_u32(&rd, &r->max_packet);
    packet_get_u8(&rd, &r->charset);
    packet_get_bytes(&rd, 23, NULL);
    if (rd.bad)
        return -1;
    if (len == 32 && (r->capabilities & WIRE_CAP_SSL)) {
        r->ssl_request = true;
        return 0;
    }
    if (packet_get_cstr(&rd, &r->user_off, &r->user_len) < 0)
        return -1;
    if (r->capabilities & WIRE_CAP_PLUGIN_AUTH_LENENC) {
        if (packet_get_lenenc_str(&rd, &r->auth_off, &r->auth_len) < 0)
            return -1;
    } else if (r->capabilities & WIRE_CAP_SECURE_CONNECTION) {
        uint8_t alen;

        if (packet_get_u8(&rd, &alen) < 0 || packet_get_bytes(&rd, alen, &r->auth_off) < 0)
            return -1;
        r->auth_len = alen;
    } else if (packet_get_cstr(&rd, &r->auth_off, &r->auth_len) < 0) {
        return -1;
    }
    if ((r->capabilities & WIRE_CAP_CONNECT_WITH_DB) && packet_remaining(&rd) > 0) {
        if (packet_get_cstr(&rd, &r->db_off, &r->db_len) < 0)
            return -1;
    }
    if ((r->capabilities & WIRE_CAP_PLUGIN_AUTH) && packet_remaining(&rd) > 0) {
        /* Some clients end the plugin name with the packet, not a NUL. */
        if (packet_get_cstr(&rd, &r->plugin_off, &r->plugin_len) < 0) {
            rd.bad = 0;
            r->plugin_off = rd.pos;
            r->plugin_len = packet_remaining(&rd);
            rd.pos = rd.len;
        }
    }
    if ((r->capabilities & WIRE_CAP_CONNECT_ATTRS) && packet_remaining(&rd) > 0) {
        /* Attributes are not used; they only have to be well formed. */
        if (packet_get_lenenc(&rd, &n) < 0 || n > packet_remaining(&rd))
            return -1;
    }
    return 0;
}

int handshake_write_auth_switch(uint8_t *out, const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN])
{
    uint8_t *p = out;

    *p++ = WIRE_HDR_EOF;
    memcpy(p, HANDSHAKE_NATIVE_PLUGIN, sizeof(HANDSHAKE_NATIVE_PLUGIN));
    p += sizeof(HANDSHAKE_NATIVE_PLUGIN);
    memcpy(p, scramble, HANDSHAKE_SCRAMBLE_LEN);
    p += HANDSHAKE_SCRAMBLE_LEN;
    *p++ = 0;
    return (int)(p - out);
}

/* SHA1(<scramble> . <stage2>) into <out>. */
static void scrambled_stage2(const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN],
                             const uint8_t stage2[HANDSHAKE_SHA1_LEN],
                             uint8_t out[HANDSHAKE_SHA1_LEN])
{
    uint8_t buf[HANDSHAKE_SCRAMBLE_LEN + HANDSHAKE_SHA1_LEN];

    memcpy(buf, scramble, HANDSHAKE_SCRAMBLE_LEN);
    memcpy(buf + HANDSHAKE_SCRAMBLE_LEN, stage2, HANDSHAKE_SHA1_LEN);
    SHA1(buf, sizeof(buf), out);
}

bool handshake_native_check(const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN],
                            const uint8_t *resp, size_t resp_len,
                            const uint8_t stage2[HANDSHAKE_SHA1_LEN], bool empty_password)
{
    uint8_t h[HANDSHAKE_SHA1_LEN], stage1[HANDSHAKE_SHA1_LEN], check[HANDSHAKE_SHA1_LEN];
    unsigned diff = 0;

    if (empty_password)
        return resp_len == 0;
    if (resp_len != HANDSHAKE_SHA1_LEN)
        return false;
    scrambled_stage2(scramble, stage2, h);
    for (int i = 0; i < HANDSHAKE_SHA1_LEN; i++)
        stage1[i] = resp[i] ^ h[i];
    SHA1(stage1, sizeof(stage1), check);
    for (int i = 0; i < HANDSHAKE_SHA1_LEN; i++)
        diff |= (unsigned)(check[i] ^ stage2[i]);
    return diff == 0;
}

void handshake_native_token(const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN],
                            const char *password, uint8_t out[HANDSHAKE_SHA1_LEN])
{
    uint8_t stage1[HANDSHAKE_SHA1_LEN], stage2[HANDSHAKE_SHA1_LEN], h[HANDSHAKE_SHA1_LEN];

    SHA1((const uint8_t *)password, strlen(password), stage1);
    SHA1(stage1, sizeof(stage1), stage2);
    scrambled_stage2(scramble, stage2, h);
    for (int i = 0; i < HANDSHAKE_SHA1_LEN; i++)
        out[i] = stage1[i] ^ h[i];
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int handshake_parse_hash(const char *text, uint8_t stage2[HANDSHAKE_SHA1_LEN])
{
    if (text[0] != '*' || strlen(text) != 1 + 2 * HANDSHAKE_SHA1_LEN)
        return -1;
    for (int i = 0; i < HANDSHAKE_SHA1_LEN; i++) {
        int hi = hexval(text[1 + 2 * i]), lo = hexval(text[2 + 2 * i]);

        if (hi < 0 || lo < 0)
            return -1;
        stage2[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int handshake_parse_greeting(const uint8_t *p, size_t len, struct handshake_server_greeting *g)
{
    struct packet_reader rd;
    uint8_t proto, auth_len, filler;
    uint16_t lo, hi;
    size_t off, n;

    memset(g, 0, sizeof(*g));
    packet_reader_init(&rd, p, len);
    if (packet_get_u8(&rd, &proto) < 0 || proto != 10)
        return -1;
    if (packet_get_cstr(&rd, &g->version_off, &g->version_len) < 0)
        return -1;
    packet_get_u32(&rd, &g->connection_id);
    if (packet_get_bytes(&rd, 8, &off) < 0)
        return -1;
    memcpy(g->scramble, p + off, 8);
    packet_get_u8(&rd, &filler);
    packet_get_u16(&rd, &lo);
    packet_get_u8(&rd, &g->charset);
    packet_get_u16(&rd, &g->status);
    packet_get_u16(&rd, &hi);
    packet_get_u8(&rd, &auth_len);
    packet_get_bytes(&rd, 10, NULL);
    if (rd.bad)
        return -1;
    g->capabilities = (uint32_t)lo | ((uint32_t)hi << 16);
    if (!(g->capabilities & WIRE_CAP_SECURE_CONNECTION) || auth_len < 21)
        return -1;
    /* The rest of the scramble: max(13, auth_len - 8) bytes, NUL-terminated. */
    n = (size_t)auth_len - 8;
    if (n < 13)
        n = 13;
    if (packet_get_bytes(&rd, n, &off) < 0)
        return -1;
    memcpy(g->scramble + 8, p + off, HANDSHAKE_SCRAMBLE_LEN - 8);
    if ((g->capabilities & WIRE_CAP_PLUGIN_AUTH) && packet_remaining(&rd) > 0) {
        if (packet_get_cstr(&rd, &g->plugin_off, &g->plugin_len) < 0) {
            g->plugin_off = rd.pos;
            g->plugin_len = packet_remaining(&rd);
        }
    }
    return 0;
}

int handshake_write_client_response(uint8_t *out, size_t cap, uint32_t capabilities,
                                    uint8_t charset, const char *user, const char *password,
                                    const uint8_t scramble[HANDSHAKE_SCRAMBLE_LEN],
                                    const char *db)
{
    size_t ulen = strlen(user), dlen = db ? strlen(db) : 0;
    size_t need = 32 + ulen + 1 + 1 + HANDSHAKE_SHA1_LEN + dlen + 1 +
                  sizeof(HANDSHAKE_NATIVE_PLUGIN);
    uint8_t *q = out;

    if (need > cap)
        return -1;
    if (db)
        capabilities |= WIRE_CAP_CONNECT_WITH_DB;
    else
        capabilities &= ~WIRE_CAP_CONNECT_WITH_DB;
    capabilities |= WIRE_CAP_PROTOCOL_41 | WIRE_CAP_SECURE_CONNECTION | WIRE_CAP_PLUGIN_AUTH;
    capabilities &= ~WIRE_CAP_PLUGIN_AUTH_LENENC;
    packet_put_u32(q, capabilities);
    packet_put_u32(q + 4, 1u << 30);
    q[8] = charset;
    memset(q + 9, 0, 23);
    q += 32;
    memcpy(q, user, ulen + 1);
    q += ulen + 1;
    if (password && *password) {
        *q++ = HANDSHAKE_SHA1_LEN;
        handshake_native_token(scramble, password, q);
        q += HANDSHAKE_SHA1_LEN;
    } else {
        *q++ = 0;
    }
    if (db) {
        memcpy(q, db, dlen + 1);
        q += dlen + 1;
    }
    memcpy(q, HANDSHAKE_NATIVE_PLUGIN, sizeof(HANDSHAKE_NATIVE_PLUGIN));
    q += sizeof(HANDSHAKE_NATIVE_PLUGIN);
    return (int)(q - out);
}

int handshake_parse_auth_switch(const uint8_t *p, size_t len, size_t *plugin_off,
                                size_t *plugin_len, size_t *data_off, size_t *data_len)
{
    struct packet_reader rd;
    uint8_t hdr;

    packet_reader_init(&rd, p, len);
    if (packet_get_u8(&rd, &hdr) < 0 || hdr != WIRE_HDR_EOF)
        return -1;
    if (packet_get_cstr(&rd, plugin_off, plugin_len) < 0)
        return -1;
    *data_off = rd.pos;
    *data_len = packet_remaining(&rd);
    /* The data usually ends with a NUL that is not part of it. */
    if (*data_len > 0 && p[*data_off + *data_len - 1] == 0)
        (*data_len)--;
    return 0;
}
