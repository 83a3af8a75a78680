/*
 * protocol/proxyproto.h - the PROXY protocol header (HAProxy's, versions 1
 * and 2) that a load balancer sends before the first byte of a proxied
 * connection, and the trusted-network list that decides who may send it.
 *
 * MySQL's server speaks first, so a router that expects the header reads it
 * before sending its greeting. Nothing here allocates, blocks, logs, or keeps
 * a pointer into the caller's buffer.
 */
#ifndef SHARDWIRE_PROTOCOL_PROXYPROTO_H
#define SHARDWIRE_PROTOCOL_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROXYPROTO_V1_MAX_LEN  107   /* the spec's bound, CRLF included */
#define PROXYPROTO_V2_MAX_LEN  2064  /* 16-byte header + 2048 of addresses
                                      * and TLVs: far above what HAProxy or
                                      * a cloud balancer sends, and a bound
                                      * on what a trusted peer makes us keep */

enum proxyproto_cmd {
    PROXYPROTO_PROXY,    /* relayed: <src> is the real client */
    PROXYPROTO_LOCAL,    /* v2 LOCAL or v1 UNKNOWN: the balancer's own
                          * connection (a health check); keep the socket's
                          * address */
};

struct proxyproto_hdr {
    unsigned            version;     /* 1 or 2 */
    enum proxyproto_cmd cmd;
    int                 family;      /* AF_INET or AF_INET6 when cmd is
                                      * PROXY; AF_UNSPEC otherwise */
    uint8_t             src[16];     /* network order; 4 bytes for AF_INET */
    uint8_t             dst[16];
    uint16_t            src_port;
    uint16_t            dst_port;
};

/*
 * Parses the header at the start of <buf>. Returns its length (the bytes to
 * drop before the MySQL protocol starts), 0 if <len> is too short to tell,
 * or -1 if these bytes cannot be a valid header, with *<errp> set to a
 * static message naming what is wrong.
 */
ssize_t proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_hdr *out,
                         const char **errp);

/* Writes the relayed client as "1.2.3.4:5678" or "[::1]:5678" into <out>
 * (always NUL-terminated). Returns 0, or -1 if <h> carries no address. */
int proxyproto_format_src(const struct proxyproto_hdr *h, char *out, size_t out_len);

/* One trusted network: "10.0.0.0/8", "::1", "fd00::/8". An IPv4 network
 * also matches IPv4-mapped IPv6 peers (::ffff:10.1.2.3). */
struct proxyproto_net {
    int      family;                 /* AF_INET or AF_INET6 */
    uint8_t  addr[16];               /* masked to <prefix> bits */
    unsigned prefix;
};

/* Parses <text> (<len> bytes, no NUL needed). Returns 0, or -1 if it is not
 * an address with an optional /prefix in range. */
int proxyproto_net_parse(const char *text, size_t len, struct proxyproto_net *out);

/* True if the peer address <addr> of <family> lies in one of <nets>. */
bool proxyproto_net_match(const struct proxyproto_net *nets, size_t n, int family,
                          const uint8_t *addr);

#endif
