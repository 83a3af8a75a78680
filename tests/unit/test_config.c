/*
 * tests/unit/test_config.c - the config parser: the documented example
 * parses, and each kind of mistake is refused with a message naming it.
 */
#include "router/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char base[] =
    "database = app\n"
    "map_file = /tmp/map.txt\n"
    "backend_user = shardwire\n"
    "user = app *72B37E3F4D899EDC98A9363172669E192CE424D5\n";

static void test_example_file_parses(void)
{
    const char *root = getenv("SW_SOURCE_ROOT");
    char path[4096], *err = NULL;
    struct config *c = NULL;

    CHECK(root != NULL);
    snprintf(path, sizeof(path), "%s/docs/shardwire.conf.example", root);
    c = config_load(path, &err);
    if (!c)
        fprintf(stderr, "%s\n", err);
    CHECK(c != NULL);
    CHECK_EQ(c->listen_port, 6033);
    CHECK_STREQ(c->analyze.database, "app");
    CHECK_STREQ(c->analyze.key_columns[0], "userid");
    CHECK_EQ(c->n_users, 1);
    CHECK_EQ(c->max_allowed_packet, 64u << 20);
    CHECK(c->workers >= 1);
out:
    free(err);
    config_free(c);
}

static void test_values(void)
{
    char text[2048], *err = NULL;
    struct config *c = NULL;

    snprintf(text, sizeof(text),
             "%slisten = [::1]:7000\nworkers = 3\nshard_key = user_id, uid\n"
             "max_allowed_packet = 1M   # trailing comment\n"
             "rule = deny /a#b\\s+c/ \"no a#b here\"\nrule = allow /^SHOW/\n"
             "tls_cert = /c.pem\ntls_key = /k.pem\nrequire_secure_transport = on\n"
             "proxy_protocol_networks = 10.0.0.0/8, 127.0.0.1 fd00::/8\n", base);
    c = config_parse(text, "t", &err);
    if (!c)
        fprintf(stderr, "%s\n", err);
    CHECK(c != NULL);
    CHECK_STREQ(c->listen_host, "::1");
    CHECK_EQ(c->listen_port, 7000);
    CHECK_EQ(c->workers, 3);
    CHECK_EQ(c->analyze.n_key_columns, 2);
    CHECK_STREQ(c->analyze.key_columns[1], "uid");
    CHECK_EQ(c->max_allowed_packet, 1u << 20);
    CHECK_EQ(c->n_rules, 2);
    CHECK_STREQ(c->rules[0].pattern, "a#b\\s+c");
    CHECK_STREQ(c->rules[0].message, "no a#b here");
    CHECK(c->rules[1].action == CONFIG_RULE_ALLOW);
    CHECK(c->require_secure_transport);
    CHECK_EQ(c->n_proxy_nets, 3);
    CHECK_EQ(c->proxy_nets[0].prefix, 8);
    CHECK_EQ(c->proxy_nets[1].prefix, 32);
    CHECK_EQ(c->proxy_nets[2].prefix, 8);
out:
    free(err);
    config_free(c);
}

static void test_errors_name_the_culprit(void)
{
    static const struct {
        const char *line;
        const char *want;     /* must appear in the message */
    } cases[] = {
        { "bogus = 1\n", "unknown key 'bogus'" },
        { "listen = 127.0.0.1\n", "HOST:PORT" },
        { "listen = 127.0.0.1:70000\n", "HOST:PORT" },
        { "workers = many\n", "not a number" },
        { "user = bob secret\n", "bad password hash" },
        { "user = app *72B37E3F4D899EDC98A9363172669E192CE424D5\n", "defined twice" },
        { "shard_key_type = float\n", "'int' or 'string'" },
        { "max_allowed_packet = 10\n", "1K..1G" },
        /* A suffix that would shift bits out must not wrap to 0 (never). */
        { "idle_timeout_ms = 17179869184G\n", "idle_timeout_ms" },
        { "idle_timeout_ms = 18014398509481984K\n", "idle_timeout_ms" },
        { "pool_idle_timeout_ms = 17592186044416M\n", "pool_idle_timeout_ms" },
        { "rule = deny no-slashes\n", "between slashes" },
        { "zookeeper = 127.0.0.1:2181\n", "exclude each other" },
        { "tls_cert = /c.pem\n", "go together" },
        { "just some words\n", "expected 'key = value'" },
        { "proxy_protocol_networks = 10.0.0.0/33\n", "'10.0.0.0/33' is not an address" },
        { "proxy_protocol_networks = 10.0.0.1, lb.example\n", "'lb.example'" },
    };
    char text[2048], *err = NULL;
    struct config *c = NULL;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", base, cases[i].line);
        c = config_parse(text, "t.conf", &err);
        CHECK(c == NULL);
        CHECK(err != NULL);
        if (!strstr(err, cases[i].want) || !strstr(err, "t.conf"))
            fprintf(stderr, "case %zu: message was: %s\n", i, err);
        CHECK(strstr(err, cases[i].want) != NULL);
        free(err);
        err = NULL;
    }
    /* Missing required keys. */
    c = config_parse("listen = 127.0.0.1:1\n", "t.conf", &err);
    CHECK(c == NULL && strstr(err, "'database' is required"));
out:
    free(err);
    config_free(c);
}

/* 'zookeeper' needs credentials or an explicit open ACL (docs/zookeeper.md). */
static void test_zookeeper_access(void)
{
    static const char zk_base[] =
        "database = app\nzookeeper = 127.0.0.1:2181\nbackend_user = shardwire\n"
        "user = app *72B37E3F4D899EDC98A9363172669E192CE424D5\n";
    static const struct {
        const char *line;
        const char *want;     /* NULL: accepted */
    } cases[] = {
        { "", "needs credentials" },
        { "zookeeper_acl = open\n", NULL },
        { "zookeeper_acl = protected\n", "needs credentials" },
        { "zookeeper_acl = maybe\n", "open|protected" },
        { "zookeeper_auth = digest:router:pw\n", NULL },
        { "zookeeper_auth = router:pw\n", "zookeeper_auth: credential must read digest:" },
        { "zookeeper_auth = digest:r:pw\nzookeeper_auth_file = /x\n", "exclude each other" },
        { "zookeeper_auth_file = /nonexistent/zk.secret\n", "/nonexistent/zk.secret" },
    };
    char text[2048], *err = NULL;
    struct config *c = NULL;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", zk_base, cases[i].line);
        c = config_parse(text, "t.conf", &err);
        if (cases[i].want == NULL) {
            if (!c)
                fprintf(stderr, "case %zu: %s\n", i, err);
            CHECK(c != NULL);
            if (strstr(cases[i].line, "zookeeper_auth")) {
                CHECK(c->have_zk_auth);
                CHECK_STREQ(c->zk_auth.user, "router");
                CHECK_STREQ(c->zk_auth.password, "pw");
                /* the text form is wiped once parsed */
                CHECK(strstr(c->zookeeper_auth, "pw") == NULL);
            } else {
                CHECK(!c->have_zk_auth && c->zookeeper_acl_open);
            }
            config_free(c);
            c = NULL;
            continue;
        }
        CHECK(c == NULL);
        if (!strstr(err, cases[i].want))
            fprintf(stderr, "case %zu: message was: %s\n", i, err);
        CHECK(strstr(err, cases[i].want) != NULL);
        CHECK(strstr(err, "pw") == NULL);
        free(err);
        err = NULL;
    }
out:
    free(err);
    config_free(c);
}

int main(void)
{
    RUN(test_example_file_parses);
    RUN(test_values);
    RUN(test_errors_name_the_culprit);
    RUN(test_zookeeper_access);
    return check_exit();
}
