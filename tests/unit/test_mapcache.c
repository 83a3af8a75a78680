/*
 * tests/unit/test_mapcache.c - map files: store/load round trip, atomic
 * replace, no temporary left behind, errors naming the file.
 */
#include "shardmap/mapcache.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "shardmap/mapcodec.h"
#include "shardmap/smap.h"

static char dir[] = "/tmp/test_mapcache.XXXXXX";

static struct smap *make_map(uint64_t version, const char *master0)
{
    char text[512];
    snprintf(text, sizeof(text),
             "version %llu\nvbuckets 16\nshard s0 master=%s\nshard s1 master=10.0.0.2:3306\n"
             "vb 0-7 s0\nvb 8-15 s1\n", (unsigned long long)version, master0);
    return mapcodec_parse(text, strlen(text), NULL);
}

static unsigned count_entries(void)
{
    unsigned n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d == NULL)
        return 9999;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(text, 1, len, f) != len)
        abort();
    fclose(f);
}

static void test_round_trip(void)
{
    char path[256], *err = NULL, *t1 = NULL, *t2 = NULL;
    struct smap *m = make_map(5, "10.0.0.1:3306"), *back = NULL, *m2 = NULL;
    CHECK(m != NULL);
    snprintf(path, sizeof(path), "%s/map.cache", dir);
    CHECK_EQ(mapcache_store(path, m, &err), 0);
    CHECK_EQ(count_entries(), 1);     /* no temporary file left behind */
    back = mapcache_load(path, &err);
    CHECK(back != NULL);
    CHECK_EQ(smap_version(back), 5);
    t1 = mapcodec_format(m);
    t2 = mapcodec_format(back);
    CHECK_STREQ(t1, t2);
    smap_unref(back);
    back = NULL;

    /* replace: the newer map wins, still one file */
    m2 = make_map(6, "10.0.0.9:3306");
    CHECK(m2 != NULL);
    CHECK_EQ(mapcache_store(path, m2, &err), 0);
    CHECK_EQ(count_entries(), 1);
    back = mapcache_load(path, &err);
    CHECK(back != NULL);
    CHECK_EQ(smap_version(back), 6);
    CHECK_STREQ(smap_shard(back, 0)->master.host, "10.0.0.9");
    unlink(path);
out:
    smap_unref(m);
    smap_unref(m2);
    smap_unref(back);
    free(t1);
    free(t2);
    free(err);
}

static void test_errors(void)
{
    char path[256], *err = NULL;
    struct smap *m = make_map(1, "10.0.0.1:3306");
    CHECK(m != NULL);

    snprintf(path, sizeof(path), "%s/missing", dir);
    CHECK(mapcache_load(path, &err) == NULL);
    CHECK(strstr(err, path) == err);
    CHECK(strstr(err, "No such file") != NULL);
    free(err);
    err = NULL;

    /* invalid content: the message names the file and the line */
    snprintf(path, sizeof(path), "%s/bad.map", dir);
    static const char bad[] = "version 1\nshard s0 master=h:99999\n";
    write_file(path, bad, strlen(bad));
    CHECK(mapcache_load(path, &err) == NULL);
    char want[512];
    snprintf(want, sizeof(want), "%s: line 2: shard 's0': master: port 99999 out of range",
             path);
    CHECK_STREQ(err, want);
    free(err);
    err = NULL;

    /* a torn file (as a crash mid-write without rename would leave) is refused */
    static const char torn[] = "version 1\nshard s0 master=h:1\nvb 0-5";
    write_file(path, torn, strlen(torn));
    CHECK(mapcache_load(path, &err) == NULL);
    CHECK(strstr(err, "line 3") != NULL);
    free(err);
    err = NULL;
    unlink(path);

    /* a directory is not a map file */
    CHECK(mapcache_load(dir, &err) == NULL);
    CHECK(strstr(err, "not a regular file") != NULL);
    free(err);
    err = NULL;

    /* storing into a missing directory fails cleanly and creates nothing */
    snprintf(path, sizeof(path), "%s/nodir/map.cache", dir);
    CHECK_EQ(mapcache_store(path, m, &err), -1);
    CHECK(strstr(err, "nodir") != NULL);
    CHECK_EQ(count_entries(), 0);
    free(err);
    err = NULL;

    /* unwritable directory (skipped as root, who may write anyway) */
    if (geteuid() != 0) {
        char sub[128];
        snprintf(sub, sizeof(sub), "%s/ro", dir);
        CHECK_EQ(mkdir(sub, 0500), 0);
        snprintf(path, sizeof(path), "%s/map.cache", sub);
        CHECK_EQ(mapcache_store(path, m, &err), -1);
        rmdir(sub);
    }
out:
    smap_unref(m);
    free(err);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_round_trip);
    RUN(test_errors);
    rmdir(dir);
    return check_exit();
}
