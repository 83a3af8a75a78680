/*
 * tests/unit/test_decide.c - the routing decision shared by the router and
 * `shardctl explain`: the map's key settings win over the config's, the
 * router's analyzer options are set, and operator rules are applied after
 * the analyzer.
 */
#include "router/decide.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "protocol/analyze.h"
#include "router/config.h"
#include "router/rules.h"
#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"

static const char conf_text[] =
    "database = shop\n"
    "map_file = /tmp/none\n"
    "backend_user = x\n"
    "user = app -\n"
    "rule = deny /secret_table/ \"no secrets here\"\n"
    "rule = allow /^SHOW PROCESSLIST/\n";

static const char map_text[] =
    "version 3\nvbuckets 16\nkey_columns uid\nkey_type string\n"
    "shard s0 master=127.0.0.1:1\nvb 0-15 s0\n";

static void test_analyze_config(void)
{
    char *err = NULL;
    struct config *c = config_parse(conf_text, "t.conf", &err);
    struct smap *m = mapcodec_parse(map_text, strlen(map_text), &err);
    struct analyze_config out;

    CHECK(c != NULL && m != NULL);
    decide_analyze_config(&out, &c->analyze, NULL);
    CHECK_STREQ(out.database, "shop");
    CHECK_STREQ(out.key_columns[0], "userid");
    CHECK_EQ(out.multi_param_key, 1);
    decide_analyze_config(&out, &c->analyze, m);
    CHECK_STREQ(out.database, "shop");
    CHECK_STREQ(out.key_columns[0], "uid");
    CHECK_EQ(out.n_key_columns, 1);
    CHECK_EQ(out.key_type, ANALYZE_KEY_STRING);
    CHECK_EQ(out.multi_param_key, 1);
out:
    free(err);
    smap_unref(m);
    config_free(c);
}

static void test_rules_after_analyzer(void)
{
    static const struct {
        const char *sql;
        int rc;                    /* decide_statement() */
        enum analyze_kind kind;
        unsigned err_no;           /* for REJECT */
    } cases[] = {
        { "SELECT * FROM t WHERE userid = 42", 0, ANALYZE_ROUTE, 0 },
        { "SELECT * FROM secret_table WHERE userid = 42", 1, ANALYZE_REJECT, 1227 },
        { "SHOW PROCESSLIST", 1, ANALYZE_SESSION, 0 },
        { "SHOW FULL PROCESSLIST", 0, ANALYZE_REJECT, 0 },
        { "USE shop", 0, ANALYZE_LOCAL, 0 },
    };
    char *err = NULL;
    struct config *c = config_parse(conf_text, "t.conf", &err);
    struct rules *rules = NULL;
    struct analyze *a = NULL;
    struct analyze_config cfg;

    CHECK(c != NULL);
    CHECK_EQ(decide_rules_load(c, &rules, &err), 0);
    CHECK(rules != NULL);
    decide_analyze_config(&cfg, &c->analyze, NULL);
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct analyze_result r;
        int rc = decide_statement(a, rules, cases[i].sql, strlen(cases[i].sql), &r);

        if (rc != cases[i].rc || r.kind != cases[i].kind)
            fprintf(stderr, "case %zu: rc %d kind %d\n", i, rc, (int)r.kind);
        CHECK_EQ(rc, cases[i].rc);
        CHECK_EQ(r.kind, cases[i].kind);
        if (cases[i].err_no)
            CHECK_EQ(r.err_no, cases[i].err_no);
    }
    /* no rules: the analyzer's decision */
    {
        struct analyze_result r;
        const char *sql = "SELECT * FROM secret_table WHERE userid = 42";

        CHECK_EQ(decide_statement(a, NULL, sql, strlen(sql), &r), 0);
        CHECK_EQ(r.kind, ANALYZE_ROUTE);
    }
out:
    free(err);
    analyze_free(a);
    rules_free(rules);
    config_free(c);
}

static void test_bad_rule(void)
{
    char *err = NULL;
    struct config *c = config_parse("database = shop\nmap_file = /x\nbackend_user = x\n"
                                    "user = app -\nrule = deny /(unclosed/ \"x\"\n", "t.conf",
                                    &err);
    struct rules *rules = NULL;

    CHECK(c != NULL);
    CHECK_EQ(decide_rules_load(c, &rules, &err), -1);
    CHECK(err != NULL && strstr(err, "rule") != NULL);
out:
    free(err);
    rules_free(rules);
    config_free(c);
}

int main(void)
{
    RUN(test_analyze_config);
    RUN(test_rules_after_analyzer);
    RUN(test_bad_rule);
    return check_exit();
}
