/*
 * router/session.h - one client connection: handshake, authentication,
 * command dispatch, routing, and relaying the backend's reply (router/
 * session.c and its parts session_login.c, session_cmd.c, session_pstmt.c,
 * session_route.c, session_relay.c, each owning one member of the struct).
 *
 * A session, its backend connection and buffers belong to one worker for
 * life. It holds at most one backend connection at a time; a transaction
 * pins it. Sessions are freed by the worker's reaper, never inside their own
 * callbacks.
 */
#ifndef SHARDWIRE_ROUTER_SESSION_H
#define SHARDWIRE_ROUTER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "protocol/analyze.h"
#include "protocol/handshake.h"
#include "protocol/reply.h"
#include "protocol/scope.h"
#include "router/pstmt.h"
#include "router/sessstate.h"
#include "router/vbtrack.h"
#include "router/stats.h"
#include "router/wflush.h"

struct backend;
struct bufferevent;
struct ssl_st;
struct event;
struct pool;
struct pool_budget;
struct worker;

enum sess_state {
    SESS_GREETING,     /* handshake sent; waiting for HandshakeResponse41 */
    SESS_AUTH_SWITCH,  /* asked the client to redo auth with native_password */
    SESS_IDLE,         /* authenticated; no statement in flight */
    SESS_WAIT_POOL,    /* routed; waiting for a backend connection */
    SESS_SYNCING,      /* bringing the backend to the session's state first */
    SESS_FORWARDING,   /* statement sent; relaying the reply */
    SESS_CLOSING,      /* flushing a last packet, then closing */
    SESS_CLOSED,       /* waiting for the reaper */
};

enum sess_end {        /* why a session ended: exactly one, logged at close */
    SESS_END_NONE, SESS_END_QUIT, SESS_END_CLIENT_EOF, SESS_END_CLIENT_TIMEOUT,
    SESS_END_AUTH, SESS_END_PROTOCOL, SESS_END_BACKEND_LOST, SESS_END_POOL_TIMEOUT,
    SESS_END_RESOURCE, SESS_END_SHUTDOWN, SESS_END_PINNED_TIMEOUT,
};

/* What the statement in flight needs once its backend is ready. */
enum sess_cmd_kind {
    SESS_CMD_FORWARD,      /* forward the client's packets as they are */
    SESS_CMD_TRACK_SET,    /* forward; on OK remember the SET for other backends */
    SESS_CMD_PREPARE,      /* COM_STMT_PREPARE of <ps.cur> */
    SESS_CMD_STMT,         /* EXECUTE / FETCH / RESET of <ps.cur>: ids rewritten */
};

#define SESS_MAX_STATE_STMTS 64

/* How the client logged in (session_login.c). */
struct session_login {
    uint8_t             scramble[HANDSHAKE_SCRAMBLE_LEN];
    uint32_t            client_caps;
    uint8_t             charset;       /* collation id from the handshake or SET NAMES */
    char                user[64];
    struct ssl_st      *ssl;           /* owned here (the filter does not free it) */
    bool                tls;           /* the client switched to TLS */
};

/* The command in flight (session_cmd.c). Its packets stay in the input
 * buffer until forwarded. */
struct session_cmd {
    uint8_t             code;          /* the command byte (WIRE_COM_*) */
    size_t              bytes;         /* headers included, all continuation packets */
    uint8_t             last_seq;
    enum sess_cmd_kind  kind;
    struct analyze_result ar;
    char               *scratch;       /* joined payload of a multi-packet statement */
    size_t              scratch_cap;
    unsigned            burst;         /* statements handled in this wakeup */
    bool                out_blocked;   /* client reads paused: it does not read replies */
};

/* The client's prepared statements (session_pstmt.c). */
struct session_pstmt {
    struct pstmt_table  stmts;
    struct pstmt       *cur;           /* the one the command in flight uses */
    uint32_t            cursor_stmt;   /* a statement with an open cursor (pins) */
    bool                kept_be;       /* the PREPARE in flight found the backend still
                                          attached (after a write, warning or error):
                                          it stays for the statement after the PREPARE */
};

/* Where statements go, and what ties the session to a connection
 * (session_route.c): transaction and session state, the pinned budget,
 * waiting for a connection, holding a statement for a failover. */
struct session_route {
    bool                in_txn;        /* the backend said IN_TRANS */
    bool                txn_pending;   /* BEGIN answered locally; not sent yet */
    bool                autocommit;
    bool                pinned;        /* state that cannot move: keep this backend */
    bool                pinned_before; /* <pinned> when the command in flight came */
    bool                txn_begins;    /* the statement waiting for a backend is routed */
    char               *begin_sql;     /* the deferred BEGIN statement */
    char               *pending_set;   /* a SET in flight, remembered if it succeeds */
    char               *state_stmts[SESS_MAX_STATE_STMTS];
    unsigned            n_state_stmts;
    size_t              state_bytes;   /* of <state_stmts> */
    struct pool_budget *held;          /* counted in its <held>: this session holds (or
                                          is about to hold) a connection between statements */
    struct sessstate    sstate;        /* charset + state_stmts, as text */
    int                 last_shard;    /* where SESSION statements go when unattached */
    uint64_t            last_insert_id;
    bool                clear_prev;    /* before the statement, on a connection just
                                          taken from the pool: reset, and run a SELECT
                                          that leaves FOUND_ROWS() 0 (the reset keeps
                                          it) */
    bool                retried;       /* this statement already moved connections once */
    unsigned            sql_modes;     /* ANALYZE_MODE_*: how the session's sql_mode
                                          reads statements (PIPES_AS_CONCAT) */
    int                 pending_modes; /* a SET sql_mode in flight: the modes once it
                                          succeeds; -1: none */
    bool                txn_wrote;     /* the open transaction wrote or locked rows, or
                                          was begun explicitly: it cannot move shards */
    bool                txn_changed;   /* the open transaction ran a write: its COMMIT
                                          waits for a semi-sync acknowledgement */
    /* tenant scope (docs/orms.md): SET @shardwire_user, SET @shardwire_txn_user */
    bool                scoped, txn_scoped;
    size_t              scope_len, txn_scope_len;
    char                scope_key[ANALYZE_KEY_MAX];
    char                txn_scope_key[ANALYZE_KEY_MAX];
    bool                rewritten;     /* the statement in flight goes as <rewrite> */
    struct scope_buf    rewrite;
    bool                buffered;      /* held while its shard has no reachable master */
    uint64_t            buffer_until_ms; /* when holding this statement gives up; 0: not held */
    struct vbtrack_held vbs;           /* vbuckets this statement or transaction is on */
    bool                move_held;     /* <buffered> for a frozen vbucket, not a master */
    bool                move_cut;      /* its transaction was cut for a move (session_move.c):
                                          the next statement hears of it */
    uint32_t            move_cut_vb;   /* the frozen vbucket (UINT32_MAX: unknown) */
    bool                move_cut_state; /* pinned state went with the cut connection */
    TAILQ_ENTRY(session) pool_link;    /* in <waiting_pool>'s wait queue */
    struct pool        *waiting_pool;
};

/* The reply being relayed, and the replies to router-made statements
 * before it (session_relay.c). */
struct session_relay {
    struct reply        reply;
    uint32_t            fwd_left;      /* bytes of the current packet still to move */
    uint8_t             last_seq;      /* of the last reply packet relayed */
    bool                be_paused;     /* backend reads paused: client is slow */
    uint64_t            reply_bytes;   /* relayed to the client for this statement */
    unsigned            sync_pending;  /* replies to router-sent statements still due */
    bool                sync_failed;
    bool                sync_prepare;  /* the last router-sent statement is a PREPARE */
    bool                sync_had_begin; /* the deferred BEGIN went with this sync */
    char                sync_err[256];
    uint16_t            sync_errno;
};

/* Its life (session.c) at the top; each part's state in its own member. */
struct session {
    uint64_t            id;
    struct worker      *w;
    struct bufferevent *bev;           /* the TLS filter once <login.tls>, else <raw_bev> */
    struct bufferevent *raw_bev;       /* the socket's; owned here */
    struct wflush       wf;            /* direct writes on <raw_bev> unless TLS */
    char                peer[64];
    enum sess_state     state;
    enum sess_end       end;
    struct event       *timer;         /* handshake / idle / pool wait / shutdown */
    bool                wr_shut;       /* CLOSING: our side half-closed */
    bool                shutdown_after; /* close once the statement in flight ends */
    size_t              mem_charged;   /* counted in the router's mem_used */
    unsigned            n_stmts;
    struct stats_sess   st;            /* counters of the statement in flight (stats.h) */
    struct session     *next, *prev;   /* worker's list */
    struct session     *reap_next;

    /* The backend connection in use, read by every part; session_route.c
     * attaches and gives it back. */
    struct backend     *be;
    char                be_shard[64];

    struct session_login login;
    struct session_cmd   cmd;
    struct session_pstmt ps;
    struct session_route route;
    struct session_relay relay;
};

/* Takes ownership of the accepted socket <fd> and sends the greeting.
 * Returns the session, or NULL (socket closed, logged). Worker thread. */
struct session *session_new(struct worker *w, int fd, const char *peer);

/* Frees a closed session (the reaper calls this). */
void session_free(struct session *s);

/* From the pool: <be> is now the session's. */
void session_backend_ready(struct session *s, struct backend *be);
/* From the pool: no connection could be had; <msg> tells why. <unreachable>:
 * the master did not answer at all (so a failover may replace it and the
 * statement may be held for it); false when it answered and refused (the
 * account, its settings): that will not pass by waiting. */
void session_backend_failed(struct session *s, const char *msg, bool unreachable);

/* The worker is shutting down: close now if idle, else after the reply. */
void session_shutdown(struct session *s);
/* The shutdown deadline passed: close whatever the state. */
void session_kill(struct session *s);

/* A move's freeze has waited move_drain_ms (docs/moves.md, "cutover"):
 * ends every transaction and statement of worker <w>'s sessions still on a
 * vbucket its map freezes (session_move.c). A worker_fn; <arg> is a
 * malloc'd uint64_t, the map version frozen (freed here): nothing is cut
 * when the worker routes by another. Worker thread, posted by
 * router/mapwatch.c. */
void session_move_cut(struct worker *w, void *arg);

const char *sess_end_name(enum sess_end e);
const char *sess_state_name(enum sess_state s);

#endif
