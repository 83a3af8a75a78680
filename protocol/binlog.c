/*
 * protocol/binlog.c - binary log events a vbucket move reads (binlog.h).
 *
 * Layouts from MariaDB's sql/log_event.h and log_event_server.cc; value
 * sizes from Field::pack_length_from_metadata() of each field type. Pure
 * and fuzzed: every read is bounded by the buffer.
 */
#include "protocol/binlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Column types as the table map names them (MySQL enum_field_types). */
enum {
    T_DECIMAL = 0, T_TINY = 1, T_SHORT = 2, T_LONG = 3, T_FLOAT = 4, T_DOUBLE = 5, T_NULL = 6,
    T_TIMESTAMP = 7, T_LONGLONG = 8, T_INT24 = 9, T_DATE = 10, T_TIME = 11, T_DATETIME = 12,
    T_YEAR = 13, T_NEWDATE = 14, T_VARCHAR = 15, T_BIT = 16, T_TIMESTAMP2 = 17,
    T_DATETIME2 = 18, T_TIME2 = 19, T_JSON = 245, T_NEWDECIMAL = 246, T_ENUM = 247, T_SET = 248,
    T_TINY_BLOB = 249, T_MEDIUM_BLOB = 250, T_LONG_BLOB = 251, T_BLOB = 252,
    T_VAR_STRING = 253, T_STRING = 254, T_GEOMETRY = 255,
};

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

int binlog_header(const uint8_t *buf, size_t len, struct binlog_header *h)
{
    if (len < BINLOG_HEADER_LEN)
        return -1;
    h->timestamp = (uint32_t)le(buf, 4);
    h->type = buf[4];
    h->server_id = (uint32_t)le(buf + 5, 4);
    h->event_len = (uint32_t)le(buf + 9, 4);
    h->next_pos = (uint32_t)le(buf + 13, 4);
    h->flags = (uint16_t)le(buf + 17, 2);
    return h->event_len < BINLOG_HEADER_LEN ? -1 : 0;
}

int binlog_rotate(const uint8_t *body, size_t len, uint64_t *pos, char *name, size_t cap)
{
    if (len < 8 || len - 8 >= cap)
        return -1;
    *pos = le(body, 8);
    memcpy(name, body + 8, len - 8);
    name[len - 8] = '\0';
    return memchr(name, '\0', len - 8) ? -1 : 0;
}

/* A length-encoded integer at <p>+<*off>; -1 when it does not fit. */
static int lenenc(const uint8_t *p, size_t len, size_t *off, uint64_t *out)
{
    unsigned n;
    if (*off >= len)
        return -1;
    switch (p[*off]) {
    case 251: case 255: return -1;
    case 252: n = 2; break;
    case 253: n = 3; break;
    case 254: n = 8; break;
    default:
        *out = p[(*off)++];
        return 0;
    }
    if (len - *off < 1 + (size_t)n)
        return -1;
    *out = le(p + *off + 1, n);
    *off += 1 + n;
    return 0;
}

/* Bytes of metadata a column type carries in the table map; -1: a type
 * this decoder cannot size. */
static int meta_len(uint8_t type)
{
    switch (type) {
    case T_TINY: case T_SHORT: case T_LONG: case T_LONGLONG: case T_INT24: case T_NULL:
    case T_TIMESTAMP: case T_DATE: case T_TIME: case T_DATETIME: case T_YEAR: case T_NEWDATE:
        return 0;
    case T_FLOAT: case T_DOUBLE: case T_TIMESTAMP2: case T_DATETIME2: case T_TIME2:
    case T_TINY_BLOB: case T_MEDIUM_BLOB: case T_LONG_BLOB: case T_BLOB: case T_GEOMETRY:
    case T_JSON:
        return 1;
    case T_VARCHAR: case T_VAR_STRING: case T_BIT: case T_NEWDECIMAL: case T_ENUM: case T_SET:
    case T_STRING:
        return 2;
    default:
        return -1;
    }
}

int binlog_table_map(const uint8_t *body, size_t len, struct binlog_table *t)
{
    size_t off = 8;     /* table id (6), flags (2) */
    uint64_t n, mlen;

    if (len < off + 1)
        return -1;
    t->table_id = le(body, 6);
    t->db_len = body[off];
    if (len - off < 2 + t->db_len)
        return -1;
    t->db = body + off + 1;
    off += 2 + t->db_len;               /* length, name, NUL */
    if (off >= len)
        return -1;
    t->name_len = body[off];
    if (len - off < 2 + t->name_len)
        return -1;
    t->name = body + off + 1;
    off += 2 + t->name_len;
    if (lenenc(body, len, &off, &n) < 0 || n == 0 || n > BINLOG_MAX_COLS || len - off < n)
        return -1;
    t->n_cols = (unsigned)n;
    memcpy(t->types, body + off, n);
    off += n;
    if (lenenc(body, len, &off, &mlen) < 0 || len - off < mlen)
        return -1;
    size_t mend = off + (size_t)mlen;
    for (unsigned i = 0; i < t->n_cols; i++) {
        int m = meta_len(t->types[i]);
        if (m < 0 || mend - off < (size_t)m)
            return -1;
        /* two-byte metadata: STRING/ENUM/SET big-endian (real type, size),
         * the others little-endian */
        if (m == 2 && (t->types[i] == T_STRING || t->types[i] == T_ENUM ||
                       t->types[i] == T_SET))
            t->meta[i] = (uint16_t)(body[off] << 8 | body[off + 1]);
        else
            t->meta[i] = (uint16_t)le(body + off, (unsigned)m);
        off += (size_t)m;
    }
    return off == mend ? 0 : -1;
}

int binlog_rows_head(uint8_t type, const uint8_t *body, size_t len, struct binlog_rows *r)
{
    size_t off = 8;     /* table id (6), flags (2) */
    uint64_t n;
    bool v2 = type >= BINLOG_WRITE_ROWS && type <= BINLOG_DELETE_ROWS;

    memset(r, 0, sizeof(*r));
    if (!(v2 || (type >= BINLOG_WRITE_ROWS_V1 && type <= BINLOG_DELETE_ROWS_V1)) || len < off)
        return -1;
    r->table_id = le(body, 6);
    r->update = type == BINLOG_UPDATE_ROWS || type == BINLOG_UPDATE_ROWS_V1;
    if (v2) {
        if (len - off < 2)
            return -1;
        uint64_t extra = le(body + off, 2);     /* counts its own two bytes */
        if (extra < 2 || len - off < extra)
            return -1;
        off += (size_t)extra;
    }
    if (lenenc(body, len, &off, &n) < 0 || n == 0 || n > BINLOG_MAX_COLS)
        return -1;
    r->n_cols = (unsigned)n;
    size_t bm = (n + 7) / 8;
    if (len - off < bm * (r->update ? 2 : 1))
        return -1;
    memcpy(r->present, body + off, bm);
    off += bm;
    if (r->update) {
        memcpy(r->present_after, body + off, bm);
        off += bm;
    }
    r->rows_off = off;
    return 0;
}

static const uint8_t dig2bytes[10] = { 0, 1, 1, 2, 2, 3, 3, 4, 4, 4 };

/* Bytes of a value of <type> with metadata <meta> at <p>/<len> (needed for
 * the length-prefixed ones); -1 when malformed. *<skip> gets the prefix
 * length (the value's bytes start there). */
static long value_len(uint8_t type, uint16_t meta, const uint8_t *p, size_t len, size_t *skip)
{
    *skip = 0;
    switch (type) {
    case T_TINY: case T_YEAR: return 1;
    case T_SHORT: return 2;
    case T_INT24: case T_DATE: case T_NEWDATE: case T_TIME: return 3;
    case T_LONG: case T_TIMESTAMP: return 4;
    case T_LONGLONG: case T_DATETIME: return 8;
    case T_NULL: return 0;
    case T_FLOAT: return 4;
    case T_DOUBLE: return 8;
    case T_TIMESTAMP2: return 4 + (meta + 1) / 2;
    case T_DATETIME2: return 5 + (meta + 1) / 2;
    case T_TIME2: return 3 + (meta + 1) / 2;
    case T_BIT: return (meta >> 8) + ((meta & 0xff) ? 1 : 0);
    case T_NEWDECIMAL: {
        unsigned prec = meta & 0xff, scale = meta >> 8;
        if (scale > prec || prec > 65)
            return -1;
        unsigned intg = prec - scale;
        return (long)((intg / 9) * 4 + dig2bytes[intg % 9] + (scale / 9) * 4 +
                      dig2bytes[scale % 9]);
    }
    case T_ENUM: case T_SET:
        return meta & 0xff;
    case T_STRING: {
        unsigned b0 = meta >> 8, b1 = meta & 0xff, max_len;
        if ((b0 & 0x30) != 0x30) {
            max_len = b1 | (((b0 & 0x30) ^ 0x30) << 4);
            b0 |= 0x30;
        } else {
            max_len = b1;
        }
        if (b0 == T_ENUM || b0 == T_SET)
            return b1;
        *skip = max_len > 255 ? 2 : 1;
        break;
    }
    case T_VARCHAR: case T_VAR_STRING:
        *skip = meta > 255 ? 2 : 1;
        break;
    case T_TINY_BLOB: case T_MEDIUM_BLOB: case T_LONG_BLOB: case T_BLOB: case T_GEOMETRY:
    case T_JSON:
        if (meta < 1 || meta > 4)
            return -1;
        *skip = meta;
        break;
    default:
        return -1;
    }
    if (len < *skip)
        return -1;
    uint64_t n = le(p, (unsigned)*skip);
    if (n > len - *skip)
        return -1;
    return (long)(*skip + n);
}

int binlog_row_image(const struct binlog_table *t, const uint8_t *present, const uint8_t *body,
                     size_t len, size_t *off, struct binlog_value *vals)
{
    unsigned n_present = 0, k = 0;
    size_t o = *off;

    for (unsigned i = 0; i < t->n_cols; i++)
        n_present += (present[i / 8] >> (i % 8)) & 1;
    size_t nb = (n_present + 7) / 8;
    if (o > len || len - o < nb)
        return -1;
    const uint8_t *nulls = body + o;
    o += nb;
    for (unsigned i = 0; i < t->n_cols; i++) {
        vals[i].is_null = true;
        vals[i].p = NULL;
        vals[i].len = 0;
        if (!((present[i / 8] >> (i % 8)) & 1))
            continue;
        bool null = (nulls[k / 8] >> (k % 8)) & 1;
        k++;
        if (null)
            continue;
        size_t skip;
        long n = value_len(t->types[i], t->meta[i], body + o, len - o, &skip);
        if (n < 0 || (size_t)n > len - o)
            return -1;
        vals[i].is_null = false;
        vals[i].p = body + o + skip;
        vals[i].len = (size_t)n - skip;
        o += (size_t)n;
    }
    *off = o;
    return 0;
}

bool binlog_type_is_int(uint8_t type)
{
    return type == T_TINY || type == T_SHORT || type == T_INT24 || type == T_LONG ||
           type == T_LONGLONG;
}

int binlog_int_text(uint8_t type, const struct binlog_value *v, bool is_unsigned, char *buf)
{
    unsigned width = type == T_TINY ? 1 : type == T_SHORT ? 2 : type == T_INT24 ? 3
                   : type == T_LONG ? 4 : type == T_LONGLONG ? 8 : 0;
    if (width == 0 || v->is_null || v->len != width)
        return -1;
    uint64_t u = le(v->p, width);
    if (is_unsigned)
        return snprintf(buf, 24, "%" PRIu64, u);
    if (width < 8 && (u >> (width * 8 - 1)) & 1)
        u |= ~UINT64_C(0) << (width * 8);         /* sign-extend */
    return snprintf(buf, 24, "%" PRId64, (int64_t)u);
}
