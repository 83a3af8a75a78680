/*
 * router/config.h - the shardwire configuration file.
 *
 * `key = value` lines, '#' comments; see docs/config.md and
 * docs/shardwire.conf.example. Loading is a cold path: errors come back as a
 * malloc'd message naming the file, line and key.
 */
#ifndef SHARDWIRE_ROUTER_CONFIG_H
#define SHARDWIRE_ROUTER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/analyze.h"
#include "protocol/handshake.h"
#include "protocol/proxyproto.h"
#include "shardmap/zkauth.h"

#define CONFIG_MAX_USERS 64
#define CONFIG_MAX_PROXY_NETS 64
#define CONFIG_MAX_RULES 256

struct config_user {
    char    name[64];
    uint8_t stage2[HANDSHAKE_SHA1_LEN];   /* SHA1(SHA1(password)) */
    bool    empty_password;
};

enum config_rule_action { CONFIG_RULE_DENY, CONFIG_RULE_ALLOW };

struct config_rule {
    enum config_rule_action action;
    char                   *pattern;   /* PCRE2 syntax */
    char                   *message;   /* deny: sent to the client; may be NULL */
};

struct config {
    char     *path;
    char      listen_host[256];
    uint16_t  listen_port;
    unsigned  workers;                 /* resolved: never 0 after config_load() */

    struct analyze_config analyze;     /* database, shard key columns and type */

    char     *map_file;                /* map source: a file ... */
    char     *zookeeper;               /* ... or ZooKeeper hosts "h:p,h:p" */
    char     *zk_root;
    char     *map_cache;
    char     *router_id;               /* registration name; default host-port */
    unsigned  zk_start_timeout_ms;     /* wait for ZooKeeper's map at start */
    char     *zookeeper_auth;          /* "digest:USER:PASSWORD"; cleared once parsed */
    char     *zookeeper_auth_file;     /* ... or a file holding it */
    bool      zookeeper_acl_open;      /* 'zookeeper_acl = open': no credentials, by choice */
    bool      have_zk_auth;            /* zk_auth is set (from either key) */
    struct zkauth zk_auth;

    char     *backend_user;
    char     *backend_password;

    struct config_user users[CONFIG_MAX_USERS];
    unsigned  n_users;

    struct config_rule rules[CONFIG_MAX_RULES];
    unsigned  n_rules;

    char     *server_version;
    uint32_t  max_allowed_packet;
    uint64_t  session_memory_limit;    /* bytes one session may hold (see session.c) */
    uint64_t  router_memory_limit;     /* bytes all sessions together may hold */
    unsigned  max_client_connections;
    unsigned  pool_max_per_shard;      /* backend connections per shard, whole router */
    unsigned  pool_max_pinned_per_shard; /* of those, held by pinned sessions; 0: 3/4 */
    unsigned  pinned_idle_timeout_ms;  /* idle session holding a connection; 0: idle_timeout_ms */
    unsigned  connect_timeout_ms;      /* backend connect */
    unsigned  handshake_timeout_ms;    /* client handshake */
    unsigned  idle_timeout_ms;         /* idle client; 0 = never */
    unsigned  pool_wait_timeout_ms;    /* statement waiting for a backend connection */
    unsigned  pool_idle_timeout_ms;    /* idle backend connections closed after; 0 = never */
    unsigned  pool_max_age_ms;         /* backend connections retired after; 0 = never */
    unsigned  query_timeout_ms;        /* 0 = none */
    unsigned  shutdown_timeout_ms;     /* in-flight statements get this long on SIGTERM */
    unsigned  drain_delay_ms;          /* SIGTERM: /health 503 and serving this long first */
    char     *tls_cert;                /* PEM; with tls_key: TLS offered to clients */
    char     *tls_key;
    char     *tls_ca;                  /* optional: CA for client certificates */
    bool      require_secure_transport;/* refuse logins without TLS */
    char     *control_user;            /* control-plane account (health checks); NULL: off */
    char     *control_password;
    char     *repl_user;               /* a standby's replication account: the coordinator
                                        * demotes the old master of an interrupted switchover
                                        * with it; NULL: it cannot roll such a one forward */
    char     *repl_password;
    unsigned  health_interval_ms;      /* each server probed this often */
    unsigned  health_timeout_ms;       /* a probe unanswered by then has failed */
    unsigned  health_down_after_fails; /* consecutive failed probes before DOWN ... */
    unsigned  health_down_after_ms;    /* ... and this long since the first */
    unsigned  standby_lost_ms;         /* refuse writes to a master no standby has
                                        * acknowledged for this long; 0: never */
    bool      auto_failover;           /* this router may coordinate automatic failovers */
    char     *failover_zookeeper_auth_file; /* credential allowed to change the map */
    bool      have_failover_zk_auth;
    struct zkauth failover_zk_auth;
    unsigned  failover_flap_window_ms; /* no second automatic failover of a shard within */
    unsigned  failover_router_wait_ms; /* wait for routers to run the new map */
    unsigned  failover_apply_timeout_ms; /* the candidate applying its relay log */
    unsigned  failover_buffer_ms;      /* hold statements for an unreachable master this long */
    unsigned  failover_buffer_max;     /* ... at most this many at once (whole router) */
    unsigned  move_hold_ms;            /* hold statements for a frozen vbucket this long */
    unsigned  move_drain_ms;           /* transactions on a frozen vbucket may run this long */
    char     *admin_listen;            /* admin HTTP "HOST:PORT" or "PORT" (loopback); NULL: off */
    char     *admin_user;              /* basic auth for the admin HTTP; NULL: none */
    char     *admin_password;
    unsigned  map_lease_ms;            /* /health fails when ZooKeeper is silent longer */
    bool      map_lease_peers;         /* ...unless the peers lost ZooKeeper too (leasepeer.h) */
    struct proxyproto_net proxy_nets[CONFIG_MAX_PROXY_NETS]; /* peers that must send a
                                        * PROXY protocol header first */
    unsigned  n_proxy_nets;            /* 0: PROXY protocol off */
    char     *log_file;                /* NULL: stderr */
    char      log_level[16];
};

/* Loads <path>. Returns a config, or NULL with <*errp> set (caller frees). */
struct config *config_load(const char *path, char **errp);

/* Parses config text (for tests). <name> is used in messages. */
struct config *config_parse(const char *text, const char *name, char **errp);

void config_free(struct config *c);

/* Finds an app user by name; NULL if none. */
const struct config_user *config_find_user(const struct config *c, const char *name,
                                           size_t name_len);

#endif
