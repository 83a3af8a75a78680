/*
 * tests/unit/test_util.c - router/util.h: escaping client-chosen text for
 * log lines.
 */
#include "router/util.h"

#include "check.h"

static void test_escape(void)
{
    static const struct {
        const char *in;
        size_t      len;
        size_t      cap;
        const char *want;
    } cases[] = {
        { "app", 3, 64, "app" },
        { "ev\nil", 5, 64, "ev\\x0ail" },
        { "a=b \"c\" \\", 9, 64, "a\\x3db \\x22c\\x22 \\x5c" },
        { "\x01\xff", 2, 64, "\\x01\\xff" },
        { "nul\0x", 5, 64, "nul\\x00x" },
        { "abcdef", 6, 4, "abc" },              /* cut to fit */
        { "a\nb", 3, 5, "a" },                  /* an escape is never cut in half */
        { "", 0, 1, "" },
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_STREQ(util_escape(out, cases[i].cap, cases[i].in, cases[i].len), cases[i].want);
out:;
}

int main(void)
{
    RUN(test_escape);
    return check_exit();
}
