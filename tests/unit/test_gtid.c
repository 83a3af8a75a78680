/*
 * tests/unit/test_gtid.c - GTID positions: parsing, formatting, and the
 * "holds everything the other holds" relation promotion rests on.
 */
#include "protocol/gtid.h"

#include <string.h>

#include "check.h"

static int parse(const char *s, struct gtid_pos *p)
{
    return gtid_parse(s, strlen(s), p);
}

static void test_parse_format(void)
{
    static const char *const good[] = { "", "0-1-25", "0-1-25,1-7-3", "4294967295-1-18446744073709551615" };
    static const char *const bad[] = { "0-1", "0-1-", "-1-2", "0-1-2,", ",0-1-2", "0-1-2,0-3-4",
                                       "a-1-2", "0-1-2 3", "4294967296-1-2", "0-1-18446744073709551616",
                                       "0--1-2", "0-1-2;1-1-1" };
    struct gtid_pos p;
    char buf[256];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_EQ(parse(good[i], &p), 0);
        CHECK_EQ(gtid_format(&p, buf, sizeof(buf)), (int)strlen(good[i]));
        CHECK_STREQ(buf, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &p) != -1)
            fprintf(stderr, "accepted '%s'\n", bad[i]);
        CHECK_EQ(parse(bad[i], &p), -1);
    }
    CHECK_EQ(parse(" 0-1-5, 1-2-3 ", &p), 0);
    CHECK_EQ(p.n, 2);
    CHECK_EQ(p.g[1].seq, 3);
    CHECK_EQ(gtid_format(&p, buf, 5), -1);
out:;
}

static void test_covers(void)
{
    static const struct {
        const char *a, *b;
        bool        covers;
    } cases[] = {
        { "0-1-25", "0-1-25", true },
        { "0-1-26", "0-1-25", true },
        { "0-1-24", "0-1-25", false },
        { "0-2-30", "0-1-25", true },          /* server id does not matter */
        { "0-1-25", "", true },
        { "", "0-1-1", false },
        { "0-1-25,1-1-3", "1-1-3,0-1-25", true },
        { "0-1-25", "0-1-25,1-1-3", false },   /* a domain <a> lacks */
        { "0-1-25,1-1-2", "0-1-20,1-1-3", false },
    };
    struct gtid_pos a, b;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_EQ(parse(cases[i].a, &a), 0);
        CHECK_EQ(parse(cases[i].b, &b), 0);
        if (gtid_covers(&a, &b) != cases[i].covers)
            fprintf(stderr, "case %zu: %s covers %s\n", i, cases[i].a, cases[i].b);
        CHECK_EQ(gtid_covers(&a, &b), cases[i].covers);
    }
out:;
}

int main(void)
{
    RUN(test_parse_format);
    RUN(test_covers);
    return check_exit();
}
