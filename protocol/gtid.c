/*
 * protocol/gtid.c - MariaDB GTID positions. Pure.
 */
#include "protocol/gtid.h"

#include <inttypes.h>
#include <stdio.h>

/* Reads a decimal number of at most <max> from <s>[*i, len). */
static int gtid_num(const char *s, size_t len, size_t *i, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *i;

    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        unsigned d = (unsigned)(s[*i] - '0');

        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
        (*i)++;
    }
    if (*i == start)
        return -1;
    *out = v;
    return 0;
}

int gtid_parse(const char *s, size_t len, struct gtid_pos *out)
{
    size_t i = 0;

    out->n = 0;
    for (;;) {
        uint64_t d, srv, seq;

        while (i < len && (s[i] == ' ' || s[i] == '\n'))
            i++;
        if (i == len)
            return out->n == 0 ? 0 : -1;      /* a trailing comma is malformed */
        if (gtid_num(s, len, &i, UINT32_MAX, &d) < 0 || i == len || s[i++] != '-' ||
            gtid_num(s, len, &i, UINT32_MAX, &srv) < 0 || i == len || s[i++] != '-' ||
            gtid_num(s, len, &i, UINT64_MAX, &seq) < 0)
            return -1;
        for (unsigned k = 0; k < out->n; k++)
            if (out->g[k].domain == d)
                return -1;
        if (out->n == GTID_MAX_DOMAINS)
            return -1;
        out->g[out->n].domain = (uint32_t)d;
        out->g[out->n].server = (uint32_t)srv;
        out->g[out->n].seq = seq;
        out->n++;
        while (i < len && (s[i] == ' ' || s[i] == '\n'))
            i++;
        if (i == len)
            return 0;
        if (s[i++] != ',')
            return -1;
    }
}

bool gtid_covers(const struct gtid_pos *a, const struct gtid_pos *b)
{
    for (unsigned k = 0; k < b->n; k++) {
        bool found = false;

        for (unsigned j = 0; j < a->n && !found; j++)
            if (a->g[j].domain == b->g[k].domain)
                found = a->g[j].seq >= b->g[k].seq;
        if (!found)
            return false;
    }
    return true;
}

int gtid_format(const struct gtid_pos *p, char *buf, size_t cap)
{
    size_t n = 0;

    if (cap == 0)
        return -1;
    buf[0] = 0;
    for (unsigned k = 0; k < p->n; k++) {
        int l = snprintf(buf + n, cap - n, "%s%" PRIu32 "-%" PRIu32 "-%" PRIu64, k ? "," : "",
                         p->g[k].domain, p->g[k].server, p->g[k].seq);

        if (l < 0 || (size_t)l >= cap - n)
            return -1;
        n += (size_t)l;
    }
    return (int)n;
}
