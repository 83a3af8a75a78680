/*
 * router/rdirect.h - direct reads for the data path's sockets.
 *
 * libevent's socket bufferevent reads with evbuffer_read, which asks the
 * kernel how much is readable (ioctl FIONREAD) before every read, and reads
 * at most 4,096 bytes per readiness: 2 ioctl per statement (client socket
 * and backend socket), and 16 wakeups, reads and ioctl per 64 KB of a
 * large result. A taken bufferevent keeps everything else: its read event
 * (the one bufferevent_enable/disable, the read high watermark and a
 * suspension add and delete) calls rdirect's callback instead of
 * libevent's, which reads with one readv: into space reserved in the input
 * evbuffer (no copy) and, past it, a scratch buffer of the worker's
 * (copied in), up to RDIRECT_MAX bytes or the room under the high
 * watermark. Then, exactly as libevent's callback does, it runs the read
 * callback (if the input reached the low watermark), or on end of file or
 * an error disables reading and runs the event callback with
 * BEV_EVENT_READING | BEV_EVENT_EOF or BEV_EVENT_ERROR.
 *
 * One read per readiness: the event is level-triggered, so what one read
 * leaves comes back with the next loop iteration (reading again until
 * EAGAIN would cost one more syscall per statement).
 *
 * This touches the bufferevent's read event, which libevent exposes in
 * <event2/bufferevent_struct.h> but may lay out differently in another
 * version: a bufferevent is taken only with libevent 2.1, and only when its
 * read event looks as expected; otherwise libevent keeps reading it.
 * Only plain connected sockets are taken (a TLS filter reads through its
 * own callbacks). All calls are on the owning worker's thread.
 */
#ifndef SHARDWIRE_ROUTER_RDIRECT_H
#define SHARDWIRE_ROUTER_RDIRECT_H

#include <event2/event.h>
#include <stdint.h>

#define RDIRECT_MIN  512u       /* reserved in the input for a small read */
#define RDIRECT_MAX  65536u     /* most bytes one read takes */
#define RDIRECT_BIG  32768u     /* largest reservation (a 64 KB chain with
                                 * libevent's header) */

struct bufferevent;

struct rdirect {
    struct bufferevent *bev;        /* NULL: libevent reads */
    unsigned char      *scratch;    /* the worker's, RDIRECT_MAX bytes */
    event_callback_fn   lib_cb;     /* libevent's, to give back */
    void               *lib_arg;
    uint32_t            want;       /* bytes to reserve for the next read */
};

/* Takes over reading <bev> (a connected socket bufferevent); <scratch> is
 * RDIRECT_MAX bytes shared by the worker's sockets. Returns 0, or -1 when
 * libevent keeps reading it (another libevent, no socket). */
int rdirect_take(struct rdirect *r, struct bufferevent *bev, unsigned char *scratch);

/* Gives reading back to libevent (no-op when not taken); the read event
 * stays added or not as it was. Safe from within the read callback. */
void rdirect_give_back(struct rdirect *r);

#endif
