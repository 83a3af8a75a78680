/*
 * router/decide.c - the routing decision (see decide.h).
 */
#include "router/decide.h"

#include <string.h>

#include "protocol/analyze.h"
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

    /* The sessions do not follow PIPES_AS_CONCAT yet: refuse turning it on
     * (as before the analyzer learnt it) until they do. */
    if (res->kind != ANALYZE_REJECT && res->sets_sql_mode &&
        (res->sql_mode & ANALYZE_MODE_PIPES_AS_CONCAT)) {
        res->kind = ANALYZE_REJECT;
        res->err_no = 1235;
        memcpy(res->sqlstate, "42000", 6);
        res->msg = "shardwire: sql_mode PIPES_AS_CONCAT is not followed by this router yet";
        res->offset = 0;
    }

    /* A rule may still deny what the analyzer could not finish: fail closed
     * either way (an out-of-memory REJECT stays a REJECT under ALLOW, since
     * rules_apply() only lifts allowable refusals). */
    if (rules && rules_apply(rules_match(rules, sql, len), res) && rc == 0)
        rc = 1;
    return rc;
}
