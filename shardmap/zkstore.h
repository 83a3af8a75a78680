/*
 * shardmap/zkstore.h - the shard map in ZooKeeper.
 *
 * Layout under <root> (default /shardwire; docs/zookeeper.md), text payloads
 * in the map syntax of shardmap/mapcodec.h so zkCli shows them readably:
 *
 *   <root>/version         decimal map version; bumped by every change
 *   <root>/settings        "vbuckets N", "key_columns ...", "key_type int|string"
 *   <root>/vbmap           "vb A-B SHARD" lines
 *   <root>/shards/<name>   "master=HOST:PORT standby=HOST:PORT ..."
 *   <root>/routers/<id>    ephemeral, one per live router (payload is the router's)
 *
 * Every change is one zoo_multi that checks the ZooKeeper version of
 * <root>/version and bumps it, so one number covers all nodes, two writers
 * never overwrite each other (one gets ZKSTORE_CONFLICT), and a reader that
 * sees the same version node before and after reading the others has read
 * one consistent map.
 *
 * Two faces: struct zkstore (router side: a background thread that keeps a
 * watch, survives connection loss and session expiry, and hands over every
 * new valid map) and struct zkstore_admin (synchronous calls for shardctl).
 * Nothing here logs: messages go through callbacks or malloc'd strings.
 */
#ifndef SHARDWIRE_SHARDMAP_ZKSTORE_H
#define SHARDWIRE_SHARDMAP_ZKSTORE_H

#include <stdbool.h>
#include <stdint.h>

struct smap;
struct zkauth;

#define ZKSTORE_DEFAULT_ROOT        "/shardwire"
#define ZKSTORE_ROUTER_ID_MAX       64     /* same rules as a shard name */
#define ZKSTORE_SESSION_TIMEOUT_MS  10000

/* Results of the synchronous calls; shardctl maps them to exit codes. */
enum zkstore_rc {
    ZKSTORE_OK = 0,
    ZKSTORE_UNREACHABLE,   /* no ZooKeeper server answered within the deadline */
    ZKSTORE_NO_CLUSTER,    /* <root>/version does not exist: run shardctl init */
    ZKSTORE_CONFLICT,      /* the map changed since it was read: re-read, retry */
    ZKSTORE_INVALID,       /* bad data in ZooKeeper, or a change the map rules refuse */
    ZKSTORE_EXISTS,        /* init: a cluster already exists at <root> */
    ZKSTORE_NOAUTH,        /* the nodes' ACL refuses these credentials (or none) */
    ZKSTORE_ERROR,         /* anything else, described in *errp */
};

/* Returns a static name for <rc> ("ok", "unreachable", ...). */
const char *zkstore_rc_name(enum zkstore_rc rc);

/* Checks a root path: absolute, no trailing or doubled '/', no "." or ".."
 * parts, under 512 bytes. Returns 0, or -1 with a malloc'd *<errp>. */
int zkstore_check_root(const char *root, char **errp);

/* ---- router side --------------------------------------------------------- */

enum zkstore_state {
    ZKSTORE_CONNECTED,      /* session live; the watch is armed */
    ZKSTORE_DISCONNECTED,   /* connection lost; the client is reconnecting, the
                               session (and our registration) may still live */
    ZKSTORE_EXPIRED,        /* session gone: handle being recreated; the
                               registration and watch are restored after */
};

enum zkstore_log_level { ZKSTORE_LOG_ERROR, ZKSTORE_LOG_WARN, ZKSTORE_LOG_INFO };

/*
 * Called on zkstore's own thread, one at a time, never while a zkstore lock
 * is held; they may call zkstore_register() and the getters but never
 * zkstore_free(), and should not block for long (the next event waits).
 */
struct zkstore_callbacks {
    /* A new valid map, its version above the last one handed over (an
     * older version, from a lagging server or a re-created cluster, is
     * logged and ignored). The callee takes the reference. */
    void (*on_map)(struct smap *m, void *arg);
    /* The connection state changed. */
    void (*on_state)(enum zkstore_state state, void *arg);
    /* One line worth logging: invalid map data (old map kept), no cluster
     * yet, registration trouble, session expiry. May be NULL. */
    void (*on_log)(enum zkstore_log_level level, const char *msg, void *arg);
};

struct zkstore;

/*
 * Starts watching the map under <root> (NULL: ZKSTORE_DEFAULT_ROOT) on the
 * ensemble <hosts> ("h1:2181,h2:2181"). Returns at once: connecting, the
 * first read and every later one happen on zkstore's thread, and each valid
 * map reaches cb->on_map. Returns NULL with a malloc'd *<errp> on a bad root
 * or when the thread cannot start. <cb> and <auth> are copied; <arg> is
 * passed back.
 *
 * <auth> (may be NULL) is sent on every session. With it the router never
 * creates the cluster's nodes (shardctl init does, with their ACL): its
 * registration waits for <root>/routers and inherits that node's ACL.
 * Without it (an open cluster, by explicit choice) missing parents of the
 * registration are created with the open ACL.
 */
struct zkstore *zkstore_new(const char *hosts, const char *root, const struct zkauth *auth,
                            const struct zkstore_callbacks *cb, void *arg, char **errp);

/*
 * Stops the thread, closes the session (which removes the registration at
 * once) and frees. NULL does nothing. Call from any thread except from
 * inside a zkstore callback. May block up to the session timeout when the
 * thread is inside a ZooKeeper call.
 */
void zkstore_free(struct zkstore *zs);

/*
 * Creates or updates the ephemeral node <root>/routers/<router_id> with
 * <payload> (copied; recommended: one line of key=value such as
 * "address=10.0.0.5:6033 map_version=7 map_age_ms=0"). Returns at once (the
 * write happens on zkstore's thread and is redone after every reconnect and
 * session expiry); 0, or -1 with a malloc'd *<errp> when <router_id> is not
 * a valid node name. Any thread, including callbacks.
 */
int zkstore_register(struct zkstore *zs, const char *router_id, const char *payload,
                     char **errp);

/*
 * CLOCK_MONOTONIC milliseconds of the last moment ZooKeeper answered us (0:
 * never). While connected it advances about once a second, so the map
 * age shown by a router is now - this. Timed here because the client never
 * reports expiry while the whole ensemble is down. Any thread.
 */
uint64_t zkstore_last_contact_ms(const struct zkstore *zs);
/* The other routers' admin addresses, from their registrations as last
 * read (every 5 s while connected, from the first call on): a malloc'd
 * "ID ADMIN ADDRESS\n" per router that publishes `admin=` (as configured:
 * "PORT" or "HOST:PORT") and `address=` (its SQL listener), or NULL (none
 * known yet, out of memory). Any thread; the caller frees. */
char *zkstore_peers(struct zkstore *zs);
enum zkstore_state zkstore_state(const struct zkstore *zs);

/* Routes the ZooKeeper client library's own log lines (all handles in the
 * process) to <fn> at levels up to ERROR (<verbose> 0) or INFO (1). NULL
 * silences them. Call before zkstore_new(). */
typedef void zkstore_lib_log_fn(const char *msg);
void zkstore_library_log(zkstore_lib_log_fn *fn, int verbose);

/* ---- admin side (shardctl): synchronous, one thread ------------------------ */

struct zkstore_admin;

/* A live router as registered. */
struct zkstore_router {
    char     id[ZKSTORE_ROUTER_ID_MAX];
    char    *payload;       /* NUL-terminated, as the router wrote it */
    int64_t  mtime_ms;      /* ZooKeeper server time of its last update */
    int64_t  ctime_ms;      /* ... and of its creation */
};

/*
 * Connects to <hosts> and waits up to <timeout_ms> for a session, sending
 * <auth> (copied; NULL: no credentials) first. Returns ZKSTORE_OK with
 * *<out> set, ZKSTORE_UNREACHABLE, or ZKSTORE_ERROR (bad root, bad host
 * list, credentials refused), with a malloc'd *<errp> on failure. Every
 * later call on <out> is also bounded by about <timeout_ms>.
 */
enum zkstore_rc zkstore_admin_connect(const char *hosts, const char *root,
                                      const struct zkauth *auth, unsigned timeout_ms,
                                      struct zkstore_admin **out, char **errp);
void zkstore_admin_free(struct zkstore_admin *za);   /* NULL does nothing */

/*
 * Reads one consistent map. On ZKSTORE_OK *<out> is a new snapshot whose
 * smap_version() is the content of <root>/version, and *<cas> (may be NULL)
 * is that node's ZooKeeper version, to pass to zkstore_admin_write().
 */
enum zkstore_rc zkstore_admin_load(struct zkstore_admin *za, struct smap **out, int32_t *cas,
                                   char **errp);

/*
 * Who may do what on a cluster made by zkstore_admin_init()
 * (docs/zookeeper.md "Access control"):
 *  - open: anyone may do anything (ZooKeeper's open ACL); an explicit choice;
 *  - else the admin identity (the credentials of the zkstore_admin) gets all
 *    rights on every node, and <router> (NULL: routers use the admin
 *    identity) may read the map and read, create, change and delete nodes
 *    under <root>/routers, but change nothing else.
 * Nodes created later (a new shard, a router's registration) inherit their
 * parent's ACL.
 */
struct zkstore_acl {
    bool                 open;
    const struct zkauth *router;
};

/*
 * Creates a cluster holding <m> (version node = smap_version(m)) with the
 * ACL <acl>. Returns ZKSTORE_EXISTS when <root> already has one; nothing is
 * half-created. ZKSTORE_ERROR when <acl> is not open and the connection has
 * no credentials. Existing <root> and <root>/routers nodes (a router may
 * have made them in an open cluster) get the new ACL.
 */
enum zkstore_rc zkstore_admin_init(struct zkstore_admin *za, const struct smap *m,
                                   const struct zkstore_acl *acl, char **errp);

/*
 * Replaces map <cur> (as loaded with *<cas>) by <next>, whose version must
 * be smap_version(cur) + 1 and whose settings must equal <cur>'s. One
 * zoo_multi: ZKSTORE_CONFLICT when anyone changed the map since the load.
 * After a connection loss it reconnects, re-reads and reports ZKSTORE_OK
 * only if <next> is what ZooKeeper now holds; it retries the multi only if
 * the map provably did not change.
 */
enum zkstore_rc zkstore_admin_write(struct zkstore_admin *za, const struct smap *cur,
                                    int32_t cas, const struct smap *next, char **errp);

/*
 * Sets shard <shard>'s paused flag to <paused> (routers hold a paused
 * shard's statements): load, one compare-and-set write, and a fresh load
 * and retry when someone else changed the map meanwhile (a few times). A
 * map already in that state is left as it is. On ZKSTORE_OK *<version>
 * (may be NULL) is the version that carries the flag; ZKSTORE_INVALID for
 * an unknown shard (*<errp> names it).
 */
enum zkstore_rc zkstore_admin_set_paused(struct zkstore_admin *za, const char *shard,
                                         bool paused, uint64_t *version, char **errp);

/* True when the last zkstore_admin_init()/zkstore_admin_write() on <za>
 * lost its connection mid-way and had to re-read to learn the outcome (its
 * result says what that was); shardctl tells the operator. */
bool zkstore_admin_lost_in_write(const struct zkstore_admin *za);

/* Lists <root>/routers/ sorted by id. On ZKSTORE_OK *<out> holds *<n>
 * entries; free with zkstore_routers_free(). No routers: *<n> = 0. */
enum zkstore_rc zkstore_admin_routers(struct zkstore_admin *za, struct zkstore_router **out,
                                      unsigned *n, char **errp);
void zkstore_routers_free(struct zkstore_router *r, unsigned n);

/*
 * Waits up to <wait_ms> until every router registered (now or at any moment
 * of the wait) runs map <version> or later (its registration says
 * map_version=), or its lease (lease_ms= in its registration: a router
 * that has not heard from ZooKeeper for that long sends no writes) has run
 * out since the wait began, plus 500 ms. A router that publishes no lease
 * and whose registration is gone counts as done. Returns how many are still
 * behind at the end; their ids (comma-separated, cut at <cap>) in <behind>.
 */
unsigned zkstore_admin_wait_routers(struct zkstore_admin *za, uint64_t version, unsigned wait_ms,
                                    char *behind, size_t cap);

/* Which word of a router's registration zkstore_admin_wait_routers_for()
 * waits on: map_version=V (it runs map V) or frozen_ack=V (it holds writes
 * to the vbuckets frozen in map V). */
enum zkstore_wait_word { ZKSTORE_WAIT_MAP_VERSION, ZKSTORE_WAIT_FROZEN_ACK };

struct zkstore_wait {
    enum zkstore_wait_word word;
    uint64_t version;           /* done when the word says >= version */
    unsigned wait_ms;
    /* 0: leases count from the start of the wait and end it for any router,
     * and <wait_ms> bounds the whole wait. Else the wall-clock time (ms) the
     * leases count from (a freeze); they end the wait only for a router
     * whose registration is gone, which is always waited out, and
     * <wait_ms> bounds only the wait for registered routers. */
    uint64_t lease_from_wall_ms;
    unsigned poll_ms;           /* between listings */
    /*
     * Listing the routers failed with <err>. NULL: that counts as one
     * router behind ("(cannot list routers)" in <behind>, then the ones
     * followed, all taken as gone). Else called (its <since_ms>: the
     * CLOCK_MONOTONIC ms of the last good listing, which it may reset) to
     * wait for ZooKeeper: false ends the wait (<behind> says "(cannot list
     * routers: ERR)"). It may replace *<za> (reconnected).
     */
    bool (*unreachable)(void *arg, uint64_t *since_ms, const char *err);
    void *arg;
};

/* zkstore_admin_wait_routers() generalised: follows every router seen
 * (registered) since the start until its registration's <o->word> reaches
 * <o->version>, or it is gone and its lease has run out (see struct
 * zkstore_wait). Returns how many are still behind; their ids in <behind>. */
unsigned zkstore_admin_wait_routers_for(struct zkstore_admin **za, const struct zkstore_wait *o,
                                        char *behind, size_t cap);

/*
 * Coordinator election among routers: makes sure <za> has an ephemeral
 * sequential candidate node <root>/coordinators/c-<id>-NNNNNNNNNN (made
 * again after its session ended) and tells whether it is the lowest, i.e.
 * the leader; <leader_id> gets the leader's id. One leader at a time per
 * ZooKeeper's view; a paused leader whose session expired has lost its node.
 */
enum zkstore_rc zkstore_admin_elect(struct zkstore_admin *za, const char *id, bool *leader,
                                    char *leader_id, size_t cap, char **errp);

/*
 * A runner's mark: creates the ephemeral node <root>/<dir>/<name> (its
 * parent's ACL), which lives as long as <za>'s session: others tell a live
 * runner (shardctl switchover) from a dead one by it. ZKSTORE_EXISTS when
 * the node is there already (another live runner of that name).
 */
enum zkstore_rc zkstore_admin_hold(struct zkstore_admin *za, const char *dir, const char *name,
                                   char **errp);

/*
 * Whether the ephemeral nodes made on <za> (its zkstore_admin_elect()
 * candidate, its zkstore_admin_hold() mark) all still exist and belong to
 * <za>'s current session: false once that session expired (a runner paused
 * longer than its session timeout, whose handle then opened a new session),
 * or when it made none. A lost connection is waited out up to the admin
 * timeout (an expired session is not recovered here). ZKSTORE_OK with
 * *<held> set, else an error (the caller must treat it as not held).
 */
enum zkstore_rc zkstore_admin_held(struct zkstore_admin *za, bool *held, char **errp);

/* The id of the elected coordinator (the lowest candidate under
 * <root>/coordinators/), "" when no router is a candidate. Reads only. */
enum zkstore_rc zkstore_admin_coordinator(struct zkstore_admin *za, char *id, size_t cap,
                                          char **errp);

/*
 * The failover history <root>/history: one line per finished failover or
 * switchover, oldest first. get: *<text> malloc'd, NULL when there is none.
 * add: appends <line> (no newline in it) keeping the last <keep> lines, by
 * compare-and-set, so concurrent writers lose nothing.
 */
enum zkstore_rc zkstore_admin_history_get(struct zkstore_admin *za, char **text, char **errp);
enum zkstore_rc zkstore_admin_history_add(struct zkstore_admin *za, const char *line,
                                          unsigned keep, char **errp);

/*
 * The failover journal of <shard>: <root>/failover/<shard>, one line of
 * key=value words (router/coordinator.c writes it). get: *<text> malloc'd
 * (NULL, *<version> -1 when there is none). put: creates it when <version>
 * is -1, else replaces the content only if the node is still at <version>;
 * ZKSTORE_CONFLICT when someone else wrote it meanwhile.
 */
enum zkstore_rc zkstore_admin_journal_get(struct zkstore_admin *za, const char *shard,
                                          char **text, int32_t *version, char **errp);
enum zkstore_rc zkstore_admin_journal_put(struct zkstore_admin *za, const char *shard,
                                          const char *text, int32_t version, char **errp);

/*
 * The same journal nodes under any directory <dir> of <root> ("failover",
 * "moves"): <root>/<dir>/<name>, created with <root>'s ACL. get and put as
 * above (messages say "<dir> journal <name>").
 */
enum zkstore_rc zkstore_admin_node_get(struct zkstore_admin *za, const char *dir,
                                       const char *name, char **text, int32_t *version,
                                       char **errp);
enum zkstore_rc zkstore_admin_node_put(struct zkstore_admin *za, const char *dir,
                                       const char *name, const char *text, int32_t version,
                                       char **errp);
/* Creates <root>/<dir>/<prefix>NNNNNNNNNN (ZooKeeper's sequence number, so
 * two creators never get the same name) holding <text>; its name goes to
 * <name> (<cap> bytes). */
enum zkstore_rc zkstore_admin_node_create_seq(struct zkstore_admin *za, const char *dir,
                                              const char *prefix, const char *text,
                                              char *name, size_t cap, char **errp);
/* Names of the children of <root>/<dir>, natural order (none: *<n> = 0);
 * free with zkstore_names_free(). */
enum zkstore_rc zkstore_admin_node_list(struct zkstore_admin *za, const char *dir,
                                        char ***names, unsigned *n, char **errp);
void zkstore_names_free(char **names, unsigned n);

#endif
