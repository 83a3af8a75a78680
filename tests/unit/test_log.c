/*
 * tests/unit/test_log.c - the rate limiter for repeated log lines.
 */
#include "router/log.h"

#include "check.h"

static void test_limit(void)
{
    struct log_limit l = { 0, 0 };
    unsigned sup = 99;

    CHECK(log_limit_pass(&l, 1000, 5000, &sup));
    CHECK_EQ(sup, 0);
    CHECK(!log_limit_pass(&l, 1001, 5000, &sup));
    CHECK(!log_limit_pass(&l, 5999, 5000, &sup));
    CHECK(log_limit_pass(&l, 6000, 5000, &sup));
    CHECK_EQ(sup, 2);
    CHECK(!log_limit_pass(&l, 6001, 5000, &sup));
    CHECK(log_limit_pass(&l, 20000, 5000, &sup));
    CHECK_EQ(sup, 1);
out:;
}

static void test_levels(void)
{
    enum log_level lv;

    CHECK_EQ(log_parse_level("debug", &lv), 0);
    CHECK_EQ(lv, LOG_DEBUG);
    CHECK_EQ(log_parse_level("WARN", &lv), 0);
    CHECK_EQ(lv, LOG_WARN);
    CHECK_EQ(log_parse_level("loud", &lv), -1);
out:;
}

int main(void)
{
    RUN(test_limit);
    RUN(test_levels);
    return check_exit();
}
