/*
 * shardmap/errmsg.h - cold-path error messages for shardmap/ (private).
 *
 * Every shardmap function that fails on bad input hands back a malloc'd
 * message naming the culprit; this is the one place that builds them. Never
 * used on the hot path.
 */
#ifndef SHARDWIRE_SHARDMAP_ERRMSG_H
#define SHARDWIRE_SHARDMAP_ERRMSG_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sets *<errp> (when <errp> is not NULL) to a malloc'd formatted message, or
 * to a static-free copy of "out of memory" when formatting fails. Replaces
 * (and frees) any earlier message. */
__attribute__((format(printf, 2, 3), unused))
static void errmsg_set(char **errp, const char *fmt, ...)
{
    if (errp == NULL)
        return;
    free(*errp);
    *errp = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(errp, fmt, ap) < 0)
        *errp = strdup("out of memory");
    va_end(ap);
}

/* Prefixes *<errp> with "<prefix>: " (context added by a caller). */
__attribute__((format(printf, 2, 3), unused))
static void errmsg_prefix(char **errp, const char *fmt, ...)
{
    if (errp == NULL)
        return;
    char *pre = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&pre, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *joined = NULL;
    if (asprintf(&joined, "%s: %s", pre, *errp ? *errp : "error") >= 0) {
        free(*errp);
        *errp = joined;
    }
    free(pre);
}

#endif
