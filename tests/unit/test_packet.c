/*
 * tests/unit/test_packet.c - framing and length-encoded integers.
 */
#include "protocol/packet.h"

#include <stdint.h>
#include <string.h>

#include "check.h"

static void test_header_roundtrip(void)
{
    uint8_t buf[PACKET_HEADER_LEN];
    struct packet_header h;

    packet_write_header(buf, 0xabcdef, 7);
    CHECK_EQ(packet_read_header(buf, sizeof(buf), &h), PACKET_HEADER_LEN);
    CHECK_EQ(h.payload_len, 0xabcdef);
    CHECK_EQ(h.seq, 7);
    CHECK_EQ(packet_read_header(buf, 3, &h), 0);
    packet_write_header(buf, PACKET_MAX_PAYLOAD, 255);
    packet_read_header(buf, sizeof(buf), &h);
    CHECK_EQ(h.payload_len, PACKET_MAX_PAYLOAD);
out:;
}

static void test_lenenc_table(void)
{
    static const struct {
        uint64_t v;
        size_t   size;
        uint8_t  first;
    } cases[] = {
        { 0, 1, 0x00 }, { 250, 1, 250 }, { 251, 3, 0xfc }, { 0xffff, 3, 0xfc },
        { 0x10000, 4, 0xfd }, { 0xffffff, 4, 0xfd }, { 0x1000000, 9, 0xfe },
        { UINT64_MAX, 9, 0xfe },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[9];
        uint64_t back = 0;

        CHECK_EQ(packet_lenenc_size(cases[i].v), cases[i].size);
        CHECK_EQ(packet_write_lenenc(buf, cases[i].v), cases[i].size);
        CHECK_EQ(buf[0], cases[i].first);
        CHECK_EQ(packet_read_lenenc(buf, cases[i].size, &back), (ssize_t)cases[i].size);
        CHECK(back == cases[i].v);
        /* One byte short is "need more", never a wrong value. */
        CHECK_EQ(packet_read_lenenc(buf, cases[i].size - 1, &back), 0);
    }
out:;
}

static void test_lenenc_invalid_first_bytes(void)
{
    uint8_t nul = 0xfb, err = 0xff;
    uint64_t v;

    CHECK_EQ(packet_read_lenenc(&nul, 1, &v), -1);
    CHECK_EQ(packet_read_lenenc(&err, 1, &v), -1);
out:;
}

static void test_reader_bounds(void)
{
    static const uint8_t buf[] = { 1, 2, 3, 'a', 'b', 0, 2, 'x', 'y', 0xfc, 0x01 };
    struct packet_reader r;
    uint8_t u8;
    uint16_t u16;
    size_t off, n;
    uint64_t v;

    packet_reader_init(&r, buf, sizeof(buf));
    CHECK_EQ(packet_get_u8(&r, &u8), 0);
    CHECK_EQ(u8, 1);
    CHECK_EQ(packet_get_u16(&r, &u16), 0);
    CHECK_EQ(u16, 0x0302);
    CHECK_EQ(packet_get_cstr(&r, &off, &n), 0);
    CHECK_EQ(off, 3);
    CHECK_EQ(n, 2);
    CHECK_EQ(packet_get_lenenc_str(&r, &off, &n), 0);
    CHECK_EQ(n, 2);
    CHECK(memcmp(buf + off, "xy", 2) == 0);
    /* 0xfc needs two more bytes; only one is there. */
    CHECK_EQ(packet_get_lenenc(&r, &v), -1);
    CHECK(r.bad);
    /* Once bad, every read fails. */
    CHECK_EQ(packet_get_u8(&r, &u8), -1);
out:;
}

static void test_reader_unterminated_and_overlong(void)
{
    static const uint8_t nonul[] = { 'a', 'b', 'c' };
    static const uint8_t overlong[] = { 5, 'a', 'b' };
    struct packet_reader r;
    size_t off, n;
    uint32_t u32;

    packet_reader_init(&r, nonul, sizeof(nonul));
    CHECK_EQ(packet_get_cstr(&r, &off, &n), -1);
    packet_reader_init(&r, overlong, sizeof(overlong));
    CHECK_EQ(packet_get_lenenc_str(&r, &off, &n), -1);
    packet_reader_init(&r, overlong, sizeof(overlong));
    CHECK_EQ(packet_get_u32(&r, &u32), -1);
out:;
}

int main(void)
{
    RUN(test_header_roundtrip);
    RUN(test_lenenc_table);
    RUN(test_lenenc_invalid_first_bytes);
    RUN(test_reader_bounds);
    RUN(test_reader_unterminated_and_overlong);
    return check_exit();
}
