/*
 * router/sessstate.c - session state text and its hash (see sessstate.h).
 */
#include "router/sessstate.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "router/fault.h"

static uint64_t hash_of(const uint8_t *text, size_t len)
{
    uint64_t h = XXH3_64bits(text, len);

    return h ? h : 1;       /* 0 means "unknown" */
}

void sessstate_forget(struct sessstate *st)
{
    free(st->text);
    st->text = NULL;
    st->len = 0;
    st->sig = 0;
}

void sessstate_fini(struct sessstate *st)
{
    sessstate_forget(st);
}

int sessstate_build(struct sessstate *st, char *const *stmts, unsigned n, uint8_t charset)
{
    size_t len = 1, at = 1;
    uint8_t *text;

    for (unsigned i = 0; i < n; i++)
        len += strlen(stmts[i]) + 1;
    sessstate_forget(st);
    text = fault_fail("sessstate") ? NULL : malloc(len);
    if (!text)
        return -1;
    text[0] = charset;
    for (unsigned i = 0; i < n; i++) {
        size_t k = strlen(stmts[i]) + 1;

        memcpy(text + at, stmts[i], k);
        at += k;
    }
    st->text = text;
    st->len = len;
    st->sig = hash_of(text, len);
    return 0;
}

int sessstate_copy(struct sessstate *dst, const struct sessstate *src)
{
    uint8_t *text;

    if (dst == src)
        return 0;
    sessstate_forget(dst);
    if (!src->text)
        return 0;
    text = fault_fail("sessstate") ? NULL : malloc(src->len);
    if (!text)
        return -1;
    memcpy(text, src->text, src->len);
    dst->text = text;
    dst->len = src->len;
    dst->sig = src->sig;
    return 0;
}

bool sessstate_equal(const struct sessstate *a, const struct sessstate *b)
{
    return a->text && b->text && a->sig == b->sig && a->len == b->len &&
           memcmp(a->text, b->text, a->len) == 0;
}

bool sessstate_is_fresh(const struct sessstate *st, uint8_t charset)
{
    return st->text && st->len == 1 && st->text[0] == charset;
}
