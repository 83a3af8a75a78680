/*
 * shardmap/mapcache.c - atomic, durable map files.
 *
 * The thin I/O shell around mapcodec: this file only moves bytes between
 * disk and memory; what a valid map is stays mapcodec's and smap's business.
 */
#include "shardmap/mapcache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardmap/errmsg.h"
#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"

struct smap *mapcache_load(const char *path, char **errp)
{
    struct smap *m = NULL;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errmsg_set(errp, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        errmsg_set(errp, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        errmsg_set(errp, "%s: not a regular file", path);
        goto out;
    }
    if ((unsigned long long)st.st_size > MAPCACHE_MAX_BYTES) {
        errmsg_set(errp, "%s: larger than %u bytes", path, MAPCACHE_MAX_BYTES);
        goto out;
    }
    /* Read until EOF rather than trusting st_size: the file may be replaced
     * (renamed over) but never shrinks under an open descriptor. */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    buf = malloc(cap);
    if (buf == NULL) {
        errmsg_set(errp, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > MAPCACHE_MAX_BYTES) {
                errmsg_set(errp, "%s: larger than %u bytes", path, MAPCACHE_MAX_BYTES);
                goto out;
            }
            char *n = realloc(buf, cap * 2);
            if (n == NULL) {
                errmsg_set(errp, "%s: out of memory", path);
                goto out;
            }
            buf = n;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            errmsg_set(errp, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    m = mapcodec_parse(buf, len, errp);
    if (m == NULL)
        errmsg_prefix(errp, "%s", path);
out:
    free(buf);
    close(fd);
    return m;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsyncs the directory holding <path>, so the rename itself is durable. */
static int sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof(dir)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int mapcache_store(const char *path, const struct smap *m, char **errp)
{
    char *text = mapcodec_format(m);
    char *tmp = NULL;
    int fd = -1;
    if (text == NULL) {
        errmsg_set(errp, "%s: out of memory", path);
        return -1;
    }
    /* Same directory as the target (rename is atomic only within one file
     * system); pid in the name so two processes sharing a cache path never
     * write into one temporary file. */
    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
        tmp = NULL;
        errmsg_set(errp, "%s: out of memory", path);
        goto fail;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        errmsg_set(errp, "%s: create: %s", tmp, strerror(errno));
        goto fail;
    }
    if (write_all(fd, text, strlen(text)) < 0) {
        errmsg_set(errp, "%s: write: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    if (fsync(fd) < 0) {
        errmsg_set(errp, "%s: fsync: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    if (close(fd) < 0) {
        fd = -1;
        errmsg_set(errp, "%s: close: %s", tmp, strerror(errno));
        goto fail_unlink;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        errmsg_set(errp, "%s: rename: %s", path, strerror(errno));
        goto fail_unlink;
    }
    if (sync_dir_of(path) < 0) {
        /* The new file is in place; only its durability across a power cut
         * is in doubt. Report it: the caller decides whether that matters. */
        errmsg_set(errp, "%s: fsync directory: %s", path, strerror(errno));
        free(tmp);
        free(text);
        return -1;
    }
    free(tmp);
    free(text);
    return 0;
fail_unlink:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
fail:
    free(tmp);
    free(text);
    return -1;
}
