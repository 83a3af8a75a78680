/*
 * router/sessstate.h - the session state a backend connection carries: the
 * client's collation and its tracked SET statements, in order.
 *
 * A session and every backend connection keep one. Before a statement runs
 * on a connection whose state differs from the session's, the router resets
 * it and replays the session's state (router/session_route.c). A 64-bit hash alone
 * cannot decide "same state": two different states may share it, and the
 * statement would then run under another client's settings. So the state
 * keeps its full text; the hash only makes the common "differs" answer fast.
 * Pure: no I/O; any thread for its own objects.
 */
#ifndef SHARDWIRE_ROUTER_SESSSTATE_H
#define SHARDWIRE_ROUTER_SESSSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sessstate {
    uint64_t sig;     /* hash of <text>; never 0 when known */
    uint8_t *text;    /* collation byte, then each SET and a NUL; NULL: unknown */
    size_t   len;
};
/* always: (text == NULL) == (sig == 0) */

/* Sets <st> to collation <charset> plus the <n> statements <stmts>.
 * Returns 0, or -1 out of memory (then <st> is unknown). */
int sessstate_build(struct sessstate *st, char *const *stmts, unsigned n, uint8_t charset);

/* Makes <dst> a copy of <src>. Returns 0, or -1 out of memory (then <dst>
 * is unknown). */
int sessstate_copy(struct sessstate *dst, const struct sessstate *src);

/* True only when both are known and hold the same text. */
bool sessstate_equal(const struct sessstate *a, const struct sessstate *b);

/* True when <st> is a fresh connection's: collation <charset>, no SET. */
bool sessstate_is_fresh(const struct sessstate *st, uint8_t charset);

/* Marks <st> unknown (it holds state the router cannot see). */
void sessstate_forget(struct sessstate *st);

void sessstate_fini(struct sessstate *st);

/* Bytes <st> holds (for memory budgets). */
static inline size_t sessstate_bytes(const struct sessstate *st)
{
    return st->len;
}

#endif
