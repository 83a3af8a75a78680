/*
 * tests/unit/test_zkstore_acl.c - the text of <root>/routers that carries
 * the registrations' ACL (shardmap/zkstore_int.h): what init writes, a
 * router reads back; anything else in that node is refused, never
 * half-used.
 */
#include "shardmap/zkstore_int.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_round_trip(void)
{
    static char digest[] = "digest";
    static char admin[] = "admin:YaHmiqvfMxKPOCYiCVM/viyynOY=";
    static char router[] = "router:dJH5hrx7xstP00MgDgmEvDFcbLI=";
    struct ACL in[2] = {
        { ZOO_PERM_ALL, { digest, admin } },
        { ZOO_PERM_READ | ZOO_PERM_WRITE | ZOO_PERM_CREATE | ZOO_PERM_DELETE,
          { digest, router } },
    };
    struct ACL out[ZKR_REG_ACL_MAX];
    char *ids[ZKR_REG_ACL_MAX];
    char text[1024] = "";

    zkr_reg_acl_format(&in[0], text, sizeof(text));
    zkr_reg_acl_format(&in[1], text, sizeof(text));
    CHECK_STREQ(text, "acl digest:admin:YaHmiqvfMxKPOCYiCVM/viyynOY= cdrwa\n"
                      "acl digest:router:dJH5hrx7xstP00MgDgmEvDFcbLI= cdrw\n");
    CHECK_EQ(zkr_reg_acl_parse(text, out, ids), 2);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(out[i].perms, in[i].perms);
        CHECK_STREQ(out[i].id.scheme, "digest");
        CHECK_STREQ(out[i].id.id, in[i].id.id);
    }
out:;
}

static void test_refusals(void)
{
    static const struct {
        const char *text;
        int want;
    } cases[] = {
        { "", 0 },                                  /* open cluster: none */
        { "\n# comment\n\n", 0 },
        { "acl world:anyone r\n", 1 },
        { "acl digest:u:h= cdrwa", 1 },             /* no final newline */
        { "acl digest:u:h=\n", -1 },                /* no permissions */
        { "acl digest:u:h= \n", -1 },
        { "acl digest:u:h= rx\n", -1 },             /* unknown permission */
        { "acl nocolon r\n", -1 },
        { "master=127.0.0.1:1\n", -1 },             /* not an acl line */
        { "acl a:1 r\nacl a:2 r\nacl a:3 r\nacl a:4 r\nacl a:5 r\nacl a:6 r\n"
          "acl a:7 r\nacl a:8 r\nacl a:9 r\n", -1 },  /* more than ZKR_REG_ACL_MAX */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ACL out[ZKR_REG_ACL_MAX];
        char *ids[ZKR_REG_ACL_MAX];
        char *copy = strdup(cases[i].text);
        int n = zkr_reg_acl_parse(copy, out, ids);

        if (n != cases[i].want)
            fprintf(stderr, "case %zu: got %d\n", i, n);
        free(copy);
        CHECK_EQ(n, cases[i].want);
    }
out:;
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_refusals);
    return check_exit();
}
