/*
 * router/config.c - configuration file parsing and validation.
 */
#include "router/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "router/util.h"

static void set_defaults(struct config *c)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
    c->listen_port = 6033;
    c->workers = n > 0 ? (unsigned)n : 1;
    analyze_config_default(&c->analyze);
    c->zk_root = strdup("/shardwire");
    c->server_version = strdup("5.5.5-10.11.0-MariaDB-shardwire");
    c->max_allowed_packet = 64u << 20;
    c->session_memory_limit = 128u << 20;
    c->router_memory_limit = (uint64_t)2 << 30;
    c->max_client_connections = 10000;
    c->pool_max_per_shard = 32;
    c->pinned_idle_timeout_ms = 60000;
    c->connect_timeout_ms = 2000;
    c->handshake_timeout_ms = 5000;
    c->idle_timeout_ms = 8 * 3600 * 1000;
    c->pool_wait_timeout_ms = 5000;
    c->pool_idle_timeout_ms = 60000;
    c->pool_max_age_ms = 3600000;
    c->query_timeout_ms = 0;
    c->shutdown_timeout_ms = 10000;
    c->zk_start_timeout_ms = 5000;
    c->health_interval_ms = 1000;
    c->health_timeout_ms = 1000;
    c->health_down_after_fails = 3;
    c->health_down_after_ms = 3000;
    c->standby_lost_ms = 1500;
    c->map_lease_ms = 15000;
    c->map_lease_peers = true;
    c->failover_flap_window_ms = 300000;
    c->failover_router_wait_ms = 10000;
    c->failover_apply_timeout_ms = 60000;
    c->failover_buffer_ms = 10000;
    c->failover_buffer_max = 10000;
    c->move_hold_ms = 5000;
    c->move_drain_ms = 5000;
    snprintf(c->log_level, sizeof(c->log_level), "info");
}

/* Parses an unsigned number with an optional K/M/G suffix into <*out>. */
/* "on" or "off" into *<out>. Returns NULL, or a malloc'd message. */
static char *parse_on_off(const char *v, bool *out)
{
    if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
        return util_fmt("'%s' is not on|off", v);
    *out = strcmp(v, "on") == 0;
    return NULL;
}

static int parse_uint(const char *v, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long n;
    unsigned shift = 0;

    if (!isdigit((unsigned char)*v))
        return -1;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno)
        return -1;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    /* A shift that drops high bits would turn a huge value into a small
     * one ("17179869184G" into 0, which means "never" for timeouts). */
    if (n > (ULLONG_MAX >> shift))
        return -1;
    n <<= shift;
    if (*end || n > max)
        return -1;
    *out = n;
    return 0;
}

static int parse_hostport(const char *v, char *host, size_t host_cap, uint16_t *port)
{
    const char *colon = strrchr(v, ':');
    uint64_t p;

    if (!colon || colon == v || (size_t)(colon - v) >= host_cap)
        return -1;
    if (parse_uint(colon + 1, 65535, &p) < 0 || p == 0)
        return -1;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = 0;
    if (host[0] == '[') {               /* [::1]:6033 */
        size_t n = strlen(host);

        if (n < 3 || host[n - 1] != ']')
            return -1;
        memmove(host, host + 1, n - 2);
        host[n - 2] = 0;
    }
    *port = (uint16_t)p;
    return 0;
}

/* "NAME *HASH" or "NAME" (empty password is spelled "NAME -"). */
static char *parse_user(struct config *c, char *v)
{
    struct config_user *u;
    char *name = strtok(v, " \t"), *hash = strtok(NULL, " \t");

    if (!name || !hash || strtok(NULL, " \t"))
        return strdup("expected 'NAME *HASH' (hash as MySQL's PASSWORD(): '*' + 40 hex digits)");
    if (c->n_users == CONFIG_MAX_USERS)
        return util_fmt("more than %d users", CONFIG_MAX_USERS);
    if (strlen(name) >= sizeof(u->name))
        return strdup("user name too long");
    u = &c->users[c->n_users];
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "%s", name);
    if (strcmp(hash, "-") == 0) {
        u->empty_password = true;
    } else if (handshake_parse_hash(hash, u->stage2) < 0) {
        return util_fmt("user '%s': bad password hash (want '*' + 40 hex digits)", name);
    }
    for (unsigned i = 0; i < c->n_users; i++)
        if (strcmp(c->users[i].name, name) == 0)
            return util_fmt("user '%s' defined twice", name);
    c->n_users++;
    return NULL;
}

/* "deny /REGEX/ MESSAGE..." or "allow /REGEX/". The regex ends at the last '/'
 * followed by whitespace or the end of the line, so it may contain '/'. */
static char *parse_rule(struct config *c, char *v)
{
    struct config_rule *r;
    enum config_rule_action action;
    char *p, *end = NULL;

    if (strncmp(v, "deny", 4) == 0 && isspace((unsigned char)v[4])) {
        action = CONFIG_RULE_DENY;
        p = v + 4;
    } else if (strncmp(v, "allow", 5) == 0 && isspace((unsigned char)v[5])) {
        action = CONFIG_RULE_ALLOW;
        p = v + 5;
    } else {
        return strdup("expected 'deny /REGEX/ [message]' or 'allow /REGEX/'");
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '/')
        return strdup("the regex must be written between slashes: /.../");
    for (char *q = p + 1; *q; q++)
        if (*q == '/' && (q[1] == 0 || isspace((unsigned char)q[1])))
            end = q;
    if (!end || end == p + 1)
        return strdup("regex is not closed with '/' or is empty");
    if (c->n_rules == CONFIG_MAX_RULES)
        return util_fmt("more than %d rules", CONFIG_MAX_RULES);
    r = &c->rules[c->n_rules];
    r->action = action;
    r->pattern = strndup(p + 1, (size_t)(end - p - 1));
    p = end + 1;
    while (isspace((unsigned char)*p))
        p++;
    /* The message may be written in double quotes. */
    if (*p == '"' && strlen(p) >= 2 && p[strlen(p) - 1] == '"')
        r->message = strndup(p + 1, strlen(p) - 2);
    else
        r->message = *p ? strdup(p) : NULL;
    c->n_rules++;
    return NULL;
}

static char *parse_key_columns(struct config *c, char *v)
{
    unsigned n = 0;

    for (char *tok = strtok(v, ", \t"); tok; tok = strtok(NULL, ", \t")) {
        if (n == ANALYZE_MAX_KEY_COLS)
            return util_fmt("more than %d shard key columns", ANALYZE_MAX_KEY_COLS);
        if (strlen(tok) >= ANALYZE_NAME_MAX)
            return util_fmt("column name '%s' too long", tok);
        snprintf(c->analyze.key_columns[n++], ANALYZE_NAME_MAX, "%s", tok);
    }
    if (n == 0)
        return strdup("no column named");
    c->analyze.n_key_columns = n;
    return NULL;
}

struct uint_key {
    const char *name;
    size_t      off;
    uint64_t    max;
};

#define UKEY(field, max) { #field, offsetof(struct config, field), (max) }

static const struct uint_key uint_keys[] = {
    UKEY(workers, 256),
    UKEY(max_client_connections, 1000000),
    UKEY(pool_max_per_shard, 100000),
    UKEY(pool_max_pinned_per_shard, 100000),
    UKEY(pinned_idle_timeout_ms, UINT32_MAX),
    UKEY(connect_timeout_ms, 3600000),
    UKEY(handshake_timeout_ms, 3600000),
    UKEY(idle_timeout_ms, UINT32_MAX),
    UKEY(pool_wait_timeout_ms, 3600000),
    UKEY(pool_idle_timeout_ms, UINT32_MAX),
    UKEY(pool_max_age_ms, UINT32_MAX),
    UKEY(query_timeout_ms, 86400000),
    UKEY(shutdown_timeout_ms, 3600000),
    UKEY(drain_delay_ms, 3600000),
    UKEY(zk_start_timeout_ms, 3600000),
    UKEY(health_interval_ms, 3600000),
    UKEY(health_timeout_ms, 3600000),
    UKEY(health_down_after_fails, 1000),
    UKEY(health_down_after_ms, 3600000),
    UKEY(standby_lost_ms, 3600000),
    UKEY(map_lease_ms, 3600000),
    UKEY(failover_flap_window_ms, 86400000),
    UKEY(failover_router_wait_ms, 3600000),
    UKEY(failover_apply_timeout_ms, 3600000),
    UKEY(failover_buffer_ms, 3600000),
    UKEY(failover_buffer_max, 10000000),
    UKEY(move_hold_ms, 600000),
    UKEY(move_drain_ms, 600000),
};

struct str_key {
    const char *name;
    size_t      off;
};

#define SKEY(field) { #field, offsetof(struct config, field) }

static const struct str_key str_keys[] = {
    SKEY(map_file), SKEY(zookeeper), SKEY(zk_root), SKEY(map_cache), SKEY(router_id), SKEY(backend_user),
    SKEY(backend_password), SKEY(server_version), SKEY(log_file), SKEY(tls_cert),
    SKEY(tls_key), SKEY(tls_ca), SKEY(zookeeper_auth), SKEY(zookeeper_auth_file),
    SKEY(control_user), SKEY(control_password), SKEY(admin_listen), SKEY(admin_user),
    SKEY(admin_password), SKEY(failover_zookeeper_auth_file), SKEY(repl_user),
    SKEY(repl_password),
};

/* proxy_protocol_networks: addresses or CIDR networks separated by commas
 * and/or spaces; "" or "off" turns the PROXY protocol off. */
static char *parse_proxy_nets(struct config *c, const char *v)
{
    c->n_proxy_nets = 0;
    if (strcmp(v, "off") == 0)
        return NULL;
    while (*v) {
        size_t len;

        while (*v == ',' || *v == ' ' || *v == '\t')
            v++;
        len = strcspn(v, ", \t");
        if (len == 0)
            break;
        if (c->n_proxy_nets == CONFIG_MAX_PROXY_NETS)
            return util_fmt("more than %d networks", CONFIG_MAX_PROXY_NETS);
        if (proxyproto_net_parse(v, len, &c->proxy_nets[c->n_proxy_nets]) < 0)
            return util_fmt("'%.*s' is not an address or ADDRESS/PREFIX", (int)len, v);
        c->n_proxy_nets++;
        v += len;
    }
    return NULL;
}

/* Applies one key/value pair; returns NULL or a malloc'd message. */
static char *apply(struct config *c, const char *key, char *v, bool *workers_set)
{
    uint64_t n;

    for (size_t i = 0; i < sizeof(uint_keys) / sizeof(uint_keys[0]); i++) {
        if (strcmp(key, uint_keys[i].name) != 0)
            continue;
        if (parse_uint(v, uint_keys[i].max, &n) < 0)
            return util_fmt("'%s' is not a number in 0..%llu", v,
                           (unsigned long long)uint_keys[i].max);
        *(unsigned *)((char *)c + uint_keys[i].off) = (unsigned)n;
        if (strcmp(key, "workers") == 0)
            *workers_set = n != 0;
        return NULL;
    }
    for (size_t i = 0; i < sizeof(str_keys) / sizeof(str_keys[0]); i++) {
        char **field = (char **)((char *)c + str_keys[i].off);

        if (strcmp(key, str_keys[i].name) != 0)
            continue;
        free(*field);
        *field = strdup(v);
        return NULL;
    }
    if (strcmp(key, "listen") == 0) {
        if (parse_hostport(v, c->listen_host, sizeof(c->listen_host), &c->listen_port) < 0)
            return util_fmt("'%s' is not HOST:PORT", v);
    } else if (strcmp(key, "database") == 0) {
        if (!*v || strlen(v) >= ANALYZE_NAME_MAX)
            return strdup("database name empty or too long");
        snprintf(c->analyze.database, ANALYZE_NAME_MAX, "%s", v);
    } else if (strcmp(key, "shard_key") == 0) {
        return parse_key_columns(c, v);
    } else if (strcmp(key, "shard_key_type") == 0) {
        if (strcmp(v, "int") == 0)
            c->analyze.key_type = ANALYZE_KEY_INT;
        else if (strcmp(v, "string") == 0)
            c->analyze.key_type = ANALYZE_KEY_STRING;
        else
            return util_fmt("'%s' is not 'int' or 'string'", v);
    } else if (strcmp(key, "max_allowed_packet") == 0) {
        if (parse_uint(v, 1u << 30, &n) < 0 || n < 1024)
            return util_fmt("'%s' is not a size in 1K..1G", v);
        c->max_allowed_packet = (uint32_t)n;
    } else if (strcmp(key, "session_memory_limit") == 0) {
        if (parse_uint(v, (uint64_t)64 << 30, &n) < 0 || n < (64u << 10))
            return util_fmt("'%s' is not a size in 64K..64G", v);
        c->session_memory_limit = n;
    } else if (strcmp(key, "router_memory_limit") == 0) {
        if (parse_uint(v, (uint64_t)1 << 40, &n) < 0 || n < (1u << 20))
            return util_fmt("'%s' is not a size in 1M..1T", v);
        c->router_memory_limit = n;
    } else if (strcmp(key, "user") == 0) {
        return parse_user(c, v);
    } else if (strcmp(key, "rule") == 0) {
        return parse_rule(c, v);
    } else if (strcmp(key, "proxy_protocol_networks") == 0) {
        return parse_proxy_nets(c, v);
    } else if (strcmp(key, "map_lease_peers") == 0) {
        return parse_on_off(v, &c->map_lease_peers);
    } else if (strcmp(key, "auto_failover") == 0) {
        return parse_on_off(v, &c->auto_failover);
    } else if (strcmp(key, "require_secure_transport") == 0) {
        if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
            c->require_secure_transport = true;
        else if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
            c->require_secure_transport = false;
        else
            return util_fmt("'%s' is not on|off", v);
    } else if (strcmp(key, "zookeeper_acl") == 0) {
        if (strcmp(v, "open") != 0 && strcmp(v, "protected") != 0)
            return util_fmt("'%s' is not open|protected", v);
        c->zookeeper_acl_open = strcmp(v, "open") == 0;
    } else if (strcmp(key, "log_level") == 0) {
        if (strcmp(v, "error") && strcmp(v, "warn") && strcmp(v, "info") && strcmp(v, "debug"))
            return util_fmt("'%s' is not error|warn|info|debug", v);
        snprintf(c->log_level, sizeof(c->log_level), "%s", v);
    } else {
        return util_fmt("unknown key '%s'", key);
    }
    return NULL;
}

static char *validate(const struct config *c)
{
    if (!c->analyze.database[0])
        return strdup("'database' is required");
    if (!c->map_file && !c->zookeeper)
        return strdup("a map source is required: 'map_file' or 'zookeeper'");
    if (c->map_file && c->zookeeper)
        return strdup("'map_file' and 'zookeeper' exclude each other");
    if (c->zookeeper_auth && c->zookeeper_auth_file)
        return strdup("'zookeeper_auth' and 'zookeeper_auth_file' exclude each other");
    if (c->zookeeper && !c->zookeeper_auth && !c->zookeeper_auth_file && !c->zookeeper_acl_open)
        return strdup("'zookeeper' needs credentials ('zookeeper_auth_file' or "
                      "'zookeeper_auth'), or 'zookeeper_acl = open' to use an unprotected "
                      "cluster (docs/zookeeper.md)");
    if (!c->backend_user)
        return strdup("'backend_user' is required");
    if (c->n_users == 0)
        return strdup("no 'user' defined: no app could log in");
    if (c->listen_port == 0)
        return strdup("'listen' port is 0");
    if (!c->tls_cert != !c->tls_key)
        return strdup("'tls_cert' and 'tls_key' go together");
    if (c->require_secure_transport && !c->tls_cert)
        return strdup("'require_secure_transport = on' needs 'tls_cert' and 'tls_key'");
    if (!c->admin_user != !c->admin_password)
        return strdup("'admin_user' and 'admin_password' go together");
    if (c->health_interval_ms < 50 || c->health_timeout_ms < 50)
        return strdup("'health_interval_ms' and 'health_timeout_ms' must be at least 50");
    if (c->auto_failover && (!c->zookeeper || !c->control_user))
        return strdup("'auto_failover = on' needs 'zookeeper' (the routers agree there) and "
                      "'control_user' (health checks and promotion)");
    return NULL;
}

/* Resolves the ZooKeeper credential from 'zookeeper_auth' or the file named
 * by 'zookeeper_auth_file' into c->zk_auth; the text form is wiped. */
static char *load_zk_auth(struct config *c)
{
    char *err = NULL, *msg = NULL;
    int rc = 0;

    if (c->zookeeper_auth) {
        rc = zkauth_parse(c->zookeeper_auth, &c->zk_auth, &err);
        explicit_bzero(c->zookeeper_auth, strlen(c->zookeeper_auth));
        if (rc < 0)
            msg = util_fmt("zookeeper_auth: %s", err);
    } else if (c->zookeeper_auth_file) {
        rc = zkauth_load_file(c->zookeeper_auth_file, &c->zk_auth, &err);
        if (rc < 0)
            msg = util_fmt("zookeeper_auth_file: %s", err);
    } else {
        return NULL;
    }
    free(err);
    c->have_zk_auth = rc == 0;
    return msg;
}

/* The credential a coordinating router changes the map with (a protected
 * cluster's routers may not: docs/failover.md). */
static char *load_failover_auth(struct config *c)
{
    char *err = NULL, *msg = NULL;

    if (!c->failover_zookeeper_auth_file)
        return NULL;
    if (zkauth_load_file(c->failover_zookeeper_auth_file, &c->failover_zk_auth, &err) < 0)
        msg = util_fmt("failover_zookeeper_auth_file: %s", err);
    else
        c->have_failover_zk_auth = true;
    free(err);
    return msg;
}

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

struct config *config_parse(const char *text, const char *name, char **errp)
{
    struct config *c = calloc(1, sizeof(*c));
    char *copy = strdup(text), *line, *save = NULL, *msg = NULL;
    unsigned lineno = 0;
    bool workers_set = false;

    if (!c || !copy) {
        *errp = strdup("out of memory");
        free(c);
        free(copy);
        return NULL;
    }
    set_defaults(c);
    c->path = strdup(name);
    /* strtok_r would skip empty lines and so miscount; walk by hand. */
    for (line = copy; line; line = save) {
        char *nl = strchr(line, '\n'), *eq, *key, *val;

        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = 0;
        lineno++;
        key = trim(line);
        if (*key == 0 || *key == '#')
            continue;
        eq = strchr(key, '=');
        if (!eq) {
            msg = util_fmt("%s:%u: expected 'key = value'", name, lineno);
            break;
        }
        *eq = 0;
        val = trim(eq + 1);
        key = trim(key);
        /* A '#' after whitespace starts a comment, except in rule lines. */
        if (strcmp(key, "rule") != 0) {
            for (char *h = val; *h; h++)
                if (*h == '#' && (h == val || isspace((unsigned char)h[-1]))) {
                    *h = 0;
                    val = trim(val);
                    break;
                }
        }
        {
            char *e = apply(c, key, val, &workers_set);

            if (e) {
                msg = util_fmt("%s:%u: %s: %s", name, lineno, key, e);
                free(e);
                break;
            }
        }
    }
    /* the text may hold secrets (backend_password, zookeeper_auth) */
    explicit_bzero(copy, strlen(text));
    free(copy);
    if (!msg) {
        char *e = validate(c);

        if (!e)
            e = load_zk_auth(c);
        if (!e)
            e = load_failover_auth(c);
        if (e) {
            msg = util_fmt("%s: %s", name, e);
            free(e);
        }
    }
    if (msg) {
        *errp = msg;
        config_free(c);
        return NULL;
    }
    if (!workers_set) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        c->workers = n > 0 ? (unsigned)n : 1;
    }
    return c;
}

struct config *config_load(const char *path, char **errp)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t cap = 0, len = 0, n;
    struct config *c;

    if (!f) {
        *errp = util_fmt("%s: %s", path, strerror(errno));
        return NULL;
    }
    do {
        if (cap - len < 4096) {
            char *t = realloc(text, cap + 65536);

            if (!t) {
                free(text);
                fclose(f);
                *errp = strdup("out of memory");
                return NULL;
            }
            text = t;
            cap += 65536;
        }
        n = fread(text + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    text[len] = 0;
    if (strlen(text) != len) {
        free(text);
        *errp = util_fmt("%s: contains a NUL byte", path);
        return NULL;
    }
    c = config_parse(text, path, errp);
    explicit_bzero(text, len);
    free(text);
    return c;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->map_file);
    free(c->zookeeper);
    free(c->zk_root);
    free(c->map_cache);
    free(c->router_id);
    free(c->backend_user);
    free(c->backend_password);
    free(c->server_version);
    free(c->log_file);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_ca);
    free(c->zookeeper_auth);
    free(c->zookeeper_auth_file);
    zkauth_clear(&c->zk_auth);
    free(c->control_user);
    free(c->admin_listen);
    free(c->failover_zookeeper_auth_file);
    zkauth_clear(&c->failover_zk_auth);
    free(c->admin_user);
    free(c->admin_password);
    free(c->control_password);
    free(c->repl_user);
    free(c->repl_password);
    for (unsigned i = 0; i < c->n_rules; i++) {
        free(c->rules[i].pattern);
        free(c->rules[i].message);
    }
    free(c);
}

const struct config_user *config_find_user(const struct config *c, const char *name,
                                           size_t name_len)
{
    for (unsigned i = 0; i < c->n_users; i++)
        if (strlen(c->users[i].name) == name_len &&
            memcmp(c->users[i].name, name, name_len) == 0)
            return &c->users[i];
    return NULL;
}
