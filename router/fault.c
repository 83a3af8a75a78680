/*
 * router/fault.c - fault injection points (see fault.h). Parses
 * SHARDWIRE_FAULT once; never allocates afterwards.
 */
#include "router/fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/log.h"

#define FAULT_MAX_POINTS 16

struct fault_point {
    char             name[32];
    uint64_t         nth;       /* fail call number <nth> (1-based) */
    bool             onwards;   /* ... and every later call */
    _Atomic uint64_t calls;
};

static struct fault_point points[FAULT_MAX_POINTS];
static unsigned n_points;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void parse_spec(const char *v)
{
    while (v && *v && n_points < FAULT_MAX_POINTS) {
        const char *end = strchr(v, ','), *at;
        size_t len = end ? (size_t)(end - v) : strlen(v);
        struct fault_point *p = &points[n_points];

        at = memchr(v, '@', len);
        if (at && (size_t)(at - v) < sizeof(p->name)) {
            char *e;

            memcpy(p->name, v, (size_t)(at - v));
            p->name[at - v] = 0;
            p->nth = strtoull(at + 1, &e, 10);
            p->onwards = *e == '+';
            if (p->nth > 0)
                n_points++;
        }
        v = end ? end + 1 : NULL;
    }
}

static void parse(void)
{
    parse_spec(getenv("SHARDWIRE_FAULT"));
}

void fault_set(const char *spec)
{
    pthread_once(&once, parse);
    memset(points, 0, sizeof(points));
    n_points = 0;
    parse_spec(spec);
}

bool fault_fail(const char *point)
{
    bool fail = false;

    pthread_once(&once, parse);
    /* Each entry counts the calls of its point on its own, so
     * "pullup@1,pullup@3" fails the first and the third. */
    for (unsigned i = 0; i < n_points; i++) {
        struct fault_point *p = &points[i];
        uint64_t k;

        if (strcmp(p->name, point) != 0)
            continue;
        k = atomic_fetch_add(&p->calls, 1) + 1;
        if (k == p->nth || (p->onwards && k > p->nth))
            fail = true;
    }
    if (fail)
        log_info("fault: fail point=%s", point);
    return fail;
}

void fault_delay(const char *point, unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

    if (!fault_fail(point))
        return;
    log_info("fault: delay point=%s ms=%u", point, ms);
    while (nanosleep(&ts, &ts) < 0)
        ;
}
