/*
 * router/vbtrack.c - per-vbucket in-flight counts (vbtrack.h).
 */
#include "router/vbtrack.h"

#include <stdlib.h>

#include "shardmap/smap.h"
#include "shardmap/vbucket.h"

int vbtrack_init(struct vbtrack *t)
{
    /* 4 MB of zeros, touched only where vbuckets are used: the map's
     * vbucket count is not known before the first map */
    t->busy = calloc(VBUCKET_MAX_COUNT, sizeof(*t->busy));
    atomic_init(&t->unknown, 0);
    atomic_init(&t->killing, 0);
    return t->busy ? 0 : -1;
}

void vbtrack_fini(struct vbtrack *t)
{
    free(t->busy);
    t->busy = NULL;
}

bool vbtrack_holds(const struct vbtrack_held *h, uint32_t vb)
{
    for (unsigned i = 0; i < h->n; i++)
        if (h->vbs[i] == vb)
            return true;
    return false;
}

void vbtrack_enter(struct vbtrack *t, struct vbtrack_held *h, uint32_t vb)
{
    if (vb >= VBUCKET_MAX_COUNT || vbtrack_holds(h, vb))
        return;
    if (h->n == VBTRACK_PER_SESSION) {
        if (!h->unknown) {
            h->unknown = true;
            atomic_fetch_add(&t->unknown, 1);
        }
        return;
    }
    h->vbs[h->n++] = vb;
    atomic_fetch_add(&t->busy[vb], 1);
}

void vbtrack_leave(struct vbtrack *t, struct vbtrack_held *h)
{
    for (unsigned i = 0; i < h->n; i++)
        atomic_fetch_sub(&t->busy[h->vbs[i]], 1);
    h->n = 0;
    if (h->unknown) {
        h->unknown = false;
        atomic_fetch_sub(&t->unknown, 1);
    }
}

bool vbtrack_quiet(const struct vbtrack *t, const struct smap *m)
{
    uint32_t n = smap_n_vbuckets(m);
    if (smap_n_frozen(m) == 0)
        return true;
    if (atomic_load(&t->unknown) > 0 || atomic_load(&t->killing) > 0)
        return false;
    for (uint32_t vb = 0; vb < n && vb < VBUCKET_MAX_COUNT; vb++)
        if (smap_vbucket_state(m, vb) != SMAP_VB_NORMAL && atomic_load(&t->busy[vb]) > 0)
            return false;
    return true;
}

bool vbtrack_blocks(const struct vbtrack_held *h, const struct smap *m, uint32_t *vb)
{
    if (smap_n_frozen(m) == 0)
        return false;
    for (unsigned i = 0; i < h->n; i++) {
        if (h->vbs[i] < smap_n_vbuckets(m) && smap_vbucket_state(m, h->vbs[i]) != SMAP_VB_NORMAL) {
            *vb = h->vbs[i];
            return true;
        }
    }
    if (h->unknown) {
        *vb = UINT32_MAX;
        return true;
    }
    return false;
}
