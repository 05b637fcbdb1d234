"""Decode captured frames into compact records: the readable twin of ``walk.h``.

One frame becomes one tuple (a *record*, fields in :data:`RECORD_FIELDS`), the
same on both backends, so that ``dissect``, ``sniff`` and the tests can handle
millions of them cheaply. The walk goes link layer -> network -> transport:

* link: Ethernet (RFC 894) with up to two 802.1Q/802.1ad VLAN tags, Linux
  cooked capture v1 (16 bytes) and v2 (20 bytes), BSD loopback, raw IP;
* network: IPv4 (RFC 791; options flagged, fragments flagged, a later
  fragment carries no transport header) and IPv6 (RFC 8200; hop-by-hop,
  routing, destination options, AH and fragment headers walked);
* transport: TCP (RFC 9293), UDP (RFC 768), ICMP (RFC 792), ICMPv6 (RFC 4443).

Nothing here raises on bad bytes: a frame too short for a header gets the
``TRUNC`` status bit, an impossible field ``MALFORMED``, and the fields decoded
so far stay. With ``checks=True`` the IPv4 header checksum and the transport
checksum (RFC 1071, with the pseudo-header) are verified.

Offsets in a record (``l4_off``, ``payload_off``) count from the frame's first
byte, so the payload is ``frame[payload_off:payload_off + payload_len]`` and
nothing is copied until someone asks.
"""
from __future__ import annotations

import socket
import struct

from netlab._pycore.checksum import internet_checksum, pseudo_header_sum

__all__ = [
    "RECORD_FIELDS",
    "S_CHECKED", "S_EXTHDR", "S_FRAG", "S_IPCSUM_BAD", "S_IPOPT", "S_L4",
    "S_L4CSUM_BAD", "S_L4CSUM_OK", "S_MALFORMED", "S_TRUNC", "S_VLAN",
    "decode_frame", "tcp_options",
]

RECORD_FIELDS = (
    "offset",       # where the frame starts in the file (0 for a lone frame)
    "ts_ns",        # capture time, nanoseconds since 1970
    "caplen",       # bytes captured
    "wirelen",      # bytes on the wire
    "ifid",         # pcapng interface number (0 in pcap)
    "linktype",     # LINKTYPE_* of the frame (1 Ethernet, 113 SLL, 276 SLL2, 101 raw...)
    "ethertype",    # 0x0800, 0x86dd, 0x0806...; -1 when the link type is unknown
    "src",          # source address as text, None when not IP
    "dst",          # destination address as text
    "proto",        # IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6); -1 none
    "sport",        # source port (ICMP: type)
    "dport",        # destination port (ICMP: code)
    "flags",        # TCP flags, 9 bits (FIN=0x01 ... CWR=0x80, NS=0x100)
    "seq",          # TCP sequence number
    "ack",          # TCP acknowledgment number
    "l4_off",       # transport header offset in the frame (0 when none)
    "payload_off",  # transport payload offset in the frame
    "payload_len",  # transport payload length (captured bytes)
    "status",       # S_* bits below
)

S_L4 = 0x001          # transport header decoded: ports, flags valid
S_FRAG = 0x002        # an IP fragment
S_TRUNC = 0x004       # captured bytes end before a header or the IP length
S_MALFORMED = 0x008   # an impossible header field
S_VLAN = 0x010        # VLAN tag(s) walked
S_IPOPT = 0x020       # IPv4 options present
S_EXTHDR = 0x040      # IPv6 extension header(s) walked
S_CHECKED = 0x080     # checksums verified
S_IPCSUM_BAD = 0x100  # IPv4 header checksum wrong
S_L4CSUM_BAD = 0x200  # transport checksum wrong
S_L4CSUM_OK = 0x400   # transport checksum right

_H = struct.Struct(">H").unpack_from
_I = struct.Struct("<I").unpack_from
_IBE = struct.Struct(">I").unpack_from
_IP4 = struct.Struct(">BBHHHBBHII").unpack_from
_IP6 = struct.Struct(">BBHHBB").unpack_from
_TCP = struct.Struct(">HHIIBB").unpack_from
_PORTS = struct.Struct(">HH").unpack_from
_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_IP6_AF = (10, 24, 28, 30)  # AF_INET6 on Linux, the BSDs and macOS

# Address text is made once per address, not once per packet.
_names4: dict = {}
_names6: dict = {}


def _name4(value: int) -> str:
    name = _names4.get(value)
    if name is None:
        if len(_names4) > 65536:
            _names4.clear()
        name = _names4[value] = "%d.%d.%d.%d" % (
            value >> 24, (value >> 16) & 255, (value >> 8) & 255, value & 255)
    return name


def _name6(raw: bytes) -> str:
    name = _names6.get(raw)
    if name is None:
        if len(_names6) > 65536:
            _names6.clear()
        name = _names6[raw] = socket.inet_ntop(socket.AF_INET6, raw)
    return name


def _decode(buf, base: int, n: int, linktype: int, checks: bool) -> tuple:
    """Decode the frame ``buf[base:base + n]``; returns the record fields from ethertype on."""
    # Link layer: find the ethertype and where the network header starts.
    off = 0
    status = 0
    if linktype == 1:
        if n < 14:
            return (-1, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, S_TRUNC)
        (et,) = _H(buf, base + 12)
        off = 14
        if et in _VLAN_TPIDS:  # up to two tags: 802.1ad outer, 802.1Q inner
            for _ in range(2):
                if et not in _VLAN_TPIDS:
                    break
                if n - off < 4:
                    return (-1, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, status | S_TRUNC)
                status |= S_VLAN
                (et,) = _H(buf, base + off + 2)
                off += 4
    elif linktype == 113:
        if n < 16:
            return (-1, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, S_TRUNC)
        (et,) = _H(buf, base + 14)
        off = 16
    elif linktype == 276:
        if n < 20:
            return (-1, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, S_TRUNC)
        (et,) = _H(buf, base)
        off = 20
    elif linktype == 0:
        if n < 4:
            return (-1, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, S_TRUNC)
        (af,) = _I(buf, base)
        if af > 0xFFFF:
            (af,) = _IBE(buf, base)
        et = 0x0800 if af == 2 else 0x86DD if af in _IP6_AF else 0
        off = 4
    elif linktype in (101, 12, 14):
        if n < 1:
            return (-1, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, S_TRUNC)
        version = buf[base] >> 4
        et = 0x0800 if version == 4 else 0x86DD if version == 6 else 0
    elif linktype == 228:
        et = 0x0800
    elif linktype == 229:
        et = 0x86DD
    else:
        return (-1, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    if et == 0x0800:
        return _ipv4(buf, base, n, off, et, status, checks)
    if et == 0x86DD:
        return _ipv6(buf, base, n, off, et, status, checks)
    return (et, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, status)


def _ipv4(buf, base, n, o, et, status, checks):
    # RFC 791: version/IHL, TOS, total length, id, flags+offset, TTL, protocol, checksum, src, dst
    if n - o < 20:
        return (et, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, status | S_TRUNC)
    vihl, _tos, tl, _id, frag, _ttl, proto, _csum, s, d = _IP4(buf, base + o)
    if vihl >> 4 != 4:
        return (et, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, status | S_MALFORMED)
    ihl = (vihl & 15) * 4
    if ihl < 20:
        return (et, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, status | S_MALFORMED)
    if n - o < ihl:
        return (et, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, status | S_TRUNC)
    # Cached text first (one dict lookup each); format only a new address.
    src = _names4.get(s) or _name4(s)
    dst = _names4.get(d) or _name4(d)
    if tl < ihl:
        return (et, src, dst, proto, 0, 0, 0, 0, 0, 0, 0, 0, status | S_MALFORMED)
    if ihl > 20:
        status |= S_IPOPT
    end = o + tl
    if end > n:
        end = n
        status |= S_TRUNC
    if frag & 0x3FFF:
        status |= S_FRAG
    if checks:
        status |= S_CHECKED
        if internet_checksum(buf[base + o:base + o + ihl]) != 0:
            status |= S_IPCSUM_BAD
    if frag & 0x1FFF:  # a later fragment: the transport header was in the first one
        return (et, src, dst, proto, 0, 0, 0, 0, 0, 0, o + ihl, end - o - ihl, status)
    return _transport(buf, base, o + ihl, end, et, src, dst, proto, status, checks,
                      (s, d) if checks else None)


_EXT_LEN8 = (0, 43, 60)  # hop-by-hop, routing, destination options: (len + 1) * 8 bytes


def _ipv6(buf, base, n, o, et, status, checks):
    if n - o < 40:
        return (et, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, status | S_TRUNC)
    vtc, _tc, _fl, plen, nh, _hlim = _IP6(buf, base + o)
    if vtc >> 4 != 6:
        return (et, None, None, -1, 0, 0, 0, 0, 0, 0, 0, 0, status | S_MALFORMED)
    raw_src = bytes(buf[base + o + 8:base + o + 24])
    raw_dst = bytes(buf[base + o + 24:base + o + 40])
    src, dst = _name6(raw_src), _name6(raw_dst)
    end = o + 40 + plen
    if end > n:
        end = n
        status |= S_TRUNC
    if checks:
        status |= S_CHECKED
    cur = o + 40
    # Walk at most 8 extension headers (RFC 8200 section 4).
    for _ in range(8):
        if nh in _EXT_LEN8 or nh == 51:
            if end - cur < 8:
                return (et, src, dst, nh, 0, 0, 0, 0, 0, 0, 0, 0, status | S_TRUNC)
            hl = (buf[base + cur + 1] + 2) * 4 if nh == 51 else (buf[base + cur + 1] + 1) * 8
            if end - cur < hl:
                return (et, src, dst, nh, 0, 0, 0, 0, 0, 0, 0, 0, status | S_TRUNC)
            status |= S_EXTHDR
            nh = buf[base + cur]
            cur += hl
        elif nh == 44:  # fragment header: next header, reserved, offset+M, id
            if end - cur < 8:
                return (et, src, dst, nh, 0, 0, 0, 0, 0, 0, 0, 0, status | S_TRUNC)
            status |= S_EXTHDR | S_FRAG
            (fo,) = _H(buf, base + cur + 2)
            nh = buf[base + cur]
            cur += 8
            if fo & 0xFFF8:
                return (et, src, dst, nh, 0, 0, 0, 0, 0, 0, cur, end - cur, status)
        else:
            break
    return _transport(buf, base, cur, end, et, src, dst, nh, status, checks,
                      (raw_src, raw_dst) if checks else None)


def _transport(buf, base, o, end, et, src, dst, proto, status, checks, addrs):
    seg = end - o
    sport = dport = flags = seq = ack = 0
    if proto == 6:
        if seg < 20:
            return (et, src, dst, proto, 0, 0, 0, 0, 0, o, o, seg, status | S_TRUNC)
        sport, dport, seq, ack, offb, fl = _TCP(buf, base + o)
        doff = (offb >> 4) * 4
        if doff < 20:
            return (et, src, dst, proto, 0, 0, 0, 0, 0, o, o, seg, status | S_MALFORMED)
        flags = fl | (offb & 1) << 8
        if seg < doff:
            # Options cut short (a small snaplen): the fixed header still gives
            # ports, numbers and flags, as tcpdump shows them; no payload.
            poff, plen = end, 0
            status |= S_TRUNC
        else:
            poff, plen = o + doff, seg - doff
    elif proto == 17:
        if seg < 8:
            return (et, src, dst, proto, 0, 0, 0, 0, 0, o, o, seg, status | S_TRUNC)
        sport, dport = _PORTS(buf, base + o)
        poff, plen = o + 8, seg - 8
    elif proto == 1 or proto == 58:
        if seg < 4:
            return (et, src, dst, proto, 0, 0, 0, 0, 0, o, o, seg, status | S_TRUNC)
        sport, dport = buf[base + o], buf[base + o + 1]  # ICMP type and code
        poff, plen = (o + 8, seg - 8) if seg >= 8 else (end, 0)
    else:
        return (et, src, dst, proto, 0, 0, 0, 0, 0, o, o, seg, status)
    status |= S_L4
    if checks and not status & (S_TRUNC | S_FRAG):
        status |= _verify(buf, base, o, seg, proto, addrs)
    return (et, src, dst, proto, sport, dport, flags, seq, ack, o, poff, plen, status)


def _verify(buf, base, o, seg, proto, addrs) -> int:
    """Transport checksum over the whole segment (and pseudo-header): OK or BAD bit."""
    segment = buf[base + o:base + o + seg]
    s, d = addrs
    if isinstance(s, int):  # IPv4 addresses came as integers
        if proto == 17 and _H(buf, base + o + 6)[0] == 0:
            return S_L4CSUM_OK  # RFC 768: zero means "no checksum computed"
        s, d = s.to_bytes(4, "big"), d.to_bytes(4, "big")
    initial = 0 if proto == 1 else pseudo_header_sum(s, d, proto, seg)
    return S_L4CSUM_OK if internet_checksum(segment, initial) == 0 else S_L4CSUM_BAD


def decode_frame(data, linktype: int = 1, checks: bool = False, ts_ns: int = 0,
                 wirelen: int = -1) -> tuple:
    """Decode one frame (e.g. from a packet socket) into a record tuple.

    ``linktype`` says what the first header is (1 Ethernet, 113/276 Linux
    cooked, 101 raw IP...). ``wirelen`` defaults to the frame's length.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    return (0, ts_ns, n, n if wirelen < 0 else wirelen, 0, linktype) + _decode(
        data, 0, n, linktype, checks)


# --- TCP options (RFC 9293 section 3.1, RFC 7323, RFC 2018) -------------------

_OPT_NAMES = {0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 8: "ts"}


def tcp_options(data) -> list:
    """Parse TCP option bytes into ``[(name, value), ...]``.

    ``mss`` -> int, ``wscale`` -> shift count, ``sackOK`` -> None, ``sack`` ->
    list of (left, right) edges, ``ts`` -> (value, echo reply); ``nop`` -> None;
    unknown kinds -> (``"opt-KIND"``, raw bytes). A damaged list ends with
    ``("bad", remaining bytes)``; parsing stops at ``eol``.
    """
    raw = bytes(data)
    out = []
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == 0:
            out.append(("eol", None))
            break
        if kind == 1:
            out.append(("nop", None))
            i += 1
            continue
        if i + 1 >= n or raw[i + 1] < 2 or i + raw[i + 1] > n:
            out.append(("bad", raw[i:]))
            break
        length = raw[i + 1]
        body = raw[i + 2:i + length]
        if kind == 2 and length == 4:
            out.append(("mss", (body[0] << 8) | body[1]))
        elif kind == 3 and length == 3:
            out.append(("wscale", body[0]))
        elif kind == 4 and length == 2:
            out.append(("sackOK", None))
        elif kind == 5 and length >= 2 and (length - 2) % 8 == 0:
            out.append(("sack", [struct.unpack_from(">II", body, j) for j in range(0, length - 2, 8)]))
        elif kind == 8 and length == 10:
            out.append(("ts", struct.unpack(">II", body)))
        else:
            out.append((f"opt-{kind}", body))
        i += length
    return out
