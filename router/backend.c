/*
 * router/backend.c - a pool's backend connection: opened and logged in
 * through router/backend_login.c, then handed to the pool.
 */
#include "router/backend.h"

#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/wire.h"
#include "router/config.h"
#include "router/pool.h"
#include "router/util.h"
#include "router/worker.h"

/* The login ended: the pool hears it. */
static void login_ended(struct backend_login *l, const char *err, void *arg)
{
    struct backend *be = arg;

    (void)l;
    if (err) {
        pool_connect_failed(be, err);
        return;
    }
    /* Out of memory leaves the state unknown: reset before first use. */
    sessstate_build(&be->sstate, NULL, 0, WIRE_CHARSET_UTF8MB4_GENERAL_CI);
    be->created_ms = now_ms();
    /* Out of memory: libevent keeps writing it, only slower. */
    wflush_track(&be->wf, be->w, be->bev);
    pool_connected(be);
}

struct backend *backend_connect(struct pool *pool)
{
    const struct config *cfg = pool->w->router->cfg;
    struct backend_login_params lp = {
        .user = cfg->backend_user,
        .password = cfg->backend_password,
        .database = cfg->analyze.database,
        .check = &cfg->analyze,
        .timeout_ms = cfg->connect_timeout_ms,
    };
    struct backend *be = calloc(1, sizeof(*be));
    int rc;

    if (!be)
        return NULL;
    be->w = pool->w;
    be->pool = pool;
    be->generation = pool->generation;
    be->state = BACKEND_CONNECTING;
    be->bev = bufferevent_socket_new(pool->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!be->bev) {
        backend_free(be);
        return NULL;
    }
    rc = backend_login_start(&be->login, be->bev, pool->endpoint.host, pool->endpoint.port, &lp,
                             login_ended, be);
    if (rc < 0) {
        backend_free(be);
        return NULL;
    }
    if (rc > 0)     /* reported from the loop; the pool's error says why now */
        snprintf(pool->last_error, sizeof(pool->last_error), "%s", be->login.start_err);
    return be;
}

void backend_free(struct backend *be)
{
    if (!be)
        return;
    backend_login_fini(&be->login);
    wflush_untrack(&be->wf, false);
    if (be->bev)
        bufferevent_free(be->bev);
    sessstate_fini(&be->sstate);
    pstmt_cache_clear(&be->stmts);
    free(be);
}
