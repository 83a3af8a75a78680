/*
 * router/rules.h - operator query rules: PCRE2 regexes on statement text.
 *
 * The config's `rule = deny /regex/ "message"` and `rule = allow /regex/`
 * lines become a struct rules, checked in order before the analyzer's
 * decision is used; the first matching rule applies (rules_apply()):
 *   deny   the statement is refused with the rule's message (ER 1227,
 *          ER_SPECIFIC_ACCESS_DENIED, SQLSTATE 42000);
 *          typical use: block a bad query pattern during an incident.
 *   allow  the statement may run as SESSION on any backend when the
 *          analyzer refused it only for its kind and it reads or writes no
 *          table rows (analyze_result.allowable: SHOW PROCESSLIST, FLUSH,
 *          KILL, SET of server variables, ...). It never lets a table
 *          access that is not limited to one user through, never changes
 *          a ROUTE, and never admits sql_mode/charset changes that would
 *          make the analyzer misread later statements.
 * Patterns are compiled once, JIT-compiled when PCRE2 supports it, and
 * matched on the raw statement bytes (no UTF-8 mode, '.' matches newlines;
 * use (?i) for case-insensitive rules). Each rule counts its hits.
 *
 * Threads: build with rules_new()/rules_add() on one thread, then share
 * read-only: rules_match() may be called from any number of threads at
 * once (each thread has its own PCRE2 match data, created on its first
 * match and freed at thread exit); the hit counters are atomic. Free only
 * when no thread can still match against it.
 */
#ifndef SHARDWIRE_ROUTER_RULES_H
#define SHARDWIRE_ROUTER_RULES_H

#include <stddef.h>
#include <stdint.h>

struct analyze_result;

enum rules_action {
    RULES_DENY,
    RULES_ALLOW,
};

struct rules;
struct rules_rule;

/* Returns an empty rule list, or NULL when out of memory. */
struct rules *rules_new(void);

/* Frees <r> and its rules; rules_free(NULL) does nothing. */
void rules_free(struct rules *r);

/*
 * Appends a rule matching the PCRE2 <pattern> (NUL-terminated) with
 * <action>; <message> (may be NULL for a default) is what a DENY sends,
 * prefixed with "shardwire: " unless it already starts with it. Returns 0,
 * or -1 with a malloc'd *errp ("rule 3: regex error at offset 5: missing
 * closing parenthesis"); caller frees. Not thread-safe (load time only).
 */
int rules_add(struct rules *r, const char *pattern, enum rules_action action,
              const char *message, char **errp);

/* Number of rules, and rule <i> (0-based, in order) for metrics. */
size_t rules_count(const struct rules *r);
const struct rules_rule *rules_get(const struct rules *r, size_t i);

/*
 * The first rule whose pattern matches somewhere in <sql>/<len> (any bytes,
 * not NUL-terminated), or NULL. Counts a hit on it. A match that PCRE2
 * cannot finish (match limit, JIT stack) counts as a match for a DENY rule
 * (fail closed) and as no match for an ALLOW rule; rules_rule_errors()
 * counts those. Thread-safe (see above); allocates only on a thread's
 * first call.
 */
const struct rules_rule *rules_match(struct rules *r, const char *sql, size_t len);

/*
 * Applies <rule> (from rules_match(), may be NULL) to the analyzer's
 * decision <res>: DENY turns it into a REJECT with the rule's message;
 * ALLOW turns an allowable REJECT into SESSION (stmt OTHER). Returns 1 when
 * <res> changed, else 0.
 */
int rules_apply(const struct rules_rule *rule, struct analyze_result *res);

enum rules_action rules_rule_action(const struct rules_rule *rule);
const char *rules_rule_pattern(const struct rules_rule *rule);
const char *rules_rule_message(const struct rules_rule *rule);   /* DENY's full text */
uint64_t rules_rule_hits(const struct rules_rule *rule);
uint64_t rules_rule_errors(const struct rules_rule *rule);

#endif
