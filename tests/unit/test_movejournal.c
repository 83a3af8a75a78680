/*
 * tests/unit/test_movejournal.c - a move's vbucket list syntax and its
 * journal text (shardmap/movejournal.c).
 */
#include "shardmap/movejournal.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_vbucket_lists(void)
{
    static const struct {
        const char *text;
        long        count;   /* -1: refused */
        const char *canon;   /* canonical form, or the error's substring */
    } cases[] = {
        { "7", 1, "7" },
        { "10-11", 2, "10-11" },
        { "9,1,5-7", 5, "1,5-7,9" },
        { "3,4,5", 3, "3-5" },
        { "0-15", 16, "0-15" },
        { "", -1, "empty vbucket list" },
        { "16", -1, "vbucket 16 out of range 0..15" },
        { "5-3", -1, "range 5-3 is backwards" },
        { "1,1", -1, "vbucket 1 listed twice" },
        { "1-3,2", -1, "vbucket 2 listed twice" },
        { "1,", -1, "expected N, N-M" },
        { ",1", -1, "expected N, N-M" },
        { "1-", -1, "expected N, N-M" },
        { "a", -1, "expected N, N-M" },
        { "1 2", -1, "expected N, N-M" },
        { "99999999999", -1, "expected N, N-M" },
    };
    uint8_t set[16];
    char buf[64], *err = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long n = move_parse_vbuckets(cases[i].text, set, 16, &err);
        if (n != cases[i].count)
            fprintf(stderr, "case '%s': got %ld (%s)\n", cases[i].text, n, err ? err : "");
        CHECK_EQ(n, cases[i].count);
        if (n < 0) {
            CHECK(err != NULL && strstr(err, cases[i].canon) != NULL);
            free(err);
            err = NULL;
            continue;
        }
        CHECK_EQ(move_format_vbuckets(set, 16, buf, sizeof(buf)), 0);
        CHECK_STREQ(buf, cases[i].canon);
    }
    CHECK_EQ(move_parse_vbuckets("0-15", set, 16, &err), 16);
    CHECK_EQ(move_format_vbuckets(set, 16, buf, 4), -1);   /* does not fit */
out:
    free(err);
}

static void test_journal_round_trip(void)
{
    struct move_journal j, k;
    char text[MOVE_TEXT_MAX], text2[MOVE_TEXT_MAX], *err = NULL;

    memset(&j, 0, sizeof(j));
    j.phase = MOVE_CATCHUP;
    strcpy(j.vbuckets, "40-41,77");
    strcpy(j.from, "s0");
    strcpy(j.to, "s2");
    strcpy(j.database, "app");
    j.started_ms = 1795437303510;
    j.updated_ms = 1795437304510;
    j.rows = 1200;
    strcpy(j.binlog, "mysql-bin.000002:1234");
    strcpy(j.gtid, "0-1-55");
    strcpy(j.masters, "127.0.0.1:3306,[::1]:3307");
    strcpy(j.error, "lost \"s0\"\nmaster");
    CHECK_EQ(move_journal_format(&j, text, sizeof(text)), 0);
    CHECK_STREQ(text, "vbuckets=40-41,77 from=s0 to=s2 database=app phase=catchup started_ms=1795437303510 "
                      "updated_ms=1795437304510 rows=1200 binlog=mysql-bin.000002:1234 "
                      "gtid=0-1-55 masters=127.0.0.1:3306,[::1]:3307 error=\"lost 's0' master\"\n");
    CHECK_EQ(move_journal_parse(text, strlen(text), &k, &err), 0);
    CHECK_EQ(k.phase, MOVE_CATCHUP);
    CHECK_STREQ(k.error, "lost 's0' master");
    CHECK_EQ(k.rows, 1200);
    CHECK_STREQ(k.masters, "127.0.0.1:3306,[::1]:3307");
    CHECK_EQ(move_journal_format(&k, text2, sizeof(text2)), 0);
    CHECK_STREQ(text2, text);
    /* optional fields stay out; unknown keys (a newer writer) are skipped */
    static const char minimal[] = "vbuckets=3 from=a to=b phase=copy future=1";
    CHECK_EQ(move_journal_parse(minimal, strlen(minimal), &k, &err), 0);
    CHECK_EQ(k.phase, MOVE_COPY);
    CHECK(move_phase_active(k.phase));
    CHECK(!move_phase_active(MOVE_DONE) && !move_phase_active(MOVE_ABORTED));
    CHECK_STREQ(k.binlog, "");
    static const struct {
        const char *text, *err;
    } bad[] = {
        { "vbuckets=3 from=a to=b phase=melting", "bad phase 'melting'" },
        { "vbuckets=3 from=a phase=copy", "phase, vbuckets, from and to are required" },
        { "vbuckets=3 from=a to=b phase=copy rows=x", "bad rows 'x'" },
        { "vbuckets=3 from=a to=b phase=copy error=\"open", "unterminated quote" },
        { "vbuckets=3 junk", "word 'junk' is not key=value" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(move_journal_parse(bad[i].text, strlen(bad[i].text), &k, &err), -1);
        if (strstr(err, bad[i].err) == NULL)
            fprintf(stderr, "case '%s': got '%s'\n", bad[i].text, err);
        CHECK(strstr(err, bad[i].err) != NULL);
        free(err);
        err = NULL;
    }
out:
    free(err);
}

int main(void)
{
    RUN(test_vbucket_lists);
    RUN(test_journal_round_trip);
    return check_exit();
}
