/*
 * tests/fuzz/fuzz_binlog.c - binary log events as a server (or anything
 * posing as one) sends them to a move's catch-up, on arbitrary bytes.
 *
 * Input: one byte N, then N bytes of a TABLE_MAP body, then one byte of a
 * row event type, then the ROWS body. Properties: nothing reads past a
 * buffer (ASan), row images of a map that parsed are walked as the mover
 * walks them and always advance or fail, integer text never overflows its
 * buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/binlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct binlog_table t;
    static struct binlog_rows r;
    static struct binlog_value v[BINLOG_MAX_COLS];
    struct binlog_header h;
    char txt[24];
    uint64_t pos;
    char name[64];

    binlog_header(data, size, &h);
    binlog_rotate(data, size, &pos, name, sizeof(name));
    if (size < 2)
        return 0;
    size_t n = data[0];
    if (n > size - 1)
        n = size - 1;
    const uint8_t *map = data + 1, *rest = data + 1 + n;
    size_t rest_len = size - 1 - n;
    if (binlog_table_map(map, n, &t) < 0 || rest_len < 1)
        return 0;
    uint8_t type = rest[0];
    if (binlog_rows_head(type, rest + 1, rest_len - 1, &r) < 0 || r.n_cols != t.n_cols)
        return 0;
    size_t off = r.rows_off;
    while (off < rest_len - 1) {
        size_t before = off;
        if (binlog_row_image(&t, r.present, rest + 1, rest_len - 1, &off, v) < 0)
            break;
        for (unsigned i = 0; i < t.n_cols; i++)
            if (binlog_type_is_int(t.types[i]))
                binlog_int_text(t.types[i], &v[i], i & 1, txt);
        if (r.update && binlog_row_image(&t, r.present_after, rest + 1, rest_len - 1, &off,
                                         v) < 0)
            break;
        if (off <= before && t.n_cols > 0) {
            /* an image of only NULLs or zero-length values may take no
             * bytes beyond its bitmap; it must still take the bitmap */
            unsigned present = 0;
            for (unsigned i = 0; i < t.n_cols; i++)
                present += (r.present[i / 8] >> (i % 8)) & 1;
            if (present > 0)
                abort();
            break;
        }
    }
    return 0;
}
