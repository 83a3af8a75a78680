/*
 * shardmap/zkauth.h - ZooKeeper credentials and ACL identities (the
 * "digest" scheme; docs/zookeeper.md "Access control").
 *
 * A credential is written "digest:USER:PASSWORD" (as zkCli's addauth takes
 * it, with the scheme first). ZooKeeper names the identity it proves by
 * "USER:BASE64(SHA1(USER:PASSWORD))", the id an ACL entry grants rights to;
 * zkauth_digest_id() computes it so shardctl can grant a router's identity
 * without ZooKeeper's help. Cold path; nothing here logs; a password is never
 * part of an error message.
 */
#ifndef SHARDWIRE_SHARDMAP_ZKAUTH_H
#define SHARDWIRE_SHARDMAP_ZKAUTH_H

#include <stdbool.h>

#define ZKAUTH_USER_MAX      128   /* bytes, NUL included */
#define ZKAUTH_PASSWORD_MAX  256
#define ZKAUTH_ID_MAX        (ZKAUTH_USER_MAX + 32)   /* "USER:" + 28 base64 chars */
#define ZKAUTH_FILE_MAX      4096  /* a credential file is at most this long */

struct zkauth {
    char user[ZKAUTH_USER_MAX];          /* 1.. bytes, no ':' and no control bytes */
    char password[ZKAUTH_PASSWORD_MAX];  /* 1.. bytes, no control bytes; ':' allowed */
};

/*
 * Parses "digest:USER:PASSWORD" (surrounding whitespace ignored) into
 * *<out>. Returns 0, or -1 with a malloc'd *<errp> that never repeats the
 * password.
 */
int zkauth_parse(const char *text, struct zkauth *out, char **errp);

/*
 * Reads a credential file: its first line that is not empty or a '#'
 * comment, parsed as zkauth_parse() does. A file that others may read or
 * write (mode & 006) is refused, as ssh refuses such key files. Returns 0,
 * or -1 with a malloc'd *<errp> naming <path>.
 */
int zkauth_load_file(const char *path, struct zkauth *out, char **errp);

/* Writes the ACL id of <a>, "USER:BASE64(SHA1(USER:PASSWORD))", to <out>. */
void zkauth_digest_id(const struct zkauth *a, char out[ZKAUTH_ID_MAX]);

/* Writes "USER:PASSWORD", what zoo_add_auth("digest", ...) takes, to <out>
 * (at least ZKAUTH_USER_MAX + ZKAUTH_PASSWORD_MAX bytes). */
void zkauth_cred(const struct zkauth *a, char *out, unsigned cap);

/* True when <a> and <b> are the same identity (same user and password). */
bool zkauth_same(const struct zkauth *a, const struct zkauth *b);

/* Overwrites the password so it does not linger in memory. NULL: nothing. */
void zkauth_clear(struct zkauth *a);

#endif
