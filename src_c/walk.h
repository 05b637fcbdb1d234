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
 * The pure-Python twin netlab/packet/pure/capture.py, decode.py, links.py and
 * aggregate.py is the readable reference: every rule and every error message
 * here has its twin there, and the tests compare both on every input.
 *
 * Safety rule: every read is preceded by a bounds check against the length of
 * the buffer (file) or of the frame. Nothing is ever written into the input.
 *
 * Formats: pcap (tcpdump.org "pcap savefile", both byte orders, micro- and
 * nanosecond magic) and pcapng (IETF draft-ietf-opsawg-pcapng: section header,
 * interface description with if_tsresol/if_tsoffset, enhanced/simple/obsolete
 * packet blocks, any number of interfaces). A reader that saw a pcapng file
 * owns an interface table: nl_reader_free releases it.
 */
#ifndef NETLAB_WALK_H
#define NETLAB_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

/* Record status bits NL_S_*, flow states NL_T_*, NL_MAX_CAPLEN, NL_RELEASE_STEP and the
 * protocol numbers: written by setup.py from netlab/packet/fields.py, named once there. */
#include "fields.h"

enum { NL_PCAP = 1, NL_PCAPNG = 2 };

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
    uint64_t ts_ns;   /* capture time in ns since the epoch: ts_hi * 2**64 + ts_ns */
    int64_t ts_hi;    /* 0 unless the time lies outside 1970..2554 (see nl_ts_to_ns) */
    uint32_t caplen;  /* bytes captured (present in the file) */
    uint32_t wirelen; /* bytes that were on the wire */
    uint32_t ifid;    /* pcapng interface number (0 for pcap) */
    int linktype;
} nl_frame;

typedef struct {
    uint32_t snaplen;  /* 0: no limit */
    uint16_t link;
    uint8_t tsres;     /* if_tsresol */
    int64_t tsoffset;  /* if_tsoffset, seconds added to every timestamp */
} nl_iface;

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    int format;        /* NL_PCAP or NL_PCAPNG */
    int le;            /* pcap: little-endian file; pcapng: current section */
    uint32_t frac_mult; /* pcap: 1000 (microseconds) or 1 (nanoseconds) */
    int linktype;       /* pcap: the file's link type */
    uint32_t snaplen;
    uint32_t n_if, cap_if; /* pcapng: interfaces of the current section, table size */
    nl_iface *ifs;      /* pcapng: the interface table (grows; nl_reader_free frees it) */
    int release;        /* buf is a shared read-only file mapping: give walked pages back */
    size_t released;    /* pages before this offset were given back */
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

/* A 64-bit pcapng timestamp in nanoseconds, exactly: 2**64 units of a
 * microsecond are 2**64 * 1000 ns, more than 64 bits hold, so the sum is made
 * in 128 bits and never wraps into a plausible wrong date. */
static inline __int128 nl_ts_to_ns(uint64_t t, const nl_iface *i) {
    uint8_t r = i->tsres;
    __int128 ns;
    if (r & 0x80) ns = (__int128)(((unsigned __int128)t * 1000000000u) >> (r & 0x7F));
    else if (r <= 9) ns = (__int128)((unsigned __int128)t * NL_POW10[9 - r]);
    else ns = (__int128)(t / NL_POW10[r - 9]);
    return ns + (__int128)i->tsoffset * 1000000000;
}

static inline void nl_set_ts(nl_frame *f, __int128 ns) {
    f->ts_ns = (uint64_t)ns;
    f->ts_hi = (int64_t)(ns >> 64); /* arithmetic shift: floor, so negative times work */
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
static inline uint64_t nl_rd64(const nl_reader *r, const uint8_t *p) {
    return r->le ? ((uint64_t)nl_le32(p + 4) << 32) | nl_le32(p)
                 : ((uint64_t)nl_be32(p) << 32) | nl_be32(p + 4);
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

/* What nl_reader_init may have allocated since (the pcapng interface table). */
static void nl_reader_free(nl_reader *r) {
    free(r->ifs);
    r->ifs = NULL;
    r->n_if = r->cap_if = 0;
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
    /* 32-bit seconds: at most 2106, well inside 64 bits of nanoseconds */
    f->ts_ns = (uint64_t)nl_rd32(r, h) * 1000000000u + (uint64_t)nl_rd32(r, h + 4) * r->frac_mult;
    f->ts_hi = 0;
    f->caplen = caplen;
    f->wirelen = nl_rd32(r, h + 12);
    f->ifid = 0;
    f->linktype = r->linktype;
    f->offset = r->pos + 16;
    r->pos += 16 + (size_t)caplen;
    return 1;
}

/* Interface description block: link type, snaplen, if_tsresol (9), if_tsoffset (14). */
static int nl_read_idb(nl_reader *r, const uint8_t *b, uint32_t total) {
    char msg[160];
    if (total < 20) {
        snprintf(msg, sizeof msg, "bad interface block length %u", total);
        return nl_fail(r, r->pos, msg);
    }
    nl_iface i = {nl_rd32(r, b + 12), nl_rd16(r, b + 8), 6 /* microseconds */, 0};
    size_t o = 16, end = total - 4;
    while (o + 4 <= end) {
        uint16_t code = nl_rd16(r, b + o), olen = nl_rd16(r, b + o + 2);
        if (code == 0) break;
        if (o + 4 + olen > end) break; /* a damaged option list: keep the defaults */
        if (code == 9 && olen >= 1) i.tsres = b[o + 4];
        if (code == 14 && olen == 8) i.tsoffset = (int64_t)nl_rd64(r, b + o + 4);
        o += 4 + (((size_t)olen + 3) & ~(size_t)3);
    }
    if (!nl_tsres_ok(i.tsres)) {
        snprintf(msg, sizeof msg, "unsupported timestamp resolution 0x%02x", i.tsres);
        return nl_fail(r, r->pos, msg);
    }
    if (r->n_if == r->cap_if) { /* any number of interfaces: the table grows */
        uint32_t ncap = r->cap_if ? r->cap_if * 2 : 8;
        nl_iface *t = (nl_iface *)realloc(r->ifs, ncap * sizeof *t);
        if (!t) return nl_fail(r, r->pos, "no memory for the interface table");
        r->ifs = t;
        r->cap_if = ncap;
    }
    r->ifs[r->n_if++] = i;
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
            if (ifid >= r->n_if) {
                snprintf(msg, sizeof msg, "packet block names interface %u, only %u defined",
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
            nl_set_ts(f, nl_ts_to_ns(t, &r->ifs[ifid]));
            f->caplen = caplen;
            f->wirelen = nl_rd32(r, b + 24);
            f->ifid = ifid;
            f->linktype = r->ifs[ifid].link;
            f->offset = r->pos + 28;
            r->pos += total;
            return 1;
        } else if (type == 3) {
            /* simple packet block: no timestamp, interface 0, cut to its snaplen */
            if (total < 16) {
                snprintf(msg, sizeof msg, "bad packet block length %u", total);
                return nl_fail(r, r->pos, msg);
            }
            if (r->n_if < 1) return nl_fail(r, r->pos, "simple packet block before any interface");
            uint32_t wire = nl_rd32(r, b + 8);
            uint32_t cap = total - 16, snap = r->ifs[0].snaplen;
            if (wire < cap) cap = wire;
            if (snap && snap < cap) cap = snap;
            f->caplen = cap < NL_MAX_CAPLEN ? cap : NL_MAX_CAPLEN;
            f->ts_ns = 0;
            f->ts_hi = 0;
            f->wirelen = wire;
            f->ifid = 0;
            f->linktype = r->ifs[0].link;
            f->offset = r->pos + 12;
            r->pos += total;
            return 1;
        }
        /* statistics, name resolution, custom... blocks: skipped */
        r->pos += total;
    }
}

/* Memory: a mapped file's pages stay in the process's RSS once touched, so a
 * walk over a mapping (r->release, set only for netlab's own read-only shared
 * file mappings) gives back every NL_RELEASE_STEP bytes it has passed. The
 * bytes stay readable: the kernel pages them in again from the file. */

static void nl_release(nl_reader *r, size_t upto) {
#ifdef MADV_DONTNEED
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    upto &= ~(page - 1);
    if (upto > r->released)
        madvise((void *)(uintptr_t)(r->buf + r->released), upto - r->released, MADV_DONTNEED);
#endif
    r->released = upto;
}

/* Next frame: 1 with *f filled, 0 at the clean end, -1 on damage (r->err, r->err_off). */
static inline int nl_reader_next(nl_reader *r, nl_frame *f) {
    int rc = r->format == NL_PCAP ? nl_next_pcap(r, f) : nl_next_pcapng(r, f);
    if (rc == 1 && r->release && f->offset - r->released >= NL_RELEASE_STEP)
        nl_release(r, f->offset);
    return rc;
}

/* ---------------------------------------------------------------- decoding */

typedef struct {
    int ethertype;   /* -1: the link layer names none (unknown link type, 802.11 control...) */
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
    uint32_t covered = seg; /* what the checksum covers: the segment, or the UDP length */
    k->l4_off = o;
    k->payload_off = o;
    k->payload_len = seg;
    const uint8_t *q = p + o;
    if ((k->proto == 6 || k->proto == 17) && seg >= 4 && seg < (k->proto == 6 ? 20u : 8u)) {
        /* Cut inside the header: its first four bytes still name the ports, as
         * tshark and tcpdump show them. */
        k->sport = nl_be16(q);
        k->dport = nl_be16(q + 2);
        k->status |= NL_S_TRUNC | NL_S_L4_PART;
        return;
    }
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
    case 17: {
        if (seg < 8) { k->status |= NL_S_TRUNC; return; }
        k->sport = nl_be16(q);
        k->dport = nl_be16(q + 2);
        /* RFC 768: the UDP length ends the datagram, bytes after it are not
         * payload. 0 belongs to a jumbogram (RFC 2675) or a GSO super-packet
         * longer than 65535: the IP length rules then. */
        uint32_t ulen = nl_be16(q + 4);
        if (ulen == 0 && seg > 0xFFFF) ulen = seg;
        else if (ulen < 8) { k->status |= NL_S_MALFORMED; ulen = seg; }
        else if (ulen > seg) {
            if (!(k->status & NL_S_TRUNC)) k->status |= NL_S_MALFORMED; /* not a short capture */
            ulen = seg;
        }
        covered = ulen;
        k->payload_off = o + 8;
        k->payload_len = ulen - 8;
        break;
    }
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
    if (!checks || (k->status & (NL_S_TRUNC | NL_S_FRAG | NL_S_MALFORMED))) return;
    /* Verify the transport checksum over the whole segment (RFC 793/768/792/4443). */
    uint64_t s = 0;
    int alen = k->family == 4 ? 4 : 16;
    if (k->proto == 17 && k->family == 4 && nl_be16(q + 6) == 0) {
        k->status |= NL_S_L4CSUM_OK; /* "no checksum computed" (RFC 768) */
        return;
    }
    if (!(k->proto == 1)) { /* everything but ICMPv4 covers a pseudo-header */
        s = nl_sum(k->src, alen) + nl_sum(k->dst, alen) + (uint32_t)k->proto + (covered & 0xFFFF) +
            (covered >> 16);
    }
    s += nl_sum(q, covered);
    k->status |= (nl_fold(s) == 0xFFFF) ? NL_S_L4CSUM_OK : NL_S_L4CSUM_BAD;
}

static void nl_ipv4(const uint8_t *p, uint32_t n, uint32_t o, int checks, nl_pkt *k) {
    if (n - o < 20) { k->status |= NL_S_TRUNC; return; }
    const uint8_t *q = p + o;
    if ((q[0] >> 4) != 4) { k->status |= NL_S_MALFORMED; return; }
    uint32_t ihl = (uint32_t)(q[0] & 15) * 4;
    if (ihl < 20) { k->status |= NL_S_MALFORMED; return; }
    k->family = 4;
    memcpy(k->src, q + 12, 4);
    memcpy(k->dst, q + 16, 4);
    k->proto = q[9];
    if (n - o < ihl) { k->status |= NL_S_TRUNC; return; } /* options cut: addresses stay */
    uint32_t tl = nl_be16(q + 2), end;
    if (tl == 0) {
        /* Total length 0: a TSO / large-send or BIG TCP packet captured before
         * the NIC cut it up; its length is what was captured (as Wireshark and
         * tcpdump read it). */
        end = n;
    } else {
        if (tl < ihl) { k->status |= NL_S_MALFORMED; return; }
        end = o + tl;
        if (end > n) { end = n; k->status |= NL_S_TRUNC; }
    }
    if (ihl > 20) k->status |= NL_S_IPOPT;
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

/* RFC 2675: an IPv6 payload length of 0 with a Jumbo Payload option (type
 * 0xC2) in the hop-by-hop header at p[h]; returns the 32-bit length, 0 if none. */
static uint32_t nl_jumbo(const uint8_t *p, uint32_t n, uint32_t h) {
    if (n - h < 8) return 0;
    uint32_t end = h + ((uint32_t)p[h + 1] + 1) * 8, o = h + 2;
    if (end > n) return 0;
    while (o < end) {
        if (p[o] == 0) { o++; continue; } /* Pad1 */
        if (end - o < 2 || end - o - 2 < p[o + 1]) return 0;
        if (p[o] == 0xC2 && p[o + 1] == 4) return nl_be32(p + o + 2);
        o += 2 + (uint32_t)p[o + 1];
    }
    return 0;
}

static void nl_ipv6(const uint8_t *p, uint32_t n, uint32_t o, int checks, nl_pkt *k) {
    if (n - o < 40) { k->status |= NL_S_TRUNC; return; }
    const uint8_t *q = p + o;
    if ((q[0] >> 4) != 6) { k->status |= NL_S_MALFORMED; return; }
    k->family = 6;
    memcpy(k->src, q + 8, 16);
    memcpy(k->dst, q + 24, 16);
    uint64_t plen = nl_be16(q + 4);
    if (plen == 0 && q[6] == 0) plen = nl_jumbo(p, n, o + 40);
    if (plen == 0) plen = n - o - 40; /* 0 and no jumbo option: TSO, as for IPv4 */
    uint32_t end = (uint32_t)(plen > n - o - 40 ? n : o + 40 + plen);
    if (plen > n - o - 40) k->status |= NL_S_TRUNC;
    if (checks) k->status |= NL_S_CHECKED;
    uint32_t nh = q[6], cur = o + 40;
    /* Walk every extension header (RFC 8200 section 4): each is 8 bytes or
     * more, so the walk ends with the packet. */
    for (;;) {
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

/* --- link layers: each finds the ethertype and where the network header starts */

/* The chain of Ethernet-style types from p[*off] on, until IP or a type it
 * does not step through: 802.1Q/802.1ad VLAN tags (any number), MPLS
 * (RFC 3032; IP or an Ethernet pseudowire with control word after the label
 * stack), PPPoE session (RFC 2516), 802.1ah PBB, Cisco FabricPath, and an
 * 802.3 length followed by 802.2 LLC/SNAP. Every step moves *off forward. */
static int nl_ether_chain(const uint8_t *p, uint32_t n, uint32_t *offp, int et, nl_pkt *k) {
    uint32_t off = *offp;
    for (;;) {
        uint32_t left = n - off;
        if (et == NL_ETH_VLAN || et == NL_ETH_QINQ || et == 0x9100) {
            if (left < 4) goto cut;
            k->status |= NL_S_VLAN;
            et = nl_be16(p + off + 2);
            off += 4;
        } else if (et == NL_ETH_MPLS || et == 0x8848) {
            uint32_t o = off;
            do {
                if (n - o < 4) goto cut;
                o += 4;
            } while (!(p[o - 2] & 1)); /* bottom of stack bit */
            if (n - o < 1) goto cut;
            uint8_t v = p[o] >> 4;
            if (v == 4) et = NL_ETH_IPV4;
            else if (v == 6) et = NL_ETH_IPV6;
            else if (v == 0 && n - o >= 18) { et = nl_be16(p + o + 16); o += 18; }
            else break; /* another payload: the record keeps the MPLS type */
            off = o;
        } else if (et == NL_ETH_PPPOE) {
            if (left < 8) goto cut;
            uint16_t ppp = nl_be16(p + off + 6);
            if (ppp != 0x0021 && ppp != 0x0057) break; /* LCP, IPCP...: not IP */
            et = ppp == 0x0021 ? NL_ETH_IPV4 : NL_ETH_IPV6;
            off += 8;
        } else if (et == 0x88E7) { /* I-TAG, then the customer's addresses and type */
            if (left < 18) goto cut;
            et = nl_be16(p + off + 16);
            off += 18;
        } else if (et == 0x8903) { /* FTag/TTL, then the inner addresses and type */
            if (left < 16) goto cut;
            et = nl_be16(p + off + 14);
            off += 16;
        } else if (et < 0x0600) { /* 802.3 length: an LLC header; SNAP carries a type */
            if (left < 8 || p[off] != 0xAA || p[off + 1] != 0xAA || p[off + 2] != 0x03 ||
                p[off + 3] != 0 || p[off + 4] != 0 || (p[off + 5] != 0 && p[off + 5] != 0xF8))
                break;
            et = nl_be16(p + off + 6);
            off += 8;
        } else {
            break;
        }
    }
    *offp = off;
    return et;
cut:
    k->status |= NL_S_TRUNC;
    return -1;
}

/* An 802.2 LLC header at p[*off] (FDDI, 802.11): its SNAP type, -1 when none. */
static inline int nl_llc(const uint8_t *p, uint32_t n, uint32_t *offp, nl_pkt *k) {
    int et = nl_ether_chain(p, n, offp, 0, k);
    return et == 0 ? -1 : et;
}

/* A BSD address family (loopback, enc, pflog): IPv4, IPv6 (Linux, the BSDs, macOS), 0 otherwise. */
static inline int nl_af_type(uint32_t af) {
    return af == 2 ? NL_ETH_IPV4 : (af == 10 || af == 24 || af == 28 || af == 30) ? NL_ETH_IPV6 : 0;
}

static inline int nl_ppp_type(uint32_t proto) {
    return proto == 0x0021 ? NL_ETH_IPV4 : proto == 0x0057 ? NL_ETH_IPV6 : proto == 0x0281 ? NL_ETH_MPLS : -1;
}

/* IEEE 802.11 data frames; management, control, protected and null frames carry no type. */
static int nl_wlan(const uint8_t *p, uint32_t n, uint32_t *offp, int datapad, nl_pkt *k) {
    uint32_t o = *offp;
    if (n - o < 2) { k->status |= NL_S_TRUNC; return -1; }
    uint8_t fc = p[o], fl = p[o + 1];
    if (((fc >> 2) & 3) != 2 || (fc & 0x40) || (fl & 0x40)) return -1;
    uint32_t hl = 24;
    if ((fl & 3) == 3) hl += 6;           /* to and from the DS: a fourth address */
    if (fc & 0x80) {                      /* QoS data: QoS control ... */
        hl += 2;
        if (fl & 0x80) hl += 4;           /* ... and an HT control field (+HTC) */
    }
    if (datapad) hl = (hl + 3) & ~3u;     /* radiotap: padded to 32 bits */
    if (n - o < hl) { k->status |= NL_S_TRUNC; return -1; }
    *offp = o + hl;
    return nl_llc(p, n, offp, k);
}

/* Radiotap's Flags field (bit 1 of the first presence word, after TSFT). */
static uint8_t nl_radiotap_flags(const uint8_t *p, uint32_t len) {
    uint32_t present = nl_le32(p + 4), w = present, o = 8;
    while ((w & 0x80000000u) && len - o >= 4) { w = nl_le32(p + o); o += 4; }
    if (!(present & 2)) return 0;
    if (present & 1) o = ((o + 7) & ~7u) + 8;
    return o < len ? p[o] : 0;
}

static inline int nl_arcnet_type(uint8_t t) {
    return (t == 0xF0 || t == 0xD4) ? NL_ETH_IPV4 : (t == 0xF1 || t == 0xD5) ? NL_ETH_ARP
         : t == 0xD6 ? 0x8035 : t == 0xC4 ? NL_ETH_IPV6 : -1;
}

static int nl_link(const uint8_t *p, uint32_t n, int linktype, uint32_t *offp, nl_pkt *k, int nested);

/* A header that names the link type of the frame inside it (PPI, PKTAP). */
static int nl_inner(const uint8_t *p, uint32_t n, uint32_t hl, uint32_t dlt, uint32_t *offp,
                    nl_pkt *k, int nested) {
    if (nested || dlt > 0xFFFF) return -1;
    if (hl > n) { k->status |= NL_S_TRUNC; return -1; }
    uint32_t off = 0;
    int et = nl_link(p + hl, n - hl, (int)dlt, &off, k, 1);
    *offp = hl + off;
    return et;
}

#define NL_NEED(x) do { if (n < (x)) { k->status |= NL_S_TRUNC; return -1; } } while (0)

static int nl_link(const uint8_t *p, uint32_t n, int linktype, uint32_t *offp, nl_pkt *k, int nested) {
    uint32_t off = 0, v;
    int et;
    switch (linktype) {
    case 1: /* Ethernet */
        NL_NEED(14);
        off = 14;
        et = nl_ether_chain(p, n, &off, nl_be16(p + 12), k);
        break;
    case 113: /* Linux cooked capture v1 */
        NL_NEED(16);
        off = 16;
        et = nl_ether_chain(p, n, &off, nl_be16(p + 14), k);
        break;
    case 276: /* Linux cooked capture v2 */
        NL_NEED(20);
        off = 20;
        et = nl_ether_chain(p, n, &off, nl_be16(p), k);
        break;
    case 0: case 108: /* BSD loopback (writer's byte order), OpenBSD loopback (network order) */
        NL_NEED(4);
        off = 4;
        if (p[0] == 0xFF && p[1] == 0x03) { et = nl_ppp_type(nl_be16(p + 2)); break; }
        v = nl_le32(p);
        if (v > 0xFFFF) v = nl_be32(p);
        if (v > 0xFFFF) v = nl_be16(p + 2); /* address, control, ethertype: Cisco HDLC style */
        if (v > 1500) et = nl_ether_chain(p, n, &off, (int)v, k); /* an ethertype, not a family */
        else et = nl_af_type(v);
        break;
    case 109: /* OpenBSD enc: address family (writer's byte order), SPI, flags */
        NL_NEED(12);
        off = 12;
        v = nl_le32(p);
        et = nl_af_type(v > 0xFFFF ? nl_be32(p) : v);
        break;
    case 117: /* pflog: header length, address family, ...; the packet 32-bit aligned after it */
        NL_NEED(4);
        if (p[0] < 4) { k->status |= NL_S_MALFORMED; return -1; }
        off = ((uint32_t)p[0] + 3) & ~3u;
        NL_NEED(off);
        et = nl_af_type(p[1]);
        break;
    case 6: /* IEEE 802.5 Token Ring: AC, FC, addresses, source routing; LLC frames only */
        NL_NEED(14);
        if ((p[1] & 0xC0) != 0x40) return -1;
        off = 14;
        if (p[8] & 0x80) { /* routing information field: its length is in its first byte */
            NL_NEED(15);
            off += p[14] & 0x1F;
        }
        NL_NEED(off);
        et = nl_llc(p, n, &off, k);
        break;
    case 123: /* SunATM: flags (traffic type in the low 4 bits), VPI, VCI; then LLC or LANE */
        NL_NEED(4);
        off = 4;
        if ((p[0] & 0x0F) == 2) { et = nl_llc(p, n, &off, k); break; }
        if ((p[0] & 0x0F) != 1) return -1;
        NL_NEED(20); /* LANE: a 2-byte LE client id, then an Ethernet header */
        off = 20;
        et = nl_ether_chain(p, n, &off, nl_be16(p + 18), k);
        break;
    case 163: /* AVS: its header length at bytes 4-7, then 802.11 */
        NL_NEED(8);
        v = nl_be32(p + 4);
        if (v < 8) { k->status |= NL_S_MALFORMED; return -1; }
        NL_NEED(v);
        off = v;
        et = nl_wlan(p, n, &off, 0, k);
        break;
    case 11: /* RFC 1483 LLC-encapsulated ATM: LLC/SNAP right away */
        et = nl_llc(p, n, &off, k);
        break;
    case 219: /* an MPLS label stack right away */
        et = nl_ether_chain(p, n, &off, NL_ETH_MPLS, k);
        break;
    case 204: case 205: /* a direction byte, then PPP or Cisco HDLC */
        NL_NEED(1);
        return nl_inner(p, n, 1, linktype == 204 ? 9 : 104, offp, k, nested);
    case 12: case 14: case 101: /* raw IP */
        NL_NEED(1);
        et = (p[0] >> 4) == 4 ? NL_ETH_IPV4 : (p[0] >> 4) == 6 ? NL_ETH_IPV6 : 0;
        break;
    case 228: et = NL_ETH_IPV4; break;
    case 229: et = NL_ETH_IPV6; break;
    case 9: case 50: /* PPP (RFC 1661), PPP in HDLC-like framing (RFC 1662) */
        if (n >= 4 && (p[0] == 0x0F || p[0] == 0x8F) && p[1] == 0) { /* Cisco HDLC framing */
            off = 4;
            et = nl_ether_chain(p, n, &off, nl_be16(p + 2), k);
            break;
        }
        if (n >= 2 && p[0] == 0xFF && p[1] == 0x03) off = 2;
        NL_NEED(off + 1);
        if (p[off] & 1) { et = nl_ppp_type(p[off]); off += 1; } /* compressed protocol field */
        else { NL_NEED(off + 2); et = nl_ppp_type(nl_be16(p + off)); off += 2; }
        break;
    case 51: /* PPPoE session header, then PPP */
        NL_NEED(8);
        off = 8;
        et = nl_ppp_type(nl_be16(p + 6));
        break;
    case 104: /* Cisco HDLC: address, control, ethertype */
        NL_NEED(4);
        off = 4;
        et = nl_ether_chain(p, n, &off, nl_be16(p + 2), k);
        break;
    case 107: /* Frame Relay: Q.922 address (2-4 bytes), then RFC 2427 or Cisco framing */
        NL_NEED(2);
        off = 2;
        while (!(p[off - 1] & 1) && off < 4) { NL_NEED(off + 1); off++; }
        NL_NEED(off + 1);
        if (p[off] != 0x03) { /* Cisco: an ethertype */
            NL_NEED(off + 2);
            off += 2;
            et = nl_ether_chain(p, n, &off, nl_be16(p + off - 2), k);
            break;
        }
        off++;
        if (n > off && p[off] == 0) off++; /* padding before the NLPID */
        NL_NEED(off + 1);
        v = p[off++];
        if (v == 0xCC) et = NL_ETH_IPV4;
        else if (v == 0x8E) et = NL_ETH_IPV6;
        else if (v == 0x80) { /* SNAP: OUI, then the type */
            NL_NEED(off + 5);
            off += 5;
            et = p[off - 5] || p[off - 4] || p[off - 3] ? -1 : nl_ether_chain(p, n, &off, nl_be16(p + off - 2), k);
        } else et = -1;
        break;
    case 10: /* FDDI: frame control, addresses; LLC frames only */
        NL_NEED(13);
        if ((p[0] & 0x30) != 0x10) return -1;
        off = 13;
        et = nl_llc(p, n, &off, k);
        break;
    case 105: /* IEEE 802.11 */
        et = nl_wlan(p, n, &off, 0, k);
        break;
    case 127: /* radiotap, then 802.11 */
        NL_NEED(8);
        off = nl_le16(p + 2);
        if (off < 8) { k->status |= NL_S_MALFORMED; return -1; }
        NL_NEED(off);
        et = nl_wlan(p, n, &off, nl_radiotap_flags(p, off) & 0x20, k);
        break;
    case 192: /* PPI: header length, then the inner link type */
        NL_NEED(8);
        return nl_inner(p, n, nl_le16(p + 2), nl_le32(p + 4), offp, k, nested);
    case 258: /* Apple PKTAP: header length and inner link type, in the writer's byte order */
        NL_NEED(8);
        v = nl_le32(p);
        if (v > 0xFFFF) return nl_inner(p, n, nl_be32(p), nl_be32(p + 4), offp, k, nested);
        return nl_inner(p, n, v, nl_le32(p + 4), offp, k, nested);
    case 239: /* Linux NFLOG: family, version, resource id, then TLVs in host order */
        NL_NEED(4);
        v = p[0];
        for (off = 4; n - off >= 4;) {
            uint32_t tlen = nl_le16(p + off), type = nl_le16(p + off + 2) & 0x7FFF;
            if (tlen < 4) return -1;
            if (type == 9) { /* NFULA_PAYLOAD: the packet, from its IP header on */
                off += 4;
                *offp = off;
                return v == 2 ? NL_ETH_IPV4 : v == 10 ? NL_ETH_IPV6 : -1;
            }
            off += (tlen + 3) & ~3u;
            if (off > n) break;
        }
        return -1;
    case 242: /* IP over InfiniBand: RFC 4391's 4 bytes, or Linux's 44 (addresses first) */
        NL_NEED(4);
        off = 4;
        if (nl_be16(p) < 0x0600 && n >= 44 && nl_be16(p + 40) >= 0x0600) off = 44;
        et = nl_ether_chain(p, n, &off, nl_be16(p + off - 4), k);
        break;
    case 7: case 129: { /* ARCnet: BSD (source, destination, type) or Linux (+2 offset bytes) */
        uint32_t t = linktype == 7 ? 2 : 4;
        NL_NEED(t + 1);
        et = nl_arcnet_type(p[t]);
        off = t + 1;
        if (p[t] != 0xF0 && p[t] != 0xF1) { /* RFC 1201: split flag and sequence number */
            NL_NEED(off + 3);
            if (p[off] == 0xFF) { NL_NEED(off + 7); off += 7; } /* an exception packet */
            else off += 3;
        }
        break;
    }
    case 226: /* Solaris ipnet: version, family, ..., 24 bytes */
        NL_NEED(24);
        off = 24;
        et = p[1] == 2 ? NL_ETH_IPV4 : p[1] == 26 ? NL_ETH_IPV6 : -1;
        break;
    default:
        return -1;
    }
    *offp = off;
    return et;
}

/* Decode one frame of the given link type into *k. Never fails: problems are status bits. */
static void nl_decode(const uint8_t *p, uint32_t n, int linktype, int checks, nl_pkt *k) {
    uint32_t off = 0;
    k->family = 0;
    k->proto = -1;
    k->sport = k->dport = k->flags = k->seq = k->ack = 0;
    k->l4_off = k->payload_off = k->payload_len = 0;
    k->status = 0;
    int et = nl_link(p, n, linktype, &off, k, 0);
    k->ethertype = et;
    if (off > n) { k->status |= NL_S_TRUNC; return; }
    if (et == NL_ETH_IPV4) nl_ipv4(p, n, off, checks, k);
    else if (et == NL_ETH_IPV6) nl_ipv6(p, n, off, checks, k);
}

/* ------------------------------------------------------------- aggregation */

/* TCP flow state bits: NL_T_* of fields.h (T_* in netlab/packet/fields.py). */

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
        if (k->ethertype == NL_ETH_ARP) { g->arp_pk++; g->arp_by += w; }
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
