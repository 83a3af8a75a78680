/*
 * tools/shardctl.c - operator CLI for the shard map: option parsing, verb
 * dispatch, and what the verbs share (connecting, loading the map, exit
 * codes). The verbs live in tools/shardctl_<verb>.c; docs/shardctl.md is
 * the user-facing reference and must follow every change here.
 */
#include "tools/shardctl.h"

#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "router/journal.h"
#include "shardmap/mapcache.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"

static const char usage_text[] =
    "usage: shardctl [--zk HOST:PORT,...] [--root PATH] [--auth-file FILE] [--timeout SECONDS]\n"
    "                [--json] VERB ...\n"
    "\n"
    "verbs:\n"
    "  init --shard NAME=HOST:PORT[,standby=HOST:PORT...] ... [--vbuckets N]\n"
    "       [--key-columns COL[,COL...]] [--key-type int|string]\n"
    "       [--router-auth-file FILE | --acl open]\n"
    "                       create a cluster, vbuckets spread evenly over the shards\n"
    "  status               shards, masters, standbys, vbuckets, map version, routers\n"
    "  routers              live routers and the map version each runs\n"
    "  add-shard NAME HOST:PORT [--standby HOST:PORT ...] [--expect-version N]\n"
    "                       add a shard (it owns no vbucket yet)\n"
    "  set-master SHARD HOST:PORT [--expect-version N]\n"
    "                       make HOST:PORT the master of SHARD\n"
    "  failover SHARD [--to HOST:PORT] [--force] [--apply-timeout S] [--router-wait S]\n"
    "                       replace SHARD's dead master by its most up-to-date standby\n"
    "                       (control account: $SHARDWIRE_CONTROL_USER/_PASSWORD)\n"
    "  switchover SHARD [--to HOST:PORT] [--max-lag S] [--apply-timeout S] [--router-wait S]\n"
    "                       planned master change: hold SHARD's statements, let the\n"
    "                       standby catch up, promote it, the old master its standby\n"
    "                       (control and replication accounts as for failover, rejoin)\n"
    "  rejoin SHARD HOST:PORT\n"
    "                       make HOST:PORT (e.g. the old master) a standby of SHARD again\n"
    "                       (replication account: $SHARDWIRE_REPL_USER/_PASSWORD)\n"
    "  drain ROUTER         turn ROUTER's /health to 503 so the load balancer sends new\n"
    "                       clients elsewhere; it goes on serving (ROUTER: its id, or its\n"
    "                       admin HOST:PORT; $SHARDWIRE_ADMIN_USER/_PASSWORD for basic auth)\n"
    "  undrain ROUTER       let ROUTER take new clients again\n"
    "  move VBUCKETS --to SHARD --database DB [--rate ROWS] [--router-wait S]\n"
    "                       move vbuckets (N, N-M or a list) and their rows to SHARD\n"
    "                       online; rerun the same command to resume (control\n"
    "                       account as for failover; docs/moves.md)\n"
    "  move --abort ID      stop a move before its flip and remove what it copied\n"
    "  moves                moves in progress and recent ones\n"
    "  rebalance --database DB [--dry-run] [--parallel N] [--rate ROWS]\n"
    "       [--weight vbuckets|stored|bytes|rows|statements] [--router-wait S]\n"
    "                       plan the fewest moves that even out the shards (by\n"
    "                       the rows stored or the routers' measured load), print the\n"
    "                       plan and run it, N moves at once (default 2); rerun\n"
    "                       to continue a plan that was stopped\n"
    "  rebalance --abandon  drop an unfinished plan (the map stays as it is)\n"
    "  remove-shard SHARD --database DB [--dry-run] [--parallel N] [--rate ROWS]\n"
    "                       move all of SHARD's vbuckets to the other shards\n"
    "                       (evenly), then remove it from the map"
    "  dump-map [--map FILE]\n"
    "                       print the map text (usable as a router map_file)\n"
    "  watch [ROUTER_ID]    follow the map as a router does, one line per event;\n"
    "                       with ROUTER_ID also register as that router\n"
    "  top [--router HOST:PORT ...] [--interval S]\n"
    "                       the hottest vbuckets and users, as rates between two\n"
    "                       samples of the routers' /status (admin_listen; from\n"
    "                       their registrations unless --router is given;\n"
    "                       $SHARDWIRE_ADMIN_USER/_PASSWORD for basic auth)\n"
    "  explain [--config ROUTER.conf] [--map FILE] [--database NAME] [--user KEY]\n"
    "          [--sql-mode MODES] 'SQL' ...\n"
    "                       how the router would handle each statement\n"
    "                       (--user: on a session scoped to that user;\n"
    "                       --sql-mode: under that session sql_mode)\n"
    "                       (with --config: that router's database, key, rules\n"
    "                       and map source; the map comes from --map, else from\n"
    "                       ZooKeeper when --zk is given, else from the config,\n"
    "                       else none: no shard is shown)\n"
    "\n"
    "--zk defaults to $SHARDWIRE_ZK, then 127.0.0.1:2181; --root to /shardwire;\n"
    "--timeout to 5 seconds. --auth-file (else $SHARDWIRE_ZK_AUTH_FILE, else the\n"
    "credential in $SHARDWIRE_ZK_AUTH) holds digest:USER:PASSWORD.\n"
    "exit codes: 0 ok, 1 usage, 2 ZooKeeper unreachable or no cluster, 3 conflict\n"
    "(the map changed meanwhile), 4 invalid change or map, 5 other error,\n"
    "6 init: cluster exists, 7 not authorized by ZooKeeper's ACL.\n";

void shardctl_err(const char *fmt, ...)
{
    va_list ap;
    fputs("shardctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int shardctl_admin_of(const char *payload, char *out, size_t cap)
{
    size_t first = strcspn(payload, "\n");
    char line[1024], *a;

    snprintf(line, sizeof(line), " %.*s", (int)first, payload);
    a = strstr(line, " admin=");
    if (!a)
        return -1;
    a += 7;
    a[strcspn(a, " ")] = '\0';
    if (strchr(a, ':')) {
        snprintf(out, cap, "%s", a);
        return 0;
    }
    /* "admin=PORT" listens on loopback (router/admin.c): reachable from the
     * router's own host only, which is where this must run then. */
    snprintf(out, cap, "127.0.0.1:%s", a);
    return 0;
}

static void lib_log_stderr(const char *msg)
{
    fprintf(stderr, "zookeeper: %s\n", msg);
}

void shardctl_step(const struct shardctl_opts *o, const char *verb, const char *line)
{
    static uint64_t t0;
    struct timespec ts;
    uint64_t now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (!t0)
        t0 = now;
    if (o->json) {
        printf("{\"event\":\"step\",\"ms\":%" PRIu64 ",\"line\":\"", now - t0);
        for (const unsigned char *c = (const unsigned char *)line; *c; c++) {
            if (*c == '"' || *c == '\\')
                printf("\\%c", *c);
            else if (*c < 0x20)
                printf("\\u%04x", *c);
            else
                putchar(*c);
        }
        fputs("\"}\n", stdout);
    } else {
        printf("%s: %s\n", verb, line);
    }
    fflush(stdout);
}

void shardctl_runner_id(char *buf, size_t cap)
{
    char host[40] = "";

    gethostname(host, sizeof(host) - 1);
    host[strcspn(host, ".")] = '\0';
    snprintf(buf, cap, "shardctl-%s-%ld", host[0] ? host : "host", (long)getpid());
}

int shardctl_journal(struct zkstore_admin *za, const char *shard, struct journal *j,
                     const char *state, const char *fmt, ...)
{
    char who[ZKSTORE_ROUTER_ID_MAX], extra[700], *err = NULL;
    va_list ap;

    shardctl_runner_id(who, sizeof(who));
    va_start(ap, fmt);
    vsnprintf(extra, sizeof(extra), fmt, ap);
    va_end(ap);
    if (journal_write(za, shard, j, who, state, extra, &err) < 0) {
        shardctl_err("%s (another failover or switchover took over?)", err ? err : "journal");
        free(err);
        return -1;
    }
    return 0;
}

bool shardctl_runner_gone(const struct journal *j)
{
    char host[40] = "", prefix[80], comm[64] = "", path[64], *end;
    struct timespec ts;
    size_t n;
    long pid;
    FILE *f;

    gethostname(host, sizeof(host) - 1);
    host[strcspn(host, ".")] = '\0';
    n = (size_t)snprintf(prefix, sizeof(prefix), "shardctl-%s-", host[0] ? host : "host");
    if (strncmp(j->coordinator, prefix, n) == 0) {
        pid = strtol(j->coordinator + n, &end, 10);
        if (*end == '\0' && pid > 0) {
            /* gone, or the pid reused by another program */
            snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
            f = fopen(path, "r");
            if (!f)
                return true;
            if (!fgets(comm, sizeof(comm), f))
                comm[0] = '\0';
            fclose(f);
            return strncmp(comm, "shardctl", 8) != 0;
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u > j->at_ms + 60000;
}

int shardctl_open_shard(const struct shardctl_opts *o, const char *verb,
                        struct smap_endpoint *to, struct zkstore_admin **za, struct smap **cur,
                        int32_t *cas, struct journal *j)
{
    const char *shard = o->argv[0];
    char *err = NULL;
    int ex;
    enum zkstore_rc rc;

    *za = NULL;
    *cur = NULL;
    if (o->to && smap_parse_endpoint(o->to, strlen(o->to), to, &err) < 0) {
        shardctl_err("%s: --to: %s", verb, err);
        free(err);
        return SHARDCTL_USAGE;
    }
    ex = shardctl_connect(o, za);
    if (ex != SHARDCTL_OK)
        return ex;
    rc = zkstore_admin_load(*za, cur, cas, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        ex = shardctl_exit_of(rc);
    } else if (smap_find_shard(*cur, shard) < 0) {
        shardctl_err("%s: no shard '%s' in the map; nothing changed", verb, shard);
        ex = SHARDCTL_INVALID;
    } else if (journal_read(*za, shard, j, &err) < 0) {
        shardctl_err("%s: %s", verb, err ? err : "journal");
        ex = SHARDCTL_FAILED;
    } else if (journal_in_progress(j) && !o->force &&
               !(strcmp(verb, "switchover") == 0 && strcmp(j->kind, "switchover") == 0 &&
                 shardctl_runner_gone(j))) {
        shardctl_err("%s: a %s of shard %s is in progress (term %" PRIu64 ", state %s, by %s); "
                     "nothing changed (%s)", verb,
                     j->kind[0] ? j->kind : "failover", shard, j->term, j->state,
                     j->coordinator,
                     strcmp(j->kind, "switchover") == 0 && shardctl_runner_gone(j)
                         ? "its runner is gone: `shardctl switchover SHARD` finishes or rolls "
                           "it back"
                         : "--force takes over one whose runner died");
        ex = SHARDCTL_CONFLICT;
    }
    free(err);
    if (ex != SHARDCTL_OK) {
        smap_unref(*cur);
        zkstore_admin_free(*za);
        *cur = NULL;
        *za = NULL;
    }
    return ex;
}

int shardctl_exit_of(int zkstore_rc)
{
    switch ((enum zkstore_rc)zkstore_rc) {
    case ZKSTORE_OK:          return SHARDCTL_OK;
    case ZKSTORE_UNREACHABLE: return SHARDCTL_UNREACHABLE;
    case ZKSTORE_NO_CLUSTER:  return SHARDCTL_UNREACHABLE;
    case ZKSTORE_CONFLICT:    return SHARDCTL_CONFLICT;
    case ZKSTORE_INVALID:     return SHARDCTL_INVALID;
    case ZKSTORE_EXISTS:      return SHARDCTL_EXISTS;
    case ZKSTORE_NOAUTH:      return SHARDCTL_NOAUTH;
    case ZKSTORE_ERROR:       return SHARDCTL_FAILED;
    }
    return SHARDCTL_FAILED;
}

int shardctl_load_auth(const char *what, const char *path, struct zkauth *out)
{
    char *err = NULL;
    if (zkauth_load_file(path, out, &err) < 0) {
        shardctl_err("%s: %s", what, err);
        free(err);
        return -1;
    }
    return 0;
}

int shardctl_connect(const struct shardctl_opts *o, struct zkstore_admin **out)
{
    char *err = NULL;
    enum zkstore_rc rc = zkstore_admin_connect(o->zk, o->root, o->auth, o->timeout_ms, out,
                                               &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        return rc == ZKSTORE_ERROR ? SHARDCTL_USAGE : shardctl_exit_of(rc);
    }
    return SHARDCTL_OK;
}

/* Adds a hint to a refusal by ZooKeeper's ACL: which credentials were sent. */
static void noauth_hint(const struct shardctl_opts *o)
{
    if (o->auth == NULL)
        shardctl_err("hint: no credentials were sent; give --auth-file FILE (or "
                     "$SHARDWIRE_ZK_AUTH_FILE / $SHARDWIRE_ZK_AUTH) with digest:USER:PASSWORD");
    else
        shardctl_err("hint: digest user '%s' lacks the rights for this (a router identity "
                     "may only read the map)", o->auth->user);
}

int shardctl_load_map(const struct shardctl_opts *o, struct smap **out)
{
    char *err = NULL;
    *out = NULL;
    if (o->map_file != NULL) {
        *out = mapcache_load(o->map_file, &err);
        if (*out == NULL) {
            shardctl_err("%s", err ? err : "cannot load map");
            free(err);
            return SHARDCTL_INVALID;
        }
        return SHARDCTL_OK;
    }
    struct zkstore_admin *za = NULL;
    int ex = shardctl_connect(o, &za);
    if (ex != SHARDCTL_OK)
        return ex;
    enum zkstore_rc rc = zkstore_admin_load(za, out, NULL, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        if (rc == ZKSTORE_NOAUTH)
            noauth_hint(o);
    }
    zkstore_admin_free(za);
    return shardctl_exit_of(rc);
}

/* Parses --timeout: seconds, decimals allowed (0.5), up to a day. */
static int parse_timeout(const char *s, unsigned *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v > 0) || v > 86400)
        return -1;
    *ms = (unsigned)(v * 1000.0 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

/* The first line of <path> (a secret kept off the command line), malloc'd;
 * NULL after printing why. */
static char *read_secret_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[512];
    size_t n;

    if (!f) {
        shardctl_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    return strdup(buf);
}

static int parse_u64_arg(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

enum {
    OPT_ZK = 256, OPT_ROOT, OPT_TIMEOUT, OPT_JSON, OPT_MAP, OPT_DATABASE, OPT_VBUCKETS,
    OPT_KEY_COLUMNS, OPT_KEY_TYPE, OPT_SHARD, OPT_STANDBY, OPT_EXPECT, OPT_HELP,
    OPT_AUTH_FILE, OPT_ACL, OPT_ROUTER_AUTH_FILE, OPT_CONFIG,
    OPT_TO, OPT_FORCE, OPT_CONTROL_USER, OPT_CONTROL_PASSWORD_FILE, OPT_APPLY_TIMEOUT,
    OPT_ROUTER_WAIT, OPT_REPL_USER, OPT_REPL_PASSWORD_FILE, OPT_MAX_LAG,
    OPT_ABORT, OPT_RATE, OPT_USER, OPT_SQL_MODE, OPT_ROUTER, OPT_INTERVAL, OPT_DRY_RUN,
    OPT_PARALLEL, OPT_WEIGHT, OPT_ABANDON,
};

static const struct option long_opts[] = {
    { "zk",             required_argument, NULL, OPT_ZK },
    { "root",           required_argument, NULL, OPT_ROOT },
    { "timeout",        required_argument, NULL, OPT_TIMEOUT },
    { "json",           no_argument,       NULL, OPT_JSON },
    { "map",            required_argument, NULL, OPT_MAP },
    { "database",       required_argument, NULL, OPT_DATABASE },
    { "user",           required_argument, NULL, OPT_USER },
    { "sql-mode",       required_argument, NULL, OPT_SQL_MODE },
    { "vbuckets",       required_argument, NULL, OPT_VBUCKETS },
    { "key-columns",    required_argument, NULL, OPT_KEY_COLUMNS },
    { "key-type",       required_argument, NULL, OPT_KEY_TYPE },
    { "shard",          required_argument, NULL, OPT_SHARD },
    { "standby",        required_argument, NULL, OPT_STANDBY },
    { "expect-version", required_argument, NULL, OPT_EXPECT },
    { "help",           no_argument,       NULL, OPT_HELP },
    { "auth-file",      required_argument, NULL, OPT_AUTH_FILE },
    { "acl",            required_argument, NULL, OPT_ACL },
    { "router-auth-file", required_argument, NULL, OPT_ROUTER_AUTH_FILE },
    { "config",         required_argument, NULL, OPT_CONFIG },
    { "to",             required_argument, NULL, OPT_TO },
    { "force",          no_argument,       NULL, OPT_FORCE },
    { "control-user",   required_argument, NULL, OPT_CONTROL_USER },
    { "control-password-file", required_argument, NULL, OPT_CONTROL_PASSWORD_FILE },
    { "apply-timeout",  required_argument, NULL, OPT_APPLY_TIMEOUT },
    { "router-wait",    required_argument, NULL, OPT_ROUTER_WAIT },
    { "repl-user",      required_argument, NULL, OPT_REPL_USER },
    { "repl-password-file", required_argument, NULL, OPT_REPL_PASSWORD_FILE },
    { "max-lag",        required_argument, NULL, OPT_MAX_LAG },
    { "abort",          required_argument, NULL, OPT_ABORT },
    { "rate",           required_argument, NULL, OPT_RATE },
    { "router",         required_argument, NULL, OPT_ROUTER },
    { "interval",       required_argument, NULL, OPT_INTERVAL },
    { "dry-run",        no_argument,       NULL, OPT_DRY_RUN },
    { "parallel",       required_argument, NULL, OPT_PARALLEL },
    { "weight",         required_argument, NULL, OPT_WEIGHT },
    { "abandon",        no_argument,       NULL, OPT_ABANDON },
    { NULL, 0, NULL, 0 },
};

static const struct {
    const char *name;
    int (*fn)(const struct shardctl_opts *o);
} verbs[] = {
    { "explain",    shardctl_explain },
    { "dump-map",   shardctl_dump_map },
    { "init",       shardctl_init },
    { "status",     shardctl_status },
    { "routers",    shardctl_routers },
    { "add-shard",  shardctl_add_shard },
    { "set-master", shardctl_set_master },
    { "watch",      shardctl_watch },
    { "failover",   shardctl_failover },
    { "rejoin",     shardctl_rejoin },
    { "drain",      shardctl_drain },
    { "undrain",    shardctl_undrain },
    { "switchover", shardctl_switchover },
    { "move",       shardctl_move },
    { "moves",      shardctl_moves },
    { "top",        shardctl_top },
    { "rebalance",  shardctl_rebalance },
    { "remove-shard", shardctl_remove_shard },
};

int main(int argc, char **argv)
{
    /* static: the option arrays are large */
    static struct shardctl_opts o;
    static struct zkauth auth, router_auth;
    const char *auth_file = getenv("SHARDWIRE_ZK_AUTH_FILE");
    const char *auth_text = getenv("SHARDWIRE_ZK_AUTH");
    const char *router_auth_file = NULL;
    uint64_t u;

    o.zk = getenv("SHARDWIRE_ZK");
    o.zk_given = o.zk != NULL && *o.zk != '\0';
    if (!o.zk_given)
        o.zk = "127.0.0.1:2181";
    o.root = ZKSTORE_DEFAULT_ROOT;
    o.timeout_ms = 5000;
    /* The ZooKeeper client's own logging would bury our one-line errors;
     * SHARDCTL_ZK_DEBUG=1 shows it (docs/shardctl.md). */
    const char *dbg = getenv("SHARDCTL_ZK_DEBUG");
    zkstore_library_log(dbg && *dbg == '1' ? lib_log_stderr : NULL, 1);

    int c;
    /* '+' would stop at the verb; GNU permutation lets options follow it.
     * SQL operands starting with '-' go after "--". */
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_ZK:
            o.zk = optarg;
            o.zk_given = true;
            break;
        case OPT_ROOT:
            o.root = optarg;
            break;
        case OPT_TIMEOUT:
            if (parse_timeout(optarg, &o.timeout_ms) < 0) {
                shardctl_err("--timeout '%s': expected seconds, e.g. 5 or 0.5", optarg);
                return SHARDCTL_USAGE;
            }
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_MAP:
            o.map_file = optarg;
            break;
        case OPT_DATABASE:
            o.database = optarg;
            break;
        case OPT_USER:
            o.user = optarg;
            break;
        case OPT_SQL_MODE:
            o.sql_mode = optarg;
            break;
        case OPT_VBUCKETS:
            if (parse_u64_arg(optarg, &u) < 0 || u == 0 || u > UINT32_MAX) {
                shardctl_err("--vbuckets '%s': expected a positive number", optarg);
                return SHARDCTL_USAGE;
            }
            o.vbuckets = (uint32_t)u;
            break;
        case OPT_KEY_COLUMNS:
            o.key_columns = optarg;
            break;
        case OPT_KEY_TYPE:
            o.key_type = optarg;
            break;
        case OPT_SHARD:
            if (o.n_shard_args == SHARDCTL_MAX_SHARD_ARGS) {
                shardctl_err("more than %d --shard options", SHARDCTL_MAX_SHARD_ARGS);
                return SHARDCTL_USAGE;
            }
            o.shard_args[o.n_shard_args++] = optarg;
            break;
        case OPT_STANDBY:
            if (o.n_standby_args == SHARDCTL_MAX_STANDBY_ARGS) {
                shardctl_err("more than %d --standby options", SHARDCTL_MAX_STANDBY_ARGS);
                return SHARDCTL_USAGE;
            }
            o.standby_args[o.n_standby_args++] = optarg;
            break;
        case OPT_EXPECT:
            if (parse_u64_arg(optarg, &o.expect_version) < 0) {
                shardctl_err("--expect-version '%s': expected a map version", optarg);
                return SHARDCTL_USAGE;
            }
            o.have_expect = true;
            break;
        case OPT_AUTH_FILE:
            auth_file = optarg;
            o.auth_file = optarg;
            break;
        case OPT_ACL:
            if (strcmp(optarg, "open") != 0 && strcmp(optarg, "protected") != 0) {
                shardctl_err("--acl '%s': expected open or protected", optarg);
                return SHARDCTL_USAGE;
            }
            o.acl = optarg;
            break;
        case OPT_CONFIG:
            o.config_file = optarg;
            break;
        case OPT_ROUTER_AUTH_FILE:
            router_auth_file = optarg;
            break;
        case OPT_TO:
            o.to = optarg;
            break;
        case OPT_FORCE:
            o.force = true;
            break;
        case OPT_CONTROL_USER:
            o.control_user = optarg;
            break;
        case OPT_CONTROL_PASSWORD_FILE:
            free(o.control_password);
            o.control_password = read_secret_file(optarg);
            o.control_password_file = optarg;
            if (!o.control_password)
                return SHARDCTL_USAGE;
            break;
        case OPT_REPL_USER:
            o.repl_user = optarg;
            break;
        case OPT_REPL_PASSWORD_FILE:
            free(o.repl_password);
            o.repl_password = read_secret_file(optarg);
            if (!o.repl_password)
                return SHARDCTL_USAGE;
            break;
        case OPT_MAX_LAG: {
            uint64_t v;
            if (parse_u64_arg(optarg, &v) < 0 || v > 86400) {
                shardctl_err("--max-lag '%s': expected whole seconds", optarg);
                return SHARDCTL_USAGE;
            }
            o.max_lag_s = (unsigned)v;
            o.have_max_lag = true;
            break;
        }
        case OPT_APPLY_TIMEOUT:
        case OPT_ROUTER_WAIT:
            if (parse_timeout(optarg, c == OPT_APPLY_TIMEOUT ? &o.apply_timeout_ms
                                                             : &o.router_wait_ms) < 0) {
                shardctl_err("%s '%s': expected seconds", c == OPT_APPLY_TIMEOUT
                             ? "--apply-timeout" : "--router-wait", optarg);
                return SHARDCTL_USAGE;
            }
            break;
        case OPT_ABORT:
            o.abort_id = optarg;
            break;
        case OPT_RATE:
            if (parse_u64_arg(optarg, &u) < 0 || u > 100000000) {
                shardctl_err("--rate '%s': expected rows per second (0: unlimited)", optarg);
                return SHARDCTL_USAGE;
            }
            o.rate = (unsigned)u;
            break;
        case OPT_ROUTER:
            if (o.n_routers == SHARDCTL_MAX_ROUTER_ARGS) {
                shardctl_err("more than %d --router options", SHARDCTL_MAX_ROUTER_ARGS);
                return SHARDCTL_USAGE;
            }
            o.routers[o.n_routers++] = optarg;
            break;
        case OPT_INTERVAL:
            if (parse_timeout(optarg, &o.interval_ms) < 0) {
                shardctl_err("--interval '%s': expected seconds, e.g. 2 or 0.5", optarg);
                return SHARDCTL_USAGE;
            }
            o.have_interval = true;
            break;
        case OPT_DRY_RUN:
            o.dry_run = true;
            break;
        case OPT_PARALLEL:
            if (parse_u64_arg(optarg, &u) < 0 || u == 0 || u > SHARDCTL_MAX_PARALLEL) {
                shardctl_err("--parallel '%s': expected 1..%d moves at once", optarg,
                             SHARDCTL_MAX_PARALLEL);
                return SHARDCTL_USAGE;
            }
            o.parallel = (unsigned)u;
            break;
        case OPT_WEIGHT:
            o.weight = optarg;
            break;
        case OPT_ABANDON:
            o.abandon = true;
            break;
        case 'h':
        case OPT_HELP:
            fputs(usage_text, stdout);
            return SHARDCTL_OK;
        default:
            fputs(usage_text, stderr);
            return SHARDCTL_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage_text, stderr);
        return SHARDCTL_USAGE;
    }
    const char *verb = argv[optind];
    o.argc = argc - optind - 1;
    o.argv = argv + optind + 1;
    char *err = NULL;
    /* Credentials come from a file or the environment, never from the
     * command line, where every user of the host could read them. */
    if (auth_file != NULL && *auth_file != '\0') {
        if (shardctl_load_auth("--auth-file", auth_file, &auth) < 0)
            return SHARDCTL_USAGE;
        o.auth = &auth;
    } else if (auth_text != NULL && *auth_text != '\0') {
        if (zkauth_parse(auth_text, &auth, &err) < 0) {
            shardctl_err("$SHARDWIRE_ZK_AUTH: %s", err);
            free(err);
            return SHARDCTL_USAGE;
        }
        o.auth = &auth;
    }
    if (router_auth_file != NULL) {
        if (shardctl_load_auth("--router-auth-file", router_auth_file, &router_auth) < 0)
            return SHARDCTL_USAGE;
        o.router_auth = &router_auth;
    }
    if (zkstore_check_root(o.root, &err) < 0) {
        shardctl_err("--root: %s", err);
        free(err);
        return SHARDCTL_USAGE;
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verb, verbs[i].name) == 0)
            return verbs[i].fn(&o);
    shardctl_err("unknown verb '%s' (try --help)", verb);
    return SHARDCTL_USAGE;
}

void shardctl_test_pause(void)
{
    const char *pause = getenv("SHARDCTL_TEST_PAUSE_MS");
    if (pause != NULL && *pause != '\0') {
        long ms = strtol(pause, NULL, 10);
        if (ms > 0 && ms < 60000)
            usleep((useconds_t)ms * 1000);
    }
}

int shardctl_change(const struct shardctl_opts *o, shardctl_change_fn *fn, void *ctx,
                    struct smap **before, struct smap **after)
{
    struct zkstore_admin *za = NULL;
    struct smap *cur = NULL, *next = NULL;
    char *err = NULL;
    int32_t cas = -1;
    bool unchanged = false;
    int ex = shardctl_connect(o, &za);
    if (ex != SHARDCTL_OK)
        return ex;
    enum zkstore_rc rc = zkstore_admin_load(za, &cur, &cas, &err);
    if (rc != ZKSTORE_OK) {
        ex = shardctl_exit_of(rc);
        goto fail;
    }
    if (o->have_expect && smap_version(cur) != o->expect_version) {
        shardctl_err("conflict: the map is at version %" PRIu64 ", not %" PRIu64
                     " (--expect-version); nothing changed", smap_version(cur),
                     o->expect_version);
        ex = SHARDCTL_CONFLICT;
        goto out;
    }
    struct smap_builder *b = smap_builder_from(cur);
    if (b == NULL) {
        err = strdup("out of memory");
        ex = SHARDCTL_FAILED;
        goto fail;
    }
    if (fn(b, cur, ctx, &unchanged, &err) < 0) {
        smap_builder_free(b);
        ex = SHARDCTL_INVALID;
        goto fail;
    }
    if (unchanged) {
        smap_builder_free(b);
        next = smap_ref(cur);
        goto done;
    }
    smap_builder_set_version(b, smap_version(cur) + 1);
    next = smap_builder_finish(b, &err);
    if (next == NULL) {
        ex = SHARDCTL_INVALID;
        goto fail;
    }
    shardctl_test_pause();
    rc = zkstore_admin_write(za, cur, cas, next, &err);
    if (zkstore_admin_lost_in_write(za))
        shardctl_err("note: the connection to ZooKeeper was lost during the write%s",
                     rc == ZKSTORE_OK ? "; re-reading showed the change in place" : "");
    if (rc != ZKSTORE_OK) {
        ex = shardctl_exit_of(rc);
        if (rc == ZKSTORE_CONFLICT) {
            shardctl_err("conflict: %s", err ? err : "the map changed");
            goto out;
        }
        goto fail;
    }
done:
    if (before != NULL)
        *before = smap_ref(cur);
    if (after != NULL)
        *after = smap_ref(next);
    ex = SHARDCTL_OK;
    goto out;
fail:
    shardctl_err("%s", err ? err : "failed");
    if (ex == SHARDCTL_NOAUTH)
        noauth_hint(o);
out:
    free(err);
    smap_unref(cur);
    smap_unref(next);
    zkstore_admin_free(za);
    return ex;
}
