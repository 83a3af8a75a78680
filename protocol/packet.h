/*
 * protocol/packet.h - MySQL packet framing and length-encoded values.
 *
 * 3-byte little-endian length, sequence id, payload; a payload of exactly
 * PACKET_MAX_PAYLOAD bytes continues in the next packet. Nothing here
 * allocates, blocks, logs, or keeps a pointer into the caller's buffer.
 */
#ifndef SHARDWIRE_PROTOCOL_PACKET_H
#define SHARDWIRE_PROTOCOL_PACKET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PACKET_HEADER_LEN   4
#define PACKET_MAX_PAYLOAD  0xffffffu

struct packet_header {
    uint32_t payload_len;   /* 0..PACKET_MAX_PAYLOAD */
    uint8_t  seq;           /* wraps at 256 */
};

/* Reads the header at <buf>. Returns PACKET_HEADER_LEN, or 0 if <len> is
 * shorter than a header. */
int packet_read_header(const uint8_t *buf, size_t len, struct packet_header *h);

/* Writes a header for <payload_len> (<= PACKET_MAX_PAYLOAD) and <seq> to <out>. */
void packet_write_header(uint8_t out[PACKET_HEADER_LEN], uint32_t payload_len, uint8_t seq);

/*
 * Decodes the length-encoded integer at the start of <buf> into <*out>.
 * Returns the bytes used (1, 3, 4 or 9), 0 if <len> is too short to tell,
 * or -1 if the first byte cannot begin one (0xfb NULL, 0xff).
 */
ssize_t packet_read_lenenc(const uint8_t *buf, size_t len, uint64_t *out);

/* Bytes packet_write_lenenc() needs for <v>: 1, 3, 4 or 9. */
size_t packet_lenenc_size(uint64_t v);

/* Encodes <v> at <out> (room for packet_lenenc_size(v) bytes); returns bytes written. */
size_t packet_write_lenenc(uint8_t *out, uint64_t v);

/*
 * A bounds-checked reader over one payload. Readers return 0 on success and
 * -1 when the payload is too short; after a failure <r->bad> stays set and
 * every later read fails too, so a parser can check once at the end.
 */
struct packet_reader {
    const uint8_t *buf;
    size_t         len;
    size_t         pos;    /* always: pos <= len */
    int            bad;
};

void packet_reader_init(struct packet_reader *r, const uint8_t *buf, size_t len);
int packet_get_u8(struct packet_reader *r, uint8_t *v);
int packet_get_u16(struct packet_reader *r, uint16_t *v);
int packet_get_u32(struct packet_reader *r, uint32_t *v);
int packet_get_u64(struct packet_reader *r, uint64_t *v);
int packet_get_lenenc(struct packet_reader *r, uint64_t *v);
/* Skips <n> bytes; stores their offset in <*off> (may be NULL). */
int packet_get_bytes(struct packet_reader *r, size_t n, size_t *off);
/* A NUL-terminated string: <*off> its offset, <*n> its length (without NUL). */
int packet_get_cstr(struct packet_reader *r, size_t *off, size_t *n);
/* A length-encoded string: <*off> its offset, <*n> its length. */
int packet_get_lenenc_str(struct packet_reader *r, size_t *off, size_t *n);
size_t packet_remaining(const struct packet_reader *r);

static inline void packet_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void packet_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint16_t packet_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t packet_u24(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
}

static inline uint32_t packet_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

#endif
