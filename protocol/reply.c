/*
 * protocol/reply.c - reply builders and the end-of-reply tracker.
 */
#include "protocol/reply.h"

#include <string.h>

#include "protocol/packet.h"
#include "protocol/wire.h"

void reply_begin(struct reply *r, enum reply_kind kind, bool deprecate_eof)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->state = REPLY_FIRST;
    r->deprecate_eof = deprecate_eof;
    if (kind == REPLY_FIELD_LIST) {
        r->state = REPLY_COLDEFS;
        r->left = UINT64_MAX;       /* until EOF */
    } else if (kind == REPLY_FETCH) {
        r->state = REPLY_ROWS;
    }
}

static bool is_eof_packet(const uint8_t *p, uint32_t payload_len)
{
    /* A row can start with 0xfe too (an 8-byte length), but is then >= 9 bytes. */
    return payload_len > 0 && p[0] == WIRE_HDR_EOF && payload_len < 9;
}

/* Reads status and warnings from an OK payload; returns 0 or -1. */
static int parse_ok(struct reply *r, const uint8_t *p, size_t avail)
{
    struct packet_reader rd;

    packet_reader_init(&rd, p, avail);
    packet_get_bytes(&rd, 1, NULL);
    packet_get_lenenc(&rd, &r->affected_rows);
    packet_get_lenenc(&rd, &r->insert_id);
    packet_get_u16(&rd, &r->status);
    packet_get_u16(&rd, &r->warnings);
    return rd.bad ? -1 : 0;
}

static int parse_eof(struct reply *r, const uint8_t *p, size_t avail, uint32_t payload_len)
{
    if (payload_len >= 5 && avail >= 5) {
        r->warnings = packet_u16(p + 1);
        r->status = packet_u16(p + 3);
    }
    return 0;
}

/* The reply ended with an OK/EOF whose status is known: done unless more results. */
static int end_of_result(struct reply *r)
{
    if (r->status & WIRE_STATUS_MORE_RESULTS_EXISTS) {
        r->state = REPLY_FIRST;
        return 0;
    }
    r->state = REPLY_DONE;
    return 1;
}

static int fail_with_err(struct reply *r, const uint8_t *p, size_t avail)
{
    r->is_error = true;
    r->err_no = avail >= 3 ? packet_u16(p + 1) : 0;
    r->state = REPLY_DONE;
    return 1;
}

/* Ends a column-definition block: EOF expected unless DEPRECATE_EOF. */
static void after_coldefs(struct reply *r)
{
    r->state = r->deprecate_eof ? REPLY_ROWS : REPLY_COLDEFS_EOF;
}

static int feed_first(struct reply *r, const uint8_t *p, size_t avail, uint32_t payload_len)
{
    uint64_t ncols;
    ssize_t n;

    if (payload_len == 0)
        return -1;
    switch (p[0]) {
    case WIRE_HDR_OK:
        if (r->kind == REPLY_PREPARE) {
            if (avail < 9)
                return -1;
            r->stmt_id = packet_u32(p + 1);
            r->n_columns = packet_u16(p + 5);
            r->n_params = packet_u16(p + 7);
            r->warnings = avail >= 12 ? packet_u16(p + 10) : 0;
            r->prep_params = r->n_params;
            r->prep_cols = r->n_columns;
            if (r->prep_params) {
                r->state = REPLY_PREP_PARAMS;
                r->left = r->prep_params;
                return 0;
            }
            if (r->prep_cols) {
                r->state = REPLY_PREP_COLS;
                r->left = r->prep_cols;
                return 0;
            }
            r->state = REPLY_DONE;
            return 1;
        }
        if (parse_ok(r, p, avail) < 0)
            return -1;
        return end_of_result(r);
    case WIRE_HDR_ERR:
        return fail_with_err(r, p, avail);
    case WIRE_HDR_LOCAL_INFILE:
        /* We never announce CLIENT_LOCAL_FILES; a server asking anyway ends
         * the exchange as far as we are concerned. */
        r->is_error = true;
        r->state = REPLY_DONE;
        return 1;
    default:
        if (r->kind == REPLY_SIMPLE || r->kind == REPLY_PREPARE)
            return -1;
        n = packet_read_lenenc(p, avail, &ncols);
        if (n <= 0 || ncols == 0)
            return -1;
        r->state = REPLY_COLDEFS;
        r->left = ncols;
        return 0;
    }
}

int reply_feed(struct reply *r, const uint8_t *p, size_t avail, uint32_t payload_len)
{
    bool continues = payload_len == PACKET_MAX_PAYLOAD;

    if (r->in_continuation) {
        /* The tail of a large packet: nothing to judge. */
        r->in_continuation = continues;
        return r->state == REPLY_DONE ? 1 : 0;
    }
    if (avail < payload_len && avail < REPLY_PEEK)
        return -1;
    r->in_continuation = continues;

    switch (r->state) {
    case REPLY_FIRST:
        return feed_first(r, p, avail, payload_len);
    case REPLY_COLDEFS:
        if (r->kind == REPLY_FIELD_LIST) {
            if (payload_len > 0 && p[0] == WIRE_HDR_ERR)
                return fail_with_err(r, p, avail);
            if (is_eof_packet(p, payload_len)) {
                parse_eof(r, p, avail, payload_len);
                r->state = REPLY_DONE;
                return 1;
            }
            return 0;
        }
        if (--r->left == 0)
            after_coldefs(r);
        return 0;
    case REPLY_COLDEFS_EOF:
        if (!is_eof_packet(p, payload_len))
            return -1;
        parse_eof(r, p, avail, payload_len);
        if (r->kind == REPLY_EXECUTE && (r->status & WIRE_STATUS_CURSOR_EXISTS)) {
            /* Rows come later, through COM_STMT_FETCH. */
            r->state = REPLY_DONE;
            return 1;
        }
        r->state = REPLY_ROWS;
        return 0;
    case REPLY_ROWS:
        if (payload_len > 0 && p[0] == WIRE_HDR_ERR && !continues)
            return fail_with_err(r, p, avail);
        if (is_eof_packet(p, payload_len)) {
            parse_eof(r, p, avail, payload_len);
            return end_of_result(r);
        }
        if (r->deprecate_eof && payload_len >= 7 && p[0] == WIRE_HDR_EOF &&
            payload_len < PACKET_MAX_PAYLOAD) {
            /* With DEPRECATE_EOF a result set ends in an OK packet with a
             * 0xfe header; rows starting with 0xfe are >= 9 bytes long and
             * then carry an 8-byte length that cannot fit. */
            if (parse_ok(r, p, avail) < 0)
                return -1;
            return end_of_result(r);
        }
        r->rows++;
        return 0;
    case REPLY_PREP_PARAMS:
    case REPLY_PREP_COLS:
        if (r->left > 0) {
            r->left--;
            if (r->left == 0 && r->deprecate_eof)
                goto block_done;
            return 0;
        }
        if (!is_eof_packet(p, payload_len))
            return -1;
block_done:
        if (r->state == REPLY_PREP_PARAMS && r->prep_cols) {
            r->state = REPLY_PREP_COLS;
            r->left = r->prep_cols;
            return 0;
        }
        r->state = REPLY_DONE;
        return 1;
    case REPLY_DONE:
        return -1;
    }
    return -1;
}

size_t reply_write_ok(uint8_t *out, uint64_t affected, uint64_t insert_id, uint16_t status,
                      uint16_t warnings, const char *info, size_t info_len)
{
    uint8_t *p = out;

    *p++ = WIRE_HDR_OK;
    p += packet_write_lenenc(p, affected);
    p += packet_write_lenenc(p, insert_id);
    packet_put_u16(p, status);
    p += 2;
    packet_put_u16(p, warnings);
    p += 2;
    if (info_len) {
        memcpy(p, info, info_len);
        p += info_len;
    }
    return (size_t)(p - out);
}

size_t reply_write_eof(uint8_t *out, uint16_t warnings, uint16_t status)
{
    out[0] = WIRE_HDR_EOF;
    packet_put_u16(out + 1, warnings);
    packet_put_u16(out + 3, status);
    return 5;
}

size_t reply_write_err(uint8_t *out, uint16_t err_no, const char *sqlstate,
                       const char *msg, size_t msg_len)
{
    uint8_t *p = out;

    *p++ = WIRE_HDR_ERR;
    packet_put_u16(p, err_no);
    p += 2;
    *p++ = '#';
    memcpy(p, sqlstate, 5);
    p += 5;
    memcpy(p, msg, msg_len);
    p += msg_len;
    return (size_t)(p - out);
}

int reply_parse_err(const uint8_t *p, size_t len, uint16_t *err_no,
                    size_t *msg_off, size_t *msg_len)
{
    size_t off = 3;

    if (len < 3 || p[0] != WIRE_HDR_ERR)
        return -1;
    *err_no = packet_u16(p + 1);
    if (len >= 9 && p[3] == '#')
        off = 9;
    *msg_off = off;
    *msg_len = len - off;
    return 0;
}
