/*
 * router/log.h - leveled, one-line-per-event logging to stderr or a file.
 *
 * Thread-safe. The macros test the level before evaluating their arguments,
 * so debug logging on the hot path costs one branch when it is off.
 */
#ifndef SHARDWIRE_ROUTER_LOG_H
#define SHARDWIRE_ROUTER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

/* Opens <path> for appending (NULL: stderr). Returns 0, or -1 with errno. */
int log_open(const char *path);
void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug". Returns 0 or -1. */
int log_parse_level(const char *name, enum log_level *out);

void log_write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vwrite(enum log_level level, const char *fmt, va_list ap);

/*
 * Rate limit for repeated events (a backend that stays down): one line per
 * <interval_ms>, telling how many were suppressed since. Not thread-safe:
 * one limiter per thread (per pool, per worker).
 */
struct log_limit {
    uint64_t next_ms;
    unsigned suppressed;
};

/* True if an event at <now_ms> may be logged; then <*suppressed> is how many
 * were dropped since the last one logged. */
bool log_limit_pass(struct log_limit *l, uint64_t now_ms, unsigned interval_ms,
                    unsigned *suppressed);

#define log_at(lvl, ...) \
    do { if ((lvl) <= log_threshold) log_write((lvl), __VA_ARGS__); } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
