/*
 * router/rules.c - operator query rules with PCRE2 (see rules.h).
 *
 * Cold path (rules_add) allocates and reports errors as strings; the hot
 * path (rules_match) runs JIT code on a per-thread match data and touches
 * only atomic counters, so one compiled rule list serves every worker.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "router/rules.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/analyze.h"
#include "protocol/wire.h"
#include "router/util.h"

/* Backtracking bounds: a pattern that explodes on a 1 MB statement costs
 * at most this much work per statement instead of stalling a worker. */
#define RULES_MATCH_LIMIT  1000000
#define RULES_DEPTH_LIMIT  10000
#define RULES_PREFIX       "shardwire: "

struct rules_rule {
    enum rules_action action;
    char             *pattern;
    char             *message;      /* DENY: full client-visible text */
    pcre2_code       *code;
    unsigned          jit:1;        /* pcre2_jit_compile() succeeded */
    _Atomic uint64_t  hits;
    _Atomic uint64_t  errors;       /* matches PCRE2 could not finish */
};

/* always: n <= cap; rules[0..n) are complete */
struct rules {
    struct rules_rule   **v;
    size_t                n, cap;
    pcre2_match_context  *mctx;
};

/* One match data per thread, shared by all rule lists (a match data only
 * needs room for the whole-match pair, whatever the pattern). */
static pthread_once_t rules_once = PTHREAD_ONCE_INIT;
static pthread_key_t  rules_key;
static int            rules_key_ok;

static void rules_md_free(void *md)
{
    pcre2_match_data_free(md);
}

static void rules_key_init(void)
{
    rules_key_ok = pthread_key_create(&rules_key, rules_md_free) == 0;
}

static pcre2_match_data *rules_md(void)
{
    pthread_once(&rules_once, rules_key_init);
    if (!rules_key_ok)
        return NULL;
    pcre2_match_data *md = pthread_getspecific(rules_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md && pthread_setspecific(rules_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

struct rules *rules_new(void)
{
    struct rules *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->mctx = pcre2_match_context_create(NULL);
    if (!r->mctx) {
        free(r);
        return NULL;
    }
    pcre2_set_match_limit(r->mctx, RULES_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, RULES_DEPTH_LIMIT);
    return r;
}

static void rules_rule_free(struct rules_rule *rule)
{
    if (!rule)
        return;
    pcre2_code_free(rule->code);
    free(rule->pattern);
    free(rule->message);
    free(rule);
}

void rules_free(struct rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        rules_rule_free(r->v[i]);
    free(r->v);
    pcre2_match_context_free(r->mctx);
    free(r);
}

int rules_add(struct rules *r, const char *pattern, enum rules_action action,
              const char *message, char **errp)
{
    struct rules_rule *rule = NULL;
    size_t no = r->n + 1;
    int errcode;
    PCRE2_SIZE erroff;

    *errp = NULL;
    if (action != RULES_DENY && action != RULES_ALLOW) {
        *errp = util_fmt("rule %zu: unknown action", no);
        return -1;
    }
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 8;
        struct rules_rule **nv = realloc(r->v, nc * sizeof(*nv));
        if (!nv)
            goto oom;
        r->v = nv;
        r->cap = nc;
    }
    rule = calloc(1, sizeof(*rule));
    if (!rule)
        goto oom;
    rule->action = action;
    rule->pattern = strdup(pattern);
    if (!message || !*message)
        message = action == RULES_DENY ? "statement blocked by an operator rule" : "";
    if (strncmp(message, RULES_PREFIX, strlen(RULES_PREFIX)) == 0)
        rule->message = strdup(message);
    else
        rule->message = util_fmt(RULES_PREFIX "%s", message);
    if (!rule->pattern || !rule->message)
        goto oom;
    rule->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_DOTALL,
                               &errcode, &erroff, NULL);
    if (!rule->code) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(errcode, buf, sizeof(buf));
        *errp = util_fmt("rule %zu: regex error at offset %zu: %s", no, (size_t)erroff,
                          (const char *)buf);
        rules_rule_free(rule);
        return -1;
    }
    /* no JIT on this platform/build: the interpreter gives the same answers */
    rule->jit = pcre2_jit_compile(rule->code, PCRE2_JIT_COMPLETE) == 0;
    atomic_init(&rule->hits, 0);
    atomic_init(&rule->errors, 0);
    r->v[r->n++] = rule;
    return 0;
oom:
    rules_rule_free(rule);
    *errp = util_fmt("rule %zu: out of memory", no);
    return -1;
}

size_t rules_count(const struct rules *r)
{
    return r ? r->n : 0;
}

const struct rules_rule *rules_get(const struct rules *r, size_t i)
{
    return r && i < r->n ? r->v[i] : NULL;
}

const struct rules_rule *rules_match(struct rules *r, const char *sql, size_t len)
{
    if (!r || r->n == 0)
        return NULL;
    pcre2_match_data *md = rules_md();
    for (size_t i = 0; i < r->n; i++) {
        struct rules_rule *rule = r->v[i];
        int rc;
        if (!md) {
            rc = PCRE2_ERROR_NOMEMORY;
        } else if (rule->jit) {
            rc = pcre2_jit_match(rule->code, (PCRE2_SPTR)sql, len, 0, 0, md, r->mctx);
        } else {
            rc = pcre2_match(rule->code, (PCRE2_SPTR)sql, len, 0, 0, md, r->mctx);
        }
        if (rc == PCRE2_ERROR_NOMATCH)
            continue;
        if (rc < 0) {
            atomic_fetch_add_explicit(&rule->errors, 1, memory_order_relaxed);
            if (rule->action != RULES_DENY)
                continue;
        }
        atomic_fetch_add_explicit(&rule->hits, 1, memory_order_relaxed);
        return rule;
    }
    return NULL;
}

int rules_apply(const struct rules_rule *rule, struct analyze_result *res)
{
    if (!rule)
        return 0;
    if (rule->action == RULES_DENY) {
        res->kind = ANALYZE_REJECT;
        res->err_no = WIRE_ER_SPECIFIC_ACCESS_DENIED;  /* as docs/config.md says */
        memcpy(res->sqlstate, "42000", 6);
        res->msg = rule->message;
        res->offset = 0;
        res->param_index = -1;
        res->key_params = 0;
        res->scope_params = 0;
        res->key_len = 0;
        res->allowable = 0;     /* an operator's deny is final */
        return 1;
    }
    if (res->kind == ANALYZE_REJECT && res->allowable) {
        res->kind = ANALYZE_SESSION;
        res->stmt = ANALYZE_STMT_OTHER;
        res->msg = NULL;
        res->err_no = 0;
        return 1;
    }
    return 0;
}

enum rules_action rules_rule_action(const struct rules_rule *rule)
{
    return rule->action;
}

const char *rules_rule_pattern(const struct rules_rule *rule)
{
    return rule->pattern;
}

const char *rules_rule_message(const struct rules_rule *rule)
{
    return rule->message;
}

uint64_t rules_rule_hits(const struct rules_rule *rule)
{
    return atomic_load_explicit(&((struct rules_rule *)rule)->hits, memory_order_relaxed);
}

uint64_t rules_rule_errors(const struct rules_rule *rule)
{
    return atomic_load_explicit(&((struct rules_rule *)rule)->errors, memory_order_relaxed);
}
