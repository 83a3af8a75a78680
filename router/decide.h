/*
 * router/decide.h - the routing decision for one statement, shared by the
 * router's sessions (router/session_route.c) and `shardctl explain`, so that
 * explain shows exactly what a router would do: the same analyzer options,
 * the map's key settings merged the same way, and the operator rules
 * (router/rules.h) applied the same way after the analyzer.
 *
 * No sockets, threads or logging; the caller owns every object.
 */
#ifndef SHARDWIRE_ROUTER_DECIDE_H
#define SHARDWIRE_ROUTER_DECIDE_H

#include <stdbool.h>
#include <stddef.h>

struct analyze;
struct analyze_config;
struct analyze_result;
struct config;
struct rules;
struct smap;

/*
 * The analyzer configuration a router uses: <base> (the config's database,
 * key columns and type) with the key columns and type of <m> when not NULL
 * (the cluster's settings win), and the router's own options (several '?'
 * may carry the key: the router checks at EXECUTE that they agree).
 * <out> may be <base>.
 */
void decide_analyze_config(struct analyze_config *out, const struct analyze_config *base,
                           const struct smap *m);

/*
 * Compiles the config's `rule` lines. Returns 0 with *<out> the rules (NULL
 * when there are none), or -1 with a malloc'd *<errp> naming the bad rule
 * (then *<out> holds what was compiled so far, for rules_free()).
 */
int decide_rules_load(const struct config *cfg, struct rules **out, char **errp);

/*
 * Decides what to do with statement <sql>/<len>: the analyzer <a>, then the
 * first matching rule of <rules> (may be NULL). Fills *<res>. Returns 0 when
 * the analyzer's decision stands, 1 when a rule changed it, -1 when the
 * analyzer ran out of memory (*<res> is then a REJECT). Thread: any, as
 * rules_match() allows; <a> belongs to the calling thread.
 */
int decide_statement(struct analyze *a, struct rules *rules, const char *sql, size_t len,
                     struct analyze_result *res);

/*
 * The same for a session scoped to the user <key>/<key_len> (docs/orms.md):
 * protocol/scope.h's scope_apply(), then the rules on the statement as sent
 * by the client. <prepared>: a COM_STMT_PREPARE (scope_apply()'s
 * <scope_params>). Sets *<verdict> (enum scope_verdict); on SCOPE_REWRITTEN
 * <buf> holds the statement to send. Returns as decide_statement().
 */
struct scope_buf;
int decide_scoped(struct analyze *a, struct rules *rules, const char *sql, size_t len,
                  const char *key, size_t key_len, bool prepared, struct scope_buf *buf,
                  struct analyze_result *res, int *verdict);

#endif
