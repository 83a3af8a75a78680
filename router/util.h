/*
 * router/util.h - small helpers shared by the daemon's files.
 */
#ifndef SHARDWIRE_ROUTER_UTIL_H
#define SHARDWIRE_ROUTER_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Milliseconds on the monotonic clock. */
static inline uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A malloc'd printf-formatted string (cold-path error messages), or NULL
 * when out of memory. */
static inline char *util_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline char *util_fmt(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/*
 * Copies <src>/<len> into <dst> (<cap> > 0 bytes, always NUL-terminated, cut
 * to fit) writing bytes outside printable ASCII, '\\', '"' and '=' as \xNN,
 * so that text a client chose (a user name, a key) can neither break a log
 * line nor forge a key=value pair in it. Returns <dst>.
 */
static inline char *util_escape(char *dst, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t at = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        bool plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '"' && c != '=';

        if (at + (plain ? 1 : 4) >= cap)
            break;
        if (plain) {
            dst[at++] = (char)c;
        } else {
            dst[at++] = '\\';
            dst[at++] = 'x';
            dst[at++] = hex[c >> 4];
            dst[at++] = hex[c & 15];
        }
    }
    dst[at] = 0;
    return dst;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
