"""Minimal IPv4, TCP and UDP header decoders (RFC 791, RFC 9293, RFC 768).

Each decoder takes any bytes-like object and returns a plain ``dict`` so that
the pure-Python and compiled backends can be compared with ``==``. Short or
inconsistent input raises :class:`netlab.errors.DecodeError` saying how many
bytes were there and how many were needed; nothing ever reads past the end.

IPv4 header (20 bytes without options)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |Version|  IHL  |Type of Service|          Total Length         |
    |         Identification        |Flags|      Fragment Offset    |
    |  Time to Live |    Protocol   |         Header Checksum       |
    |                       Source Address                          |
    |                    Destination Address                        |
"""
from __future__ import annotations

import struct

from netlab.packet.fields import TCP_FLAG_NAMES
from netlab.packet.pure.checksum import internet_checksum, pseudo_header_sum
from netlab.errors import DecodeError

__all__ = [
    "TCP_FLAG_NAMES",
    "decode_ipv4",
    "decode_packet",
    "decode_tcp",
    "decode_udp",
    "tcp_flag_names",
]

_IPV4 = struct.Struct(">BBHHHBBH4s4s")
_TCP = struct.Struct(">HHIIBBHHH")
_UDP = struct.Struct(">HHHH")


def _need(what: str, got: int, need: int) -> None:
    if got < need:
        raise DecodeError(f"truncated {what}: got {got} bytes, need {need}")


def _ip_str(raw: bytes) -> str:
    return "%d.%d.%d.%d" % (raw[0], raw[1], raw[2], raw[3])


def tcp_flag_names(flags: int) -> list:
    """Names of the TCP flags set in ``flags``, e.g. ``0x12 -> ['SYN', 'ACK']``."""
    return [name for bit, name in enumerate(TCP_FLAG_NAMES) if flags >> bit & 1]


def decode_ipv4(data) -> dict:
    """Decode an IPv4 header at the start of ``data``."""
    view = memoryview(data).cast("B")
    _need("IPv4 header", len(view), 20)
    (vihl, tos, total_length, ident, frag, ttl, proto, csum, src, dst) = _IPV4.unpack_from(view)
    version, ihl = vihl >> 4, (vihl & 0x0F) * 4
    if version != 4:
        raise DecodeError(f"not an IPv4 header: version field is {version}")
    if ihl < 20:
        raise DecodeError(f"bad IPv4 header length: {ihl} bytes, the minimum is 20")
    _need("IPv4 header with options", len(view), ihl)
    if total_length < ihl:
        raise DecodeError(f"bad IPv4 total length: {total_length} is less than the header's {ihl}")
    return {
        "version": version,
        "header_length": ihl,
        "tos": tos,
        "total_length": total_length,
        "id": ident,
        "flags": frag >> 13,
        "fragment_offset": (frag & 0x1FFF) * 8,
        "ttl": ttl,
        "protocol": proto,
        "checksum": csum,
        "checksum_ok": internet_checksum(view[:ihl]) == 0,
        "src": _ip_str(src),
        "dst": _ip_str(dst),
        "options": bytes(view[20:ihl]),
    }


def decode_tcp(data) -> dict:
    """Decode a TCP header at the start of ``data``."""
    view = memoryview(data).cast("B")
    _need("TCP header", len(view), 20)
    sport, dport, seq, ack, off, flags, window, csum, urgent = _TCP.unpack_from(view)
    header_length = (off >> 4) * 4
    if header_length < 20:
        raise DecodeError(f"bad TCP data offset: {header_length} bytes, the minimum is 20")
    _need("TCP header with options", len(view), header_length)
    flags |= (off & 0x01) << 8  # the NS bit lives in the low bit of the offset byte
    return {
        "sport": sport,
        "dport": dport,
        "seq": seq,
        "ack": ack,
        "header_length": header_length,
        "flags": flags,
        "window": window,
        "checksum": csum,
        "urgent": urgent,
        "options": bytes(view[20:header_length]),
    }


def decode_udp(data) -> dict:
    """Decode a UDP header at the start of ``data``."""
    view = memoryview(data).cast("B")
    _need("UDP header", len(view), 8)
    sport, dport, length, csum = _UDP.unpack_from(view)
    return {"sport": sport, "dport": dport, "length": length, "checksum": csum}


def decode_packet(data) -> dict:
    """Decode an IPv4 packet and its TCP or UDP header.

    Returns ``{"ip": ..., "proto": "tcp"|"udp"|<number>, "tcp"/"udp": ...,
    "payload": bytes, "checksum_ok": bool|None}``. The payload ends where the
    IPv4 total length says, or at the end of the captured bytes if sooner.
    The transport checksum is verified only when the whole segment is present
    and the packet is not a fragment (``None`` otherwise; a UDP checksum of 0
    means "not computed" and counts as correct).
    """
    view = memoryview(data).cast("B")
    ip = decode_ipv4(view)
    end = min(ip["total_length"], len(view))
    segment = view[ip["header_length"]:end]
    whole = end == ip["total_length"] and ip["fragment_offset"] == 0 and not ip["flags"] & 1
    out = {"ip": ip, "proto": ip["protocol"], "payload": b"", "checksum_ok": None}
    if ip["fragment_offset"]:
        # Only the first fragment carries the transport header.
        out["payload"] = bytes(segment)
        return out
    if ip["protocol"] == 6:
        tcp = decode_tcp(segment)
        out.update(proto="tcp", tcp=tcp, payload=bytes(segment[tcp["header_length"]:]))
        kind = 6
    elif ip["protocol"] == 17:
        udp = decode_udp(segment)
        out.update(proto="udp", udp=udp, payload=bytes(segment[8:]))
        kind = 17
        if udp["checksum"] == 0:
            out["checksum_ok"] = True if whole else None
            return out
    else:
        out["payload"] = bytes(segment)
        return out
    if whole:
        src, dst = bytes(view[12:16]), bytes(view[16:20])
        initial = pseudo_header_sum(src, dst, kind, len(segment))
        out["checksum_ok"] = internet_checksum(segment, initial) == 0
    return out
