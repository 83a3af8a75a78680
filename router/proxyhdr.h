/*
 * router/proxyhdr.h - accepted connections from a trusted load balancer,
 * waiting for their PROXY protocol header before they become sessions.
 *
 * MySQL's server speaks first, so a connection from a network listed in
 * `proxy_protocol_networks` gets no greeting until the header has arrived;
 * the session then starts under the client's real address. Connections
 * from anywhere else never have a header read (a client cannot claim an
 * address). Worker thread only.
 */
#ifndef SHARDWIRE_ROUTER_PROXYHDR_H
#define SHARDWIRE_ROUTER_PROXYHDR_H

#include <stdbool.h>
#include <sys/queue.h>
#include <sys/socket.h>

struct config;
struct worker;

struct proxyhdr;
TAILQ_HEAD(proxyhdr_list, proxyhdr);

/* True if a peer at <sa> must send a PROXY header first. */
bool proxyhdr_required(const struct config *c, const struct sockaddr *sa);

/* Waits on <fd> (takes ownership; counted in n_clients already) for the
 * header from <lb_peer>, at most handshake_timeout_ms; then starts a
 * session for it, or refuses it with a MySQL error naming the problem and
 * gives its n_clients slot back. */
void proxyhdr_wait(struct worker *w, int fd, const char *lb_peer);

/* Closes every connection still waiting (worker shutdown), each with a
 * shutdown error. */
void proxyhdr_cancel_all(struct worker *w);

#endif
