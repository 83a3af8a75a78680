/*
 * protocol/proxyproto.c - PROXY protocol v1/v2 parsing and trusted networks.
 *
 * Strict on purpose: the header decides which address a connection is
 * logged and counted under, so anything the spec does not allow (a missing
 * space, a port of 65536, a v2 version nibble other than 2, a family with too
 * few address bytes) is an error, never a guess.
 */
#include "protocol/proxyproto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_sig[] = "PROXY ";

/* Reads one address token of v1 into <dst>. Returns 0 or -1. */
static int v1_addr(const char *tok, size_t len, int family, uint8_t *dst)
{
    char tmp[INET6_ADDRSTRLEN];

    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, tok, len);
    tmp[len] = '\0';
    return inet_pton(family, tmp, dst) == 1 ? 0 : -1;
}

/* Reads a v1 port: 1-5 decimal digits, no sign, no leading zero, <= 65535. */
static int v1_port(const char *tok, size_t len, uint16_t *out)
{
    unsigned v = 0;

    if (len == 0 || len > 5 || (len > 1 && tok[0] == '0'))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] < '0' || tok[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(tok[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static ssize_t parse_v1(const uint8_t *buf, size_t len, struct proxyproto_hdr *out,
                        const char **errp)
{
    size_t end = 0;

    /* The line ends at the first CRLF; a bare LF or CR is not allowed. */
    for (size_t i = 0; i < len && i < PROXYPROTO_V1_MAX_LEN; i++) {
        if (buf[i] == '\r') {
            if (i + 1 >= len)
                return 0;
            if (buf[i + 1] != '\n') {
                *errp = "PROXY v1: CR not followed by LF";
                return -1;
            }
            end = i;
            break;
        }
        if (buf[i] == '\n' || buf[i] == '\0') {
            *errp = "PROXY v1: control character in header";
            return -1;
        }
    }
    if (end == 0) {
        if (len < PROXYPROTO_V1_MAX_LEN)
            return 0;
        *errp = "PROXY v1: header longer than 107 bytes";
        return -1;
    }

    const char *line = (const char *)buf + sizeof(v1_sig) - 1;
    size_t rest = end - (sizeof(v1_sig) - 1);

    out->version = 1;
    if (rest >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (rest == 7 || line[7] == ' ')) {
        out->cmd = PROXYPROTO_LOCAL;
        out->family = AF_UNSPEC;
        return (ssize_t)end + 2;
    }

    /* PROXY TCP4|TCP6 SRC DST SPORT DPORT: exactly five fields, one space
     * between each. */
    const char *tok[5];
    size_t tok_len[5];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= rest; i++) {
        if (i == rest || line[i] == ' ') {
            if (n == 5 || i == start) {
                *errp = "PROXY v1: expected 'TCP4|TCP6 SRC DST SPORT DPORT'";
                return -1;
            }
            tok[n] = line + start;
            tok_len[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    if (n != 5) {
        *errp = "PROXY v1: expected 'TCP4|TCP6 SRC DST SPORT DPORT'";
        return -1;
    }
    if (tok_len[0] == 4 && memcmp(tok[0], "TCP4", 4) == 0) {
        out->family = AF_INET;
    } else if (tok_len[0] == 4 && memcmp(tok[0], "TCP6", 4) == 0) {
        out->family = AF_INET6;
    } else {
        *errp = "PROXY v1: protocol is not TCP4, TCP6 or UNKNOWN";
        return -1;
    }
    if (v1_addr(tok[1], tok_len[1], out->family, out->src) < 0 ||
        v1_addr(tok[2], tok_len[2], out->family, out->dst) < 0) {
        *errp = "PROXY v1: bad address";
        return -1;
    }
    if (v1_port(tok[3], tok_len[3], &out->src_port) < 0 ||
        v1_port(tok[4], tok_len[4], &out->dst_port) < 0) {
        *errp = "PROXY v1: bad port";
        return -1;
    }
    out->cmd = PROXYPROTO_PROXY;
    return (ssize_t)end + 2;
}

static ssize_t parse_v2(const uint8_t *buf, size_t len, struct proxyproto_hdr *out,
                        const char **errp)
{
    if (len < 16)
        return 0;
    uint8_t ver_cmd = buf[12], fam = buf[13];
    size_t body = ((size_t)buf[14] << 8) | buf[15];

    if ((ver_cmd >> 4) != 2) {
        *errp = "PROXY v2: version is not 2";
        return -1;
    }
    if (16 + body > PROXYPROTO_V2_MAX_LEN) {
        *errp = "PROXY v2: header longer than 2064 bytes";
        return -1;
    }
    unsigned cmd = ver_cmd & 0x0f;
    if (cmd > 1) {
        *errp = "PROXY v2: command is not LOCAL or PROXY";
        return -1;
    }
    unsigned af = fam >> 4, proto = fam & 0x0f;
    if (af > 3 || proto > 2) {
        *errp = "PROXY v2: unknown address family or protocol";
        return -1;
    }
    if (len < 16 + body)
        return 0;

    out->version = 2;
    out->family = AF_UNSPEC;
    out->cmd = PROXYPROTO_LOCAL;
    /* LOCAL: the balancer speaking for itself; the address block, if any,
     * is to be ignored. An unspecified or unix family carries no TCP
     * address either: treat both as the balancer's own connection. */
    if (cmd == 0 || af == 0 || af == 3)
        return (ssize_t)(16 + body);
    if (proto != 1) {
        *errp = "PROXY v2: relayed connection is not a stream (TCP)";
        return -1;
    }
    const uint8_t *a = buf + 16;
    if (af == 1) {
        if (body < 12) {
            *errp = "PROXY v2: IPv4 address block shorter than 12 bytes";
            return -1;
        }
        out->family = AF_INET;
        memcpy(out->src, a, 4);
        memcpy(out->dst, a + 4, 4);
        out->src_port = (uint16_t)(a[8] << 8 | a[9]);
        out->dst_port = (uint16_t)(a[10] << 8 | a[11]);
    } else {
        if (body < 36) {
            *errp = "PROXY v2: IPv6 address block shorter than 36 bytes";
            return -1;
        }
        out->family = AF_INET6;
        memcpy(out->src, a, 16);
        memcpy(out->dst, a + 16, 16);
        out->src_port = (uint16_t)(a[32] << 8 | a[33]);
        out->dst_port = (uint16_t)(a[34] << 8 | a[35]);
    }
    out->cmd = PROXYPROTO_PROXY;
    /* TLVs after the addresses (ALPN, authority, SSL, ...) are skipped:
     * nothing in them changes how a MySQL session is routed. */
    return (ssize_t)(16 + body);
}

ssize_t proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_hdr *out,
                         const char **errp)
{
    static const char *unused;
    if (!errp)
        errp = &unused;
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return 0;

    size_t n1 = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
    size_t n2 = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    if (memcmp(buf, v1_sig, n1) == 0)
        return n1 < sizeof(v1_sig) - 1 ? 0 : parse_v1(buf, len, out, errp);
    if (memcmp(buf, v2_sig, n2) == 0)
        return n2 < sizeof(v2_sig) ? 0 : parse_v2(buf, len, out, errp);
    *errp = "not a PROXY protocol header";
    return -1;
}

int proxyproto_format_src(const struct proxyproto_hdr *h, char *out, size_t out_len)
{
    char ip[INET6_ADDRSTRLEN];

    if (out_len)
        out[0] = '\0';
    if (h->cmd != PROXYPROTO_PROXY || (h->family != AF_INET && h->family != AF_INET6))
        return -1;
    if (!inet_ntop(h->family, h->src, ip, sizeof(ip)))
        return -1;
    if (h->family == AF_INET)
        snprintf(out, out_len, "%s:%u", ip, h->src_port);
    else
        snprintf(out, out_len, "[%s]:%u", ip, h->src_port);
    return 0;
}

static void mask_bits(uint8_t *addr, unsigned bytes, unsigned prefix)
{
    for (unsigned i = 0; i < bytes; i++) {
        unsigned keep = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
        addr[i] &= (uint8_t)(0xff00u >> keep);
    }
}

int proxyproto_net_parse(const char *text, size_t len, struct proxyproto_net *out)
{
    char tmp[INET6_ADDRSTRLEN + 5];
    size_t slash = len;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < len; i++)
        if (text[i] == '/') {
            slash = i;
            break;
        }
    if (slash == 0 || slash >= INET6_ADDRSTRLEN)
        return -1;
    memcpy(tmp, text, slash);
    tmp[slash] = '\0';
    if (inet_pton(AF_INET, tmp, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, tmp, out->addr) == 1)
        out->family = AF_INET6;
    else
        return -1;

    unsigned max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash < len) {
        size_t digits = len - slash - 1;
        unsigned v = 0;
        if (digits == 0 || digits > 3)
            return -1;
        for (size_t i = slash + 1; i < len; i++) {
            if (text[i] < '0' || text[i] > '9')
                return -1;
            v = v * 10 + (unsigned)(text[i] - '0');
        }
        if (v > max)
            return -1;
        out->prefix = v;
    }
    mask_bits(out->addr, max / 8, out->prefix);
    return 0;
}

bool proxyproto_net_match(const struct proxyproto_net *nets, size_t n, int family,
                          const uint8_t *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t a[16];

    /* An IPv4-mapped IPv6 peer (a dual-stack listener) is its IPv4 self. */
    if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
        family = AF_INET;
        addr += 12;
    }
    if (family != AF_INET && family != AF_INET6)
        return false;
    unsigned bytes = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n; i++) {
        if (nets[i].family != family)
            continue;
        memcpy(a, addr, bytes);
        mask_bits(a, bytes, nets[i].prefix);
        if (memcmp(a, nets[i].addr, bytes) == 0)
            return true;
    }
    return false;
}
