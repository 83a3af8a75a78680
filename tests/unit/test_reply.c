/*
 * tests/unit/test_reply.c - the end-of-reply tracker over realistic packet
 * sequences, and the OK/ERR builders.
 */
#include "protocol/reply.h"

#include <string.h>

#include "check.h"
#include "protocol/packet.h"
#include "protocol/wire.h"

/* A packet script: payload bytes (first few) and the full length. */
struct pkt {
    const char *bytes;
    size_t      nbytes;
    uint32_t    len;
};

#define P(lit, len) { lit, sizeof(lit) - 1, len }

/* Feeds <n> packets; returns the index of the packet that ended the reply,
 * -1 if none did, -2 if the tracker refused one. */
static int feed_all(struct reply *r, const struct pkt *pk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* The tracker is shown min(len, REPLY_PEEK) bytes, as the router
         * does; the script gives the meaningful head, zeros follow. */
        uint8_t head[REPLY_PEEK] = { 0 };
        size_t avail = pk[i].len < REPLY_PEEK ? pk[i].len : REPLY_PEEK;
        int k;

        memcpy(head, pk[i].bytes, pk[i].nbytes < avail ? pk[i].nbytes : avail);
        k = reply_feed(r, head, avail, pk[i].len);

        if (k < 0)
            return -2;
        if (k == 1)
            return (int)i;
    }
    return -1;
}

static void test_ok_and_err(void)
{
    struct reply r;
    const struct pkt ok[] = { P("\x00\x01\x05\x03\x00\x02\x00", 7) };
    const struct pkt err[] = { P("\xff\x48\x04#42000oops", 13) };

    reply_begin(&r, REPLY_QUERY, false);
    CHECK_EQ(feed_all(&r, ok, 1), 0);
    CHECK(!r.is_error);
    CHECK_EQ(r.affected_rows, 1);
    CHECK_EQ(r.insert_id, 5);
    CHECK_EQ(r.status, 3);
    CHECK_EQ(r.warnings, 2);
    reply_begin(&r, REPLY_SIMPLE, false);
    CHECK_EQ(feed_all(&r, err, 1), 0);
    CHECK(r.is_error);
    CHECK_EQ(r.err_no, 1096);
out:;
}

static void test_result_set(void)
{
    struct reply r;
    const struct pkt rs[] = {
        P("\x02", 1),                       /* 2 columns */
        P("\x03" "def", 40), P("\x03" "def", 40),
        P("\xfe\x00\x00\x22\x00", 5),       /* EOF after columns */
        P("\x01" "a", 30),
        P("\xfe\x00\x00\x00\x00\x00\x00\x00\x01", 20000),   /* a row starting 0xfe, long */
        P("\xfb\xfb", 2),                   /* a row of NULLs */
        P("\xfe\x01\x00\x22\x00", 5),       /* final EOF: 1 warning, autocommit|... */
    };

    reply_begin(&r, REPLY_QUERY, false);
    CHECK_EQ(feed_all(&r, rs, sizeof(rs) / sizeof(rs[0])), 7);
    CHECK_EQ(r.warnings, 1);
    CHECK_EQ(r.status, 0x22);
    CHECK(!r.is_error);
    CHECK_EQ(r.rows, 3);        /* rows counted, column definitions and EOFs not */
out:;
}

static void test_multi_results_and_err_mid_rows(void)
{
    struct reply r;
    const struct pkt two[] = {
        P("\x01", 1), P("\x03" "def", 30), P("\xfe\x00\x00\x0a\x00", 5),
        P("\x01" "1", 2),
        P("\xfe\x00\x00\x0a\x00", 5),       /* MORE_RESULTS_EXISTS (0x08) */
        P("\x00\x00\x00\x02\x00\x00\x00", 7),  /* the CALL's final OK */
    };
    const struct pkt errmid[] = {
        P("\x01", 1), P("\x03" "def", 30), P("\xfe\x00\x00\x02\x00", 5),
        P("\x01" "1", 2), P("\xff\x10\x05#HY000killed", 17),
    };

    reply_begin(&r, REPLY_QUERY, false);
    CHECK_EQ(feed_all(&r, two, 4), -1);
    CHECK_EQ(feed_all(&r, two + 4, 2), 1);
    reply_begin(&r, REPLY_QUERY, false);
    CHECK_EQ(feed_all(&r, errmid, 5), 4);
    CHECK(r.is_error);
out:;
}

static void test_large_row_continuation(void)
{
    struct reply r;
    /* A row of exactly 0xffffff bytes continues; its tail starts with 0xfe
     * and is short, but it is not an EOF. */
    const struct pkt rs[] = {
        P("\x01", 1), P("\x03" "def", 30), P("\xfe\x00\x00\x02\x00", 5),
        P("\xfd\xff\xff\xff", PACKET_MAX_PAYLOAD),
        P("\xfe\x00\x00\x02\x00", 5),       /* continuation tail */
        P("\xfe\x00\x00\x02\x00", 5),       /* the real EOF */
    };

    reply_begin(&r, REPLY_QUERY, false);
    CHECK_EQ(feed_all(&r, rs, sizeof(rs) / sizeof(rs[0])), 5);
    CHECK_EQ(r.rows, 1);        /* a row in two packets is one row */
out:;
}

static void test_prepare_and_field_list(void)
{
    struct reply r;
    const struct pkt prep[] = {
        P("\x00\x07\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00", 12),  /* 1 col, 2 params */
        P("\x03" "def", 30), P("\x03" "def", 30), P("\xfe\x00\x00\x02\x00", 5),
        P("\x03" "def", 30), P("\xfe\x00\x00\x02\x00", 5),
    };
    const struct pkt fl[] = {
        P("\x03" "def", 30), P("\x03" "def", 30), P("\xfe\x00\x00\x02\x00", 5),
    };

    reply_begin(&r, REPLY_PREPARE, false);
    CHECK_EQ(feed_all(&r, prep, sizeof(prep) / sizeof(prep[0])), 5);
    CHECK_EQ(r.stmt_id, 7);
    CHECK_EQ(r.n_params, 2);
    CHECK_EQ(r.n_columns, 1);
    reply_begin(&r, REPLY_FIELD_LIST, false);
    CHECK_EQ(feed_all(&r, fl, 3), 2);
out:;
}

static void test_broken_streams_refused(void)
{
    struct reply r;
    const struct pkt empty[] = { P("", 0) };
    const struct pkt no_eof[] = { P("\x01", 1), P("\x03" "def", 30), P("\x01" "x", 2) };
    const struct pkt zero_cols[] = { P("\xfc\x00\x00", 3) };

    reply_begin(&r, REPLY_QUERY, false);
    CHECK_EQ(feed_all(&r, empty, 1), -2);
    reply_begin(&r, REPLY_QUERY, false);
    CHECK_EQ(feed_all(&r, no_eof, 3), -2);
    reply_begin(&r, REPLY_QUERY, false);
    CHECK_EQ(feed_all(&r, zero_cols, 1), -2);
    reply_begin(&r, REPLY_SIMPLE, false);
    CHECK_EQ(feed_all(&r, no_eof, 1), -2);
out:;
}

static void test_builders(void)
{
    uint8_t buf[128];
    uint16_t err_no;
    size_t off, n;
    size_t len = reply_write_err(buf, 1235, "42000", "nope", 4);
    struct reply r;

    CHECK_EQ(len, 13);
    CHECK_EQ(reply_parse_err(buf, len, &err_no, &off, &n), 0);
    CHECK_EQ(err_no, 1235);
    CHECK_EQ(n, 4);
    CHECK(memcmp(buf + off, "nope", 4) == 0);
    len = reply_write_ok(buf, 300, 2, WIRE_STATUS_AUTOCOMMIT, 1, NULL, 0);
    reply_begin(&r, REPLY_SIMPLE, false);
    CHECK_EQ(reply_feed(&r, buf, len, (uint32_t)len), 1);
    CHECK_EQ(r.affected_rows, 300);
    CHECK_EQ(r.status, WIRE_STATUS_AUTOCOMMIT);
    CHECK_EQ(r.warnings, 1);
    CHECK_EQ(reply_write_eof(buf, 3, 2), 5);
out:;
}

int main(void)
{
    RUN(test_ok_and_err);
    RUN(test_result_set);
    RUN(test_multi_results_and_err_mid_rows);
    RUN(test_large_row_continuation);
    RUN(test_prepare_and_field_list);
    RUN(test_broken_streams_refused);
    RUN(test_builders);
    return check_exit();
}
