/*
 * walk.h: the packet walk of netlab's compiled core, in plain C.
 *
 * One header, three users:
 *   - src_c/_core.pyx (Cython) includes it for the records and stats paths;
 *   - walk_baseline (src_c/stats.pxi), the plain C baseline of `netlab bench
 *     parse`, runs the very same walk with no Python object made, in the same
 *     process, so the bench shows what the stats path's tables cost;
 *   - fuzz/ harnesses drive it through the Cython module.
 *
 * The pure-Python twin netlab/_pycore/capture.py, decode.py and aggregate.py is
 * the readable reference: every rule and every error message here has its
 * twin there, and the tests compare both on every input.
 *
 * Safety rule: every read is preceded by a bounds check against the length of
 * the buffer (file) or of the frame. Nothing is ever written into the input.
 *
 * Formats: pcap (tcpdump.org "pcap savefile", both byte orders, micro- and
 * nanosecond magic) and pcapng (IETF draft-ietf-opsawg-pcapng: section header,
 * interface description, enhanced/simple/obsolete packet blocks).
 */
#ifndef NETLAB_WALK_H
#define NETLAB_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NL_MAX_IF 256
#define NL_MAX_CAPLEN 262144u

enum { NL_PCAP = 1, NL_PCAPNG = 2 };

/* Per-packet status bits (same values in netlab/_pycore/decode.py). */
#define NL_S_L4          0x001 /* transport header decoded: ports, flags valid */
#define NL_S_FRAG        0x002 /* an IP fragment (IPv4 MF/offset, IPv6 fragment header) */
#define NL_S_TRUNC       0x004 /* captured bytes end before a header or the IP length */
#define NL_S_MALFORMED   0x008 /* a header field is impossible (bad version, IHL...) */
#define NL_S_VLAN        0x010 /* 802.1Q / 802.1ad tag(s) walked */
#define NL_S_IPOPT       0x020 /* IPv4 options present */
#define NL_S_EXTHDR      0x040 /* IPv6 extension header(s) walked */
#define NL_S_CHECKED     0x080 /* checksums were verified (checks requested, IP packet) */
#define NL_S_IPCSUM_BAD  0x100 /* IPv4 header checksum wrong */
#define NL_S_L4CSUM_BAD  0x200 /* TCP/UDP/ICMP checksum verified and wrong */
#define NL_S_L4CSUM_OK   0x400 /* TCP/UDP/ICMP checksum verified and right */

/* ------------------------------------------------------------------ bytes */

static inline uint16_t nl_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint16_t nl_le16(const uint8_t *p) { return (uint16_t)((p[1] << 8) | p[0]); }
static inline uint32_t nl_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint32_t nl_le32(const uint8_t *p) {
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* RFC 1071 one's complement sum of big-endian 16-bit words (not folded). */
static inline uint64_t nl_sum(const uint8_t *p, size_t n) {
    uint64_t s = 0;
    size_t i = 0;
    for (; i + 1 < n; i += 2) s += (uint32_t)((p[i] << 8) | p[i + 1]);
    if (n & 1) s += (uint32_t)p[n - 1] << 8;
    return s;
}

static inline uint16_t nl_fold(uint64_t s) {
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
    return (uint16_t)s;
}

/* ---------------------------------------------------------------- framing */

typedef struct {
    size_t offset;    /* file offset of the frame's first byte */
    uint64_t ts_ns;   /* nanoseconds since the epoch, modulo 2**64 */
    uint32_t caplen;  /* bytes captured (present in the file) */
    uint32_t wirelen; /* bytes that were on the wire */
    uint32_t ifid;    /* pcapng interface number (0 for pcap) */
    int linktype;
} nl_frame;

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    int format;        /* NL_PCAP or NL_PCAPNG */
    int le;            /* pcap: little-endian file; pcapng: current section */
    uint32_t frac_mult; /* pcap: 1000 (microseconds) or 1 (nanoseconds) */
    int linktype;       /* pcap: the file's link type */
    uint32_t snaplen;
    int n_if;           /* pcapng: interfaces of the current section */
    uint16_t if_link[NL_MAX_IF];
    uint8_t if_tsres[NL_MAX_IF];
    size_t err_off;
    char err[160];
} nl_reader;

static const uint64_t NL_POW10[19] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
    100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
    100000000000000000ull, 1000000000000000000ull};

/* pcapng if_tsresol: MSB clear = 10**-x seconds, set = 2**-x seconds. */
static inline int nl_tsres_ok(uint8_t r) {
    return (r & 0x80) ? ((r & 0x7F) <= 63) : (r <= 18);
}

static inline uint64_t nl_ts_to_ns(uint64_t t, uint8_t r) {
    if (r & 0x80) return (uint64_t)(((unsigned __int128)t * 1000000000u) >> (r & 0x7F));
    if (r <= 9) return t * NL_POW10[9 - r];
    return t / NL_POW10[r - 9];
}

static int nl_fail(nl_reader *r, size_t off, const char *msg) {
    r->err_off = off;
    snprintf(r->err, sizeof r->err, "%s", msg);
    return -1;
}

static inline uint32_t nl_rd32(const nl_reader *r, const uint8_t *p) {
    return r->le ? nl_le32(p) : nl_be32(p);
}
static inline uint16_t nl_rd16(const nl_reader *r, const uint8_t *p) {
    return r->le ? nl_le16(p) : nl_be16(p);
}

/* Recognise the file; 0 on success, -1 with r->err set. */
static int nl_reader_init(nl_reader *r, const uint8_t *buf, size_t len) {
    char msg[160];
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->len = len;
    if (len < 4) {
        snprintf(msg, sizeof msg, "file too short to be a capture: %zu bytes", len);
        return nl_fail(r, 0, msg);
    }
    uint32_t m = nl_be32(buf);
    if (m == 0x0A0D0D0Au) {
        r->format = NL_PCAPNG;
        return 0; /* the section header is read as the first block */
    }
    if (m == 0xD4C3B2A1u || m == 0x4D3CB2A1u) r->le = 1;
    else if (m == 0xA1B2C3D4u || m == 0xA1B23C4Du) r->le = 0;
    else {
        snprintf(msg, sizeof msg, "not a pcap or pcapng file: magic 0x%08x", m);
        return nl_fail(r, 0, msg);
    }
    r->format = NL_PCAP;
    r->frac_mult = (m == 0x4D3CB2A1u || m == 0xA1B23C4Du) ? 1u : 1000u;
    if (len < 24) {
        snprintf(msg, sizeof msg, "truncated pcap file header: got %zu bytes, need 24", len);
        return nl_fail(r, 0, msg);
    }
    r->snaplen = nl_rd32(r, buf + 16);
    r->linktype = (int)(nl_rd32(r, buf + 20) & 0xFFFF);
    r->pos = 24;
    return 0;
}

static int nl_next_pcap(nl_reader *r, nl_frame *f) {
    char msg[160];
    size_t left = r->len - r->pos;
    if (left == 0) return 0;
    if (left < 16) {
        snprintf(msg, sizeof msg, "truncated record header: got %zu bytes, need 16", left);
        return nl_fail(r, r->pos, msg);
    }
    const uint8_t *h = r->buf + r->pos;
    uint32_t caplen = nl_rd32(r, h + 8);
    if (caplen > NL_MAX_CAPLEN) {
        snprintf(msg, sizeof msg, "bad record length %u (more than %u)", caplen, NL_MAX_CAPLEN);
        return nl_fail(r, r->pos, msg);
    }
    if (caplen > left - 16) {
        snprintf(msg, sizeof msg, "truncated record: header says %u bytes, only %zu left",
                 caplen, left - 16);
        return nl_fail(r, r->pos, msg);
    }
    f->ts_ns = (uint64_t)nl_rd32(r, h) * 1000000000u + (uint64_t)nl_rd32(r, h + 4) * r->frac_mult;
    f->caplen = caplen;
    f->wirelen = nl_rd32(r, h + 12);
    f->ifid = 0;
    f->linktype = r->linktype;
    f->offset = r->pos + 16;
    r->pos += 16 + (size_t)caplen;
    return 1;
}

/* Interface description block body: link type, snaplen, options (if_tsresol). */
static int nl_read_idb(nl_reader *r, const uint8_t *b, uint32_t total) {
    char msg[160];
    if (total < 20) {
        snprintf(msg, sizeof msg, "bad interface block length %u", total);
        return nl_fail(r, r->pos, msg);
    }
    if (r->n_if >= NL_MAX_IF) {
        snprintf(msg, sizeof msg, "too many interfaces (more than %d)", NL_MAX_IF);
        return nl_fail(r, r->pos, msg);
    }
    uint8_t res = 6; /* default: microseconds */
    size_t o = 16, end = total - 4;
    while (o + 4 <= end) {
        uint16_t code = nl_rd16(r, b + o), olen = nl_rd16(r, b + o + 2);
        if (code == 0) break;
        if (o + 4 + olen > end) break; /* a damaged option list: keep the defaults */
        if (code == 9 && olen >= 1) res = b[o + 4];
        o += 4 + (((size_t)olen + 3) & ~(size_t)3);
    }
    if (!nl_tsres_ok(res)) {
        snprintf(msg, sizeof msg, "unsupported timestamp resolution 0x%02x", res);
        return nl_fail(r, r->pos, msg);
    }
    r->if_link[r->n_if] = nl_rd16(r, b + 8);
    r->if_tsres[r->n_if] = res;
    r->n_if++;
    return 0;
}

static int nl_next_pcapng(nl_reader *r, nl_frame *f) {
    char msg[160];
    for (;;) {
        size_t left = r->len - r->pos;
        if (left == 0) return 0;
        if (left < 12) {
            snprintf(msg, sizeof msg, "truncated block header: got %zu bytes, need 12", left);
            return nl_fail(r, r->pos, msg);
        }
        const uint8_t *b = r->buf + r->pos;
        uint32_t type = nl_be32(b); /* palindromic for the section header */
        if (type == 0x0A0D0D0Au) {
            uint32_t bom = nl_be32(b + 8);
            if (bom == 0x1A2B3C4Du) r->le = 0;
            else if (bom == 0x4D3C2B1Au) r->le = 1;
            else {
                snprintf(msg, sizeof msg, "bad byte-order magic 0x%08x", bom);
                return nl_fail(r, r->pos, msg);
            }
        } else {
            type = nl_rd32(r, b);
        }
        uint32_t total = nl_rd32(r, b + 4);
        if (total < 12 || (total & 3)) {
            snprintf(msg, sizeof msg, "bad block length %u", total);
            return nl_fail(r, r->pos, msg);
        }
        if (total > left) {
            snprintf(msg, sizeof msg, "truncated block: length %u, only %zu left", total, left);
            return nl_fail(r, r->pos, msg);
        }
        uint32_t trailer = nl_rd32(r, b + total - 4);
        if (trailer != total) {
            snprintf(msg, sizeof msg, "block trailer length %u does not match %u", trailer, total);
            return nl_fail(r, r->pos, msg);
        }
        if (type == 0x0A0D0D0Au) {
            if (total < 28) {
                snprintf(msg, sizeof msg, "bad section header length %u", total);
                return nl_fail(r, r->pos, msg);
            }
            uint16_t major = nl_rd16(r, b + 12);
            if (major != 1) {
                snprintf(msg, sizeof msg, "unsupported pcapng version %u.%u", major,
                         nl_rd16(r, b + 14));
                return nl_fail(r, r->pos, msg);
            }
            r->n_if = 0; /* interfaces are numbered per section */
        } else if (type == 1) {
            if (nl_read_idb(r, b, total) < 0) return -1;
        } else if (type == 6 || type == 2) {
            /* enhanced (6) and obsolete (2) packet blocks share the layout */
            if (total < 32) {
                snprintf(msg, sizeof msg, "bad packet block length %u", total);
                return nl_fail(r, r->pos, msg);
            }
            uint32_t ifid = type == 6 ? nl_rd32(r, b + 8) : nl_rd16(r, b + 8);
            if (ifid >= (uint32_t)r->n_if) {
                snprintf(msg, sizeof msg, "packet block names interface %u, only %d defined",
                         ifid, r->n_if);
                return nl_fail(r, r->pos, msg);
            }
            uint32_t caplen = nl_rd32(r, b + 20);
            if (caplen > total - 32 || caplen > NL_MAX_CAPLEN) {
                snprintf(msg, sizeof msg, "packet block says %u bytes, its block holds %u",
                         caplen, total - 32);
                return nl_fail(r, r->pos, msg);
            }
            uint64_t t = ((uint64_t)nl_rd32(r, b + 12) << 32) | nl_rd32(r, b + 16);
            f->ts_ns = nl_ts_to_ns(t, r->if_tsres[ifid]);
            f->caplen = caplen;
            f->wirelen = nl_rd32(r, b + 24);
            f->ifid = ifid;
            f->linktype = r->if_link[ifid];
            f->offset = r->pos + 28;
            r->pos += total;
            return 1;
        } else if (type == 3) {
            /* simple packet block: no timestamp, interface 0 */
            if (total < 16) {
                snprintf(msg, sizeof msg, "bad packet block length %u", total);
                return nl_fail(r, r->pos, msg);
            }
            if (r->n_if < 1) return nl_fail(r, r->pos, "simple packet block before any interface");
            uint32_t wire = nl_rd32(r, b + 8);
            uint32_t room = total - 16;
            f->caplen = wire < room ? wire : room;
            if (f->caplen > NL_MAX_CAPLEN) f->caplen = NL_MAX_CAPLEN;
            f->ts_ns = 0;
            f->wirelen = wire;
            f->ifid = 0;
            f->linktype = r->if_link[0];
            f->offset = r->pos + 12;
            r->pos += total;
            return 1;
        }
        /* statistics, name resolution, custom... blocks: skipped */
        r->pos += total;
    }
}

/* Next frame: 1 with *f filled, 0 at the clean end, -1 on damage (r->err, r->err_off). */
static inline int nl_reader_next(nl_reader *r, nl_frame *f) {
    return r->format == NL_PCAP ? nl_next_pcap(r, f) : nl_next_pcapng(r, f);
}

/* ---------------------------------------------------------------- decoding */

typedef struct {
    int ethertype;   /* -1: link type not understood */
    int family;      /* 0 (not IP), 4 or 6 */
    int proto;       /* IP protocol of the transport (after IPv6 extensions); -1 none */
    uint8_t src[16], dst[16];
    uint32_t sport, dport; /* ports; ICMP type and code */
    uint32_t flags;        /* TCP flags (9 bits, NS included) */
    uint32_t seq, ack;
    uint32_t l4_off;       /* offset of the transport header in the frame (0: none) */
    uint32_t payload_off, payload_len;
    uint32_t status;
} nl_pkt;

static void nl_transport(const uint8_t *p, uint32_t o, uint32_t end, int checks, nl_pkt *k) {
    uint32_t seg = end - o;
    k->l4_off = o;
    k->payload_off = o;
    k->payload_len = seg;
    const uint8_t *q = p + o;
    switch (k->proto) {
    case 6: {
        if (seg < 20) { k->status |= NL_S_TRUNC; return; }
        uint32_t doff = (uint32_t)(q[12] >> 4) * 4;
        if (doff < 20) { k->status |= NL_S_MALFORMED; return; }
        k->sport = nl_be16(q);
        k->dport = nl_be16(q + 2);
        k->seq = nl_be32(q + 4);
        k->ack = nl_be32(q + 8);
        k->flags = q[13] | ((uint32_t)(q[12] & 1) << 8);
        if (seg < doff) {
            /* Options cut short (a small snaplen): the fixed header still gives
             * ports, numbers and flags, as tcpdump shows them; no payload. */
            k->payload_off = end;
            k->payload_len = 0;
            k->status |= NL_S_TRUNC;
            break;
        }
        k->payload_off = o + doff;
        k->payload_len = seg - doff;
        break;
    }
    case 17:
        if (seg < 8) { k->status |= NL_S_TRUNC; return; }
        k->sport = nl_be16(q);
        k->dport = nl_be16(q + 2);
        k->payload_off = o + 8;
        k->payload_len = seg - 8;
        break;
    case 1:
    case 58:
        if (seg < 4) { k->status |= NL_S_TRUNC; return; }
        k->sport = q[0];
        k->dport = q[1];
        if (seg >= 8) { k->payload_off = o + 8; k->payload_len = seg - 8; }
        else { k->payload_off = end; k->payload_len = 0; }
        break;
    default:
        return;
    }
    k->status |= NL_S_L4;
    if (!checks || (k->status & (NL_S_TRUNC | NL_S_FRAG))) return;
    /* Verify the transport checksum over the whole segment (RFC 793/768/792/4443). */
    uint64_t s = 0;
    int alen = k->family == 4 ? 4 : 16;
    if (k->proto == 17 && k->family == 4 && nl_be16(q + 6) == 0) {
        k->status |= NL_S_L4CSUM_OK; /* "no checksum computed" (RFC 768) */
        return;
    }
    if (!(k->proto == 1)) { /* everything but ICMPv4 covers a pseudo-header */
        s = nl_sum(k->src, alen) + nl_sum(k->dst, alen) + (uint32_t)k->proto + (seg & 0xFFFF) + (seg >> 16);
    }
    s += nl_sum(q, seg);
    k->status |= (nl_fold(s) == 0xFFFF) ? NL_S_L4CSUM_OK : NL_S_L4CSUM_BAD;
}

static void nl_ipv4(const uint8_t *p, uint32_t n, uint32_t o, int checks, nl_pkt *k) {
    if (n - o < 20) { k->status |= NL_S_TRUNC; return; }
    const uint8_t *q = p + o;
    if ((q[0] >> 4) != 4) { k->status |= NL_S_MALFORMED; return; }
    uint32_t ihl = (uint32_t)(q[0] & 15) * 4;
    if (ihl < 20) { k->status |= NL_S_MALFORMED; return; }
    if (n - o < ihl) { k->status |= NL_S_TRUNC; return; }
    k->family = 4;
    memcpy(k->src, q + 12, 4);
    memcpy(k->dst, q + 16, 4);
    k->proto = q[9];
    uint32_t tl = nl_be16(q + 2);
    if (tl < ihl) { k->status |= NL_S_MALFORMED; return; }
    if (ihl > 20) k->status |= NL_S_IPOPT;
    uint32_t end = o + tl;
    if (end > n) { end = n; k->status |= NL_S_TRUNC; }
    uint16_t frag = nl_be16(q + 6);
    if (frag & 0x3FFF) k->status |= NL_S_FRAG;
    if (checks) {
        k->status |= NL_S_CHECKED;
        if (nl_fold(nl_sum(q, ihl)) != 0xFFFF) k->status |= NL_S_IPCSUM_BAD;
    }
    if (frag & 0x1FFF) { /* a later fragment: no transport header here */
        k->payload_off = o + ihl;
        k->payload_len = end - (o + ihl);
        return;
    }
    nl_transport(p, o + ihl, end, checks, k);
}

static void nl_ipv6(const uint8_t *p, uint32_t n, uint32_t o, int checks, nl_pkt *k) {
    if (n - o < 40) { k->status |= NL_S_TRUNC; return; }
    const uint8_t *q = p + o;
    if ((q[0] >> 4) != 6) { k->status |= NL_S_MALFORMED; return; }
    k->family = 6;
    memcpy(k->src, q + 8, 16);
    memcpy(k->dst, q + 24, 16);
    uint32_t end = o + 40 + nl_be16(q + 4);
    if (end > n) { end = n; k->status |= NL_S_TRUNC; }
    if (checks) k->status |= NL_S_CHECKED;
    uint32_t nh = q[6], cur = o + 40;
    /* Walk at most 8 extension headers (RFC 8200 section 4). */
    for (int i = 0; i < 8; i++) {
        if (nh == 0 || nh == 43 || nh == 60 || nh == 51) {
            if (end - cur < 8) { k->proto = (int)nh; k->status |= NL_S_TRUNC; return; }
            uint32_t hl = nh == 51 ? ((uint32_t)p[cur + 1] + 2) * 4 : ((uint32_t)p[cur + 1] + 1) * 8;
            if (end - cur < hl) { k->proto = (int)nh; k->status |= NL_S_TRUNC; return; }
            k->status |= NL_S_EXTHDR;
            nh = p[cur];
            cur += hl;
        } else if (nh == 44) {
            if (end - cur < 8) { k->proto = (int)nh; k->status |= NL_S_TRUNC; return; }
            k->status |= NL_S_EXTHDR | NL_S_FRAG;
            uint32_t fo = nl_be16(p + cur + 2) & 0xFFF8;
            nh = p[cur];
            cur += 8;
            if (fo) {
                k->proto = (int)nh;
                k->payload_off = cur;
                k->payload_len = end - cur;
                return;
            }
        } else {
            break;
        }
    }
    k->proto = (int)nh;
    nl_transport(p, cur, end, checks, k);
}

/* Decode one frame of the given link type into *k. Never fails: problems are status bits. */
static void nl_decode(const uint8_t *p, uint32_t n, int linktype, int checks, nl_pkt *k) {
    uint32_t off = 0;
    int et;
    k->ethertype = -1;
    k->family = 0;
    k->proto = -1;
    k->sport = k->dport = k->flags = k->seq = k->ack = 0;
    k->l4_off = k->payload_off = k->payload_len = 0;
    k->status = 0;
    switch (linktype) {
    case 1: /* Ethernet, with up to two VLAN tags */
        if (n < 14) { k->status |= NL_S_TRUNC; return; }
        et = nl_be16(p + 12);
        off = 14;
        for (int i = 0; i < 2 && (et == 0x8100 || et == 0x88A8 || et == 0x9100); i++) {
            if (n - off < 4) { k->status |= NL_S_TRUNC; return; }
            k->status |= NL_S_VLAN;
            et = nl_be16(p + off + 2);
            off += 4;
        }
        break;
    case 113: /* Linux cooked capture v1 */
        if (n < 16) { k->status |= NL_S_TRUNC; return; }
        et = nl_be16(p + 14);
        off = 16;
        break;
    case 276: /* Linux cooked capture v2 */
        if (n < 20) { k->status |= NL_S_TRUNC; return; }
        et = nl_be16(p);
        off = 20;
        break;
    case 0: { /* BSD loopback: address family in the writer's byte order */
        if (n < 4) { k->status |= NL_S_TRUNC; return; }
        uint32_t af = nl_le32(p);
        if (af > 0xFFFF) af = nl_be32(p);
        et = af == 2 ? 0x0800 : (af == 10 || af == 24 || af == 28 || af == 30) ? 0x86DD : 0;
        off = 4;
        break;
    }
    case 12: case 14: case 101: /* raw IP */
        if (n < 1) { k->status |= NL_S_TRUNC; return; }
        et = (p[0] >> 4) == 4 ? 0x0800 : (p[0] >> 4) == 6 ? 0x86DD : 0;
        break;
    case 228: et = 0x0800; break;
    case 229: et = 0x86DD; break;
    default:
        return;
    }
    k->ethertype = et;
    if (et == 0x0800) nl_ipv4(p, n, off, checks, k);
    else if (et == 0x86DD) nl_ipv6(p, n, off, checks, k);
}

/* ------------------------------------------------------------- aggregation */

/* TCP flow state bits (same values in netlab/_pycore/aggregate.py). */
#define NL_T_SYN     0x01 /* SYN without ACK seen */
#define NL_T_SYNACK  0x02 /* SYN+ACK seen */
#define NL_T_ACK     0x04 /* an ACK after the SYN-ACK: handshake complete */
#define NL_T_FIN_A   0x08 /* FIN from the flow's first sender */
#define NL_T_FIN_B   0x10 /* FIN from the other side */
#define NL_T_RST     0x20

typedef struct {
    uint8_t a[16], b[16]; /* canonical order: (a, pa) <= (b, pb) */
    uint16_t pa, pb;
    uint8_t proto, family, used, first_is_a;
} nl_fkey;

typedef struct {
    nl_fkey key;
    uint64_t order, packets, bytes;
    uint32_t state;
} nl_flow;

typedef struct {
    uint64_t packets, bytes, captured;
    uint64_t ip4, ip6, non_ip, vlan, fragments, truncated, malformed;
    uint64_t checked, ipcsum_bad, l4csum_bad;
    uint64_t proto_pk[256], proto_by[256];
    uint64_t arp_pk, arp_by, other_pk, other_by;
    uint64_t *ports; /* [2][65536][2]: tcp/udp, port, packets/bytes */
    nl_flow *flows;
    size_t cap, n;
    int oom;
} nl_agg;

static int nl_agg_init(nl_agg *g) {
    memset(g, 0, sizeof *g);
    g->ports = (uint64_t *)calloc(2 * 65536 * 2, sizeof(uint64_t));
    g->cap = 1024;
    g->flows = (nl_flow *)calloc(g->cap, sizeof(nl_flow));
    if (!g->ports || !g->flows) { free(g->ports); free(g->flows); g->ports = NULL; g->flows = NULL; return -1; }
    return 0;
}

static void nl_agg_free(nl_agg *g) {
    free(g->ports);
    free(g->flows);
    g->ports = NULL;
    g->flows = NULL;
}

static inline uint64_t nl_key_hash(const nl_fkey *k) {
    uint64_t w[5];
    w[4] = 0;
    memcpy(w, k, 38); /* not `used` / `first_is_a`: lookups must hash alike */
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 5; i++) { h ^= w[i]; h *= 0xBF58476D1CE4E5B9ull; h ^= h >> 31; }
    return h;
}

static inline int nl_key_eq(const nl_fkey *x, const nl_fkey *y) { return memcmp(x, y, 38) == 0; }

static int nl_agg_grow(nl_agg *g) {
    size_t ncap = g->cap * 2;
    nl_flow *nf = (nl_flow *)calloc(ncap, sizeof(nl_flow));
    if (!nf) return -1;
    for (size_t i = 0; i < g->cap; i++) {
        if (!g->flows[i].key.used) continue;
        size_t j = nl_key_hash(&g->flows[i].key) & (ncap - 1);
        while (nf[j].key.used) j = (j + 1) & (ncap - 1);
        nf[j] = g->flows[i];
    }
    free(g->flows);
    g->flows = nf;
    g->cap = ncap;
    return 0;
}

static void nl_agg_flow(nl_agg *g, const nl_pkt *k, uint32_t wirelen) {
    nl_fkey key;
    memset(&key, 0, sizeof key);
    int alen = k->family == 4 ? 4 : 16;
    int c = memcmp(k->src, k->dst, alen);
    int fwd = c < 0 || (c == 0 && k->sport <= k->dport); /* packet goes a -> b */
    if (fwd) {
        memcpy(key.a, k->src, alen); memcpy(key.b, k->dst, alen);
        key.pa = (uint16_t)k->sport; key.pb = (uint16_t)k->dport;
    } else {
        memcpy(key.a, k->dst, alen); memcpy(key.b, k->src, alen);
        key.pa = (uint16_t)k->dport; key.pb = (uint16_t)k->sport;
    }
    key.proto = (uint8_t)k->proto;
    key.family = (uint8_t)k->family;
    key.used = 1;
    if ((g->n + 1) * 2 > g->cap && nl_agg_grow(g) < 0) { g->oom = 1; return; }
    size_t j = nl_key_hash(&key) & (g->cap - 1);
    while (g->flows[j].key.used && !nl_key_eq(&g->flows[j].key, &key)) j = (j + 1) & (g->cap - 1);
    nl_flow *fl = &g->flows[j];
    if (!fl->key.used) {
        key.first_is_a = (uint8_t)fwd;
        fl->key = key;
        fl->order = g->n++;
    }
    fl->packets++;
    fl->bytes += wirelen;
    if (k->proto == 6) {
        uint32_t f = k->flags, st = fl->state;
        int from_first = fwd == fl->key.first_is_a;
        if ((f & 0x02) && !(f & 0x10)) st |= NL_T_SYN;
        if ((f & 0x12) == 0x12) st |= NL_T_SYNACK;
        if (!(f & 0x02) && (f & 0x10) && (st & NL_T_SYNACK)) st |= NL_T_ACK;
        if (f & 0x01) st |= from_first ? NL_T_FIN_A : NL_T_FIN_B;
        if (f & 0x04) st |= NL_T_RST;
        fl->state = st;
    }
}

static inline void nl_agg_add(nl_agg *g, const nl_frame *f, const nl_pkt *k) {
    uint32_t w = f->wirelen;
    g->packets++;
    g->bytes += w;
    g->captured += f->caplen;
    uint32_t s = k->status;
    if (s & NL_S_VLAN) g->vlan++;
    if (s & NL_S_FRAG) g->fragments++;
    if (s & NL_S_TRUNC) g->truncated++;
    if (s & NL_S_MALFORMED) g->malformed++;
    if (s & NL_S_CHECKED) g->checked++;
    if (s & NL_S_IPCSUM_BAD) g->ipcsum_bad++;
    if (s & NL_S_L4CSUM_BAD) g->l4csum_bad++;
    if (k->family == 0) {
        g->non_ip++;
        if (k->ethertype == 0x0806) { g->arp_pk++; g->arp_by += w; }
        else { g->other_pk++; g->other_by += w; }
        return;
    }
    if (k->family == 4) g->ip4++; else g->ip6++;
    if (k->proto < 0) { g->other_pk++; g->other_by += w; return; }
    g->proto_pk[k->proto]++;
    g->proto_by[k->proto] += w;
    if ((s & NL_S_L4) && (k->proto == 6 || k->proto == 17)) {
        uint64_t *t = g->ports + (k->proto == 6 ? 0 : 65536 * 2);
        t[k->sport * 2]++;
        t[k->sport * 2 + 1] += w;
        if (k->dport != k->sport) { t[k->dport * 2]++; t[k->dport * 2 + 1] += w; }
        nl_agg_flow(g, k, w);
    }
}

/* The whole stats path over a buffer: returns 0 (clean end) or -1 (damage in r). */
static int nl_agg_run(nl_agg *g, nl_reader *r, int checks) {
    nl_frame f;
    nl_pkt k;
    int rc;
    while ((rc = nl_reader_next(r, &f)) == 1) {
        nl_decode(r->buf + f.offset, f.caplen, f.linktype, checks, &k);
        nl_agg_add(g, &f, &k);
    }
    return rc;
}

#endif /* NETLAB_WALK_H */
