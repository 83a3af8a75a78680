/*
 * shardmap/movejournal.h - the journal of one vbucket move, as text.
 *
 * A move (docs/moves.md) records each phase in ZooKeeper before the phase
 * starts, in <root>/moves/<id>, as one line of key=value words:
 *
 *   vbuckets=40-41,77 from=s0 to=s2 database=app phase=copy started_ms=1795437303510
 *   updated_ms=1795437304510 rows=1200 binlog=mysql-bin.000002:1234
 *   gtid=0-1-55 masters=10.0.0.1:3306,10.0.0.3:3306 error="..."
 *
 * Pure: text in, struct out, and back; also the vbucket list syntax of the
 * command line ("7", "40-41", "1,5-7"). Nothing here allocates except where
 * said, logs or does I/O.
 */
#ifndef SHARDWIRE_SHARDMAP_MOVEJOURNAL_H
#define SHARDWIRE_SHARDMAP_MOVEJOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardmap/smap.h"

/* Phases in the order a move runs them; each is written before it starts. */
enum move_phase {
    MOVE_COPY,       /* snapshot of the source, rows copied to the destination */
    MOVE_CATCHUP,    /* binary log applied from the snapshot's position */
    MOVE_CUTOVER,    /* vbuckets frozen; routers acknowledge; drain, check, flip */
    MOVE_CLEANUP,    /* the map names the destination; rows deleted on the source */
    MOVE_DONE,
    MOVE_ABORTING,   /* before the flip: copied rows being removed */
    MOVE_ABORTED,
};

#define MOVE_TEXT_MAX   4096   /* bytes of a journal's text, NUL included */
#define MOVE_FIELD_MAX  256

struct move_journal {
    enum move_phase phase;
    char            vbuckets[MOVE_FIELD_MAX * 4];   /* canonical list, "40-41,77" */
    char            from[SMAP_NAME_MAX];
    char            to[SMAP_NAME_MAX];
    char            database[65];  /* the app database whose tables move */
    uint64_t        started_ms;   /* CLOCK_REALTIME ms */
    uint64_t        updated_ms;
    uint64_t        rows;         /* rows copied so far */
    char            binlog[MOVE_FIELD_MAX];   /* "FILE:POS" applied up to, or "" */
    char            gtid[MOVE_FIELD_MAX];     /* the snapshot's GTID position, or "" */
    char            masters[MOVE_FIELD_MAX];  /* "SRC,DST" master addresses the copy and
                                                 <binlog> belong to, or "" (older journal) */
    char            error[MOVE_FIELD_MAX];    /* why it stopped last, or "" */
};

/* Returns a static name ("copy", "catchup", ...) for <p>. */
const char *move_phase_name(enum move_phase p);
/* True for the phases of a move that still holds its vbuckets. */
bool move_phase_active(enum move_phase p);

/*
 * Parses a vbucket list <text> ("7", "40-41", "1,5-7,9") into <set>
 * (<n_vbuckets> bytes, set[vb] = 1 for each listed vbucket, others 0).
 * Returns the number of vbuckets listed, or -1 with a malloc'd *<errp>
 * (syntax, out of range, listed twice, empty).
 */
long move_parse_vbuckets(const char *text, uint8_t *set, uint32_t n_vbuckets, char **errp);
/* Writes the canonical list of <set> ("1,5-7,9") to <buf>/<cap>. Returns
 * 0, or -1 when it does not fit. */
int move_format_vbuckets(const uint8_t *set, uint32_t n_vbuckets, char *buf, size_t cap);

/* Parses journal text <text>/<len>. Returns 0, or -1 with a malloc'd *<errp>
 * naming the bad word. Unknown keys are ignored (a newer writer). */
int move_journal_parse(const char *text, size_t len, struct move_journal *j, char **errp);
/* Writes <j> as one line to <buf>/<cap>. Returns 0, or -1 if it does not fit. */
int move_journal_format(const struct move_journal *j, char *buf, size_t cap);

#endif
