/*
 * tests/unit/test_binlog.c - the binary log events a move reads
 * (protocol/binlog.c): header, rotate, a table map of integer-only and
 * mixed tables, row images of v1 and v2 write/update events, integer text.
 * The bytes are laid out as MariaDB 10.11 writes them (sql/log_event.h).
 */
#include "protocol/binlog.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_header_and_rotate(void)
{
    static const uint8_t ev[] = {
        0x10, 0x20, 0x30, 0x40,  4,  1, 0, 0, 0,  44, 0, 0, 0,  0, 0, 0, 0,  0x20, 0,
        4, 0, 0, 0, 0, 0, 0, 0,  'm', 'y', 's', 'q', 'l', '-', 'b', 'i', 'n', '.', '0', '0',
        '0', '0', '0', '2' };
    struct binlog_header h;
    uint64_t pos;
    char name[32];

    CHECK_EQ(binlog_header(ev, sizeof(ev), &h), 0);
    CHECK_EQ(h.type, BINLOG_ROTATE);
    CHECK_EQ(h.event_len, 44);
    CHECK_EQ(h.timestamp, 0x40302010);
    CHECK_EQ(binlog_header(ev, 18, &h), -1);
    CHECK_EQ(binlog_rotate(ev + 19, sizeof(ev) - 19, &pos, name, sizeof(name)), 0);
    CHECK_EQ(pos, 4);
    CHECK_STREQ(name, "mysql-bin.000002");
    CHECK_EQ(binlog_rotate(ev + 19, sizeof(ev) - 19, &pos, name, 8), -1);   /* too long */
    CHECK_EQ(binlog_rotate(ev + 19, 7, &pos, name, sizeof(name)), -1);
out:;
}

/* ledger (userid BIGINT, id BIGINT, writer INT): no column metadata at all,
 * the table map libmariadb 3.3 refuses */
static const uint8_t ledger_map[] = {
    0x2a, 0, 0, 0, 0, 0,  1, 0,            /* table id 42, flags */
    3, 'a', 'p', 'p', 0,  6, 'l', 'e', 'd', 'g', 'e', 'r', 0,
    3,  8, 8, 3,                          /* columns: LONGLONG, LONGLONG, LONG */
    0,                                    /* no metadata */
    0x00,                                 /* null bits */
};

static void test_integer_table(void)
{
    struct binlog_table *t = calloc(1, sizeof(*t));
    struct binlog_rows r;
    struct binlog_value v[3];
    char txt[24];
    /* WRITE_ROWS v1: table 42, flags, 3 columns, all present, two rows */
    static const uint8_t rows[] = {
        0x2a, 0, 0, 0, 0, 0,  1, 0,   3,  0x07,
        0x00,  0xe9, 0x03, 0, 0, 0, 0, 0, 0,  0x01, 0, 0, 0, 0, 0, 0, 0,  0x05, 0, 0, 0,
        0x04,  0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  0x02, 0, 0, 0, 0, 0, 0, 0,
    };
    size_t off;

    CHECK(t != NULL);
    CHECK_EQ(binlog_table_map(ledger_map, sizeof(ledger_map), t), 0);
    CHECK_EQ(t->table_id, 42);
    CHECK_EQ(t->n_cols, 3);
    CHECK(t->db_len == 3 && memcmp(t->db, "app", 3) == 0);
    CHECK(t->name_len == 6 && memcmp(t->name, "ledger", 6) == 0);
    CHECK_EQ(binlog_rows_head(BINLOG_WRITE_ROWS_V1, rows, sizeof(rows), &r), 0);
    CHECK_EQ(r.table_id, 42);
    CHECK(!r.update);
    off = r.rows_off;
    CHECK_EQ(binlog_row_image(t, r.present, rows, sizeof(rows), &off, v), 0);
    CHECK_EQ(binlog_int_text(8, &v[0], false, txt), 4);
    CHECK_STREQ(txt, "1001");
    CHECK_EQ(binlog_int_text(3, &v[2], false, txt), 1);
    CHECK_STREQ(txt, "5");
    /* second row: writer NULL (bit 2), userid -7 */
    CHECK_EQ(binlog_row_image(t, r.present, rows, sizeof(rows), &off, v), 0);
    CHECK(v[2].is_null && !v[0].is_null);
    CHECK_EQ(binlog_int_text(8, &v[0], false, txt), 2);
    CHECK_STREQ(txt, "-7");
    CHECK_EQ(binlog_int_text(8, &v[0], true, txt), 20);
    CHECK_STREQ(txt, "18446744073709551609");
    CHECK_EQ(binlog_int_text(3, &v[2], false, txt), -1);   /* NULL: no text */
    CHECK_EQ(off, sizeof(rows));
    /* cut short anywhere: an error, never a read past the end */
    for (size_t cut = r.rows_off; cut < sizeof(rows); cut++) {
        off = r.rows_off;
        int a = binlog_row_image(t, r.present, rows, cut, &off, v);
        if (a == 0)
            a = binlog_row_image(t, r.present, rows, cut, &off, v);
        CHECK_EQ(a, -1);
    }
out:
    free(t);
}

/* accounts (userid BIGINT, id INT, name VARCHAR(100) utf8mb4 (meta 400),
 * balance DECIMAL(12,2), note BLOB, flag TINYINT UNSIGNED, code CHAR(3)
 * latin1): an UPDATE v2 event with an extra-data block */
static void test_mixed_update_v2(void)
{
    static const uint8_t map[] = {
        7, 0, 0, 0, 0, 0,  1, 0,
        3, 'a', 'p', 'p', 0,  8, 'a', 'c', 'c', 'o', 'u', 'n', 't', 's', 0,
        7,  8, 3, 15, 246, 252, 1, 254,
        7,  0x90, 0x01,  12, 2,  2,  0xfe, 3,   /* varchar 400, decimal(12,2), blob 2, char */
        0x7c,
    };
    static const uint8_t rows[] = {
        7, 0, 0, 0, 0, 0,  1, 0,   4, 0, 0xaa, 0xbb,    /* v2: extra data of 4 bytes */
        7,  0x7f, 0x7f,
        /* before: name NULL (bit 2) */
        0x04,  42, 0, 0, 0, 0, 0, 0, 0,  9, 0, 0, 0,
        0x80, 0, 0, 0, 0x05, 0x07,               /* decimal: 6 bytes */
        2, 0, 'h', 'i',  0xff,  3, 'a', 'b', 'c',
        /* after: name "\xc3\xa9" (2-byte length prefix: max 400) */
        0x00,  42, 0, 0, 0, 0, 0, 0, 0,  9, 0, 0, 0,  2, 0, 0xc3, 0xa9,
        0x80, 0, 0, 0, 0x05, 0x08,
        0, 0,  0x01,  1, 'x',
    };
    struct binlog_table *t = calloc(1, sizeof(*t));
    struct binlog_rows r;
    struct binlog_value v[7];
    char txt[24];
    size_t off;

    CHECK(t != NULL);
    CHECK_EQ(binlog_table_map(map, sizeof(map), t), 0);
    CHECK_EQ(t->meta[2], 400);
    CHECK_EQ(t->meta[6], 0xfe03);
    CHECK_EQ(binlog_rows_head(BINLOG_UPDATE_ROWS, rows, sizeof(rows), &r), 0);
    CHECK(r.update);
    off = r.rows_off;
    CHECK_EQ(binlog_row_image(t, r.present, rows, sizeof(rows), &off, v), 0);
    CHECK(v[2].is_null);
    CHECK_EQ(binlog_int_text(8, &v[0], false, txt), 2);
    CHECK_STREQ(txt, "42");
    CHECK_EQ(binlog_int_text(1, &v[5], true, txt), 3);
    CHECK_STREQ(txt, "255");
    CHECK_EQ(binlog_int_text(1, &v[5], false, txt), 2);
    CHECK_STREQ(txt, "-1");
    CHECK(v[6].len == 3 && memcmp(v[6].p, "abc", 3) == 0);
    CHECK(v[4].len == 2 && memcmp(v[4].p, "hi", 2) == 0);
    CHECK_EQ(binlog_row_image(t, r.present_after, rows, sizeof(rows), &off, v), 0);
    CHECK(v[2].len == 2 && memcmp(v[2].p, "\xc3\xa9", 2) == 0);
    CHECK(v[4].len == 0 && !v[4].is_null);
    CHECK(v[6].len == 1 && v[6].p[0] == 'x');
    CHECK_EQ(off, sizeof(rows));
    /* a type this cannot size is refused at the map */
    uint8_t bad[sizeof(map)];
    memcpy(bad, map, sizeof(map));
    bad[28] = 200;
    CHECK_EQ(binlog_table_map(bad, sizeof(bad), t), -1);
    CHECK_EQ(binlog_rows_head(BINLOG_QUERY, rows, sizeof(rows), &r), -1);
out:
    free(t);
}

int main(void)
{
    RUN(test_header_and_rotate);
    RUN(test_integer_table);
    RUN(test_mixed_update_v2);
    return check_exit();
}
