"""One packet as ``netlab dissect`` shows it: a line of text or a JSON object.

:func:`packet_line` gives the one-line text form, :func:`packet_json` the
JSON object (:func:`json_line` prints it), and :class:`Annotator` names the
steps of TCP handshakes and teardowns as packets go by. ``sniff`` uses them
one record at a time, and the pure twin's ``format_capture``
(:mod:`netlab.packet.pure.format`) over a whole capture; the compiled core's
``format_capture`` builds the very same bytes in C (``src_c/format.h``; the
tests compare them on every shipped and test capture). These need no twin of
their own: they read records, whichever core made them.

JSON payload encoding: ``payload`` is the transport payload as a **hex
string** (exact, byte for byte: ``bytes.fromhex(obj["payload"])`` gives the
bytes back); ``payload_text`` is the same bytes decoded as UTF-8 with
undecodable bytes written as ``\\xNN``, for reading.
"""
from __future__ import annotations

import struct
import time
from typing import Optional

# socket's C half: the same calls, without importing socket.py (start-up counts)
from _socket import AF_INET, AF_INET6, inet_ntop

from netlab.packet import fields as F
from netlab.packet.fields import (S_FRAG, S_IPCSUM_BAD, S_L4, S_L4CSUM_BAD, S_L4CSUM_OK,
                                  S_MALFORMED, S_TRUNC, TCP_FLAG_NAMES)
from netlab.packet.options import tcp_options
from netlab.packet.stats import proto_name

__all__ = ["Annotator", "flag_names", "json_line", "packet_json", "packet_line", "proto_label"]

_FLAG_NAMES = TCP_FLAG_NAMES + ("NS",)  # records keep the 9th bit (NS)
_ICMP = {0: "echo reply", 3: "destination unreachable", 5: "redirect", 8: "echo request",
         11: "time exceeded"}
_ICMP6 = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
          128: "echo request", 129: "echo reply", 133: "router solicitation",
          134: "router advertisement", 135: "neighbor solicitation", 136: "neighbor advertisement"}
# (protocol, type, code) of "port unreachable": ICMP (RFC 792) and ICMPv6 (RFC 4443)
_PORT_UNREACHABLE = ((F.IPPROTO_ICMP, 3, 3), (F.IPPROTO_ICMPV6, 1, 4))
# Transport protocols whose header the record holds: ports (TCP, UDP), or type and code (ICMP).
_WITH_PORTS = (F.IPPROTO_TCP, F.IPPROTO_UDP)
_ICMPS = (F.IPPROTO_ICMP, F.IPPROTO_ICMPV6)
_WITH_PORTS_OR_TYPES = _WITH_PORTS + _ICMPS


def flag_names(flags: int) -> list:
    """TCP flag names in header order: ``0x12 -> ["SYN", "ACK"]``."""
    return [name for bit, name in enumerate(_FLAG_NAMES) if flags >> bit & 1]


def proto_label(rec: tuple) -> str:
    """``"tcp"``, ``"udp"``, ``"icmp"``, ``"icmp6"``, ``"arp"``, ``"ip-47"``, ``"ether-0x88cc"``..."""
    if rec[F.PROTO] >= 0:
        return proto_name(rec[F.PROTO])
    if rec[F.ETHERTYPE] == F.ETH_ARP:
        return "arp"
    if rec[F.SRC] is not None:
        return "ip"
    if rec[F.ETHERTYPE] < 0:
        return f"link-{rec[F.LINKTYPE]}"
    return f"ether-0x{rec[F.ETHERTYPE]:04x}"


def _status_words(status: int) -> list:
    words = []
    if status & S_TRUNC:
        words.append("truncated")
    if status & S_FRAG:
        words.append("fragment")
    if status & S_MALFORMED:
        words.append("malformed")
    if status & S_IPCSUM_BAD:
        words.append("bad-ip-checksum")
    if status & S_L4CSUM_BAD:
        words.append("bad-checksum")
    return words


def _payload(rec, frame: bytes) -> bytes:
    if rec[F.PROTO] in _WITH_PORTS_OR_TYPES and not rec[F.STATUS] & S_L4:
        return b""  # the transport header itself is cut or broken: no payload to speak of
    return bytes(frame[rec[F.PAYLOAD_OFF]:rec[F.PAYLOAD_OFF] + rec[F.PAYLOAD_LEN]])


def packet_json(n: int, rec: tuple, frame: bytes, note: Optional[str] = None) -> dict:
    """The JSON object of one packet (``n`` counts from 1); ``frame`` is its captured bytes."""
    payload = _payload(rec, frame)
    l4 = rec[F.PROTO] in _WITH_PORTS_OR_TYPES and rec[F.STATUS] & S_L4
    ports = rec[F.PROTO] in _WITH_PORTS and rec[F.STATUS] & S_L4
    status = rec[F.STATUS]
    out = {
        "n": n,
        "ts": rec[F.TS_NS] / 1e9,
        "ts_ns": rec[F.TS_NS],
        "src": rec[F.SRC],
        "dst": rec[F.DST],
        "proto": proto_label(rec),
        "sport": rec[F.SPORT] if ports else None,
        "dport": rec[F.DPORT] if ports else None,
        "flags": flag_names(rec[F.FLAGS]) if rec[F.PROTO] == F.IPPROTO_TCP and l4 else [],
        "length": rec[F.CAPLEN],
        "wirelen": rec[F.WIRELEN],
        "payload": payload.hex(),
        "payload_len": len(payload),
        "payload_text": payload.decode("utf-8", "backslashreplace"),
    }
    if rec[F.PROTO] == F.IPPROTO_TCP and l4:
        out["seq"], out["ack"] = rec[F.SEQ], rec[F.ACK]
    if rec[F.PROTO] in _ICMPS and l4:
        out["icmp_type"], out["icmp_code"] = rec[F.SPORT], rec[F.DPORT]
    out["checksum"] = ("ok" if status & S_L4CSUM_OK else "bad" if status & S_L4CSUM_BAD
                       else None)
    out["status"] = _status_words(status)
    out["interface"] = rec[F.IFID]  # pcapng interface number (0 in pcap files)
    out["note"] = note
    return out


def _endpoint(addr: Optional[str], port) -> str:
    if addr is None:
        return "?"
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _tcp_detail(rec, frame: bytes) -> str:
    l4, poff = rec[F.L4_OFF], rec[F.PAYLOAD_OFF]
    parts = [f"seq={rec[F.SEQ]}"]
    if rec[F.FLAGS] & F.TCP_ACK:
        parts.append(f"ack={rec[F.ACK]}")
    if l4 + 16 <= len(frame):
        parts.append("win=%d" % struct.unpack_from(">H", frame, l4 + 14))
    parts.append(f"len={rec[F.PAYLOAD_LEN]}")
    opts = []
    for name, value in tcp_options(frame[l4 + 20:poff]):
        if name in ("nop", "eol"):
            continue
        if name == "ts":
            opts.append(f"TS {value[0]}:{value[1]}")
        elif name == "sack":
            opts.append("sack " + ",".join(f"{a}-{b}" for a, b in value))
        elif value is None or isinstance(value, bytes):
            opts.append(name)  # no value, or raw bytes of an unknown kind: the name says enough
        else:
            opts.append(f"{name} {value}")
    if opts:
        parts.append("[" + ", ".join(opts) + "]")
    return " ".join(parts)


def _clock(ts_ns: int) -> str:
    sec, ns = divmod(ts_ns, 1_000_000_000)
    try:
        return time.strftime("%H:%M:%S", time.localtime(sec)) + f".{ns // 1000:06d}"
    except (OverflowError, OSError, ValueError):
        return f"{sec}.{ns // 1000:06d}"


_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x5C: "\\\\", 0x27: "\\'"}


def _show(data: bytes) -> str:
    """Payload bytes as readable text: printable ASCII as is, the rest escaped once (``\\xff``)."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b not in _ESCAPES
                   else _ESCAPES.get(b, f"\\x{b:02x}") for b in data)


def _unreachable_port(rec, frame: bytes) -> Optional[str]:
    """``"127.0.0.1 udp port 9999 unreachable"`` (as tcpdump says it) for an ICMP port
    unreachable whose quoted packet shows its IP header and ports; else None."""
    if (rec[F.PROTO], rec[F.SPORT], rec[F.DPORT]) not in _PORT_UNREACHABLE:
        return None
    quoted = _payload(rec, frame)  # the start of the packet that was refused
    if ":" in rec[F.SRC]:
        if len(quoted) < 40 or quoted[0] >> 4 != 6:
            return None
        hl, proto, dst = 40, quoted[6], inet_ntop(AF_INET6, quoted[24:40])
    else:
        if len(quoted) < 20 or quoted[0] >> 4 != 4 or quoted[0] & 15 < 5:
            return None
        hl, proto, dst = (quoted[0] & 15) * 4, quoted[9], inet_ntop(AF_INET, quoted[16:20])
    if proto not in _WITH_PORTS or len(quoted) < hl + 4:
        return None
    port = quoted[hl + 2] << 8 | quoted[hl + 3]
    return f"{dst} {'tcp' if proto == F.IPPROTO_TCP else 'udp'} port {port} unreachable"


def packet_line(n: int, rec: tuple, frame: bytes, note: Optional[str] = None) -> str:
    """One packet as one line of text, like tcpdump's but with names spelled out."""
    proto = proto_label(rec)
    ports = rec[F.PROTO] in _WITH_PORTS and rec[F.STATUS] & S_L4
    sport, dport = (rec[F.SPORT], rec[F.DPORT]) if ports else (None, None)
    head = f"{n:>5}  {_clock(rec[F.TS_NS])}  "
    quoted = None
    if rec[F.SRC] is None:
        body = f"{proto.upper()} {rec[F.CAPLEN]} bytes"
    else:
        body = f"{_endpoint(rec[F.SRC], sport)} > {_endpoint(rec[F.DST], dport)}  {proto.upper()}"
        if rec[F.PROTO] == F.IPPROTO_TCP and rec[F.STATUS] & S_L4:
            body += " [" + ", ".join(flag_names(rec[F.FLAGS])) + "] " + _tcp_detail(rec, frame)
        elif rec[F.PROTO] in _ICMPS and rec[F.STATUS] & S_L4:
            names = _ICMP if rec[F.PROTO] == F.IPPROTO_ICMP else _ICMP6
            quoted = _unreachable_port(rec, frame)
            what = quoted or names.get(rec[F.SPORT], "type " + str(rec[F.SPORT]))
            body += f" {what} (code {rec[F.DPORT]}) len={rec[F.PAYLOAD_LEN]}"
        elif rec[F.PROTO] not in _WITH_PORTS_OR_TYPES or rec[F.STATUS] & S_L4:
            body += f" len={rec[F.PAYLOAD_LEN]}"
        plen = rec[F.PAYLOAD_LEN]
        if plen and (rec[F.PROTO] not in _WITH_PORTS_OR_TYPES or rec[F.STATUS] & S_L4) \
                and not quoted:
            body += "  '" + _show(_payload(rec, frame)[:40]) + "'" + ("..." if plen > 40 else "")
    words = _status_words(rec[F.STATUS])
    if words:
        body += "  {" + ", ".join(words) + "}"
    if note:
        body += f"  <- {note}"
    return head + body


class Annotator:
    """Names the steps of TCP connections as records go by (feed them in order).

    ``note(rec)`` returns e.g. ``"SYN: handshake 1/3, the client asks to connect"``
    or ``None`` for packets that are neither handshake nor teardown.
    """

    def __init__(self) -> None:
        self._flows: dict = {}

    def note(self, rec: tuple) -> Optional[str]:
        if rec[F.PROTO] != F.IPPROTO_TCP or not rec[F.STATUS] & S_L4:
            return None
        src, dst, sport, dport = rec[F.SRC], rec[F.DST], rec[F.SPORT], rec[F.DPORT]
        flags = rec[F.FLAGS]
        key = (src, sport, dst, dport) if (src, sport) <= (dst, dport) else (dst, dport, src, sport)
        flow = self._flows.setdefault(key, {"client": None, "phase": 0, "fins": set()})
        me = (src, sport)
        syn, ack = flags & F.TCP_SYN, flags & F.TCP_ACK
        fin, rst = flags & F.TCP_FIN, flags & F.TCP_RST
        if rst:
            refused = flow["phase"] == 1  # the answer to a SYN is a RST
            flow["phase"] = 9
            if refused:
                return f"RST: connection refused (nothing listens on port {sport})"
            return "RST: connection reset (aborted)"
        if syn and not ack:
            flow.update(client=me, phase=1, fins=set())
            return "SYN: handshake 1/3, the client asks to connect"
        if syn and ack:
            flow["phase"] = 2
            return "SYN-ACK: handshake 2/3, the server accepts"
        if fin:
            who = "client" if me == flow["client"] else "server" if flow["client"] else "one side"
            flow["fins"].add(me)
            flow["phase"] = max(flow["phase"], 4)
            return f"FIN: teardown, the {who} closes its direction"
        if ack and flow["phase"] == 2 and me == flow["client"]:
            flow["phase"] = 3
            return "ACK: handshake 3/3, connection established"
        if ack and flow["phase"] == 4 and len(flow["fins"]) == 2:
            flow["phase"] = 5
            return "ACK: teardown done, connection closed"
        return None


def json_line(n: int, rec: tuple, frame: bytes, note: Optional[str] = None) -> str:
    """The JSON text of :func:`packet_json` (one line, as ``dissect --json`` prints it)."""
    from json import dumps  # here, not at the top: text output starts faster without it

    return dumps(packet_json(n, rec, frame, note))
