/*
 * router/rdirect.c - direct reads for the data path's sockets.
 */
#include "router/rdirect.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <sys/uio.h>

/* Re-assigns the read event of <bev> to <cb>, keeping it added or not.
 * event_assign needs an event neither added nor active: it is deleted
 * first (a deleted event leaves the active queue too). */
static void reassign(struct bufferevent *bev, event_callback_fn cb, void *arg)
{
    struct event *ev = &bev->ev_read;
    int added = event_pending(ev, EV_READ, NULL);

    event_del(ev);
    event_assign(ev, bev->ev_base, event_get_fd(ev), event_get_events(ev), cb, arg);
    if (added)
        event_add(ev, NULL);
}

/* The room under the read high watermark; 0 when reading must wait (the
 * watermark callback suspends reading at the mark: re-setting it makes it
 * look again, as libevent's own callback does on reaching it). */
static size_t room_under_mark(struct bufferevent *bev, size_t len)
{
    /* The fields, not bufferevent_getwatermark: 28 instructions a read. */
    size_t high = bev->wm_read.high;

    if (high == 0)
        return RDIRECT_MAX;
    if (len >= high) {
        bufferevent_setwatermark(bev, EV_READ, bev->wm_read.low, high);
        return 0;
    }
    return high - len < RDIRECT_MAX ? high - len : RDIRECT_MAX;
}

/* Commits the first <n> bytes of the <nv> reserved vectors; returns how
 * many bytes of <n> went past them (into the scratch buffer). */
static size_t commit_read(struct evbuffer *in, struct evbuffer_iovec *v, int nv, size_t n)
{
    int used = 0;

    while (used < nv && n > 0) {
        if (v[used].iov_len > n)
            v[used].iov_len = n;
        n -= v[used].iov_len;
        used++;
    }
    evbuffer_commit_space(in, v, used);
    return n;
}

/* The read event's callback (libevent's bufferevent_readcb's job, with
 * one readv and no ioctl). */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct rdirect *r = arg;
    struct bufferevent *bev = r->bev;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v[2];
    struct iovec iov[3];
    size_t room, reserved = 0, want;
    ssize_t n;
    int nv, niov = 0, err;

    (void)what;
    room = room_under_mark(bev, evbuffer_get_length(in));
    if (room == 0)
        return;
    want = r->want < room ? r->want : room;
    /* A socket bufferevent keeps its input's end frozen; libevent thaws it
     * around its own reads just so. */
    evbuffer_unfreeze(in, 0);
    nv = evbuffer_reserve_space(in, want, v, 2);
    if (nv < 0) {
        evbuffer_freeze(in, 0);
        errno = ENOMEM;     /* as libevent's read reports a failed expand */
        n = -1;
        goto failed;
    }
    for (int i = 0; i < nv && reserved < room; i++) {
        iov[niov].iov_base = v[i].iov_base;
        iov[niov].iov_len = v[i].iov_len < room - reserved ? v[i].iov_len : room - reserved;
        reserved += iov[niov++].iov_len;
    }
    if (reserved < room) {
        iov[niov].iov_base = r->scratch;
        iov[niov++].iov_len = room - reserved;
    }
    n = readv(fd, iov, niov);
    err = errno;
    if (n > 0) {
        size_t extra = commit_read(in, v, nv, (size_t)n);

        if (extra > 0 && evbuffer_add(in, r->scratch, extra) < 0) {
            evbuffer_freeze(in, 0);
            errno = ENOMEM;
            n = -1;
            goto failed;
        }
        /* A read past the reservation asks for that much next time, so a
         * large reply streams into the input without copies. */
        r->want = (size_t)n <= RDIRECT_MIN ? RDIRECT_MIN
                  : (size_t)n < RDIRECT_BIG ? (uint32_t)n : RDIRECT_BIG;
    } else {
        evbuffer_commit_space(in, v, 0);
    }
    evbuffer_freeze(in, 0);
    if (n > 0) {
        bufferevent_trigger(bev, EV_READ, 0);
        return;
    }
    errno = err;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
failed:
    err = errno;
    bufferevent_disable(bev, EV_READ);
    errno = err;
    bufferevent_trigger_event(bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), 0);
}

int rdirect_take(struct rdirect *r, struct bufferevent *bev, unsigned char *scratch)
{
    struct event *ev = &bev->ev_read;

    r->bev = NULL;
    /* The layout this relies on is 2.1's; the read event of a socket
     * bufferevent is on its socket and calls back with the bufferevent. */
    if ((event_get_version_number() >> 16) != 0x0201 || (LIBEVENT_VERSION_NUMBER >> 16) != 0x0201 ||
        !scratch || bufferevent_getfd(bev) < 0 || event_get_fd(ev) != bufferevent_getfd(bev) ||
        event_get_callback_arg(ev) != bev || event_get_base(ev) != bufferevent_get_base(bev))
        return -1;
    r->lib_cb = event_get_callback(ev);
    r->lib_arg = bev;
    r->scratch = scratch;
    r->want = RDIRECT_MIN;
    r->bev = bev;
    reassign(bev, on_readable, r);
    return 0;
}

void rdirect_give_back(struct rdirect *r)
{
    if (!r->bev)
        return;
    reassign(r->bev, r->lib_cb, r->lib_arg);
    r->bev = NULL;
}
