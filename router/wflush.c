/*
 * router/wflush.c - direct, batched writes for the data path's sockets.
 */
#include "router/wflush.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "router/worker.h"

/* Bytes were queued on a tracked socket: flush it with the worker's next
 * flush, which runs after the callbacks that are ready now. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct wflush *f = arg;

    (void)buf;
    if (info->n_added == 0 || f->dirty)
        return;
    f->dirty = true;
    TAILQ_INSERT_TAIL(&f->w->dirty, f, link);
    event_active(f->w->flush_ev, EV_READ, 1);
}

int wflush_track(struct wflush *f, struct worker *w, struct bufferevent *bev)
{
    struct evbuffer *out = bufferevent_get_output(bev);

    f->w = w;
    f->dirty = false;
    f->cb = evbuffer_add_cb(out, on_output, f);
    if (!f->cb) {
        f->bev = NULL;
        return -1;
    }
    f->bev = bev;
    rdirect_take(&f->rd, bev, w->read_scratch);     /* -1: libevent reads */
    bufferevent_disable(bev, EV_WRITE);
    if (evbuffer_get_length(out) > 0) {
        f->dirty = true;
        TAILQ_INSERT_TAIL(&w->dirty, f, link);
        event_active(w->flush_ev, EV_READ, 1);
    }
    return 0;
}

void wflush_untrack(struct wflush *f, bool enable_write)
{
    if (!f->bev)
        return;
    if (f->dirty) {
        TAILQ_REMOVE(&f->w->dirty, f, link);
        f->dirty = false;
    }
    evbuffer_remove_cb_entry(bufferevent_get_output(f->bev), f->cb);
    rdirect_give_back(&f->rd);
    if (enable_write)
        bufferevent_enable(f->bev, EV_WRITE);
    f->bev = NULL;
    f->cb = NULL;
}

/* One writev of everything queued. When the kernel takes it all, the write
 * callback runs as libevent would run it (a closing session half-closes, a
 * paused backend resumes); otherwise, or on an error, libevent's write
 * event takes over and finishes or reports as for any bufferevent. */
static void flush_one(struct wflush *f)
{
    struct bufferevent *bev = f->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    int n;

    if (evbuffer_get_length(out) == 0)
        return;
    /* A socket bufferevent keeps its output's front frozen; it thaws it
     * around its own writes just so. */
    evbuffer_unfreeze(out, 1);
    n = evbuffer_write(out, bufferevent_getfd(bev));
    evbuffer_freeze(out, 1);
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || evbuffer_get_length(out) > 0) {
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    /* Written out: a write event libevent armed for an earlier slow
     * reader is not needed any more. */
    if (bufferevent_get_enabled(bev) & EV_WRITE)
        bufferevent_disable(bev, EV_WRITE);
    bufferevent_trigger(bev, EV_WRITE, 0);
}

void wflush_run(struct worker *w)
{
    struct wflush *f;

    /* A write callback may queue more (a paused relay resumes): those are
     * appended and written in this same pass. */
    while ((f = TAILQ_FIRST(&w->dirty)) != NULL) {
        TAILQ_REMOVE(&w->dirty, f, link);
        f->dirty = false;
        flush_one(f);
    }
}
