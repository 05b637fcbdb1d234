"""Link layers: from a frame's first byte to its network header, the readable twin.

Every link type answers two questions: which *ethertype* the frame carries
(0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP...) and at which offset that header
starts. :func:`link` returns ``(ethertype, offset, status)``; ethertype -1
means the link layer names none (an unknown link type, an 802.11 control
frame, a PPP control protocol), status holds ``S_TRUNC`` when the frame ends
inside a link header, ``S_VLAN`` when VLAN tags were walked.

Ethernet-style types are followed through their wrappers by
:func:`ether_chain`: VLAN tags (any number), MPLS, PPPoE, 802.1ah PBB, Cisco
FabricPath and 802.2 LLC/SNAP, the way Wireshark follows them.

The compiled twin is ``nl_link`` / ``nl_ether_chain`` in ``src_c/walk.h``.
"""
from __future__ import annotations

import struct

from netlab.packet.fields import (ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_MPLS, ETH_PPPOE, ETH_QINQ,
                                  ETH_VLAN, S_MALFORMED, S_TRUNC, S_VLAN)

__all__ = ["link", "ether_chain"]

_H = struct.Struct(">H").unpack_from
_HLE = struct.Struct("<H").unpack_from
_I = struct.Struct("<I").unpack_from
_IBE = struct.Struct(">I").unpack_from

_VLAN_TPIDS = (ETH_VLAN, ETH_QINQ, 0x9100)
_IP6_AF = (10, 24, 28, 30)  # AF_INET6 on Linux, the BSDs and macOS
_SNAP_OUIS = (b"\0\0\0", b"\0\0\xf8")  # RFC 1042 and 802.1H: the type is an ethertype
_PPP_TYPES = {0x0021: ETH_IPV4, 0x0057: ETH_IPV6, 0x0281: ETH_MPLS}  # PPP protocol -> ethertype
_ARCNET_TYPES = {0xF0: ETH_IPV4, 0xD4: ETH_IPV4, 0xF1: ETH_ARP, 0xD5: ETH_ARP,
                 0xD6: 0x8035, 0xC4: ETH_IPV6}  # RFC 1051 and RFC 1201 protocol ids
_CUT = (-1, 0, S_TRUNC)


def _af_type(af: int) -> int:
    """A BSD address family (loopback, enc, pflog): IPv4, IPv6, or 0 (not IP)."""
    return ETH_IPV4 if af == 2 else ETH_IPV6 if af in _IP6_AF else 0


def ether_chain(buf, base: int, n: int, off: int, et: int):
    """Follow ethertype ``et`` (its header at ``off``) to IP or the first type not walked.

    Returns ``(ethertype, offset, status)``; every step moves ``offset`` on, so
    the walk ends with the frame.
    """
    if et == ETH_IPV4 or et == ETH_IPV6:  # the common case: IP right away
        return et, off, 0
    status = 0
    while True:
        left = n - off
        if et in _VLAN_TPIDS:  # 802.1Q / 802.1ad: TCI, then the next type
            if left < 4:
                return -1, 0, status | S_TRUNC
            status |= S_VLAN
            (et,) = _H(buf, base + off + 2)
            off += 4
        elif et in (ETH_MPLS, 0x8848):  # MPLS (RFC 3032): 4-byte labels until bottom of stack
            o = off
            while True:
                if n - o < 4:
                    return -1, 0, status | S_TRUNC
                o += 4
                if buf[base + o - 2] & 1:
                    break
            if n - o < 1:
                return -1, 0, status | S_TRUNC
            version = buf[base + o] >> 4
            if version == 4:
                et = ETH_IPV4
            elif version == 6:
                et = ETH_IPV6
            elif version == 0 and n - o >= 18:  # pseudowire control word, then Ethernet
                (et,) = _H(buf, base + o + 16)
                o += 18
            else:
                break  # another payload: the record keeps the MPLS type
            off = o
        elif et == ETH_PPPOE:  # PPPoE session (RFC 2516): 6-byte header, PPP protocol
            if left < 8:
                return -1, 0, status | S_TRUNC
            (ppp,) = _H(buf, base + off + 6)
            if ppp not in (0x0021, 0x0057):
                break  # LCP, IPCP...: not IP
            et = _PPP_TYPES[ppp]
            off += 8
        elif et == 0x88E7:  # 802.1ah PBB: I-TAG, the customer's addresses and type
            if left < 18:
                return -1, 0, status | S_TRUNC
            (et,) = _H(buf, base + off + 16)
            off += 18
        elif et == 0x8903:  # Cisco FabricPath: FTag/TTL, the inner addresses and type
            if left < 16:
                return -1, 0, status | S_TRUNC
            (et,) = _H(buf, base + off + 14)
            off += 16
        elif et < 0x0600:  # an 802.3 length: 802.2 LLC follows; SNAP carries a type
            p = base + off
            if (left < 8 or buf[p:p + 3] != b"\xaa\xaa\x03"
                    or bytes(buf[p + 3:p + 6]) not in _SNAP_OUIS):
                break
            (et,) = _H(buf, p + 6)
            off += 8
        else:
            break
    return et, off, status


def _llc(buf, base, n, off):
    """An 802.2 LLC header at ``off`` (FDDI, 802.11): its SNAP type, -1 when none."""
    et, off, status = ether_chain(buf, base, n, off, 0)
    return (-1 if et == 0 else et), off, status


def _wlan(buf, base, n, off, datapad):
    """IEEE 802.11: data frames only; management, control, protected, null frames name no type."""
    if n - off < 2:
        return _CUT
    fc, fl = buf[base + off], buf[base + off + 1]
    if (fc >> 2) & 3 != 2 or fc & 0x40 or fl & 0x40:
        return -1, 0, 0
    hl = 24
    if fl & 3 == 3:  # to and from the distribution system: a fourth address
        hl += 6
    if fc & 0x80:  # QoS data: QoS control ...
        hl += 2
        if fl & 0x80:  # ... and an HT control field (+HTC)
            hl += 4
    if datapad:  # radiotap says the header is padded to 32 bits
        hl = (hl + 3) & ~3
    if n - off < hl:
        return _CUT
    return _llc(buf, base, n, off + hl)


def _radiotap_flags(buf, base, length):
    """Radiotap's Flags field: bit 1 of the first presence word, after TSFT (bit 0)."""
    (present,) = _I(buf, base + 4)
    word, o = present, 8
    while word & 0x80000000 and length - o >= 4:  # more presence words follow
        (word,) = _I(buf, base + o)
        o += 4
    if not present & 2:
        return 0
    if present & 1:  # TSFT: 8 bytes, aligned to 8
        o = ((o + 7) & ~7) + 8
    return buf[base + o] if o < length else 0


def _inner(buf, base, n, hl, dlt, nested):
    """A header naming the link type of the frame inside it (PPI, PKTAP)."""
    if nested or dlt > 0xFFFF:
        return -1, 0, 0
    if hl > n:
        return _CUT
    et, off, status = link(buf, base + hl, n - hl, dlt, True)
    return et, hl + off, status


def link(buf, base: int, n: int, linktype: int, nested: bool = False):
    """``(ethertype, offset, status)`` of the frame ``buf[base:base + n]`` of this link type."""
    if linktype == 1:  # Ethernet
        if n < 14:
            return _CUT
        return ether_chain(buf, base, n, 14, _H(buf, base + 12)[0])
    if linktype == 113:  # Linux cooked capture v1
        if n < 16:
            return _CUT
        return ether_chain(buf, base, n, 16, _H(buf, base + 14)[0])
    if linktype == 276:  # Linux cooked capture v2
        if n < 20:
            return _CUT
        return ether_chain(buf, base, n, 20, _H(buf, base)[0])
    if linktype in (0, 108):  # BSD loopback (writer's byte order), OpenBSD loopback
        if n < 4:
            return _CUT
        if buf[base] == 0xFF and buf[base + 1] == 0x03:  # PPP address and control
            return _PPP_TYPES.get(_H(buf, base + 2)[0], -1), 4, 0
        (v,) = _I(buf, base)
        if v > 0xFFFF:
            (v,) = _IBE(buf, base)
        if v > 0xFFFF:  # address, control, ethertype: Cisco HDLC style
            (v,) = _H(buf, base + 2)
        if v > 1500:  # an ethertype, not an address family
            return ether_chain(buf, base, n, 4, v)
        return _af_type(v), 4, 0
    if linktype == 109:  # OpenBSD enc: address family (writer's byte order), SPI, flags
        if n < 12:
            return _CUT
        (v,) = _I(buf, base)
        return _af_type(_IBE(buf, base)[0] if v > 0xFFFF else v), 12, 0
    if linktype == 117:  # pflog: header length, family, ...; the packet 32-bit aligned after it
        if n < 4:
            return _CUT
        if buf[base] < 4:
            return -1, 0, S_MALFORMED
        off = (buf[base] + 3) & ~3
        if n < off:
            return _CUT
        return _af_type(buf[base + 1]), off, 0
    if linktype == 6:  # IEEE 802.5 Token Ring: AC, FC, addresses, source routing; LLC only
        if n < 14:
            return _CUT
        if buf[base + 1] & 0xC0 != 0x40:
            return -1, 0, 0
        off = 14
        if buf[base + 8] & 0x80:  # a routing information field, its length in its first byte
            if n < 15:
                return _CUT
            off += buf[base + 14] & 0x1F
        if n < off:
            return _CUT
        return _llc(buf, base, n, off)
    if linktype == 123:  # SunATM: flags (traffic type in the low 4 bits), VPI, VCI
        if n < 4:
            return _CUT
        if buf[base] & 0x0F == 2:  # LLC
            return _llc(buf, base, n, 4)
        if buf[base] & 0x0F != 1:
            return -1, 0, 0
        if n < 20:  # LANE: a 2-byte LE client id, then an Ethernet header
            return _CUT
        return ether_chain(buf, base, n, 20, _H(buf, base + 18)[0])
    if linktype == 163:  # AVS: its header length at bytes 4-7, then 802.11
        if n < 8:
            return _CUT
        (hl,) = _IBE(buf, base + 4)
        if hl < 8:
            return -1, 0, S_MALFORMED
        if n < hl:
            return _CUT
        return _wlan(buf, base, n, hl, False)
    if linktype == 11:  # RFC 1483 LLC-encapsulated ATM: LLC/SNAP right away
        return _llc(buf, base, n, 0)
    if linktype == 219:  # an MPLS label stack right away
        return ether_chain(buf, base, n, 0, ETH_MPLS)
    if linktype in (204, 205):  # a direction byte, then PPP or Cisco HDLC
        if n < 1:
            return _CUT
        return _inner(buf, base, n, 1, 9 if linktype == 204 else 104, nested)
    if linktype in (12, 14, 101):  # raw IP
        if n < 1:
            return _CUT
        version = buf[base] >> 4
        return (ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else 0), 0, 0
    if linktype == 228:
        return ETH_IPV4, 0, 0
    if linktype == 229:
        return ETH_IPV6, 0, 0
    if linktype in (9, 50):  # PPP (RFC 1661), PPP in HDLC-like framing (RFC 1662)
        if n >= 4 and buf[base] in (0x0F, 0x8F) and buf[base + 1] == 0:  # Cisco HDLC framing
            return ether_chain(buf, base, n, 4, _H(buf, base + 2)[0])
        off = 2 if n >= 2 and buf[base] == 0xFF and buf[base + 1] == 0x03 else 0
        if n < off + 1:
            return _CUT
        if buf[base + off] & 1:  # a compressed, one-byte protocol field
            return _PPP_TYPES.get(buf[base + off], -1), off + 1, 0
        if n < off + 2:
            return _CUT
        return _PPP_TYPES.get(_H(buf, base + off)[0], -1), off + 2, 0
    if linktype == 51:  # PPPoE session header, then PPP
        if n < 8:
            return _CUT
        return _PPP_TYPES.get(_H(buf, base + 6)[0], -1), 8, 0
    if linktype == 104:  # Cisco HDLC: address, control, ethertype
        if n < 4:
            return _CUT
        return ether_chain(buf, base, n, 4, _H(buf, base + 2)[0])
    if linktype == 107:
        return _frame_relay(buf, base, n)
    if linktype == 10:  # FDDI: frame control, addresses; LLC frames only
        if n < 13:
            return _CUT
        if buf[base] & 0x30 != 0x10:
            return -1, 0, 0
        return _llc(buf, base, n, 13)
    if linktype == 105:  # IEEE 802.11
        return _wlan(buf, base, n, 0, False)
    if linktype == 127:  # radiotap, then 802.11
        if n < 8:
            return _CUT
        (length,) = _HLE(buf, base + 2)
        if length < 8:
            return -1, 0, S_MALFORMED  # shorter than its own fixed part
        if n < length:
            return _CUT
        return _wlan(buf, base, n, length, _radiotap_flags(buf, base, length) & 0x20)
    if linktype == 192:  # PPI: header length, then the inner link type
        if n < 8:
            return _CUT
        return _inner(buf, base, n, _HLE(buf, base + 2)[0], _I(buf, base + 4)[0], nested)
    if linktype == 258:  # Apple PKTAP: length and inner link type, in the writer's byte order
        if n < 8:
            return _CUT
        (hl,) = _I(buf, base)
        if hl > 0xFFFF:
            return _inner(buf, base, n, _IBE(buf, base)[0], _IBE(buf, base + 4)[0], nested)
        return _inner(buf, base, n, hl, _I(buf, base + 4)[0], nested)
    if linktype == 239:
        return _nflog(buf, base, n)
    if linktype == 242:  # IP over InfiniBand: RFC 4391's 4 bytes, or Linux's 44 (addresses first)
        if n < 4:
            return _CUT
        off = 4
        if _H(buf, base)[0] < 0x0600 and n >= 44 and _H(buf, base + 40)[0] >= 0x0600:
            off = 44
        return ether_chain(buf, base, n, off, _H(buf, base + off - 4)[0])
    if linktype in (7, 129):  # ARCnet: BSD (source, destination, type) or Linux (+2 offset bytes)
        t = 2 if linktype == 7 else 4
        if n < t + 1:
            return _CUT
        kind = buf[base + t]
        off = t + 1
        if kind not in (0xF0, 0xF1):  # RFC 1201: split flag and sequence number
            if n < off + 3:
                return _CUT
            if buf[base + off] == 0xFF:  # an exception packet
                if n < off + 7:
                    return _CUT
                off += 7
            else:
                off += 3
        return _ARCNET_TYPES.get(kind, -1), off, 0
    if linktype == 226:  # Solaris ipnet: version, family, ..., 24 bytes
        if n < 24:
            return _CUT
        family = buf[base + 1]
        return (ETH_IPV4 if family == 2 else ETH_IPV6 if family == 26 else -1), 24, 0
    return -1, 0, 0


def _frame_relay(buf, base, n):
    """Frame Relay: a Q.922 address (2-4 bytes), then RFC 2427 (NLPID) or Cisco (ethertype)."""
    if n < 2:
        return _CUT
    off = 2
    while not buf[base + off - 1] & 1 and off < 4:  # address extension bit clear: one more
        if n < off + 1:
            return _CUT
        off += 1
    if n < off + 1:
        return _CUT
    if buf[base + off] != 0x03:  # Cisco framing: an ethertype
        if n < off + 2:
            return _CUT
        return ether_chain(buf, base, n, off + 2, _H(buf, base + off)[0])
    off += 1  # the UI control byte
    if n > off and buf[base + off] == 0:  # padding before the NLPID
        off += 1
    if n < off + 1:
        return _CUT
    nlpid = buf[base + off]
    off += 1
    if nlpid == 0xCC:
        return ETH_IPV4, off, 0
    if nlpid == 0x8E:
        return ETH_IPV6, off, 0
    if nlpid == 0x80:  # SNAP: OUI, then the type
        if n < off + 5:
            return _CUT
        if buf[base + off:base + off + 3] != b"\0\0\0":
            return -1, 0, 0
        return ether_chain(buf, base, n, off + 5, _H(buf, base + off + 3)[0])
    return -1, 0, 0


def _nflog(buf, base, n):
    """Linux NFLOG: family, version, resource id, then TLVs (host order); NFULA_PAYLOAD is IP."""
    if n < 4:
        return _CUT
    family = buf[base]
    off = 4
    while n - off >= 4:
        (tlen,) = _HLE(buf, base + off)
        kind = _HLE(buf, base + off + 2)[0] & 0x7FFF
        if tlen < 4:
            return -1, 0, 0
        if kind == 9:  # NFULA_PAYLOAD: the packet from its network header on
            return (ETH_IPV4 if family == 2 else ETH_IPV6 if family == 10 else -1), off + 4, 0
        off += (tlen + 3) & ~3
        if off > n:
            break
    return -1, 0, 0
