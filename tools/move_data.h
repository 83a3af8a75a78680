/*
 * tools/move_data.h - the MariaDB side of a vbucket move (shardctl move):
 * which tables move, the copy from a consistent snapshot, catch-up from the
 * binary log, the row check, and deleting a vbucket's rows.
 *
 * Control plane: blocking MariaDB Connector/C calls, one thread (shardctl).
 * Rows of the moving vbuckets are found by scanning a table and hashing
 * each row's shard key on the client with the router's own vbucket_of()
 * (MariaDB cannot compute XXH3); one scan serves every moving vbucket
 * (docs/moves.md, "How rows are selected"). Values travel as the server's
 * own bytes (character_set_results=binary) and go back as hex literals, so
 * no character set conversion can change them.
 */
#ifndef SHARDWIRE_TOOLS_MOVE_DATA_H
#define SHARDWIRE_TOOLS_MOVE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <mysql.h>

#include "protocol/analyze.h"

struct smap_endpoint;

#define MV_MAX_PK 16

struct mv_table {
    char      name[65];
    unsigned  n_cols;
    char    (*cols)[65];      /* [n_cols] column names, table order */
    bool     *num;            /* [n_cols] numeric: written as a plain literal */
    bool     *uns;            /* [n_cols] an unsigned integer type */
    unsigned *bin_len;        /* [n_cols] n of a BINARY(n) column (a binary log row
                                 image drops its trailing 0x00 bytes), else 0 */
    unsigned  key_col;        /* index of the shard-key column */
    unsigned  n_pk;
    unsigned  pk[MV_MAX_PK];  /* indices of the primary key's columns */
    bool      pk_exact;       /* every primary key column is an integer or VARCHAR/
                                 VARBINARY: a key read from the binary log is written
                                 exactly as a SELECT returns it (mv_verify) */
};

struct mv_verify;

/* What the step running has done so far (mv_ctx.count). */
enum mv_step { MV_STEP_COPY, MV_STEP_CATCHUP, MV_STEP_DELETE };
struct mv_count {
    enum mv_step step;
    uint64_t     done;       /* rows copied, changed rows applied again, rows deleted */
    uint64_t     read;       /* rows read (copy, delete), binary log events read (catch-up) */
    uint64_t     estimate;   /* copy, delete: the rows the tables hold by the server's
                                statistics (InnoDB's estimate; 0: unknown) */
    uint64_t     bytes;      /* catch-up: binary log bytes read */
};

/* What every step needs; the caller fills the first block. */
struct mv_ctx {
    const char           *db;          /* the app database */
    const char           *user, *password;
    const char *const    *key_columns; /* the map's key columns */
    unsigned              n_key_columns;
    const uint8_t        *moving;      /* [n_vbuckets]: 1 for a vbucket that moves */
    uint32_t              n_vbuckets;
    unsigned              rate;        /* rows per second (copy, delete); 0: unlimited */
    unsigned              chunk_rows;  /* rows per destination transaction */
    void                (*progress)(void *arg, const char *line);
    void                 *progress_arg;
    /* progress (NULL: not wanted): called with <count> after each batch
     * of mv_copy(), mv_catchup() and mv_delete(), which only add to it
     * (the caller zeroes it when a step of its own starts) */
    void                (*on_count)(void *arg, const struct mv_count *count);
    struct mv_count       count;

    struct mv_table      *tables;      /* from mv_discover() */
    unsigned              n_tables;
    struct mv_verify     *verify;      /* NULL, or the row check mv_catchup() keeps
                                          current (mv_verify_scan()) */
    MYSQL                *binlog_spare; /* mv_catchup_prepare(): the next round's */
    bool                  binlog_crc;
};

/* Connects to <ep> with the ctx's account and database. Returns the handle,
 * or NULL with a malloc'd *<errp> naming <what> and the server. */
MYSQL *mv_connect(const struct mv_ctx *c, const struct smap_endpoint *ep, const char *what,
                  char **errp);

/*
 * Finds the tables that move: every base table of the database on the
 * source <src>. Refuses (0 changes made), with a message naming the table,
 * a table without a shard-key column, one without a primary key, a primary
 * key or key column of a type moves do not handle (integers and strings
 * only), and a table the destination <dst> lacks or holds with other
 * columns. Returns 0, or -1 with a malloc'd *<errp>.
 */
int mv_discover(struct mv_ctx *c, MYSQL *src, MYSQL *dst, const char *dst_name, char **errp);
void mv_tables_free(struct mv_ctx *c);

/* A binary log position. */
struct mv_pos {
    char     file[200];
    uint64_t pos;
    char     gtid[256];   /* the GTID position there, for people */
};

/*
 * Copies the moving vbuckets' rows of every table from a consistent
 * snapshot of <src> (START TRANSACTION WITH CONSISTENT SNAPSHOT) into
 * <dst>, <chunk_rows> per transaction, throttled to <rate>. *<at> gets the
 * binary log position of the snapshot: catch-up starts there. *<rows> counts
 * the rows copied. Returns 0, or -1 with a malloc'd *<errp>.
 */
int mv_copy(struct mv_ctx *c, MYSQL *src, MYSQL *dst, struct mv_pos *at, uint64_t *rows,
            char **errp);

/*
 * Applies the changes <src> logged since <*at> (row format) to <dst> for
 * the moving vbuckets' rows, up to the end of the binary log as it is when
 * reached, then advances <*at>. A changed row is copied again from the
 * source's current state (or deleted on <dst> when gone), so applying the
 * same span twice is harmless. <ep> is the source, for the replication
 * connection. *<changed> counts the rows copied again. Returns 0, or -1 with
 * a malloc'd *<errp>.
 */
int mv_catchup(struct mv_ctx *c, const struct smap_endpoint *ep, MYSQL *src, MYSQL *dst,
               struct mv_pos *at, uint64_t *changed, char **errp);

/* Connects the binary log connection of the next mv_catchup() now (the
 * cutover's drain should not pay for a login). unprepare closes an unused
 * one. Returns 0, or -1 with *<errp>. */
int mv_catchup_prepare(struct mv_ctx *c, const struct smap_endpoint *ep, char **errp);
void mv_catchup_unprepare(struct mv_ctx *c);

/* The source's current end of binary log. Returns 0, or -1 with *<errp>. */
int mv_binlog_end(MYSQL *src, struct mv_pos *at, char **errp);

/* How many bytes of binary log <src> holds after <at> (SHOW BINARY LOGS:
 * the rest of <at>'s file and every later file; about, across files).
 * Returns 0, or -1 with *<errp> (e.g. without the BINLOG MONITOR
 * privilege). */
int mv_binlog_behind(MYSQL *src, const struct mv_pos *at, uint64_t *behind, char **errp);

/* Refuses a server that is read-only (a standby, or an old master a
 * failover or switchover fenced): the control account may write through
 * read_only (READ_ONLY ADMIN), and a write there would be an errant
 * transaction. <what> names it. Returns 0, or -1 with *<errp>. */
int mv_check_writable(MYSQL *m, const char *what, char **errp);

/*
 * Counts the rows <conn> stores per vbucket in every table of
 * mv_discover(): one streamed read of each table's shard-key column,
 * hashed on the client like the copy. Adds to <rows> (<n_vbuckets>
 * entries; ctx.moving is not used). Returns 0, or -1 with a malloc'd
 * *<errp>.
 */
int mv_count_rows(struct mv_ctx *c, MYSQL *conn, double *rows, char **errp);

/* Row count and an order-independent checksum of the moving vbuckets' rows. */
struct mv_sum {
    uint64_t rows;
    uint64_t sum;
};

/* Sums table <t> on <conn> into <*out>. Returns 0, or -1 with *<errp>. */
int mv_checksum(struct mv_ctx *c, MYSQL *conn, const struct mv_table *t, struct mv_sum *out,
                char **errp);

/*
 * The row check of the cutover, kept current so that the frozen window
 * only looks at the rows changed last (docs/moves.md, "The row check"):
 * one hash per row of the moving vbuckets and per side, by primary key.
 * mv_verify_scan() reads every table on <src> and <dst> once (nothing
 * frozen) and returns the check in *<out>; with ctx->verify set to it, each
 * mv_catchup() round reads the rows it copied again from both sides by key
 * and updates their hashes. A row that differs at the scan and is not
 * changed later stays different: the check fails. Usable only when every
 * table's primary key is pk_exact (mv_verify_usable()). Returns 0, or -1
 * with a malloc'd *<errp>.
 */
bool mv_verify_usable(const struct mv_ctx *c);
int mv_verify_scan(struct mv_ctx *c, MYSQL *src, MYSQL *dst, struct mv_verify **out,
                   char **errp);
/* 0 when both sides hold the same rows: *<rows> gets their number; -1 with
 * the first table that differs described in <msg>/<cap>. */
int mv_verify_result(const struct mv_ctx *c, const struct mv_verify *v, uint64_t *rows,
                     char *msg, size_t cap);
void mv_verify_free(struct mv_verify *v);   /* NULL does nothing */

/*
 * Deletes the moving vbuckets' rows of every table on the server <ep>
 * (<what> names it in messages), in chunks of <chunk_rows>, throttled.
 * *<rows> counts them. Returns 0, or -1 with a malloc'd *<errp>.
 */
int mv_delete(struct mv_ctx *c, const struct smap_endpoint *ep, const char *what,
              uint64_t *rows, char **errp);

#endif
