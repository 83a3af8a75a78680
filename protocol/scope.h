/*
 * protocol/scope.h - tenant-scoped statements: one statement limited to the
 * user a session declared, by rewriting it.
 *
 * An app that declared its user (SET @shardwire_user = K, docs/orms.md) may
 * send `UPDATE notes SET title = 'x' WHERE id = 7`. scope_apply() adds
 * `notes`.`userid` = K for every table reference (its block's WHERE, or the
 * ON of the outer join that NULL-extends it), then analyses the result
 * again with the ordinary rules: the statement sent is one the analyzer
 * proves confined to K, so the rewrite needs no proof of its own. A
 * statement that names another user, or that cannot be rewritten with
 * certainty, is refused.
 *
 * Pure: text in, text and decision out; no sockets, threads, clock, globals
 * or logging. The output buffer belongs to the caller and is reused.
 */
#ifndef SHARDWIRE_PROTOCOL_SCOPE_H
#define SHARDWIRE_PROTOCOL_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol/analyze.h"

/* A growable byte buffer owned by the caller; {0} is empty. It also keeps
 * scope_apply()'s scratch, so a reused buffer makes it allocate nothing. */
struct scope_buf {
    char  *p;
    size_t len, cap;
    void  *scratch;
};

void scope_buf_fini(struct scope_buf *b);

enum scope_verdict {
    SCOPE_ASIS,       /* send the statement as it is; <res> is its decision (ROUTE to
                         the user, with <scope_params> when prepared; SESSION;
                         LOCAL) */
    SCOPE_REWRITTEN,  /* send <buf> instead; <res> is its decision (ROUTE to the user) */
    SCOPE_REJECT,     /* <res> is a REJECT */
};

/*
 * Decides statement <sql>/<len> on a session scoped to the user <key>/<len>
 * (canonical, as analyze_canon_key() gives it), with the analyzer <a>
 * (whose configuration must have one key column). <prepared>: the statement
 * is being prepared (COM_STMT_PREPARE); a '?' where the key goes is read as
 * <key>, and a ROUTE lists those '?'s in <res->scope_params>, which the
 * caller must check bind <key> at every EXECUTE. Fills <res>; on
 * SCOPE_REWRITTEN <buf> holds the rewritten statement (its '?'s are the
 * client's, in the same order: the rewrite adds literals only). Returns the
 * verdict, or -1 when memory ran out (then <res> is a REJECT).
 */
int scope_apply(struct analyze *a, const char *sql, size_t len, const char *key, size_t key_len,
                bool prepared, struct scope_buf *buf, struct analyze_result *res);

/*
 * Reads a leading scope comment `/ * shardwire:user=VALUE * /` (no spaces
 * between slash and star; whitespace before the comment and around the
 * text inside it allowed; VALUE bare or single-quoted, no escapes) of
 * <sql>/<len>. Returns the canonical key's length with the key in <key>,
 * 0 when the statement has no such comment, or -1 when it has a malformed
 * one (a wrong key: the statement must be refused).
 */
int scope_comment(const char *sql, size_t len, enum analyze_key_type type,
                  char key[ANALYZE_KEY_MAX]);

#endif
