/*
 * tests/unit/test_stmt.c - COM_STMT_EXECUTE parsing and keys from binary
 * parameter values, as real drivers bind them.
 */
#include "protocol/stmt.h"

#include <string.h>

#include "check.h"
#include "protocol/packet.h"

/* Builds an EXECUTE: id 7, no cursor, <n> params with types/values. */
static size_t build(uint8_t *p, unsigned n, const uint8_t *nulls, int send_types,
                    const uint8_t *types, const uint8_t *values, size_t vlen)
{
    size_t k = 0;

    p[k++] = 0x17;
    packet_put_u32(p + k, 7);
    k += 4;
    p[k++] = 0;
    packet_put_u32(p + k, 1);
    k += 4;
    memcpy(p + k, nulls, (n + 7) / 8);
    k += (n + 7) / 8;
    p[k++] = (uint8_t)send_types;
    if (send_types) {
        memcpy(p + k, types, 2 * n);
        k += 2 * n;
    }
    memcpy(p + k, values, vlen);
    return k + vlen;
}

static void test_key_from_each_type(void)
{
    /* params: TINY 5, VAR_STRING "042", LONGLONG -7, DOUBLE 10503.0, LONG unsigned 4000000000 */
    static const uint8_t types[] = { 0x01, 0, 0xfd, 0, 0x08, 0, 0x05, 0, 0x03, 0x80 };
    uint8_t values[64], p[128], nulls[1] = { 0 };
    double d = 10503.0;
    int64_t neg = -7;
    size_t v = 0, len;
    struct stmt_execute ex;
    struct stmt_value val;
    char key[ANALYZE_KEY_MAX];
    static const char *const want[] = { "5", "42", "-7", "10503", "4000000000" };

    values[v++] = 5;
    values[v++] = 3;
    memcpy(values + v, "042", 3);
    v += 3;
    memcpy(values + v, &neg, 8);
    v += 8;
    memcpy(values + v, &d, 8);
    v += 8;
    packet_put_u32(values + v, 4000000000u);
    v += 4;
    len = build(p, 5, nulls, 1, types, values, v);
    CHECK_EQ(stmt_parse_execute(p, len, 5, &ex), 0);
    CHECK_EQ(ex.stmt_id, 7);
    CHECK(ex.new_types);
    for (unsigned i = 0; i < 5; i++) {
        int n;

        CHECK_EQ(stmt_param(p, len, &ex, p + ex.types_off, 5, NULL, i, &val), 0);
        n = stmt_key_of(p, &val, ANALYZE_KEY_INT, key);
        CHECK_EQ(n, (int)strlen(want[i]));
        CHECK(memcmp(key, want[i], (size_t)n) == 0);
    }
out:;
}

static void test_remembered_types_and_nulls(void)
{
    static const uint8_t types[] = { 0x08, 0, 0x08, 0 };
    uint8_t p[64], values[8], nulls[1] = { 0x01 };   /* param 0 NULL */
    int64_t u = 99;
    struct stmt_execute ex;
    struct stmt_value val;
    char key[ANALYZE_KEY_MAX];
    size_t len;

    memcpy(values, &u, 8);
    len = build(p, 2, nulls, 0, NULL, values, 8);
    CHECK_EQ(stmt_parse_execute(p, len, 2, &ex), 0);
    CHECK(!ex.new_types);
    CHECK_EQ(stmt_param(p, len, &ex, types, 2, NULL, 0, &val), 0);
    CHECK(val.is_null);
    CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_INT, key), -1);
    CHECK_EQ(stmt_param(p, len, &ex, types, 2, NULL, 1, &val), 0);
    CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_INT, key), 2);
    CHECK(memcmp(key, "99", 2) == 0);
out:;
}

static void test_not_keys(void)
{
    static const uint8_t dtypes[] = { 0x05, 0 };
    static const uint8_t stypes[] = { 0xfd, 0 };
    uint8_t p[64], values[16], nulls[1] = { 0 };
    double half = 1.5, big = 1e19;
    struct stmt_execute ex;
    struct stmt_value val;
    char key[ANALYZE_KEY_MAX];
    size_t len;

    memcpy(values, &half, 8);
    len = build(p, 1, nulls, 1, dtypes, values, 8);
    CHECK_EQ(stmt_parse_execute(p, len, 1, &ex), 0);
    CHECK_EQ(stmt_param(p, len, &ex, dtypes, 1, NULL, 0, &val), 0);
    CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_INT, key), -1);
    memcpy(values, &big, 8);
    len = build(p, 1, nulls, 1, dtypes, values, 8);
    stmt_parse_execute(p, len, 1, &ex);
    stmt_param(p, len, &ex, dtypes, 1, NULL, 0, &val);
    CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_INT, key), -1);
    values[0] = 5;
    memcpy(values + 1, "12abc", 5);
    len = build(p, 1, nulls, 1, stypes, values, 6);
    stmt_parse_execute(p, len, 1, &ex);
    CHECK_EQ(stmt_param(p, len, &ex, stypes, 1, NULL, 0, &val), 0);
    CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_INT, key), -1);
out:;
}

/* A string key is never named by a number: MariaDB compares a string
 * column with a number numerically, so 42 would match '042' and '42.0'. */
static void test_string_key_numbers(void)
{
    static const uint8_t types[] = { 0x08, 0, 0x05, 0, 0xf6, 0, 0x03, 0, 0x01, 0, 0xfd, 0 };
    uint8_t p[128], values[64], nulls[1] = { 0 };
    int64_t i64 = 42;
    int32_t i32 = 42;
    double d = 42.0;
    size_t v = 0, len;
    struct stmt_execute ex;
    struct stmt_value val;
    char key[ANALYZE_KEY_MAX];

    memcpy(values + v, &i64, 8);            /* LONGLONG 42 */
    v += 8;
    memcpy(values + v, &d, 8);              /* DOUBLE 42.0 */
    v += 8;
    values[v++] = 2;                        /* NEWDECIMAL "42" */
    memcpy(values + v, "42", 2);
    v += 2;
    memcpy(values + v, &i32, 4);            /* LONG 42 */
    v += 4;
    values[v++] = 42;                       /* TINY 42 */
    values[v++] = 3;                        /* VAR_STRING "042" */
    memcpy(values + v, "042", 3);
    v += 3;
    len = build(p, 6, nulls, 1, types, values, v);
    CHECK_EQ(stmt_parse_execute(p, len, 6, &ex), 0);
    for (unsigned i = 0; i < 5; i++) {
        CHECK_EQ(stmt_param(p, len, &ex, p + ex.types_off, 6, NULL, i, &val), 0);
        CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_STRING, key), -1);
        /* the same values name integer user 42 */
        CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_INT, key), 2);
        CHECK(memcmp(key, "42", 2) == 0);
    }
    CHECK_EQ(stmt_param(p, len, &ex, p + ex.types_off, 6, NULL, 5, &val), 0);
    CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_STRING, key), 3);
    CHECK(memcmp(key, "042", 3) == 0);
out:;
}

/* A quoted (string-typed) integer key gets the whole int64 range. */
static void test_big_string_int_key(void)
{
    static const uint8_t types[] = { 0xfd, 0 };
    uint8_t p[64], values[32], nulls[1] = { 0 };
    struct stmt_execute ex;
    struct stmt_value val;
    char key[ANALYZE_KEY_MAX];
    size_t len;

    values[0] = 19;
    memcpy(values + 1, "9223372036854775807", 19);
    len = build(p, 1, nulls, 1, types, values, 20);
    CHECK_EQ(stmt_parse_execute(p, len, 1, &ex), 0);
    CHECK_EQ(stmt_param(p, len, &ex, types, 1, NULL, 0, &val), 0);
    CHECK_EQ(stmt_key_of(p, &val, ANALYZE_KEY_INT, key), 19);
    CHECK(memcmp(key, "9223372036854775807", 19) == 0);
out:;
}

static void test_truncated_packets(void)
{
    static const uint8_t types[] = { 0xfd, 0, 0x08, 0 };
    uint8_t p[64], values[32], nulls[1] = { 0 };
    struct stmt_execute ex;
    struct stmt_value val;
    size_t len;

    values[0] = 200;                  /* a string claiming 200 bytes */
    memset(values + 1, 'x', 20);
    len = build(p, 2, nulls, 1, types, values, 21);
    CHECK_EQ(stmt_parse_execute(p, len, 2, &ex), 0);
    CHECK_EQ(stmt_param(p, len, &ex, types, 2, NULL, 0, &val), -1);
    CHECK_EQ(stmt_param(p, len, &ex, types, 2, NULL, 1, &val), -1);
    for (size_t cut = 0; cut < 12; cut++)
        CHECK_EQ(stmt_parse_execute(p, cut, 2, &ex), -1);
out:;
}

int main(void)
{
    RUN(test_key_from_each_type);
    RUN(test_remembered_types_and_nulls);
    RUN(test_not_keys);
    RUN(test_string_key_numbers);
    RUN(test_big_string_int_key);
    RUN(test_truncated_packets);
    return check_exit();
}
