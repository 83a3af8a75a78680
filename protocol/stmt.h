/*
 * protocol/stmt.h - COM_STMT_EXECUTE parsing and binary-protocol parameter
 * values, enough to read the shard key out of an EXECUTE and to re-send an
 * EXECUTE under another statement id or with its parameter types.
 *
 * Pure: no allocation, no I/O. Offsets index the caller's payload.
 */
#ifndef SHARDWIRE_PROTOCOL_STMT_H
#define SHARDWIRE_PROTOCOL_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/analyze.h"

/* Column/parameter types (MySQL's numbering). */
#define STMT_TYPE_DECIMAL     0x00
#define STMT_TYPE_TINY        0x01
#define STMT_TYPE_SHORT       0x02
#define STMT_TYPE_LONG        0x03
#define STMT_TYPE_FLOAT       0x04
#define STMT_TYPE_DOUBLE      0x05
#define STMT_TYPE_NULL        0x06
#define STMT_TYPE_TIMESTAMP   0x07
#define STMT_TYPE_LONGLONG    0x08
#define STMT_TYPE_INT24       0x09
#define STMT_TYPE_DATE        0x0a
#define STMT_TYPE_TIME        0x0b
#define STMT_TYPE_DATETIME    0x0c
#define STMT_TYPE_YEAR        0x0d
#define STMT_TYPE_NEWDATE     0x0e
#define STMT_TYPE_VARCHAR     0x0f
#define STMT_TYPE_BIT         0x10
#define STMT_TYPE_JSON        0xf5
#define STMT_TYPE_NEWDECIMAL  0xf6
#define STMT_TYPE_ENUM        0xf7
#define STMT_TYPE_SET         0xf8
#define STMT_TYPE_TINY_BLOB   0xf9
#define STMT_TYPE_MEDIUM_BLOB 0xfa
#define STMT_TYPE_LONG_BLOB   0xfb
#define STMT_TYPE_BLOB        0xfc
#define STMT_TYPE_VAR_STRING  0xfd
#define STMT_TYPE_STRING      0xfe
#define STMT_TYPE_GEOMETRY    0xff
#define STMT_UNSIGNED_FLAG    0x80   /* in the second byte of a parameter type */

#define STMT_CURSOR_READ_ONLY 0x01   /* EXECUTE flags */

/* A parsed COM_STMT_EXECUTE (payload starting with the command byte). */
struct stmt_execute {
    uint32_t stmt_id;
    uint8_t  flags;
    size_t   null_off;        /* null bitmap: (n_params + 7) / 8 bytes */
    bool     new_types;       /* the packet carries parameter types */
    size_t   types_off;       /* when new_types: 2 bytes per parameter */
    size_t   values_off;      /* where the parameter values begin */
};

/*
 * Parses an EXECUTE payload <p>/<len> for a statement of <n_params>
 * parameters. Returns 0, or -1 when it is too short or malformed. With
 * n_params == 0 only stmt_id and flags are meaningful.
 */
int stmt_parse_execute(const uint8_t *p, size_t len, unsigned n_params,
                       struct stmt_execute *ex);

/* One parameter's value as sent. */
struct stmt_value {
    bool     is_null;
    uint8_t  type;
    bool     is_unsigned;
    size_t   off, len;        /* the value's bytes (integers: little-endian) */
};

/*
 * Finds parameter <idx> of <n_params> in the EXECUTE <p>/<len>, with the
 * parameter types <types> (2 bytes each: the packet's own when it carries
 * them, else those remembered from an earlier EXECUTE). Parameters whose
 * bit is set in <long_data> (sent with COM_STMT_SEND_LONG_DATA; NULL: none)
 * have no bytes in the packet. Returns 0, or -1 when the packet is too short
 * or a type is unknown.
 */
int stmt_param(const uint8_t *p, size_t len, const struct stmt_execute *ex,
               const uint8_t *types, unsigned n_params, const uint8_t *long_data,
               unsigned idx, struct stmt_value *out);

/*
 * The canonical shard key (see analyze.h) of value <v> in <p>, for keys of
 * type <kt>: integer types as decimal; a DOUBLE/FLOAT holding an integral
 * value in int64 range as that integer (Node mysql2 binds numbers as
 * DOUBLE); string and decimal types by analyze_canon_key(). For a string
 * key only string-typed values count: MariaDB compares a string column with
 * a number numerically, so an integer, decimal or double 42 would match the
 * rows of '042', '42.0' and ' 42' too. Returns the length written to <out>,
 * or -1 when the value cannot be a key (NULL, fractional, out of range,
 * temporal, a number for a string key, ...).
 */
int stmt_key_of(const uint8_t *p, const struct stmt_value *v, enum analyze_key_type kt,
                char out[ANALYZE_KEY_MAX]);

#endif
