/*
 * shardmap/zkstore_int.h - what the three parts of zkstore share (private to
 * shardmap/zkstore_*.c; never included elsewhere).
 *
 *   zkstore_read.c   reading nodes and one consistent map, node paths, error
 *                    mapping, creating parents, the registration ACL text,
 *                    the library log hook;
 *   zkstore_watch.c  the router side: a thread that keeps a watch, survives
 *                    connection loss and session expiry, registers;
 *   zkstore_admin.c  the admin side: synchronous connect, load, init and the
 *                    compare-and-set write (shardctl).
 *
 * Prefix zkr_ for these shared internals. Nothing here logs.
 */
#ifndef SHARDWIRE_SHARDMAP_ZKSTORE_INT_H
#define SHARDWIRE_SHARDMAP_ZKSTORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <zookeeper.h>

#include "shardmap/zkstore.h"

struct smap;

#define ZKR_ROOT_MAX     512   /* bytes of a root path, NUL included */
#define ZKR_REG_ACL_MAX  8     /* entries in the registration ACL text */

/* CLOCK_MONOTONIC milliseconds. */
uint64_t zkr_now_ms(void);

/* Absolute CLOCK_REALTIME deadline <ms> from now, for pthread_cond_timedwait. */
struct timespec zkr_deadline_in(uint64_t ms);

/* True for the ZOO codes that mean "connection trouble", not an answer. */
bool zkr_is_connection(int zrc);

/* Returns malloc'd "<root>/<a>/<b>" (<a>, <b> may be NULL), or NULL. */
char *zkr_path(const char *root, const char *a, const char *b);

/*
 * Reads node <path> whole into a malloc'd NUL-terminated *<data>
 * (*<len> bytes), with a data watch when <w> is not NULL. Returns a ZOO
 * code (ZOK, ZNONODE, ZCONNECTIONLOSS, ...).
 */
int zkr_get_node(zhandle_t *zh, const char *path, watcher_fn w, void *wctx, char **data,
                 int *len, struct Stat *st);

/* Maps the ZOO code <zrc> of a failed call on <what> to our result, with a
 * malloc'd *<errp>. */
enum zkstore_rc zkr_fail(int zrc, const char *what, char **errp);

/*
 * Reads one consistent map under <root> (docs/zookeeper.md "Reading one
 * consistent map"), arming the data watch <w> on the version node when not
 * NULL (and an exists-watch when there is no cluster yet). On ZKSTORE_OK
 * *<out> is a new snapshot and *<cas> (may be NULL) the version node's
 * ZooKeeper version.
 */
enum zkstore_rc zkr_read_map(zhandle_t *zh, const char *root, watcher_fn w, void *wctx,
                             struct smap **out, int32_t *cas, char **errp);

/* Creates <path> and any missing parents as empty persistent nodes with the
 * ACL <acl>; existing nodes are left as they are. Returns a ZOO code. */
int zkr_create_parents(zhandle_t *zh, const char *path, struct ACL_vector *acl);

/*
 * The registration ACL travels as the text of <root>/routers, one
 * "acl SCHEME:ID PERMS" line per entry (docs/zookeeper.md "Access
 * control"). zkr_reg_acl_format() appends the line of <a> to <buf> (<cap>
 * bytes, NUL-terminated). zkr_reg_acl_parse() parses <text> in place into
 * <out> (<ids> point into <text>); returns the number of entries, 0 for
 * none, -1 for a malformed line.
 */
void zkr_reg_acl_format(const struct ACL *a, char *buf, size_t cap);
int zkr_reg_acl_parse(char *text, struct ACL out[ZKR_REG_ACL_MAX], char *ids[ZKR_REG_ACL_MAX]);

/* The log callback to give zookeeper_init2(): ours when zkstore_library_log()
 * set a function, else NULL (the library's default). */
log_callback_fn zkr_lib_log_cb(void);

#endif
