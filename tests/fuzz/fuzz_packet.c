/*
 * tests/fuzz/fuzz_packet.c - the wire decoders on arbitrary bytes: the
 * client's HandshakeResponse41, a server greeting and auth switch, the
 * end-of-reply tracker over a stream of packets, and COM_STMT_EXECUTE
 * parameters with every key type, and every input also as a PROXY protocol
 * header and a trusted-network entry. None may read out of bounds or crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "protocol/handshake.h"
#include "protocol/packet.h"
#include "protocol/proxyproto.h"
#include "protocol/reply.h"
#include "protocol/stmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits <data> into packets by their own headers and feeds the tracker. */
static void feed_stream(const uint8_t *data, size_t size, enum reply_kind kind)
{
    struct reply r;
    size_t pos = 0;

    reply_begin(&r, kind, (size & 1) != 0);
    while (pos + PACKET_HEADER_LEN <= size) {
        struct packet_header h;
        size_t avail;

        packet_read_header(data + pos, size - pos, &h);
        pos += PACKET_HEADER_LEN;
        avail = size - pos;
        if (avail > h.payload_len)
            avail = h.payload_len;
        if (avail < h.payload_len && avail < REPLY_PEEK)
            return;
        if (reply_feed(&r, data + pos, avail, h.payload_len) != 0)
            return;
        pos += avail;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct handshake_response hr;
    struct handshake_server_greeting g;
    size_t a, b, c, d;

    if (size < 1)
        return 0;
    {
        struct proxyproto_hdr ph;
        struct proxyproto_net net;
        char src[64];
        ssize_t n = proxyproto_parse(data, size, &ph, NULL);

        if (n > (ssize_t)size)
            __builtin_trap();   /* a header longer than the input */
        if (n > 0)
            proxyproto_format_src(&ph, src, sizeof(src));
        if (proxyproto_net_parse((const char *)data, size, &net) == 0 &&
            !proxyproto_net_match(&net, 1, net.family, net.addr))
            __builtin_trap();   /* a network must contain its own address */
    }
    switch (data[0] % 4) {
    case 0:
        handshake_parse_response(data + 1, size - 1, &hr);
        handshake_parse_auth_switch(data + 1, size - 1, &a, &b, &c, &d);
        break;
    case 1:
        handshake_parse_greeting(data + 1, size - 1, &g);
        break;
    case 2:
        feed_stream(data + 1, size - 1, (enum reply_kind)(data[0] / 4 % 6));
        break;
    default: {
        /* [n_params][types 2*n][execute payload] */
        struct stmt_execute ex;
        unsigned n = size > 1 ? data[1] % 8 : 0;
        const uint8_t *types = data + 2, *p = types + 2 * n;

        if (size < 2 + 2 * (size_t)n)
            return 0;
        if (stmt_parse_execute(p, size - (size_t)(p - data), n, &ex) < 0)
            return 0;
        for (unsigned i = 0; i < n; i++) {
            struct stmt_value v;
            char key[ANALYZE_KEY_MAX];

            if (stmt_param(p, size - (size_t)(p - data), &ex,
                           ex.new_types ? p + ex.types_off : types, n, NULL, i, &v) == 0) {
                stmt_key_of(p, &v, ANALYZE_KEY_INT, key);
                stmt_key_of(p, &v, ANALYZE_KEY_STRING, key);
            }
        }
        break;
    }
    }
    return 0;
}
