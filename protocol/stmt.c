/*
 * protocol/stmt.c - COM_STMT_EXECUTE and binary parameter values.
 */
#include "protocol/stmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "protocol/packet.h"

int stmt_parse_execute(const uint8_t *p, size_t len, unsigned n_params,
                       struct stmt_execute *ex)
{
    struct packet_reader rd;
    uint8_t cmd, bound = 0;
    uint32_t iterations;

    memset(ex, 0, sizeof(*ex));
    packet_reader_init(&rd, p, len);
    packet_get_u8(&rd, &cmd);
    packet_get_u32(&rd, &ex->stmt_id);
    packet_get_u8(&rd, &ex->flags);
    packet_get_u32(&rd, &iterations);
    if (rd.bad)
        return -1;
    if (n_params == 0) {
        ex->values_off = rd.pos;
        return 0;
    }
    if (packet_get_bytes(&rd, (n_params + 7) / 8, &ex->null_off) < 0 ||
        packet_get_u8(&rd, &bound) < 0)
        return -1;
    if (bound) {
        ex->new_types = true;
        if (packet_get_bytes(&rd, 2 * (size_t)n_params, &ex->types_off) < 0)
            return -1;
    }
    ex->values_off = rd.pos;
    return 0;
}

/* Bytes of a value of <type> at <p>/<avail>: >= 0, or -1 (short/unknown). */
static ssize_t value_size(uint8_t type, const uint8_t *p, size_t avail)
{
    uint64_t n;
    ssize_t k;

    switch (type) {
    case STMT_TYPE_NULL:
        return 0;
    case STMT_TYPE_TINY:
        return 1;
    case STMT_TYPE_SHORT:
    case STMT_TYPE_YEAR:
        return 2;
    case STMT_TYPE_LONG:
    case STMT_TYPE_INT24:
    case STMT_TYPE_FLOAT:
        return 4;
    case STMT_TYPE_LONGLONG:
    case STMT_TYPE_DOUBLE:
        return 8;
    case STMT_TYPE_DATE:
    case STMT_TYPE_DATETIME:
    case STMT_TYPE_TIMESTAMP:
    case STMT_TYPE_TIME:
        if (avail < 1)
            return -1;
        return 1 + (ssize_t)p[0];
    case STMT_TYPE_DECIMAL:
    case STMT_TYPE_NEWDECIMAL:
    case STMT_TYPE_VARCHAR:
    case STMT_TYPE_BIT:
    case STMT_TYPE_JSON:
    case STMT_TYPE_ENUM:
    case STMT_TYPE_SET:
    case STMT_TYPE_TINY_BLOB:
    case STMT_TYPE_MEDIUM_BLOB:
    case STMT_TYPE_LONG_BLOB:
    case STMT_TYPE_BLOB:
    case STMT_TYPE_VAR_STRING:
    case STMT_TYPE_STRING:
    case STMT_TYPE_GEOMETRY:
        k = packet_read_lenenc(p, avail, &n);
        if (k <= 0 || n > avail - (size_t)k)
            return -1;
        return k + (ssize_t)n;
    default:
        return -1;
    }
}

int stmt_param(const uint8_t *p, size_t len, const struct stmt_execute *ex,
               const uint8_t *types, unsigned n_params, const uint8_t *long_data,
               unsigned idx, struct stmt_value *out)
{
    size_t pos = ex->values_off;

    if (idx >= n_params || ex->null_off + (n_params + 7) / 8 > len)
        return -1;
    for (unsigned i = 0; i <= idx; i++) {
        bool is_null = (p[ex->null_off + i / 8] >> (i % 8)) & 1;
        bool is_long = long_data && ((long_data[i / 8] >> (i % 8)) & 1);
        uint8_t type = types[2 * i];
        ssize_t sz = 0;

        if (!is_null && !is_long) {
            if (pos > len)
                return -1;
            sz = value_size(type, p + pos, len - pos);
            if (sz < 0 || (size_t)sz > len - pos)
                return -1;
        }
        if (i == idx) {
            memset(out, 0, sizeof(*out));
            out->is_null = is_null || is_long;
            out->type = type;
            out->is_unsigned = (types[2 * i + 1] & STMT_UNSIGNED_FLAG) != 0;
            out->off = pos;
            out->len = (size_t)sz;
            return 0;
        }
        pos += (size_t)sz;
    }
    return -1;
}

static uint64_t le_uint(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = n; i > 0; i--)
        v = (v << 8) | p[i - 1];
    return v;
}

int stmt_key_of(const uint8_t *p, const struct stmt_value *v, enum analyze_key_type kt,
                char out[ANALYZE_KEY_MAX])
{
    const uint8_t *b = p + v->off;
    char text[32];
    int n;

    if (v->is_null)
        return -1;
    switch (v->type) {
    case STMT_TYPE_TINY:
    case STMT_TYPE_SHORT:
    case STMT_TYPE_LONG:
    case STMT_TYPE_INT24:
    case STMT_TYPE_LONGLONG:
    case STMT_TYPE_YEAR:
    case STMT_TYPE_DOUBLE:
    case STMT_TYPE_FLOAT:
    case STMT_TYPE_DECIMAL:
    case STMT_TYPE_NEWDECIMAL:
        /* compared numerically with a string column: 42 = '042' */
        if (kt != ANALYZE_KEY_INT)
            return -1;
        break;
    default:
        break;
    }
    switch (v->type) {
    case STMT_TYPE_TINY:
    case STMT_TYPE_SHORT:
    case STMT_TYPE_LONG:
    case STMT_TYPE_INT24:
    case STMT_TYPE_LONGLONG:
    case STMT_TYPE_YEAR: {
        size_t w = v->len;
        uint64_t u = le_uint(b, w);

        if (v->is_unsigned) {
            n = snprintf(text, sizeof(text), "%" PRIu64, u);
        } else {
            int64_t sv;

            /* Sign-extend from the value's width. */
            if (w < 8 && (u >> (8 * w - 1)) & 1)
                u |= ~(uint64_t)0 << (8 * w);
            memcpy(&sv, &u, sizeof(sv));
            n = snprintf(text, sizeof(text), "%" PRId64, sv);
        }
        return analyze_canon_key(kt, text, (size_t)n, out);
    }
    case STMT_TYPE_DOUBLE:
    case STMT_TYPE_FLOAT: {
        double d;

        if (v->type == STMT_TYPE_DOUBLE) {
            uint64_t u = le_uint(b, 8);

            memcpy(&d, &u, sizeof(d));
        } else {
            uint32_t u = (uint32_t)le_uint(b, 4);
            float f;

            memcpy(&f, &u, sizeof(f));
            d = f;
        }
        /* Only an exactly integral value in int64 range names one user;
         * 2^63 itself is out of range. */
        if (kt != ANALYZE_KEY_INT || !isfinite(d) || d != floor(d) ||
            d < -9223372036854775808.0 || d >= 9223372036854775808.0)
            return -1;
        n = snprintf(text, sizeof(text), "%" PRId64, (int64_t)d);
        return analyze_canon_key(kt, text, (size_t)n, out);
    }
    case STMT_TYPE_DECIMAL:
    case STMT_TYPE_NEWDECIMAL:
    case STMT_TYPE_VARCHAR:
    case STMT_TYPE_ENUM:
    case STMT_TYPE_SET:
    case STMT_TYPE_TINY_BLOB:
    case STMT_TYPE_MEDIUM_BLOB:
    case STMT_TYPE_LONG_BLOB:
    case STMT_TYPE_BLOB:
    case STMT_TYPE_VAR_STRING:
    case STMT_TYPE_STRING: {
        uint64_t slen;
        ssize_t k = packet_read_lenenc(b, v->len, &slen);

        if (k <= 0 || slen > v->len - (size_t)k)
            return -1;
        return analyze_canon_key(kt, (const char *)b + k, (size_t)slen, out);
    }
    default:
        return -1;
    }
}
