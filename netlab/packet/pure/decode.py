"""Decode captured frames into compact records: the readable twin of ``walk.h``.

One frame becomes one tuple (a *record*, fields in :data:`netlab.packet.fields.RECORD_FIELDS`), the
same on both backends, so that ``dissect``, ``sniff`` and the tests can handle
millions of them cheaply. The walk goes link layer -> network -> transport:

* link (:mod:`netlab.packet.pure.links`): Ethernet (RFC 894) with VLAN tags, MPLS,
  PPPoE, PBB, FabricPath and LLC/SNAP walked; Linux cooked capture v1 and v2,
  BSD/OpenBSD loopback, raw IP, PPP, Cisco HDLC, Frame Relay, 802.11 (plain,
  radiotap, PPI), NFLOG, FDDI, IP over InfiniBand, ARCnet, PKTAP, ipnet;
* network: IPv4 (RFC 791; options flagged, fragments flagged, a later
  fragment carries no transport header, total length 0 read as TSO) and IPv6
  (RFC 8200; hop-by-hop, routing, destination options, AH and fragment
  headers walked, any number of them; RFC 2675 jumbograms);
* transport: TCP (RFC 9293), UDP (RFC 768, its length ends the payload), ICMP
  (RFC 792), ICMPv6 (RFC 4443); ports from a header cut short (``L4_PART``).

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

from netlab.packet.fields import (ETH_IPV4, ETH_IPV6, IPPROTO_AH, IPPROTO_DSTOPTS,
                                  IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ICMP, IPPROTO_ICMPV6,
                                  IPPROTO_ROUTING, IPPROTO_TCP, IPPROTO_UDP, RECORD_FIELDS,
                                  S_CHECKED, S_EXTHDR, S_FRAG, S_IPCSUM_BAD, S_IPOPT, S_L4,
                                  S_L4_PART, S_L4CSUM_BAD, S_L4CSUM_OK, S_MALFORMED, S_TRUNC)
from netlab.packet.options import tcp_options
from netlab.packet.pure.checksum import internet_checksum, pseudo_header_sum
from netlab.packet.pure.links import link

# The fields of a record, and an index for each, are named in netlab.packet.fields.
__all__ = ["RECORD_FIELDS", "decode_at", "decode_frame", "decoded", "tcp_options"]

_H = struct.Struct(">H").unpack_from
_IBE = struct.Struct(">I").unpack_from
_IP4 = struct.Struct(">BBHHHBBHII").unpack_from
_IP6 = struct.Struct(">BBHHBB").unpack_from
_TCP = struct.Struct(">HHIIBB").unpack_from
_UDP = struct.Struct(">HHH").unpack_from
_PORTS = struct.Struct(">HH").unpack_from

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


def decoded(ethertype: int, status: int, src=None, dst=None, proto: int = -1, sport: int = 0,
            dport: int = 0, flags: int = 0, seq: int = 0, ack: int = 0, l4_off: int = 0,
            payload_off: int = 0, payload_len: int = 0) -> tuple:
    """What a frame's bytes say, by name: the record's fields from ``ethertype`` to ``status``.

    The walk stops at the first header it cannot read; every field it did not
    reach keeps its "nothing here" value: no address (None), no protocol
    (-1), zero ports, numbers and offsets. (The first six fields, where the
    frame lies in the file and when it was captured, come from the capture
    walk in :mod:`netlab.packet.pure.capture`.)
    """
    return (ethertype, src, dst, proto, sport, dport, flags, seq, ack, l4_off, payload_off,
            payload_len, status)


def decode_at(buf, base: int, n: int, linktype: int, checks: bool) -> tuple:
    """Decode the frame ``buf[base:base + n]``; returns the record fields from ethertype on."""
    # Link layer (netlab.packet.pure.links): the ethertype and where the network header starts.
    et, off, status = link(buf, base, n, linktype)
    if et == ETH_IPV4:
        return _ipv4(buf, base, n, off, et, status, checks)
    if et == ETH_IPV6:
        return _ipv6(buf, base, n, off, et, status, checks)
    return decoded(et, status)


def _ipv4(buf, base, n, o, et, status, checks):
    # RFC 791: version/IHL, TOS, total length, id, flags+offset, TTL, protocol, checksum, src, dst
    if n - o < 20:
        return decoded(et, status | S_TRUNC)
    vihl, _tos, tl, _id, frag, _ttl, proto, _csum, s, d = _IP4(buf, base + o)
    if vihl >> 4 != 4:
        return decoded(et, status | S_MALFORMED)
    ihl = (vihl & 15) * 4
    if ihl < 20:
        return decoded(et, status | S_MALFORMED)
    # Cached text first (one dict lookup each); format only a new address.
    src = _names4.get(s) or _name4(s)
    dst = _names4.get(d) or _name4(d)
    if n - o < ihl:  # options cut short: the fixed header still names both ends
        return decoded(et, status | S_TRUNC, src=src, dst=dst, proto=proto)
    if tl == 0:
        # Total length 0: a TSO / large-send or BIG TCP packet captured before
        # the NIC cut it up; its length is what was captured (as Wireshark and
        # tcpdump read it).
        end = n
    else:
        if tl < ihl:
            return decoded(et, status | S_MALFORMED, src=src, dst=dst, proto=proto)
        end = o + tl
        if end > n:
            end = n
            status |= S_TRUNC
    if ihl > 20:
        status |= S_IPOPT
    if frag & 0x3FFF:
        status |= S_FRAG
    if checks:
        status |= S_CHECKED
        if internet_checksum(buf[base + o:base + o + ihl]) != 0:
            status |= S_IPCSUM_BAD
    if frag & 0x1FFF:  # a later fragment: the transport header was in the first one
        return decoded(et, status,
                       src=src, dst=dst, proto=proto, payload_off=o + ihl,
                       payload_len=end - o - ihl)
    return _transport(buf, base, o + ihl, end, et, src, dst, proto, status, checks,
                      (s, d) if checks else None)


_EXT_LEN8 = (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS)  # (len + 1) * 8 bytes each


def _jumbo(buf, base, n, h) -> int:
    """RFC 2675: the Jumbo Payload option (type 0xC2) of the hop-by-hop header at ``h``; 0 if none.

    An IPv6 payload length of 0 with this option means "the length is in the
    option": 32 bits, for packets over 65535 bytes (BIG TCP does this too).
    """
    if n - h < 8:
        return 0
    end = h + (buf[base + h + 1] + 1) * 8
    o = h + 2
    if end > n:
        return 0
    while o < end:
        kind = buf[base + o]
        if kind == 0:  # Pad1
            o += 1
            continue
        if end - o < 2 or end - o - 2 < buf[base + o + 1]:
            return 0
        if kind == 0xC2 and buf[base + o + 1] == 4:
            return _IBE(buf, base + o + 2)[0]
        o += 2 + buf[base + o + 1]
    return 0


def _ipv6(buf, base, n, o, et, status, checks):
    if n - o < 40:
        return decoded(et, status | S_TRUNC)
    vtc, _tc, _fl, plen, nh, _hlim = _IP6(buf, base + o)
    if vtc >> 4 != 6:
        return decoded(et, status | S_MALFORMED)
    raw_src = bytes(buf[base + o + 8:base + o + 24])
    raw_dst = bytes(buf[base + o + 24:base + o + 40])
    src, dst = _name6(raw_src), _name6(raw_dst)
    if plen == 0 and nh == IPPROTO_HOPOPTS:
        plen = _jumbo(buf, base, n, o + 40)
    if plen == 0:  # 0 and no jumbo option: TSO, read like IPv4's total length 0
        plen = n - o - 40
    if plen > n - o - 40:
        end = n
        status |= S_TRUNC
    else:
        end = o + 40 + plen
    if checks:
        status |= S_CHECKED
    cur = o + 40
    # Walk every extension header (RFC 8200 section 4): each is 8 bytes or
    # more, so the walk ends with the packet.
    while True:
        if nh in _EXT_LEN8 or nh == IPPROTO_AH:
            if end - cur < 8:
                return decoded(et, status | S_TRUNC, src=src, dst=dst, proto=nh)
            size = buf[base + cur + 1]  # in 4-byte units beyond 2 (AH), 8-byte beyond 1 (others)
            hl = (size + 2) * 4 if nh == IPPROTO_AH else (size + 1) * 8
            if end - cur < hl:
                return decoded(et, status | S_TRUNC, src=src, dst=dst, proto=nh)
            status |= S_EXTHDR
            nh = buf[base + cur]
            cur += hl
        elif nh == IPPROTO_FRAGMENT:  # fragment header: next header, reserved, offset+M, id
            if end - cur < 8:
                return decoded(et, status | S_TRUNC, src=src, dst=dst, proto=nh)
            status |= S_EXTHDR | S_FRAG
            (fo,) = _H(buf, base + cur + 2)
            nh = buf[base + cur]
            cur += 8
            if fo & 0xFFF8:
                return decoded(et, status,
                               src=src, dst=dst, proto=nh, payload_off=cur, payload_len=end - cur)
        else:
            break
    return _transport(buf, base, cur, end, et, src, dst, nh, status, checks,
                      (raw_src, raw_dst) if checks else None)


def _transport(buf, base, o, end, et, src, dst, proto, status, checks, addrs):
    seg = end - o
    covered = seg  # what the checksum covers: the segment, or the UDP length
    sport = dport = flags = seq = ack = 0
    if (proto == IPPROTO_TCP or proto == IPPROTO_UDP) and \
            4 <= seg < (20 if proto == IPPROTO_TCP else 8):
        # Cut inside the header: its first four bytes still name the ports,
        # as tshark and tcpdump show them.
        sport, dport = _PORTS(buf, base + o)
        return decoded(et, status | S_TRUNC | S_L4_PART,
                       src=src, dst=dst, proto=proto, sport=sport, dport=dport, l4_off=o,
                       payload_off=o, payload_len=seg)
    if proto == IPPROTO_TCP:
        if seg < 20:
            return decoded(et, status | S_TRUNC,
                           src=src, dst=dst, proto=proto, l4_off=o, payload_off=o, payload_len=seg)
        sport, dport, seq, ack, offb, fl = _TCP(buf, base + o)
        doff = (offb >> 4) * 4
        if doff < 20:
            return decoded(et, status | S_MALFORMED,
                           src=src, dst=dst, proto=proto, l4_off=o, payload_off=o, payload_len=seg)
        flags = fl | (offb & 1) << 8
        if seg < doff:
            # Options cut short (a small snaplen): the fixed header still gives
            # ports, numbers and flags, as tcpdump shows them; no payload.
            poff, plen = end, 0
            status |= S_TRUNC
        else:
            poff, plen = o + doff, seg - doff
    elif proto == IPPROTO_UDP:
        if seg < 8:
            return decoded(et, status | S_TRUNC,
                           src=src, dst=dst, proto=proto, l4_off=o, payload_off=o, payload_len=seg)
        sport, dport, ulen = _UDP(buf, base + o)
        # RFC 768: the UDP length ends the datagram, bytes after it are not
        # payload. 0 belongs to a jumbogram (RFC 2675) or a GSO super-packet
        # longer than 65535: the IP length rules then.
        if ulen == 0 and seg > 0xFFFF:
            ulen = seg
        elif ulen < 8:
            status |= S_MALFORMED
            ulen = seg
        elif ulen > seg:
            if not status & S_TRUNC:  # longer than the IP payload, and not a short capture
                status |= S_MALFORMED
            ulen = seg
        covered = ulen
        poff, plen = o + 8, ulen - 8
    elif proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
        if seg < 4:
            return decoded(et, status | S_TRUNC,
                           src=src, dst=dst, proto=proto, l4_off=o, payload_off=o, payload_len=seg)
        sport, dport = buf[base + o], buf[base + o + 1]  # ICMP type and code
        poff, plen = (o + 8, seg - 8) if seg >= 8 else (end, 0)
    else:
        return decoded(et, status,
                       src=src, dst=dst, proto=proto, l4_off=o, payload_off=o, payload_len=seg)
    status |= S_L4
    if checks and not status & (S_TRUNC | S_FRAG | S_MALFORMED):
        status |= _verify(buf, base, o, covered, proto, addrs)
    # The common case, once per TCP/UDP/ICMP packet: the names that match a
    # field go by position (their order is the record's), the rest by name.
    return decoded(et, status, src, dst, proto, sport, dport, flags, seq, ack,
                   l4_off=o, payload_off=poff, payload_len=plen)


def _verify(buf, base, o, seg, proto, addrs) -> int:
    """Transport checksum over the whole segment (and pseudo-header): OK or BAD bit."""
    segment = buf[base + o:base + o + seg]
    s, d = addrs
    if isinstance(s, int):  # IPv4 addresses came as integers
        if proto == IPPROTO_UDP and _H(buf, base + o + 6)[0] == 0:
            return S_L4CSUM_OK  # RFC 768: zero means "no checksum computed"
        s, d = s.to_bytes(4, "big"), d.to_bytes(4, "big")
    initial = 0 if proto == IPPROTO_ICMP else pseudo_header_sum(s, d, proto, seg)
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
    return (0, ts_ns, n, n if wirelen < 0 else wirelen, 0, linktype) + decode_at(
        data, 0, n, linktype, checks)
