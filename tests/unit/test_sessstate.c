/*
 * tests/unit/test_sessstate.c - session state matching: the text decides,
 * never the hash alone.
 */
#include "router/sessstate.h"

#include "check.h"

static void test_equal_needs_same_text(void)
{
    char *a[] = { "SET SESSION wait_timeout=100" };
    char *b[] = { "SET SESSION wait_timeout=200" };
    struct sessstate x = { 0 }, y = { 0 };

    CHECK_EQ(sessstate_build(&x, a, 1, 45), 0);
    CHECK_EQ(sessstate_build(&y, b, 1, 45), 0);
    CHECK(!sessstate_equal(&x, &y));
    /* A hash collision (forced here) must not make them equal. */
    y.sig = x.sig;
    CHECK(!sessstate_equal(&x, &y));
    CHECK_EQ(sessstate_build(&y, a, 1, 45), 0);
    CHECK(sessstate_equal(&x, &y));
    /* Same statements, other collation. */
    CHECK_EQ(sessstate_build(&y, a, 1, 33), 0);
    CHECK(!sessstate_equal(&x, &y));
out:
    sessstate_fini(&x);
    sessstate_fini(&y);
}

static void test_boundaries_count(void)
{
    /* ["ab", "c"] and ["a", "bc"] concatenate alike; the NULs keep them apart. */
    char *a[] = { "ab", "c" }, *b[] = { "a", "bc" };
    struct sessstate x = { 0 }, y = { 0 };

    CHECK_EQ(sessstate_build(&x, a, 2, 45), 0);
    CHECK_EQ(sessstate_build(&y, b, 2, 45), 0);
    CHECK(!sessstate_equal(&x, &y));
out:
    sessstate_fini(&x);
    sessstate_fini(&y);
}

static void test_unknown_matches_nothing(void)
{
    struct sessstate x = { 0 }, y = { 0 };

    CHECK(!sessstate_equal(&x, &y));
    CHECK_EQ(sessstate_build(&x, NULL, 0, 45), 0);
    CHECK(sessstate_is_fresh(&x, 45));
    CHECK(!sessstate_is_fresh(&x, 33));
    CHECK_EQ(sessstate_copy(&y, &x), 0);
    CHECK(sessstate_equal(&x, &y));
    sessstate_forget(&y);
    CHECK(!sessstate_equal(&x, &y));
    CHECK(!sessstate_is_fresh(&y, 45));
    CHECK_EQ(y.sig, 0);
out:
    sessstate_fini(&x);
    sessstate_fini(&y);
}

int main(void)
{
    RUN(test_equal_needs_same_text);
    RUN(test_boundaries_count);
    RUN(test_unknown_matches_nothing);
    return check_exit();
}
