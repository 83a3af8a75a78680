/*
 * router/journal.h - the failover journal of a shard and the bounded
 * history of finished failovers and switchovers, both in ZooKeeper
 * (docs/failover.md "The journal").
 *
 * <root>/failover/<shard> holds one line of key=value words:
 *
 *   term=4 state=published kind=failover coordinator=r1 at_ms=... started_ms=...
 *   last_ms=... old=H:P new=H:P version=9
 *
 * Each step is written with a compare-and-set on the node before it is
 * taken, and a new failover or switchover bumps the term, so a coordinator
 * (or shardctl) that was paused and wakes up finds the node changed and
 * stops. A step into a final state (done, aborted) also appends one line to
 * <root>/history, which keeps the last JOURNAL_HISTORY_KEEP.
 *
 * Used by the routers' coordinator and by shardctl (failover, switchover,
 * status): blocking ZooKeeper calls, never on a worker.
 */
#ifndef SHARDWIRE_ROUTER_JOURNAL_H
#define SHARDWIRE_ROUTER_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardmap/smap.h"
#include "shardmap/zkstore.h"

#define JOURNAL_HISTORY_KEEP 50
#define JOURNAL_TEXT_MAX     1024

struct journal {
    uint64_t             term;
    char                 state[16];    /* started, prepared, published, done, aborted, ... */
    char                 kind[16];     /* failover, switchover ("" in old journals) */
    char                 coordinator[ZKSTORE_ROUTER_ID_MAX];
    char                 old_text[SMAP_ENDPOINT_STR_MAX];
    char                 new_text[SMAP_ENDPOINT_STR_MAX];
    struct smap_endpoint new_master;   /* parsed new=; port 0 when absent */
    uint64_t             at_ms;        /* wall clock of the last step */
    uint64_t             started_ms;   /* ... of the first step of this term */
    uint64_t             last_ms;      /* ... of the last completed failover */
    int32_t              version;      /* the node's ZooKeeper version; -1: none */
};

/* Fills <j> from the journal text <text> (NULL: no journal). Unknown words
 * are ignored; j->version is left alone. Pure. */
void journal_parse(const char *text, struct journal *j);

/* Copies the value of word <key> of a key=value line into <out>. Returns
 * <out>, or NULL (with out = "") when absent. Pure. */
const char *journal_word(const char *text, const char *key, char *out, size_t cap);

/* True while the journal says a failover or switchover is under way. */
bool journal_in_progress(const struct journal *j);

/* Reads the journal of <shard> into <j>. Returns 0, or -1 with a malloc'd
 * *<errp>. */
int journal_read(struct zkstore_admin *za, const char *shard, struct journal *j, char **errp);

/*
 * Writes step <state> of <j> for <shard> by <who>, with the extra words
 * <extra> ("old=H:P new=H:P ..."; may be ""), if nobody wrote the node since
 * <j> was read or last written; j->version follows. A final state (done,
 * aborted) also appends to the history (best effort: the journal is what
 * counts).
 * Returns 0, or -1 with a malloc'd *<errp> (someone else took over, or
 * ZooKeeper failed): the caller must stop.
 */
int journal_write(struct zkstore_admin *za, const char *shard, struct journal *j,
                  const char *who, const char *state, const char *extra, char **errp);

/*
 * Whether the runner that last wrote <j> (as read or written through <za>)
 * still owns the failover or switchover of <shard>: <za>'s ephemeral nodes
 * (a coordinator's election candidate, a shardctl's runner mark; see
 * zkstore_admin_held()) belong to its current session, and nobody wrote
 * the journal since <j> was read or written (its node version: a newer term
 * or another runner's step changes it; <j>'s own term may be one ahead,
 * about to be written). Asked before
 * every step that changes a server or the map, so that a runner that was
 * stopped (SIGSTOP, a frozen VM) and replaced meanwhile changes nothing
 * when it wakes up. False with <why> (<cap> bytes) saying why.
 */
bool journal_owned(struct zkstore_admin *za, const char *shard, const struct journal *j,
                   char *why, size_t cap);

#endif
