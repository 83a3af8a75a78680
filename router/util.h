/*
 * router/util.h - small helpers shared by the daemon's files.
 */
#ifndef SHARDWIRE_ROUTER_UTIL_H
#define SHARDWIRE_ROUTER_UTIL_H

#include <stdarg.h>
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

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
