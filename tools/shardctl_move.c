/*
 * tools/shardctl_move.c - `shardctl move VBUCKETS --to SHARD`, `shardctl
 * move --abort ID` and `shardctl moves`: moving vbuckets and their rows
 * from one shard to another while the routers keep serving
 * (docs/moves.md).
 *
 * Each phase is written to the move's journal in ZooKeeper
 * (<root>/moves/<id>, shardmap/movejournal.h) before it starts, with a
 * compare-and-set, so a second shardctl working on the same move loses
 * (exit 3) and a killed one is resumed by running the same command again.
 * The map is the truth about the flip: once it names the destination, only
 * cleanup remains. Rows are the business of tools/move_data.c.
 */
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shardmap/movejournal.h"
#include "shardmap/smap.h"
#include "shardmap/zkstore.h"
#include "tools/move_data.h"
#include "tools/shardctl.h"

#define MOVES_DIR "moves"

struct move {
    const struct shardctl_opts *o;
    struct zkstore_admin       *za;
    char                        id[64];
    int32_t                     zver;      /* the journal node's version; -1: none yet */
    struct move_journal         j;
    uint8_t                    *set;       /* [n_vbuckets] */
    uint32_t                    n_vbuckets;
    struct mv_ctx               mv;
    struct smap_endpoint        src_ep, dst_ep;
    char                        src_addr[SMAP_ENDPOINT_STR_MAX], dst_addr[SMAP_ENDPOINT_STR_MAX];
    MYSQL                      *src, *dst;
    const char                 *key_cols[ANALYZE_MAX_KEY_COLS];
    uint64_t                    zk_said_ms;   /* last "waiting for ZooKeeper" line */
    struct smap                *written;      /* the map this move last wrote, and */
    int32_t                     written_cas;  /* its version node's version: the flip
                                                 skips a read when nobody wrote since */
    struct {                    /* progress of the step running (show_count) */
        uint64_t t0_ms, last_ms;
        uint64_t expected;       /* a delete: the rows the flip found moved (0: unknown) */
        int64_t  behind;         /* catch-up: binary log bytes after the position
                                    reached, when last measured; -1: unknown */
        uint64_t behind_at;      /* mv_ctx.count.bytes when <behind> was measured */
    } pg;
    bool                        bar_shown;  /* a progress bar is on the terminal's last line */
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void progress(void *arg, const char *line)
{
    struct move *mv = arg;
    if (mv->bar_shown) {
        fputs("\r\033[K", stdout);
        mv->bar_shown = false;
    }
    if (mv->o->json) {
        json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:s}", "event", "progress", "move", mv->id,
                              "phase", move_phase_name(mv->j.phase), "rows",
                              (json_int_t)mv->j.rows, "line", line);
        char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(e);
    } else {
        printf("move %s: %s\n", mv->id[0] ? mv->id : "-", line);
    }
    fflush(stdout);
}

/* "812 B", "12.3 kB", "4.1 MB" into <buf>. */
static const char *fmt_bytes(uint64_t n, char *buf, size_t cap)
{
    if (n < 1000)
        snprintf(buf, cap, "%" PRIu64 " B", n);
    else if (n < 1000000)
        snprintf(buf, cap, "%.1f kB", n / 1e3);
    else
        snprintf(buf, cap, "%.1f MB", n / 1e6);
    return buf;
}

/* A step of its own starts (the copy, a delete, the catch-up rounds of a
 * phase): its counts, rate and ETA start from zero. */
static void progress_start(struct move *mv, enum mv_step step, uint64_t expected)
{
    memset(&mv->mv.count, 0, sizeof(mv->mv.count));
    mv->mv.count.step = step;
    mv->pg.t0_ms = mv->pg.last_ms = mono_ms();
    mv->pg.expected = expected;
    mv->pg.behind = -1;
    mv->pg.behind_at = 0;
}

/* Measures how far catch-up is behind the source's end of binary log
 * (none is known without BINLOG MONITOR: the display leaves it out). */
static void measure_behind(struct move *mv, const struct mv_pos *at)
{
    uint64_t behind;
    char *err = NULL;
    if (mv_binlog_behind(mv->src, at, &behind, &err) == 0) {
        mv->pg.behind = (int64_t)behind;
        mv->pg.behind_at = mv->mv.count.bytes;
    }
    free(err);
}

/*
 * The progress of a step (docs/moves.md, "Progress"): a bar redrawn in
 * place on a terminal (every 200 ms), a plain line every 5 s otherwise,
 * and with --json a "rows" event every 500 ms and whenever <force>d: at
 * the end of each step, where catch-up starts and after each round.
 * Each step has its own measure of how far it got: the copy and a delete
 * read every row of each table (rows read of the source's estimate; a
 * delete also rows deleted of the rows the flip found moved, whichever is
 * further); catch-up reads the binary log up to the source's end (bytes
 * read of bytes read + bytes behind). The ETA is the time left at the
 * rate so far.
 */
static void show(struct move *mv, const struct mv_count *n, bool force)
{
    uint64_t now = mono_ms();
    bool tty = !mv->o->json && isatty(STDOUT_FILENO);
    unsigned every = mv->o->json ? 500 : tty ? 200 : 5000;

    if (!mv->pg.t0_ms)
        mv->pg.t0_ms = mv->pg.last_ms = now;
    if (!force && now - mv->pg.last_ms < every)
        return;
    if (force && !mv->o->json)
        return;   /* a summary line of the step or round follows */
    mv->pg.last_ms = now;
    double secs = (double)(now - mv->pg.t0_ms) / 1000.0;
    double rate = secs > 0 ? n->done / secs : 0, frac = -1;
    long eta = -1;
    int64_t behind = -1;
    const char *what = n->step == MV_STEP_COPY ? "copy" : n->step == MV_STEP_CATCHUP ? "catchup"
                       : mv->j.phase == MOVE_CLEANUP ? "cleanup" : "delete";

    if (n->step == MV_STEP_CATCHUP) {
        double bytes_rate = secs > 0 ? n->bytes / secs : 0;
        if (mv->pg.behind >= 0) {
            uint64_t since = n->bytes - mv->pg.behind_at;
            behind = (uint64_t)mv->pg.behind > since ? mv->pg.behind - (int64_t)since : 0;
        }
        if (behind >= 0 && n->bytes + (uint64_t)behind > 0)
            frac = (double)n->bytes / (double)(n->bytes + (uint64_t)behind);
        if (behind == 0)
            eta = 0;
        else if (behind > 0 && bytes_rate > 0)
            eta = (long)(behind / bytes_rate + 0.5);
    } else {
        double by_read = n->estimate ? (double)n->read / (double)n->estimate : -1;
        double by_done = n->step == MV_STEP_DELETE && mv->pg.expected
                             ? (double)n->done / (double)mv->pg.expected : -1;
        frac = by_read > by_done ? by_read : by_done;
        /* the estimate is InnoDB's: past it, no ETA; never more than 99% early */
        if (frac > 0 && frac < 1)
            eta = (long)(secs * (1 - frac) / frac + 0.5);
        if (frac > 0.99)
            frac = 0.99;
    }
    if (force && n->step != MV_STEP_CATCHUP) {   /* the step's end */
        frac = 1;
        eta = 0;
    }
    if (mv->o->json) {
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:I, s:f, s:I}", "event", "rows", "move",
                              mv->id, "phase", move_phase_name(mv->j.phase), "step", what,
                              "rows", (json_int_t)n->done, "rate", rate, "eta_s",
                              (json_int_t)eta);
        if (e && n->step == MV_STEP_CATCHUP) {
            json_object_set_new(e, "events", json_integer((json_int_t)n->read));
            json_object_set_new(e, "bytes", json_integer((json_int_t)n->bytes));
            json_object_set_new(e, "behind_bytes", json_integer((json_int_t)behind));
            json_object_set_new(e, "bytes_rate", json_real(secs > 0 ? n->bytes / secs : 0));
        } else if (e) {
            json_object_set_new(e, "scanned", json_integer((json_int_t)n->read));
            json_object_set_new(e, "estimate", json_integer((json_int_t)n->estimate));
            if (n->step == MV_STEP_DELETE)
                json_object_set_new(e, "expected", json_integer((json_int_t)mv->pg.expected));
        }
        char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
        if (text)
            puts(text);
        free(text);
        json_decref(e);
        fflush(stdout);
        return;
    }
    char left[32] = "?", b1[32], b2[32];
    if (eta >= 0)
        snprintf(left, sizeof(left), "%ld s", eta);
    if (tty) {
        char bar[31];
        int full = frac > 0 ? (int)(frac * 30) : 0;
        for (int i = 0; i < 30; i++)
            bar[i] = i < full ? '#' : '.';
        bar[30] = '\0';
        printf("\rmove %s: %s [%s] %3.0f%%  %" PRIu64 " rows%s  %.0f rows/s", mv->id, what, bar,
               frac > 0 ? frac * 100 : 0, n->done, n->step == MV_STEP_DELETE ? " deleted" : "",
               rate);
        if (n->step == MV_STEP_CATCHUP && behind >= 0)
            printf("  %s behind", fmt_bytes((uint64_t)behind, b1, sizeof(b1)));
        printf("  eta %s\033[K", left);
        mv->bar_shown = true;
    } else if (n->step == MV_STEP_CATCHUP) {
        printf("move %s: catchup: %" PRIu64 " changed rows applied, %" PRIu64 " events (%s) "
               "read, %.0f rows/s, %s behind the source, eta %s\n", mv->id, n->done, n->read,
               fmt_bytes(n->bytes, b1, sizeof(b1)), rate,
               behind >= 0 ? fmt_bytes((uint64_t)behind, b2, sizeof(b2)) : "?", left);
    } else if (n->step == MV_STEP_DELETE) {
        printf("move %s: %s: %" PRIu64 " rows deleted (of about %" PRIu64 "), %" PRIu64
               " read, %.0f rows/s, eta %s\n", mv->id, what, n->done, mv->pg.expected, n->read,
               rate, left);
    } else if (n->estimate) {
        printf("move %s: copy: %" PRIu64 " rows copied, %" PRIu64 " of about %" PRIu64
               " read (%.0f%%), %.0f rows/s, eta %s\n", mv->id, n->done, n->read, n->estimate,
               frac * 100, rate, left);
    } else {
        printf("move %s: copy: %" PRIu64 " rows copied, %" PRIu64 " read, %.0f rows/s\n",
               mv->id, n->done, n->read, rate);
    }
    fflush(stdout);
}

static void pause_point(struct move *mv, const char *point);

/* mv_ctx.on_count */
static void show_count(void *arg, const struct mv_count *n)
{
    struct move *mv = arg;
    show(mv, n, false);
    /* tests kill the mover in the middle of cleanup's deletes: after a chunk */
    if (n->step == MV_STEP_DELETE && mv->j.phase == MOVE_CLEANUP && n->done > 0)
        pause_point(mv, "deleting");
}

static void __attribute__((format(printf, 2, 3))) sayf(struct move *mv, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    progress(mv, line);
}

/* ZooKeeper unreachable in the middle of a move: the move waits for it (the
 * routers serve on their maps meanwhile, within their lease), up to
 * MOVE_ZK_WAIT_MS, reconnecting when the session is gone. Returns true to
 * retry. */
#define MOVE_ZK_WAIT_MS 300000
static bool zk_wait(struct move *mv, uint64_t *since, const char *why)
{
    uint64_t now = mono_ms();
    if (now - *since > MOVE_ZK_WAIT_MS)
        return false;
    if (now - mv->zk_said_ms > 5000) {
        sayf(mv, "waiting for ZooKeeper (%s); the routers serve meanwhile",
             why ? why : "unreachable");
        mv->zk_said_ms = now;
    }
    usleep(300 * 1000);
    struct zkstore_admin *za = NULL;
    if (zkstore_admin_connect(mv->o->zk, mv->o->root, mv->o->auth, mv->o->timeout_ms, &za,
                              NULL) == ZKSTORE_OK) {
        zkstore_admin_free(mv->za);
        mv->za = za;
    }
    return true;
}

/* Tests stop the mover at a named point (SHARDWIRE_MOVE_PAUSE=POINT): it
 * says so and stops itself (SIGSTOP), to be killed or continued. */
static void pause_point(struct move *mv, const char *point)
{
    static bool paused;   /* once per process: a point passed in a loop stops once */
    const char *want = getenv("SHARDWIRE_MOVE_PAUSE");
    if (!want || strcmp(want, point) != 0 || paused)
        return;
    paused = true;
    sayf(mv, "paused at %s (SHARDWIRE_MOVE_PAUSE)", point);
    raise(SIGSTOP);
}

/* Writes the journal (phase first in the operator's mind: "recorded before
 * it starts"). Returns an exit code. */
static int journal_write(struct move *mv)
{
    char text[MOVE_TEXT_MAX], *err = NULL;
    enum zkstore_rc rc;

    mv->j.updated_ms = wall_ms();
    if (move_journal_format(&mv->j, text, sizeof(text)) < 0) {
        shardctl_err("move journal too long");
        return SHARDCTL_FAILED;
    }
    if (mv->zver < 0) {
        rc = zkstore_admin_node_create_seq(mv->za, MOVES_DIR, "m-", text, mv->id,
                                           sizeof(mv->id), &err);
        mv->zver = 0;
    } else {
        bool lost = false;
        uint64_t since = mono_ms();
        for (;;) {
            rc = zkstore_admin_node_put(mv->za, MOVES_DIR, mv->id, text, mv->zver, &err);
            if (rc == ZKSTORE_OK) {
                mv->zver++;
                break;
            }
            if (rc == ZKSTORE_CONFLICT && lost) {
                /* a write cut off by a connection loss may have been applied */
                char *now = NULL;
                int32_t ver;
                if (zkstore_admin_node_get(mv->za, MOVES_DIR, mv->id, &now, &ver, NULL) ==
                        ZKSTORE_OK && now && strcmp(now, text) == 0) {
                    free(now);
                    mv->zver = ver;
                    rc = ZKSTORE_OK;
                    break;
                }
                free(now);
            }
            if (rc != ZKSTORE_UNREACHABLE || !zk_wait(mv, &since, err))
                break;
            lost = true;
            free(err);
            err = NULL;
        }
    }
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s%s", err ? err : zkstore_rc_name(rc),
                     rc == ZKSTORE_CONFLICT ? " (another shardctl works on this move?)" : "");
        free(err);
        return shardctl_exit_of(rc);
    }
    return SHARDCTL_OK;
}

static int enter_phase(struct move *mv, enum move_phase p)
{
    mv->j.phase = p;
    mv->j.error[0] = '\0';
    return journal_write(mv);
}

/* Records why the move stopped (it stays in its phase; rerun resumes). */
static void journal_error(struct move *mv, const char *msg)
{
    snprintf(mv->j.error, sizeof(mv->j.error), "%s", msg);
    if (mv->id[0])
        journal_write(mv);
}

/* ---- map changes ---------------------------------------------------------- */

struct map_edit {
    const struct move  *mv;
    const uint8_t      *set;
    const char         *owner;       /* NULL: keep owners */
    enum smap_vb_state  state;
    bool                same_masters;   /* refuse if either shard's master changed */
};

/* Checks that the map <m> still names the masters the move copied between
 * (a failover or switchover of either changes them: docs/moves.md). Returns
 * 0, or -1 with a malloc'd *<errp> naming the shard and both addresses. */
static int masters_unchanged(const struct move *mv, const struct smap *m, char **errp)
{
    const char *names[2] = { mv->j.from, mv->j.to };
    const struct smap_endpoint *eps[2] = { &mv->src_ep, &mv->dst_ep };
    for (int i = 0; i < 2; i++) {
        int k = smap_find_shard(m, names[i]);
        char was[SMAP_ENDPOINT_STR_MAX], now[SMAP_ENDPOINT_STR_MAX] = "(gone)";
        if (k >= 0 && smap_endpoint_eq(&smap_shard(m, (unsigned)k)->master, eps[i]))
            continue;
        smap_format_endpoint(eps[i], was, sizeof(was));
        if (k >= 0)
            smap_format_endpoint(&smap_shard(m, (unsigned)k)->master, now, sizeof(now));
        if (asprintf(errp, "the master of %s %s changed from %s to %s since the move started "
                     "(a failover or switchover?)", i ? "destination" : "source", names[i], was,
                     now) < 0)
            *errp = NULL;
        return -1;
    }
    return 0;
}

static int apply_edit(struct smap_builder *b, const struct smap *cur, void *ctx,
                      bool *unchanged, char **errp)
{
    const struct map_edit *e = ctx;
    bool same = true;
    if (e->same_masters && masters_unchanged(e->mv, cur, errp) < 0)
        return -1;
    for (uint32_t vb = 0; vb < smap_n_vbuckets(cur); vb++) {
        if (!e->set[vb])
            continue;
        if (smap_vbucket_state(cur, vb) != e->state)
            same = false;
        if (e->owner && strcmp(smap_shard(cur, smap_shard_of_vbucket(cur, vb))->name, e->owner))
            same = false;
    }
    if (same) {
        *unchanged = true;
        return 0;
    }
    /* a builder only assigns free vbuckets: rebuild the owner table */
    for (uint32_t vb = 0; vb < smap_n_vbuckets(cur); vb++) {
        if (!e->set[vb])
            continue;
        if (smap_builder_set_state(b, vb, vb, e->state, errp) < 0)
            return -1;
    }
    if (e->owner && smap_builder_reassign(b, e->set, e->owner, errp) < 0)
        return -1;
    return 0;
}

/* One compare-and-set of the map on the move's own ZooKeeper session (a
 * new session would add its connection time to the freeze); retried when
 * someone else changed the map meanwhile, and while ZooKeeper is
 * unreachable (zk_wait). With <same_masters>, refused when a master of the
 * source or destination changed (*<why> gets the reason, caller frees).
 * *<version> gets the version in force after it. Returns an exit code. */
static int map_edit(struct move *mv, const char *owner, enum smap_vb_state st, bool same_masters,
                    uint64_t *version, char **why)
{
    struct map_edit e = { mv, mv->set, owner, st, same_masters };
    enum zkstore_rc rc = ZKSTORE_CONFLICT;
    char *err = NULL;
    uint64_t since = mono_ms();

    for (int attempt = 0; attempt < 5 && rc == ZKSTORE_CONFLICT; attempt++) {
        struct smap *cur = NULL, *next = NULL;
        struct smap_builder *b = NULL;
        int32_t cas;
        bool unchanged = false;

        free(err);
        err = NULL;
        bool cached = attempt == 0 && mv->written;
        if (cached) {
            /* most likely still the map in force (the CAS says if not) */
            cur = smap_ref(mv->written);
            cas = mv->written_cas;
            rc = ZKSTORE_OK;
        } else {
            rc = zkstore_admin_load(mv->za, &cur, &cas, &err);
        }
        if (rc == ZKSTORE_OK && !(b = smap_builder_from(cur))) {
            rc = ZKSTORE_ERROR;
            err = strdup("out of memory");
        }
        if (rc == ZKSTORE_OK && apply_edit(b, cur, &e, &unchanged, &err) < 0)
            rc = cached ? ZKSTORE_CONFLICT : ZKSTORE_INVALID;
        if (rc == ZKSTORE_OK && unchanged && cached) {
            smap_builder_free(b);   /* "nothing to do" must come from ZooKeeper */
            smap_unref(cur);
            rc = ZKSTORE_CONFLICT;
            continue;
        }
        if (rc == ZKSTORE_OK && unchanged) {
            if (version)
                *version = smap_version(cur);
            smap_builder_free(b);
            smap_unref(cur);
            break;
        }
        if (rc == ZKSTORE_OK) {
            smap_builder_set_version(b, smap_version(cur) + 1);
            next = smap_builder_finish(b, &err);
            b = NULL;
            rc = next ? zkstore_admin_write(mv->za, cur, cas, next, &err) : ZKSTORE_INVALID;
        }
        if (rc == ZKSTORE_OK && version)
            *version = smap_version(next);
        smap_unref(mv->written);
        mv->written = NULL;
        if (rc == ZKSTORE_OK && !zkstore_admin_lost_in_write(mv->za)) {
            mv->written = smap_ref(next);
            mv->written_cas = cas + 1;
        }
        smap_builder_free(b);
        smap_unref(cur);
        smap_unref(next);
        /* zkstore_admin_write re-reads after a lost connection and tells */
        if (rc == ZKSTORE_UNREACHABLE && zk_wait(mv, &since, err)) {
            rc = ZKSTORE_CONFLICT;
            attempt--;
        }
    }
    if (rc != ZKSTORE_OK && why) {
        *why = err;
        err = NULL;
    } else if (rc != ZKSTORE_OK) {
        shardctl_err("move %s: map: %s", mv->id, err ? err : zkstore_rc_name(rc));
    }
    free(err);
    return shardctl_exit_of(rc);
}

/* ---- routers ------------------------------------------------------------ */

static bool acks_zk_wait(void *arg, uint64_t *since, const char *err)
{
    return zk_wait(arg, since, err);
}

/*
 * Waits until every router registered now, or at any moment of the wait,
 * acknowledged the freeze of map <version> (frozen_ack=V with V >= version
 * in its registration). A router whose registration is gone is waited for
 * until its lease (lease_ms=) has run out since <frozen_ms>, plus 500 ms:
 * cut off from ZooKeeper it may not have seen the freeze, and only then
 * does it send no more writes (docs/failover.md, the router lease). One
 * that is registered and does not acknowledge gets <wait_ms>. Returns 0, or
 * -1 with their ids in <late>.
 */
static int wait_acks(struct move *mv, uint64_t version, uint64_t frozen_ms, unsigned wait_ms,
                     char *late, size_t cap)
{
    struct zkstore_wait o = { .word = ZKSTORE_WAIT_FROZEN_ACK, .version = version,
                              .wait_ms = wait_ms, .lease_from_wall_ms = frozen_ms,
                              .poll_ms = 2, .unreachable = acks_zk_wait, .arg = mv };

    return zkstore_admin_wait_routers_for(&mv->za, &o, late, cap) == 0 ? 0 : -1;
}

/* ---- phases ----------------------------------------------------------------- */

/* True when the map names another master for the source or destination
 * than the move works with (*<why> says which; caller frees). */
static bool masters_moved(struct move *mv, char **why)
{
    struct smap *m = NULL;
    char *err = NULL;
    bool moved = false;
    if (!mv->src_addr[0] || zkstore_admin_load(mv->za, &m, NULL, &err) != ZKSTORE_OK) {
        free(err);
        return false;
    }
    free(err);
    moved = masters_unchanged(mv, m, why) < 0;
    smap_unref(m);
    return moved;
}

static int fail(struct move *mv, char *err, int ex)
{
    char *why = NULL;
    /* An error before the flip may be a failover's doing (the fence kills
     * the mover's connections to the old master): then the rows and binary
     * log position belong to a master that is no more, and only a new copy
     * from the new one will do (the rerun's, as after a refused flip). */
    if (mv->id[0] && (mv->j.phase == MOVE_COPY || mv->j.phase == MOVE_CATCHUP ||
                      mv->j.phase == MOVE_CUTOVER) &&
        !(err && strstr(err, "since the move started")) && masters_moved(mv, &why)) {
        char *both = NULL;
        if (asprintf(&both, "%s; %s", err ? err : "failed", why ? why : "") >= 0) {
            free(err);
            err = both;
        }
        free(why);
        mv->j.phase = MOVE_COPY;
        ex = SHARDCTL_FAILED;
    }
    shardctl_err("move %s: %s", mv->id[0] ? mv->id : "-", err ? err : "failed");
    if (mv->id[0] && (mv->j.phase == MOVE_COPY || mv->j.phase == MOVE_CATCHUP ||
                      mv->j.phase == MOVE_CUTOVER))
        shardctl_err("move %s stopped before its flip, at phase %s (source %s at %s, "
                     "destination %s at %s; the map and the source are as before): rerun the "
                     "same command to resume it, or `shardctl move --abort %s`", mv->id,
                     move_phase_name(mv->j.phase), mv->j.from, mv->src_addr[0] ? mv->src_addr
                     : "?", mv->j.to, mv->dst_addr[0] ? mv->dst_addr : "?", mv->id);
    journal_error(mv, err ? err : "failed");
    free(err);
    return ex;
}

static int set_binlog(struct move *mv, const struct mv_pos *at)
{
    snprintf(mv->j.binlog, sizeof(mv->j.binlog), "%s:%" PRIu64, at->file, at->pos);
    if (at->gtid[0])
        snprintf(mv->j.gtid, sizeof(mv->j.gtid), "%s", at->gtid);
    return 0;
}

static int get_binlog(const struct move *mv, struct mv_pos *at)
{
    const char *colon = strrchr(mv->j.binlog, ':');
    memset(at, 0, sizeof(*at));
    if (!colon || colon == mv->j.binlog)
        return -1;
    snprintf(at->file, sizeof(at->file), "%.*s", (int)(colon - mv->j.binlog), mv->j.binlog);
    at->pos = strtoull(colon + 1, NULL, 10);
    return 0;
}

/* The masters the copy reads and writes, as the journal records them. */
static void set_masters(struct move *mv)
{
    snprintf(mv->j.masters, sizeof(mv->j.masters), "%.120s,%.120s", mv->src_addr, mv->dst_addr);
}

static int phase_copy(struct move *mv)
{
    char *err = NULL;
    uint64_t rows = 0;
    struct mv_pos at;
    set_masters(mv);
    int ex = enter_phase(mv, MOVE_COPY);
    if (ex != SHARDCTL_OK)
        return ex;
    /* a copy that was cut off left rows behind: start clean */
    progress_start(mv, MV_STEP_DELETE, 0);
    if (mv_delete(&mv->mv, &mv->dst_ep, "destination", &rows, &err) < 0)
        return fail(mv, err, SHARDCTL_FAILED);
    if (rows)
        sayf(mv, "copy: removed %" PRIu64 " rows an earlier attempt left on %s", rows,
             mv->j.to);
    uint64_t t0 = mono_ms();
    progress_start(mv, MV_STEP_COPY, 0);
    if (mv_copy(&mv->mv, mv->src, mv->dst, &at, &rows, &err) < 0)
        return fail(mv, err, SHARDCTL_FAILED);
    show(mv, &mv->mv.count, true);
    uint64_t ms = mono_ms() - t0;
    sayf(mv, "copy: %" PRIu64 " rows in %.2f s (%.0f rows/s)", rows, ms / 1000.0,
         ms ? rows * 1000.0 / ms : 0.0);
    mv->j.rows = rows;
    set_binlog(mv, &at);
    return enter_phase(mv, MOVE_CATCHUP);
}

/* Catch-up rounds from the journal's position until one is short (under
 * <max_rows> rows and <max_ms>), recording the position after each. */
static int catchup_rounds(struct move *mv, const char *what, uint64_t max_rows, uint64_t max_ms)
{
    struct mv_pos at;
    char *err = NULL;
    if (get_binlog(mv, &at) < 0)
        return fail(mv, strdup("journal has no binlog position: rerun with --abort"),
                    SHARDCTL_FAILED);
    progress_start(mv, MV_STEP_CATCHUP, 0);
    measure_behind(mv, &at);
    show(mv, &mv->mv.count, true);   /* where it starts: how far behind */
    for (int round = 0; round < 1000; round++) {
        uint64_t changed = 0, t0 = mono_ms();
        if (mv_catchup(&mv->mv, &mv->src_ep, mv->src, mv->dst, &at, &changed, &err) < 0)
            return fail(mv, err, SHARDCTL_FAILED);
        set_binlog(mv, &at);
        int ex = journal_write(mv);
        if (ex != SHARDCTL_OK)
            return ex;
        uint64_t ms = mono_ms() - t0;
        char behind[32] = "?";
        measure_behind(mv, &at);
        if (mv->pg.behind >= 0)
            fmt_bytes((uint64_t)mv->pg.behind, behind, sizeof(behind));
        show(mv, &mv->mv.count, true);
        sayf(mv, "%s: round %d: %" PRIu64 " changed rows applied, at %s:%" PRIu64
             " (%" PRIu64 " ms; %s behind the source)", what, round + 1, changed, at.file,
             at.pos, ms, behind);
        pause_point(mv, "catchup");
        if (changed < max_rows && ms < max_ms)
            break;
    }
    return SHARDCTL_OK;
}

static int phase_catchup(struct move *mv)
{
    /* rounds until one is short: then the cutover's drain is short too */
    int ex = catchup_rounds(mv, "catchup", 200, 500);
    return ex != SHARDCTL_OK ? ex : enter_phase(mv, MOVE_CUTOVER);
}

/* Undoes a freeze after a failed cutover: the move goes back to <phase>
 * (catch-up; copy after a master changed) with <why> recorded, exit 5. */
static int cutover_failed(struct move *mv, enum move_phase phase, char *why)
{
    char *err = NULL;
    if (map_edit(mv, NULL, SMAP_VB_NORMAL, false, NULL, &err) != SHARDCTL_OK) {
        shardctl_err("move %s: could not unfreeze vbuckets %s (%s): run `shardctl move "
                     "--abort %s` or rerun the move", mv->id, mv->j.vbuckets,
                     err ? err : "?", mv->id);
        free(err);
    }
    mv->j.phase = phase;
    return fail(mv, why, SHARDCTL_FAILED);
}

/* The row check without the incremental one (a primary key column of a
 * type whose binary log text may differ from a SELECT's): every table on
 * both sides, while frozen. */
static int check_full(struct move *mv, char **why)
{
    char *err = NULL;
    for (unsigned i = 0; i < mv->mv.n_tables; i++) {
        struct mv_sum a, b;
        const struct mv_table *t = &mv->mv.tables[i];
        if (mv_checksum(&mv->mv, mv->src, t, &a, &err) < 0 ||
            mv_checksum(&mv->mv, mv->dst, t, &b, &err) < 0) {
            *why = err;
            return -1;
        }
        if (a.rows != b.rows || a.sum != b.sum) {
            if (asprintf(why, "check failed on table %s: source %" PRIu64 " rows (sum %016"
                         PRIx64 "), destination %" PRIu64 " rows (sum %016" PRIx64 "); "
                         "unfroze, nothing flipped", t->name, a.rows, a.sum, b.rows,
                         b.sum) < 0)
                *why = NULL;
            return -1;
        }
    }
    return 0;
}

/*
 * Cutover (docs/moves.md): what can be done before freezing is done before
 * it, so the frozen window holds only the routers' acknowledgements, the
 * drain of the last few changes, their check and the flip:
 *   1. the row check's full pass over both sides, then catch-up rounds that
 *      keep it current (nothing frozen);
 *   2. freeze (one compare-and-set), the routers acknowledge;
 *   3. drain the binary log to its end, check the rows changed since (the
 *      rest was checked in 1), flip with one compare-and-set that also
 *      verifies both masters are still the ones copied between.
 */
static int phase_cutover(struct move *mv)
{
    struct mv_pos at;
    struct mv_verify *verify = NULL;
    char *err = NULL, late[400];
    uint64_t version = 0, changed = 0, rows = 0;
    unsigned wait_ms = mv->o->router_wait_ms ? mv->o->router_wait_ms : 10000;
    int ex;

    if (get_binlog(mv, &at) < 0)
        return fail(mv, strdup("journal has no binlog position: rerun with --abort"),
                    SHARDCTL_FAILED);
    /* resumed after a mover died frozen: let the routers' statements go
     * while the row check reads (a no-op without a freeze) */
    if ((ex = map_edit(mv, NULL, SMAP_VB_NORMAL, false, NULL, NULL)) != SHARDCTL_OK)
        return ex;
    if (mv_verify_usable(&mv->mv)) {
        uint64_t t0 = mono_ms();
        if (mv_verify_scan(&mv->mv, mv->src, mv->dst, &verify, &err) < 0) {
            mv->j.phase = MOVE_CATCHUP;
            return fail(mv, err, SHARDCTL_FAILED);
        }
        mv->mv.verify = verify;
        sayf(mv, "cutover: row check: both sides read (%" PRIu64 " ms); catching up",
             mono_ms() - t0);
        if ((ex = catchup_rounds(mv, "cutover: catchup", 50, 150)) != SHARDCTL_OK)
            goto out;
        get_binlog(mv, &at);   /* catchup_rounds advanced it */
    }

    if (mv_catchup_prepare(&mv->mv, &mv->src_ep, &err) < 0) {
        mv->j.phase = MOVE_CATCHUP;
        ex = fail(mv, err, SHARDCTL_FAILED);
        goto out;
    }
    uint64_t t0 = mono_ms(), frozen_wall = wall_ms();
    ex = map_edit(mv, NULL, SMAP_VB_FROZEN, true, &version, &err);
    if (ex != SHARDCTL_OK) {
        bool moved_master = err && strstr(err, "since the move started");
        ex = cutover_failed(mv, moved_master ? MOVE_COPY : MOVE_CATCHUP,
                            err ? err : strdup("could not freeze the vbuckets in the map"));
        goto out;
    }
    uint64_t t_frozen = mono_ms();
    if (wait_acks(mv, version, frozen_wall, wait_ms, late, sizeof(late)) < 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "router(s) %s did not acknowledge the freeze within %u ms; "
                 "unfroze (rerun the move to retry)", late, wait_ms);
        ex = cutover_failed(mv, MOVE_CATCHUP, strdup(msg));
        goto out;
    }
    uint64_t t_acked = mono_ms();
    pause_point(mv, "frozen");
    /* writes to the frozen vbuckets are held: drain to the log's end as it
     * is now (later transactions cannot touch the moving vbuckets) */
    struct mv_pos end;
    int drained = mv_binlog_end(mv->src, &end, &err);
    for (int n = 0; n < 10000 && drained == 0 &&
                    (strcmp(at.file, end.file) < 0 ||
                     (strcmp(at.file, end.file) == 0 && at.pos < end.pos)); n++)
        drained = mv_catchup(&mv->mv, &mv->src_ep, mv->src, mv->dst, &at, &changed, &err);
    if (drained < 0) {
        ex = cutover_failed(mv, MOVE_CATCHUP, err);
        goto out;
    }
    set_binlog(mv, &at);
    uint64_t t_drained = mono_ms();
    char msg[400];
    if (verify ? mv_verify_result(&mv->mv, verify, &rows, msg, sizeof(msg)) < 0
               : check_full(mv, &err) < 0) {
        if (verify) {
            err = NULL;
            if (asprintf(&err, "check failed: %s; unfroze, nothing flipped", msg) < 0)
                err = NULL;
        }
        ex = cutover_failed(mv, MOVE_CATCHUP, err);
        goto out;
    }
    uint64_t t_checked = mono_ms();
    ex = map_edit(mv, mv->j.to, SMAP_VB_NORMAL, true, &version, &err);
    if (ex != SHARDCTL_OK) {
        bool moved_master = err && strstr(err, "since the move started");
        ex = cutover_failed(mv, moved_master ? MOVE_COPY : MOVE_CATCHUP,
                            err ? err : strdup("could not flip the map"));
        goto out;
    }
    uint64_t t1 = mono_ms();
    if (rows)
        mv->j.rows = rows;   /* from here on: the rows moved (cleanup's ETA) */
    sayf(mv, "cutover: %" PRIu64 " rows equal on both sides; map version %" PRIu64 " names %s "
         "for vbuckets %s (frozen %" PRIu64 " ms: freeze %" PRIu64 ", routers %" PRIu64
         ", drain %" PRIu64 " (%" PRIu64 " rows), check %" PRIu64 ", flip %" PRIu64 ")",
         rows, version, mv->j.to, mv->j.vbuckets, t1 - t0, t_frozen - t0, t_acked - t_frozen,
         t_drained - t_acked, changed, t_checked - t_drained, t1 - t_checked);
    pause_point(mv, "flipped");
    ex = enter_phase(mv, MOVE_CLEANUP);
out:
    mv_catchup_unprepare(&mv->mv);
    mv->mv.verify = NULL;
    mv_verify_free(verify);
    return ex;
}

/* After the flip the map's master of the source is the one to delete on,
 * whoever it was when the move started (a failover or switchover since
 * then: the old master is a standby now, or gone). Returns an exit code. */
static int source_now(struct move *mv)
{
    struct smap *m = NULL;
    char *err = NULL;
    enum zkstore_rc rc = ZKSTORE_UNREACHABLE;
    uint64_t since = mono_ms();
    while ((rc = zkstore_admin_load(mv->za, &m, NULL, &err)) == ZKSTORE_UNREACHABLE &&
           zk_wait(mv, &since, err)) {
        free(err);
        err = NULL;
    }
    if (rc != ZKSTORE_OK)
        return fail(mv, err ? err : strdup(zkstore_rc_name(rc)), shardctl_exit_of(rc));
    free(err);
    int k = smap_find_shard(m, mv->j.from);
    if (k >= 0 && !smap_endpoint_eq(&smap_shard(m, (unsigned)k)->master, &mv->src_ep)) {
        char now[SMAP_ENDPOINT_STR_MAX];
        smap_format_endpoint(&smap_shard(m, (unsigned)k)->master, now, sizeof(now));
        sayf(mv, "cleanup: the master of %s is %s now (was %s): deleting there", mv->j.from,
             now, mv->src_addr);
        mv->src_ep = smap_shard(m, (unsigned)k)->master;
        snprintf(mv->src_addr, sizeof(mv->src_addr), "%s", now);
    }
    smap_unref(m);
    if (k < 0)
        return fail(mv, strdup("the source shard is no longer in the map"), SHARDCTL_INVALID);
    return SHARDCTL_OK;
}

static int phase_cleanup(struct move *mv)
{
    char *err = NULL;
    uint64_t rows = 0;
    int ex;
    pause_point(mv, "cleanup");
    if ((ex = source_now(mv)) != SHARDCTL_OK)
        return ex;
    uint64_t t0 = mono_ms();
    progress_start(mv, MV_STEP_DELETE, mv->j.rows);
    if (mv_delete(&mv->mv, &mv->src_ep, "source", &rows, &err) < 0)
        return fail(mv, err, SHARDCTL_FAILED);
    show(mv, &mv->mv.count, true);
    uint64_t ms = mono_ms() - t0;
    sayf(mv, "cleanup: %" PRIu64 " moved rows deleted from %s in %.2f s (%.0f rows/s)", rows,
         mv->j.from, ms / 1000.0, ms ? rows * 1000.0 / ms : 0.0);
    return enter_phase(mv, MOVE_DONE);
}

/* ---- set-up ------------------------------------------------------------------- */

static int load_journal(struct move *mv, const char *id)
{
    char *text = NULL, *err = NULL;
    enum zkstore_rc rc = zkstore_admin_node_get(mv->za, MOVES_DIR, id, &text, &mv->zver, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        return shardctl_exit_of(rc);
    }
    if (!text) {
        shardctl_err("no move '%s' (see shardctl moves)", id);
        return SHARDCTL_INVALID;
    }
    int bad = move_journal_parse(text, strlen(text), &mv->j, &err);
    free(text);
    if (bad < 0) {
        shardctl_err("move %s: %s", id, err);
        free(err);
        return SHARDCTL_INVALID;
    }
    snprintf(mv->id, sizeof(mv->id), "%s", id);
    return SHARDCTL_OK;
}

/* Finds an unfinished move of exactly <vbuckets> to <to> (*<found> = its id),
 * or reports one that overlaps <set>. Returns an exit code. */
static int check_others(struct move *mv, const char *to, char *found, size_t cap)
{
    char **names = NULL, *err = NULL;
    unsigned n = 0;
    int ex = SHARDCTL_OK;
    enum zkstore_rc rc = zkstore_admin_node_list(mv->za, MOVES_DIR, &names, &n, &err);
    found[0] = '\0';
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        return shardctl_exit_of(rc);
    }
    uint8_t *other = malloc(mv->n_vbuckets);
    for (unsigned i = 0; other && i < n && ex == SHARDCTL_OK; i++) {
        char *text = NULL;
        int32_t ver;
        struct move_journal j;
        if (zkstore_admin_node_get(mv->za, MOVES_DIR, names[i], &text, &ver, &err) !=
                ZKSTORE_OK || !text ||
            move_journal_parse(text, strlen(text), &j, &err) < 0 ||
            !move_phase_active(j.phase) ||
            move_parse_vbuckets(j.vbuckets, other, mv->n_vbuckets, &err) < 0) {
            free(text);
            free(err);
            err = NULL;
            continue;
        }
        free(text);
        if (strcmp(j.vbuckets, mv->j.vbuckets) == 0 && strcmp(j.to, to) == 0) {
            snprintf(found, cap, "%s", names[i]);
            continue;
        }
        for (uint32_t vb = 0; vb < mv->n_vbuckets; vb++) {
            if (other[vb] && mv->set[vb]) {
                shardctl_err("vbucket %" PRIu32 " is already moving (move %s, %s to %s, phase "
                             "%s); nothing was changed", vb, names[i], j.from, j.to,
                             move_phase_name(j.phase));
                ex = SHARDCTL_INVALID;
                break;
            }
        }
    }
    free(other);
    zkstore_names_free(names, n);
    return ex;
}

/*
 * Two shardctl processes may pass check_others() for overlapping vbuckets
 * before either journal exists. Journals are numbered in creation order, so
 * after creating its own a move yields to any unfinished overlapping one
 * numbered lower: it marks its journal aborted before touching the map or
 * a row, and refuses. The lower one never yields to it, so exactly one
 * goes on. Returns an exit code.
 */
static int check_started_first(struct move *mv)
{
    struct shardctl_active_move *act = NULL;
    unsigned n = 0;
    char *err = NULL;
    uint8_t *other = malloc(mv->n_vbuckets);
    int ex = other ? shardctl_active_moves(mv->za, &act, &n) : SHARDCTL_FAILED;

    for (unsigned i = 0; i < n && ex == SHARDCTL_OK; i++) {
        /* same width and prefix: the name orders as the number */
        if (strcmp(act[i].id, mv->id) >= 0 || strlen(act[i].id) != strlen(mv->id) ||
            move_parse_vbuckets(act[i].j.vbuckets, other, mv->n_vbuckets, &err) < 0) {
            free(err);
            err = NULL;
            continue;
        }
        for (uint32_t vb = 0; vb < mv->n_vbuckets; vb++) {
            if (!other[vb] || !mv->set[vb])
                continue;
            char msg[MOVE_FIELD_MAX];
            snprintf(msg, sizeof(msg), "refused: vbucket %" PRIu32 " is moving in %s, started "
                     "first", vb, act[i].id);
            mv->j.phase = MOVE_ABORTED;
            journal_error(mv, msg);
            shardctl_err("vbucket %" PRIu32 " is already moving (move %s, %s to %s, started "
                         "just before this one); nothing was changed", vb, act[i].id,
                         act[i].j.from, act[i].j.to);
            ex = SHARDCTL_INVALID;
            break;
        }
    }
    free(other);
    free(act);
    return ex;
}

/* Checks the request against the map (<from> gets the owner). Returns an
 * exit code after printing the problem. */
static int check_request(struct move *mv, const struct smap *m, const char *to)
{
    int from = -1;
    if (smap_find_shard(m, to) < 0) {
        shardctl_err("unknown shard '%s' (--to); nothing was changed", to);
        return SHARDCTL_INVALID;
    }
    for (uint32_t vb = 0; vb < mv->n_vbuckets; vb++) {
        if (!mv->set[vb])
            continue;
        int owner = (int)smap_shard_of_vbucket(m, vb);
        if (from < 0)
            from = owner;
        if (owner != from) {
            shardctl_err("vbuckets %s belong to more than one shard (%s and %s): move each "
                         "shard's vbuckets with its own command", mv->j.vbuckets,
                         smap_shard(m, (unsigned)from)->name, smap_shard(m, (unsigned)owner)->name);
            return SHARDCTL_INVALID;
        }
    }
    if (strcmp(smap_shard(m, (unsigned)from)->name, to) == 0) {
        shardctl_err("vbuckets %s already belong to shard '%s'; nothing to move",
                     mv->j.vbuckets, to);
        return SHARDCTL_INVALID;
    }
    snprintf(mv->j.from, sizeof(mv->j.from), "%s", smap_shard(m, (unsigned)from)->name);
    snprintf(mv->j.to, sizeof(mv->j.to), "%s", to);
    snprintf(mv->j.database, sizeof(mv->j.database), "%s", mv->o->database);
    return SHARDCTL_OK;
}

/* Connects to both masters and finds the tables (nothing is written).
 * <dst_only> (abort): only the destination, whose tables then say what
 * to remove, so an abort works with the source master down. */
static int open_data(struct move *mv, const struct smap *m, bool dst_only)
{
    const struct shardctl_opts *o = mv->o;
    const struct smap_key *k = smap_key_config(m);
    char *err = NULL;
    int si = smap_find_shard(m, mv->j.from), di = smap_find_shard(m, mv->j.to);

    if (si < 0 || di < 0) {
        shardctl_err("move %s: shard %s is no longer in the map", mv->id,
                     si < 0 ? mv->j.from : mv->j.to);
        return SHARDCTL_INVALID;
    }
    mv->src_ep = smap_shard(m, (unsigned)si)->master;
    mv->dst_ep = smap_shard(m, (unsigned)di)->master;
    smap_format_endpoint(&mv->src_ep, mv->src_addr, sizeof(mv->src_addr));
    smap_format_endpoint(&mv->dst_ep, mv->dst_addr, sizeof(mv->dst_addr));
    mv->mv.user = o->control_user ? o->control_user : getenv("SHARDWIRE_CONTROL_USER");
    mv->mv.password = o->control_password ? o->control_password
                                          : getenv("SHARDWIRE_CONTROL_PASSWORD");
    if (!mv->mv.user || !mv->mv.password) {
        shardctl_err("move needs the control account: $SHARDWIRE_CONTROL_USER and "
                     "$SHARDWIRE_CONTROL_PASSWORD (or --control-user and "
                     "--control-password-file)");
        return SHARDCTL_USAGE;
    }
    mv->mv.db = mv->j.database;
    for (unsigned i = 0; i < k->n_key_columns; i++)
        mv->key_cols[i] = k->key_columns[i];
    mv->mv.key_columns = mv->key_cols;
    mv->mv.n_key_columns = k->n_key_columns;
    mv->mv.moving = mv->set;
    mv->mv.n_vbuckets = mv->n_vbuckets;
    mv->mv.rate = o->rate;
    mv->mv.chunk_rows = 500;
    mv->mv.progress = progress;
    mv->mv.progress_arg = mv;
    mv->mv.on_count = show_count;
    char what[400];
    snprintf(what, sizeof(what), "source %s master", mv->j.from);
    if (!dst_only && !(mv->src = mv_connect(&mv->mv, &mv->src_ep, what, &err)))
        goto bad;
    snprintf(what, sizeof(what), "destination %s master", mv->j.to);
    if (!(mv->dst = mv_connect(&mv->mv, &mv->dst_ep, what, &err)))
        goto bad;
    snprintf(what, sizeof(what), "destination %s master %s", mv->j.to, mv->dst_addr);
    if (mv_check_writable(mv->dst, what, &err) < 0) {
        shardctl_err("%s%s", err, mv->id[0] ? "" : "; nothing was changed");
        free(err);
        return SHARDCTL_INVALID;
    }
    snprintf(what, sizeof(what), "%s (%s)", mv->j.to, mv->dst_addr);
    if (mv_discover(&mv->mv, dst_only ? mv->dst : mv->src, mv->dst, what, &err) < 0) {
        shardctl_err("%s", err);
        free(err);
        return SHARDCTL_INVALID;
    }
    return SHARDCTL_OK;
bad:
    shardctl_err("%s", err);
    free(err);
    return SHARDCTL_FAILED;
}

static void move_fini(struct move *mv)
{
    smap_unref(mv->written);
    mv_tables_free(&mv->mv);
    if (mv->src)
        mysql_close(mv->src);
    if (mv->dst)
        mysql_close(mv->dst);
    free(mv->set);
    zkstore_admin_free(mv->za);
}

/* Loads the map and sets mv->set from the journal's vbucket list. */
static int load_map(struct move *mv, struct smap **m)
{
    char *err = NULL;
    enum zkstore_rc rc = zkstore_admin_load(mv->za, m, NULL, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        return shardctl_exit_of(rc);
    }
    mv->n_vbuckets = smap_n_vbuckets(*m);
    mv->set = calloc(mv->n_vbuckets, 1);
    if (!mv->set) {
        shardctl_err("out of memory");
        return SHARDCTL_FAILED;
    }
    return SHARDCTL_OK;
}

/* True when the map names <to> as owner of every vbucket in <set>. */
static bool flipped(const struct smap *m, const uint8_t *set, const char *to)
{
    for (uint32_t vb = 0; vb < smap_n_vbuckets(m); vb++)
        if (set[vb] && strcmp(smap_shard(m, smap_shard_of_vbucket(m, vb))->name, to) != 0)
            return false;
    return true;
}

static int run_phases(struct move *mv, const struct smap *m)
{
    int ex = SHARDCTL_OK;
    /* the map says whether the flip happened, whatever the journal says */
    if (mv->j.phase == MOVE_CUTOVER && flipped(m, mv->set, mv->j.to)) {
        sayf(mv, "resuming: the map already names %s; cleanup remains", mv->j.to);
        if ((ex = enter_phase(mv, MOVE_CLEANUP)) != SHARDCTL_OK)
            return ex;
    }
    while (ex == SHARDCTL_OK && mv->j.phase != MOVE_DONE) {
        switch (mv->j.phase) {
        case MOVE_COPY:     ex = phase_copy(mv); break;
        case MOVE_CATCHUP:  ex = phase_catchup(mv); break;
        case MOVE_CUTOVER:  ex = phase_cutover(mv); break;
        case MOVE_CLEANUP:  ex = phase_cleanup(mv); break;
        default:
            shardctl_err("move %s is %s; nothing to do", mv->id, move_phase_name(mv->j.phase));
            return SHARDCTL_INVALID;
        }
    }
    if (ex == SHARDCTL_OK)
        sayf(mv, "done: vbuckets %s moved from %s to %s", mv->j.vbuckets, mv->j.from, mv->j.to);
    return ex;
}

static int do_abort(struct move *mv, const char *id)
{
    struct smap *m = NULL;
    char *err = NULL;
    uint64_t rows = 0;
    int ex = load_journal(mv, id);
    if (ex == SHARDCTL_OK)
        ex = load_map(mv, &m);
    if (ex != SHARDCTL_OK)
        goto out;
    if (move_parse_vbuckets(mv->j.vbuckets, mv->set, mv->n_vbuckets, &err) < 0) {
        shardctl_err("move %s: %s", id, err);
        free(err);
        ex = SHARDCTL_INVALID;
        goto out;
    }
    if (mv->j.phase == MOVE_ABORTED) {
        sayf(mv, "already aborted");
        goto out;
    }
    if (mv->j.phase == MOVE_DONE || mv->j.phase == MOVE_CLEANUP ||
        flipped(m, mv->set, mv->j.to)) {
        shardctl_err("move %s: the map already names %s for vbuckets %s: too late to abort "
                     "(rerun the move to finish its cleanup)", id, mv->j.to, mv->j.vbuckets);
        ex = SHARDCTL_INVALID;
        goto out;
    }
    if ((ex = enter_phase(mv, MOVE_ABORTING)) != SHARDCTL_OK)
        goto out;
    if ((ex = map_edit(mv, NULL, SMAP_VB_NORMAL, false, NULL, NULL)) != SHARDCTL_OK)
        goto out;
    if ((ex = open_data(mv, m, true)) != SHARDCTL_OK)
        goto out;
    progress_start(mv, MV_STEP_DELETE, mv->j.rows);
    if (mv_delete(&mv->mv, &mv->dst_ep, "destination", &rows, &err) < 0) {
        ex = fail(mv, err, SHARDCTL_FAILED);
        goto out;
    }
    sayf(mv, "aborted: %" PRIu64 " copied rows removed from %s; the map and %s are as before",
         rows, mv->j.to, mv->j.from);
    ex = enter_phase(mv, MOVE_ABORTED);
out:
    smap_unref(m);
    return ex;
}

int shardctl_move(const struct shardctl_opts *o)
{
    struct move mv;
    struct smap *m = NULL;
    char *err = NULL, existing[64];
    int ex;

    memset(&mv, 0, sizeof(mv));
    mv.o = o;
    mv.zver = -1;
    if (o->abort_id ? o->argc != 0 : (o->argc != 1 || !o->to)) {
        shardctl_err("usage: move VBUCKETS --to SHARD --database DB [--rate ROWS/S] | "
                     "move --abort ID");
        return SHARDCTL_USAGE;
    }
    if ((ex = shardctl_connect(o, &mv.za)) != SHARDCTL_OK)
        return ex;
    if (o->abort_id) {
        ex = do_abort(&mv, o->abort_id);
        move_fini(&mv);
        return ex;
    }
    if (!o->database) {
        shardctl_err("move needs --database DB (the app database on the shards)");
        ex = SHARDCTL_USAGE;
        goto out;
    }
    if (strlen(o->database) > 64 || strspn(o->database, "abcdefghijklmnopqrstuvwxyz"
                                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$") !=
                                           strlen(o->database)) {
        shardctl_err("--database '%s': expected a name of [A-Za-z0-9_$], up to 64 bytes",
                     o->database);
        ex = SHARDCTL_USAGE;
        goto out;
    }
    if ((ex = load_map(&mv, &m)) != SHARDCTL_OK)
        goto out;
    long n = move_parse_vbuckets(o->argv[0], mv.set, mv.n_vbuckets, &err);
    if (n < 0) {
        shardctl_err("%s", err);
        free(err);
        ex = SHARDCTL_USAGE;
        goto out;
    }
    move_format_vbuckets(mv.set, mv.n_vbuckets, mv.j.vbuckets, sizeof(mv.j.vbuckets));
    if ((ex = check_others(&mv, o->to, existing, sizeof(existing))) != SHARDCTL_OK)
        goto out;
    if (existing[0]) {
        if ((ex = load_journal(&mv, existing)) != SHARDCTL_OK)
            goto out;
        if (strcmp(mv.j.database, o->database) != 0) {
            shardctl_err("move %s moves database %s, not %s", mv.id, mv.j.database,
                         o->database);
            ex = SHARDCTL_INVALID;
            goto out;
        }
        sayf(&mv, "resuming at phase %s (vbuckets %s, %s to %s)", move_phase_name(mv.j.phase),
             mv.j.vbuckets, mv.j.from, mv.j.to);
        if (!flipped(m, mv.set, mv.j.to)) {
            for (uint32_t vb = 0; vb < mv.n_vbuckets; vb++) {
                if (mv.set[vb] && strcmp(smap_shard(m, smap_shard_of_vbucket(m, vb))->name,
                                         mv.j.from) != 0) {
                    shardctl_err("move %s: vbucket %" PRIu32 " no longer belongs to %s: abort "
                                 "it", mv.id, vb, mv.j.from);
                    ex = SHARDCTL_INVALID;
                    goto out;
                }
            }
        }
    } else {
        for (uint32_t vb = 0; vb < mv.n_vbuckets; vb++) {
            if (mv.set[vb] && smap_vbucket_state(m, vb) != SMAP_VB_NORMAL) {
                shardctl_err("vbucket %" PRIu32 " is frozen by another move; nothing was "
                             "changed", vb);
                ex = SHARDCTL_INVALID;
                goto out;
            }
        }
        if ((ex = check_request(&mv, m, o->to)) != SHARDCTL_OK)
            goto out;
    }
    if ((ex = open_data(&mv, m, false)) != SHARDCTL_OK)
        goto out;
    /* a failover or switchover of either shard since the copy: its rows
     * and binary log position belong to the old master; copy again */
    if (existing[0] && mv.j.masters[0] && !flipped(m, mv.set, mv.j.to) &&
        (mv.j.phase == MOVE_CATCHUP || mv.j.phase == MOVE_CUTOVER)) {
        char now[sizeof(mv.j.masters)];
        snprintf(now, sizeof(now), "%.120s,%.120s", mv.src_addr, mv.dst_addr);
        if (strcmp(now, mv.j.masters) != 0) {
            sayf(&mv, "the masters changed since the copy (%s, now %s): copying again",
                 mv.j.masters, now);
            if ((ex = map_edit(&mv, NULL, SMAP_VB_NORMAL, false, NULL, NULL)) != SHARDCTL_OK)
                goto out;
            mv.j.phase = MOVE_COPY;
        }
    }
    if (!existing[0]) {
        mv.j.phase = MOVE_COPY;
        mv.j.started_ms = wall_ms();
        shardctl_test_pause();
        if ((ex = journal_write(&mv)) != SHARDCTL_OK)
            goto out;
        if ((ex = check_started_first(&mv)) != SHARDCTL_OK)
            goto out;
        sayf(&mv, "moving vbuckets %s (%ld) from %s (%s) to %s (%s): %u tables",
             mv.j.vbuckets, n, mv.j.from, mv.src_addr, mv.j.to, mv.dst_addr, mv.mv.n_tables);
    }
    ex = run_phases(&mv, m);
out:
    smap_unref(m);
    move_fini(&mv);
    return ex;
}

int shardctl_moves(const struct shardctl_opts *o)
{
    struct zkstore_admin *za = NULL;
    char **names = NULL, *err = NULL;
    unsigned n = 0;
    json_t *arr = o->json ? json_array() : NULL;
    int ex;

    if (o->argc != 0) {
        shardctl_err("moves takes no operands");
        return SHARDCTL_USAGE;
    }
    if ((ex = shardctl_connect(o, &za)) != SHARDCTL_OK)
        return ex;
    enum zkstore_rc rc = zkstore_admin_node_list(za, MOVES_DIR, &names, &n, &err);
    if (rc != ZKSTORE_OK) {
        shardctl_err("%s", err ? err : zkstore_rc_name(rc));
        free(err);
        zkstore_admin_free(za);
        json_decref(arr);
        return shardctl_exit_of(rc);
    }
    if (!o->json)
        shardctl_plan_summary(o, za, NULL);
    if (!o->json)
        printf(n ? "%-13s  %-8s  %-8s  %-8s  %-16s  %10s  %s\n" : "no moves\n", "MOVE", "PHASE",
               "FROM", "TO", "VBUCKETS", "ROWS", "BINLOG / ERROR");
    for (unsigned i = 0; i < n; i++) {
        char *text = NULL;
        int32_t ver;
        struct move_journal j;
        if (zkstore_admin_node_get(za, MOVES_DIR, names[i], &text, &ver, &err) != ZKSTORE_OK ||
            !text || move_journal_parse(text, strlen(text), &j, &err) < 0) {
            if (!o->json)
                printf("%-13s  (unreadable: %s)\n", names[i], err ? err : "gone");
            free(err);
            err = NULL;
            free(text);
            continue;
        }
        free(text);
        if (o->json) {
            json_array_append_new(arr, json_pack(
                "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}", "id", names[i],
                "phase", move_phase_name(j.phase), "from", j.from, "to", j.to, "vbuckets",
                j.vbuckets, "rows", (json_int_t)j.rows, "started_ms", (json_int_t)j.started_ms,
                "updated_ms", (json_int_t)j.updated_ms, "binlog", j.binlog, "gtid", j.gtid,
                "error", j.error));
        } else {
            printf("%-13s  %-8s  %-8s  %-8s  %-16s  %10" PRIu64 "  %s%s%s\n", names[i],
                   move_phase_name(j.phase), j.from, j.to, j.vbuckets, j.rows, j.binlog,
                   j.error[0] ? " error: " : "", j.error);
        }
    }
    if (o->json) {
        json_t *top = json_pack("{s:o}", "moves", arr);
        shardctl_plan_summary(o, za, top);
        char *s = top ? json_dumps(top, JSON_COMPACT) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(top);
    }
    zkstore_names_free(names, n);
    zkstore_admin_free(za);
    return SHARDCTL_OK;
}
