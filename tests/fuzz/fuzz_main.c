/*
 * tests/fuzz/fuzz_main.c - replay main() for fuzz targets built without
 * libFuzzer: feeds every file named on the command line (directories are
 * read entry by entry) to LLVMFuzzerTestOneInput once, so the seed corpus
 * and every kept crash reproducer run as an ordinary test. A crash or
 * abort() fails the test; an unreadable file or an empty corpus too.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file; returns 0, or -1 when it cannot be read. */
static int fuzz_main_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: read failed\n", path);
        free(buf);
        return -1;
    }
    /* an exact-size copy, so a read past the end is caught by ASan */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int fuzz_main_name_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int main(int argc, char **argv)
{
    unsigned n_run = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (fuzz_main_file(argv[i]) < 0)
                rc = 1;
            n_run++;
            continue;
        }
        struct dirent **ents;
        int n = scandir(argv[i], &ents, NULL, NULL);
        if (n < 0) {
            perror(argv[i]);
            return 1;
        }
        char **names = calloc((size_t)n + 1, sizeof(*names));
        int m = 0;
        for (int k = 0; k < n; k++) {
            if (ents[k]->d_name[0] != '.' && names) {
                size_t l = strlen(argv[i]) + strlen(ents[k]->d_name) + 2;
                names[m] = malloc(l);
                if (names[m])
                    snprintf(names[m++], l, "%s/%s", argv[i], ents[k]->d_name);
            }
            free(ents[k]);
        }
        free(ents);
        if (!names)
            return 1;
        qsort(names, (size_t)m, sizeof(*names), fuzz_main_name_cmp);
        for (int k = 0; k < m; k++) {
            if (fuzz_main_file(names[k]) < 0)
                rc = 1;
            n_run++;
            free(names[k]);
        }
        free(names);
    }
    fprintf(stderr, "replayed %u inputs\n", n_run);
    if (n_run == 0) {
        fprintf(stderr, "no inputs: an empty corpus tests nothing\n");
        return 1;
    }
    return rc;
}
