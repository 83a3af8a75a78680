/*
 * router/decide.c - the routing decision (see decide.h).
 */
#include "router/decide.h"

#include <string.h>

#include "protocol/analyze.h"
#include "protocol/scope.h"
#include "router/config.h"
#include "router/rules.h"
#include "shardmap/smap.h"

void decide_analyze_config(struct analyze_config *out, const struct analyze_config *base,
                           const struct smap *m)
{
    if (out != base)
        *out = *base;
    if (m != NULL)
        smap_key_apply(smap_key_config(m), out);
    out->multi_param_key = 1;
}

int decide_rules_load(const struct config *cfg, struct rules **out, char **errp)
{
    *out = NULL;
    if (cfg->n_rules == 0)
        return 0;
    *out = rules_new();
    if (*out == NULL) {
        *errp = strdup("out of memory");
        return -1;
    }
    for (unsigned i = 0; i < cfg->n_rules; i++) {
        const struct config_rule *cr = &cfg->rules[i];

        if (rules_add(*out, cr->pattern,
                      cr->action == CONFIG_RULE_DENY ? RULES_DENY : RULES_ALLOW, cr->message,
                      errp) < 0)
            return -1;
    }
    return 0;
}

int decide_statement(struct analyze *a, struct rules *rules, const char *sql, size_t len,
                     struct analyze_result *res)
{
    int rc = analyze_statement(a, sql, len, res) < 0 ? -1 : 0;

    /* A rule may still deny what the analyzer could not finish: fail closed
     * either way (an out-of-memory REJECT stays a REJECT under ALLOW, since
     * rules_apply() only lifts allowable refusals). */
    if (rules && rules_apply(rules_match(rules, sql, len), res) && rc == 0)
        rc = 1;
    return rc;
}

int decide_scoped(struct analyze *a, struct rules *rules, const char *sql, size_t len,
                  const char *key, size_t key_len, bool prepared, struct scope_buf *buf,
                  struct analyze_result *res, int *verdict)
{
    int v = scope_apply(a, sql, len, key, key_len, prepared, buf, res);
    int rc = v < 0 ? -1 : 0;

    *verdict = v < 0 ? SCOPE_REJECT : v;
    /* rules match what the client sent; an allow rule lifts only a refusal
     * of the statement's kind, which the rewrite never produces */
    if (rules && rules_apply(rules_match(rules, sql, len), res) && rc == 0) {
        rc = 1;
        if (res->kind != ANALYZE_REJECT)
            *verdict = SCOPE_ASIS;
        else
            *verdict = SCOPE_REJECT;
    }
    return rc;
}
