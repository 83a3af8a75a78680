/*
 * tests/fuzz/fuzz_movejournal.c - a move's journal text (read back from
 * ZooKeeper, where anyone with the admin credential may have edited it) and
 * the vbucket list syntax, on arbitrary bytes.
 *
 * Properties: parsing never crashes or leaks; every failure names its
 * culprit; a journal that parses formats to text that parses to the same
 * text again; a vbucket list that parses formats to its canonical form,
 * which parses to the same set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Self-contained like fuzz_mapcodec.c: the pure source compiled in. */
#include "shardmap/movejournal.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct move_journal j, k;
    char text[MOVE_TEXT_MAX], text2[MOVE_TEXT_MAX], *err = NULL;

    if (move_journal_parse((const char *)data, size, &j, &err) == 0) {
        if (err != NULL)
            abort();
        if (move_journal_format(&j, text, sizeof(text)) == 0) {
            if (move_journal_parse(text, strlen(text), &k, &err) != 0)
                abort();
            if (move_journal_format(&k, text2, sizeof(text2)) != 0 || strcmp(text, text2))
                abort();
        }
    } else if (err == NULL) {
        abort();
    }
    free(err);
    err = NULL;

    /* the vbucket list: a NUL-terminated copy, 64 vbuckets */
    char *s = malloc(size + 1);
    uint8_t set[64], set2[64];
    char canon[512];
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    long n = move_parse_vbuckets(s, set, 64, &err);
    if (n >= 0) {
        if (move_format_vbuckets(set, 64, canon, sizeof(canon)) != 0 ||
            move_parse_vbuckets(canon, set2, 64, &err) != n || memcmp(set, set2, 64) != 0)
            abort();
    } else if (err == NULL) {
        abort();
    }
    free(err);
    free(s);
    return 0;
}
