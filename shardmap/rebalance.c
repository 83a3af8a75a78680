/*
 * shardmap/rebalance.c - planning rebalances and shard removals, and the
 * plan's text (rebalance.h). Pure; unit-tested (tests/unit/test_rebalance.c).
 *
 * The planner is greedy: the heaviest shard gives to the lightest until no
 * whole vbucket brings them closer to the mean. With equal weights that is
 * optimal in moves: every surplus shard gives only to deficit shards, each
 * pair of shards is one move, and the counts end within one of each other.
 */
#include "shardmap/rebalance.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardmap/errmsg.h"

void rebalance_weights(const double *load, uint32_t n, double *out)
{
    double total = 0;
    for (uint32_t v = 0; v < n; v++)
        total += load[v] > 0 ? load[v] : 0;
    for (uint32_t v = 0; v < n; v++)
        out[v] = 1.0 + (total > 0 && load[v] > 0 ? (double)n * load[v] / total : 0.0);
}

/* A pair of shards and the vbuckets planned from one to the other. */
struct pair {
    unsigned from, to;
    uint8_t *set;        /* [n_vbuckets] */
};

struct planner {
    const struct rebalance_input *in;
    uint32_t      n_vb;
    unsigned      n_shards;
    uint16_t     *owner;      /* [n_vb]: the owner once the planned moves are made */
    uint8_t      *fixed;      /* [n_vb]: busy, or already planned to move */
    double       *load;       /* [n_shards] */
    bool         *eligible;   /* [n_shards]: may receive */
    struct pair  *pairs;
    unsigned      n_pairs;
};

static double weight_of(const struct planner *pl, uint32_t v)
{
    return pl->in->weight ? pl->in->weight[v] : 1.0;
}

static struct pair *pair_of(struct planner *pl, unsigned from, unsigned to)
{
    for (unsigned i = 0; i < pl->n_pairs; i++)
        if (pl->pairs[i].from == from && pl->pairs[i].to == to)
            return &pl->pairs[i];
    struct pair *np = realloc(pl->pairs, (pl->n_pairs + 1) * sizeof(*np));
    if (!np)
        return NULL;
    pl->pairs = np;
    np = &pl->pairs[pl->n_pairs];
    np->from = from;
    np->to = to;
    np->set = calloc(pl->n_vb, 1);
    if (!np->set)
        return NULL;
    pl->n_pairs++;
    return np;
}

/*
 * Moves vbuckets of <d> to <r>, from the end of <d>'s range, worth about
 * <amount>: a vbucket is taken while it brings the moved weight strictly
 * nearer to <amount>. When none is, one vbucket still goes if it narrows
 * the gap between the two (lighter than their difference: 6,6,6,4 becomes
 * 6,6,5,5), and always one when <at_least_one>. Returns how many, or -1
 * when out of memory.
 */
static long give(struct planner *pl, unsigned d, unsigned r, double amount, bool at_least_one)
{
    struct pair *p = NULL;
    double taken = 0, gap = pl->load[d] - pl->load[r];
    long n = 0;
    for (uint32_t i = pl->n_vb; i-- > 0;) {
        if (pl->owner[i] != d || pl->fixed[i])
            continue;
        double w = weight_of(pl, i);
        bool nearer = taken + w / 2 < amount;
        if (!nearer && !(n == 0 && (at_least_one || w < gap))) {
            if (pl->in->weight)
                continue;       /* a lighter one further on may still do */
            break;
        }
        if (!p && !(p = pair_of(pl, d, r)))
            return -1;
        p->set[i] = 1;
        pl->owner[i] = (uint16_t)r;
        pl->fixed[i] = 1;
        pl->load[d] -= w;
        pl->load[r] += w;
        taken += w;
        n++;
    }
    return n;
}

static bool movable_left(const struct planner *pl, unsigned s)
{
    for (uint32_t v = 0; v < pl->n_vb; v++)
        if (pl->owner[v] == s && !pl->fixed[v])
            return true;
    return false;
}

/* The plan's moves from the pairs: one per pair, split where the list would
 * not fit a journal. Returns 0, or -1 with *<errp>. */
static int emit(struct planner *pl, const struct smap *m, struct rebalance_plan *p, char **errp)
{
    uint8_t *part = malloc(pl->n_vb);
    int rc = -1;
    if (!part) {
        errmsg_set(errp, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < pl->n_pairs; i++) {
        const struct pair *pr = &pl->pairs[i];
        uint32_t v = 0;
        while (v < pl->n_vb) {
            /* grow <part> run by run while its list still fits */
            uint32_t count = 0;
            memset(part, 0, pl->n_vb);
            while (v < pl->n_vb) {
                if (!pr->set[v]) {
                    v++;
                    continue;
                }
                uint32_t end = v;
                while (end + 1 < pl->n_vb && pr->set[end + 1])
                    end++;
                for (uint32_t k = v; k <= end; k++)
                    part[k] = 1;
                char probe[sizeof(p->moves[0].vbuckets)];
                if (count && move_format_vbuckets(part, pl->n_vb, probe, sizeof(probe)) < 0) {
                    for (uint32_t k = v; k <= end; k++)
                        part[k] = 0;
                    break;
                }
                count += end - v + 1;
                v = end + 1;
            }
            if (!count)
                break;
            if (p->n_moves == REBALANCE_MAX_MOVES) {
                errmsg_set(errp, "more than %d moves: the map is too fragmented to plan at "
                           "once (move some vbuckets by hand first)", REBALANCE_MAX_MOVES);
                goto out;
            }
            struct rebalance_move *mv = &p->moves[p->n_moves++];
            snprintf(mv->from, sizeof(mv->from), "%s", smap_shard(m, pr->from)->name);
            snprintf(mv->to, sizeof(mv->to), "%s", smap_shard(m, pr->to)->name);
            mv->n_vbuckets = count;
            if (move_format_vbuckets(part, pl->n_vb, mv->vbuckets, sizeof(mv->vbuckets)) < 0) {
                errmsg_set(errp, "a single vbucket range does not fit a move");
                goto out;
            }
        }
    }
    rc = 0;
out:
    free(part);
    return rc;
}

int rebalance_plan_make(const struct rebalance_input *in, struct rebalance_plan *p,
                        char **errp)
{
    const struct smap *m = in->m;
    struct planner pl = { .in = in, .n_vb = smap_n_vbuckets(m), .n_shards = smap_n_shards(m) };
    int removed = -1, rc = -1;
    unsigned n_eligible = 0;
    double total = 0;

    p->kind = in->kind;
    p->shard[0] = '\0';
    p->n_moves = 0;
    p->done = false;
    if (in->kind == REBALANCE_REMOVE) {
        removed = smap_find_shard(m, in->remove);
        if (removed < 0) {
            errmsg_set(errp, "unknown shard '%s'", in->remove);
            return -1;
        }
        if (pl.n_shards == 1) {
            errmsg_set(errp, "shard '%s' is the last shard: nothing could take its vbuckets",
                       in->remove);
            return -1;
        }
        snprintf(p->shard, sizeof(p->shard), "%s", in->remove);
    }
    pl.owner = malloc(pl.n_vb * sizeof(*pl.owner));
    pl.fixed = calloc(pl.n_vb, 1);
    pl.load = calloc(pl.n_shards, sizeof(*pl.load));
    pl.eligible = calloc(pl.n_shards, sizeof(*pl.eligible));
    if (!pl.owner || !pl.fixed || !pl.load || !pl.eligible) {
        errmsg_set(errp, "out of memory");
        goto out;
    }
    for (unsigned s = 0; s < pl.n_shards; s++) {
        pl.eligible[s] = (int)s != removed;
        n_eligible += pl.eligible[s];
    }
    for (uint32_t v = 0; v < pl.n_vb; v++) {
        pl.owner[v] = (uint16_t)smap_shard_of_vbucket(m, v);
        pl.fixed[v] = in->busy ? in->busy[v] : 0;
        pl.load[pl.owner[v]] += weight_of(&pl, v);
        total += weight_of(&pl, v);
    }
    double mean = total / n_eligible;
    /* each round moves at least one vbucket or ends the loop */
    for (uint32_t round = 0; round <= pl.n_vb; round++) {
        int d = -1, r = -1;
        for (unsigned s = 0; s < pl.n_shards; s++) {
            if (pl.eligible[s] && (r < 0 || pl.load[s] < pl.load[r]))
                r = (int)s;
            if (removed >= 0 || !movable_left(&pl, s))
                continue;
            if (d < 0 || pl.load[s] > pl.load[d])
                d = (int)s;
        }
        if (removed >= 0)
            d = movable_left(&pl, (unsigned)removed) ? removed : -1;
        if (d < 0 || r < 0 || d == r)
            break;
        double amount = mean - pl.load[r];
        if (removed < 0 && pl.load[d] - mean < amount)
            amount = pl.load[d] - mean;
        long n = give(&pl, (unsigned)d, (unsigned)r, amount, removed >= 0);
        if (n < 0) {
            errmsg_set(errp, "out of memory");
            goto out;
        }
        if (n == 0)
            break;
    }
    for (uint32_t v = 0; removed >= 0 && v < pl.n_vb; v++) {
        if (pl.owner[v] == (uint16_t)removed) {
            errmsg_set(errp, "vbucket %" PRIu32 " of shard '%s' is held by an unfinished move",
                       v, in->remove);
            goto out;
        }
    }
    rc = emit(&pl, m, p, errp) < 0 ? -1 : (int)p->n_moves;
out:
    for (unsigned i = 0; i < pl.n_pairs; i++)
        free(pl.pairs[i].set);
    free(pl.pairs);
    free(pl.owner);
    free(pl.fixed);
    free(pl.load);
    free(pl.eligible);
    return rc;
}

/* ---- text ------------------------------------------------------------------ */

int rebalance_plan_format(const struct rebalance_plan *p, char *buf, size_t cap)
{
    size_t len = 0;
    int n = snprintf(buf, cap, "plan kind=%s shard=%s database=%s weight=%s done=%d "
                     "started_ms=%" PRIu64 "\n",
                     p->kind == REBALANCE_REMOVE ? "remove" : "rebalance",
                     p->shard[0] ? p->shard : "-", p->database[0] ? p->database : "-",
                     p->weight[0] ? p->weight : "vbuckets", p->done ? 1 : 0, p->started_ms);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    len = (size_t)n;
    for (unsigned i = 0; i < p->n_moves; i++) {
        const struct rebalance_move *mv = &p->moves[i];
        n = snprintf(buf + len, cap - len, "move from=%s to=%s vbuckets=%s n=%" PRIu32 "\n",
                     mv->from, mv->to, mv->vbuckets, mv->n_vbuckets);
        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

/* Copies the value of word <key>= in <line>/<len> into <out>; 0 if found. */
static int word(const char *line, size_t len, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen < len; i++) {
        if ((i == 0 || line[i - 1] == ' ') && memcmp(line + i, key, klen) == 0 &&
            line[i + klen] == '=') {
            size_t s = i + klen + 1, e = s;
            while (e < len && line[e] != ' ')
                e++;
            if (e - s >= cap || e == s)
                return -1;
            memcpy(out, line + s, e - s);
            out[e - s] = '\0';
            return 0;
        }
    }
    return -1;
}

int rebalance_plan_parse(const char *text, size_t len, struct rebalance_plan *p, char **errp)
{
    const char *line = text, *end = text + len;
    unsigned lineno = 0;
    char v[MOVE_FIELD_MAX * 4];

    memset(p, 0, sizeof(*p));
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
        lineno++;
        if (ll == 0) {
            line += 1;
            continue;
        }
        if (lineno == 1) {
            if (ll < 5 || memcmp(line, "plan ", 5) != 0)
                goto bad;
            if (word(line, ll, "kind", v, sizeof(v)) < 0 ||
                (strcmp(v, "rebalance") != 0 && strcmp(v, "remove") != 0))
                goto bad;
            p->kind = strcmp(v, "remove") == 0 ? REBALANCE_REMOVE : REBALANCE_EVEN;
            if (word(line, ll, "shard", p->shard, sizeof(p->shard)) < 0 ||
                word(line, ll, "database", p->database, sizeof(p->database)) < 0 ||
                word(line, ll, "weight", p->weight, sizeof(p->weight)) < 0 ||
                word(line, ll, "done", v, sizeof(v)) < 0)
                goto bad;
            p->done = strcmp(v, "1") == 0;
            if (strcmp(p->shard, "-") == 0)
                p->shard[0] = '\0';
            if (strcmp(p->database, "-") == 0)
                p->database[0] = '\0';
            if (word(line, ll, "started_ms", v, sizeof(v)) == 0)
                p->started_ms = strtoull(v, NULL, 10);
        } else {
            struct rebalance_move *mv;
            if (ll < 5 || memcmp(line, "move ", 5) != 0)
                goto bad;
            if (p->n_moves == REBALANCE_MAX_MOVES)
                goto bad;
            mv = &p->moves[p->n_moves];
            if (word(line, ll, "from", mv->from, sizeof(mv->from)) < 0 ||
                word(line, ll, "to", mv->to, sizeof(mv->to)) < 0 ||
                word(line, ll, "vbuckets", mv->vbuckets, sizeof(mv->vbuckets)) < 0 ||
                word(line, ll, "n", v, sizeof(v)) < 0)
                goto bad;
            mv->n_vbuckets = (uint32_t)strtoul(v, NULL, 10);
            p->n_moves++;
        }
        line += ll + (nl ? 1 : 0);
    }
    if (lineno == 0)
        goto bad;
    return 0;
bad:
    errmsg_set(errp, "rebalance plan, line %u: not understood", lineno ? lineno : 1);
    return -1;
}
