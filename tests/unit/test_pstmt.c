/*
 * tests/unit/test_pstmt.c - prepared-statement tables: a backend's cache is
 * matched by SQL text, not by its hash alone.
 */
#include "router/pstmt.h"

#include "check.h"

static void test_cache_compares_text(void)
{
    struct pstmt_table t = { 0 };
    struct pstmt_cache c = { 0 };
    struct analyze_result ar = { 0 };
    struct pstmt *a, *b;
    uint32_t ev = 0;

    a = pstmt_add(&t, "SELECT 1 FROM t WHERE userid=?", 31, &ar);
    b = pstmt_add(&t, "SELECT 2 FROM t WHERE userid=?", 31, &ar);
    CHECK(a && b);
    CHECK_EQ(pstmt_cache_add(&c, a, 7, &ev), 0);
    CHECK(pstmt_cache_find(&c, a) != NULL);
    CHECK_EQ(pstmt_cache_find(&c, a)->server_id, 7);
    CHECK(pstmt_cache_find(&c, b) == NULL);
    /* Same hash and length (a collision, forced), other text: no match. */
    b->sql_hash = a->sql_hash;
    CHECK(pstmt_cache_find(&c, b) == NULL);
    pstmt_cache_clear(&c);
    CHECK(pstmt_cache_find(&c, a) == NULL);
out:
    pstmt_cache_clear(&c);
    pstmt_table_fini(&t);
}

static void test_cache_evicts_oldest(void)
{
    struct pstmt_table t = { 0 };
    struct pstmt_cache c = { 0 };
    struct analyze_result ar = { 0 };
    struct pstmt *first = NULL, *ps;
    uint32_t ev = 0;
    char sql[64];

    for (unsigned i = 0; i < PSTMT_BACKEND_CACHE; i++) {
        int n = snprintf(sql, sizeof(sql), "SELECT %u", i);

        ps = pstmt_add(&t, sql, (size_t)n, &ar);
        CHECK(ps);
        if (!first)
            first = ps;
        CHECK_EQ(pstmt_cache_add(&c, ps, 100 + i, &ev), 0);
    }
    ps = pstmt_add(&t, "SELECT new", 10, &ar);
    CHECK(ps);
    CHECK_EQ(pstmt_cache_add(&c, ps, 999, &ev), 1);
    CHECK_EQ(ev, 100);
    CHECK(pstmt_cache_find(&c, first) == NULL);
    CHECK_EQ(pstmt_cache_find(&c, ps)->server_id, 999);
out:
    pstmt_cache_clear(&c);
    pstmt_table_fini(&t);
}

int main(void)
{
    RUN(test_cache_compares_text);
    RUN(test_cache_evicts_oldest);
    return check_exit();
}
