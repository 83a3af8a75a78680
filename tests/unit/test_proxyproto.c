/*
 * tests/unit/test_proxyproto.c - PROXY protocol v1/v2 headers (valid ones
 * from the spec's examples, every prefix of them, and the malformed ones a
 * strict reader refuses) and trusted-network matching.
 */
#include "protocol/proxyproto.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Builds a v2 header: signature, <ver_cmd>, <fam>, <body_len> bytes of
 * <body>. Returns its length. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body,
                 size_t body_len)
{
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(body_len >> 8);
    out[15] = (uint8_t)body_len;
    if (body_len)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

struct v1_case {
    const char *text;
    int         want;      /* 1 parsed, -1 refused */
    const char *src;       /* formatted source when relayed, "" for LOCAL */
};

static void test_v1(void)
{
    static const struct v1_case cases[] = {
        {"PROXY TCP4 192.168.0.1 192.168.0.11 56324 3306\r\n", 1, "192.168.0.1:56324"},
        {"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", 1, "[2001:db8::1]:1"},
        {"PROXY TCP4 10.0.0.1 10.0.0.2 0 0\r\n", 1, "10.0.0.1:0"},
        {"PROXY UNKNOWN\r\n", 1, ""},
        {"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 1, ""},
        {"PROXY TCP4 192.168.0.1 192.168.0.11 56324 65536\r\n", -1, NULL},
        {"PROXY TCP4 192.168.0.1 192.168.0.11 056324 3306\r\n", -1, NULL},
        {"PROXY TCP4 192.168.0.1 192.168.0.11 -1 3306\r\n", -1, NULL},
        {"PROXY TCP4 192.168.0.1  192.168.0.11 1 3306\r\n", -1, NULL},
        {"PROXY TCP4 192.168.0.1 192.168.0.11 1 3306 7\r\n", -1, NULL},
        {"PROXY TCP4 192.168.0.1 192.168.0.11 1\r\n", -1, NULL},
        {"PROXY TCP4 2001:db8::1 192.168.0.11 1 2\r\n", -1, NULL},
        {"PROXY TCP6 192.168.0.1 2001:db8::2 1 2\r\n", -1, NULL},
        {"PROXY TCP4 192.168.0.256 192.168.0.11 1 2\r\n", -1, NULL},
        {"PROXY UDP4 192.168.0.1 192.168.0.11 1 2\r\n", -1, NULL},
        {"PROXY UNKNOWNX\r\n", -1, NULL},
        {"PROXY TCP4 192.168.0.1 192.168.0.11 1 2\n", -1, NULL},
        {"PROXY TCP4 192.168.0.1 192.168.0.11 1 2\rX", -1, NULL},
        {"proxy TCP4 192.168.0.1 192.168.0.11 1 2\r\n", -1, NULL},
        {"\x0a\x00\x00\x00\x0a" "5.5.5-10.11", -1, NULL},   /* a MySQL greeting */
    };
    struct proxyproto_hdr h;
    char src[64];
    const char *err = NULL;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct v1_case *c = &cases[i];
        size_t len = strlen(c->text);
        ssize_t r = proxyproto_parse((const uint8_t *)c->text, len, &h, &err);

        if ((c->want > 0) != (r > 0))
            fprintf(stderr, "case '%s': got %zd (%s)\n", c->text, r, r < 0 ? err : "");
        if (c->want < 0) {
            CHECK_EQ(r, -1);
            CHECK(err != NULL && err[0] != '\0');
            continue;
        }
        CHECK_EQ(r, (ssize_t)len);
        CHECK_EQ(h.version, 1);
        if (c->src[0]) {
            CHECK_EQ(h.cmd, PROXYPROTO_PROXY);
            CHECK_EQ(proxyproto_format_src(&h, src, sizeof(src)), 0);
            CHECK_STREQ(src, c->src);
        } else {
            CHECK_EQ(h.cmd, PROXYPROTO_LOCAL);
            CHECK_EQ(proxyproto_format_src(&h, src, sizeof(src)), -1);
        }
        /* Every proper prefix of a valid header needs more bytes. */
        for (size_t k = 0; k < len; k++)
            CHECK_EQ(proxyproto_parse((const uint8_t *)c->text, k, &h, &err), 0);
    }

    /* The MySQL bytes after the header are not part of it. */
    static const char glued[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n\x21\x00\x00\x01";
    CHECK_EQ(proxyproto_parse((const uint8_t *)glued, sizeof(glued) - 1, &h, &err),
             (ssize_t)strlen("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));

    /* 107 bytes with no CRLF: refused, not waited on forever. */
    char longer[200];
    memset(longer, '1', sizeof(longer));
    memcpy(longer, "PROXY TCP4 ", 11);
    CHECK_EQ(proxyproto_parse((const uint8_t *)longer, 106, &h, &err), 0);
    CHECK_EQ(proxyproto_parse((const uint8_t *)longer, 107, &h, &err), -1);
    CHECK_EQ(proxyproto_parse((const uint8_t *)longer, sizeof(longer), &h, &err), -1);
out:;
}

static void test_v2(void)
{
    uint8_t buf[4096], body[2100];
    struct proxyproto_hdr h;
    char src[64];
    const char *err = NULL;
    size_t n;

    /* TCP over IPv4: 192.0.2.1:40000 -> 192.0.2.2:3306, then a TLV. */
    static const uint8_t v4[] = {192, 0, 2, 1, 192, 0, 2, 2, 0x9c, 0x40, 0x0c, 0xea,
                                 0x02, 0x00, 0x03, 'a', 'b', 'c'};
    n = v2(buf, 0x21, 0x11, v4, sizeof(v4));
    CHECK_EQ(proxyproto_parse(buf, n, &h, &err), (ssize_t)n);
    CHECK_EQ(h.version, 2);
    CHECK_EQ(h.cmd, PROXYPROTO_PROXY);
    CHECK_EQ(h.family, AF_INET);
    CHECK_EQ(h.dst_port, 3306);
    CHECK_EQ(proxyproto_format_src(&h, src, sizeof(src)), 0);
    CHECK_STREQ(src, "192.0.2.1:40000");
    for (size_t k = 0; k < n; k++)
        CHECK_EQ(proxyproto_parse(buf, k, &h, &err), 0);

    /* TCP over IPv6 */
    memset(body, 0, 36);
    body[0] = 0x20;
    body[1] = 0x01;
    body[15] = 7;
    body[32] = 0x01;
    body[33] = 0x02;
    n = v2(buf, 0x21, 0x21, body, 36);
    CHECK_EQ(proxyproto_parse(buf, n, &h, &err), (ssize_t)n);
    CHECK_EQ(h.family, AF_INET6);
    CHECK_EQ(proxyproto_format_src(&h, src, sizeof(src)), 0);
    CHECK_STREQ(src, "[2001::7]:258");

    /* LOCAL, with or without an address block: the balancer itself. */
    n = v2(buf, 0x20, 0x00, NULL, 0);
    CHECK_EQ(proxyproto_parse(buf, n, &h, &err), 16);
    CHECK_EQ(h.cmd, PROXYPROTO_LOCAL);
    n = v2(buf, 0x20, 0x11, v4, 12);
    CHECK_EQ(proxyproto_parse(buf, n, &h, &err), 28);
    CHECK_EQ(h.cmd, PROXYPROTO_LOCAL);
    /* PROXY over UNSPEC or a unix socket: no TCP address to use. */
    n = v2(buf, 0x21, 0x00, NULL, 0);
    CHECK_EQ(proxyproto_parse(buf, n, &h, &err), 16);
    CHECK_EQ(h.cmd, PROXYPROTO_LOCAL);
    memset(body, 'x', 216);
    n = v2(buf, 0x21, 0x31, body, 216);
    CHECK_EQ(proxyproto_parse(buf, n, &h, &err), (ssize_t)n);
    CHECK_EQ(h.cmd, PROXYPROTO_LOCAL);

    /* Refused: version 1 or 3 in the v2 header, command 2, unknown family
     * or protocol, an address block too short for its family, UDP, a body
     * past the bound (refused as soon as its length is read). */
    static const struct { uint8_t vc, fam; size_t len; } bad[] = {
        {0x11, 0x11, 12}, {0x31, 0x11, 12}, {0x22, 0x11, 12}, {0x21, 0x41, 12},
        {0x21, 0x13, 12}, {0x21, 0x11, 11}, {0x21, 0x21, 35}, {0x21, 0x12, 12},
        {0x21, 0x11, 2049},
    };
    memset(body, 0, sizeof(body));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = v2(buf, bad[i].vc, bad[i].fam, body, bad[i].len);
        err = NULL;
        CHECK_EQ(proxyproto_parse(buf, n, &h, &err), -1);
        CHECK(err != NULL);
    }
    n = v2(buf, 0x21, 0x11, body, 2049);
    CHECK_EQ(proxyproto_parse(buf, 16, &h, &err), -1);
    n = v2(buf, 0x21, 0x11, body, 2048);
    CHECK_EQ(proxyproto_parse(buf, 16, &h, &err), 0);
    CHECK_EQ(proxyproto_parse(buf, n, &h, &err), (ssize_t)n);

    /* A wrong byte anywhere in the signature. */
    for (size_t i = 0; i < 12; i++) {
        n = v2(buf, 0x21, 0x11, v4, 12);
        buf[i] ^= 0x40;
        CHECK_EQ(proxyproto_parse(buf, n, &h, &err), -1);
    }
    CHECK_EQ(proxyproto_parse(buf, 0, &h, &err), 0);
out:;
}

static void test_nets(void)
{
    struct proxyproto_net nets[4];
    uint8_t a4[4], a6[16];

    static const char *const bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129",
                                      "10.0.0.0/8x", "10.0.0/8", "10.0.0.0/0008", "host"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(proxyproto_net_parse(bad[i], strlen(bad[i]), &nets[0]), -1);

    CHECK_EQ(proxyproto_net_parse("10.1.2.3/8", 10, &nets[0]), 0);
    CHECK_EQ(nets[0].prefix, 8);
    CHECK_EQ(proxyproto_net_parse("127.0.0.1", 9, &nets[1]), 0);
    CHECK_EQ(nets[1].prefix, 32);
    CHECK_EQ(proxyproto_net_parse("fd00::/8", 8, &nets[2]), 0);
    CHECK_EQ(proxyproto_net_parse("192.168.1.0/23", 14, &nets[3]), 0);

    static const struct { const char *ip; int family; bool in; } peers[] = {
        {"10.200.1.1", AF_INET, true}, {"11.0.0.1", AF_INET, false},
        {"127.0.0.1", AF_INET, true}, {"127.0.0.2", AF_INET, false},
        {"192.168.0.255", AF_INET, true}, {"192.168.1.7", AF_INET, true},
        {"192.168.2.0", AF_INET, false},
        {"fd12::1", AF_INET6, true}, {"fe00::1", AF_INET6, false},
        {"::ffff:10.9.9.9", AF_INET6, true}, {"::ffff:12.9.9.9", AF_INET6, false},
        {"::1", AF_INET6, false},
    };
    for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
        uint8_t *a = peers[i].family == AF_INET ? a4 : a6;
        CHECK_EQ(inet_pton(peers[i].family, peers[i].ip, a), 1);
        if (proxyproto_net_match(nets, 4, peers[i].family, a) != peers[i].in)
            fprintf(stderr, "peer %s\n", peers[i].ip);
        CHECK(proxyproto_net_match(nets, 4, peers[i].family, a) == peers[i].in);
    }
    CHECK(!proxyproto_net_match(nets, 0, AF_INET, a4));
    CHECK_EQ(proxyproto_net_parse("0.0.0.0/0", 9, &nets[0]), 0);
    CHECK_EQ(inet_pton(AF_INET, "8.8.8.8", a4), 1);
    CHECK(proxyproto_net_match(nets, 1, AF_INET, a4));
out:;
}

int main(void)
{
    RUN(test_v1);
    RUN(test_v2);
    RUN(test_nets);
    return check_exit();
}
