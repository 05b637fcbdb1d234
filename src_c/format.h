/*
 * format.h: `netlab dissect` output built in C, the compiled twin of
 * netlab/packet/pure/format.py (the readable reference: every rule here has its
 * twin there, and tests/test_dissect_format.py compares the bytes of both).
 *
 * Three pieces, each a plain C function over walk.h's nl_frame / nl_pkt:
 *   - nl_line / nl_json: one packet as its text line or its JSON object,
 *     appended to a growing byte buffer (no Python object per field);
 *   - nl_note: the handshake / teardown notes (a small flow table);
 *   - nl_match: the --filter program (netlab/packet/pfilter.py compiles it).
 *
 * Needs Python.h before it (the Cython module includes it): the "ts" float
 * of the JSON is written by CPython's own float repr, so it is the very text
 * json.dumps writes.
 */
#ifndef NETLAB_FORMAT_H
#define NETLAB_FORMAT_H

#include <arpa/inet.h>
#include <time.h>

#include "walk.h"

/* ----------------------------------------------------------- byte buffer */

typedef struct {
    char *p;
    size_t len, cap;
} nl_buf;

/* Room for `more` bytes; -1 when out of memory. */
static int nl_reserve(nl_buf *b, size_t more) {
    if (b->len + more <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more) cap *= 2;
    char *p = (char *)realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* The writers below assume room was reserved (nl_reserve) for the worst case. */
static inline void nl_put(nl_buf *b, const char *s, size_t n) { memcpy(b->p + b->len, s, n); b->len += n; }
static inline void nl_puts(nl_buf *b, const char *s) { nl_put(b, s, strlen(s)); }
static inline void nl_putc(nl_buf *b, char c) { b->p[b->len++] = c; }

static void nl_putu(nl_buf *b, uint64_t v) {
    char tmp[24];
    int i = 24;
    do { tmp[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    nl_put(b, tmp + i, (size_t)(24 - i));
}

static const char NL_HEX[] = "0123456789abcdef";

static inline void nl_hex2(nl_buf *b, unsigned v) {
    b->p[b->len++] = NL_HEX[(v >> 4) & 15];
    b->p[b->len++] = NL_HEX[v & 15];
}

/* ------------------------------------------------------------- addresses */

/* The address as Python's socket.inet_ntop spells it (the records' src/dst). */
static void nl_addr(nl_buf *b, int family, const uint8_t *a) {
    if (family == 4) {
        for (int i = 0; i < 4; i++) {
            if (i) nl_putc(b, '.');
            nl_putu(b, a[i]);
        }
        return;
    }
    char tmp[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, a, tmp, sizeof tmp);
    nl_puts(b, tmp);
}

/* "addr:port", "[v6]:port" or "addr" (no port) - dissect.py's _endpoint. */
static void nl_endpoint(nl_buf *b, int family, const uint8_t *a, int has_port, uint32_t port) {
    if (!has_port) { nl_addr(b, family, a); return; }
    if (family == 6) nl_putc(b, '[');
    nl_addr(b, family, a);
    if (family == 6) nl_putc(b, ']');
    nl_putc(b, ':');
    nl_putu(b, port);
}

/* ----------------------------------------------------------------- names */

static const char *nl_proto_name(int p) {
    switch (p) {
    case 1: return "icmp"; case 2: return "igmp"; case 6: return "tcp"; case 17: return "udp";
    case 41: return "ipv6-in-ip"; case 47: return "gre"; case 50: return "esp"; case 51: return "ah";
    case 58: return "icmp6"; case 89: return "ospf"; case 103: return "pim"; case 132: return "sctp";
    }
    return NULL;
}

/* proto_label in lower case (JSON) or upper case (text), e.g. "tcp", "IP-47", "ETHER-0X88CC". */
static void nl_label(nl_buf *b, const nl_frame *f, const nl_pkt *k, int upper) {
    char tmp[40];
    const char *name;
    if (k->proto >= 0) {
        name = nl_proto_name(k->proto);
        if (!name) { snprintf(tmp, sizeof tmp, "ip-%d", k->proto); name = tmp; }
    } else if (k->ethertype == NL_ETH_ARP) {
        name = "arp";
    } else if (k->family) {
        name = "ip";
    } else if (k->ethertype < 0) {
        snprintf(tmp, sizeof tmp, "link-%d", f->linktype);
        name = tmp;
    } else {
        snprintf(tmp, sizeof tmp, "ether-0x%04x", k->ethertype);
        name = tmp;
    }
    for (const char *c = name; *c; c++)
        nl_putc(b, (char)(upper && *c >= 'a' && *c <= 'z' ? *c - 32 : *c));
}

static const char *const NL_FLAGS[9] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS"};

static void nl_flag_list(nl_buf *b, uint32_t flags, const char *open, const char *sep,
                         const char *close, int quoted) {
    int first = 1;
    nl_puts(b, open);
    for (int i = 0; i < 9; i++) {
        if (!(flags >> i & 1)) continue;
        if (!first) nl_puts(b, sep);
        first = 0;
        if (quoted) nl_putc(b, '"');
        nl_puts(b, NL_FLAGS[i]);
        if (quoted) nl_putc(b, '"');
    }
    nl_puts(b, close);
}

/* Status words, in order, joined by sep ("truncated", "fragment", ...). */
static void nl_status_words(nl_buf *b, uint32_t s, const char *sep, int quoted) {
    static const uint32_t bits[5] = {NL_S_TRUNC, NL_S_FRAG, NL_S_MALFORMED, NL_S_IPCSUM_BAD, NL_S_L4CSUM_BAD};
    static const char *const words[5] = {"truncated", "fragment", "malformed", "bad-ip-checksum", "bad-checksum"};
    int first = 1;
    for (int i = 0; i < 5; i++) {
        if (!(s & bits[i])) continue;
        if (!first) nl_puts(b, sep);
        first = 0;
        if (quoted) nl_putc(b, '"');
        nl_puts(b, words[i]);
        if (quoted) nl_putc(b, '"');
    }
}

static const char *nl_icmp_name(int proto, uint32_t type) {
    if (proto == 1) {
        switch (type) {
        case 0: return "echo reply"; case 3: return "destination unreachable"; case 5: return "redirect";
        case 8: return "echo request"; case 11: return "time exceeded";
        }
        return NULL;
    }
    switch (type) {
    case 1: return "destination unreachable"; case 2: return "packet too big"; case 3: return "time exceeded";
    case 128: return "echo request"; case 129: return "echo reply"; case 133: return "router solicitation";
    case 134: return "router advertisement"; case 135: return "neighbor solicitation";
    case 136: return "neighbor advertisement";
    }
    return NULL;
}

/* --------------------------------------------------------------- payload */

static inline int nl_is_l4_proto(int p) { return p == 6 || p == 17 || p == 1 || p == 58; }

/* The payload bytes of a frame (none when the transport header is cut or broken). */
static uint32_t nl_payload(const nl_pkt *k, uint32_t caplen, uint32_t *off) {
    *off = k->payload_off;
    if (nl_is_l4_proto(k->proto) && !(k->status & NL_S_L4)) return 0;
    if (k->payload_off >= caplen) return 0;
    uint32_t n = k->payload_len, room = caplen - k->payload_off;
    return n < room ? n : room;
}

/* Payload bytes as readable text (dissect's _show): printable ASCII as is, the rest escaped. */
static void nl_show(nl_buf *b, const uint8_t *p, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        switch (c) {
        case '\t': nl_put(b, "\\t", 2); continue;
        case '\n': nl_put(b, "\\n", 2); continue;
        case '\r': nl_put(b, "\\r", 2); continue;
        case '\\': nl_put(b, "\\\\", 2); continue;
        case '\'': nl_put(b, "\\'", 2); continue;
        }
        if (c >= 0x20 && c < 0x7F) nl_putc(b, (char)c);
        else { nl_put(b, "\\x", 2); nl_hex2(b, c); }
    }
}

/* JSON-escaped (ensure_ascii) text of one code point. */
static void nl_json_cp(nl_buf *b, uint32_t cp) {
    if (cp >= 0x20 && cp < 0x7F) {
        if (cp == '"' || cp == '\\') nl_putc(b, '\\');
        nl_putc(b, (char)cp);
        return;
    }
    switch (cp) {
    case '\n': nl_put(b, "\\n", 2); return;
    case '\r': nl_put(b, "\\r", 2); return;
    case '\t': nl_put(b, "\\t", 2); return;
    case '\b': nl_put(b, "\\b", 2); return;
    case '\f': nl_put(b, "\\f", 2); return;
    }
    if (cp >= 0x10000) { /* a surrogate pair, as json.dumps writes it */
        cp -= 0x10000;
        nl_json_cp(b, 0xD800 | (cp >> 10));
        nl_json_cp(b, 0xDC00 | (cp & 0x3FF));
        return;
    }
    nl_put(b, "\\u", 2);
    nl_hex2(b, cp >> 8);
    nl_hex2(b, cp & 0xFF);
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when p[0] starts none. */
static int nl_utf8_len(const uint8_t *p, uint32_t n, uint32_t *cp) {
    uint8_t c = p[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if ((uint32_t)len > n || p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < len; i++) if ((p[i] & 0xC0) != 0x80) return 0;
    uint32_t v = c & (0xFF >> (len + 1));
    for (int i = 1; i < len; i++) v = (v << 6) | (p[i] & 0x3F);
    *cp = v;
    return len;
}

/* payload.decode("utf-8", "backslashreplace"), JSON-escaped: a byte outside any
 * valid sequence becomes the text \xNN (written \\xNN in JSON). */
static void nl_json_text(nl_buf *b, const uint8_t *p, uint32_t n) {
    uint32_t i = 0, cp;
    while (i < n) {
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') { nl_putc(b, (char)c); i++; continue; }
        int len = nl_utf8_len(p + i, n - i, &cp);
        if (len) { nl_json_cp(b, cp); i += (uint32_t)len; continue; }
        nl_put(b, "\\\\x", 3);
        nl_hex2(b, c);
        i++;
    }
}

/* -------------------------------------------------------------- the clock */

typedef struct {
    int64_t sec;     /* the second cached in hms, -1: none */
    char hms[16];
    int ok;
} nl_clock;

static void nl_time(nl_buf *b, nl_clock *c, uint64_t ts_ns) {
    int64_t sec = (int64_t)(ts_ns / 1000000000u);
    uint32_t us = (uint32_t)(ts_ns % 1000000000u) / 1000u;
    if (sec != c->sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        c->sec = sec;
        c->ok = localtime_r(&t, &tm) != NULL;
        if (c->ok) snprintf(c->hms, sizeof c->hms, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    if (c->ok) nl_puts(b, c->hms);
    else nl_putu(b, (uint64_t)sec);
    char frac[8];
    snprintf(frac, sizeof frac, ".%06u", us);
    nl_put(b, frac, 7);
}

/* -------------------------------------------------------------- TCP text */

/* "seq=.. ack=.. win=.. len=.. [mss 1460, sackOK, TS 1:2, wscale 7]" (dissect's _tcp_detail). */
static void nl_tcp_detail(nl_buf *b, const uint8_t *fr, uint32_t caplen, const nl_pkt *k) {
    uint32_t l4 = k->l4_off;
    nl_puts(b, "seq=");
    nl_putu(b, k->seq);
    if (k->flags & 0x10) { nl_puts(b, " ack="); nl_putu(b, k->ack); }
    if (l4 + 16 <= caplen) { nl_puts(b, " win="); nl_putu(b, nl_be16(fr + l4 + 14)); }
    nl_puts(b, " len=");
    nl_putu(b, k->payload_len);
    /* Options: frame[l4 + 20 : payload_off], parsed like tcp_options(). */
    uint32_t i = l4 + 20, end = k->payload_off < caplen ? k->payload_off : caplen;
    int shown = 0;
    while (i < end) {
        uint8_t kind = fr[i];
        if (kind == 0) break;
        if (kind == 1) { i++; continue; }
        nl_puts(b, shown++ ? ", " : " [");
        if (i + 1 >= end || fr[i + 1] < 2 || i + fr[i + 1] > end) { nl_puts(b, "bad"); break; }
        uint32_t len = fr[i + 1];
        const uint8_t *body = fr + i + 2;
        if (kind == 2 && len == 4) { nl_puts(b, "mss "); nl_putu(b, nl_be16(body)); }
        else if (kind == 3 && len == 3) { nl_puts(b, "wscale "); nl_putu(b, body[0]); }
        else if (kind == 4 && len == 2) nl_puts(b, "sackOK");
        else if (kind == 5 && (len - 2) % 8 == 0) {
            nl_puts(b, "sack ");
            for (uint32_t j = 0; j + 8 <= len - 2; j += 8) {
                if (j) nl_putc(b, ',');
                nl_putu(b, nl_be32(body + j));
                nl_putc(b, '-');
                nl_putu(b, nl_be32(body + j + 4));
            }
        } else if (kind == 8 && len == 10) {
            nl_puts(b, "TS ");
            nl_putu(b, nl_be32(body));
            nl_putc(b, ':');
            nl_putu(b, nl_be32(body + 4));
        } else { nl_puts(b, "opt-"); nl_putu(b, kind); }
        i += len;
    }
    if (shown) nl_putc(b, ']');
}

/* The packet an ICMP port unreachable quotes: 1 and its destination, protocol
 * and destination port, when the quoted IP header and 4 transport bytes are there. */
static int nl_quoted(const uint8_t *p, uint32_t n, int family, uint8_t *dst, int *proto, uint32_t *dport) {
    uint32_t hl;
    if (family == 4) {
        if (n < 20 || (p[0] >> 4) != 4 || (p[0] & 15) < 5) return 0;
        hl = (uint32_t)(p[0] & 15) * 4;
        *proto = p[9];
        memcpy(dst, p + 16, 4);
    } else {
        if (n < 40 || (p[0] >> 4) != 6) return 0;
        hl = 40;
        *proto = p[6];
        memcpy(dst, p + 24, 16);
    }
    if ((*proto != 6 && *proto != 17) || n < hl + 4) return 0;
    *dport = nl_be16(p + hl + 2);
    return 1;
}

/* ------------------------------------------------------------ one packet */

/* Worst case bytes of one line or JSON object of a frame of caplen bytes. */
static inline size_t nl_room(uint32_t caplen) { return (size_t)caplen * 8 + 4096; }

/* One packet as one line of text, newline included (dissect's packet_line). */
static void nl_line(nl_buf *b, nl_clock *c, uint64_t n, const nl_frame *f, const uint8_t *fr,
                    const nl_pkt *k, const char *note) {
    char num[24];
    snprintf(num, sizeof num, "%5llu  ", (unsigned long long)n);
    nl_puts(b, num);
    nl_time(b, c, f->ts_ns);
    nl_put(b, "  ", 2);
    int l4 = (k->status & NL_S_L4) != 0;
    if (!k->family) {
        nl_label(b, f, k, 1);
        nl_putc(b, ' ');
        nl_putu(b, f->caplen);
        nl_puts(b, " bytes");
    } else {
        int ports = l4 && (k->proto == 6 || k->proto == 17);
        int show = 1;
        nl_endpoint(b, k->family, k->src, ports, k->sport);
        nl_puts(b, " > ");
        nl_endpoint(b, k->family, k->dst, ports, k->dport);
        nl_put(b, "  ", 2);
        nl_label(b, f, k, 1);
        if (k->proto == 6 && l4) {
            nl_flag_list(b, k->flags, " [", ", ", "] ", 0);
            nl_tcp_detail(b, fr, f->caplen, k);
        } else if ((k->proto == 1 || k->proto == 58) && l4) {
            uint8_t qdst[16];
            int qproto;
            uint32_t qport, poff, plen = nl_payload(k, f->caplen, &poff);
            if (k->sport == (k->proto == 1 ? 3u : 1u) && k->dport == (k->proto == 1 ? 3u : 4u)
                    && nl_quoted(fr + poff, plen, k->family, qdst, &qproto, &qport)) {
                /* Like tcpdump: "127.0.0.1 udp port 9999 unreachable", not the quoted bytes. */
                nl_putc(b, ' ');
                nl_addr(b, k->family, qdst);
                nl_puts(b, qproto == 6 ? " tcp port " : " udp port ");
                nl_putu(b, qport);
                nl_puts(b, " unreachable");
                show = 0;
            } else {
                const char *name = nl_icmp_name(k->proto, k->sport);
                nl_putc(b, ' ');
                if (name) nl_puts(b, name);
                else { nl_puts(b, "type "); nl_putu(b, k->sport); }
            }
            nl_puts(b, " (code ");
            nl_putu(b, k->dport);
            nl_puts(b, ") len=");
            nl_putu(b, k->payload_len);
        } else if (!nl_is_l4_proto(k->proto) || l4) {
            nl_puts(b, " len=");
            nl_putu(b, k->payload_len);
        }
        if (show && k->payload_len && (!nl_is_l4_proto(k->proto) || l4)) {
            uint32_t poff, plen = nl_payload(k, f->caplen, &poff);
            nl_put(b, "  '", 3);
            nl_show(b, fr + poff, plen < 40 ? plen : 40);
            nl_putc(b, '\'');
            if (k->payload_len > 40) nl_put(b, "...", 3);
        }
    }
    if (k->status & (NL_S_TRUNC | NL_S_FRAG | NL_S_MALFORMED | NL_S_IPCSUM_BAD | NL_S_L4CSUM_BAD)) {
        nl_put(b, "  {", 3);
        nl_status_words(b, k->status, ", ", 0);
        nl_putc(b, '}');
    }
    if (note) { nl_puts(b, "  <- "); nl_puts(b, note); }
    nl_putc(b, '\n');
}

/* The JSON text of a string that needs no escaping, or null. */
static void nl_json_addr(nl_buf *b, int family, const uint8_t *a) {
    if (!family) { nl_puts(b, "null"); return; }
    nl_putc(b, '"');
    nl_addr(b, family, a);
    nl_putc(b, '"');
}

static void nl_json_num(nl_buf *b, int has, uint64_t v) {
    if (has) nl_putu(b, v);
    else nl_puts(b, "null");
}

/* One packet as json.dumps(packet_json(...)) writes it, newline included; -1: no memory. */
static int nl_json(nl_buf *b, uint64_t n, const nl_frame *f, const uint8_t *fr, const nl_pkt *k,
                   const char *note) {
    int l4 = nl_is_l4_proto(k->proto) && (k->status & NL_S_L4);
    int ports = (k->proto == 6 || k->proto == 17) && (k->status & NL_S_L4);
    uint32_t poff, plen = nl_payload(k, f->caplen, &poff);
    const uint8_t *pl = fr + poff;
    nl_puts(b, "{\"n\": ");
    nl_putu(b, n);
    nl_puts(b, ", \"ts\": ");
    char *ts = PyOS_double_to_string((double)f->ts_ns / 1e9, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!ts) return -1;
    nl_puts(b, ts);
    PyMem_Free(ts);
    nl_puts(b, ", \"ts_ns\": ");
    nl_putu(b, f->ts_ns);
    nl_puts(b, ", \"src\": ");
    nl_json_addr(b, k->family, k->src);
    nl_puts(b, ", \"dst\": ");
    nl_json_addr(b, k->family, k->dst);
    nl_puts(b, ", \"proto\": \"");
    nl_label(b, f, k, 0);
    nl_puts(b, "\", \"sport\": ");
    nl_json_num(b, ports, k->sport);
    nl_puts(b, ", \"dport\": ");
    nl_json_num(b, ports, k->dport);
    nl_puts(b, ", \"flags\": ");
    nl_flag_list(b, k->proto == 6 && l4 ? k->flags : 0, "[", ", ", "]", 1);
    nl_puts(b, ", \"length\": ");
    nl_putu(b, f->caplen);
    nl_puts(b, ", \"wirelen\": ");
    nl_putu(b, f->wirelen);
    nl_puts(b, ", \"payload\": \"");
    for (uint32_t i = 0; i < plen; i++) nl_hex2(b, pl[i]);
    nl_puts(b, "\", \"payload_len\": ");
    nl_putu(b, plen);
    nl_puts(b, ", \"payload_text\": \"");
    nl_json_text(b, pl, plen);
    nl_putc(b, '"');
    if (k->proto == 6 && l4) {
        nl_puts(b, ", \"seq\": ");
        nl_putu(b, k->seq);
        nl_puts(b, ", \"ack\": ");
        nl_putu(b, k->ack);
    }
    if ((k->proto == 1 || k->proto == 58) && l4) {
        nl_puts(b, ", \"icmp_type\": ");
        nl_putu(b, k->sport);
        nl_puts(b, ", \"icmp_code\": ");
        nl_putu(b, k->dport);
    }
    nl_puts(b, ", \"checksum\": ");
    nl_puts(b, k->status & NL_S_L4CSUM_OK ? "\"ok\"" : k->status & NL_S_L4CSUM_BAD ? "\"bad\"" : "null");
    nl_puts(b, ", \"status\": [");
    nl_status_words(b, k->status, ", ", 1);
    nl_puts(b, "], \"interface\": ");
    nl_putu(b, f->ifid);
    nl_puts(b, ", \"note\": ");
    if (note) { nl_putc(b, '"'); nl_puts(b, note); nl_putc(b, '"'); }  /* notes are plain ASCII */
    else nl_puts(b, "null");
    nl_puts(b, "}\n");
    return 0;
}

/* ------------------------------------------------------------- the notes */

/* Per TCP connection: where the handshake / teardown is (dissect's Annotator). */
typedef struct {
    nl_fkey key;
    uint8_t phase;   /* 0 new, 1 SYN, 2 SYN-ACK, 3 established, 4 FIN seen, 5 closed, 9 reset */
    uint8_t client;  /* 0 unknown, 1 the key's a end, 2 its b end */
    uint8_t fins;    /* bit 1: a sent FIN, bit 2: b did */
} nl_conn;

typedef struct {
    nl_conn *t;
    size_t cap, n;
} nl_notes;

static int nl_notes_init(nl_notes *s) {
    s->cap = 1024;
    s->n = 0;
    s->t = (nl_conn *)calloc(s->cap, sizeof(nl_conn));
    return s->t ? 0 : -1;
}

static void nl_notes_free(nl_notes *s) { free(s->t); s->t = NULL; }

static nl_conn *nl_conn_of(nl_notes *s, const nl_fkey *key) {
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap * 2;
        nl_conn *nt = (nl_conn *)calloc(ncap, sizeof(nl_conn));
        if (!nt) return NULL;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->t[i].key.used) continue;
            size_t j = nl_key_hash(&s->t[i].key) & (ncap - 1);
            while (nt[j].key.used) j = (j + 1) & (ncap - 1);
            nt[j] = s->t[i];
        }
        free(s->t);
        s->t = nt;
        s->cap = ncap;
    }
    size_t j = nl_key_hash(key) & (s->cap - 1);
    while (s->t[j].key.used && !nl_key_eq(&s->t[j].key, key)) j = (j + 1) & (s->cap - 1);
    if (!s->t[j].key.used) { s->t[j].key = *key; s->n++; }
    return &s->t[j];
}

/* The note of one packet (NULL: none). Sets *oom when the table cannot grow. */
static const char *nl_note(nl_notes *s, const nl_pkt *k, char *tmp, size_t tmplen, int *oom) {
    if (k->proto != 6 || !(k->status & NL_S_L4)) return NULL;
    nl_fkey key;
    memset(&key, 0, sizeof key);
    int alen = k->family == 4 ? 4 : 16;
    int c = memcmp(k->src, k->dst, alen);
    int me_a = c < 0 || (c == 0 && k->sport <= k->dport); /* the sender is the key's a end */
    memcpy(key.a, me_a ? k->src : k->dst, alen);
    memcpy(key.b, me_a ? k->dst : k->src, alen);
    key.pa = (uint16_t)(me_a ? k->sport : k->dport);
    key.pb = (uint16_t)(me_a ? k->dport : k->sport);
    key.proto = 6;
    key.family = (uint8_t)k->family;
    key.used = 1;
    nl_conn *cn = nl_conn_of(s, &key);
    if (!cn) { *oom = 1; return NULL; }
    uint8_t me = me_a ? 1 : 2;
    uint32_t fl = k->flags;
    if (fl & 0x04) {
        int refused = cn->phase == 1; /* the answer to a SYN is a RST */
        cn->phase = 9;
        if (refused) {
            snprintf(tmp, tmplen, "RST: connection refused (nothing listens on port %u)", k->sport);
            return tmp;
        }
        return "RST: connection reset (aborted)";
    }
    if ((fl & 0x02) && !(fl & 0x10)) {
        cn->client = me;
        cn->phase = 1;
        cn->fins = 0;
        return "SYN: handshake 1/3, the client asks to connect";
    }
    if (fl & 0x02) {
        cn->phase = 2;
        return "SYN-ACK: handshake 2/3, the server accepts";
    }
    if (fl & 0x01) {
        const char *who = cn->client == me ? "client" : cn->client ? "server" : "one side";
        cn->fins |= me;
        if (cn->phase < 4) cn->phase = 4;
        snprintf(tmp, tmplen, "FIN: teardown, the %s closes its direction", who);
        return tmp;
    }
    if ((fl & 0x10) && cn->phase == 2 && me == cn->client) {
        cn->phase = 3;
        return "ACK: handshake 3/3, connection established";
    }
    if ((fl & 0x10) && cn->phase == 4 && cn->fins == 3) {
        cn->phase = 5;
        return "ACK: teardown done, connection closed";
    }
    return NULL;
}

/* ------------------------------------------------------------ the filter */

/* One step of a --filter program in postfix order (netlab/packet/pfilter.py). */
enum { NL_F_PROTO, NL_F_IP, NL_F_IP6, NL_F_ARP, NL_F_PORT, NL_F_HOST, NL_F_NOT, NL_F_AND, NL_F_OR };

typedef struct {
    int op;
    int dir;          /* NL_F_PORT / NL_F_HOST: 0 either end, 1 src, 2 dst */
    int proto;        /* NL_F_PROTO */
    uint32_t port;    /* NL_F_PORT */
    int family;       /* NL_F_HOST: 4 or 6 */
    uint8_t addr[16];
} nl_fop;

static inline int nl_same_addr(const nl_pkt *k, const nl_fop *op, const uint8_t *a) {
    return k->family == op->family && memcmp(a, op->addr, op->family == 4 ? 4 : 16) == 0;
}

/* Does the packet match? `stack` has room for n entries. */
static int nl_match(const nl_fop *prog, size_t n, const nl_pkt *k, uint8_t *stack) {
    size_t sp = 0;
    for (size_t i = 0; i < n; i++) {
        const nl_fop *op = &prog[i];
        int v;
        switch (op->op) {
        case NL_F_PROTO: v = k->proto == op->proto; break;
        case NL_F_IP: v = k->ethertype == NL_ETH_IPV4 && k->family != 0; break;
        case NL_F_IP6: v = k->ethertype == NL_ETH_IPV6 && k->family != 0; break;
        case NL_F_ARP: v = k->ethertype == NL_ETH_ARP; break;
        case NL_F_PORT:
            v = (k->status & NL_S_L4) && (k->proto == 6 || k->proto == 17)
                && ((op->dir != 2 && k->sport == op->port) || (op->dir != 1 && k->dport == op->port));
            break;
        case NL_F_HOST:
            v = (op->dir != 2 && nl_same_addr(k, op, k->src)) || (op->dir != 1 && nl_same_addr(k, op, k->dst));
            break;
        case NL_F_NOT: stack[sp - 1] = !stack[sp - 1]; continue;
        case NL_F_AND: sp--; stack[sp - 1] = stack[sp - 1] && stack[sp]; continue;
        default: /* NL_F_OR */ sp--; stack[sp - 1] = stack[sp - 1] || stack[sp]; continue;
        }
        stack[sp++] = (uint8_t)v;
    }
    return sp ? stack[0] : 1;
}

/* The stats path over the packets a filter keeps (walk.h's nl_agg_run, filtered). */
static int nl_agg_run_filtered(nl_agg *g, nl_reader *r, int checks, const nl_fop *prog, size_t n,
                               uint8_t *stack) {
    nl_frame f;
    nl_pkt k;
    int rc;
    while ((rc = nl_reader_next(r, &f)) == 1) {
        nl_decode(r->buf + f.offset, f.caplen, f.linktype, checks, &k);
        if (nl_match(prog, n, &k, stack)) nl_agg_add(g, &f, &k);
    }
    return rc;
}

#endif /* NETLAB_FORMAT_H */
