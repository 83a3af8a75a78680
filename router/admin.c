/*
 * router/admin.c - the admin HTTP listener (see admin.h). Everything here
 * runs on the control thread, except gather_on_worker(), which a worker runs
 * for /status; it reads shared state only through atomics (the workers'
 * counters, router/stats.h), the map and budget locks, control_foreach(),
 * and what workers copy out for it when asked.
 */
#include "router/admin.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>

#include "router/clusterview.h"
#include "router/config.h"
#include "router/fault.h"
#include "router/control.h"
#include "router/leasepeer.h"
#include "router/log.h"
#include "router/mapwatch.h"
#include "router/pool.h"
#include "router/rules.h"
#include "router/session.h"
#include "router/stats.h"
#include "router/util.h"
#include "router/worker.h"
#include "router/mapjson.h"
#include "shardmap/smap.h"

/* router/console.html, built in (tools/embed.py). */
extern const char console_html[];
extern const unsigned long console_html_len;

#define ADMIN_MAX_HEADERS  8192
#define ADMIN_MAX_BODY     1024
#define ADMIN_TIMEOUT_S    5
/* /status asks every worker for its clients and load; a worker that does
 * not answer in time (stopping, or stuck) is left out, never waited for. */
#define ADMIN_GATHER_MS    1000
#define ADMIN_MAX_CLIENTS  1000    /* listed in /status; the total is always given */

struct gather;

struct admin {
    struct router *r;
    struct evhttp *http;
    char          *auth;        /* "Basic <base64(user:password)>", or NULL */
    TAILQ_HEAD(, gather) gathers;   /* /status requests waiting for workers */
    uint64_t       started_ms;
};

static struct smap *current_map(struct router *r)
{
    struct smap *m;

    pthread_mutex_lock(&r->map_lock);
    m = r->map ? smap_ref(r->map) : NULL;
    pthread_mutex_unlock(&r->map_lock);
    return m;
}

/* Why the router should not get new clients, or NULL when it can serve. */
static const char *unready(struct router *r, char *buf, size_t cap)
{
    struct smap *m;
    uint64_t silent;

    if (atomic_load(&r->draining))
        return "draining";
    if (atomic_load(&r->drained))
        return "drained by an operator (shardctl drain)";
    m = current_map(r);
    if (!m)
        return "no shard map";
    smap_unref(m);
    silent = mapwatch_silence_ms(r->mw);
    if (silent > r->cfg->map_lease_ms && !leasepeer_confirmed(r->leasepeer)) {
        snprintf(buf, cap, "map not confirmed by ZooKeeper for %" PRIu64 " ms (lease %u ms)",
                 silent, r->cfg->map_lease_ms);
        return buf;
    }
    return NULL;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                  struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason,
                       const char *text)
{
    struct evbuffer *b = evbuffer_new();

    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evbuffer_add_printf(b, "%s\n", text);
    reply(req, code, reason, "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

static void on_health(struct admin *a, struct evhttp_request *req)
{
    char buf[160];
    const char *why = unready(a->r, buf, sizeof(buf));

    if (why)
        reply_text(req, 503, "Service Unavailable", why);
    else
        reply_text(req, HTTP_OK, "OK", "ok");
}

/* Prometheus label values: backslash, quote and newline escaped. */
static void label(struct evbuffer *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            evbuffer_add_printf(b, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, v, 1);
    }
}

static void metric_server_labels(struct evbuffer *b, const struct control_server *s)
{
    evbuffer_add_printf(b, "{shard=\"");
    label(b, s->shard);
    evbuffer_add_printf(b, "\",role=\"%s\",server=\"", s->role);
    label(b, s->server);
    evbuffer_add(b, "\"", 1);
}

struct metric_walk {
    struct evbuffer *b;
    const char      *name;
    int              what;
};

/* One sample of server <s>: NAME{shard=..,role=..,server=..} <v>. */
static void metric_server_value(struct evbuffer *b, const char *name,
                                const struct control_server *s, int64_t v)
{
    evbuffer_add_printf(b, "%s", name);
    metric_server_labels(b, s);
    evbuffer_add_printf(b, "} %" PRId64 "\n", v);
}

static void metric_server(const struct control_server *s, void *arg)
{
    struct metric_walk *w = arg;
    bool have = true;
    int64_t v = 0;

    switch (w->what) {
    case 0:
        v = s->verdict == HEALTH_UP;
        break;
    case 1:
        for (int k = HEALTH_UNKNOWN; k <= HEALTH_DOWN; k++) {
            evbuffer_add_printf(w->b, "shardwire_server_health");
            metric_server_labels(w->b, s);
            evbuffer_add_printf(w->b, ",verdict=\"%s\"} %d\n",
                                health_verdict_name((enum health_verdict)k), (int)s->verdict == k);
        }
        return;
    case 2:
        have = s->has_facts;
        v = s->safe;
        break;
    case 3:
        have = s->is_replica && s->lag_s >= 0;
        v = s->lag_s;
        break;
    case 4:             /* a master's semi-sync standbys */
    case 5:             /* ... and whether its writes are refused */
        have = s->has_acks;
        v = w->what == 4 ? (int64_t)s->semi_clients : s->writes_refused;
        break;
    }
    if (have)
        metric_server_value(w->b, w->name, s, v);
}

/* One shard's counters summed over the workers. */
struct shard_sum {
    char     name[SMAP_NAME_MAX];
    uint64_t statements, errors, bytes_sent, bytes_received, rows, lat[STATS_LAT_N], lat_sum_us;
    uint64_t pool_waits, pool_timeouts, conn_idle, conn_waiting;
};

struct sums {
    uint64_t          cmd[STATS_CMD_N][STATS_RESULT_N];
    uint64_t          rejects[STATS_REJECT_N];
    uint64_t          conns[STATS_CONN_N];
    uint64_t          accepted, routed, backend_errors, err_other;
    struct stats_err *errs;         /* distinct (code, origin) pairs */
    size_t            n_errs, cap_errs;
    struct shard_sum *shards;
    size_t            n_shards, cap_shards;
};

static struct shard_sum *shard_sum_of(struct sums *t, const char *name, size_t hint)
{
    struct shard_sum *n;

    if (hint < t->n_shards && strcmp(t->shards[hint].name, name) == 0)
        return &t->shards[hint];
    for (size_t i = 0; i < t->n_shards; i++)
        if (strcmp(t->shards[i].name, name) == 0)
            return &t->shards[i];
    if (t->n_shards == t->cap_shards) {
        size_t cap = t->cap_shards ? 2 * t->cap_shards : 16;

        n = realloc(t->shards, cap * sizeof(*n));
        if (!n)
            return NULL;
        t->shards = n;
        t->cap_shards = cap;
    }
    n = &t->shards[t->n_shards++];
    memset(n, 0, sizeof(*n));
    snprintf(n->name, sizeof(n->name), "%s", name);
    return n;
}

static void sum_error(struct sums *t, uint32_t key, uint64_t count)
{
    for (size_t i = 0; i < t->n_errs; i++) {
        if (t->errs[i].key == key) {
            t->errs[i].count += count;
            return;
        }
    }
    if (t->n_errs == t->cap_errs) {
        size_t cap = t->cap_errs ? 2 * t->cap_errs : 16;
        struct stats_err *n = realloc(t->errs, cap * sizeof(*n));

        if (!n) {
            t->err_other += count;
            return;
        }
        t->errs = n;
        t->cap_errs = cap;
    }
    t->errs[t->n_errs].key = key;
    t->errs[t->n_errs].count = count;
    t->n_errs++;
}

/* Sums every worker's counters (relaxed loads; see stats.h). */
static void sums_of(const struct router *r, struct sums *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned w = 0; w < r->n_workers; w++) {
        struct stats *st = r->workers[w]->counters;
        size_t hint = 0;

        t->accepted += STATS_GET(st->sessions_accepted);
        t->routed += STATS_GET(st->routed);
        t->backend_errors += STATS_GET(st->backend_errors);
        t->err_other += STATS_GET(st->err_other);
        for (int c = 0; c < STATS_CMD_N; c++)
            for (int k = 0; k < STATS_RESULT_N; k++)
                t->cmd[c][k] += STATS_GET(st->cmd[c][k]);
        for (int k = 0; k < STATS_REJECT_N; k++)
            t->rejects[k] += STATS_GET(st->rejects[k]);
        for (int k = 0; k < STATS_CONN_N; k++)
            t->conns[k] += STATS_GET(st->conns[k]);
        for (unsigned i = 0; i < STATS_ERR_SLOTS; i++) {
            /* Acquire: the count was set before the key was published. */
            uint32_t key = atomic_load_explicit(&st->errs[i].key, memory_order_acquire);

            if (key)
                sum_error(t, key, STATS_GET(st->errs[i].count));
        }
        for (struct stats_shard *sh = stats_shards(st); sh; sh = sh->next, hint++) {
            struct shard_sum *s = shard_sum_of(t, sh->name, hint);

            if (!s)
                break;
            s->statements += STATS_GET(sh->statements);
            s->errors += STATS_GET(sh->errors);
            s->bytes_sent += STATS_GET(sh->bytes_sent);
            s->bytes_received += STATS_GET(sh->bytes_received);
            s->rows += STATS_GET(sh->rows);
            for (unsigned b = 0; b < STATS_LAT_N; b++)
                s->lat[b] += STATS_GET(sh->lat[b]);
            s->lat_sum_us += STATS_GET(sh->lat_sum_us);
            s->pool_waits += STATS_GET(sh->pool_waits);
            s->pool_timeouts += STATS_GET(sh->pool_timeouts);
            s->conn_idle += STATS_GET(sh->conn_idle);
            s->conn_waiting += STATS_GET(sh->conn_waiting);
        }
    }
}

static void sums_fini(struct sums *t)
{
    free(t->errs);
    free(t->shards);
}

static uint64_t sum_statements(const struct sums *t)
{
    uint64_t n = 0;

    for (int c = 0; c < STATS_CMD_N; c++)
        for (int k = 0; k < STATS_RESULT_N; k++)
            n += t->cmd[c][k];
    return n;
}

static uint64_t sum_rejected(const struct sums *t)
{
    uint64_t n = 0;

    for (int k = 0; k < STATS_REJECT_N; k++)
        n += t->rejects[k];
    return n;
}

static void metric_head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One per-shard series: name{shard="..."<extra>} value. */
static void shard_line(struct evbuffer *b, const char *name, const char *shard, const char *extra,
                       uint64_t v)
{
    evbuffer_add_printf(b, "%s{shard=\"", name);
    label(b, shard);
    evbuffer_add_printf(b, "\"%s} %" PRIu64 "\n", extra, v);
}

static void metrics_statements(struct evbuffer *b, const struct sums *t)
{
    metric_head(b, "shardwire_statements_total", "counter",
                "client commands by command and result (ok, error, rejected, no_reply)");
    for (int c = 0; c < STATS_CMD_N; c++)
        for (int k = 0; k < STATS_RESULT_N; k++)
            if (t->cmd[c][k] || c == STATS_CMD_QUERY)
                evbuffer_add_printf(b, "shardwire_statements_total{command=\"%s\",result=\"%s\"}"
                                    " %" PRIu64 "\n", stats_cmd_name((enum stats_cmd)c),
                                    stats_result_name((enum stats_result)k), t->cmd[c][k]);
    metric_head(b, "shardwire_statements_routed_total", "counter",
                "statements sent to a shard by their key");
    evbuffer_add_printf(b, "shardwire_statements_routed_total %" PRIu64 "\n", t->routed);
    metric_head(b, "shardwire_statements_rejected_total", "counter",
                "statements the router refused, by reason");
    for (int k = 0; k < STATS_REJECT_N; k++)
        evbuffer_add_printf(b, "shardwire_statements_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                            stats_reject_name((enum stats_reject)k), t->rejects[k]);
    metric_head(b, "shardwire_errors_total", "counter",
                "ERR packets sent to clients, by MySQL error code and origin (router, backend)");
    for (size_t i = 0; i < t->n_errs; i++) {
        uint32_t key = t->errs[i].key;

        evbuffer_add_printf(b, "shardwire_errors_total{code=\"%u\",origin=\"%s\"} %" PRIu64 "\n",
                            key & 0xffffu, (key >> 16) & 1 ? "router" : "backend",
                            t->errs[i].count);
    }
    if (t->err_other)
        evbuffer_add_printf(b, "shardwire_errors_total{code=\"other\",origin=\"any\"} %" PRIu64
                            "\n", t->err_other);
}

static void metrics_shards(struct evbuffer *b, struct router *r, const struct sums *t)
{
    static const struct {
        const char *name, *type, *help;
        size_t      off;
    } per_shard[] = {
#define F(m) offsetof(struct shard_sum, m)
        { "shardwire_shard_statements_total", "counter", "statements sent to the shard",
          F(statements) },
        { "shardwire_shard_errors_total", "counter", "statements the shard answered with ERR",
          F(errors) },
        { "shardwire_shard_rows_total", "counter", "result-set rows relayed from the shard",
          F(rows) },
        { "shardwire_backend_sent_bytes_total", "counter",
          "statement bytes sent to the shard (packet headers included)", F(bytes_sent) },
        { "shardwire_backend_received_bytes_total", "counter",
          "reply bytes relayed from the shard to clients", F(bytes_received) },
        { "shardwire_pool_waits_total", "counter",
          "statements that waited for a backend connection", F(pool_waits) },
        { "shardwire_pool_timeouts_total", "counter",
          "statements that gave up waiting for one (pool_wait_timeout_ms)", F(pool_timeouts) },
        { "shardwire_pool_waiting", "gauge", "sessions waiting for a backend connection now",
          F(conn_waiting) },
#undef F
    };
    struct pool_budget *bud;

    for (size_t m = 0; m < sizeof(per_shard) / sizeof(per_shard[0]); m++) {
        metric_head(b, per_shard[m].name, per_shard[m].type, per_shard[m].help);
        for (size_t i = 0; i < t->n_shards; i++)
            shard_line(b, per_shard[m].name, t->shards[i].name, "",
                       *(const uint64_t *)((const char *)&t->shards[i] + per_shard[m].off));
    }
    metric_head(b, "shardwire_shard_latency_seconds", "histogram",
                "time from sending a statement to the shard to the end of its reply");
    for (size_t i = 0; i < t->n_shards; i++) {
        const struct shard_sum *s = &t->shards[i];
        uint64_t cum = 0;
        char le[48];

        for (unsigned k = 0; k < STATS_LAT_N; k++) {
            cum += s->lat[k];
            if (k < STATS_LAT_N - 1)
                snprintf(le, sizeof(le), ",le=\"%g\"", stats_lat_bounds_us[k] / 1e6);
            else
                snprintf(le, sizeof(le), ",le=\"+Inf\"");
            shard_line(b, "shardwire_shard_latency_seconds_bucket", s->name, le, cum);
        }
        evbuffer_add_printf(b, "shardwire_shard_latency_seconds_sum{shard=\"");
        label(b, s->name);
        evbuffer_add_printf(b, "\"} %.6f\n", (double)s->lat_sum_us / 1e6);
        shard_line(b, "shardwire_shard_latency_seconds_count", s->name, "", cum);
    }
    /* Connections: open and held are router-wide per shard (the budget);
     * idle is summed over the workers' pools. */
    metric_head(b, "shardwire_backend_connections", "gauge",
                "backend connections by state: open (all), idle (in a pool), held (by a "
                "pinned session between statements)");
    pthread_mutex_lock(&r->budget_lock);
    for (bud = r->budgets; bud; bud = bud->next) {
        uint64_t idle = 0;

        for (size_t i = 0; i < t->n_shards; i++)
            if (strcmp(t->shards[i].name, bud->shard) == 0)
                idle = t->shards[i].conn_idle;
        shard_line(b, "shardwire_backend_connections", bud->shard, ",state=\"open\"",
                   atomic_load(&bud->open));
        shard_line(b, "shardwire_backend_connections", bud->shard, ",state=\"idle\"", idle);
        shard_line(b, "shardwire_backend_connections", bud->shard, ",state=\"held\"",
                   atomic_load(&bud->held));
    }
    pthread_mutex_unlock(&r->budget_lock);
}

static void metrics_rules(struct evbuffer *b, struct router *r)
{
    size_t n = r->rules ? rules_count(r->rules) : 0;

    if (!n)
        return;
    metric_head(b, "shardwire_rule_hits_total", "counter",
                "statements an operator rule matched (rule: its 1-based position)");
    for (size_t i = 0; i < n; i++) {
        const struct rules_rule *ru = rules_get(r->rules, i);

        evbuffer_add_printf(b, "shardwire_rule_hits_total{rule=\"%zu\",action=\"%s\","
                            "pattern=\"", i + 1,
                            rules_rule_action(ru) == RULES_DENY ? "deny" : "allow");
        label(b, rules_rule_pattern(ru));
        evbuffer_add_printf(b, "\"} %" PRIu64 "\n", rules_rule_hits(ru));
    }
    metric_head(b, "shardwire_rule_errors_total", "counter",
                "matches PCRE2 could not finish (a deny rule then applies)");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(b, "shardwire_rule_errors_total{rule=\"%zu\"} %" PRIu64 "\n",
                            i + 1, rules_rule_errors(rules_get(r->rules, i)));
}

/* Cluster-wide gauges from the cluster view (ZooKeeper, at most 2 s old):
 * the same on every router. Nothing without a view (a map file). */
static void metrics_cluster(struct evbuffer *b, struct router *r)
{
    json_t *cv = r->clusterview ? clusterview_get(r->clusterview) : NULL, *x;
    const char *k;
    size_t i;
    unsigned moves = 0, running = 0;

    if (!cv || !json_integer_value(json_object_get(cv, "read_ms"))) {
        json_decref(cv);
        return;
    }
    json_array_foreach(json_object_get(cv, "moves"), i, x)
        moves += json_is_true(json_object_get(x, "active"));
    json_object_foreach(json_object_get(cv, "shards"), k, x)
        running += json_is_true(json_object_get(x, "in_progress"));
    metric_head(b, "shardwire_cluster_routers", "gauge",
                "live routers registered in ZooKeeper (read every 2 s)");
    evbuffer_add_printf(b, "shardwire_cluster_routers %zu\n",
                        json_array_size(json_object_get(cv, "routers")));
    metric_head(b, "shardwire_cluster_moves_running", "gauge",
                "vbucket moves in progress, from their journals in ZooKeeper");
    evbuffer_add_printf(b, "shardwire_cluster_moves_running %u\n", moves);
    metric_head(b, "shardwire_cluster_failovers_running", "gauge",
                "shards with a failover or switchover in progress, from their journals");
    evbuffer_add_printf(b, "shardwire_cluster_failovers_running %u\n", running);
    json_decref(cv);
}

static void on_metrics(struct admin *a, struct evhttp_request *req)
{
    struct router *r = a->r;
    struct evbuffer *b = evbuffer_new();
    struct sums t;
    struct smap *m;
    char buf[160];
    const char *zk;
    uint64_t since;

    static const struct {
        const char *name, *help;
        int         what;
    } per_server[] = {
        { "shardwire_server_up", "1 when the last health probe reached the server", 0 },
        { "shardwire_server_health", "the server's health verdict (one series per verdict)", 1 },
        { "shardwire_server_lossless",
          "1 when the server runs the lossless semi-sync setup (docs/failover.md)", 2 },
        { "shardwire_replication_lag_seconds", "Seconds_Behind_Master of a standby", 3 },
        { "shardwire_master_semi_sync_standbys",
          "semi-sync standbys connected to a master (Rpl_semi_sync_master_clients)", 4 },
        { "shardwire_master_writes_refused",
          "1 while writes to the master's shard are refused: no standby acknowledged a commit "
          "for standby_lost_ms", 5 },
    };
    static const char *const zk_states[] = { "connected", "disconnected", "expired", "none" };

    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    sums_of(r, &t);
#define COUNTER(name, help, v)                                                                \
    evbuffer_add_printf(b, "# HELP " name " " help "\n# TYPE " name " counter\n" name         \
                        " %" PRIu64 "\n", (uint64_t)(v))
#define GAUGE(name, help, fmt, v)                                                             \
    evbuffer_add_printf(b, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " " fmt   \
                        "\n", v)
    COUNTER("shardwire_client_connections_accepted_total", "client connections accepted",
            t.accepted);
    GAUGE("shardwire_client_connections", "client connections open", "%u",
          atomic_load(&r->n_clients));
    metric_head(b, "shardwire_client_sessions", "gauge",
                "client sessions by state: login, idle, waiting (for a backend connection), "
                "active (a statement in flight), closing");
    for (int k = 0; k < STATS_CONN_N; k++)
        evbuffer_add_printf(b, "shardwire_client_sessions{state=\"%s\"} %" PRIu64 "\n",
                            stats_conn_name((enum stats_conn)k), t.conns[k]);
    metrics_statements(b, &t);
    COUNTER("shardwire_backend_errors_total",
            "backend connections lost or not opened while a client waited", t.backend_errors);
    GAUGE("shardwire_buffered_statements",
          "statements held while their shard has no reachable master", "%u",
          atomic_load(&r->n_buffered));
    GAUGE("shardwire_memory_used_bytes", "bytes client sessions hold (router_memory_limit)",
          "%" PRIu64, atomic_load(&r->mem_used));
    metrics_shards(b, r, &t);
    metrics_rules(b, r);
    m = current_map(r);
    GAUGE("shardwire_map_version", "version of the shard map in use", "%" PRIu64,
          m ? smap_version(m) : 0);
    GAUGE("shardwire_map_shards", "shards in the map in use", "%u", m ? smap_n_shards(m) : 0);
    GAUGE("shardwire_map_frozen_vbuckets",
          "vbuckets frozen for a move's cutover in the map in use", "%u",
          m ? smap_n_frozen(m) : 0);
    smap_unref(m);
    metrics_cluster(b, r);
    since = atomic_load(&r->map_since_ms);
    GAUGE("shardwire_map_age_seconds", "seconds since the map in use was published", "%.3f",
          since ? (double)(now_ms() - since) / 1000.0 : 0.0);
    GAUGE("shardwire_map_unconfirmed_seconds",
          "seconds since the map source (ZooKeeper) last answered; 0 for a map file", "%.3f",
          (double)mapwatch_silence_ms(r->mw) / 1000.0);
    GAUGE("shardwire_map_lease_seconds", "map_lease_ms: how long the map may go unconfirmed",
          "%.3f", (double)r->cfg->map_lease_ms / 1000.0);
    GAUGE("shardwire_map_lease_valid", "1 while the map is confirmed within map_lease_ms", "%d",
          mapwatch_silence_ms(r->mw) <= r->cfg->map_lease_ms);
    zk = mapwatch_zk_state(r->mw);
    metric_head(b, "shardwire_zookeeper_state", "gauge",
                "the ZooKeeper session (one series per state; none: map file)");
    for (size_t i = 0; i < sizeof(zk_states) / sizeof(zk_states[0]); i++)
        evbuffer_add_printf(b, "shardwire_zookeeper_state{state=\"%s\"} %d\n", zk_states[i],
                            strcmp(zk, zk_states[i]) == 0);
    GAUGE("shardwire_coordinator_leader", "1 while this router is the failover coordinator",
          "%d", (int)atomic_load(&r->coordinator_leader));
    metric_head(b, "shardwire_failovers_total", "counter",
                "automatic failovers this router's coordinator finished (done) or gave up "
                "(aborted)");
    evbuffer_add_printf(b, "shardwire_failovers_total{result=\"done\"} %" PRIu64 "\n"
                        "shardwire_failovers_total{result=\"aborted\"} %" PRIu64 "\n",
                        atomic_load(&r->failovers[0]), atomic_load(&r->failovers[1]));
    GAUGE("shardwire_ready", "1 while /health answers 200", "%d",
          unready(r, buf, sizeof(buf)) == NULL);
    GAUGE("shardwire_draining", "1 after SIGTERM", "%d", (int)atomic_load(&r->draining));
    GAUGE("shardwire_drained", "1 while an operator has drained the router (shardctl drain)",
          "%d", (int)atomic_load(&r->drained));
    if (r->control && control_health_on(r->control)) {
        for (size_t i = 0; i < sizeof(per_server) / sizeof(per_server[0]); i++) {
            struct metric_walk w = { b, per_server[i].name, per_server[i].what };

            evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", per_server[i].name,
                                per_server[i].help, per_server[i].name);
            control_foreach(r->control, metric_server, &w);
        }
    }
#undef COUNTER
#undef GAUGE
    sums_fini(&t);
    reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

/* Per-shard traffic for /status (the console's traffic per shard). */
static json_t *shard_load_json(const struct sums *t)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < t->n_shards; i++) {
        const struct shard_sum *s = &t->shards[i];

        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}",
                                             "shard", s->name,
                                             "statements", (json_int_t)s->statements,
                                             "errors", (json_int_t)s->errors,
                                             "rows", (json_int_t)s->rows,
                                             "bytes_sent", (json_int_t)s->bytes_sent,
                                             "bytes_received", (json_int_t)s->bytes_received,
                                             "latency_sum_s", (double)s->lat_sum_us / 1e6,
                                             "pool_waits", (json_int_t)s->pool_waits,
                                             "pool_timeouts", (json_int_t)s->pool_timeouts));
    }
    return arr;
}

static void status_server(const struct control_server *s, void *arg)
{
    json_t *arr = arg, *o = json_object();

    if (!o)
        return;
    json_object_set_new(o, "shard", json_string(s->shard));
    json_object_set_new(o, "role", json_string(s->role));
    json_object_set_new(o, "server", json_string(s->server));
    json_object_set_new(o, "verdict", json_string(health_verdict_name(s->verdict)));
    json_object_set_new(o, "for_ms", json_integer((json_int_t)s->for_ms));
    json_object_set_new(o, "unhealthy", json_boolean(s->unhealthy));
    if (s->has_facts)
        json_object_set_new(o, "lossless", json_boolean(s->safe));
    if (s->is_replica) {
        json_object_set_new(o, "io_running", json_boolean(s->io_running));
        json_object_set_new(o, "sql_running", json_boolean(s->sql_running));
        if (s->lag_s >= 0)
            json_object_set_new(o, "lag_s", json_integer(s->lag_s));
    }
    if (s->error)
        json_object_set_new(o, "error", json_string(s->error));
    if (s->unsafe)
        json_object_set_new(o, "unsafe", json_string(s->unsafe));
    if (s->has_acks) {
        /* writes_refused: a shard with no standby (docs/failover.md) */
        json_object_set_new(o, "semi_sync_standbys", json_integer(s->semi_clients));
        json_object_set_new(o, "commits_waiting", json_integer(s->semi_waiting));
        json_object_set_new(o, "writes_refused", json_boolean(s->writes_refused));
        if (s->writes_refused)
            json_object_set_new(o, "stalled_ms", json_integer((json_int_t)s->stalled_ms));
    }
    json_array_append_new(arr, o);
}

/* The router's own state for /status (the gathered parts are added by
 * gather_reply()). Control thread. */
static json_t *status_json(struct router *r)
{
    json_t *o = json_object(), *stats = json_object(), *map = json_object();
    json_t *shards = json_array(), *health = json_array(), *rej = json_object();
    struct sums t;
    struct smap *m = current_map(r);
    char buf[160];
    const char *why = unready(r, buf, sizeof(buf));

    sums_of(r, &t);
    json_object_set_new(o, "ready", json_boolean(why == NULL));
    if (why)
        json_object_set_new(o, "unready_reason", json_string(why));
    json_object_set_new(o, "draining", json_boolean(atomic_load(&r->draining)));
    json_object_set_new(o, "drained", json_boolean(atomic_load(&r->drained)));
    json_object_set_new(o, "workers", json_integer(r->n_workers));
    json_object_set_new(stats, "client_connections", json_integer(atomic_load(&r->n_clients)));
    json_object_set_new(stats, "client_connections_accepted",
                        json_integer((json_int_t)t.accepted));
    json_object_set_new(stats, "statements", json_integer((json_int_t)sum_statements(&t)));
    json_object_set_new(stats, "routed", json_integer((json_int_t)t.routed));
    json_object_set_new(stats, "rejected", json_integer((json_int_t)sum_rejected(&t)));
    for (int k = 0; k < STATS_REJECT_N; k++)
        json_object_set_new(rej, stats_reject_name((enum stats_reject)k),
                            json_integer((json_int_t)t.rejects[k]));
    json_object_set_new(stats, "rejected_by_reason", rej);
    json_object_set_new(stats, "backend_errors", json_integer((json_int_t)t.backend_errors));
    json_object_set_new(o, "stats", stats);
    json_object_set_new(o, "shard_load", shard_load_json(&t));
    sums_fini(&t);
    if (m) {
        json_object_set_new(map, "version", json_integer((json_int_t)smap_version(m)));
        json_object_set_new(map, "vbuckets", json_integer(smap_n_vbuckets(m)));
        json_decref(shards);
        shards = mapjson_shards(m);
    }
    json_object_set_new(map, "shards", shards);
    if (m) {
        /* vbucket ranges [first, last, shard], for the console's grid. */
        json_t *vb = json_array();
        uint32_t n = smap_n_vbuckets(m), first = 0;

        for (uint32_t v = 1; vb && v <= n; v++) {
            unsigned sh = smap_shard_of_vbucket(m, first);

            if (v < n && smap_shard_of_vbucket(m, v) == sh)
                continue;
            json_array_append_new(vb, json_pack("[I, I, s]", (json_int_t)first,
                                                (json_int_t)(v - 1), smap_shard(m, sh)->name));
            first = v;
        }
        json_object_set_new(map, "vbmap", vb);
        /* frozen vbucket ranges [first, last] (a move's cutover) */
        json_t *fz = json_array();

        for (uint32_t v = 0; fz && v < n; v++) {
            uint32_t first = v;

            if (smap_vbucket_state(m, v) == SMAP_VB_NORMAL)
                continue;
            while (v + 1 < n && smap_vbucket_state(m, v + 1) != SMAP_VB_NORMAL)
                v++;
            json_array_append_new(fz, json_pack("[I, I]", (json_int_t)first, (json_int_t)v));
        }
        json_object_set_new(map, "frozen", fz);
        smap_unref(m);
    }
    json_object_set_new(map, "unconfirmed_ms", json_integer((json_int_t)mapwatch_silence_ms(r->mw)));
    json_object_set_new(map, "lease_ms", json_integer(r->cfg->map_lease_ms));
    /* false: writes are refused until ZooKeeper confirms the map again */
    json_object_set_new(map, "lease_ok", json_boolean(mapwatch_lease_ok(r->mw)));
    /* true: the lease ran out, but the peers confirm that ZooKeeper is down
     * for everyone, so writes go on (router/leasepeer.h) */
    json_object_set_new(map, "lease_by_peers", json_boolean(leasepeer_confirmed(r->leasepeer)));
    json_object_set_new(o, "map", map);
    if (r->control && control_health_on(r->control))
        control_foreach(r->control, status_server, health);
    json_object_set_new(o, "health", health);
    if (r->clusterview)
        json_object_set_new(o, "cluster", clusterview_get(r->clusterview));
    return o;
}
/* ---- /status: what only the workers can list ----
 *
 * Sessions, the top-users sketch and the per-vbucket arrays belong to their
 * worker, so /status posts gather_on_worker() to every worker (worker_post)
 * and answers when all have answered or ADMIN_GATHER_MS passed, whichever
 * comes first, from the control thread (evhttp is not thread-safe). The
 * struct gather is shared: each worker still to answer holds a reference,
 * and so does the admin until it replied; the last one frees it. A worker
 * that answers after the reply went out (it was stopping: worker_free()
 * runs leftover messages) fills its part and leaves; it wakes the control
 * loop only while <replied> is false, under the lock, so it never touches
 * an event the control thread has freed.
 */

struct gather_client {
    uint64_t    id;
    char        peer[64];
    char        user[64];
    const char *state;          /* static */
    char        shard[64];
    unsigned    statements;
    uint64_t    bytes_in, bytes_out, age_ms;
};

struct gather_part {
    bool                  done;        /* under the gather's lock */
    struct gather_client *clients;
    size_t                n_clients, total_clients;
    struct stats_top      top;
    struct stats_vb      *vb;
    uint32_t              n_vb;
};

struct gather {
    pthread_mutex_t        lock;
    unsigned               refs;       /* under lock */
    bool                   replied;    /* under lock */
    struct admin          *a;
    struct evhttp_request *req;
    struct event          *done_ev, *timer;
    unsigned               n_parts;
    TAILQ_ENTRY(gather)    link;       /* in admin.gathers */
    struct gather_part     parts[];
};

static void gather_unref(struct gather *g)
{
    bool last;

    pthread_mutex_lock(&g->lock);
    last = --g->refs == 0;
    pthread_mutex_unlock(&g->lock);
    if (!last)
        return;
    for (unsigned i = 0; i < g->n_parts; i++) {
        free(g->parts[i].clients);
        free(g->parts[i].vb);
    }
    pthread_mutex_destroy(&g->lock);
    free(g);
}

/* On worker <w>'s thread: copies its clients (up to ADMIN_MAX_CLIENTS),
 * top users and per-vbucket load into its part. */
static void gather_on_worker(struct worker *w, void *arg)
{
    struct gather *g = arg;
    struct gather_part *p = &g->parts[w->id];
    struct stats *st = w->counters;
    uint64_t now;
    size_t n = 0;

    /* (tests: a worker that answers after /status gave up on it) */
    fault_delay("status_gather", 5000);
    now = now_ms();
    for (struct session *s = w->sessions; s; s = s->next)
        n++;
    p->total_clients = n;
    p->clients = calloc(n < ADMIN_MAX_CLIENTS ? n : ADMIN_MAX_CLIENTS, sizeof(*p->clients));
    for (struct session *s = w->sessions; p->clients && s && p->n_clients < ADMIN_MAX_CLIENTS;
         s = s->next) {
        struct gather_client *c = &p->clients[p->n_clients++];

        c->id = s->id;
        snprintf(c->peer, sizeof(c->peer), "%s", s->peer);
        snprintf(c->user, sizeof(c->user), "%s", s->login.user);
        c->state = sess_state_name(s->state);
        snprintf(c->shard, sizeof(c->shard), "%s", s->be ? s->be_shard : "");
        c->statements = s->n_stmts;
        c->bytes_in = s->st.bytes_in;
        c->bytes_out = s->st.bytes_out;
        c->age_ms = now - s->st.start_ms;
    }
    p->top = st->top;
    if (st->vb) {
        p->vb = malloc((size_t)st->n_vb * sizeof(*p->vb));
        if (p->vb) {
            memcpy(p->vb, st->vb, (size_t)st->n_vb * sizeof(*p->vb));
            p->n_vb = st->n_vb;
        }
    }
    pthread_mutex_lock(&g->lock);
    p->done = true;
    if (!g->replied)
        event_active(g->done_ev, EV_READ, 0);
    pthread_mutex_unlock(&g->lock);
    gather_unref(g);
}

static int by_age_desc(const void *x, const void *y)
{
    const struct gather_client *a = x, *b = y;

    return a->age_ms < b->age_ms ? 1 : a->age_ms > b->age_ms ? -1 : 0;
}

static json_t *clients_json(struct gather *g, const bool *done)
{
    json_t *o = json_object(), *list = json_array();
    size_t total = 0, n = 0, k = 0;
    struct gather_client *all;

    for (unsigned i = 0; i < g->n_parts; i++) {
        if (!done[i])
            continue;
        total += g->parts[i].total_clients;
        n += g->parts[i].n_clients;
    }
    all = calloc(n ? n : 1, sizeof(*all));
    for (unsigned i = 0; all && i < g->n_parts; i++) {
        if (!done[i])
            continue;
        memcpy(all + k, g->parts[i].clients, g->parts[i].n_clients * sizeof(*all));
        k += g->parts[i].n_clients;
    }
    if (all)
        qsort(all, k, sizeof(*all), by_age_desc);
    for (size_t i = 0; all && i < k && i < ADMIN_MAX_CLIENTS; i++) {
        const struct gather_client *c = &all[i];

        json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f}",
                                              "id", (json_int_t)c->id, "address", c->peer,
                                              "user", c->user, "state", c->state,
                                              "shard", c->shard,
                                              "statements", (json_int_t)c->statements,
                                              "bytes_in", (json_int_t)c->bytes_in,
                                              "bytes_out", (json_int_t)c->bytes_out,
                                              "age_s", (double)c->age_ms / 1000.0));
    }
    free(all);
    json_object_set_new(o, "total", json_integer((json_int_t)total));
    json_object_set_new(o, "listed", json_integer((json_int_t)json_array_size(list)));
    json_object_set_new(o, "list", list);
    return o;
}

static json_t *top_users_json(struct gather *g, const bool *done)
{
    struct stats_top *tops = calloc(g->n_parts ? g->n_parts : 1, sizeof(*tops));
    size_t cap = (size_t)g->n_parts * STATS_TOPK, n = 0, k;
    struct stats_top_entry *m = calloc(cap ? cap : 1, sizeof(*m));
    json_t *arr = json_array();

    for (unsigned i = 0; tops && i < g->n_parts; i++)
        if (done[i])
            tops[n++] = g->parts[i].top;
    k = tops && m ? stats_top_merge(tops, (unsigned)n, m, cap) : 0;
    for (size_t i = 0; i < k; i++)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:I}", "user", m[i].user,
                                             "statements", (json_int_t)m[i].count,
                                             "error", (json_int_t)m[i].err,
                                             "rows", (json_int_t)m[i].rows,
                                             "bytes", (json_int_t)m[i].bytes));
    free(tops);
    free(m);
    return arr;
}

/* Every vbucket with load since start: [vbucket, shard, statements, rows,
 * bytes], counters since the router started. */
static json_t *vbuckets_json(struct gather *g, const bool *done, struct smap *m)
{
    json_t *arr = json_array();
    uint32_t n = 0;

    for (unsigned i = 0; i < g->n_parts; i++)
        if (done[i] && g->parts[i].n_vb > n)
            n = g->parts[i].n_vb;
    for (uint32_t v = 0; arr && v < n; v++) {
        struct stats_vb sum = { 0, 0, 0 };

        for (unsigned i = 0; i < g->n_parts; i++) {
            if (!done[i] || v >= g->parts[i].n_vb)
                continue;
            sum.statements += g->parts[i].vb[v].statements;
            sum.rows += g->parts[i].vb[v].rows;
            sum.bytes += g->parts[i].vb[v].bytes;
        }
        if (!sum.statements)
            continue;
        json_array_append_new(arr, json_pack("[I, s, I, I, I]", (json_int_t)v,
                                             m && v < smap_n_vbuckets(m) ?
                                                 smap_shard(m, smap_shard_of_vbucket(m, v))->name :
                                                 "",
                                             (json_int_t)sum.statements, (json_int_t)sum.rows,
                                             (json_int_t)sum.bytes));
    }
    return arr;
}

/* Control thread: no more waiting for <g>'s workers (its reply goes out
 * now, or never): marks it replied, frees its events, takes it off the
 * admin's list. Copies which workers answered into <done> (NULL: not
 * wanted); returns how many. */
static unsigned gather_detach(struct gather *g, bool *done)
{
    unsigned answered = 0;

    pthread_mutex_lock(&g->lock);
    g->replied = true;
    for (unsigned i = 0; i < g->n_parts; i++) {
        answered += g->parts[i].done;
        if (done)
            done[i] = g->parts[i].done;
    }
    pthread_mutex_unlock(&g->lock);
    if (g->done_ev)
        event_free(g->done_ev);
    if (g->timer)
        event_free(g->timer);
    TAILQ_REMOVE(&g->a->gathers, g, link);
    return answered;
}

/* Control thread: all workers answered, or time is up. */
static void gather_reply(struct gather *g)
{
    struct admin *a = g->a;
    json_t *o = status_json(a->r);
    struct smap *m = current_map(a->r);
    bool *done = calloc(g->n_parts ? g->n_parts : 1, sizeof(*done));
    unsigned answered = 0;
    struct evbuffer *b;
    char *text;

    answered = gather_detach(g, done);
    if (done) {
        json_object_set_new(o, "workers_answered", json_integer(answered));
        json_object_set_new(o, "uptime_s",
                            json_real((double)(now_ms() - a->started_ms) / 1000.0));
        json_object_set_new(o, "clients", clients_json(g, done));
        json_object_set_new(o, "top_users", top_users_json(g, done));
        json_object_set_new(o, "vbucket_load", vbuckets_json(g, done, m));
    }
    smap_unref(m);
    free(done);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    b = evbuffer_new();
    if (!text || !b) {
        evhttp_send_error(g->req, HTTP_INTERNAL, "out of memory");
    } else {
        evbuffer_add(b, text, strlen(text));
        evbuffer_add(b, "\n", 1);
        reply(g->req, HTTP_OK, "OK", "application/json", b);
    }
    free(text);
    if (b)
        evbuffer_free(b);
    gather_unref(g);
}

static void gather_event(evutil_socket_t fd, short what, void *arg)
{
    struct gather *g = arg;
    bool all = true;

    (void)fd;
    if (!(what & EV_TIMEOUT)) {
        pthread_mutex_lock(&g->lock);
        for (unsigned i = 0; i < g->n_parts; i++)
            all = all && g->parts[i].done;
        pthread_mutex_unlock(&g->lock);
        if (!all)
            return;     /* more workers to come */
    }
    gather_reply(g);
}

static void on_status(struct admin *a, struct evhttp_request *req)
{
    struct router *r = a->r;
    struct event_base *base = evhttp_connection_get_base(evhttp_request_get_connection(req));
    struct gather *g = calloc(1, sizeof(*g) + r->n_workers * sizeof(g->parts[0]));
    struct timeval tv = { ADMIN_GATHER_MS / 1000, (ADMIN_GATHER_MS % 1000) * 1000 };

    if (!g) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    pthread_mutex_init(&g->lock, NULL);
    g->a = a;
    g->req = req;
    g->n_parts = r->n_workers;
    g->refs = 1;
    g->done_ev = event_new(base, -1, 0, gather_event, g);
    g->timer = evtimer_new(base, gather_event, g);
    TAILQ_INSERT_TAIL(&a->gathers, g, link);
    if (!g->done_ev || !g->timer) {
        gather_reply(g);
        return;
    }
    evtimer_add(g->timer, &tv);
    for (unsigned i = 0; i < r->n_workers; i++) {
        pthread_mutex_lock(&g->lock);
        g->refs++;
        pthread_mutex_unlock(&g->lock);
        if (worker_post(r->workers[i], gather_on_worker, g) < 0) {
            pthread_mutex_lock(&g->lock);
            g->refs--;
            pthread_mutex_unlock(&g->lock);
        }
    }
    if (r->n_workers == 0)
        gather_reply(g);
}


static void on_console(struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();

    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evbuffer_add_reference(b, console_html, console_html_len, NULL, NULL);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
                      "default-src 'self'; script-src 'unsafe-inline'; "
                      "style-src 'unsafe-inline'");
    reply(req, HTTP_OK, "OK", "text/html; charset=utf-8", b);
    evbuffer_free(b);
}

/*
 * POST /drain: /health turns 503 so the balancer sends new clients
 * elsewhere, while this router goes on serving every connection it has and
 * any that still arrive; POST /undrain ends it. Stopping the router
 * afterwards (SIGTERM) then closes nobody's statement. A router that is
 * shutting down cannot be undrained.
 */
static void on_drain(struct admin *a, struct evhttp_request *req, bool drain)
{
    struct router *r = a->r;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        reply_text(req, 405, "Method Not Allowed", "only POST");
        return;
    }
    if (!drain && atomic_load(&r->draining)) {
        reply_text(req, 409, "Conflict", "shutting down (SIGTERM): cannot undrain");
        return;
    }
    if (atomic_exchange(&r->drained, drain) != drain)
        log_info("admin: %s by an operator; /health now %s", drain ? "drained" : "undrained",
                 drain ? "503" : "200 when ready");
    reply_text(req, HTTP_OK, "OK", drain ? "drained" : "undrained");
}

static bool authorized(struct admin *a, struct evhttp_request *req)
{
    const char *h;
    size_t hl, al;

    if (!a->auth)
        return true;
    h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h)
        return false;
    hl = strlen(h);
    al = strlen(a->auth);
    return hl == al && CRYPTO_memcmp(h, a->auth, al) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct admin *a = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evhttp_uri *u = uri ? evhttp_uri_parse(uri) : NULL;
    const char *path = u ? evhttp_uri_get_path(u) : NULL;

    if (!path) {
        reply_text(req, HTTP_BADREQUEST, "Bad Request", "bad request URI");
        goto out;
    }
    if (!authorized(a, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Basic realm=\"shardwire\"");
        reply_text(req, 401, "Unauthorized", "authorization required");
        goto out;
    }
    if (strcmp(path, "/drain") == 0 || strcmp(path, "/undrain") == 0) {
        on_drain(a, req, strcmp(path, "/drain") == 0);
        goto out;
    }
    if (strcmp(path, "/health") != 0 && strcmp(path, "/metrics") != 0 &&
        strcmp(path, "/status") != 0 && strcmp(path, "/") != 0) {
        reply_text(req, HTTP_NOTFOUND, "Not Found",
                   "not found; try /, /health, /metrics, /status, POST /drain, POST /undrain");
        goto out;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
        evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "only GET");
        goto out;
    }
    if (strcmp(path, "/") == 0)
        on_console(req);
    else if (strcmp(path, "/health") == 0)
        on_health(a, req);
    else if (strcmp(path, "/metrics") == 0)
        on_metrics(a, req);
    else
        on_status(a, req);
out:
    if (u)
        evhttp_uri_free(u);
}

/* "PORT" means loopback; "HOST:PORT" or "[V6]:PORT" as given. */
static int parse_listen(const char *v, char *host, size_t cap, unsigned *port)
{
    const char *colon = strrchr(v, ':');
    char *end;
    unsigned long p;

    if (!colon) {
        snprintf(host, cap, "127.0.0.1");
        colon = v - 1;
    } else if (v[0] == '[') {
        if (colon < v + 2 || colon[-1] != ']')
            return -1;
        snprintf(host, cap, "%.*s", (int)(colon - v - 2), v + 1);
    } else {
        snprintf(host, cap, "%.*s", (int)(colon - v), v);
    }
    p = strtoul(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p == 0 || p > 65535)
        return -1;
    *port = (unsigned)p;
    return 0;
}

struct admin *admin_start(struct router *r, struct event_base *base, char **errp)
{
    const struct config *cfg = r->cfg;
    struct admin *a;
    char host[256];
    unsigned port;

    *errp = NULL;
    if (!cfg->admin_listen)
        return NULL;
    if (parse_listen(cfg->admin_listen, host, sizeof(host), &port) < 0) {
        *errp = util_fmt("admin_listen '%s' is not PORT or HOST:PORT", cfg->admin_listen);
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        *errp = strdup("out of memory");
        return NULL;
    }
    a->r = r;
    a->started_ms = now_ms();
    TAILQ_INIT(&a->gathers);
    if (cfg->admin_user) {
        char *cred = util_fmt("%s:%s", cfg->admin_user, cfg->admin_password);
        size_t n = cred ? strlen(cred) : 0;
        unsigned char *enc = malloc(4 * ((n + 2) / 3) + 1);

        if (!cred || !enc) {
            free(cred);
            free(enc);
            admin_free(a);
            *errp = strdup("out of memory");
            return NULL;
        }
        EVP_EncodeBlock(enc, (const unsigned char *)cred, (int)n);
        a->auth = util_fmt("Basic %s", enc);
        OPENSSL_cleanse(cred, n);
        free(cred);
        free(enc);
    }
    a->http = evhttp_new(base);
    if (!a->http) {
        admin_free(a);
        *errp = strdup("admin: cannot create the HTTP server");
        return NULL;
    }
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(a->http, on_request, a);
    if (evhttp_bind_socket(a->http, host, (uint16_t)port) < 0) {
        admin_free(a);
        *errp = util_fmt("admin_listen %s: cannot listen on %s:%u", cfg->admin_listen, host,
                         port);
        return NULL;
    }
    log_info("admin: HTTP on %s:%u (/health /metrics /status)%s", host, port,
             cfg->admin_user ? " with basic auth" : "");
    return a;
}

void admin_free(struct admin *a)
{
    struct gather *g;

    if (!a)
        return;
    /* /status requests still waiting: workers answering later must not
     * wake the loop (gone); evhttp_free() drops the requests themselves. */
    while ((g = TAILQ_FIRST(&a->gathers)) != NULL) {
        gather_detach(g, NULL);
        gather_unref(g);
    }
    if (a->http)
        evhttp_free(a->http);
    free(a->auth);
    free(a);
}
