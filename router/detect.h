/*
 * router/detect.h - is a shard's master really dead? The decision that
 * starts an automatic failover, from every live router's health view.
 *
 * A master counts as failed only when a strict majority of the live routers
 * see it down, and no standby that some router can reach still replicates
 * from it (a standby with a running IO thread connected to the master proves
 * the master alive, whatever the routers' own network says). One router that
 * lost its network therefore never causes a failover, and neither does a
 * partition between the routers and a master that its standbys still reach.
 * A shard failed over recently is left alone for a window (anti-flap).
 *
 * Pure: the views and the clock come in as arguments.
 */
#ifndef SHARDWIRE_ROUTER_DETECT_H
#define SHARDWIRE_ROUTER_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/health.h"
#include "shardmap/smap.h"

/* One router's view of one server, as published in its registration. */
struct detect_view {
    enum health_verdict verdict;
    bool                is_replica;      /* standby views: SHOW SLAVE STATUS had a row */
    bool                io_running;      /* ... and its IO thread runs */
    struct smap_endpoint source;         /* ... replicating from here */
};

/* What the routers say about one shard. */
struct detect_input {
    unsigned                  n_routers;     /* live routers (registrations) */
    unsigned                  n_standbys;
    /* master[r]: router r's view of the master (HEALTH_UNKNOWN: no view) */
    const struct detect_view *master;
    /* standby[r * n_standbys + k]: router r's view of standby k */
    const struct detect_view *standby;
    const struct smap_endpoint *master_ep;
    uint64_t                  last_failover_ms;  /* 0: never */
};

struct detect_policy {
    uint64_t flap_window_ms;      /* no second automatic failover within this */
};

enum detect_result {
    DETECT_HEALTHY,           /* no router sees the master down */
    DETECT_MINORITY,          /* some do, not a strict majority of live routers */
    DETECT_STANDBY_SEES_IT,   /* a majority does, but a standby still replicates from it */
    DETECT_FLAPPING,          /* failed, but the shard failed over within the window */
    DETECT_FAILED,            /* fail over now */
};

const char *detect_result_name(enum detect_result r);

/* One "health ..." line of a router's registration (router/control.h). */
struct detect_line {
    char                 shard[SMAP_NAME_MAX];
    bool                 is_master;
    struct smap_endpoint server;
    struct detect_view   v;
};

/* Parses <line>/<len> (without its newline). Returns 0, or -1 when it is not
 * a well-formed health line (other lines of a registration included). */
int detect_parse_line(const char *line, size_t len, struct detect_line *out);

/* Decides for one shard at <now_ms>. */
enum detect_result detect_master(const struct detect_input *in, const struct detect_policy *pol,
                                 uint64_t now_ms);

/* What the other routers answered when this one's lease ran out
 * (router/leasepeer.c asks them). */
struct detect_lease_round {
    unsigned n_peers;      /* known from the registrations */
    unsigned n_lost;       /* answered: ZooKeeper silent for longer than their lease */
    unsigned n_have;       /* answered: ZooKeeper confirmed their map within their lease */
};

/* Whether <round> confirms that ZooKeeper is down for everyone, so that a
 * router whose lease ran out may keep writing: a strict majority of the
 * peers lost it too (one that does not answer counts against) and none
 * still has it (that one could be taking part in a failover). */
bool detect_lease_by_peers(const struct detect_lease_round *round);

#endif
