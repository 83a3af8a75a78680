/*
 * protocol/packet.c - MySQL packet framing and length-encoded values.
 */
#include "protocol/packet.h"

#include <string.h>

int packet_read_header(const uint8_t *buf, size_t len, struct packet_header *h)
{
    if (len < PACKET_HEADER_LEN)
        return 0;
    h->payload_len = packet_u24(buf);
    h->seq = buf[3];
    return PACKET_HEADER_LEN;
}

void packet_write_header(uint8_t out[PACKET_HEADER_LEN], uint32_t payload_len, uint8_t seq)
{
    out[0] = (uint8_t)payload_len;
    out[1] = (uint8_t)(payload_len >> 8);
    out[2] = (uint8_t)(payload_len >> 16);
    out[3] = seq;
}

ssize_t packet_read_lenenc(const uint8_t *buf, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t n;

    if (len < 1)
        return 0;
    if (buf[0] < 0xfb) {
        *out = buf[0];
        return 1;
    }
    switch (buf[0]) {
    case 0xfc: n = 2; break;
    case 0xfd: n = 3; break;
    case 0xfe: n = 8; break;
    default:   return -1;     /* 0xfb is NULL in a row, 0xff an ERR header */
    }
    if (len < 1 + n)
        return 0;
    for (size_t i = n; i > 0; i--)
        v = (v << 8) | buf[i];
    *out = v;
    return (ssize_t)(1 + n);
}

size_t packet_lenenc_size(uint64_t v)
{
    if (v < 0xfb)
        return 1;
    if (v <= 0xffff)
        return 3;
    if (v <= 0xffffff)
        return 4;
    return 9;
}

size_t packet_write_lenenc(uint8_t *out, uint64_t v)
{
    size_t n = packet_lenenc_size(v);

    switch (n) {
    case 1: out[0] = (uint8_t)v; return 1;
    case 3: out[0] = 0xfc; break;
    case 4: out[0] = 0xfd; break;
    default: out[0] = 0xfe; break;
    }
    for (size_t i = 1; i < n; i++) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
    return n;
}

void packet_reader_init(struct packet_reader *r, const uint8_t *buf, size_t len)
{
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->bad = 0;
}

/* Claims <n> bytes at the read position; returns their offset or -1. */
static ssize_t reader_take(struct packet_reader *r, size_t n)
{
    size_t at = r->pos;

    if (r->bad || r->len - r->pos < n) {
        r->bad = 1;
        return -1;
    }
    r->pos += n;
    return (ssize_t)at;
}

int packet_get_u8(struct packet_reader *r, uint8_t *v)
{
    ssize_t at = reader_take(r, 1);

    if (at < 0)
        return -1;
    *v = r->buf[at];
    return 0;
}

int packet_get_u16(struct packet_reader *r, uint16_t *v)
{
    ssize_t at = reader_take(r, 2);

    if (at < 0)
        return -1;
    *v = packet_u16(r->buf + at);
    return 0;
}

int packet_get_u32(struct packet_reader *r, uint32_t *v)
{
    ssize_t at = reader_take(r, 4);

    if (at < 0)
        return -1;
    *v = packet_u32(r->buf + at);
    return 0;
}

int packet_get_u64(struct packet_reader *r, uint64_t *v)
{
    ssize_t at = reader_take(r, 8);

    if (at < 0)
        return -1;
    *v = (uint64_t)packet_u32(r->buf + at) | ((uint64_t)packet_u32(r->buf + at + 4) << 32);
    return 0;
}

int packet_get_lenenc(struct packet_reader *r, uint64_t *v)
{
    ssize_t n;

    if (r->bad)
        return -1;
    n = packet_read_lenenc(r->buf + r->pos, r->len - r->pos, v);
    if (n <= 0) {
        r->bad = 1;
        return -1;
    }
    r->pos += (size_t)n;
    return 0;
}

int packet_get_bytes(struct packet_reader *r, size_t n, size_t *off)
{
    ssize_t at = reader_take(r, n);

    if (at < 0)
        return -1;
    if (off)
        *off = (size_t)at;
    return 0;
}

int packet_get_cstr(struct packet_reader *r, size_t *off, size_t *n)
{
    const uint8_t *nul;

    if (r->bad)
        return -1;
    nul = memchr(r->buf + r->pos, 0, r->len - r->pos);
    if (!nul) {
        r->bad = 1;
        return -1;
    }
    *off = r->pos;
    *n = (size_t)(nul - (r->buf + r->pos));
    r->pos += *n + 1;
    return 0;
}

int packet_get_lenenc_str(struct packet_reader *r, size_t *off, size_t *n)
{
    uint64_t v;

    if (packet_get_lenenc(r, &v) < 0)
        return -1;
    if (v > r->len - r->pos) {
        r->bad = 1;
        return -1;
    }
    *off = r->pos;
    *n = (size_t)v;
    r->pos += (size_t)v;
    return 0;
}

size_t packet_remaining(const struct packet_reader *r)
{
    return r->len - r->pos;
}
