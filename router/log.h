/*
 * router/log.h - leveled, one-line-per-event logging to stderr or a file.
 *
 * Thread-safe. The macros test the level before evaluating their arguments,
 * so debug logging on the hot path costs one branch when it is off. Once
 * log_start() has run, logging never blocks on I/O: lines go to a ring
 * that a logging thread drains; when the ring is full, lines are dropped
 * and counted ("log: suppressed N lines"). docs/operations.md "Logs".
 */
#ifndef SHARDWIRE_ROUTER_LOG_H
#define SHARDWIRE_ROUTER_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

#define LOG_BUFFER_DEFAULT (1u << 20)   /* bytes of the ring: ~8000 typical lines */

/* Opens <path> for appending (NULL: stderr) and remembers it for
 * log_reopen(). Call before log_start(). Returns 0, or -1 with errno. */
int log_open(const char *path);

/*
 * Starts the logging thread with a ring of <buffer_bytes> (at least 2048).
 * Lines logged before are written at once. An atexit handler drains the
 * ring at exit. Returns 0, or -1 with errno. Main thread.
 */
int log_start(size_t buffer_bytes);

/* Drains the ring and stops the logging thread; later lines are written
 * synchronously again. Idempotent. Never from a logging call. */
void log_stop(void);

/* Asks the logging thread to reopen the file by its name (after a rotation
 * renamed it); lines queued before go to the old file. Without a file
 * (stderr) it does nothing. Any thread; not from a signal handler. */
void log_reopen(void);

/* Lines dropped because the ring was full, since the process started. */
uint64_t log_dropped_total(void);
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
