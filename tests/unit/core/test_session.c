/*
 * tests/unit/core/test_session.c - real sessions (router/session.c) over
 * socketpairs against fake shards: login, relaying, a shard dropping the
 * connection at each phase, a map swap between any two steps of a
 * statement, and every allocation of a statement failed in turn.
 */
#include "tests/unit/core/harness.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/reply.h"
#include "protocol/wire.h"
#include "router/fault.h"
#include "router/session.h"
#include "shardmap/smap.h"

#include "../check.h"

/* Two shards; every vbucket on "n" (fake s2). */
static const char map_mn[] =
    "version 1\nshard m master=@1\nshard n master=@2\nvb 0-1023 n\n";

static const char q_key[] = "SELECT shard FROM t WHERE userid = 5";

static struct harness *start(unsigned n_fakes, const char *extra, const char *map,
                             struct hclient *c)
{
    return harness_start(n_fakes, extra, map, c);
}

static void test_login(void)
{
    static const struct {
        const char *user, *password;
        int         kind;
        uint16_t    err_no;
    } cases[] = {
        { HARNESS_APP_USER, HARNESS_APP_PASSWORD, HRESULT_OK, 0 },
        { HARNESS_APP_USER, "wrong", HRESULT_ERR, WIRE_ER_ACCESS_DENIED },
        { HARNESS_APP_USER, "", HRESULT_ERR, WIRE_ER_ACCESS_DENIED },
        { "nobody", HARNESS_APP_PASSWORD, HRESULT_ERR, WIRE_ER_ACCESS_DENIED },
    };
    struct harness *h = harness_new(1, NULL);
    struct hclient c = { .fd = -1 };

    CHECK(h != NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hresult r;

        hclient_open(h, &c);
        CHECK(c.s != NULL);
        r = hclient_login(h, &c, cases[i].user, cases[i].password);
        if (r.kind != cases[i].kind)
            fprintf(stderr, "case %zu: kind=%d err=%u %s\n", i, r.kind, r.err_no, r.msg);
        CHECK_EQ(r.kind, cases[i].kind);
        CHECK_EQ(r.err_no, cases[i].err_no);
        if (r.kind == HRESULT_ERR) {
            /* A refused login ends the session: the router closes its side. */
            CHECK_EQ(hclient_reply(h, &c, REPLY_SIMPLE, HARNESS_TIMEOUT_MS).kind, HRESULT_EOF);
        } else {
            CHECK(hclient_alive(h, &c));
        }
        hclient_close(h, &c);
    }
out:
    if (h && c.fd >= 0)
        hclient_close(h, &c);
    harness_free(h);
}

static void test_query_relayed(void)
{
    struct hclient c = { .fd = -1 };
    struct harness *h = start(2, NULL, map_mn, &c);
    struct hresult r;

    CHECK(h != NULL);
    r = hclient_query(h, &c, q_key);
    CHECK_EQ(r.kind, HRESULT_ROWS);
    CHECK_EQ(r.n_rows, 1);
    CHECK_STREQ(r.value, "s2");
    CHECK_STREQ(fake_of(h, 2)->last_query, q_key);
    CHECK_EQ(fake_of(h, 2)->n_logins, 1);
    CHECK_EQ(fake_of(h, 1)->n_accepted, 0);
    /* The connection went back to the pool and is reused. */
    r = hclient_query(h, &c, q_key);
    CHECK_EQ(r.kind, HRESULT_ROWS);
    CHECK_EQ(fake_of(h, 2)->n_accepted, 1);
    CHECK_EQ(fake_of(h, 2)->n_queries, 2);
    /* A prepared statement: prepared where it runs, executed by key. */
    CHECK_EQ(hclient_prepare_send(&c, "SELECT shard FROM t WHERE userid = ?"), 0);
    r = hclient_reply(h, &c, REPLY_PREPARE, HARNESS_TIMEOUT_MS);
    CHECK_EQ(r.kind, HRESULT_OK);
    CHECK_EQ(r.n_params, 1);
    {
        int64_t key = 5;

        CHECK_EQ(hclient_execute_send(&c, r.stmt_id, 1, &key), 0);
    }
    r = hclient_reply(h, &c, REPLY_EXECUTE, HARNESS_TIMEOUT_MS);
    CHECK_EQ(r.kind, HRESULT_ROWS);
    CHECK_STREQ(r.value, "s2");
    CHECK_EQ(fake_of(h, 2)->n_executes, 1);
out:
    if (h)
        hclient_close(h, &c);
    harness_free(h);
}

/*
 * The shard drops the connection at each phase of a statement. The client
 * always gets an answer (an ERR, or the connection closed after one when a
 * reply was already half relayed); when the session survives, its next
 * statement works.
 */
static void test_backend_drop(void)
{
    static const struct {
        enum fake_drop drop;
        uint16_t       err_no;     /* of the first statement; 0: it succeeds */
        bool           survives;
    } cases[] = {
        { FAKE_DROP_ACCEPT, WIRE_ER_CONNECT_TO_BACKEND, true },
        { FAKE_DROP_LOGIN, WIRE_ER_CONNECT_TO_BACKEND, true },
        { FAKE_DROP_CHECK, WIRE_ER_CONNECT_TO_BACKEND, true },
        { FAKE_DROP_QUERY, WIRE_ER_BACKEND_GONE, true },
        { FAKE_DROP_REPLY, WIRE_ER_BACKEND_GONE, false },
        { FAKE_DROP_IDLE, 0, true },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hclient c = { .fd = -1 };
        struct harness *h = start(2, NULL, map_mn, &c);
        struct hresult r;

        CHECK(h != NULL);
        fake_of(h, 2)->drop = cases[i].drop;
        fake_of(h, 2)->drop_times = 1;
        r = hclient_query(h, &c, q_key);
        if (cases[i].err_no == 0) {
            CHECK_EQ(r.kind, HRESULT_ROWS);
        } else if (cases[i].survives) {
            if (r.kind != HRESULT_ERR || r.err_no != cases[i].err_no)
                fprintf(stderr, "case %zu: kind=%d err=%u %s\n", i, r.kind, r.err_no, r.msg);
            CHECK_EQ(r.kind, HRESULT_ERR);
            CHECK_EQ(r.err_no, cases[i].err_no);
        } else {
            /* Half a result set was relayed: the session ends after an ERR
             * (or with the connection closed). */
            CHECK(r.kind == HRESULT_ERR || r.kind == HRESULT_EOF);
        }
        CHECK_EQ(fake_of(h, 2)->n_dropped, 1);
        harness_settle(h, 50);
        if (cases[i].survives) {
            CHECK(hclient_alive(h, &c));
            r = hclient_query(h, &c, q_key);
            CHECK_EQ(r.kind, HRESULT_ROWS);
            CHECK_STREQ(r.value, "s2");
        } else {
            CHECK_EQ(hclient_reply(h, &c, REPLY_SIMPLE, HARNESS_TIMEOUT_MS).kind, HRESULT_EOF);
        }
out:
        if (h)
            hclient_close(h, &c);
        harness_free(h);
        if (check_failures)
            return;
    }
}

/*
 * A new map between any two steps of a statement: the statement reaches the
 * shard its key maps to in the map it was routed with, or the one it maps to
 * in the new map - never a shard picked by a stale index. Each new map
 * shifts the indexes (a shard whose name sorts first is added) or removes
 * the shard at the old index.
 */
static void test_map_swap_each_step(void)
{
    static const struct {
        const char *map2;
        const char *allowed;    /* fakes that may answer */
        const char *after;      /* the one the next statement reaches */
        bool        cut_ok;     /* the shard's master was replaced: a statement
                                 * in flight on the old one may be cut (2013),
                                 * never answered after the change (issue 10) */
    } cases[] = {
        /* "a" sorts first: "n" moves from index 1 to 2, index 1 is "m". */
        { "version 2\nshard a master=@3\nshard m master=@1\nshard n master=@2\nvb 0-1023 n\n",
          "s2", "s2", false },
        /* The key's vbuckets move to "a" (fake s3). */
        { "version 2\nshard a master=@3\nshard m master=@1\nshard n master=@2\nvb 0-1023 a\n",
          "s2 s3", "s3", false },
        /* "m" goes: "n" is index 0, index 1 is past the end. */
        { "version 2\nshard n master=@2\nvb 0-1023 n\n", "s2", "s2", false },
        /* "n" gets a new master (fake s3) at the same index. */
        { "version 2\nshard m master=@1\nshard n master=@3\nvb 0-1023 n\n", "s2 s3", "s3",
          true },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* 0: a new connection; 1: a pooled one; 2: a new connection that
         * dies while the session's state is replayed on it, so the
         * statement is routed again (session_route_again). */
        for (unsigned mode = 0; mode < 3; mode++) {
            for (unsigned k = 0;; k++) {
                struct hclient c = { .fd = -1 };
                struct harness *h = start(3, NULL, map_mn, &c);
                struct hresult r;
                bool done_before = false;

                CHECK(h != NULL);
                if (mode == 1) {     /* a pooled connection exists */
                    r = hclient_query(h, &c, q_key);
                    CHECK_EQ(r.kind, HRESULT_ROWS);
                }
                if (mode == 2) {
                    /* Tracked state, set on shard "m" (no key: the first
                     * shard); the key's shard must replay it, and drops. */
                    r = hclient_query(h, &c, "SET time_zone = '+00:00'");
                    CHECK_EQ(r.kind, HRESULT_OK);
                    fake_of(h, 2)->drop = FAKE_DROP_SET;
                    fake_of(h, 2)->drop_times = 1;
                }
                CHECK_EQ(hclient_query_send(&c, q_key), 0);
                for (unsigned s = 0; s < k; s++)
                    harness_step(h, 5);
                done_before = c.len > 0;    /* the reply began before the swap */
                CHECK_EQ(harness_publish(h, harness_map(h, cases[i].map2)), 0);
                CHECK_EQ(smap_version(h->w->map), 2);
                r = hclient_reply(h, &c, REPLY_QUERY, HARNESS_TIMEOUT_MS);
                if (cases[i].cut_ok && r.kind == HRESULT_ERR &&
                    r.err_no == WIRE_ER_BACKEND_GONE)
                    goto next_statement;
                if (r.kind != HRESULT_ROWS || !strstr(cases[i].allowed, r.value))
                    fprintf(stderr, "case %zu mode=%u step %u: kind=%d err=%u value=%s %s\n",
                            i, mode, k, r.kind, r.err_no, r.value, r.msg);
                CHECK_EQ(r.kind, HRESULT_ROWS);
                CHECK(strstr(cases[i].allowed, r.value) != NULL);
                CHECK_EQ(fake_of(h, 1)->n_queries, 0);
                if (mode == 2 && strcmp(cases[i].allowed, "s2") == 0)
                    CHECK_EQ(fake_of(h, 2)->n_dropped, 1);     /* it was retried */
next_statement:
                /* And the next statement uses the new map. */
                r = hclient_query(h, &c, q_key);
                CHECK_EQ(r.kind, HRESULT_ROWS);
                CHECK_STREQ(r.value, cases[i].after);
                CHECK_EQ(fake_of(h, 1)->n_queries, 0);
out:
                if (h)
                    hclient_close(h, &c);
                harness_free(h);
                if (check_failures || done_before || k > 40)
                    break;
            }
            if (check_failures)
                return;
        }
    }
}

/* ---- every allocation failed in turn ---- */

static struct hresult op_login(struct harness *h, struct hclient *c)
{
    hclient_open(h, c);
    return hclient_login(h, c, HARNESS_APP_USER, HARNESS_APP_PASSWORD);
}

static struct hresult op_query(struct harness *h, struct hclient *c)
{
    return hclient_query(h, c, q_key);
}

static struct hresult op_prepare_execute(struct harness *h, struct hclient *c)
{
    struct hresult r;
    int64_t key = 5;

    if (hclient_prepare_send(c, "SELECT shard FROM t WHERE userid = ?") < 0)
        return (struct hresult){ .kind = HRESULT_EOF };
    r = hclient_reply(h, c, REPLY_PREPARE, 2000);
    if (r.kind != HRESULT_OK)
        return r;
    if (hclient_execute_send(c, r.stmt_id, 1, &key) < 0)
        return (struct hresult){ .kind = HRESULT_EOF };
    return hclient_reply(h, c, REPLY_EXECUTE, 2000);
}

/* A tracked SET, then a statement on a connection that must replay it. */
static struct hresult op_set_then_query(struct harness *h, struct hclient *c)
{
    struct hresult r = hclient_query(h, c, "SET time_zone = '+00:00'");

    if (r.kind != HRESULT_OK)
        return r;
    return hclient_query(h, c, q_key);
}

/*
 * Each operation runs with the Nth allocation of a kind failing, for every
 * N until it needs fewer (the C allocators and libevent's, counted
 * separately): the client gets its answer or a clean error (an ERR, or the
 * connection closed), never silence; the session, if it lives, runs its
 * next statement; nothing leaks. Every misbehaving N is reported.
 */
static void test_alloc_failures(void)
{
    static const struct {
        const char     *name;
        bool            login_first;   /* logged in before the faults */
        bool            warm;          /* a statement ran before: pooled connection */
        struct hresult (*run)(struct harness *h, struct hclient *c);
    } ops[] = {
        { "login", false, false, op_login },
        { "query, new connection", true, false, op_query },
        { "query, pooled connection", true, true, op_query },
        { "prepare and execute", true, false, op_prepare_execute },
        { "tracked SET and query", true, true, op_set_then_query },
    };
    static const enum harness_alloc_kind kinds[] = { HARNESS_ALLOC_LIBC, HARNESS_ALLOC_EVENT };
    unsigned bad = 0;

    for (size_t oi = 0; oi < sizeof(ops) / sizeof(ops[0]); oi++) {
        for (size_t ki = 0; ki < sizeof(kinds) / sizeof(kinds[0]); ki++) {
            uint64_t n;

            for (n = 1;; n++) {
                struct hclient c = { .fd = -1 };
                struct harness *h;
                struct hresult r, r2 = { .kind = HRESULT_ROWS };
                bool fired;
                int leaks;

                if (harness_only_n() && harness_only_n() != n)
                    continue;
                /* libevent itself ignores some failures (bufferevent_socket_new
                 * without its output callback, an event_add inside
                 * bufferevent_socket_connect): that connection never makes
                 * progress, and the handshake or connect timeout ends it (the
                 * client sees the connection closed, or error 2003). */
                h = start(2, "connect_timeout_ms = 300\nhandshake_timeout_ms = 300\n", map_mn,
                          ops[oi].login_first ? &c : NULL);
                CHECK(h != NULL);
                /* A connection that could not be started is retried by the
                 * sweep: sooner than once a second, for the test's time. */
                harness_sweep_every(h, 50);
                if (ops[oi].warm)
                    CHECK_EQ(hclient_query(h, &c, q_key).kind, HRESULT_ROWS);
                harness_alloc_fail(kinds[ki], n);
                r = ops[oi].run(h, &c);
                harness_settle(h, 20);
                harness_alloc_stop(&fired);
                if ((r.kind == HRESULT_OK || r.kind == HRESULT_ROWS ||
                     (r.kind == HRESULT_ERR && ops[oi].login_first)) &&
                    hclient_alive(h, &c))
                    r2 = hclient_query(h, &c, q_key);
                hclient_close(h, &c);
                harness_free(h);
                /* A leak check costs ~0.3 s: once at the end, unless asked
                 * to find the N that leaks (HARNESS_LEAK_EACH=1). */
                leaks = getenv("HARNESS_LEAK_EACH") ? harness_leak_check() : 0;
                if (!(r.kind == HRESULT_OK || r.kind == HRESULT_ROWS || r.kind == HRESULT_ERR ||
                      r.kind == HRESULT_EOF) ||
                    (r.kind == HRESULT_ROWS && strcmp(r.value, "s2") != 0) ||
                    r2.kind != HRESULT_ROWS || leaks) {
                    fprintf(stderr, "  %s, allocation kind %zu, n=%llu: reply kind=%d err=%u "
                            "(%s); next statement kind=%d; leaks=%d\n", ops[oi].name, ki,
                            (unsigned long long)n, r.kind, r.err_no, r.msg, r2.kind, leaks);
                    bad++;
                }
                if (!fired || harness_only_n())
                    break;      /* the operation needs fewer than n allocations */
            }
            fprintf(stderr, "  %s, allocation kind %zu: %llu failed in turn\n", ops[oi].name,
                    ki, (unsigned long long)n - 1);
        }
    }
    CHECK_EQ(bad, 0);
    /* (HARNESS_LEAK_EACH=1 names the N that leaks.) */
    CHECK_EQ(harness_leak_check(), 0);
out:
    harness_alloc_stop(NULL);
}

int main(void)
{
    RUN(test_login);
    RUN(test_query_relayed);
    RUN(test_backend_drop);
    RUN(test_map_swap_each_step);
    RUN(test_alloc_failures);
    return check_exit();
}
