/*
 * tests/unit/core/harness.c - see harness.h. Everything the harness itself
 * allocates is excluded from the allocation-fault count (PAUSE/RESUME).
 */
#include "tests/unit/core/harness.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocol/handshake.h"
#include "protocol/packet.h"
#include "protocol/reply.h"
#include "protocol/wire.h"
#include "router/config.h"
#include "router/log.h"
#include "router/mapwatch.h"
#include "router/pool.h"
#include "router/session.h"
#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#define HARNESS_LSAN 1
#endif

/* ---- allocation faults ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static struct {
    bool                    armed;
    unsigned                paused;
    enum harness_alloc_kind kind;
    uint64_t                nth, count;
    bool                    fired;
} af;

#define PAUSE()  (af.paused++)
#define RESUME() (af.paused--)

/* True when this allocation of <k> must fail. */
static bool alloc_fails(enum harness_alloc_kind k)
{
    if (!af.armed || af.paused || (af.kind != HARNESS_ALLOC_ANY && af.kind != k))
        return false;
    af.count++;
    if (af.nth && af.count == af.nth) {
        af.fired = true;
#ifdef HARNESS_LSAN
        /* HARNESS_ALLOC_TRACE=1: where the failed allocation was made. */
        if (getenv("HARNESS_ALLOC_TRACE"))
            __sanitizer_print_stack_trace();
#endif
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t n)
{
    return alloc_fails(HARNESS_ALLOC_LIBC) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return alloc_fails(HARNESS_ALLOC_LIBC) ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails(HARNESS_ALLOC_LIBC) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return alloc_fails(HARNESS_ALLOC_LIBC) ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return alloc_fails(HARNESS_ALLOC_LIBC) ? NULL : __real_strndup(s, n);
}

/*
 * Allocations libevent 2.1 makes without checking them (upstream bugs no
 * caller can handle) are neither counted nor failed: an evbuffer_add_cb()
 * inside bufferevent_setwatermark() (its NULL result is dereferenced: a
 * crash) and inside bufferevent_socket_new() (the bufferevent is returned
 * without the callback that schedules its writes: whatever is written
 * after the first flush is never sent).
 */
static const struct {
    const char *inner, *outer;
} ev_unchecked[] = {
    { "evbuffer_add_cb", "bufferevent_setwatermark" },
    { "evbuffer_add_cb", "bufferevent_socket_new" },
};

static bool frame_is(void *const *frames, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        Dl_info di;

        if (dladdr(frames[i], &di) && di.dli_sname && strcmp(di.dli_sname, name) == 0)
            return true;
    }
    return false;
}

static bool in_ev_unchecked(void)
{
    void *frames[10];
    int n;

    if (!af.armed || af.paused || af.kind == HARNESS_ALLOC_LIBC)
        return false;
    n = backtrace(frames, 10);
    for (size_t k = 0; k < sizeof(ev_unchecked) / sizeof(ev_unchecked[0]); k++)
        if (frame_is(frames, n, ev_unchecked[k].inner) &&
            frame_is(frames, n, ev_unchecked[k].outer))
            return true;
    return false;
}

static void *ev_malloc(size_t n)
{
    if (in_ev_unchecked())
        return __real_malloc(n);
    return alloc_fails(HARNESS_ALLOC_EVENT) ? NULL : __real_malloc(n);
}

static void *ev_realloc(void *p, size_t n)
{
    if (in_ev_unchecked())
        return __real_realloc(p, n);
    return alloc_fails(HARNESS_ALLOC_EVENT) ? NULL : __real_realloc(p, n);
}

static void ev_free(void *p)
{
    free(p);
}

void harness_alloc_fail(enum harness_alloc_kind kind, uint64_t nth)
{
    af.kind = kind;
    af.nth = nth;
    af.count = 0;
    af.fired = false;
    af.armed = true;
}

uint64_t harness_alloc_stop(bool *fired)
{
    af.armed = false;
    if (fired)
        *fired = af.fired;
    return af.count;
}

uint64_t harness_only_n(void)
{
    const char *v = getenv("HARNESS_ONLY_N");

    return v ? strtoull(v, NULL, 10) : 0;
}

int harness_leak_check(void)
{
#ifdef HARNESS_LSAN
    return __lsan_do_recoverable_leak_check();
#else
    return 0;
#endif
}

/* Read events of the clients' ends, on worker 0's loop. */
static struct event *client_events[64];
static struct hclient *client_of_event[64];

/* ---- the loop ---- */

static struct event *guard_ev;

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

void harness_step(struct harness *h, unsigned ms)
{
    struct timeval tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

    for (unsigned i = 1; i < h->r.n_workers; i++)
        event_base_loop(h->workers[i]->base, EVLOOP_NONBLOCK);
    if (h->r.n_workers > 1 && ms > 2)
        tv.tv_usec = 2000;
    PAUSE();
    evtimer_add(guard_ev, &tv);
    RESUME();
    event_base_loop(h->w->base, EVLOOP_ONCE);
}

void harness_sweep_every(struct harness *h, unsigned ms)
{
    struct timeval tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

    PAUSE();
    for (unsigned i = 0; i < h->r.n_workers; i++)
        event_add(h->workers[i]->sweep_ev, &tv);
    RESUME();
}

static unsigned n_active(struct harness *h)
{
    unsigned n = 0;

    for (unsigned i = 0; i < h->r.n_workers; i++)
        n += (unsigned)event_base_get_num_events(h->workers[i]->base, EVENT_BASE_COUNT_ACTIVE);
    return n;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void harness_settle(struct harness *h, unsigned ms)
{
    uint64_t end = mono_ms() + ms;

    do {
        harness_step(h, 1);
    } while (n_active(h) > 0 && mono_ms() < end);
}

/* ---- fake shards ---- */

static const char settings_cols = 7;

static void put_packet(uint8_t *out, size_t *len, uint8_t seq, const void *p, size_t n)
{
    packet_write_header(out + *len, (uint32_t)n, seq);
    memcpy(out + *len + PACKET_HEADER_LEN, p, n);
    *len += PACKET_HEADER_LEN + n;
}

static size_t put_lenenc_str(uint8_t *out, const char *s, size_t n)
{
    size_t k = packet_write_lenenc(out, n);

    memcpy(out + k, s, n);
    return k + n;
}

static size_t coldef(uint8_t *out, const char *name)
{
    size_t n = 0;

    n += put_lenenc_str(out + n, "def", 3);
    n += put_lenenc_str(out + n, "", 0);
    n += put_lenenc_str(out + n, "", 0);
    n += put_lenenc_str(out + n, "", 0);
    n += put_lenenc_str(out + n, name, strlen(name));
    n += put_lenenc_str(out + n, name, strlen(name));
    out[n++] = 0x0c;
    packet_put_u16(out + n, 45);
    n += 2;
    packet_put_u32(out + n, 64);
    n += 4;
    out[n++] = 0xfd;            /* VAR_STRING */
    packet_put_u16(out + n, 0);
    n += 2;
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = 0;
    return n;
}

static void fake_send(struct fake_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0 && c->fd >= 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);

        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;       /* loopback with tiny replies: does not spin for long */
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static void fake_close(struct fake *f, unsigned i)
{
    struct fake_conn *c = &f->conns[i];

    if (c->fd < 0)
        return;
    event_free(f->ev_conn[i]);
    f->ev_conn[i] = NULL;
    close(c->fd);
    c->fd = -1;
}

/* True when this connection is to be dropped at <phase>. */
static bool fake_drops(struct fake *f, enum fake_drop phase)
{
    if (f->drop != phase || (f->drop_times && f->n_dropped >= f->drop_times))
        return false;
    f->n_dropped++;
    return true;
}

static const uint8_t fake_scramble[20] = "abcdefghijklmnopqrst";

static void fake_result_row(struct fake *f, struct fake_conn *c, uint8_t seq0, bool binary,
                            bool drop_mid, uint16_t status)
{
    uint8_t out[1024], p[256];
    size_t len = 0, n;
    uint8_t seq = seq0;

    p[0] = 1;
    put_packet(out, &len, seq++, p, 1);
    put_packet(out, &len, seq++, p, coldef(p, "shard"));
    if (drop_mid) {
        fake_send(c, out, len);
        return;
    }
    put_packet(out, &len, seq++, p, reply_write_eof(p, 0, status));
    n = 0;
    if (binary) {
        p[n++] = 0;
        p[n++] = 0;         /* NULL bitmap: (1 + 7 + 2) / 8 bytes */
    }
    n += put_lenenc_str(p + n, f->name, strlen(f->name));
    put_packet(out, &len, seq++, p, n);
    put_packet(out, &len, seq++, p, reply_write_eof(p, 0, status));
    fake_send(c, out, len);
}

static void fake_ok(struct fake_conn *c, uint8_t seq, uint16_t status)
{
    uint8_t out[128], p[64];
    size_t len = 0;

    put_packet(out, &len, seq, p, reply_write_ok(p, 0, 0, status, 0, NULL, 0));
    fake_send(c, out, len);
}

static void fake_login(struct fake *f, struct fake_conn *c, const uint8_t *p, size_t n,
                       uint8_t seq)
{
    static const char want[] = "*7BBA80589A662F2A0E7921D79CD8FF1D3C55337F";  /* bepw */
    struct handshake_response r;
    uint8_t stage2[HANDSHAKE_SHA1_LEN], out[256], e[200];
    size_t len = 0;

    handshake_parse_hash(want, stage2);
    if (f->refuse_login || handshake_parse_response(p, n, &r) < 0 || r.user_len != 2 ||
        memcmp(p + r.user_off, "sw", 2) != 0 ||
        !handshake_native_check(fake_scramble, p + r.auth_off, r.auth_len, stage2, false)) {
        static const char msg[] = "Access denied for user 'sw'@'localhost' (using password: YES)";

        f->n_bad_logins++;
        put_packet(out, &len, (uint8_t)(seq + 1), e,
                   reply_write_err(e, WIRE_ER_ACCESS_DENIED, "28000", msg, sizeof(msg) - 1));
        fake_send(c, out, len);
        c->phase = 9;           /* closed below */
        return;
    }
    f->n_logins++;
    fake_ok(c, (uint8_t)(seq + 1), WIRE_STATUS_AUTOCOMMIT);
    c->phase = 1;
}

static void fake_check(struct fake_conn *c)
{
    static const char *const vals[] = { "10.11.6-MariaDB-fake", "STRICT_TRANS_TABLES", "0",
                                        "utf8mb4", "utf8mb4", "0" };
    uint8_t out[2048], p[512];
    size_t len = 0, n = 0;
    uint8_t seq = 1;

    p[0] = (uint8_t)settings_cols;
    put_packet(out, &len, seq++, p, 1);
    for (int i = 0; i < settings_cols; i++) {
        char name[8];

        snprintf(name, sizeof(name), "c%d", i);
        put_packet(out, &len, seq++, p, coldef(p, name));
    }
    put_packet(out, &len, seq++, p, reply_write_eof(p, 0, WIRE_STATUS_AUTOCOMMIT));
    for (unsigned i = 0; i < 6; i++)
        n += put_lenenc_str(p + n, vals[i], strlen(vals[i]));
    p[n++] = 0xfb;              /* NULL */
    put_packet(out, &len, seq++, p, n);
    put_packet(out, &len, seq++, p, reply_write_eof(p, 0, WIRE_STATUS_AUTOCOMMIT));
    fake_send(c, out, len);
    c->phase = 2;
}

static unsigned count_params(const uint8_t *sql, size_t n)
{
    unsigned k = 0;

    for (size_t i = 0; i < n; i++)
        k += sql[i] == '?';
    return k;
}

static void fake_prepare(struct fake *f, struct fake_conn *c, const uint8_t *sql, size_t n)
{
    uint8_t out[2048], p[256];
    size_t len = 0;
    unsigned np = count_params(sql, n);
    uint8_t seq = 1;

    f->n_prepares++;
    p[0] = 0;
    packet_put_u32(p + 1, 100 + f->n_prepares);
    packet_put_u16(p + 5, 1);
    packet_put_u16(p + 7, (uint16_t)np);
    p[9] = 0;
    packet_put_u16(p + 10, 0);
    put_packet(out, &len, seq++, p, 12);
    for (unsigned i = 0; i < np; i++)
        put_packet(out, &len, seq++, p, coldef(p, "?"));
    if (np)
        put_packet(out, &len, seq++, p, reply_write_eof(p, 0, WIRE_STATUS_AUTOCOMMIT));
    put_packet(out, &len, seq++, p, coldef(p, "shard"));
    put_packet(out, &len, seq++, p, reply_write_eof(p, 0, WIRE_STATUS_AUTOCOMMIT));
    fake_send(c, out, len);
}

static bool starts_with(const uint8_t *p, size_t n, const char *word)
{
    size_t k = strlen(word);

    return n >= k && strncasecmp((const char *)p, word, k) == 0;
}

/* One command after login. Returns false when the connection was closed. */
static bool fake_command(struct fake *f, unsigned i, const uint8_t *p, size_t n)
{
    struct fake_conn *c = &f->conns[i];
    uint16_t status;

    if (n == 0)
        return true;
    if (p[0] == WIRE_COM_QUERY) {
        if (starts_with(p + 1, n - 1, "BEGIN") || starts_with(p + 1, n - 1, "START"))
            c->in_txn = true;
        else if (starts_with(p + 1, n - 1, "COMMIT") || starts_with(p + 1, n - 1, "ROLLBACK"))
            c->in_txn = false;
    } else if (p[0] == WIRE_COM_RESET_CONNECTION) {
        c->in_txn = false;
    }
    status = WIRE_STATUS_AUTOCOMMIT | (c->in_txn ? WIRE_STATUS_IN_TRANS : 0);
    switch (p[0]) {
    case WIRE_COM_QUIT:
        fake_close(f, i);
        return false;
    case WIRE_COM_QUERY:
        if (starts_with(p + 1, n - 1, "SET ") || starts_with(p + 1, n - 1, "BEGIN") ||
            starts_with(p + 1, n - 1, "START") ||
            starts_with(p + 1, n - 1, "COMMIT") || starts_with(p + 1, n - 1, "ROLLBACK")) {
            if (starts_with(p + 1, n - 1, "SET ") && fake_drops(f, FAKE_DROP_SET)) {
                fake_close(f, i);
                return false;
            }
            fake_ok(c, 1, status);
            return true;
        }
        f->n_queries++;
        snprintf(f->last_query, sizeof(f->last_query), "%.*s", (int)(n - 1), p + 1);
        if (fake_drops(f, FAKE_DROP_QUERY)) {
            fake_close(f, i);
            return false;
        }
        if (fake_drops(f, FAKE_DROP_REPLY)) {
            fake_result_row(f, c, 1, false, true, status);
            fake_close(f, i);
            return false;
        }
        fake_result_row(f, c, 1, false, false, status);
        if (fake_drops(f, FAKE_DROP_IDLE)) {
            fake_close(f, i);
            return false;
        }
        return true;
    case WIRE_COM_STMT_PREPARE:
        fake_prepare(f, c, p + 1, n - 1);
        return true;
    case WIRE_COM_STMT_EXECUTE:
        f->n_executes++;
        f->n_queries++;
        if (fake_drops(f, FAKE_DROP_QUERY)) {
            fake_close(f, i);
            return false;
        }
        fake_result_row(f, c, 1, true, false, status);
        return true;
    case WIRE_COM_STMT_CLOSE:
    case WIRE_COM_STMT_SEND_LONG_DATA:
        return true;
    default:
        fake_ok(c, 1, status);
        return true;
    }
}

static void fake_read(evutil_socket_t fd, short what, void *arg)
{
    struct fake_conn *c = arg;
    struct fake *f = c->owner;
    unsigned i = (unsigned)(c - f->conns);
    ssize_t k;

    (void)fd;
    (void)what;
    PAUSE();
    k = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
    if (k <= 0) {
        if (k == 0 || (errno != EAGAIN && errno != EINTR))
            fake_close(f, i);
        goto out;
    }
    c->in_len += (size_t)k;
    for (;;) {
        struct packet_header hd;
        size_t whole;

        if (c->in_len < PACKET_HEADER_LEN)
            break;
        packet_read_header(c->in, PACKET_HEADER_LEN, &hd);
        whole = PACKET_HEADER_LEN + hd.payload_len;
        if (whole > sizeof(c->in)) {
            fake_close(f, i);
            goto out;
        }
        if (c->in_len < whole)
            break;
        {
            uint8_t pkt[sizeof(c->in)];
            const uint8_t *p = pkt + PACKET_HEADER_LEN;

            memcpy(pkt, c->in, whole);
            memmove(c->in, c->in + whole, c->in_len - whole);
            c->in_len -= whole;
            if (c->phase == 0) {
                if (fake_drops(f, FAKE_DROP_LOGIN)) {
                    fake_close(f, i);
                    goto out;
                }
                fake_login(f, c, p, hd.payload_len, hd.seq);
                if (c->phase == 9) {
                    fake_close(f, i);
                    goto out;
                }
            } else if (c->phase == 1) {
                if (fake_drops(f, FAKE_DROP_CHECK)) {
                    fake_close(f, i);
                    goto out;
                }
                fake_check(c);
            } else if (!fake_command(f, i, p, hd.payload_len)) {
                goto out;
            }
        }
    }
out:
    RESUME();
}

static void fake_accept(evutil_socket_t fd, short what, void *arg)
{
    struct fake *f = arg;
    struct handshake_greeting g;
    uint8_t out[300];
    int s, n;
    unsigned i;

    (void)what;
    PAUSE();
    s = accept(fd, NULL, NULL);
    if (s < 0)
        goto out;
    f->n_accepted++;
    for (i = 0; i < HARNESS_MAX_CONNS && f->conns[i].used; i++)
        ;
    if (i == HARNESS_MAX_CONNS || fake_drops(f, FAKE_DROP_ACCEPT)) {
        if (i == HARNESS_MAX_CONNS)
            fprintf(stderr, "harness: fake %s: more than %d connections\n", f->name,
                    HARNESS_MAX_CONNS);
        close(s);
        goto out;
    }
    evutil_make_socket_nonblocking(s);
    f->conns[i].used = true;
    f->conns[i].fd = s;
    f->conns[i].owner = f;
    f->conns[i].in_len = 0;
    f->conns[i].phase = 0;
    f->conns[i].in_txn = false;
    f->ev_conn[i] = event_new(event_get_base(f->ev_accept), s, EV_READ | EV_PERSIST, fake_read,
                              &f->conns[i]);
    event_add(f->ev_conn[i], NULL);
    g.server_version = "10.11.6-MariaDB-fake";
    g.connection_id = f->n_accepted;
    memcpy(g.scramble, fake_scramble, sizeof(g.scramble));
    g.capabilities = WIRE_CAP_LONG_PASSWORD | WIRE_CAP_LONG_FLAG | WIRE_CAP_PROTOCOL_41 |
                     WIRE_CAP_TRANSACTIONS | WIRE_CAP_SECURE_CONNECTION |
                     WIRE_CAP_MULTI_RESULTS | WIRE_CAP_PS_MULTI_RESULTS | WIRE_CAP_PLUGIN_AUTH |
                     WIRE_CAP_CONNECT_WITH_DB;
    g.charset = WIRE_CHARSET_UTF8MB4_GENERAL_CI;
    g.status = WIRE_STATUS_AUTOCOMMIT;
    n = handshake_write_greeting(out + PACKET_HEADER_LEN, sizeof(out) - PACKET_HEADER_LEN, &g);
    packet_write_header(out, (uint32_t)n, 0);
    fake_send(&f->conns[i], out, PACKET_HEADER_LEN + (size_t)n);
out:
    RESUME();
}

static int fake_start(struct fake *f, unsigned i, struct event_base *base)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    snprintf(f->name, sizeof(f->name), "s%u", i);
    for (unsigned k = 0; k < HARNESS_MAX_CONNS; k++)
        f->conns[k].fd = -1;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(f->lfd, 64) < 0 || getsockname(f->lfd, (struct sockaddr *)&sa, &sl) < 0) {
        perror("harness: fake listen");
        return -1;
    }
    evutil_make_socket_nonblocking(f->lfd);
    f->port = ntohs(sa.sin_port);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", f->port);
    f->ev_accept = event_new(base, f->lfd, EV_READ | EV_PERSIST, fake_accept, f);
    return f->ev_accept && event_add(f->ev_accept, NULL) == 0 ? 0 : -1;
}

static void fake_stop(struct fake *f)
{
    for (unsigned i = 0; i < HARNESS_MAX_CONNS; i++)
        fake_close(f, i);
    if (f->ev_accept)
        event_free(f->ev_accept);
    f->ev_accept = NULL;
    if (f->lfd >= 0)
        close(f->lfd);
    f->lfd = -1;
}

struct fake *fake_of(struct harness *h, unsigned i)
{
    return &h->fakes[i - 1];
}

unsigned fake_open(struct harness *h, unsigned i)
{
    unsigned n = 0;

    for (unsigned k = 0; k < HARNESS_MAX_CONNS; k++)
        n += fake_of(h, i)->conns[k].fd >= 0;
    return n;
}

/* ---- the harness ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    const char *lv = getenv("HARNESS_LOG");
    enum log_level level = LOG_ERROR;

    /* Before libevent allocates anything. */
    event_set_mem_functions(ev_malloc, ev_realloc, ev_free);
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    /* The daemon's log lines are for debugging a test: HARNESS_LOG=LEVEL
     * shows them on stderr. */
    if (lv)
        log_parse_level(lv, &level);
    else
        log_open("/dev/null");
    log_set_level(level);
}

struct harness *harness_new(unsigned n_fakes, const char *extra)
{
    struct harness *h;
    char text[4096], *err = NULL, path[] = "/tmp/swcore-map-XXXXXX";
    int fd;

    pthread_once(&global_once, global_init);
    PAUSE();
    h = calloc(1, sizeof(*h));
    fd = mkstemp(path);
    if (fd >= 0)
        close(fd);
    h->map_path = strdup(path);
    snprintf(text, sizeof(text),
             "database = app\n"
             "map_file = %s\n"
             "backend_user = sw\n"
             "backend_password = " HARNESS_BE_PASSWORD "\n"
             "user = " HARNESS_APP_USER " *DB14CBAE92D7CB2F84BD3AA7222415B564A4054A\n"
             "workers = 1\n"
             "connect_timeout_ms = 2000\n"
             "pool_wait_timeout_ms = 3000\n"
             "failover_buffer_ms = 0\n"
             "log_level = error\n"
             "%s", path, extra ? extra : "");
    h->cfg = config_parse(text, "harness", &err);
    if (!h->cfg) {
        fprintf(stderr, "harness: config: %s\n", err);
        free(err);
        goto fail;
    }
    snprintf(h->cfg->listen_host, sizeof(h->cfg->listen_host), "127.0.0.1");
    h->cfg->listen_port = 0;            /* any free port: the listener is not used */
    h->r.cfg = h->cfg;
    pthread_mutex_init(&h->r.map_lock, NULL);
    pthread_mutex_init(&h->r.budget_lock, NULL);
    if (vbtrack_init(&h->r.vbt) < 0)
        goto fail;
    h->r.workers = h->workers;
    for (unsigned i = 0; i < h->cfg->workers && i < HARNESS_MAX_WORKERS; i++) {
        h->workers[i] = worker_new(&h->r, i, &err);
        if (!h->workers[i]) {
            fprintf(stderr, "harness: worker: %s\n", err);
            free(err);
            goto fail;
        }
        h->r.n_workers++;
    }
    h->w = h->workers[0];
    guard_ev = evtimer_new(h->w->base, guard_cb, NULL);
    for (unsigned i = 0; i < n_fakes; i++) {
        h->fakes[i].lfd = -1;
        if (fake_start(&h->fakes[i], i + 1, h->w->base) < 0)
            goto fail;
        h->n_fakes++;
    }
    RESUME();
    return h;
fail:
    RESUME();
    harness_free(h);
    return NULL;
}

void harness_free(struct harness *h)
{
    if (!h)
        return;
    PAUSE();
    for (unsigned i = 0; i < h->n_fakes; i++)
        fake_stop(&h->fakes[i]);
    if (guard_ev)
        event_free(guard_ev);
    guard_ev = NULL;
    /* Clients the test did not close: their read events go with the loop. */
    for (unsigned i = 0; i < 64; i++) {
        if (client_events[i])
            event_free(client_events[i]);
        client_events[i] = NULL;
        client_of_event[i] = NULL;
    }
    for (unsigned i = 0; i < h->r.n_workers; i++)
        worker_free(h->workers[i]);
    smap_unref(h->r.map);
    pool_budgets_free(&h->r);
    vbtrack_fini(&h->r.vbt);
    pthread_mutex_destroy(&h->r.map_lock);
    pthread_mutex_destroy(&h->r.budget_lock);
    config_free(h->cfg);
    if (h->map_path)
        unlink(h->map_path);
    free(h->map_path);
    free(h);
    RESUME();
}

/* <text> with "@N" replaced by fake N's address. */
static char *expand(struct harness *h, const char *text)
{
    size_t cap = strlen(text) * 4 + 64, n = 0;
    char *out = malloc(cap);

    for (const char *p = text; *p; p++) {
        if (*p == '@' && p[1] >= '1' && p[1] <= '0' + (int)h->n_fakes) {
            n += (size_t)snprintf(out + n, cap - n, "%s", h->fakes[p[1] - '1'].addr);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
    return out;
}

struct smap *harness_map(struct harness *h, const char *text)
{
    char *t, *err = NULL;
    struct smap *m;

    PAUSE();
    t = expand(h, text);
    m = mapcodec_parse(t, strlen(t), &err);
    if (!m) {
        fprintf(stderr, "harness: map: %s\n", err);
        free(err);
    }
    free(t);
    RESUME();
    return m;
}

bool harness_pools_match(const struct worker *w)
{
    if (!w->map || w->n_pools != smap_n_shards(w->map))
        return false;
    for (unsigned i = 0; i < w->n_pools; i++)
        if (!w->pools[i] || strcmp(w->pools[i]->shard, smap_shard(w->map, i)->name) != 0)
            return false;
    return true;
}

int harness_write_map(struct harness *h, const char *text)
{
    char *t;
    FILE *f;
    int rc = -1;

    PAUSE();
    t = expand(h, text);
    f = fopen(h->map_path, "w");
    if (f) {
        rc = fputs(t, f) < 0 ? -1 : 0;
        if (fclose(f) != 0)
            rc = -1;
    }
    free(t);
    RESUME();
    return rc;
}

int harness_publish(struct harness *h, struct smap *m)
{
    int rc = mapwatch_publish(&h->r, m);

    harness_settle(h, 100);
    return rc;
}

/* ---- clients ---- */

static void hclient_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hclient *c = arg;
    ssize_t k;

    (void)fd;
    (void)what;
    if (c->len == sizeof(c->buf))
        return;
    k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (k > 0)
        c->len += (size_t)k;
    else if (k == 0 || (errno != EAGAIN && errno != EINTR))
        c->eof = true;
}

static struct event **client_event_slot(struct hclient *c)
{
    for (unsigned i = 0; i < 64; i++)
        if (client_of_event[i] == c)
            return &client_events[i];
    return NULL;
}

void hclient_open(struct harness *h, struct hclient *c)
{
    hclient_open_on(h, c, 0);
}

void hclient_open_on(struct harness *h, struct hclient *c, unsigned wi)
{
    struct router *r = &h->r;
    int sv[2];
    unsigned i;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("harness: socketpair");
        return;
    }
    c->fd = sv[1];
    evutil_make_socket_nonblocking(c->fd);
    PAUSE();
    for (i = 0; i < 64 && client_of_event[i]; i++)
        ;
    if (i < 64) {
        client_of_event[i] = c;
        client_events[i] = event_new(h->w->base, c->fd, EV_READ | EV_PERSIST, hclient_read_cb, c);
        event_add(client_events[i], NULL);
    }
    RESUME();
    /* As the listener does (worker.c on_accept). */
    atomic_fetch_add(&r->n_clients, 1);
    c->w = h->workers[wi];
    c->s = session_new(c->w, sv[0], "harness");
    if (!c->s)
        atomic_fetch_sub(&r->n_clients, 1);
    else
        c->id = c->s->id;
}

bool hclient_alive(struct harness *h, const struct hclient *c)
{
    (void)h;
    for (struct session *s = c->w ? c->w->sessions : NULL; s; s = s->next)
        if (s->id == c->id && c->id)
            return true;
    return false;
}

void hclient_close(struct harness *h, struct hclient *c)
{
    struct event **ev = client_event_slot(c);

    PAUSE();
    if (ev) {
        event_free(*ev);
        *ev = NULL;
        client_of_event[ev - client_events] = NULL;
    }
    RESUME();
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    for (int i = 0; i < 200 && hclient_alive(h, c); i++)
        harness_step(h, 5);
    harness_settle(h, 50);
}

int hclient_send(struct hclient *c, uint8_t cmd, const void *arg, size_t len)
{
    uint8_t hdr[PACKET_HEADER_LEN + 1];

    packet_write_header(hdr, (uint32_t)(len + 1), 0);
    hdr[PACKET_HEADER_LEN] = cmd;
    if (send(c->fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != (ssize_t)sizeof(hdr) ||
        (len && send(c->fd, arg, len, MSG_NOSIGNAL) != (ssize_t)len))
        return -1;
    return 0;
}

int hclient_query_send(struct hclient *c, const char *sql)
{
    return hclient_send(c, WIRE_COM_QUERY, sql, strlen(sql));
}

int hclient_prepare_send(struct hclient *c, const char *sql)
{
    return hclient_send(c, WIRE_COM_STMT_PREPARE, sql, strlen(sql));
}

int hclient_execute_send(struct hclient *c, uint32_t stmt_id, unsigned n_params,
                         const int64_t *params)
{
    uint8_t p[512];
    size_t n = 0, nb = (n_params + 7) / 8;

    packet_put_u32(p, stmt_id);
    p[4] = 0;                       /* no cursor */
    packet_put_u32(p + 5, 1);
    n = 9;
    if (n_params) {
        memset(p + n, 0, nb);
        n += nb;
        p[n++] = 1;                 /* types follow */
        for (unsigned i = 0; i < n_params; i++) {
            p[n++] = 0x08;          /* LONGLONG */
            p[n++] = 0;
        }
        for (unsigned i = 0; i < n_params; i++) {
            packet_put_u32(p + n, (uint32_t)params[i]);
            packet_put_u32(p + n + 4, (uint32_t)((uint64_t)params[i] >> 32));
            n += 8;
        }
    }
    return hclient_send(c, WIRE_COM_STMT_EXECUTE, p, n);
}

/* Takes the next whole packet out of <c->buf>, stepping the loop for it.
 * Returns its payload length, -1 at EOF, -2 at the deadline. */
static ssize_t next_packet(struct harness *h, struct hclient *c, uint8_t *out, size_t cap,
                           uint8_t *seq, uint64_t deadline)
{
    for (;;) {
        if (c->len >= PACKET_HEADER_LEN) {
            struct packet_header hd;
            size_t whole;

            packet_read_header(c->buf, PACKET_HEADER_LEN, &hd);
            whole = PACKET_HEADER_LEN + hd.payload_len;
            if (c->len >= whole && hd.payload_len <= cap) {
                memcpy(out, c->buf + PACKET_HEADER_LEN, hd.payload_len);
                memmove(c->buf, c->buf + whole, c->len - whole);
                c->len -= whole;
                *seq = hd.seq;
                return hd.payload_len;
            }
        }
        if (c->eof)
            return -1;
        if (mono_ms() >= deadline)
            return -2;
        harness_step(h, 10);
    }
}

struct hresult hclient_reply(struct harness *h, struct hclient *c, int reply_kind, unsigned ms)
{
    struct hresult res;
    struct reply r;
    uint64_t deadline = mono_ms() + ms;
    bool first = true;
    static uint8_t p[1 << 16];

    memset(&res, 0, sizeof(res));
    reply_begin(&r, (enum reply_kind)reply_kind, false);
    for (;;) {
        uint8_t seq;
        ssize_t n = next_packet(h, c, p, sizeof(p), &seq, deadline);
        enum reply_state before = r.state;
        int k;

        if (n < 0) {
            res.kind = n == -1 ? HRESULT_EOF : HRESULT_TIMEOUT;
            return res;
        }
        if (first && n > 0 && p[0] == WIRE_HDR_ERR) {
            size_t off = 0, len = 0;

            res.kind = HRESULT_ERR;
            reply_parse_err(p, (size_t)n, &res.err_no, &off, &len);
            snprintf(res.msg, sizeof(res.msg), "%.*s", (int)len, (const char *)p + off);
            return res;
        }
        if (first && reply_kind == REPLY_PREPARE && n >= 9 && p[0] == 0) {
            res.stmt_id = packet_u32(p + 1);
            res.n_params = packet_u16(p + 7);
        }
        if (before == REPLY_ROWS && !(p[0] == WIRE_HDR_EOF && n < 9)) {
            if (res.n_rows++ == 0) {
                uint64_t vlen = 0;
                size_t off = reply_kind == REPLY_EXECUTE ? 2 : 0;
                ssize_t b = packet_read_lenenc(p + off, (size_t)n - off, &vlen);

                if (b > 0 && off + (size_t)b + vlen <= (size_t)n)
                    snprintf(res.value, sizeof(res.value), "%.*s", (int)vlen,
                             (const char *)p + off + b);
            }
        }
        first = false;
        k = reply_feed(&r, p, (size_t)n, (uint32_t)n);
        if (k < 0) {
            res.kind = HRESULT_ERR;
            snprintf(res.msg, sizeof(res.msg), "harness: broken reply stream");
            return res;
        }
        if (k == 1) {
            res.status = r.status;
            if (r.is_error) {
                res.kind = HRESULT_ERR;
                res.err_no = r.err_no;
            } else {
                res.kind = res.n_rows || reply_kind == REPLY_EXECUTE ? HRESULT_ROWS : HRESULT_OK;
            }
            return res;
        }
    }
}

struct hresult hclient_login(struct harness *h, struct hclient *c, const char *user,
                             const char *password)
{
    struct hresult res;
    struct handshake_server_greeting g;
    uint8_t p[512], out[512];
    uint8_t seq;
    ssize_t n;
    int k;

    memset(&res, 0, sizeof(res));
    n = next_packet(h, c, p, sizeof(p), &seq, mono_ms() + HARNESS_TIMEOUT_MS);
    if (n < 0) {
        res.kind = n == -1 ? HRESULT_EOF : HRESULT_TIMEOUT;
        return res;
    }
    if (handshake_parse_greeting(p, (size_t)n, &g) < 0) {
        res.kind = HRESULT_ERR;
        snprintf(res.msg, sizeof(res.msg), "harness: not a greeting");
        return res;
    }
    memcpy(c->scramble, g.scramble, sizeof(c->scramble));
    k = handshake_write_client_response(out + PACKET_HEADER_LEN, sizeof(out) - PACKET_HEADER_LEN,
                                        WIRE_CAP_LONG_PASSWORD | WIRE_CAP_LONG_FLAG |
                                            WIRE_CAP_PROTOCOL_41 | WIRE_CAP_TRANSACTIONS |
                                            WIRE_CAP_SECURE_CONNECTION | WIRE_CAP_MULTI_RESULTS |
                                            WIRE_CAP_PLUGIN_AUTH | WIRE_CAP_CONNECT_WITH_DB,
                                        WIRE_CHARSET_UTF8MB4_GENERAL_CI, user, password,
                                        g.scramble, "app");
    packet_write_header(out, (uint32_t)k, (uint8_t)(seq + 1));
    if (send(c->fd, out, PACKET_HEADER_LEN + (size_t)k, MSG_NOSIGNAL) < 0) {
        res.kind = HRESULT_EOF;
        return res;
    }
    return hclient_reply(h, c, REPLY_SIMPLE, HARNESS_TIMEOUT_MS);
}

struct hresult hclient_query(struct harness *h, struct hclient *c, const char *sql)
{
    struct hresult res;

    memset(&res, 0, sizeof(res));
    if (hclient_query_send(c, sql) < 0) {
        res.kind = HRESULT_EOF;
        return res;
    }
    return hclient_reply(h, c, REPLY_QUERY, HARNESS_TIMEOUT_MS);
}

int hclient_ready(struct harness *h, struct hclient *c, unsigned wi)
{
    struct hresult r;

    hclient_open_on(h, c, wi);
    if (!c->s) {
        fprintf(stderr, "harness: session_new failed\n");
        return -1;
    }
    r = hclient_login(h, c, HARNESS_APP_USER, HARNESS_APP_PASSWORD);
    if (r.kind != HRESULT_OK) {
        fprintf(stderr, "harness: login failed kind=%d err=%u %s\n", r.kind, r.err_no, r.msg);
        return -1;
    }
    return 0;
}

struct harness *harness_start(unsigned n_fakes, const char *extra, const char *map,
                              struct hclient *c)
{
    struct harness *h = harness_new(n_fakes, extra);
    struct smap *m;

    if (!h)
        return NULL;
    m = harness_map(h, map);
    if (!m || harness_publish(h, m) < 0)
        goto fail;
    if (c && hclient_ready(h, c, 0) < 0) {
        hclient_close(h, c);
        goto fail;
    }
    return h;
fail:
    harness_free(h);
    return NULL;
}
