/*
 * protocol/gtid.h - MariaDB GTID positions ("0-1-25,1-7-3": per replication
 * domain the last transaction, domain-server-sequence) and how two compare.
 *
 * With gtid_strict_mode every domain's sequence numbers only grow along one
 * history, so "server A holds everything server B holds" is, per domain,
 * seq(A) >= seq(B). Promotion uses it to pick the standby that received the
 * most and to prove no other standby holds a transaction it lacks. Pure.
 */
#ifndef SHARDWIRE_PROTOCOL_GTID_H
#define SHARDWIRE_PROTOCOL_GTID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GTID_MAX_DOMAINS 64

struct gtid {
    uint32_t domain;
    uint32_t server;
    uint64_t seq;
};

struct gtid_pos {
    unsigned    n;                       /* domains, each at most once */
    struct gtid g[GTID_MAX_DOMAINS];
};

/* Parses <s>/<len> (empty: no transaction yet; spaces around entries are
 * allowed) into <*out>. Returns 0, or -1 if malformed, a domain repeats, or
 * there are more than GTID_MAX_DOMAINS. */
int gtid_parse(const char *s, size_t len, struct gtid_pos *out);

/* True when <a> holds every transaction <b> holds: for each domain of <b>,
 * <a> has it with a sequence at least as high. */
bool gtid_covers(const struct gtid_pos *a, const struct gtid_pos *b);

/* Writes <p> as MariaDB prints it, domains in the order held. Returns the
 * length, or -1 if <cap> is too small. */
int gtid_format(const struct gtid_pos *p, char *buf, size_t cap);

#endif
