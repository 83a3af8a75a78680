/*
 * tests/unit/core/test_pool.c - backend pools (router/pool.c) with real
 * sessions and fake shards: the router-wide connection budget shared by
 * workers, the FIFO wait list (cancel from the middle), every waiter failed
 * when a connect fails, and a pool freed while a connection is being made.
 */
#include "tests/unit/core/harness.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/reply.h"
#include "protocol/wire.h"
#include "router/pool.h"
#include "router/session.h"

#include "../check.h"

static const char map_one[] = "version 1\nshard n master=@1\nvb 0-1023 n\n";
static const char q_key[] = "SELECT shard FROM t WHERE userid = 5";

#define N_CLIENTS 4

/* Steps until session <c> is waiting for a connection. */
static bool wait_state(struct harness *h, struct hclient *c, enum sess_state st)
{
    for (int i = 0; i < 200; i++) {
        if (hclient_alive(h, c) && c->s->state == st)
            return true;
        harness_step(h, 5);
    }
    return false;
}

/* Opens a transaction on <c> that holds a connection of the shard. */
static bool hold_txn(struct harness *h, struct hclient *c)
{
    struct hresult r = hclient_query(h, c, "BEGIN");

    if (r.kind != HRESULT_OK) {
        fprintf(stderr, "hold_txn: BEGIN kind=%d err=%u %s\n", r.kind, r.err_no, r.msg);
        return false;
    }
    r = hclient_query(h, c, q_key);
    if (r.kind != HRESULT_ROWS || !c->s->route.in_txn) {
        fprintf(stderr, "hold_txn: kind=%d err=%u %s in_txn=%d\n", r.kind, r.err_no, r.msg,
                c->s->route.in_txn);
        return false;
    }
    return true;
}

/*
 * pool_max_per_shard is one budget for the router: with a cap of <cap>,
 * <cap> transactions on workers spread as <on> hold every connection; the
 * next statement (on worker 0) waits, and gets a connection when one
 * transaction ends on whichever worker - from the other worker's pool
 * through a shed request. The shard never sees more than <cap> connections.
 */
static void test_budget_shared(void)
{
    static const struct {
        unsigned cap, workers;
        unsigned on[3];         /* worker of each holding client */
        unsigned ender;         /* which holder commits */
    } cases[] = {
        { 1, 1, { 0 }, 0 },
        { 2, 1, { 0, 0 }, 1 },
        { 2, 2, { 0, 1 }, 1 },  /* the freed connection is on worker 1 */
        { 3, 2, { 1, 1, 0 }, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hclient holders[3], waiter = { .fd = -1 };
        unsigned n_holders = 0;
        char extra[128];
        struct harness *h;
        struct hresult r;

        /* Transactions may hold the whole budget here (the pinned cap is
         * tested by the e2e suite). */
        snprintf(extra, sizeof(extra),
                 "workers = %u\npool_max_per_shard = %u\npool_max_pinned_per_shard = %u\n",
                 cases[i].workers, cases[i].cap, cases[i].cap);
        h = harness_start(1, extra, map_one, NULL);
        CHECK(h != NULL);
        CHECK_EQ(h->r.n_workers, cases[i].workers);
        for (unsigned k = 0; k < cases[i].cap; k++) {
            CHECK_EQ(hclient_ready(h, &holders[k], cases[i].on[k]), 0);
            n_holders++;
            CHECK(hold_txn(h, &holders[k]));
        }
        CHECK_EQ(fake_open(h, 1), cases[i].cap);
        CHECK_EQ(hclient_ready(h, &waiter, 0), 0);
        CHECK_EQ(hclient_query_send(&waiter, q_key), 0);
        CHECK(wait_state(h, &waiter, SESS_WAIT_POOL));
        harness_settle(h, 50);
        CHECK(waiter.s->state == SESS_WAIT_POOL);
        CHECK_EQ(fake_of(h, 1)->n_accepted, cases[i].cap);
        r = hclient_query(h, &holders[cases[i].ender], "COMMIT");
        CHECK_EQ(r.kind, HRESULT_OK);
        r = hclient_reply(h, &waiter, REPLY_QUERY, HARNESS_TIMEOUT_MS);
        if (r.kind != HRESULT_ROWS)
            fprintf(stderr, "case %zu: kind=%d err=%u %s\n", i, r.kind, r.err_no, r.msg);
        CHECK_EQ(r.kind, HRESULT_ROWS);
        CHECK(fake_open(h, 1) <= cases[i].cap);
        CHECK(atomic_load(&pool_budget_of(&h->r, "n")->open) <= cases[i].cap);
out:
        for (unsigned k = 0; h && k < n_holders; k++)
            hclient_close(h, &holders[k]);
        if (h && waiter.fd >= 0)
            hclient_close(h, &waiter);
        harness_free(h);
        if (check_failures)
            return;
    }
}

/*
 * The wait list is FIFO, and a waiter that leaves from the middle is taken
 * out (in O(1): TAILQ) without disturbing the others: with one connection
 * held, three statements wait; the second client disconnects; the others
 * are served in order when the connection is free.
 */
static void test_wait_list_cancel_middle(void)
{
    struct hclient holder = { .fd = -1 }, w[3];
    unsigned n_w = 0;
    struct harness *h = harness_start(1, "pool_max_per_shard = 1\n", map_one, &holder);
    struct pool *p;
    struct hresult r;

    CHECK(h != NULL);
    CHECK(hold_txn(h, &holder));
    p = worker_pool(h->w, 0);
    CHECK(p != NULL);
    for (unsigned k = 0; k < 3; k++) {
        CHECK_EQ(hclient_ready(h, &w[k], 0), 0);
        n_w++;
        CHECK_EQ(hclient_query_send(&w[k], q_key), 0);
        CHECK(wait_state(h, &w[k], SESS_WAIT_POOL));
    }
    CHECK_EQ(pool_n_waiting(p), 3);
    CHECK(TAILQ_FIRST(&p->waiters) == w[0].s);
    CHECK(TAILQ_LAST(&p->waiters, pool_waitq) == w[2].s);
    hclient_close(h, &w[1]);
    CHECK_EQ(pool_n_waiting(p), 2);
    CHECK(TAILQ_FIRST(&p->waiters) == w[0].s);
    CHECK(TAILQ_NEXT(w[0].s, route.pool_link) == w[2].s);
    r = hclient_query(h, &holder, "COMMIT");
    CHECK_EQ(r.kind, HRESULT_OK);
    /* w[0] first; w[2] once w[0]'s statement is done. */
    r = hclient_reply(h, &w[0], REPLY_QUERY, HARNESS_TIMEOUT_MS);
    CHECK_EQ(r.kind, HRESULT_ROWS);
    r = hclient_reply(h, &w[2], REPLY_QUERY, HARNESS_TIMEOUT_MS);
    CHECK_EQ(r.kind, HRESULT_ROWS);
    CHECK_EQ(pool_n_waiting(p), 0);
    CHECK_EQ(fake_of(h, 1)->n_accepted, 1);
out:
    for (unsigned k = 0; h && k < n_w; k++)
        if (w[k].fd >= 0)
            hclient_close(h, &w[k]);
    if (h)
        hclient_close(h, &holder);
    harness_free(h);
}

/*
 * A connect that fails fails every waiter at once (error 2003), not one per
 * connect timeout, whichever phase of the login the shard dropped it in;
 * the sessions survive and their next statements get a connection.
 */
static void test_connect_failure_fails_all_waiters(void)
{
    static const enum fake_drop phases[] = { FAKE_DROP_ACCEPT, FAKE_DROP_LOGIN, FAKE_DROP_CHECK };

    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        struct hclient c[N_CLIENTS];
        unsigned n_c = 0;
        struct harness *h = harness_start(1, "pool_max_per_shard = 1\n", map_one, NULL);
        struct hresult r;

        CHECK(h != NULL);
        fake_of(h, 1)->drop = phases[i];
        fake_of(h, 1)->drop_times = 1;
        for (unsigned k = 0; k < N_CLIENTS; k++) {
            CHECK_EQ(hclient_ready(h, &c[k], 0), 0);
            n_c++;
        }
        for (unsigned k = 0; k < N_CLIENTS; k++)
            CHECK_EQ(hclient_query_send(&c[k], q_key), 0);
        for (unsigned k = 0; k < N_CLIENTS; k++) {
            /* Well within one connect timeout (2 s) for all of them. */
            r = hclient_reply(h, &c[k], REPLY_QUERY, 1000);
            if (r.kind != HRESULT_ERR)
                fprintf(stderr, "phase %zu client %u: kind=%d\n", i, k, r.kind);
            CHECK_EQ(r.kind, HRESULT_ERR);
            CHECK_EQ(r.err_no, WIRE_ER_CONNECT_TO_BACKEND);
        }
        CHECK_EQ(fake_of(h, 1)->n_accepted, 1);
        CHECK_EQ(pool_n_waiting(worker_pool(h->w, 0)), 0);
        for (unsigned k = 0; k < N_CLIENTS; k++) {
            r = hclient_query(h, &c[k], q_key);
            CHECK_EQ(r.kind, HRESULT_ROWS);
        }
out:
        for (unsigned k = 0; h && k < n_c; k++)
            hclient_close(h, &c[k]);
        harness_free(h);
        if (check_failures)
            return;
    }
}

/*
 * A worker freed (shutdown) while its pool is still making a connection
 * frees that connection too: the pool knows its connecting backends, not
 * only their number.
 */
static void test_free_while_connecting(void)
{
    static const enum fake_drop phases[] = { FAKE_DROP_NONE, FAKE_DROP_LOGIN };

    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        struct hclient c = { .fd = -1 };
        struct harness *h = harness_start(1, NULL, map_one, &c);

        CHECK(h != NULL);
        fake_of(h, 1)->drop = phases[i];
        CHECK_EQ(hclient_query_send(&c, q_key), 0);
        CHECK(wait_state(h, &c, SESS_WAIT_POOL));
        CHECK_EQ(worker_pool(h->w, 0)->n_connecting, 1);
        harness_free(h);        /* kills the session, frees the pool */
        h = NULL;
        close(c.fd);
        CHECK_EQ(harness_leak_check(), 0);
out:
        harness_free(h);
        if (check_failures)
            return;
    }
}

int main(void)
{
    RUN(test_budget_shared);
    RUN(test_wait_list_cancel_middle);
    RUN(test_connect_failure_fails_all_waiters);
    RUN(test_free_while_connecting);
    return check_exit();
}
