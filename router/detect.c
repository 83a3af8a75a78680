/*
 * router/detect.c - is a shard's master really dead (see detect.h). Pure.
 */
#include "router/detect.h"

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
