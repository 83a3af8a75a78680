/*
 * router/log.c - logging that never blocks the thread that logs.
 *
 * Until log_start() (and after log_stop()) a line is one write(2) on the
 * caller's thread, so start-up errors appear at once. While started, a line
 * is formatted on the caller's thread and copied into one locked ring of
 * bytes; a logging thread drains the ring to the file. The lock covers a
 * memcpy only, never I/O: a slow or full disk makes the ring fill up, and
 * lines that do not fit are dropped and counted, then reported as one
 * "log: suppressed N lines" line once there is room. log_reopen() (SIGUSR1)
 * makes the logging thread reopen the file by name, for log rotation.
 */
#include "router/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES   2048
#define DRAIN_CHUNK      (64u << 10)   /* bytes the logging thread takes at once */

enum log_level log_threshold = LOG_INFO;
static int log_fd = STDERR_FILENO;
static char *log_path;                 /* NULL: stderr, nothing to reopen */

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* The ring and the logging thread. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t  cond;              /* the logging thread waits here */
    /* under mu; always: len <= cap, head < cap (when cap > 0) */
    char           *ring;
    size_t          cap, head, len;
    char           *out;               /* DRAIN_CHUNK bytes: the thread's own */
    uint64_t        dropped;           /* lines lost since the last report */
    bool            running, stop, reopen;
    size_t          reopen_len;        /* bytes queued before the reopen request */
    pthread_t       thread;
} q = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static _Atomic uint64_t dropped_total;

static int open_path(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int log_open(const char *path)
{
    int fd;

    if (!path || !*path)
        return 0;
    fd = open_path(path);
    if (fd < 0)
        return -1;
    free(log_path);
    log_path = strdup(path);
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

int log_parse_level(const char *name, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Formats one line, newline included, into <line>; returns its length. */
static size_t format_line(char line[LINE_MAX_BYTES], enum log_level level, const char *fmt,
                          va_list ap)
{
    struct timeval tv;
    struct tm tm;
    size_t n;
    int k;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, LINE_MAX_BYTES, "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, LINE_MAX_BYTES - n, ".%03ldZ %-5s ", (long)(tv.tv_usec / 1000),
                 level_names[level]);
    n += (size_t)k;
    k = vsnprintf(line + n, LINE_MAX_BYTES - n - 1, fmt, ap);
    if (k < 0)
        k = 0;
    n += (size_t)k < LINE_MAX_BYTES - n - 1 ? (size_t)k : LINE_MAX_BYTES - n - 2;
    line[n++] = '\n';
    return n;
}

static size_t format_linef(char line[LINE_MAX_BYTES], enum log_level level, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));

static size_t format_linef(char line[LINE_MAX_BYTES], enum log_level level, const char *fmt,
                           ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    n = format_line(line, level, fmt, ap);
    va_end(ap);
    return n;
}

static void write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, buf, n);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;            /* nowhere left to report it */
        buf += k;
        n -= (size_t)k;
    }
}

void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
    char line[LINE_MAX_BYTES];
    int saved = errno;
    size_t n = format_line(line, level, fmt, ap);

    pthread_mutex_lock(&q.mu);
    if (!q.running || q.stop) {
        /* Before start, or while stopping (so that draining ends even if
         * threads keep logging): one write(2) per line, so lines from
         * different threads never interleave. */
        pthread_mutex_unlock(&q.mu);
        write_all(log_fd, line, n);
        errno = saved;
        return;
    }
    if (q.cap - q.len < n) {
        q.dropped++;
        atomic_fetch_add_explicit(&dropped_total, 1, memory_order_relaxed);
    } else {
        size_t tail = (q.head + q.len) % q.cap;
        size_t first = q.cap - tail < n ? q.cap - tail : n;

        memcpy(q.ring + tail, line, first);
        memcpy(q.ring, line + first, n - first);
        q.len += n;
        if (q.len == n)
            pthread_cond_signal(&q.cond);
    }
    pthread_mutex_unlock(&q.mu);
    errno = saved;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

/* The logging thread's reopen: the new file replaces the old one only when
 * it opens; the outcome is logged in the file that is kept. */
static void reopen_file(void)
{
    char line[LINE_MAX_BYTES];
    size_t n;
    int fd;

    if (log_path == NULL)
        return;
    fd = open_path(log_path);
    if (fd < 0) {
        n = format_linef(line, LOG_ERROR, "log: cannot reopen %s: %s; still writing to the "
                         "old file", log_path, strerror(errno));
    } else {
        close(log_fd);
        log_fd = fd;
        n = format_linef(line, LOG_INFO, "log: reopened %s", log_path);
    }
    write_all(log_fd, line, n);
}

static void *log_thread(void *arg)
{
    char *out = q.out;

    (void)arg;
    pthread_mutex_lock(&q.mu);
    for (;;) {
        while (q.len == 0 && q.dropped == 0 && !q.reopen && !q.stop)
            pthread_cond_wait(&q.cond, &q.mu);
        size_t n = q.len < DRAIN_CHUNK ? q.len : DRAIN_CHUNK;
        bool reopen = false;

        /* lines queued before a reopen request go to the old file */
        if (q.reopen && n > q.reopen_len)
            n = q.reopen_len;
        size_t first = q.cap - q.head < n ? q.cap - q.head : n;

        memcpy(out, q.ring + q.head, first);
        memcpy(out + first, q.ring, n - first);
        q.head = (q.head + n) % q.cap;
        q.len -= n;
        if (q.reopen) {
            q.reopen_len -= n;
            reopen = q.reopen_len == 0;
            q.reopen = !reopen;
        }
        uint64_t dropped = q.dropped;
        bool stop = q.stop && q.len == 0;

        q.dropped = 0;
        pthread_mutex_unlock(&q.mu);

        write_all(log_fd, out, n);
        if (dropped > 0) {
            char line[LINE_MAX_BYTES];
            size_t k = format_linef(line, LOG_WARN, "log: suppressed %llu lines (log buffer "
                                    "full: the log file is too slow)",
                                    (unsigned long long)dropped);

            write_all(log_fd, line, k);
        }
        if (reopen)
            reopen_file();
        pthread_mutex_lock(&q.mu);
        if (stop && q.len == 0 && q.dropped == 0)
            break;
    }
    pthread_mutex_unlock(&q.mu);
    return NULL;
}

static void log_stop_at_exit(void)
{
    log_stop();
}

int log_start(size_t buffer_bytes)
{
    static bool registered;
    char *ring, *out;
    int err;

    if (buffer_bytes < LINE_MAX_BYTES) {
        errno = EINVAL;
        return -1;
    }
    ring = malloc(buffer_bytes);
    out = malloc(DRAIN_CHUNK);
    if (ring == NULL || out == NULL) {
        free(ring);
        free(out);
        errno = ENOMEM;
        return -1;
    }
    pthread_mutex_lock(&q.mu);
    if (q.running) {
        pthread_mutex_unlock(&q.mu);
        free(ring);
        free(out);
        return 0;
    }
    q.ring = ring;
    q.out = out;
    q.cap = buffer_bytes;
    q.head = q.len = 0;
    q.dropped = 0;
    q.stop = q.reopen = false;
    err = pthread_create(&q.thread, NULL, log_thread, NULL);
    if (err == 0)
        q.running = true;
    else
        q.ring = q.out = NULL;
    pthread_mutex_unlock(&q.mu);
    if (err != 0) {
        free(ring);
        free(out);
        errno = err;
        return -1;
    }
    /* Whatever way the process ends normally, the ring reaches the file. */
    if (!registered && atexit(log_stop_at_exit) == 0)
        registered = true;
    return 0;
}

void log_stop(void)
{
    pthread_mutex_lock(&q.mu);
    if (!q.running || q.stop) {
        pthread_mutex_unlock(&q.mu);
        return;
    }
    q.stop = true;
    pthread_cond_signal(&q.cond);
    pthread_mutex_unlock(&q.mu);
    pthread_join(q.thread, NULL);
    pthread_mutex_lock(&q.mu);
    q.running = false;
    q.stop = false;
    free(q.ring);
    free(q.out);
    q.ring = q.out = NULL;
    q.cap = q.head = q.len = 0;
    pthread_mutex_unlock(&q.mu);
}

void log_reopen(void)
{
    pthread_mutex_lock(&q.mu);
    if (q.running) {
        q.reopen = true;
        q.reopen_len = q.len;
        pthread_cond_signal(&q.cond);
        pthread_mutex_unlock(&q.mu);
        return;
    }
    pthread_mutex_unlock(&q.mu);
    reopen_file();
}

uint64_t log_dropped_total(void)
{
    return atomic_load_explicit(&dropped_total, memory_order_relaxed);
}

bool log_limit_pass(struct log_limit *l, uint64_t now_ms, unsigned interval_ms,
                    unsigned *suppressed)
{
    if (now_ms < l->next_ms) {
        l->suppressed++;
        return false;
    }
    *suppressed = l->suppressed;
    l->suppressed = 0;
    l->next_ms = now_ms + interval_ms;
    return true;
}
