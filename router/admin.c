/*
 * router/admin.c - the admin HTTP listener (see admin.h). Everything here
 * runs on the control thread; it reads shared state only through atomics,
 * the map lock and control_foreach().
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
#include <stdlib.h>
#include <string.h>

#include "router/config.h"
#include "router/control.h"
#include "router/log.h"
#include "router/mapwatch.h"
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

struct admin {
    struct router *r;
    struct evhttp *http;
    char          *auth;        /* "Basic <base64(user:password)>", or NULL */
};

/* The workers' counters, summed (each is a relaxed atomic). */
struct admin_totals {
    uint64_t sessions_accepted, sessions_open, statements, routed, rejected, backend_errors;
};

static void totals(const struct router *r, struct admin_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < r->n_workers; i++) {
        const struct worker_stats *s = &r->workers[i]->stats;

        t->sessions_accepted += atomic_load_explicit(&s->sessions_accepted, memory_order_relaxed);
        t->sessions_open += atomic_load_explicit(&s->sessions_open, memory_order_relaxed);
        t->statements += atomic_load_explicit(&s->statements, memory_order_relaxed);
        t->routed += atomic_load_explicit(&s->routed, memory_order_relaxed);
        t->rejected += atomic_load_explicit(&s->rejected, memory_order_relaxed);
        t->backend_errors += atomic_load_explicit(&s->backend_errors, memory_order_relaxed);
    }
}

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
    if (silent > r->cfg->map_lease_ms) {
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
    int              what;
};

static void metric_server(const struct control_server *s, void *arg)
{
    struct metric_walk *w = arg;
    struct evbuffer *b = w->b;

    switch (w->what) {
    case 0:
        evbuffer_add_printf(b, "shardwire_server_up");
        metric_server_labels(b, s);
        evbuffer_add_printf(b, "} %d\n", s->verdict == HEALTH_UP);
        break;
    case 1:
        for (int v = HEALTH_UNKNOWN; v <= HEALTH_DOWN; v++) {
            evbuffer_add_printf(b, "shardwire_server_health");
            metric_server_labels(b, s);
            evbuffer_add_printf(b, ",verdict=\"%s\"} %d\n",
                                health_verdict_name((enum health_verdict)v), (int)s->verdict == v);
        }
        break;
    case 2:
        if (!s->has_facts)
            break;
        evbuffer_add_printf(b, "shardwire_server_lossless");
        metric_server_labels(b, s);
        evbuffer_add_printf(b, "} %d\n", s->safe);
        break;
    case 3:
        if (!s->is_replica || s->lag_s < 0)
            break;
        evbuffer_add_printf(b, "shardwire_replication_lag_seconds");
        metric_server_labels(b, s);
        evbuffer_add_printf(b, "} %" PRId64 "\n", s->lag_s);
        break;
    }
}

static void on_metrics(struct admin *a, struct evhttp_request *req)
{
    struct router *r = a->r;
    struct evbuffer *b = evbuffer_new();
    struct admin_totals t;
    struct smap *m;
    char buf[160];

    static const struct {
        const char *name, *help;
        int         what;
    } per_server[] = {
        { "shardwire_server_up", "1 when the last health probe reached the server", 0 },
        { "shardwire_server_health", "the server's health verdict (one series per verdict)", 1 },
        { "shardwire_server_lossless",
          "1 when the server runs the lossless semi-sync setup (docs/failover.md)", 2 },
        { "shardwire_replication_lag_seconds", "Seconds_Behind_Master of a standby", 3 },
    };

    if (!b) {
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    totals(r, &t);
#define COUNTER(name, help, v)                                                                \
    evbuffer_add_printf(b, "# HELP " name " " help "\n# TYPE " name " counter\n" name         \
                        " %" PRIu64 "\n", (uint64_t)(v))
#define GAUGE(name, help, fmt, v)                                                             \
    evbuffer_add_printf(b, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " " fmt   \
                        "\n", v)
    COUNTER("shardwire_client_connections_accepted_total", "client connections accepted",
            t.sessions_accepted);
    GAUGE("shardwire_client_connections", "client connections open", "%u",
          atomic_load(&r->n_clients));
    COUNTER("shardwire_statements_total", "client commands received", t.statements);
    COUNTER("shardwire_statements_routed_total", "statements sent to a shard by their key",
            t.routed);
    COUNTER("shardwire_statements_rejected_total",
            "statements refused (analyzer, operator rules, limits)", t.rejected);
    COUNTER("shardwire_backend_errors_total",
            "backend connections lost or not opened while a client waited", t.backend_errors);
    m = current_map(r);
    GAUGE("shardwire_map_version", "version of the shard map in use", "%" PRIu64,
          m ? smap_version(m) : 0);
    GAUGE("shardwire_map_shards", "shards in the map in use", "%u", m ? smap_n_shards(m) : 0);
    smap_unref(m);
    GAUGE("shardwire_map_unconfirmed_seconds",
          "seconds since the map source (ZooKeeper) last answered; 0 for a map file", "%.3f",
          (double)mapwatch_silence_ms(r->mw) / 1000.0);
    GAUGE("shardwire_ready", "1 while /health answers 200", "%d",
          unready(r, buf, sizeof(buf)) == NULL);
    GAUGE("shardwire_draining", "1 after SIGTERM", "%d", (int)atomic_load(&r->draining));
    GAUGE("shardwire_drained", "1 while an operator has drained the router (shardctl drain)",
          "%d", (int)atomic_load(&r->drained));
    if (r->control && control_health_on(r->control)) {
        for (size_t i = 0; i < sizeof(per_server) / sizeof(per_server[0]); i++) {
            struct metric_walk w = { b, per_server[i].what };

            evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", per_server[i].name,
                                per_server[i].help, per_server[i].name);
            control_foreach(r->control, metric_server, &w);
        }
    }
#undef COUNTER
#undef GAUGE
    reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
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
    json_array_append_new(arr, o);
}

static void on_status(struct admin *a, struct evhttp_request *req)
{
    struct router *r = a->r;
    json_t *o = json_object(), *stats = json_object(), *map = json_object();
    json_t *shards = json_array(), *health = json_array();
    struct admin_totals t;
    struct smap *m = current_map(r);
    struct evbuffer *b;
    char buf[160], *text;
    const char *why = unready(r, buf, sizeof(buf));

    totals(r, &t);
    json_object_set_new(o, "ready", json_boolean(why == NULL));
    if (why)
        json_object_set_new(o, "unready_reason", json_string(why));
    json_object_set_new(o, "draining", json_boolean(atomic_load(&r->draining)));
    json_object_set_new(o, "drained", json_boolean(atomic_load(&r->drained)));
    json_object_set_new(o, "workers", json_integer(r->n_workers));
    json_object_set_new(stats, "client_connections", json_integer(atomic_load(&r->n_clients)));
    json_object_set_new(stats, "client_connections_accepted",
                        json_integer((json_int_t)t.sessions_accepted));
    json_object_set_new(stats, "statements", json_integer((json_int_t)t.statements));
    json_object_set_new(stats, "routed", json_integer((json_int_t)t.routed));
    json_object_set_new(stats, "rejected", json_integer((json_int_t)t.rejected));
    json_object_set_new(stats, "backend_errors", json_integer((json_int_t)t.backend_errors));
    json_object_set_new(o, "stats", stats);
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
        smap_unref(m);
    }
    json_object_set_new(map, "unconfirmed_ms", json_integer((json_int_t)mapwatch_silence_ms(r->mw)));
    json_object_set_new(map, "lease_ms", json_integer(r->cfg->map_lease_ms));
    /* false: writes are refused until ZooKeeper confirms the map again */
    json_object_set_new(map, "lease_ok", json_boolean(mapwatch_lease_ok(r->mw)));
    json_object_set_new(o, "map", map);
    if (r->control && control_health_on(r->control))
        control_foreach(r->control, status_server, health);
    json_object_set_new(o, "health", health);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    b = evbuffer_new();
    if (!text || !b) {
        free(text);
        if (b)
            evbuffer_free(b);
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evbuffer_add(b, text, strlen(text));
    evbuffer_add(b, "\n", 1);
    free(text);
    reply(req, HTTP_OK, "OK", "application/json", b);
    evbuffer_free(b);
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
    if (!a)
        return;
    if (a->http)
        evhttp_free(a->http);
    free(a->auth);
    free(a);
}
