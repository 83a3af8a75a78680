/*
 * router/detect.c - is a shard's master really dead (see detect.h). Pure.
 */
#include "router/detect.h"

#include <string.h>

static const char *const detect_names[] = {
    "healthy", "minority", "standby_sees_it", "flapping", "failed",
};

const char *detect_result_name(enum detect_result r)
{
    return (unsigned)r < sizeof(detect_names) / sizeof(detect_names[0]) ? detect_names[r] : "?";
}

enum detect_result detect_master(const struct detect_input *in, const struct detect_policy *pol,
                                 uint64_t now_ms)
{
    unsigned down = 0;

    for (unsigned r = 0; r < in->n_routers; r++)
        if (in->master[r].verdict == HEALTH_DOWN)
            down++;
    if (down == 0)
        return DETECT_HEALTHY;
    /* A strict majority of the live routers, so that of two halves that
     * cannot see each other at most one can decide. */
    if (2 * down <= in->n_routers)
        return DETECT_MINORITY;
    for (unsigned r = 0; r < in->n_routers; r++) {
        for (unsigned k = 0; k < in->n_standbys; k++) {
            const struct detect_view *v = &in->standby[r * in->n_standbys + k];

            if (v->verdict == HEALTH_UP && v->is_replica && v->io_running &&
                smap_endpoint_eq(&v->source, in->master_ep))
                return DETECT_STANDBY_SEES_IT;
        }
    }
    if (in->last_failover_ms && now_ms - in->last_failover_ms < pol->flap_window_ms)
        return DETECT_FLAPPING;
    return DETECT_FAILED;
}

/* The value of word "<key>=" in <line>/<len> (words end at a space; a
 * quoted value is not needed here). Returns its length, or -1. */
static int detect_word(const char *line, size_t len, const char *key, const char **val)
{
    size_t kl = strlen(key), i = 0;

    while (i < len) {
        size_t j = i;

        while (j < len && line[j] != ' ')
            j++;
        if (j - i > kl && memcmp(line + i, key, kl) == 0 && line[i + kl] == '=') {
            *val = line + i + kl + 1;
            return (int)(j - i - kl - 1);
        }
        i = j + 1;
    }
    return -1;
}

int detect_parse_line(const char *line, size_t len, struct detect_line *out)
{
    static const char *const verdicts[] = { "unknown", "up", "suspect", "down" };
    const char *v;
    int n;

    memset(out, 0, sizeof(*out));
    if (len < 7 || memcmp(line, "health ", 7) != 0)
        return -1;
    n = detect_word(line, len, "shard", &v);
    if (n <= 0 || n >= SMAP_NAME_MAX)
        return -1;
    memcpy(out->shard, v, (size_t)n);
    n = detect_word(line, len, "role", &v);
    if (n == 6 && memcmp(v, "master", 6) == 0)
        out->is_master = true;
    else if (!(n == 7 && memcmp(v, "standby", 7) == 0))
        return -1;
    n = detect_word(line, len, "server", &v);
    if (n <= 0 || smap_parse_endpoint(v, (size_t)n, &out->server, NULL) < 0)
        return -1;
    n = detect_word(line, len, "verdict", &v);
    out->v.verdict = HEALTH_UNKNOWN;
    for (unsigned k = 0; k < sizeof(verdicts) / sizeof(verdicts[0]); k++)
        if (n == (int)strlen(verdicts[k]) && memcmp(v, verdicts[k], (size_t)n) == 0)
            out->v.verdict = (enum health_verdict)k;
    n = detect_word(line, len, "io", &v);
    out->v.is_replica = n == 1;
    out->v.io_running = n == 1 && v[0] == '1';
    n = detect_word(line, len, "source", &v);
    if (n > 0 && smap_parse_endpoint(v, (size_t)n, &out->v.source, NULL) < 0)
        memset(&out->v.source, 0, sizeof(out->v.source));
    return 0;
}

bool detect_lease_by_peers(const struct detect_lease_round *round)
{
    return round->n_peers > 0 && round->n_have == 0 && 2 * round->n_lost > round->n_peers;
}
