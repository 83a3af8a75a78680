/*
 * protocol/binlog.h - the parts of MariaDB binary log events a vbucket move
 * reads (docs/moves.md, "catch-up"): event headers, ROTATE, TABLE_MAP and
 * the row images of WRITE/UPDATE/DELETE_ROWS v1 and v2.
 *
 * Debian 12's libmariadb 3.3 has mariadb_rpl_fetch() and
 * mariadb_rpl_extract_rows(), but its fetch refuses the TABLE_MAP event of
 * a table whose columns carry no metadata (integers only: "Sanity check
 * failed: Missing table map metadata"), so the mover reads the raw events
 * and decodes them here. Pure: bytes in, offsets and values out; nothing
 * allocates, logs or keeps a pointer past the caller's buffer. Every length
 * is checked against the buffer: bytes from a server never crash it
 * (tests/fuzz/fuzz_binlog.c).
 */
#ifndef SHARDWIRE_PROTOCOL_BINLOG_H
#define SHARDWIRE_PROTOCOL_BINLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BINLOG_HEADER_LEN 19

/* Event types (MariaDB sql/log_event.h). */
enum {
    BINLOG_QUERY          = 2,
    BINLOG_ROTATE         = 4,
    BINLOG_FORMAT_DESC    = 15,
    BINLOG_XID            = 16,
    BINLOG_TABLE_MAP      = 19,
    BINLOG_WRITE_ROWS_V1  = 23,
    BINLOG_UPDATE_ROWS_V1 = 24,
    BINLOG_DELETE_ROWS_V1 = 25,
    BINLOG_WRITE_ROWS     = 30,
    BINLOG_UPDATE_ROWS    = 31,
    BINLOG_DELETE_ROWS    = 32,
    BINLOG_GTID           = 162,
    BINLOG_WRITE_ROWS_COMPRESSED_V1 = 166,
    BINLOG_DELETE_ROWS_COMPRESSED   = 171,
};

struct binlog_header {
    uint32_t timestamp;
    uint8_t  type;
    uint32_t server_id;
    uint32_t event_len;    /* header included */
    uint32_t next_pos;     /* position after this event in its file (0: artificial) */
    uint16_t flags;
};

/* Reads the 19-byte header at <buf>. Returns 0, or -1 when <len> is short
 * or the event length is impossible. */
int binlog_header(const uint8_t *buf, size_t len, struct binlog_header *h);

/* ROTATE body (after the header, checksum removed): the next file and its
 * first position. <name> gets at most <cap>-1 bytes, NUL-terminated.
 * Returns 0, or -1 when malformed or the name does not fit. */
int binlog_rotate(const uint8_t *body, size_t len, uint64_t *pos, char *name, size_t cap);

#define BINLOG_MAX_COLS 4096

/* A table map (TABLE_MAP body). Names point into the caller's buffer. */
struct binlog_table {
    uint64_t       table_id;
    const uint8_t *db;
    size_t         db_len;
    const uint8_t *name;
    size_t         name_len;
    unsigned       n_cols;
    uint8_t        types[BINLOG_MAX_COLS];
    uint16_t       meta[BINLOG_MAX_COLS];
};

/* Parses a TABLE_MAP body. Returns 0, or -1 when malformed or when a column
 * type is one this decoder cannot size (then no row of it can be read). */
int binlog_table_map(const uint8_t *body, size_t len, struct binlog_table *t);

/* The fixed part of a ROWS event body: which table, which columns. */
struct binlog_rows {
    uint64_t table_id;
    bool     update;          /* two images per row: before, after */
    unsigned n_cols;
    uint8_t  present[BINLOG_MAX_COLS / 8];        /* columns in each image */
    uint8_t  present_after[BINLOG_MAX_COLS / 8];  /* UPDATE: in the after image */
    size_t   rows_off;        /* where the first row image starts in the body */
};

/* Parses the head of a ROWS event body of type <type> (v1 or v2). Returns 0,
 * or -1 when malformed. */
int binlog_rows_head(uint8_t type, const uint8_t *body, size_t len, struct binlog_rows *r);

/* One column's value inside a row image: NULL, or bytes (for integers the
 * raw little-endian bytes; for strings the bytes after the length prefix). */
struct binlog_value {
    bool           is_null;
    const uint8_t *p;
    size_t         len;
};

/*
 * Reads the row image at <body>+<*off> (<present>: the columns it holds) of
 * table <t> into <vals>[t->n_cols] (absent columns read as NULL) and
 * advances <*off> past it. Returns 0, or -1 when malformed.
 */
int binlog_row_image(const struct binlog_table *t, const uint8_t *present, const uint8_t *body,
                     size_t len, size_t *off, struct binlog_value *vals);

/* True when type <type> of the table map is an integer type (TINY, SHORT,
 * INT24, LONG, LONGLONG). */
bool binlog_type_is_int(uint8_t type);
/* The decimal text of integer value <v> of a column of type <type>,
 * <is_unsigned> as the schema says, into <buf> (at least 24 bytes).
 * Returns its length, or -1 when <v> is not an integer of that type. */
int binlog_int_text(uint8_t type, const struct binlog_value *v, bool is_unsigned, char *buf);

#endif
