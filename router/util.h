/*
 * router/util.h - small helpers shared by the daemon's files.
 */
#ifndef SHARDWIRE_ROUTER_UTIL_H
#define SHARDWIRE_ROUTER_UTIL_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock. */
static inline uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
