/*
 * router/coordinator.c - automatic failover (see coordinator.h and
 * docs/failover.md).
 *
 * Every COORD_INTERVAL_MS the thread makes sure it is a candidate in the
 * election; the leader then reads the map, the registrations (each router's
 * health view) and each shard's journal, and acts:
 *
 *   journal state   meaning                          the leader
 *   -------------   ------------------------------   -------------------------
 *   (none), done,   no failover running              decide; if the master
 *   aborted                                          failed, start one
 *   started,        a coordinator died before the    decide again: start a new
 *   prepared        map named the candidate          term (prepare is redone)
 *   published       it died after the map change     finish the promotion
 *                                                    (with a newer term)
 *   kind=switchover a shardctl runs a switchover     nothing while its runner
 *   in progress                                      node lives; once gone,
 *                                                    finish or roll back
 *                                                    (router/switchover.c)
 *
 * Each step is written to the journal, with a compare-and-set on the
 * journal node, before it is taken; and before every step that changes a
 * server or the map the coordinator asks journal_owned() whether its
 * election node still belongs to its current session and the journal is as
 * it left it. A coordinator that was paused past its session and wakes up
 * stands down (logged) and changes nothing: the newer term wins.
 */
#include "router/coordinator.h"

#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/config.h"
#include "router/detect.h"
#include "router/journal.h"
#include "router/log.h"
#include "router/mapwatch.h"
#include "router/promote.h"
#include "router/switchover.h"
#include "router/util.h"
#include "router/worker.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"

#define COORD_INTERVAL_MS 300
#define COORD_RETRY_MS    5000      /* after an aborted or failed attempt */

struct shard_memo {
    char               name[SMAP_NAME_MAX];
    enum detect_result last;
    uint64_t           retry_after_ms;  /* monotonic */
};

struct coordinator {
    struct router        *r;
    pthread_t             thread;
    pthread_mutex_t       lock;
    pthread_cond_t        cond;
    bool                  stopping;     /* under lock */
    struct zkstore_admin *za;
    bool                  leader;
    char                  id[ZKSTORE_ROUTER_ID_MAX];
    struct shard_memo    *memo;
    unsigned              n_memo;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct shard_memo *memo_of(struct coordinator *co, const char *name)
{
    struct shard_memo *m;

    for (unsigned i = 0; i < co->n_memo; i++)
        if (strcmp(co->memo[i].name, name) == 0)
            return &co->memo[i];
    m = realloc(co->memo, (co->n_memo + 1) * sizeof(*m));
    if (!m)
        return NULL;
    co->memo = m;
    m = &co->memo[co->n_memo++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    return m;
}

/* ---------------------------------------------------------------- journal */

static int coord_journal_read(struct coordinator *co, const char *shard, struct journal *j)
{
    char *err = NULL;

    if (journal_read(co->za, shard, j, &err) < 0) {
        log_warn("failover: %s", err ? err : "cannot read a journal");
        free(err);
        return -1;
    }
    return 0;
}

/* Tests only: SHARDWIRE_TEST_FAILOVER_PAUSE_AFTER=STATE makes the
 * coordinator stop for SHARDWIRE_TEST_FAILOVER_PAUSE_MS (default 60 s) right
 * after writing STATE, so a test can kill or stop it between two steps. */
static void test_pause(const char *state)
{
    const char *after = getenv("SHARDWIRE_TEST_FAILOVER_PAUSE_AFTER");
    const char *ms = getenv("SHARDWIRE_TEST_FAILOVER_PAUSE_MS");
    unsigned long n = ms ? strtoul(ms, NULL, 10) : 60000;
    struct timespec ts = { (time_t)(n / 1000), (long)(n % 1000) * 1000000L };

    if (after && strcmp(after, state) == 0) {
        log_warn("failover: test pause after state=%s for %lu ms", state, n);
        nanosleep(&ts, NULL);
    }
}

/*
 * Whether this coordinator still owns the failover of <shard> journaled in
 * <j>: its election node belongs to its current ZooKeeper session (a
 * coordinator paused past its session timeout lost it, and another router
 * leads now) and the journal is still as it last wrote it (no newer term).
 * Logs why not, once per failover (<j>->state gets "stood_down"). Asked
 * before every step that changes a server or the map.
 */
static bool still_ours(struct coordinator *co, const char *shard, struct journal *j)
{
    char why[400];

    if (strcmp(j->state, "stood_down") == 0)
        return false;
    if (journal_owned(co->za, shard, j, why, sizeof(why)))
        return true;
    log_warn("failover: shard=%s term=%" PRIu64 " stood down: %s; changing nothing more",
             shard, j->term, why);
    snprintf(j->state, sizeof(j->state), "stood_down");
    return false;
}

struct owner {
    struct coordinator *co;
    const char         *shard;
    struct journal     *j;
};

static bool owner_may_act(void *arg)
{
    struct owner *o = arg;

    return still_ours(o->co, o->shard, o->j);
}

/* Writes the journal of <shard> as it is now (<j>, with <state> and the
 * extra words <fmt>), if nobody wrote it since we read it. Returns 0, or -1
 * when another coordinator took over (then this one must stop). */
static int journal_step(struct coordinator *co, const char *shard, struct journal *j,
                        const char *state, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int journal_step(struct coordinator *co, const char *shard, struct journal *j,
                        const char *state, const char *fmt, ...)
{
    char extra[700];
    char *err = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(extra, sizeof(extra), fmt, ap);
    va_end(ap);
    /* The compare-and-set below catches a newer term, not a lost session
     * whose handle reconnected with a new one: ask for both. */
    if (!still_ours(co, shard, j))
        return -1;
    if (journal_write(co->za, shard, j, co->id, state, extra, &err) < 0) {
        log_warn("failover: shard=%s term=%" PRIu64 " journal write (%s) failed, stood down: "
                 "%s", shard, j->term, state, err ? err : "?");
        free(err);
        return -1;
    }
    if (strcmp(state, "done") == 0)
        atomic_fetch_add(&co->r->failovers[0], 1);
    else if (strcmp(state, "aborted") == 0)
        atomic_fetch_add(&co->r->failovers[1], 1);
    log_info("failover: shard=%s term=%" PRIu64 " state=%s%s%s", shard, j->term, state,
             extra[0] ? " " : "", extra);
    test_pause(state);
    return 0;
}

/* ---------------------------------------------------------------- promotion */

/* The last step of a promotion: the map was published with the shard
 * paused, so that routers hold its statements (writes would get "read only"
 * from the new master until promote_finish() made it writable); now they go
 * there. Returns 0, or -1 (logged; the journal stays at 'published', so the
 * next round resumes and unpauses). */
static int unpause(struct coordinator *co, const char *shard, struct journal *j)
{
    char *err = NULL;
    enum zkstore_rc rc;

    if (!still_ours(co, shard, j))
        return -1;
    rc = zkstore_admin_set_paused(co->za, shard, false, NULL, &err);
    if (rc == ZKSTORE_OK)
        return 0;
    log_error("failover: shard=%s term=%" PRIu64 " the new master is writable but the map "
              "still holds its statements (paused): %s; retrying", shard, j->term,
              err ? err : zkstore_rc_name(rc));
    free(err);
    return -1;
}

static void progress(void *arg, const char *line)
{
    log_info("failover: shard=%s %s", (const char *)arg, line);
}

static void promote_opts_of(struct coordinator *co, struct owner *ow, struct promote_opts *po)
{
    const struct config *cfg = co->r->cfg;
    const char *shard = ow->shard;

    memset(po, 0, sizeof(*po));
    po->user = cfg->control_user;
    po->password = cfg->control_password ? cfg->control_password : "";
    po->timeout_ms = cfg->health_timeout_ms < 1000 ? 1000 : cfg->health_timeout_ms;
    po->apply_timeout_ms = cfg->failover_apply_timeout_ms;
    po->progress = progress;
    po->progress_arg = (void *)shard;
    po->may_act = owner_may_act;
    po->may_act_arg = ow;
}

/* The map names the candidate already: make it writable. */
static void resume(struct coordinator *co, const struct smap_shard *s, struct journal *j)
{
    struct promote p;
    struct promote_opts po;
    char *err = NULL, a[SMAP_ENDPOINT_STR_MAX];
    struct shard_memo *memo = memo_of(co, s->name);
    struct owner ow = { co, s->name, j };
    int prc;

    if (memo && now_ms() < memo->retry_after_ms)
        return;
    promote_opts_of(co, &ow, &po);
    smap_format_endpoint(&s->master, a, sizeof(a));
    log_warn("failover: shard=%s term=%" PRIu64 " was left at 'published' by %s; finishing "
             "the promotion of %s", s->name, j->term, j->coordinator, a);
    /* A newer term: the one that left it, should it wake up, finds it. */
    j->term++;
    if (journal_step(co, s->name, j, "published", "new=%s resumed_by=%s", a, co->id) < 0)
        return;
    prc = promote_resume(&p, s, &po, &err);
    if (prc < 0 && p.stood_down) {
        free(err);
    } else if (prc < 0) {
        log_error("failover: shard=%s term=%" PRIu64 " cannot finish: %s", s->name, j->term,
                  err);
        free(err);
        if (memo)
            memo->retry_after_ms = now_ms() + COORD_RETRY_MS;
    } else if (unpause(co, s->name, j) < 0) {
        if (memo)
            memo->retry_after_ms = now_ms() + COORD_RETRY_MS;
    } else {
        j->last_ms = wall_ms();
        journal_step(co, s->name, j, "done", "new=%s", a);
    }
    promote_free(&p);
}

/* Replaces the failed master of shard <s> (in map <m>). */
static void fail_over(struct coordinator *co, const struct smap_shard *s, struct journal *j)
{
    struct promote p;
    struct promote_opts po;
    struct smap *cur = NULL, *next = NULL;
    struct smap_builder *b = NULL;
    int32_t cas;
    char *err = NULL, old[SMAP_ENDPOINT_STR_MAX], cand[SMAP_ENDPOINT_STR_MAX], behind[300];
    struct shard_memo *memo = memo_of(co, s->name);
    enum zkstore_rc rc;
    unsigned wait_ms;
    struct owner ow = { co, s->name, j };
    int i, prc;

    memset(&p, 0, sizeof(p));
    smap_format_endpoint(&s->master, old, sizeof(old));
    j->term++;
    snprintf(j->kind, sizeof(j->kind), "failover");
    if (journal_step(co, s->name, j, "started", "old=%s", old) < 0)
        return;
    promote_opts_of(co, &ow, &po);
    prc = promote_prepare(&p, s, &po, &err);
    if (prc < 0 && p.stood_down) {
        free(err);
        goto out;
    } else if (prc < 0) {
        log_warn("failover: shard=%s term=%" PRIu64 " refused: %s", s->name, j->term, err);
        journal_step(co, s->name, j, "aborted", "old=%s", old);
        free(err);
        goto retry_later;
    }
    smap_format_endpoint(promote_candidate(&p), cand, sizeof(cand));
    if (journal_step(co, s->name, j, "prepared", "old=%s candidate=%s", old, cand) < 0) {
        promote_abort(&p);
        goto out;
    }
    /* The map as it is now: nobody may have changed this shard meanwhile. */
    rc = zkstore_admin_load(co->za, &cur, &cas, &err);
    i = rc == ZKSTORE_OK ? smap_find_shard(cur, s->name) : -1;
    /* Woken from a pause, this one may find a map its successor changed:
     * that is not ours to abort. */
    if (!still_ours(co, s->name, j)) {
        free(err);
        goto out;
    }
    if (i < 0 || !smap_endpoint_eq(&smap_shard(cur, (unsigned)i)->master, &s->master)) {
        log_warn("failover: shard=%s term=%" PRIu64 " the map changed under us (%s); aborting",
                 s->name, j->term, err ? err : "another master");
        free(err);
        promote_abort(&p);
        journal_step(co, s->name, j, "aborted", "old=%s", old);
        goto retry_later;
    }
    b = smap_builder_from(cur);
    if (b)
        smap_builder_set_version(b, smap_version(cur) + 1);
    /* Published paused: until the candidate is writable, routers hold the
     * shard's statements instead of sending writes that get "read only". */
    if (!b || smap_builder_set_master(b, s->name, promote_candidate(&p), &err) < 0 ||
        smap_builder_set_paused(b, s->name, true, &err) < 0 ||
        (next = smap_builder_finish(b, &err), b = NULL, !next) ||
        (rc = zkstore_admin_write(co->za, cur, cas, next, &err)) != ZKSTORE_OK) {
        log_error("failover: shard=%s term=%" PRIu64 " cannot publish the new master: %s",
                  s->name, j->term, err ? err : "out of memory");
        free(err);
        promote_abort(&p);
        journal_step(co, s->name, j, "aborted", "old=%s", old);
        goto retry_later;
    }
    if (journal_step(co, s->name, j, "published", "old=%s new=%s version=%" PRIu64, old, cand,
                     smap_version(next)) < 0)
        goto out;
    /* Every live router runs the new map, or its lease ran out (it then
     * sends no writes): only then may the new master take writes. */
    wait_ms = co->r->cfg->failover_router_wait_ms;
    if (wait_ms < co->r->cfg->map_lease_ms + 1000)
        wait_ms = co->r->cfg->map_lease_ms + 1000;
    if (zkstore_admin_wait_routers(co->za, smap_version(next), wait_ms, behind,
                                   sizeof(behind)) > 0)
        log_warn("failover: shard=%s routers not on map version=%" PRIu64 " after %u ms: %s "
                 "(the old master is fenced)", s->name, smap_version(next), wait_ms, behind);
    prc = promote_finish(&p, &err);
    if (prc < 0 && p.stood_down) {
        free(err);
        goto out;
    } else if (prc < 0) {
        log_error("failover: shard=%s term=%" PRIu64 " finish failed (will retry): %s",
                  s->name, j->term, err);
        free(err);
        goto retry_later;
    }
    if (unpause(co, s->name, j) < 0)
        goto retry_later;
    j->last_ms = wall_ms();
    journal_step(co, s->name, j, "done", "old=%s new=%s", old, cand);
    log_info("failover: shard=%s done old=%s new=%s", s->name, old, cand);
    goto out;
retry_later:
    if (memo)
        memo->retry_after_ms = now_ms() + COORD_RETRY_MS;
out:
    promote_free(&p);
    smap_builder_free(b);
    smap_unref(cur);
    smap_unref(next);
}

/* ---------------------------------------------------------------- switchover */

/*
 * A switchover of shard <s> is in progress (journal <j>). While its runner
 * lives (its ephemeral node <root>/runners/<id>, held by its ZooKeeper
 * session), its own steps decide and the shard is left alone. Once the
 * node is gone (the shardctl died or its machine did: within its session
 * timeout) the switchover is finished or rolled back here, by the rules a
 * re-run of `shardctl switchover` follows (router/switchover.c), so a dead
 * shardctl never leaves a shard paused.
 */
static void finish_switchover(struct coordinator *co, const struct smap_shard *s,
                              struct journal *j)
{
    const struct config *cfg = co->r->cfg;
    struct shard_memo *memo = memo_of(co, s->name);
    struct owner ow = { co, s->name, j };
    struct promote_opts po;
    struct switchover_run sr;
    enum switchover_outcome out;
    const char *ruser = cfg->repl_user;
    char *text = NULL, *err = NULL;
    int32_t version = -1;
    enum zkstore_rc rc;

    if (strcmp(j->coordinator, co->id) != 0) {
        rc = zkstore_admin_node_get(co->za, SWITCHOVER_RUNNERS_DIR, j->coordinator, &text,
                                    &version, &err);
        free(text);
        if (rc != ZKSTORE_OK) {
            log_warn("failover: shard=%s cannot tell whether switchover runner %s lives: %s",
                     s->name, j->coordinator, err ? err : zkstore_rc_name(rc));
            free(err);
            return;
        }
        if (version >= 0)
            return;
    }
    if (memo && now_ms() < memo->retry_after_ms)
        return;
    if (ruser && (strpbrk(ruser, "'\\") ||
                  (cfg->repl_password && strpbrk(cfg->repl_password, "'\\")))) {
        log_error("failover: repl_user and repl_password may not hold quotes or backslashes; "
                  "not used");
        ruser = NULL;
    }
    log_warn("failover: shard=%s term=%" PRIu64 " the switchover by %s stopped at state=%s "
             "and its runner is gone; finishing it", s->name, j->term, j->coordinator,
             j->state);
    promote_opts_of(co, &ow, &po);
    memset(&sr, 0, sizeof(sr));
    sr.za = co->za;
    sr.shard = s->name;
    sr.who = co->id;
    sr.j = j;
    sr.po = &po;
    sr.repl_user = ruser;
    sr.repl_password = cfg->repl_password ? cfg->repl_password : "";
    sr.router_wait_ms = cfg->failover_router_wait_ms;
    if (switchover_recover(&sr, s, &out, &err) < 0) {
        log_error("failover: shard=%s term=%" PRIu64 " cannot finish the switchover (will "
                  "retry): %s", s->name, j->term, err ? err : "?");
        free(err);
        if (memo)
            memo->retry_after_ms = now_ms() + COORD_RETRY_MS;
        return;
    }
    if (out == SWITCHOVER_FINISHED)
        atomic_fetch_add(&co->r->failovers[0], 1);
    else
        atomic_fetch_add(&co->r->failovers[1], 1);
    log_info("failover: shard=%s term=%" PRIu64 " switchover %s", s->name, j->term,
             out == SWITCHOVER_FINISHED ? "rolled forward: the target is master, unpaused"
                                        : "rolled back: the old master stays master, unpaused");
}

/* ---------------------------------------------------------------- deciding */

struct views {
    struct detect_line *l;
    unsigned           *router;   /* l[i] belongs to router router[i] */
    unsigned            n, n_routers;
};

static void views_free(struct views *v)
{
    free(v->l);
    free(v->router);
}

static int views_read(struct coordinator *co, struct views *v)
{
    struct zkstore_router *rs = NULL;
    unsigned n = 0, cap = 0;
    char *err = NULL;

    memset(v, 0, sizeof(*v));
    if (zkstore_admin_routers(co->za, &rs, &n, &err) != ZKSTORE_OK) {
        log_warn("failover: cannot list routers: %s", err);
        free(err);
        return -1;
    }
    v->n_routers = n;
    for (unsigned r = 0; r < n; r++) {
        const char *p = rs[r].payload;

        while (p && *p) {
            size_t len = strcspn(p, "\n");
            struct detect_line dl;

            if (detect_parse_line(p, len, &dl) == 0) {
                if (v->n == cap) {
                    unsigned nc = cap ? 2 * cap : 64;
                    struct detect_line *nl = realloc(v->l, nc * sizeof(*nl));
                    unsigned *nr = nl ? realloc(v->router, nc * sizeof(*nr)) : NULL;

                    if (nl)
                        v->l = nl;
                    if (!nl || !nr) {
                        zkstore_routers_free(rs, n);
                        views_free(v);
                        return -1;
                    }
                    v->router = nr;
                    cap = nc;
                }
                v->l[v->n] = dl;
                v->router[v->n++] = r;
            }
            p += len;
            if (*p == '\n')
                p++;
        }
    }
    zkstore_routers_free(rs, n);
    return 0;
}

/* What router <r> says about <ep> in its role, or an unknown view. */
static struct detect_view view_of(const struct views *v, unsigned r, const char *shard,
                                  bool is_master, const struct smap_endpoint *ep)
{
    struct detect_view none = { .verdict = HEALTH_UNKNOWN };

    for (unsigned i = 0; i < v->n; i++)
        if (v->router[i] == r && v->l[i].is_master == is_master &&
            strcmp(v->l[i].shard, shard) == 0 && smap_endpoint_eq(&v->l[i].server, ep))
            return v->l[i].v;
    return none;
}

static void decide_shard(struct coordinator *co, const struct views *v,
                         const struct smap_shard *s)
{
    const struct config *cfg = co->r->cfg;
    struct detect_view *mv = NULL, *sv = NULL;
    struct detect_policy pol = { .flap_window_ms = cfg->failover_flap_window_ms };
    struct detect_input in;
    struct journal j;
    struct shard_memo *memo = memo_of(co, s->name);
    enum detect_result res;
    unsigned nr = v->n_routers;

    if (!memo || coord_journal_read(co, s->name, &j) < 0)
        return;
    /* A switchover first: its `published` is not a failover's. */
    if (strcmp(j.kind, "switchover") == 0 && journal_in_progress(&j)) {
        finish_switchover(co, s, &j);
        return;
    }
    if (strcmp(j.state, "published") == 0 && smap_endpoint_eq(&j.new_master, &s->master)) {
        resume(co, s, &j);
        return;
    }
    if (s->n_standbys == 0 || nr == 0)
        return;
    mv = calloc(nr, sizeof(*mv));
    sv = calloc((size_t)nr * s->n_standbys, sizeof(*sv));
    if (!mv || !sv)
        goto out;
    for (unsigned r = 0; r < nr; r++) {
        mv[r] = view_of(v, r, s->name, true, &s->master);
        for (unsigned k = 0; k < s->n_standbys; k++)
            sv[r * s->n_standbys + k] = view_of(v, r, s->name, false, &s->standbys[k]);
    }
    memset(&in, 0, sizeof(in));
    in.n_routers = nr;
    in.n_standbys = s->n_standbys;
    in.master = mv;
    in.standby = sv;
    in.master_ep = &s->master;
    in.last_failover_ms = j.last_ms;
    /* The flap window is on the wall clock (journal times). */
    res = detect_master(&in, &pol, wall_ms());
    if (res != memo->last) {
        char a[SMAP_ENDPOINT_STR_MAX];

        smap_format_endpoint(&s->master, a, sizeof(a));
        if (res == DETECT_HEALTHY)
            log_info("failover: shard=%s master=%s healthy again", s->name, a);
        else
            log_warn("failover: shard=%s master=%s decision=%s routers=%u", s->name, a,
                     detect_result_name(res), nr);
        memo->last = res;
    }
    if (res == DETECT_FAILED && now_ms() >= memo->retry_after_ms)
        fail_over(co, s, &j);
out:
    free(mv);
    free(sv);
}

static void lead(struct coordinator *co)
{
    struct smap *m = NULL;
    struct views v;
    char *err = NULL;
    enum zkstore_rc rc = zkstore_admin_load(co->za, &m, NULL, &err);

    if (rc != ZKSTORE_OK) {
        log_warn("failover: cannot read the map: %s", err ? err : zkstore_rc_name(rc));
        free(err);
        return;
    }
    if (views_read(co, &v) == 0) {
        for (unsigned i = 0; i < smap_n_shards(m); i++)
            decide_shard(co, &v, smap_shard(m, i));
        views_free(&v);
    }
    smap_unref(m);
}

/* ---------------------------------------------------------------- thread */

static bool connect_zk(struct coordinator *co)
{
    const struct config *cfg = co->r->cfg;
    const struct zkauth *auth = cfg->have_failover_zk_auth ? &cfg->failover_zk_auth
                                : cfg->have_zk_auth      ? &cfg->zk_auth
                                                         : NULL;
    char *err = NULL;
    enum zkstore_rc rc;

    if (co->za)
        return true;
    rc = zkstore_admin_connect(cfg->zookeeper, cfg->zk_root, auth, 3000, &co->za, &err);
    if (rc != ZKSTORE_OK) {
        log_warn("failover: coordinator cannot reach ZooKeeper: %s", err ? err : "?");
        free(err);
        co->za = NULL;
        return false;
    }
    return true;
}

static bool wait_interval(struct coordinator *co)
{
    struct timespec ts;
    bool stop;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += COORD_INTERVAL_MS * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&co->lock);
    if (!co->stopping)
        pthread_cond_timedwait(&co->cond, &co->lock, &ts);
    stop = co->stopping;
    pthread_mutex_unlock(&co->lock);
    return !stop;
}

static void *coordinator_main(void *arg)
{
    struct coordinator *co = arg;

    mysql_thread_init();
    do {
        bool leader = false;
        char who[ZKSTORE_ROUTER_ID_MAX], *err = NULL;
        enum zkstore_rc rc;

        if (!connect_zk(co))
            continue;
        rc = zkstore_admin_elect(co->za, co->id, &leader, who, sizeof(who), &err);
        if (rc != ZKSTORE_OK) {
            log_warn("failover: election: %s", err ? err : zkstore_rc_name(rc));
            free(err);
            if (rc == ZKSTORE_UNREACHABLE) {
                zkstore_admin_free(co->za);
                co->za = NULL;
            }
            leader = false;
        }
        if (leader != co->leader)
            log_info("failover: this router %s the coordinator (leader=%s)",
                     leader ? "is now" : "is no longer", who[0] ? who : "-");
        co->leader = leader;
        atomic_store(&co->r->coordinator_leader, leader);
        if (leader)
            lead(co);
    } while (wait_interval(co));
    zkstore_admin_free(co->za);
    co->za = NULL;
    mysql_thread_end();
    return NULL;
}

struct coordinator *coordinator_start(struct router *r, char **errp)
{
    const struct config *cfg = r->cfg;
    struct coordinator *co;

    *errp = NULL;
    if (!cfg->auto_failover)
        return NULL;
    co = calloc(1, sizeof(*co));
    if (!co) {
        *errp = strdup("out of memory");
        return NULL;
    }
    co->r = r;
    snprintf(co->id, sizeof(co->id), "%s", mapwatch_router_id(r->mw));
    pthread_mutex_init(&co->lock, NULL);
    pthread_cond_init(&co->cond, NULL);
    if (pthread_create(&co->thread, NULL, coordinator_main, co) != 0) {
        *errp = util_fmt("cannot start the coordinator thread: %s", strerror(errno));
        pthread_mutex_destroy(&co->lock);
        pthread_cond_destroy(&co->cond);
        free(co);
        return NULL;
    }
    log_info("failover: automatic failover on; coordinator candidate id=%s", co->id);
    return co;
}

void coordinator_stop(struct coordinator *co)
{
    if (!co)
        return;
    pthread_mutex_lock(&co->lock);
    co->stopping = true;
    pthread_cond_broadcast(&co->cond);
    pthread_mutex_unlock(&co->lock);
    pthread_join(co->thread, NULL);
    pthread_mutex_destroy(&co->lock);
    pthread_cond_destroy(&co->cond);
    free(co->memo);
    free(co);
}
