/*
 * tests/unit/test_scope.c - tenant-scoped statements: the exact rewrite of
 * each statement shape ORMs send, outer joins keeping their meaning, other
 * users refused, what cannot be rewritten refused, prepared statements
 * whose key is a '?' (read as the user, listed for the EXECUTE check),
 * scope SETs and leading scope comments.
 */
#include "protocol/scope.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "protocol/analyze.h"

struct scope_case {
    const char *sql;
    int         verdict;    /* enum scope_verdict */
    const char *out;        /* SCOPE_REWRITTEN: the exact rewritten text */
};

static const struct scope_case cases[] = {
    /* confined already: as is */
    {"SELECT * FROM notes WHERE userid = 42 AND id = 1", SCOPE_ASIS, NULL},
    {"SELECT 1", SCOPE_ASIS, NULL},
    {"INSERT INTO notes (userid, title) VALUES (42, 'x')", SCOPE_ASIS, NULL},
    {"UPDATE notes SET title = ? WHERE userid = ? AND id = ?", SCOPE_ASIS, NULL},
    /* another user: refused */
    {"SELECT * FROM notes WHERE userid = 43", SCOPE_REJECT, NULL},
    {"INSERT INTO notes (userid, title) VALUES (43, 'x')", SCOPE_REJECT, NULL},
    {"SELECT * FROM notes n JOIN tags t ON t.userid = 43 WHERE n.id = 1", SCOPE_REJECT, NULL},
    {"DELETE FROM notes WHERE userid IN (42, 43)", SCOPE_REJECT, NULL},
    /* rewritten: by primary key only */
    {"SELECT * FROM notes WHERE id = 7",
     SCOPE_REWRITTEN, "SELECT * FROM notes WHERE (id = 7) AND notes.`userid` = 42 "},
    {"SELECT `notes`.`id` FROM `notes` WHERE `notes`.`id` = 7 LIMIT 21",
     SCOPE_REWRITTEN,
     "SELECT `notes`.`id` FROM `notes` WHERE (`notes`.`id` = 7) AND `notes`.`userid` = 42  LIMIT 21"},
    {"UPDATE notes SET title = 'x' WHERE id = 7",
     SCOPE_REWRITTEN, "UPDATE notes SET title = 'x' WHERE (id = 7) AND notes.`userid` = 42 "},
    {"UPDATE notes SET userid = 42, title = 'x' WHERE id = 7",
     SCOPE_REWRITTEN,
     "UPDATE notes SET userid = 42, title = 'x' WHERE (id = 7) AND notes.`userid` = 42 "},
    {"DELETE FROM notes WHERE id = 7 OR id = 8",
     SCOPE_REWRITTEN, "DELETE FROM notes WHERE (id = 7 OR id = 8) AND notes.`userid` = 42 "},
    {"DELETE FROM notes", SCOPE_REWRITTEN, "DELETE FROM notes WHERE notes.`userid` = 42 "},
    {"SELECT count(*) FROM notes", SCOPE_REWRITTEN,
     "SELECT count(*) FROM notes WHERE notes.`userid` = 42 "},
    {"SELECT * FROM notes ORDER BY id LIMIT 10", SCOPE_REWRITTEN,
     "SELECT * FROM notes WHERE notes.`userid` = 42  ORDER BY id LIMIT 10"},
    {"UPDATE notes SET n = n + 1 ORDER BY id LIMIT 1", SCOPE_REWRITTEN,
     "UPDATE notes SET n = n + 1 WHERE notes.`userid` = 42  ORDER BY id LIMIT 1"},
    /* joins: inner in WHERE, the NULL-extended side in its ON */
    {"SELECT * FROM notes n JOIN tags t ON t.note_id = n.id WHERE n.id = 1", SCOPE_REWRITTEN,
     "SELECT * FROM notes n JOIN tags t ON t.note_id = n.id WHERE (n.id = 1) AND n.`userid` = 42 "
     "AND t.`userid` = 42 "},
    {"SELECT * FROM notes n LEFT JOIN tags t ON t.note_id = n.id", SCOPE_REWRITTEN,
     "SELECT * FROM notes n LEFT JOIN tags t ON (t.note_id = n.id) AND t.`userid` = 42  "
     "WHERE n.`userid` = 42 "},
    {"SELECT * FROM tags t RIGHT JOIN notes n ON t.note_id = n.id WHERE n.id = 2", SCOPE_REWRITTEN,
     "SELECT * FROM tags t RIGHT JOIN notes n ON (t.note_id = n.id) AND t.`userid` = 42  "
     "WHERE (n.id = 2) AND n.`userid` = 42 "},
    {"SELECT * FROM notes n, tags t WHERE t.note_id = n.id", SCOPE_REWRITTEN,
     "SELECT * FROM notes n, tags t WHERE (t.note_id = n.id) AND n.`userid` = 42 AND "
     "t.`userid` = 42 "},
    /* subqueries, derived tables, UNION */
    {"SELECT * FROM tags WHERE note_id IN (SELECT id FROM notes WHERE title = 'a')",
     SCOPE_REWRITTEN,
     "SELECT * FROM tags WHERE (note_id IN (SELECT id FROM notes WHERE (title = 'a') AND "
     "notes.`userid` = 42 )) AND tags.`userid` = 42 "},
    {"SELECT * FROM (SELECT id FROM notes) d WHERE d.id > 1", SCOPE_REWRITTEN,
     "SELECT * FROM (SELECT id FROM notes WHERE notes.`userid` = 42 ) d WHERE d.id > 1"},
    {"SELECT id FROM notes UNION SELECT id FROM tags", SCOPE_REWRITTEN,
     "SELECT id FROM notes WHERE notes.`userid` = 42  UNION SELECT id FROM tags WHERE "
     "tags.`userid` = 42 "},
    {"INSERT INTO tags (userid, name) SELECT userid, title FROM notes WHERE id = 1",
     SCOPE_REWRITTEN,
     "INSERT INTO tags (userid, name) SELECT userid, title FROM notes WHERE (id = 1) AND "
     "notes.`userid` = 42 "},
    {"SELECT * FROM notes WHERE id = 7 FOR UPDATE", SCOPE_REWRITTEN,
     "SELECT * FROM notes WHERE (id = 7) AND notes.`userid` = 42  FOR UPDATE"},
    /* the rewrite adds to a partly limited statement too */
    {"SELECT * FROM notes n JOIN tags t ON t.id = n.id WHERE n.userid = 42", SCOPE_REWRITTEN,
     "SELECT * FROM notes n JOIN tags t ON t.id = n.id WHERE (n.userid = 42) AND n.`userid` = 42 "
     "AND t.`userid` = 42 "},
    /* cannot be rewritten with certainty, or still not confined: refused */
    {"SELECT * FROM notes NATURAL JOIN tags", SCOPE_REJECT, NULL},
    {"SELECT * FROM notes n LEFT JOIN tags t USING (id)", SCOPE_REJECT, NULL},
    {"SELECT * FROM notes n JOIN tags t ON t.id = n.id WHERE n.userid = ?", SCOPE_REJECT, NULL},
    {"SELECT * FROM other.notes WHERE id = 1", SCOPE_REJECT, NULL},
    {"DROP TABLE notes", SCOPE_REJECT, NULL},
    {"INSERT INTO notes (title) VALUES ('x')", SCOPE_REJECT, NULL},
};

static void test_cases(void)
{
    struct analyze_config cfg;
    struct analyze *a = NULL;
    struct scope_buf buf = {0};
    struct analyze_result r;
    analyze_config_default(&cfg);
    snprintf(cfg.database, sizeof(cfg.database), "app");
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct scope_case *c = &cases[k];
        int v = scope_apply(a, c->sql, strlen(c->sql), "42", 2, false, &buf, &r);
        if (v != c->verdict || (c->out && (buf.len != strlen(c->out) ||
                                           memcmp(buf.p, c->out, buf.len) != 0))) {
            fprintf(stderr, "case %zu: %s\n  verdict %d (want %d) %s\n  got  [%.*s]\n  want [%s]\n",
                    k, c->sql, v, c->verdict, r.kind == ANALYZE_REJECT ? r.msg : "",
                    v == SCOPE_REWRITTEN ? (int)buf.len : 0, buf.p ? buf.p : "",
                    c->out ? c->out : "");
            CHECK(0);
        }
        if (v == SCOPE_REWRITTEN) {
            /* what is sent routes to the user */
            CHECK_EQ(r.kind, ANALYZE_ROUTE);
            CHECK(r.key_len == 2 && memcmp(r.key, "42", 2) == 0);
        }
    }
out:
    scope_buf_fini(&buf);
    analyze_free(a);
}

struct prep_case {
    const char *sql;
    int         verdict;        /* enum scope_verdict */
    uint64_t    scope_params;   /* ROUTE: the '?'s the router checks at EXECUTE */
    const char *out;            /* SCOPE_REWRITTEN: the exact rewritten text */
};

/* Prepared on a session scoped to 42: a key '?' reads as 42, and every
 * such '?' is listed so the router checks what it binds. */
static const struct prep_case prep_cases[] = {
    {"SELECT * FROM notes WHERE userid = ?", SCOPE_ASIS, 0x1, NULL},
    {"SELECT * FROM notes WHERE id = ? AND userid = ?", SCOPE_ASIS, 0x2, NULL},
    {"SELECT * FROM notes WHERE userid IN (?, ?)", SCOPE_ASIS, 0x3, NULL},
    {"INSERT INTO notes (userid, title) VALUES (?, ?), (?, ?)", SCOPE_ASIS, 0x5, NULL},
    {"INSERT INTO notes (id, userid, title) VALUES (DEFAULT, ?, ?)", SCOPE_ASIS, 0x1, NULL},
    {"INSERT INTO notes (userid, title) VALUES (?, 'a'), (42, 'b')", SCOPE_ASIS, 0x1, NULL},
    {"INSERT INTO notes (userid, title) VALUES (?, ?) ON DUPLICATE KEY UPDATE "
     "userid = VALUES(userid), title = VALUES(title)", SCOPE_ASIS, 0x1, NULL},
    {"UPDATE notes SET title = ? WHERE id = ?", SCOPE_REWRITTEN, 0,
     "UPDATE notes SET title = ? WHERE (id = ?) AND notes.`userid` = 42 "},
    {"UPDATE `notes` SET `userid`=?,`title`=? WHERE `id` = ?", SCOPE_REWRITTEN, 0x1,
     "UPDATE `notes` SET `userid`=?,`title`=? WHERE (`id` = ?) AND `notes`.`userid` = 42 "},
    {"SELECT * FROM notes n JOIN tags t ON t.id = n.id WHERE n.userid = ?", SCOPE_REWRITTEN,
     0x1, "SELECT * FROM notes n JOIN tags t ON t.id = n.id WHERE (n.userid = ?) AND "
     "n.`userid` = 42 AND t.`userid` = 42 "},
    {"SELECT * FROM notes WHERE userid = ? OR id = ?", SCOPE_REWRITTEN, 0x1,
     "SELECT * FROM notes WHERE (userid = ? OR id = ?) AND notes.`userid` = 42 "},
    /* another user beside the '?': refused whatever the '?' binds */
    {"SELECT * FROM notes WHERE userid = ? AND userid = 43", SCOPE_REJECT, 0, NULL},
    {"INSERT INTO notes (userid, title) VALUES (?, 'a'), (43, 'b')", SCOPE_REJECT, 0, NULL},
    {"UPDATE notes SET userid = 43 WHERE userid = ?", SCOPE_REJECT, 0, NULL},
};

static void test_prepared(void)
{
    struct analyze_config cfg;
    struct analyze *a = NULL;
    struct scope_buf buf = {0};
    struct analyze_result r;
    analyze_config_default(&cfg);
    cfg.multi_param_key = 1;
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    for (size_t k = 0; k < sizeof(prep_cases) / sizeof(prep_cases[0]); k++) {
        const struct prep_case *c = &prep_cases[k];
        int v = scope_apply(a, c->sql, strlen(c->sql), "42", 2, true, &buf, &r);
        if (v != c->verdict || (v != SCOPE_REJECT && r.scope_params != c->scope_params) ||
            (c->out && (buf.len != strlen(c->out) || memcmp(buf.p, c->out, buf.len) != 0))) {
            fprintf(stderr, "prepared case %zu: %s\n  verdict %d (want %d) params %#llx %s\n"
                    "  got  [%.*s]\n  want [%s]\n", k, c->sql, v, c->verdict,
                    (unsigned long long)r.scope_params, r.kind == ANALYZE_REJECT ? r.msg : "",
                    v == SCOPE_REWRITTEN ? (int)buf.len : 0, buf.p ? buf.p : "",
                    c->out ? c->out : "");
            CHECK(0);
        }
        if (v != SCOPE_REJECT) {
            CHECK_EQ(r.kind, ANALYZE_ROUTE);
            CHECK_EQ(r.param_index, -1);
            CHECK(r.key_len == 2 && memcmp(r.key, "42", 2) == 0);
        }
    }
    /* the same statement as a text query: the '?' stays a '?' (the router
     * refuses it: placeholders need a prepared statement), and the
     * analyzer forgets the scope's key afterwards */
    CHECK_EQ(scope_apply(a, "SELECT * FROM notes WHERE userid = ?", 36, "42", 2, false, &buf, &r),
             SCOPE_ASIS);
    CHECK_EQ(r.param_index, 0);
    CHECK_EQ(r.scope_params, 0);
    analyze_statement(a, "DELETE FROM notes WHERE userid = ?", 34, &r);
    CHECK_EQ(r.kind, ANALYZE_ROUTE);
    CHECK_EQ(r.param_index, 0);
    CHECK_EQ(r.scope_params, 0);
    /* a key '?' beyond the 64th cannot be listed: refused */
    {
        char sql[600] = "SELECT * FROM notes WHERE userid IN (";
        for (int i = 0; i < 70; i++)
            strcat(sql, i ? ", ?" : "?");
        strcat(sql, ")");
        CHECK_EQ(scope_apply(a, sql, strlen(sql), "42", 2, true, &buf, &r), SCOPE_REJECT);
    }
out:
    scope_buf_fini(&buf);
    analyze_free(a);
}

/* String keys are quoted and escaped; bytes above ASCII are _binary. */
static void test_string_key(void)
{
    struct analyze_config cfg;
    struct analyze *a = NULL;
    struct scope_buf buf = {0};
    struct analyze_result r;
    static const char want[] = "DELETE FROM notes WHERE (id = 1) AND notes.`userid` = 'o\\'b' ";
    static const char want8[] = "DELETE FROM notes WHERE notes.`userid` = _binary'\xc3\xa9' ";
    analyze_config_default(&cfg);
    cfg.key_type = ANALYZE_KEY_STRING;
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    CHECK_EQ(scope_apply(a, "DELETE FROM notes WHERE id = 1", 30, "o'b", 3, false, &buf, &r),
             SCOPE_REWRITTEN);
    CHECK(buf.len == sizeof(want) - 1 && memcmp(buf.p, want, buf.len) == 0);
    CHECK_EQ(scope_apply(a, "DELETE FROM notes", 17, "\xc3\xa9", 2, false, &buf,
                         &r), SCOPE_REWRITTEN);
    CHECK(buf.len == sizeof(want8) - 1 && memcmp(buf.p, want8, buf.len) == 0);
out:
    scope_buf_fini(&buf);
    analyze_free(a);
}

static void test_set_scope(void)
{
    struct analyze_config cfg;
    struct analyze *a = NULL;
    struct analyze_result r;
    static const struct {
        const char *sql;
        int         scope;      /* -1: rejected */
        const char *key;        /* NULL: cleared */
    } sets[] = {
        {"SET @shardwire_user = 42", ANALYZE_SCOPE_SESSION, "42"},
        {"set @SHARDWIRE_USER='042'", ANALYZE_SCOPE_SESSION, "42"},
        {"SET @`shardwire_user` := 7", ANALYZE_SCOPE_SESSION, "7"},
        {"SET @shardwire_txn_user = 9", ANALYZE_SCOPE_TXN, "9"},
        {"SET @shardwire_user = NULL", ANALYZE_SCOPE_SESSION, NULL},
        {"SET @shardwire_user = 42, autocommit = 0", -1, NULL},
        {"SET autocommit = 0, @shardwire_user = 42", -1, NULL},
        {"SET @shardwire_user = ? + 1", -1, NULL},
        {"SET @shardwire_user = 40 + 2", -1, NULL},
        {"SET @shardwire_user = '42abc'", -1, NULL},
    };
    analyze_config_default(&cfg);
    a = analyze_new(&cfg);
    CHECK(a != NULL);
    for (size_t k = 0; k < sizeof(sets) / sizeof(sets[0]); k++) {
        analyze_statement(a, sets[k].sql, strlen(sets[k].sql), &r);
        if (sets[k].scope < 0) {
            CHECK_EQ(r.kind, ANALYZE_REJECT);
            continue;
        }
        CHECK_EQ(r.kind, ANALYZE_LOCAL);
        CHECK_EQ(r.stmt, ANALYZE_STMT_SET);
        CHECK_EQ(r.scope, sets[k].scope);
        CHECK_EQ(r.pins_session, 0);
        if (sets[k].key) {
            CHECK_EQ(r.scope_clear, 0);
            CHECK(r.key_len == strlen(sets[k].key) && memcmp(r.key, sets[k].key, r.key_len) == 0);
        } else {
            CHECK_EQ(r.scope_clear, 1);
        }
    }
    /* prepared: the value is the one bound to the '?' */
    analyze_statement(a, "SET @shardwire_txn_user = ?", 27, &r);
    CHECK_EQ(r.kind, ANALYZE_LOCAL);
    CHECK_EQ(r.scope, ANALYZE_SCOPE_TXN);
    CHECK_EQ(r.param_index, 0);
    CHECK_EQ(r.key_len, 0);
    CHECK_EQ(r.scope_clear, 0);
    /* another user variable stays an ordinary session SET */
    analyze_statement(a, "SET @x = 1", 10, &r);
    CHECK_EQ(r.kind, ANALYZE_SESSION);
    CHECK_EQ(r.scope, ANALYZE_SCOPE_NONE);
out:
    analyze_free(a);
}

static void test_comment(void)
{
    char key[ANALYZE_KEY_MAX];
    static const struct {
        const char *sql;
        int         want;       /* return value */
        const char *key;
    } c[] = {
        {"/* shardwire:user=42 */ SELECT 1", 2, "42"},
        {"  \n/*shardwire:user='0042'*/SELECT 1", 2, "42"},
        {"/* shardwire:user=-5 */ SELECT 1", 2, "-5"},
        {"SELECT 1 /* shardwire:user=42 */", 0, NULL},
        {"/*! shardwire:user=42 */ SELECT 1", 0, NULL},
        {"/* other comment */ SELECT 1", 0, NULL},
        {"# shardwire:user=42\nSELECT 1", 0, NULL},
        {"/* shardwire:user=4x2 */ SELECT 1", -1, NULL},
        {"/* shardwire:user= */ SELECT 1", -1, NULL},
        {"/* shardwire:user=42", -1, NULL},
        {"/* shardwire:user=42 43 */", -1, NULL},
    };
    for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        int n = scope_comment(c[k].sql, strlen(c[k].sql), ANALYZE_KEY_INT, key);
        if (n != c[k].want)
            fprintf(stderr, "comment case %zu: %s -> %d\n", k, c[k].sql, n);
        CHECK_EQ(n, c[k].want);
        if (n > 0)
            CHECK(memcmp(key, c[k].key, (size_t)n) == 0);
    }
out:
    return;
}

int main(void)
{
    RUN(test_cases);
    RUN(test_prepared);
    RUN(test_string_key);
    RUN(test_set_scope);
    RUN(test_comment);
    return check_exit();
}
