/*
 * tools/shardctl_explain.c - `shardctl explain`: what the router would do
 * with each statement, using the router's own decision function
 * (router/decide.h: analyzer options, map key settings, operator rules),
 * hash and map. With --config FILE it reads a router's configuration, so
 * the database, shard key defaults, rules and map source are that router's.
 *
 * One output line per statement operand, in order:
 *   route userid=<key> vbucket=<n> shard=<name>   (shard only with a map)
 *   route userid=? param=<i>                       (key bound to a '?')
 *   session | local
 *   reject <errno>: <message>
 * or with --json one JSON object per line. A reject is an answer, not a
 * failure: the exit code is 0 whenever every statement was explained.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/analyze.h"
#include "protocol/scope.h"
#include "router/config.h"
#include "router/decide.h"
#include "router/rules.h"
#include "shardmap/smap.h"
#include "shardmap/vbucket.h"
#include "tools/shardctl.h"

static const char *kind_name(enum analyze_kind k)
{
    switch (k) {
    case ANALYZE_ROUTE:   return "route";
    case ANALYZE_SESSION: return "session";
    case ANALYZE_LOCAL:   return "local";
    case ANALYZE_REJECT:  return "reject";
    }
    return "?";
}

static const char *stmt_name(enum analyze_stmt s)
{
    switch (s) {
    case ANALYZE_STMT_OTHER:     return "other";
    case ANALYZE_STMT_SELECT:    return "select";
    case ANALYZE_STMT_INSERT:    return "insert";
    case ANALYZE_STMT_UPDATE:    return "update";
    case ANALYZE_STMT_DELETE:    return "delete";
    case ANALYZE_STMT_BEGIN:     return "begin";
    case ANALYZE_STMT_COMMIT:    return "commit";
    case ANALYZE_STMT_ROLLBACK:  return "rollback";
    case ANALYZE_STMT_SAVEPOINT: return "savepoint";
    case ANALYZE_STMT_SET:       return "set";
    case ANALYZE_STMT_USE:       return "use";
    case ANALYZE_STMT_SHOW:      return "show";
    case ANALYZE_STMT_DO:        return "do";
    }
    return "?";
}

/* Prints a key so that one output line stays one token: bare when it is
 * plain printable text, else double-quoted with C escapes. */
static void print_key(const char *key, size_t len)
{
    bool plain = len > 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            plain = false;
    }
    if (plain) {
        fwrite(key, 1, len, stdout);
        return;
    }
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void explain_human(const struct analyze_result *r, const char *column,
                          const struct smap *m)
{
    switch (r->kind) {
    case ANALYZE_ROUTE:
        printf("route %s=", column);
        if (r->param_index >= 0) {
            printf("? param=%d\n", r->param_index);
            return;
        }
        print_key(r->key, r->key_len);
        if (m != NULL) {
            uint32_t vb = vbucket_of(r->key, r->key_len, smap_n_vbuckets(m));
            printf(" vbucket=%u shard=%s", vb, smap_shard(m, smap_shard_of_vbucket(m, vb))->name);
        } else {
            printf(" vbucket=%u", vbucket_of(r->key, r->key_len, VBUCKET_DEFAULT_COUNT));
        }
        /* a scoped prepared statement's key '?'s (0-based, as param=) */
        for (uint64_t p = r->scope_params; p; p &= p - 1)
            printf("%s%d", p == r->scope_params ? " checked params=" : ",", __builtin_ctzll(p));
        putchar('\n');
        return;
    case ANALYZE_SESSION:
    case ANALYZE_LOCAL:
        printf("%s\n", kind_name(r->kind));
        return;
    case ANALYZE_REJECT:
        printf("reject %u: %s\n", (unsigned)r->err_no, r->msg ? r->msg : "");
        return;
    }
}

/* Returns 0, or -1 when out of memory. */
static int explain_json(const char *sql, const struct scope_buf *rewritten,
                        const struct analyze_result *r, const char *column,
                        const struct smap *m, bool by_rule)
{
    json_t *o = json_object();
    if (o == NULL)
        return -1;
    json_t *jsql = json_string(sql);   /* NULL when not UTF-8 */
    json_object_set_new(o, "sql", jsql ? jsql : json_null());
    if (rewritten) {
        json_t *rw = json_stringn(rewritten->p, rewritten->len);
        json_object_set_new(o, "rewritten", rw ? rw : json_null());
    }
    json_object_set_new(o, "decision", json_string(kind_name(r->kind)));
    json_object_set_new(o, "stmt", json_string(stmt_name(r->stmt)));
    if (r->kind == ANALYZE_ROUTE) {
        json_object_set_new(o, "column", json_string(column));
        json_object_set_new(o, "write", json_boolean(r->is_write));
        if (r->param_index >= 0) {
            json_object_set_new(o, "param", json_integer(r->param_index));
        } else {
            uint32_t n = m ? smap_n_vbuckets(m) : VBUCKET_DEFAULT_COUNT;
            uint32_t vb = vbucket_of(r->key, r->key_len, n);
            /* keys may be any bytes; jansson needs UTF-8, so fall back to hex */
            json_t *k = json_stringn(r->key, r->key_len);
            if (k != NULL) {
                json_object_set_new(o, "key", k);
            } else {
                char hex[2 * ANALYZE_KEY_MAX + 1];
                for (size_t i = 0; i < r->key_len; i++)
                    snprintf(hex + 2 * i, 3, "%02x", (unsigned char)r->key[i]);
                hex[2 * r->key_len] = '\0';
                json_object_set_new(o, "key_hex", json_string(hex));
            }
            json_object_set_new(o, "vbucket", json_integer(vb));
            if (r->scope_params) {
                /* '?'s (0-based, as "param") an EXECUTE must bind the key to */
                json_t *a = json_array();
                for (uint64_t p = r->scope_params; a && p; p &= p - 1)
                    json_array_append_new(a, json_integer(__builtin_ctzll(p)));
                if (a)
                    json_object_set_new(o, "checked_params", a);
            }
            if (m != NULL) {
                const struct smap_shard *s = smap_shard(m, smap_shard_of_vbucket(m, vb));
                char ep[SMAP_ENDPOINT_STR_MAX];
                smap_format_endpoint(&s->master, ep, sizeof(ep));
                json_object_set_new(o, "shard", json_string(s->name));
                json_object_set_new(o, "master", json_string(ep));
                json_object_set_new(o, "map_version", json_integer((json_int_t)smap_version(m)));
            }
        }
    } else if (r->kind == ANALYZE_REJECT) {
        json_object_set_new(o, "errno", json_integer(r->err_no));
        json_object_set_new(o, "sqlstate", json_string(r->sqlstate));
        json_object_set_new(o, "message", json_string(r->msg ? r->msg : ""));
        json_object_set_new(o, "offset", json_integer((json_int_t)r->offset));
    } else if (r->stmt == ANALYZE_STMT_SET && r->sets_autocommit) {
        json_object_set_new(o, "autocommit", json_boolean(r->autocommit));
    }
    if (r->pins_session)
        json_object_set_new(o, "pins_session", json_true());
    if (by_rule)
        json_object_set_new(o, "rule", json_true());
    if (r->reads_prev_stmt)
        json_object_set_new(o, "reads_prev_stmt", json_true());
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (s == NULL)
        return -1;
    puts(s);
    free(s);
    return 0;
}

/*
 * Reads the following statements as a session whose sql_mode is <modes>
 * would have them read: as the router does, by what `SET sql_mode =
 * '<modes>'` sets (so a mode the router refuses is refused here). Returns
 * 0, or -1 after printing why not.
 */
static int explain_sql_mode(struct analyze *a, const char *modes)
{
    char sql[600];
    struct analyze_result r;

    if (strlen(modes) > 500 || strpbrk(modes, "'\\")) {
        shardctl_err("--sql-mode '%s': expected modes like PIPES_AS_CONCAT,STRICT_TRANS_TABLES",
                     modes);
        return -1;
    }
    snprintf(sql, sizeof(sql), "SET sql_mode = '%s'", modes);
    if (analyze_statement(a, sql, strlen(sql), &r) < 0 || r.kind == ANALYZE_REJECT ||
        !r.sets_sql_mode) {
        shardctl_err("--sql-mode '%s': %s", modes,
                     r.kind == ANALYZE_REJECT && r.msg ? r.msg : "not a session sql_mode");
        return -1;
    }
    analyze_set_sql_mode(a, r.sql_mode);
    return 0;
}

int shardctl_explain(const struct shardctl_opts *o)
{
    /* static: the options are large */
    static struct shardctl_opts lo;
    struct analyze_config base, cfg;
    struct config *rc = NULL;
    struct rules *rules = NULL;
    struct smap *m = NULL;
    struct analyze *a = NULL;
    struct scope_buf sbuf = {0};
    char *err = NULL;
    int ex = SHARDCTL_OK;

    if (o->argc < 1) {
        shardctl_err("explain: give at least one SQL statement");
        return SHARDCTL_USAGE;
    }
    lo = *o;
    analyze_config_default(&base);
    if (o->config_file != NULL) {
        rc = config_load(o->config_file, &err);
        if (rc == NULL) {
            shardctl_err("--config: %s", err);
            free(err);
            return SHARDCTL_USAGE;
        }
        if (decide_rules_load(rc, &rules, &err) < 0) {
            shardctl_err("--config: %s", err);
            free(err);
            ex = SHARDCTL_INVALID;
            goto out;
        }
        base = rc->analyze;
        /* the router's own map source, unless --map or --zk says otherwise */
        if (o->map_file == NULL && !o->zk_given) {
            if (rc->map_file != NULL) {
                lo.map_file = rc->map_file;
            } else if (rc->zookeeper != NULL) {
                lo.zk = rc->zookeeper;
                lo.zk_given = true;
                lo.root = rc->zk_root;
                if (lo.auth == NULL && rc->have_zk_auth)
                    lo.auth = &rc->zk_auth;
            }
        }
    }
    /* The map (and with it the key columns and type) from --map, else from
     * ZooKeeper when --zk (or $SHARDWIRE_ZK) names one, else none. */
    if (lo.map_file != NULL || lo.zk_given) {
        ex = shardctl_load_map(&lo, &m);
        if (ex != SHARDCTL_OK)
            goto out;
    }
    if (o->database != NULL) {
        if (strlen(o->database) >= sizeof(base.database)) {
            shardctl_err("--database: name longer than %zu bytes", sizeof(base.database) - 1);
            ex = SHARDCTL_USAGE;
            goto out;
        }
        strcpy(base.database, o->database);
    }
    decide_analyze_config(&cfg, &base, m);
    a = analyze_new(&cfg);
    if (a == NULL) {
        shardctl_err("out of memory");
        ex = SHARDCTL_FAILED;
        goto out;
    }
    if (o->sql_mode != NULL && explain_sql_mode(a, o->sql_mode) < 0) {
        ex = SHARDCTL_USAGE;
        goto out;
    }
    char ukey[ANALYZE_KEY_MAX];
    int ulen = 0;
    if (o->user != NULL) {
        ulen = analyze_canon_key(cfg.key_type, o->user, strlen(o->user), ukey);
        if (ulen <= 0) {
            shardctl_err("--user '%s': not a valid key", o->user);
            ex = SHARDCTL_USAGE;
            goto out;
        }
    }
    for (int i = 0; i < o->argc; i++) {
        struct analyze_result r;
        const char *sql = o->argv[i];
        int verdict = SCOPE_ASIS;
        /* -1 (out of memory) still fills a REJECT; --user: as a session
         * scoped to that user (SET @shardwire_user) would send it, a
         * statement with '?'s as a prepared one */
        int by_rule = ulen > 0 ? decide_scoped(a, rules, sql, strlen(sql), ukey, (size_t)ulen,
                                               true, &sbuf, &r, &verdict)
                               : decide_statement(a, rules, sql, strlen(sql), &r);
        if (o->json) {
            if (explain_json(sql, verdict == SCOPE_REWRITTEN ? &sbuf : NULL, &r,
                             cfg.key_columns[0], m, by_rule > 0) < 0) {
                shardctl_err("out of memory");
                ex = SHARDCTL_FAILED;
                goto out;
            }
        } else {
            if (verdict == SCOPE_REWRITTEN)
                printf("rewritten: %.*s\n", (int)sbuf.len, sbuf.p);
            explain_human(&r, cfg.key_columns[0], m);
        }
    }
    if (fflush(stdout) != 0) {
        shardctl_err("stdout: write failed");
        ex = SHARDCTL_FAILED;
    }
out:
    scope_buf_fini(&sbuf);
    analyze_free(a);
    rules_free(rules);
    config_free(rc);
    smap_unref(m);
    return ex;
}
