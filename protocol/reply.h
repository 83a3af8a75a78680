/*
 * protocol/reply.h - OK/ERR/EOF builders, and a tracker that finds where a
 * server's reply to one command ends without decoding rows.
 *
 * The tracker sees every packet of a reply through reply_feed(), one packet
 * at a time, with at most REPLY_PEEK bytes of its payload: enough to read an
 * OK's or EOF's status flags. Row contents are never looked at.
 */
#ifndef SHARDWIRE_PROTOCOL_REPLY_H
#define SHARDWIRE_PROTOCOL_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLY_PEEK 32   /* payload bytes reply_feed() may want to see */

/* What kind of reply follows the command that was sent. */
enum reply_kind {
    REPLY_SIMPLE,       /* OK or ERR (COM_PING, COM_INIT_DB, COM_RESET_CONNECTION, ...) */
    REPLY_QUERY,        /* COM_QUERY: OK, ERR, or result sets, maybe several */
    REPLY_EXECUTE,      /* COM_STMT_EXECUTE: like QUERY, binary rows, maybe a cursor */
    REPLY_PREPARE,      /* COM_STMT_PREPARE: OK + param defs + column defs, or ERR */
    REPLY_FIELD_LIST,   /* COM_FIELD_LIST: column defs ended by EOF, or ERR */
    REPLY_FETCH,        /* COM_STMT_FETCH: rows ended by EOF, or ERR */
};

enum reply_state {
    REPLY_FIRST,        /* expecting the first packet of a (next) result */
    REPLY_COLDEFS,      /* column definitions */
    REPLY_COLDEFS_EOF,  /* the EOF after column definitions */
    REPLY_ROWS,
    REPLY_PREP_PARAMS,  /* COM_STMT_PREPARE parameter definitions (+ EOF) */
    REPLY_PREP_COLS,    /* COM_STMT_PREPARE column definitions (+ EOF) */
    REPLY_DONE,
};

struct reply {
    enum reply_kind  kind;
    enum reply_state state;
    uint64_t         left;          /* packets left in the current block */
    uint16_t         prep_params;   /* PREPARE: params still to come after columns */
    uint16_t         prep_cols;
    bool             in_continuation; /* the previous packet was 0xffffff long */
    bool             deprecate_eof;   /* negotiated CLIENT_DEPRECATE_EOF */
    /* Results, valid when state == REPLY_DONE: */
    bool             is_error;      /* the reply ended in ERR */
    uint16_t         status;        /* status flags of the last OK/EOF */
    uint16_t         warnings;      /* warning count of the last OK/EOF */
    uint16_t         err_no;        /* when is_error */
    uint32_t         stmt_id;       /* PREPARE OK: the server's statement id */
    uint16_t         n_params;      /* PREPARE OK */
    uint16_t         n_columns;     /* PREPARE OK */
    uint64_t         affected_rows; /* last OK */
    uint64_t         insert_id;     /* last OK */
    uint64_t         rows;          /* result-set rows so far, all result sets (a row
                                       longer than one packet counts once) */
};

void reply_begin(struct reply *r, enum reply_kind kind, bool deprecate_eof);

/*
 * Feeds the next packet of the reply: its full length <payload_len> and its
 * first <avail> payload bytes at <p>; <avail> must be at least
 * min(payload_len, REPLY_PEEK). Returns 1 when this packet ends the reply,
 * 0 when more packets follow, -1 when the packet cannot occur here (the
 * stream is broken; the caller drops the connection).
 */
int reply_feed(struct reply *r, const uint8_t *p, size_t avail, uint32_t payload_len);

/* Builds an OK payload at <out> (room for 64 bytes + <info_len>). Returns its length. */
size_t reply_write_ok(uint8_t *out, uint64_t affected, uint64_t insert_id, uint16_t status,
                      uint16_t warnings, const char *info, size_t info_len);

/* Builds an EOF payload (5 bytes) at <out>. Returns 5. */
size_t reply_write_eof(uint8_t *out, uint16_t warnings, uint16_t status);

/* Builds an ERR payload at <out> (room for 9 + <msg_len> bytes): errno,
 * '#' + <sqlstate> (5 chars), message. Returns its length. */
size_t reply_write_err(uint8_t *out, uint16_t err_no, const char *sqlstate,
                       const char *msg, size_t msg_len);

/* Parses an ERR payload: <*err_no>, <*msg_off>/<*msg_len> into <p>.
 * Returns 0, or -1 if it is not a well-formed ERR. */
int reply_parse_err(const uint8_t *p, size_t len, uint16_t *err_no,
                    size_t *msg_off, size_t *msg_len);

#endif
