/*
 * tests/unit/check.h - the whole unit-test framework.
 *
 * A test is `static void test_x(void)` ending in an `out:` label that frees
 * what it allocated; CHECK* print the failing expression, count the failure
 * and jump to `out:`, so cleanup always runs (as in libevent's tinytest).
 * main() runs each with RUN() and returns check_exit().
 */
#ifndef SHARDWIRE_TESTS_CHECK_H
#define SHARDWIRE_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static unsigned check_failures;
static unsigned check_tests;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__,     \
                    #cond);                                                      \
            check_failures++;                                                    \
            goto out;                                                            \
        }                                                                        \
    } while (0)

/* Integers (any width up to 64 bits; compared as intmax_t). */
#define CHECK_EQ(a, b)                                                           \
    do {                                                                         \
        intmax_t check_a_ = (intmax_t)(a), check_b_ = (intmax_t)(b);             \
        if (check_a_ != check_b_) {                                              \
            fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %jd != %jd\n",      \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);             \
            check_failures++;                                                    \
            goto out;                                                            \
        }                                                                        \
    } while (0)

/* NUL-terminated strings; NULL compares unequal to everything. */
#define CHECK_STREQ(a, b)                                                        \
    do {                                                                         \
        const char *check_a_ = (a), *check_b_ = (b);                             \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_)) {\
            fprintf(stderr, "%s:%d: CHECK_STREQ(%s, %s) failed: \"%s\" != \"%s\"\n", \
                    __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",  \
                    check_b_ ? check_b_ : "(null)");                             \
            check_failures++;                                                    \
            goto out;                                                            \
        }                                                                        \
    } while (0)

#define RUN(fn)                                                                  \
    do {                                                                         \
        unsigned check_before_ = check_failures;                                 \
        check_tests++;                                                           \
        fn();                                                                    \
        fprintf(stderr, "%s %s\n", check_failures == check_before_ ? "ok  " : "FAIL", #fn); \
    } while (0)

static inline int check_exit(void)
{
    fprintf(stderr, "%u tests, %u failed\n", check_tests, check_failures);
    return check_failures ? 1 : 0;
}

#endif
