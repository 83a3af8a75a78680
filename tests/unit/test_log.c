/*
 * tests/unit/test_log.c - the rate limiter for repeated log lines, and the
 * logging thread: every line reaches the file, a full ring drops and counts
 * lines instead of blocking the caller (a pipe nobody reads plays the stuck
 * disk), and log_reopen() moves to a new file after a rename.
 */
#include "router/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char dir[] = "/tmp/test_log.XXXXXX";

/* Reads <path> whole into a malloc'd string (NULL if missing). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, len = 0, n;

    if (!f)
        return NULL;
    do {
        if (cap - len < 4096) {
            char *b = realloc(buf, cap + 65536);
            if (!b)
                break;
            buf = b;
            cap += 65536;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    if (buf)
        buf[len] = 0;
    return buf;
}

static unsigned count(const char *text, const char *needle)
{
    unsigned n = 0;

    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

#define N_THREADS 4
#define N_LINES   2000

static void *log_many(void *arg)
{
    for (int i = 0; i < N_LINES; i++)
        log_info("test line thread=%d i=%d end", (int)(long)arg, i);
    return NULL;
}

static void test_every_line_reaches_the_file(void)
{
    char path[256];
    char *text = NULL;
    pthread_t t[N_THREADS];

    snprintf(path, sizeof(path), "%s/all.log", dir);
    CHECK_EQ(log_open(path), 0);
    CHECK_EQ(log_start(LOG_BUFFER_DEFAULT), 0);
    for (long i = 0; i < N_THREADS; i++)
        pthread_create(&t[i], NULL, log_many, (void *)i);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    log_stop();
    text = slurp(path);
    CHECK(text != NULL);
    /* whole lines, none lost or torn (nothing was dropped: the ring is big) */
    CHECK_EQ(count(text, " end\n"), N_THREADS * N_LINES);
    CHECK_EQ(count(text, "\n"), N_THREADS * N_LINES);
    CHECK_EQ(log_dropped_total(), 0);
out:
    free(text);
}

struct drain {
    int    fd;
    char  *buf;
    size_t len, cap;
};

/* Reads the pipe until the sentinel line "END\n" arrives. */
static void *drain_pipe(void *arg)
{
    struct drain *d = arg;

    for (;;) {
        if (d->cap - d->len < 65536) {
            char *b = realloc(d->buf, d->cap + (1u << 20));
            if (!b)
                return NULL;
            d->buf = b;
            d->cap += 1u << 20;
        }
        ssize_t n = read(d->fd, d->buf + d->len, d->cap - d->len - 1);
        if (n <= 0)
            return NULL;
        d->len += (size_t)n;
        d->buf[d->len] = 0;
        if (d->len >= 4 && memcmp(d->buf + d->len - 4, "END\n", 4) == 0)
            return NULL;
    }
}

static void test_full_ring_drops_and_counts(void)
{
    int p[2] = { -1, -1 };
    char path[64];
    struct drain d = { -1, NULL, 0, 0 };
    pthread_t reader;
    bool reading = false;
    uint64_t before = log_dropped_total(), dropped;
    unsigned logged = 0, reported = 0;

    CHECK_EQ(pipe(p), 0);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
    CHECK_EQ(log_open(path), 0);
    CHECK_EQ(log_start(4096), 0);
    /* Nobody reads the pipe: the logging thread blocks once it is full,
     * the ring fills, and further lines are dropped; the caller never
     * blocks (alarm() in main() kills a hang). */
    while (log_dropped_total() - before < 100 && logged < 1000000) {
        log_warn("filler line %u end", logged);
        logged++;
    }
    dropped = log_dropped_total() - before;
    CHECK(dropped >= 100);
    d.fd = p[0];
    CHECK_EQ(pthread_create(&reader, NULL, drain_pipe, &d), 0);
    reading = true;
    log_stop();                      /* drains the ring, then reports */
    CHECK_EQ(write(p[1], "END\n", 4), 4);
    pthread_join(reader, NULL);
    reading = false;
    CHECK(d.buf != NULL);
    /* every line either arrived or was counted in a "suppressed" report */
    for (const char *s = d.buf; (s = strstr(s, "log: suppressed ")) != NULL; s++)
        reported += (unsigned)strtoul(s + strlen("log: suppressed "), NULL, 10);
    CHECK_EQ(reported, dropped);
    CHECK_EQ(count(d.buf, " end\n") + dropped, logged);
out:
    if (reading) {
        log_stop();
        if (write(p[1], "END\n", 4) < 0) {
            /* the reader then ends at EOF below */
        }
        close(p[1]);
        p[1] = -1;
        pthread_join(reader, NULL);
    }
    free(d.buf);
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
}

static void test_reopen_after_rename(void)
{
    char path[256], old[256];
    char *a = NULL, *b = NULL;

    snprintf(path, sizeof(path), "%s/r.log", dir);
    snprintf(old, sizeof(old), "%s/r.log.1", dir);
    CHECK_EQ(log_open(path), 0);
    CHECK_EQ(log_start(LOG_BUFFER_DEFAULT), 0);
    log_info("before rotation");
    CHECK_EQ(rename(path, old), 0);
    log_info("still before the reopen request");
    log_reopen();
    log_info("after rotation");
    log_stop();
    a = slurp(old);
    b = slurp(path);
    CHECK(a != NULL && b != NULL);
    CHECK(strstr(a, "before rotation") && strstr(a, "still before the reopen request"));
    CHECK(strstr(a, "after rotation") == NULL);
    CHECK(strstr(b, "log: reopened ") != NULL);
    CHECK(strstr(b, "after rotation") != NULL);
    CHECK(strstr(b, "before") == NULL);
out:
    free(a);
    free(b);
    unlink(path);
    unlink(old);
}

static void test_limit(void)
{
    struct log_limit l = { 0, 0 };
    unsigned sup = 99;

    CHECK(log_limit_pass(&l, 1000, 5000, &sup));
    CHECK_EQ(sup, 0);
    CHECK(!log_limit_pass(&l, 1001, 5000, &sup));
    CHECK(!log_limit_pass(&l, 5999, 5000, &sup));
    CHECK(log_limit_pass(&l, 6000, 5000, &sup));
    CHECK_EQ(sup, 2);
    CHECK(!log_limit_pass(&l, 6001, 5000, &sup));
    CHECK(log_limit_pass(&l, 20000, 5000, &sup));
    CHECK_EQ(sup, 1);
out:;
}

static void test_levels(void)
{
    enum log_level lv;

    CHECK_EQ(log_parse_level("debug", &lv), 0);
    CHECK_EQ(lv, LOG_DEBUG);
    CHECK_EQ(log_parse_level("WARN", &lv), 0);
    CHECK_EQ(lv, LOG_WARN);
    CHECK_EQ(log_parse_level("loud", &lv), -1);
out:;
}

int main(void)
{
    char path[300];

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    alarm(60);   /* a logging call that blocks would hang here */
    RUN(test_limit);
    RUN(test_levels);
    RUN(test_every_line_reaches_the_file);
    RUN(test_full_ring_drops_and_counts);
    RUN(test_reopen_after_rename);
    log_open(NULL);
    snprintf(path, sizeof(path), "%s/all.log", dir);
    unlink(path);
    rmdir(dir);
    return check_exit();
}
