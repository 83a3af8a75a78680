/*
 * shardmap/zkauth.c - ZooKeeper digest credentials (see zkauth.h).
 */
#include "shardmap/zkauth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardmap/errmsg.h"

#define SCHEME "digest:"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int zkauth_parse(const char *text, struct zkauth *out, char **errp)
{
    memset(out, 0, sizeof(*out));
    while (is_space(*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && is_space(text[len - 1]))
        len--;
    if (len < sizeof(SCHEME) - 1 || memcmp(text, SCHEME, sizeof(SCHEME) - 1) != 0) {
        errmsg_set(errp, "credential must read digest:USER:PASSWORD (only the digest "
                   "scheme is supported)");
        return -1;
    }
    const char *user = text + sizeof(SCHEME) - 1;
    const char *end = text + len;
    const char *colon = memchr(user, ':', (size_t)(end - user));
    if (colon == NULL || colon == user || colon + 1 == end) {
        errmsg_set(errp, "credential must read digest:USER:PASSWORD (user and password "
                   "not empty)");
        return -1;
    }
    size_t ulen = (size_t)(colon - user), plen = (size_t)(end - colon - 1);
    if (ulen >= sizeof(out->user) || plen >= sizeof(out->password)) {
        errmsg_set(errp, "credential: user longer than %d or password longer than %d bytes",
                   ZKAUTH_USER_MAX - 1, ZKAUTH_PASSWORD_MAX - 1);
        return -1;
    }
    for (const char *p = user; p < end; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            errmsg_set(errp, "credential: control character in the %s",
                       p < colon ? "user" : "password");
            return -1;
        }
    }
    memcpy(out->user, user, ulen);
    memcpy(out->password, colon + 1, plen);
    return 0;
}

int zkauth_load_file(const char *path, struct zkauth *out, char **errp)
{
    char buf[ZKAUTH_FILE_MAX + 1];
    struct stat st;
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errmsg_set(errp, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        errmsg_set(errp, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        errmsg_set(errp, "%s: readable or writable by others (mode %03o); chmod o-rw it",
                   path, (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errmsg_set(errp, "%s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof(buf)) {
            errmsg_set(errp, "%s: longer than %d bytes", path, ZKAUTH_FILE_MAX);
            close(fd);
            OPENSSL_cleanse(buf, sizeof(buf));
            return -1;
        }
    }
    close(fd);
    buf[len] = '\0';
    int rc = -1;
    bool found = false;
    for (char *line = buf, *next; line != NULL; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        char *p = line;
        while (is_space(*p))
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        found = true;
        rc = zkauth_parse(p, out, errp);
        if (rc < 0)
            errmsg_prefix(errp, "%s", path);
        break;
    }
    if (!found)
        errmsg_set(errp, "%s: no credential line (digest:USER:PASSWORD)", path);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

void zkauth_cred(const struct zkauth *a, char *out, unsigned cap)
{
    snprintf(out, cap, "%s:%s", a->user, a->password);
}

void zkauth_digest_id(const struct zkauth *a, char out[ZKAUTH_ID_MAX])
{
    char cred[ZKAUTH_USER_MAX + ZKAUTH_PASSWORD_MAX];
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    zkauth_cred(a, cred, sizeof(cred));
    SHA1((const unsigned char *)cred, strlen(cred), md);
    OPENSSL_cleanse(cred, sizeof(cred));
    EVP_EncodeBlock(b64, md, SHA_DIGEST_LENGTH);
    snprintf(out, ZKAUTH_ID_MAX, "%s:%s", a->user, (const char *)b64);
}

bool zkauth_same(const struct zkauth *a, const struct zkauth *b)
{
    return strcmp(a->user, b->user) == 0 && strcmp(a->password, b->password) == 0;
}

void zkauth_clear(struct zkauth *a)
{
    if (a != NULL)
        OPENSSL_cleanse(a, sizeof(*a));
}
