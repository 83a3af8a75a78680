/*
 * tests/unit/test_rules.c - operator query rules: compile errors, order,
 * deny/allow semantics on analyzer results, hit counters, bad patterns on
 * big inputs, and concurrent matching from several threads.
 */
#include "router/rules.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "protocol/analyze.h"

static void test_compile_errors(void)
{
    struct rules *r = rules_new();
    char *err = NULL;
    CHECK(r != NULL);
    CHECK_EQ(rules_add(r, "SELECT .* FROM big", RULES_DENY, "no big", &err), 0);
    CHECK(err == NULL);
    CHECK_EQ(rules_add(r, "(unclosed", RULES_DENY, NULL, &err), -1);
    CHECK(err != NULL);
    CHECK(strstr(err, "rule 2") != NULL);
    CHECK(strstr(err, "offset") != NULL);
    free(err);
    err = NULL;
    CHECK_EQ(rules_count(r), 1);
    CHECK_EQ(rules_add(r, "x", (enum rules_action)7, NULL, &err), -1);
    free(err);
    err = NULL;
    CHECK_EQ(rules_count(r), 1);
    CHECK(rules_get(r, 1) == NULL);
    CHECK_STREQ(rules_rule_pattern(rules_get(r, 0)), "SELECT .* FROM big");
    CHECK_STREQ(rules_rule_message(rules_get(r, 0)), "shardwire: no big");
out:
    free(err);
    rules_free(r);
}

static void test_order_and_hits(void)
{
    struct rules *r = rules_new();
    char *err = NULL;
    const struct rules_rule *m;
    CHECK(r != NULL);
    CHECK_EQ(rules_add(r, "(?i)from\\s+audit_log", RULES_DENY, "audit_log is off limits", &err), 0);
    CHECK_EQ(rules_add(r, "^SHOW PROCESSLIST$", RULES_ALLOW, NULL, &err), 0);
    CHECK_EQ(rules_add(r, "SLEEP\\(", RULES_DENY, "shardwire: no sleeping", &err), 0);
    CHECK_EQ(rules_add(r, "audit", RULES_ALLOW, NULL, &err), 0);

    m = rules_match(r, "SELECT * FROM orders WHERE userid = 1", 37);
    CHECK(m == NULL);
    m = rules_match(r, "select * FROM\n  AUDIT_LOG where userid = 1", 42);
    CHECK(m == rules_get(r, 0));            /* first match wins, (?i) and \s span lines */
    CHECK_EQ(rules_rule_action(m), RULES_DENY);
    m = rules_match(r, "SHOW PROCESSLIST", 16);
    CHECK(m == rules_get(r, 1));
    m = rules_match(r, "SHOW PROCESSLIST ", 17);
    CHECK(m == NULL);
    m = rules_match(r, "SELECT SLEEP(5)", 15);
    CHECK(m == rules_get(r, 2));
    CHECK_STREQ(rules_rule_message(m), "shardwire: no sleeping");
    /* the length bounds the subject: "SLEEP(" is beyond it */
    m = rules_match(r, "SELECT SLEEP(5)", 10);
    CHECK(m == NULL);
    /* bytes after a NUL still count */
    m = rules_match(r, "x\0SLEEP(1)", 10);
    CHECK(m == rules_get(r, 2));

    CHECK_EQ(rules_rule_hits(rules_get(r, 0)), 1);
    CHECK_EQ(rules_rule_hits(rules_get(r, 1)), 1);
    CHECK_EQ(rules_rule_hits(rules_get(r, 2)), 2);
    CHECK_EQ(rules_rule_hits(rules_get(r, 3)), 0);
    CHECK(rules_match(NULL, "x", 1) == NULL);
out:
    free(err);
    rules_free(r);
}

/* deny overrides any decision; allow only lifts an allowable reject. The
 * results are built by hand: this test links only the rules library (which
 * analyzer rejects are allowable is checked by the analyzer's corpus). */
static void fake(struct analyze_result *res, enum analyze_kind kind, int allowable)
{
    memset(res, 0, sizeof(*res));
    res->kind = kind;
    res->stmt = ANALYZE_STMT_SELECT;
    res->param_index = -1;
    res->allowable = allowable ? 1 : 0;
    if (kind == ANALYZE_REJECT) {
        res->err_no = 1235;
        memcpy(res->sqlstate, "42000", 6);
        res->msg = "shardwire: analyzer says no";
    }
    if (kind == ANALYZE_ROUTE) {
        memcpy(res->key, "1", 1);
        res->key_len = 1;
    }
}

static void test_apply(void)
{
    struct rules *r = rules_new();
    struct analyze_result res;
    char *err = NULL;
    CHECK(r != NULL);
    CHECK_EQ(rules_add(r, "orders", RULES_DENY, "orders are frozen", &err), 0);
    CHECK_EQ(rules_add(r, ".", RULES_ALLOW, NULL, &err), 0);

    /* deny: a routable statement is refused */
    fake(&res, ANALYZE_ROUTE, 0);
    CHECK_EQ(rules_apply(rules_match(r, "SELECT * FROM orders WHERE userid = 1", 37), &res), 1);
    CHECK_EQ(res.kind, ANALYZE_REJECT);
    CHECK_EQ(res.err_no, 1227);
    CHECK_STREQ(res.sqlstate, "42000");
    CHECK_STREQ(res.msg, "shardwire: orders are frozen");
    CHECK_EQ(res.param_index, -1);
    CHECK_EQ(res.key_len, 0);
    CHECK(!res.allowable);

    /* allow: an allowable reject (e.g. SHOW PROCESSLIST) becomes SESSION */
    fake(&res, ANALYZE_REJECT, 1);
    CHECK_EQ(rules_apply(rules_match(r, "SHOW PROCESSLIST", 16), &res), 1);
    CHECK_EQ(res.kind, ANALYZE_SESSION);
    CHECK_EQ(res.stmt, ANALYZE_STMT_OTHER);

    /* allow never lifts other rejects (unconfined tables, DDL, sql_mode) */
    fake(&res, ANALYZE_REJECT, 0);
    CHECK_EQ(rules_apply(rules_match(r, "SELECT * FROM items", 19), &res), 0);
    CHECK_EQ(res.kind, ANALYZE_REJECT);
    CHECK_STREQ(res.msg, "shardwire: analyzer says no");

    /* allow leaves routed and session statements alone */
    fake(&res, ANALYZE_ROUTE, 0);
    CHECK_EQ(rules_apply(rules_match(r, "SELECT * FROM items WHERE userid = 1", 36), &res), 0);
    CHECK_EQ(res.kind, ANALYZE_ROUTE);
    fake(&res, ANALYZE_SESSION, 0);
    CHECK_EQ(rules_apply(rules_match(r, "BEGIN", 5), &res), 0);
    CHECK_EQ(res.kind, ANALYZE_SESSION);
    CHECK_EQ(rules_apply(NULL, &res), 0);
out:
    free(err);
    rules_free(r);
}

/* A catastrophic pattern on a big statement ends at the match limit:
 * a deny rule then fails closed, an allow rule fails open. */
static void test_match_limit(void)
{
    struct rules *deny = rules_new(), *allow = rules_new();
    char *err = NULL;
    size_t len = 100000;
    char *big = malloc(len);
    CHECK(deny && allow && big);
    memset(big, 'a', len);
    big[len - 1] = '!';
    CHECK_EQ(rules_add(deny, "(a|aa)+$", RULES_DENY, NULL, &err), 0);
    CHECK_EQ(rules_add(allow, "(a|aa)+$", RULES_ALLOW, NULL, &err), 0);
    CHECK(rules_match(deny, big, len) == rules_get(deny, 0));
    CHECK(rules_match(allow, big, len) == NULL);
    CHECK_EQ(rules_rule_errors(rules_get(deny, 0)), 1);
    CHECK_EQ(rules_rule_errors(rules_get(allow, 0)), 1);
    CHECK_STREQ(rules_rule_message(rules_get(deny, 0)),
                "shardwire: statement blocked by an operator rule");
out:
    free(err);
    free(big);
    rules_free(deny);
    rules_free(allow);
}

struct worker_arg {
    struct rules *r;
    int           matched;
};

static void *worker(void *p)
{
    struct worker_arg *w = p;
    for (int i = 0; i < 20000; i++) {
        const char *q = (i % 2) ? "SELECT * FROM audit WHERE userid = 1" : "SELECT 1";
        if (rules_match(w->r, q, strlen(q)))
            w->matched++;
    }
    return NULL;
}

static void test_threads(void)
{
    struct rules *r = rules_new();
    char *err = NULL;
    pthread_t th[4];
    struct worker_arg args[4];
    int started = 0;
    CHECK(r != NULL);
    CHECK_EQ(rules_add(r, "FROM audit", RULES_DENY, NULL, &err), 0);
    for (int i = 0; i < 4; i++) {
        args[i].r = r;
        args[i].matched = 0;
        CHECK_EQ(pthread_create(&th[i], NULL, worker, &args[i]), 0);
        started++;
    }
out:
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (started == 4) {
        for (int i = 0; i < 4; i++)
            if (args[i].matched != 10000)
                check_failures++;
        if (rules_rule_hits(rules_get(r, 0)) != 40000) {
            fprintf(stderr, "hits %llu != 40000\n",
                    (unsigned long long)rules_rule_hits(rules_get(r, 0)));
            check_failures++;
        }
    }
    free(err);
    rules_free(r);
}

int main(void)
{
    RUN(test_compile_errors);
    RUN(test_order_and_hits);
    RUN(test_apply);
    RUN(test_match_limit);
    RUN(test_threads);
    return check_exit();
}
