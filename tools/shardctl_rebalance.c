/*
 * tools/shardctl_rebalance.c - `shardctl rebalance` and `shardctl
 * remove-shard SHARD`: plan the moves that even out the shards (or empty
 * one), keep the plan in ZooKeeper (<root>/rebalance/plan), and run it as
 * `shardctl move` processes, at most --parallel at once (docs/moves.md,
 * "Rebalancing").
 *
 * Each planned move is a child `shardctl --json move VBUCKETS --to SHARD`:
 * the move's own journal makes it resumable and refuses overlaps, and a
 * child that dies takes nothing else with it. The plan is written before
 * the first move starts, so a killed rebalance run again finds it and
 * continues the moves not yet done instead of planning anew on top of
 * half-done ones; a move's state is read from the map and the journals,
 * never remembered. Children get SIGTERM when this process dies
 * (PR_SET_PDEATHSIG): killing rebalance stops its moves where they are,
 * exactly as killing `shardctl move` does.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "router/journal.h"
#include "shardmap/movejournal.h"
#include "shardmap/rebalance.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"
#include "tools/move_data.h"
#include "tools/shardctl.h"

#define PLAN_DIR   "rebalance"
#define PLAN_NAME  "plan"

static uint64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void print_json(json_t *e)
{
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    if (text)
        puts(text);
    free(text);
    json_decref(e);
    fflush(stdout);
}

/* ---- unfinished moves ------------------------------------------------------ */

int shardctl_active_moves(struct zkstore_admin *za, struct shardctl_active_move **out,
                          unsigned *n_out)
{
    char **names = NULL, *err = NULL;
    unsigned n = 0, k = 0;
    enum zkstore_rc rc = zkstore_admin_node_list(za, "moves", &names, &n, &err);
    *out = NULL;
    *n_out = 0;
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        return shardctl_exit_of(rc);
    }
    *out = calloc(n ? n : 1, sizeof(**out));
    for (unsigned i = 0; *out && i < n; i++) {
        char *text = NULL;
        int32_t ver;
        struct shardctl_active_move *a = &(*out)[k];
        if (zkstore_admin_node_get(za, "moves", names[i], &text, &ver, &err) == ZKSTORE_OK &&
            text && move_journal_parse(text, strlen(text), &a->j, &err) == 0 &&
            move_phase_active(a->j.phase)) {
            snprintf(a->id, sizeof(a->id), "%s", names[i]);
            k++;
        }
        free(text);
        free(err);
        err = NULL;
    }
    zkstore_names_free(names, n);
    if (!*out) {
        shardctl_err("out of memory");
        return SHARDCTL_FAILED;
    }
    *n_out = k;
    return SHARDCTL_OK;
}

/* ---- the plan's state, read from the map and the journals ------------------ */

enum step_state {
    STEP_PENDING,     /* not started: every vbucket still with its source */
    STEP_RESUME,      /* its journal is unfinished: rerunning the move resumes it */
    STEP_DONE,        /* the map names the destination and no journal is open */
    STEP_STALE,       /* the map changed under the plan: skipped */
    STEP_RUNNING,     /* a child of ours runs it */
    STEP_FAILED,      /* its child failed */
};

static const char *step_name(enum step_state s)
{
    static const char *const names[] = { "pending", "resume", "done", "stale", "running",
                                         "failed" };
    return names[s];
}

struct ctx {
    const struct shardctl_opts *o;
    struct zkstore_admin       *za;
    struct rebalance_plan      *plan;
    int32_t                     plan_ver;     /* the plan node's version; -1: none */
    enum step_state             state[REBALANCE_MAX_MOVES];
    char                        why[REBALANCE_MAX_MOVES][160];   /* STEP_STALE, _FAILED */
    uint8_t                    *set;          /* [n_vbuckets] scratch */
};

/* Sets every move's state from map <m> and the unfinished journals. */
static int read_states(struct ctx *c, const struct smap *m)
{
    struct shardctl_active_move *act = NULL;
    unsigned n_act = 0;
    uint32_t n_vb = smap_n_vbuckets(m);
    uint8_t *busy = calloc(n_vb, 1), *other = malloc(n_vb);
    char *err = NULL;
    int ex = shardctl_active_moves(c->za, &act, &n_act);

    for (unsigned a = 0; ex == SHARDCTL_OK && busy && other && a < n_act; a++)
        if (move_parse_vbuckets(act[a].j.vbuckets, other, n_vb, &err) >= 0)
            for (uint32_t v = 0; v < n_vb; v++)
                busy[v] |= other[v];
    for (unsigned i = 0; ex == SHARDCTL_OK && busy && i < c->plan->n_moves; i++) {
        const struct rebalance_move *pm = &c->plan->moves[i];
        int from = smap_find_shard(m, pm->from), to = smap_find_shard(m, pm->to);
        bool all_to = true, all_from = true, any_busy = false;
        if (c->state[i] == STEP_RUNNING || c->state[i] == STEP_FAILED)
            continue;
        c->state[i] = STEP_STALE;
        for (unsigned a = 0; a < n_act; a++) {
            if (strcmp(act[a].j.vbuckets, pm->vbuckets) == 0 && strcmp(act[a].j.to, pm->to) == 0) {
                c->state[i] = STEP_RESUME;
                snprintf(c->why[i], sizeof(c->why[i]), "%s", act[a].id);
            }
        }
        if (c->state[i] == STEP_RESUME)
            continue;
        if (move_parse_vbuckets(pm->vbuckets, c->set, n_vb, &err) < 0 || to < 0) {
            snprintf(c->why[i], sizeof(c->why[i]), "%s", err ? err : "shard gone");
            free(err);
            err = NULL;
            continue;
        }
        for (uint32_t v = 0; v < n_vb; v++) {
            if (!c->set[v])
                continue;
            unsigned owner = smap_shard_of_vbucket(m, v);
            all_to &= (int)owner == to;
            all_from &= (int)owner == from;
            any_busy |= busy[v] || smap_vbucket_state(m, v) != SMAP_VB_NORMAL;
        }
        if (all_to && !any_busy)
            c->state[i] = STEP_DONE;
        else if (all_from && !any_busy)
            c->state[i] = STEP_PENDING;
        else
            snprintf(c->why[i], sizeof(c->why[i]), "%s", any_busy ? "another move holds some "
                     "of its vbuckets" : "some of its vbuckets changed owner meanwhile");
    }
    if (!busy || !other) {
        shardctl_err("out of memory");
        ex = SHARDCTL_FAILED;
    }
    free(busy);
    free(other);
    free(act);
    return ex;
}

/* ---- printing the plan ---------------------------------------------------- */

static void print_plan(struct ctx *c, const struct smap *m, bool resumed)
{
    const struct rebalance_plan *p = c->plan;
    unsigned n_sh = smap_n_shards(m);
    uint32_t n_vb = smap_n_vbuckets(m), *after = calloc(n_sh, sizeof(*after));
    char *err = NULL;

    if (!after)
        return;
    for (unsigned s = 0; s < n_sh; s++)
        after[s] = smap_vbuckets_of_shard(m, s);
    for (unsigned i = 0; i < p->n_moves; i++) {
        int from = smap_find_shard(m, p->moves[i].from), to = smap_find_shard(m, p->moves[i].to);
        if (c->state[i] == STEP_DONE || c->state[i] == STEP_STALE || from < 0 || to < 0 ||
            move_parse_vbuckets(p->moves[i].vbuckets, c->set, n_vb, &err) < 0) {
            free(err);
            err = NULL;
            continue;
        }
        for (uint32_t v = 0; v < n_vb; v++) {
            if (c->set[v] && smap_shard_of_vbucket(m, v) == (unsigned)from) {
                after[from]--;
                after[to]++;
            }
        }
    }
    const char *what = p->kind == REBALANCE_REMOVE ? "remove-shard" : "rebalance";
    if (c->o->json) {
        json_t *sh = json_array(), *mvs = json_array();
        for (unsigned s = 0; s < n_sh; s++)
            json_array_append_new(sh, json_pack("{s:s, s:I, s:I}", "name", smap_shard(m, s)->name,
                                                "vbuckets", (json_int_t)smap_vbuckets_of_shard(m, s),
                                                "after", (json_int_t)after[s]));
        for (unsigned i = 0; i < p->n_moves; i++)
            json_array_append_new(mvs, json_pack("{s:i, s:s, s:s, s:s, s:I, s:s}", "index", i + 1,
                                                 "from", p->moves[i].from, "to", p->moves[i].to,
                                                 "vbuckets", p->moves[i].vbuckets, "n",
                                                 (json_int_t)p->moves[i].n_vbuckets, "state",
                                                 step_name(c->state[i])));
        print_json(json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:o}", "event", "plan", "kind",
                             what, "shard", p->shard, "weight", p->weight, "resumed", resumed,
                             "shards", sh, "moves", mvs));
    } else {
        printf("%s: %s plan%s%s, weight by %s: %u move%s\n", what, resumed ? "resuming the" :
               "a new", p->kind == REBALANCE_REMOVE ? " emptying shard " : "",
               p->kind == REBALANCE_REMOVE ? p->shard : "", p->weight, p->n_moves,
               p->n_moves == 1 ? "" : "s");
        printf("  %-16s %9s %9s\n", "SHARD", "VBUCKETS", "AFTER");
        for (unsigned s = 0; s < n_sh; s++)
            printf("  %-16s %9" PRIu32 " %9" PRIu32 "\n", smap_shard(m, s)->name,
                   smap_vbuckets_of_shard(m, s), after[s]);
        for (unsigned i = 0; i < p->n_moves; i++)
            printf("  %u. vbuckets %s (%" PRIu32 ") %s -> %s%s%s%s\n", i + 1,
                   p->moves[i].vbuckets, p->moves[i].n_vbuckets, p->moves[i].from,
                   p->moves[i].to, c->state[i] == STEP_PENDING ? "" : "  [",
                   c->state[i] == STEP_PENDING ? "" : step_name(c->state[i]),
                   c->state[i] == STEP_PENDING ? "" : "]");
        fflush(stdout);
    }
    free(after);
}

/* ---- the plan node --------------------------------------------------------- */

static int plan_read(struct ctx *c, bool *found)
{
    char *text = NULL, *err = NULL;
    enum zkstore_rc rc = zkstore_admin_node_get(c->za, PLAN_DIR, PLAN_NAME, &text, &c->plan_ver,
                                                &err);
    *found = false;
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        return shardctl_exit_of(rc);
    }
    if (!text)
        return SHARDCTL_OK;
    if (rebalance_plan_parse(text, strlen(text), c->plan, &err) < 0) {
        shardctl_err("%s/%s/%s: %s (delete the node to plan anew)", c->o->root, PLAN_DIR,
                     PLAN_NAME, err);
        free(err);
        free(text);
        return SHARDCTL_INVALID;
    }
    free(text);
    *found = true;
    return SHARDCTL_OK;
}

static int plan_write(struct ctx *c)
{
    char *text = malloc(REBALANCE_TEXT_MAX), *err = NULL;
    enum zkstore_rc rc;
    if (!text || rebalance_plan_format(c->plan, text, REBALANCE_TEXT_MAX) < 0) {
        free(text);
        shardctl_err("rebalance plan too long");
        return SHARDCTL_FAILED;
    }
    rc = zkstore_admin_node_put(c->za, PLAN_DIR, PLAN_NAME, text, c->plan_ver, &err);
    free(text);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s%s", err ? err : zkstore_rc_name(rc), rc == ZKSTORE_CONFLICT ?
                     " (another rebalance or remove-shard started meanwhile?)" : "");
        free(err);
        return shardctl_exit_of(rc);
    }
    c->plan_ver++;
    return SHARDCTL_OK;
}

/* ---- load ------------------------------------------------------------------ */

/* --weight stored: the rows each shard's master stores per vbucket into
 * <rows>. Returns an exit code after printing the problem. */
static int stored_rows(struct ctx *c, const struct smap *m, double *rows)
{
    const struct shardctl_opts *o = c->o;
    const struct smap_key *k = smap_key_config(m);
    const char *cols[ANALYZE_MAX_KEY_COLS];
    struct mv_ctx mc = { 0 };
    char *err = NULL, what[SMAP_NAME_MAX + 32];
    int ex = SHARDCTL_OK;

    mc.db = o->database;
    mc.user = o->control_user ? o->control_user : getenv("SHARDWIRE_CONTROL_USER");
    mc.password = o->control_password ? o->control_password
                                      : getenv("SHARDWIRE_CONTROL_PASSWORD");
    if (!mc.db || !mc.user || !mc.password) {
        shardctl_err("--weight stored reads every shard: it needs --database and the control "
                     "account ($SHARDWIRE_CONTROL_USER/_PASSWORD), even with --dry-run");
        return SHARDCTL_USAGE;
    }
    for (unsigned i = 0; i < k->n_key_columns; i++)
        cols[i] = k->key_columns[i];
    mc.key_columns = cols;
    mc.n_key_columns = k->n_key_columns;
    mc.n_vbuckets = smap_n_vbuckets(m);
    for (unsigned s = 0; ex == SHARDCTL_OK && s < smap_n_shards(m); s++) {
        const struct smap_shard *sh = smap_shard(m, s);
        snprintf(what, sizeof(what), "shard %s master", sh->name);
        MYSQL *conn = mv_connect(&mc, &sh->master, what, &err);
        if (!conn || mv_discover(&mc, conn, conn, what, &err) < 0 ||
            mv_count_rows(&mc, conn, rows, &err) < 0) {
            shardctl_err("--weight stored: %s: %s; nothing was changed", what,
                         err ? err : "failed");
            ex = SHARDCTL_FAILED;
        }
        free(err);
        err = NULL;
        mv_tables_free(&mc);
        if (conn)
            mysql_close(conn);
    }
    return ex;
}

/* Weights from the routers' measured load or the rows stored, or none
 * (*<weights> NULL) when --weight vbuckets or nothing was measured. */
static int weights_of(struct ctx *c, const struct smap *m, double **weights)
{
    const char *by = c->o->weight ? c->o->weight : "bytes";
    uint32_t n = smap_n_vbuckets(m);
    unsigned answered = 0;
    double *load = NULL, total = 0;

    *weights = NULL;
    snprintf(c->plan->weight, sizeof(c->plan->weight), "vbuckets");
    if (strcmp(by, "vbuckets") == 0)
        return SHARDCTL_OK;
    load = calloc(n, sizeof(*load));
    *weights = calloc(n, sizeof(**weights));
    if (!load || !*weights) {
        free(load);
        free(*weights);
        *weights = NULL;
        shardctl_err("out of memory");
        return SHARDCTL_FAILED;
    }
    if (strcmp(by, "stored") == 0) {
        int ex = stored_rows(c, m, load);
        if (ex != SHARDCTL_OK) {
            free(load);
            free(*weights);
            *weights = NULL;
            return ex;
        }
    } else {
        shardctl_vbucket_load(c->o, by, load, n, &answered);
    }
    for (uint32_t v = 0; v < n; v++)
        total += load[v];
    if (total > 0) {
        rebalance_weights(load, n, *weights);
        snprintf(c->plan->weight, sizeof(c->plan->weight), "%s", by);
    } else {
        free(*weights);
        *weights = NULL;
        if (!c->o->json && strcmp(by, "stored") != 0)
            printf("%s: no router reported load (%u answered): weighing vbuckets by count\n",
                   c->plan->kind == REBALANCE_REMOVE ? "remove-shard" : "rebalance", answered);
        else if (!c->o->json)
            printf("%s: the shards store no rows: weighing vbuckets by count\n",
                   c->plan->kind == REBALANCE_REMOVE ? "remove-shard" : "rebalance");
    }
    free(load);
    return SHARDCTL_OK;
}

/* ---- running the moves ----------------------------------------------------- */

struct child {
    pid_t     pid;
    int       fd;
    unsigned  idx;            /* the plan's move */
    char      id[64];         /* its journal, once it says */
    char      phase[16];
    uint64_t  rows, estimate, scanned;
    double    rate;
    long      eta_s;
    uint64_t  last_plain_ms;
    size_t    len;
    char      buf[16384];
};

struct runner {
    struct ctx  *c;
    bool         tty;          /* a status line on a terminal */
    bool         status_shown;
    struct child kids[SHARDCTL_MAX_PARALLEL];
    unsigned     n_kids;
    unsigned     n_done;
};

static void status_clear(struct runner *r)
{
    if (r->status_shown) {
        fputs("\r\033[K", stdout);
        r->status_shown = false;
    }
}

static void status_draw(struct runner *r)
{
    char line[600];
    size_t len = 0;
    if (!r->tty)
        return;
    len += (size_t)snprintf(line, sizeof(line), "%u/%u moves done", r->n_done,
                            r->c->plan->n_moves);
    for (unsigned k = 0; k < r->n_kids && len < sizeof(line); k++) {
        const struct child *ch = &r->kids[k];
        len += (size_t)snprintf(line + len, sizeof(line) - len, " | %u:%s %s", ch->idx + 1,
                                ch->id[0] ? ch->id : "-", ch->phase[0] ? ch->phase : "start");
        if (len < sizeof(line) && strcmp(ch->phase, "copy") == 0 && ch->rows)
            len += (size_t)snprintf(line + len, sizeof(line) - len, " %" PRIu64 " rows %.0f/s",
                                    ch->rows, ch->rate);
        if (len < sizeof(line) && strcmp(ch->phase, "copy") == 0 && ch->eta_s >= 0)
            len += (size_t)snprintf(line + len, sizeof(line) - len, " eta %lds", ch->eta_s);
    }
    printf("\r%.*s\033[K", 200, line);
    r->status_shown = true;
    fflush(stdout);
}

/* One JSON event line from child <ch>. */
static void child_line(struct runner *r, struct child *ch, const char *line)
{
    json_error_t je;
    json_t *e = json_loads(line, 0, &je);
    const char *ev = json_string_value(json_object_get(e, "event"));
    const char *id = json_string_value(json_object_get(e, "move"));
    const char *phase = json_string_value(json_object_get(e, "phase"));
    uint64_t now = now_ms(CLOCK_MONOTONIC);

    if (!e || !ev) {
        status_clear(r);
        printf("move %u: %s\n", ch->idx + 1, line);     /* not ours to judge: pass on */
        json_decref(e);
        return;
    }
    if (id && id[0])
        snprintf(ch->id, sizeof(ch->id), "%s", id);
    if (phase)
        snprintf(ch->phase, sizeof(ch->phase), "%s", phase);
    if (strcmp(ev, "rows") == 0) {
        ch->rows = (uint64_t)json_integer_value(json_object_get(e, "rows"));
        ch->scanned = (uint64_t)json_integer_value(json_object_get(e, "scanned"));
        ch->estimate = (uint64_t)json_integer_value(json_object_get(e, "estimate"));
        ch->rate = json_number_value(json_object_get(e, "rate"));
        ch->eta_s = (long)json_integer_value(json_object_get(e, "eta_s"));
    }
    if (r->c->o->json) {
        json_object_set_new(e, "index", json_integer(ch->idx + 1));
        print_json(e);
        return;
    }
    if (strcmp(ev, "rows") == 0) {
        if (r->tty) {
            status_draw(r);
        } else if (now - ch->last_plain_ms >= 5000) {
            ch->last_plain_ms = now;
            char eta[32] = "";
            if (ch->eta_s >= 0)
                snprintf(eta, sizeof(eta), ", eta %ld s", ch->eta_s);
            printf("move %u (%s): %s: %" PRIu64 " rows, %.0f rows/s%s\n", ch->idx + 1,
                   ch->id, ch->phase, ch->rows, ch->rate, eta);
        }
    } else {
        status_clear(r);
        printf("move %u (%s): %s\n", ch->idx + 1, ch->id[0] ? ch->id : "-",
               json_string_value(json_object_get(e, "line")) ?
                   json_string_value(json_object_get(e, "line")) : line);
        status_draw(r);
    }
    fflush(stdout);
    json_decref(e);
}

static void self_path(char *buf, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    buf[n > 0 ? (size_t)n : 0] = '\0';
}

/* Starts the child for move <i>. Returns 0, or -1 after printing why. */
static int spawn(struct runner *r, unsigned i)
{
    const struct shardctl_opts *o = r->c->o;
    const struct rebalance_move *pm = &r->c->plan->moves[i];
    char exe[4096], timeout[32], rate[32], wait[32];
    const char *argv[40];
    int n = 0, fds[2];

    self_path(exe, sizeof(exe));
    snprintf(timeout, sizeof(timeout), "%.3f", o->timeout_ms / 1000.0);
    snprintf(rate, sizeof(rate), "%u", o->rate);
    snprintf(wait, sizeof(wait), "%.3f", o->router_wait_ms / 1000.0);
    argv[n++] = exe;
    argv[n++] = "--zk";
    argv[n++] = o->zk;
    argv[n++] = "--root";
    argv[n++] = o->root;
    argv[n++] = "--timeout";
    argv[n++] = timeout;
    argv[n++] = "--json";
    if (o->auth_file) {
        argv[n++] = "--auth-file";
        argv[n++] = o->auth_file;
    }
    if (o->control_user) {
        argv[n++] = "--control-user";
        argv[n++] = o->control_user;
    }
    if (o->control_password_file) {
        argv[n++] = "--control-password-file";
        argv[n++] = o->control_password_file;
    }
    if (o->rate) {
        argv[n++] = "--rate";
        argv[n++] = rate;
    }
    if (o->router_wait_ms) {
        argv[n++] = "--router-wait";
        argv[n++] = wait;
    }
    argv[n++] = "move";
    argv[n++] = pm->vbuckets;
    argv[n++] = "--to";
    argv[n++] = pm->to;
    argv[n++] = "--database";
    argv[n++] = r->c->plan->database;
    argv[n] = NULL;
    if (pipe(fds) < 0) {
        shardctl_err("pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        shardctl_err("fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        /* only async-signal-safe calls until exec: ZooKeeper's threads were
         * not copied, their locks may be held */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(SHARDCTL_FAILED);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(exe, (char *const *)argv);
        _exit(SHARDCTL_FAILED);
    }
    close(fds[1]);
    struct child *ch = &r->kids[r->n_kids++];
    memset(ch, 0, sizeof(*ch));
    ch->pid = pid;
    ch->fd = fds[0];
    ch->idx = i;
    ch->eta_s = -1;
    r->c->state[i] = STEP_RUNNING;
    if (o->json) {
        print_json(json_pack("{s:s, s:i, s:s, s:s, s:s}", "event", "move_start", "index", i + 1,
                             "vbuckets", pm->vbuckets, "from", pm->from, "to", pm->to));
    } else {
        status_clear(r);
        printf("move %u: vbuckets %s (%" PRIu32 ") %s -> %s: started\n", i + 1, pm->vbuckets,
               pm->n_vbuckets, pm->from, pm->to);
        fflush(stdout);
    }
    return 0;
}

/* Reads what child <k> wrote; at its end reaps it. Returns its exit code
 * once it has ended, else -1. */
static int child_read(struct runner *r, unsigned k)
{
    struct child *ch = &r->kids[k];
    ssize_t got = read(ch->fd, ch->buf + ch->len, sizeof(ch->buf) - 1 - ch->len);
    if (got > 0) {
        ch->len += (size_t)got;
        ch->buf[ch->len] = '\0';
        char *start = ch->buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            child_line(r, ch, start);
            start = nl + 1;
        }
        ch->len -= (size_t)(start - ch->buf);
        memmove(ch->buf, start, ch->len);
        if (ch->len == sizeof(ch->buf) - 1) {   /* a line longer than the buffer */
            ch->buf[ch->len] = '\0';
            child_line(r, ch, ch->buf);
            ch->len = 0;
        }
        return -1;
    }
    if (got < 0 && errno == EINTR)
        return -1;
    int status = 0;
    close(ch->fd);
    while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs the pending and unfinished moves, at most --parallel at once. After
 * a failure no new move starts; those running finish. Returns an exit code
 * (the first failure's). */
static int run_moves(struct ctx *c)
{
    struct runner r = { .c = c, .tty = !c->o->json && isatty(STDOUT_FILENO) };
    unsigned parallel = c->o->parallel ? c->o->parallel : 2, next = 0;
    int ex = SHARDCTL_OK;

    for (unsigned i = 0; i < c->plan->n_moves; i++)
        r.n_done += c->state[i] == STEP_DONE;
    for (;;) {
        while (ex == SHARDCTL_OK && r.n_kids < parallel && next < c->plan->n_moves) {
            unsigned i = next++;
            if (c->state[i] != STEP_PENDING && c->state[i] != STEP_RESUME)
                continue;
            if (spawn(&r, i) < 0)
                ex = SHARDCTL_FAILED;
        }
        if (r.n_kids == 0)
            break;
        struct pollfd pfd[SHARDCTL_MAX_PARALLEL];
        for (unsigned k = 0; k < r.n_kids; k++)
            pfd[k] = (struct pollfd){ .fd = r.kids[k].fd, .events = POLLIN };
        if (poll(pfd, r.n_kids, 1000) < 0 && errno != EINTR) {
            shardctl_err("poll: %s", strerror(errno));
            ex = SHARDCTL_FAILED;
            break;
        }
        for (unsigned k = 0; k < r.n_kids; k++) {
            if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int code = child_read(&r, k);
            if (code < 0)
                continue;
            struct child *ch = &r.kids[k];
            unsigned i = ch->idx;
            status_clear(&r);
            if (code == 0) {
                c->state[i] = STEP_DONE;
                r.n_done++;
            } else {
                c->state[i] = STEP_FAILED;
                snprintf(c->why[i], sizeof(c->why[i]), "shardctl move exited %d", code);
                if (ex == SHARDCTL_OK)
                    ex = code < SHARDCTL_NOAUTH + 1 ? code : SHARDCTL_FAILED;
            }
            if (c->o->json)
                print_json(json_pack("{s:s, s:i, s:s, s:i}", "event", "move_end", "index", i + 1,
                                     "move", ch->id, "exit", code));
            else
                printf("move %u (%s): %s (%u/%u done)\n", i + 1, ch->id[0] ? ch->id : "-",
                       code == 0 ? "done" : c->why[i], r.n_done, c->plan->n_moves);
            fflush(stdout);
            r.kids[k] = r.kids[--r.n_kids];
            pfd[k] = pfd[r.n_kids];
            k--;
        }
        status_draw(&r);
    }
    status_clear(&r);
    return ex;
}

/* ---- removing the shard ----------------------------------------------------- */

static int drop_shard(struct smap_builder *b, const struct smap *cur, void *arg, bool *unchanged,
                      char **errp)
{
    const char *name = arg;
    int i = smap_find_shard(cur, name);
    (void)unchanged;
    if (i < 0) {
        *unchanged = true;      /* removed already (a rerun after a lost reply) */
        return 0;
    }
    for (uint32_t v = 0; v < smap_n_vbuckets(cur); v++) {
        if (smap_shard_of_vbucket(cur, v) == (unsigned)i &&
            smap_vbucket_state(cur, v) != SMAP_VB_NORMAL) {
            if (asprintf(errp, "vbucket %" PRIu32 " of shard '%s' is frozen", v, name) < 0)
                *errp = NULL;
            return -1;
        }
    }
    return smap_builder_remove_shard(b, name, errp);
}

static int remove_from_map(struct ctx *c)
{
    struct shardctl_active_move *act = NULL;
    unsigned n_act = 0;
    const char *name = c->plan->shard;
    int ex = shardctl_active_moves(c->za, &act, &n_act);
    for (unsigned a = 0; ex == SHARDCTL_OK && a < n_act; a++) {
        if (strcmp(act[a].j.from, name) == 0 || strcmp(act[a].j.to, name) == 0) {
            shardctl_err("remove-shard: move %s (%s to %s) is unfinished; shard '%s' stays "
                         "(finish or abort that move, then rerun)", act[a].id, act[a].j.from,
                         act[a].j.to, name);
            ex = SHARDCTL_INVALID;
        }
    }
    free(act);
    if (ex != SHARDCTL_OK)
        return ex;
    struct smap *after = NULL;
    ex = shardctl_change(c->o, drop_shard, (void *)name, NULL, &after);
    if (ex == SHARDCTL_OK) {
        if (c->o->json)
            print_json(json_pack("{s:s, s:s, s:I}", "event", "shard_removed", "shard", name,
                                 "map_version", (json_int_t)smap_version(after)));
        else
            printf("remove-shard: shard %s removed from the map (version %" PRIu64 "); its "
                   "servers hold no routed data any more\n", name, smap_version(after));
    }
    smap_unref(after);
    return ex;
}

/* ---- shardctl moves ----------------------------------------------------------- */

void shardctl_plan_summary(const struct shardctl_opts *o, struct zkstore_admin *za,
                           struct json_t *top)
{
    struct ctx c = { .o = o, .za = za, .plan_ver = -1 };
    struct smap *m = NULL;
    unsigned n[STEP_FAILED + 1] = { 0 };
    bool found = false;
    char *err = NULL;

    c.plan = calloc(1, sizeof(*c.plan));
    if (!c.plan || plan_read(&c, &found) != SHARDCTL_OK || !found || c.plan->done)
        goto out;
    if (zkstore_admin_load(za, &m, NULL, &err) != ZKSTORE_OK ||
        !(c.set = malloc(smap_n_vbuckets(m))) || read_states(&c, m) != SHARDCTL_OK)
        goto out;
    for (unsigned i = 0; i < c.plan->n_moves; i++)
        n[c.state[i]]++;
    if (top) {
        json_object_set_new(top, "plan", json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i}",
                            "kind", c.plan->kind == REBALANCE_REMOVE ? "remove-shard" :
                            "rebalance", "shard", c.plan->shard, "moves", (int)c.plan->n_moves,
                            "done", (int)n[STEP_DONE], "unfinished", (int)n[STEP_RESUME],
                            "pending", (int)n[STEP_PENDING], "stale", (int)n[STEP_STALE]));
    } else {
        printf("unfinished plan: %s%s%s, %u moves: %u done, %u unfinished, %u not started%s "
               "(`shardctl rebalance --dry-run` shows it; run the plan again to continue)\n\n",
               c.plan->kind == REBALANCE_REMOVE ? "remove-shard " : "rebalance", c.plan->shard,
               "", c.plan->n_moves, n[STEP_DONE], n[STEP_RESUME], n[STEP_PENDING],
               n[STEP_STALE] ? ", some stale" : "");
    }
out:
    free(err);
    smap_unref(m);
    free(c.set);
    free(c.plan);
}

/* ---- the verbs ---------------------------------------------------------------- */

/* Plans anew into c->plan. Returns an exit code. */
static int plan_new(struct ctx *c, const struct smap *m, enum rebalance_kind kind,
                    const char *shard)
{
    struct shardctl_active_move *act = NULL;
    unsigned n_act = 0;
    uint32_t n_vb = smap_n_vbuckets(m);
    uint8_t *busy = calloc(n_vb, 1);
    double *weights = NULL;
    char *err = NULL;
    int ex = busy ? shardctl_active_moves(c->za, &act, &n_act) : SHARDCTL_FAILED;

    for (unsigned a = 0; ex == SHARDCTL_OK && a < n_act; a++) {
        if (kind == REBALANCE_REMOVE &&
            (strcmp(act[a].j.from, shard) == 0 || strcmp(act[a].j.to, shard) == 0)) {
            shardctl_err("remove-shard: move %s (vbuckets %s, %s to %s, phase %s) is in "
                         "progress on shard '%s'; nothing was changed (let it finish or abort "
                         "it first)", act[a].id, act[a].j.vbuckets, act[a].j.from, act[a].j.to,
                         move_phase_name(act[a].j.phase), shard);
            ex = SHARDCTL_INVALID;
            break;
        }
        if (move_parse_vbuckets(act[a].j.vbuckets, c->set, n_vb, &err) >= 0)
            for (uint32_t v = 0; v < n_vb; v++)
                busy[v] |= c->set[v];
        free(err);
        err = NULL;
    }
    if (ex == SHARDCTL_OK && kind == REBALANCE_REMOVE) {
        struct journal fj;
        if (journal_read(c->za, shard, &fj, &err) < 0) {
            shardctl_err("remove-shard: %s", err ? err : "failover journal");
            ex = SHARDCTL_FAILED;
        } else if (journal_in_progress(&fj)) {
            shardctl_err("remove-shard: a %s of shard '%s' is in progress (state %s); nothing "
                         "was changed", fj.kind[0] ? fj.kind : "failover", shard, fj.state);
            ex = SHARDCTL_INVALID;
        }
        free(err);
        err = NULL;
    }
    for (uint32_t v = 0; ex == SHARDCTL_OK && v < n_vb; v++)
        busy[v] |= smap_vbucket_state(m, v) != SMAP_VB_NORMAL;
    if (ex == SHARDCTL_OK)
        ex = weights_of(c, m, &weights);
    if (ex == SHARDCTL_OK) {
        struct rebalance_input in = { .m = m, .weight = weights, .busy = busy, .kind = kind,
                                      .remove = shard };
        char weight[16];
        snprintf(weight, sizeof(weight), "%s", c->plan->weight);
        if (rebalance_plan_make(&in, c->plan, &err) < 0) {
            shardctl_err("%s: %s; nothing was changed", kind == REBALANCE_REMOVE ?
                         "remove-shard" : "rebalance", err);
            free(err);
            ex = SHARDCTL_INVALID;
        }
        snprintf(c->plan->weight, sizeof(c->plan->weight), "%s", weight);
        snprintf(c->plan->database, sizeof(c->plan->database), "%s",
                 c->o->database ? c->o->database : "");
        c->plan->started_ms = now_ms(CLOCK_REALTIME);
        for (unsigned i = 0; i < c->plan->n_moves; i++)
            c->state[i] = STEP_PENDING;
    }
    free(weights);
    free(busy);
    free(act);
    return ex;
}

/* --abandon: marks the unfinished plan done, leaving the map and every
 * move as they are; refused while a move of it is unfinished. */
static int abandon(struct ctx *c, const struct smap *m)
{
    unsigned done = 0;
    int ex = read_states(c, m);
    for (unsigned i = 0; ex == SHARDCTL_OK && i < c->plan->n_moves; i++) {
        done += c->state[i] == STEP_DONE;
        if (c->state[i] == STEP_RESUME) {
            shardctl_err("move %u of the plan (%s, vbuckets %s) is unfinished: finish it (run "
                         "the plan again) or abort it (shardctl move --abort %s) first; nothing "
                         "was changed", i + 1, c->why[i], c->plan->moves[i].vbuckets, c->why[i]);
            ex = SHARDCTL_INVALID;
        }
    }
    if (ex != SHARDCTL_OK)
        return ex;
    c->plan->done = true;
    if ((ex = plan_write(c)) != SHARDCTL_OK)
        return ex;
    if (c->o->json)
        print_json(json_pack("{s:s, s:i, s:i}", "event", "abandoned", "moves",
                             (int)c->plan->n_moves, "done", (int)done));
    else
        printf("plan abandoned: %u of its %u moves were done, the others not started; the "
               "map stays as it is\n", done, c->plan->n_moves);
    return SHARDCTL_OK;
}

static int run_verb(const struct shardctl_opts *o, enum rebalance_kind kind, const char *shard)
{
    const char *verb = kind == REBALANCE_REMOVE ? "remove-shard" : "rebalance";
    struct ctx c = { .o = o, .plan_ver = -1 };
    struct smap *m = NULL;
    char *err = NULL;
    bool found = false, resumed = false;
    int ex;

    if (o->parallel > SHARDCTL_MAX_PARALLEL) {
        shardctl_err("--parallel: at most %d", SHARDCTL_MAX_PARALLEL);
        return SHARDCTL_USAGE;
    }
    if (!o->dry_run && !o->abandon && !o->database) {
        shardctl_err("%s needs --database DB (the app database on the shards)", verb);
        return SHARDCTL_USAGE;
    }
    if (o->weight && strcmp(o->weight, "vbuckets") && strcmp(o->weight, "bytes") &&
        strcmp(o->weight, "rows") && strcmp(o->weight, "statements") &&
        strcmp(o->weight, "stored")) {
        shardctl_err("--weight '%s': expected vbuckets, stored, bytes, rows or statements",
                     o->weight);
        return SHARDCTL_USAGE;
    }
    if (!o->dry_run && !o->abandon && !(o->control_user || getenv("SHARDWIRE_CONTROL_USER"))) {
        shardctl_err("%s needs the control account: $SHARDWIRE_CONTROL_USER and "
                     "$SHARDWIRE_CONTROL_PASSWORD (or --control-user and "
                     "--control-password-file)", verb);
        return SHARDCTL_USAGE;
    }
    c.plan = calloc(1, sizeof(*c.plan));
    if (!c.plan)
        return SHARDCTL_FAILED;
    if ((ex = shardctl_connect(o, &c.za)) != SHARDCTL_OK)
        goto out;
    enum zkstore_rc rc = zkstore_admin_load(c.za, &m, NULL, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        ex = shardctl_exit_of(rc);
        goto out;
    }
    if (!(c.set = malloc(smap_n_vbuckets(m)))) {
        ex = SHARDCTL_FAILED;
        goto out;
    }
    if ((ex = plan_read(&c, &found)) != SHARDCTL_OK)
        goto out;
    if (o->abandon) {
        if (found && !c.plan->done)
            ex = abandon(&c, m);
        else if (!o->json)
            printf("%s: no unfinished plan; nothing to do\n", verb);
        goto out;
    }
    if (found && !c.plan->done) {
        if (c.plan->kind != kind || (kind == REBALANCE_REMOVE && strcmp(c.plan->shard, shard))) {
            char other[SMAP_NAME_MAX + 16];
            snprintf(other, sizeof(other), "%s%s%s", c.plan->kind == REBALANCE_REMOVE ?
                     "remove-shard" : "rebalance", c.plan->kind == REBALANCE_REMOVE ? " " : "",
                     c.plan->shard);
            shardctl_err("%s: an unfinished %s plan is in %s/%s; nothing was changed (run "
                         "`shardctl %s` to finish it first)", verb, other, PLAN_DIR, PLAN_NAME,
                         other);
            ex = SHARDCTL_INVALID;
            goto out;
        }
        if (o->database && strcmp(o->database, c.plan->database)) {
            shardctl_err("%s: the unfinished plan moves database %s, not %s", verb,
                         c.plan->database, o->database);
            ex = SHARDCTL_INVALID;
            goto out;
        }
        resumed = true;
        if ((ex = read_states(&c, m)) != SHARDCTL_OK)
            goto out;
    } else {
        if (kind == REBALANCE_REMOVE && smap_find_shard(m, shard) < 0) {
            shardctl_err("remove-shard: unknown shard '%s'; nothing was changed", shard);
            ex = SHARDCTL_INVALID;
            goto out;
        }
        if ((ex = plan_new(&c, m, kind, shard)) != SHARDCTL_OK)
            goto out;
    }
    print_plan(&c, m, resumed);
    if (kind == REBALANCE_EVEN && c.plan->n_moves == 0) {
        if (!o->json)
            printf("rebalance: the shards are as even as whole vbuckets allow; nothing to do\n");
        goto out;
    }
    if (o->dry_run)
        goto out;
    if (!resumed && (ex = plan_write(&c)) != SHARDCTL_OK)
        goto out;
    ex = run_moves(&c);
    if (ex != SHARDCTL_OK) {
        shardctl_err("%s stopped: a move failed (see above); rerun `shardctl %s%s%s` to "
                     "continue the plan", verb, verb, shard ? " " : "", shard ? shard : "");
        goto out;
    }
    /* the truth is in the map and journals, not in what children said */
    smap_unref(m);
    m = NULL;
    rc = zkstore_admin_load(c.za, &m, NULL, &err);
    if (rc != ZKSTORE_OK || (ex = read_states(&c, m)) != SHARDCTL_OK) {
        shardctl_err("%s", err ? err : "cannot re-read the map");
        free(err);
        ex = rc != ZKSTORE_OK ? shardctl_exit_of(rc) : ex;
        goto out;
    }
    unsigned stale = 0;
    for (unsigned i = 0; i < c.plan->n_moves; i++) {
        if (c.state[i] != STEP_STALE)
            continue;
        stale++;
        shardctl_err("%s: move %u (vbuckets %s, %s to %s) skipped: %s", verb, i + 1,
                     c.plan->moves[i].vbuckets, c.plan->moves[i].from, c.plan->moves[i].to,
                     c.why[i]);
    }
    if (kind == REBALANCE_REMOVE && !stale)
        ex = remove_from_map(&c);
    if (ex == SHARDCTL_OK) {
        c.plan->done = true;
        ex = plan_write(&c);
    }
    if (ex == SHARDCTL_OK && stale) {
        shardctl_err("%s: %u planned move%s skipped; run `shardctl %s` again to plan anew",
                     verb, stale, stale == 1 ? " was" : "s were", verb);
        ex = SHARDCTL_INVALID;
    }
    if (ex == SHARDCTL_OK) {
        if (o->json)
            print_json(json_pack("{s:s, s:s, s:i}", "event", "done", "kind", verb, "moves",
                                 (int)c.plan->n_moves));
        else
            printf("%s: done: %u move%s\n", verb, c.plan->n_moves,
                   c.plan->n_moves == 1 ? "" : "s");
    }
out:
    smap_unref(m);
    zkstore_admin_free(c.za);
    free(c.set);
    free(c.plan);
    return ex;
}

int shardctl_rebalance(const struct shardctl_opts *o)
{
    if (o->argc != 0) {
        shardctl_err("usage: rebalance --database DB [--dry-run] [--parallel N] "
                     "[--weight vbuckets|stored|bytes|rows|statements] [--rate ROWS] | rebalance "
                     "--abandon");
        return SHARDCTL_USAGE;
    }
    return run_verb(o, REBALANCE_EVEN, NULL);
}

int shardctl_remove_shard(const struct shardctl_opts *o)
{
    if (o->argc != 1) {
        shardctl_err("usage: remove-shard SHARD --database DB [--dry-run] [--parallel N] "
                     "[--rate ROWS]");
        return SHARDCTL_USAGE;
    }
    return run_verb(o, REBALANCE_REMOVE, o->argv[0]);
}
