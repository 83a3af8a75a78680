/*
 * tests/unit/test_zkauth.c - ZooKeeper digest credentials: parsing, the
 * credential file, and the ACL id ZooKeeper computes for an identity.
 */
#include "shardmap/zkauth.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/check.h"

static char dir[] = "/tmp/test_zkauth.XXXXXX";

/* ZooKeeper's documented example: the id of super:test (used with
 * -Dzookeeper.DigestAuthenticationProvider.superDigest). */
static void test_digest_id(void)
{
    struct zkauth a;
    char id[ZKAUTH_ID_MAX];
    char *err = NULL;
    CHECK_EQ(zkauth_parse("digest:super:test", &a, &err), 0);
    zkauth_digest_id(&a, id);
    CHECK_STREQ(id, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    /* a ':' in the password belongs to the password */
    CHECK_EQ(zkauth_parse("  digest:router:r:pw \n", &a, &err), 0);
    CHECK_STREQ(a.user, "router");
    CHECK_STREQ(a.password, "r:pw");
    zkauth_digest_id(&a, id);
    CHECK_STREQ(id, "router:zXy+SmEykhf2ht/ASshp5w4LCiM=");
out:
    free(err);
}

static void test_parse_errors(void)
{
    static const struct { const char *text, *want; } cases[] = {
        { "super:test", "only the digest scheme" },
        { "sasl:super:test", "only the digest scheme" },
        { "digest:", "not empty" },
        { "digest:user", "not empty" },
        { "digest::pw", "not empty" },
        { "digest:user:", "not empty" },
        { "digest:us\ter:pw", "control character in the user" },
        { "digest:user:p\x01w", "control character in the password" },
    };
    char *err = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct zkauth a;
        free(err);
        err = NULL;
        CHECK_EQ(zkauth_parse(cases[i].text, &a, &err), -1);
        CHECK(err != NULL && strstr(err, cases[i].want) != NULL);
        /* never echoes the secret */
        CHECK(strstr(err, "pw") == NULL);
    }
out:
    free(err);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    if (n != (ssize_t)strlen(text))
        return -1;
    return chmod(path, mode);
}

static void test_file(void)
{
    char path[128];
    struct zkauth a;
    char *err = NULL;
    snprintf(path, sizeof(path), "%s/cred", dir);
    CHECK_EQ(write_file(path, "# admin identity\n\n  digest:admin:s3cret\n", 0600), 0);
    CHECK_EQ(zkauth_load_file(path, &a, &err), 0);
    CHECK_STREQ(a.user, "admin");
    CHECK_STREQ(a.password, "s3cret");
    /* readable by others: refused, like an ssh key */
    CHECK_EQ(chmod(path, 0644), 0);
    CHECK_EQ(zkauth_load_file(path, &a, &err), -1);
    CHECK(err != NULL && strstr(err, "readable or writable by others") != NULL);
    CHECK(strstr(err, path) != NULL);
    /* no credential line */
    CHECK_EQ(write_file(path, "# nothing\n", 0600), 0);
    CHECK_EQ(zkauth_load_file(path, &a, &err), -1);
    CHECK(strstr(err, "no credential line") != NULL);
    /* a bad line names the file, not the password */
    CHECK_EQ(write_file(path, "admin:s3cret\n", 0600), 0);
    CHECK_EQ(zkauth_load_file(path, &a, &err), -1);
    CHECK(strstr(err, path) != NULL && strstr(err, "s3cret") == NULL);
    /* missing file */
    CHECK_EQ(zkauth_load_file("/nonexistent/cred", &a, &err), -1);
    CHECK(strstr(err, "/nonexistent/cred") != NULL);
out:
    free(err);
    unlink(path);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_digest_id);
    RUN(test_parse_errors);
    RUN(test_file);
    rmdir(dir);
    return check_exit();
}
