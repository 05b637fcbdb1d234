"""Decode a capture file packet by packet, or as statistics: the ``dissect`` library.

:func:`dissect` yields one :class:`Record` per packet (the packet core's
record tuple with names), :func:`packet_json` turns one into the JSON object
``netlab dissect --json`` prints, :func:`packet_line` into the one-line text
form, and :class:`Annotator` names the steps of TCP handshakes and teardowns.
:func:`capture_stats` runs the stats path (C speed on the compiled core).

JSON payload encoding: ``payload`` is the transport payload as a **hex
string** (exact, byte for byte: ``bytes.fromhex(obj["payload"])`` gives the
bytes back); ``payload_text`` is the same bytes decoded as UTF-8 with
undecodable bytes written as ``\\xNN``, for reading.
"""
from __future__ import annotations

import collections
import struct
import time
from typing import Callable, Iterator, Optional

from netlab import packet
from netlab._pycore.decode import (S_FRAG, S_IPCSUM_BAD, S_L4, S_L4CSUM_BAD, S_L4CSUM_OK,
                                   S_MALFORMED, S_TRUNC)
from netlab.pcap import open_capture

__all__ = ["Annotator", "Record", "capture_stats", "dissect", "flag_names", "open_and_stats",
           "packet_json", "packet_line", "proto_label"]

Record = collections.namedtuple("Record", packet.RECORD_FIELDS)

_FLAG_NAMES = packet.TCP_FLAG_NAMES + ("NS",)  # records keep the 9th bit (NS)
_ICMP = {0: "echo reply", 3: "destination unreachable", 5: "redirect", 8: "echo request",
         11: "time exceeded"}
_ICMP6 = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
          128: "echo request", 129: "echo reply", 133: "router solicitation",
          134: "router advertisement", 135: "neighbor solicitation", 136: "neighbor advertisement"}


def flag_names(flags: int) -> list:
    """TCP flag names in header order: ``0x12 -> ["SYN", "ACK"]``."""
    return [name for bit, name in enumerate(_FLAG_NAMES) if flags >> bit & 1]


def proto_label(rec: tuple) -> str:
    """``"tcp"``, ``"udp"``, ``"icmp"``, ``"icmp6"``, ``"arp"``, ``"ip-47"``, ``"ether-0x88cc"``..."""
    if rec[9] >= 0:
        return packet.proto_name(rec[9])
    if rec[6] == 0x0806:
        return "arp"
    if rec[7] is not None:
        return "ip"
    if rec[6] < 0:
        return f"link-{rec[5]}"
    return f"ether-0x{rec[6]:04x}"


def dissect(buf, predicate: Optional[Callable[[tuple], bool]] = None,
            checks: bool = False) -> Iterator[Record]:
    """Records of a capture buffer (see :func:`netlab.pcap.open_capture`), filtered.

    A damaged record raises :class:`netlab.packet.CaptureError` after every
    good record before it was yielded.
    """
    for rec in packet.iter_records(buf, checks):
        if predicate is None or predicate(rec):
            yield Record._make(rec)


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
    if rec[9] in (6, 17, 1, 58) and not rec[18] & S_L4:
        return b""  # the transport header itself is cut or broken: no payload to speak of
    return bytes(frame[rec[16]:rec[16] + rec[17]])


def packet_json(n: int, rec: tuple, frame: bytes, note: Optional[str] = None) -> dict:
    """The JSON object of one packet (``n`` counts from 1); ``frame`` is its captured bytes."""
    payload = _payload(rec, frame)
    l4 = rec[9] in (6, 17, 1, 58) and rec[18] & S_L4
    ports = rec[9] in (6, 17) and rec[18] & S_L4
    status = rec[18]
    out = {
        "n": n,
        "ts": rec[1] / 1e9,
        "ts_ns": rec[1],
        "src": rec[7],
        "dst": rec[8],
        "proto": proto_label(rec),
        "sport": rec[10] if ports else None,
        "dport": rec[11] if ports else None,
        "flags": flag_names(rec[12]) if rec[9] == 6 and l4 else [],
        "length": rec[2],
        "wirelen": rec[3],
        "payload": payload.hex(),
        "payload_len": len(payload),
        "payload_text": payload.decode("utf-8", "backslashreplace"),
    }
    if rec[9] == 6 and l4:
        out["seq"], out["ack"] = rec[13], rec[14]
    if rec[9] in (1, 58) and l4:
        out["icmp_type"], out["icmp_code"] = rec[10], rec[11]
    out["checksum"] = ("ok" if status & S_L4CSUM_OK else "bad" if status & S_L4CSUM_BAD
                       else None)
    out["status"] = _status_words(status)
    out["interface"] = rec[4]  # pcapng interface number (0 in pcap files)
    out["note"] = note
    return out


def _endpoint(addr: Optional[str], port) -> str:
    if addr is None:
        return "?"
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _tcp_detail(rec, frame: bytes) -> str:
    l4, poff = rec[15], rec[16]
    parts = [f"seq={rec[13]}"]
    if rec[12] & 0x10:
        parts.append(f"ack={rec[14]}")
    if l4 + 16 <= len(frame):
        parts.append("win=%d" % struct.unpack_from(">H", frame, l4 + 14))
    parts.append(f"len={rec[17]}")
    opts = []
    for name, value in packet.tcp_options(frame[l4 + 20:poff]):
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


def packet_line(n: int, rec: tuple, frame: bytes, note: Optional[str] = None) -> str:
    """One packet as one line of text, like tcpdump's but with names spelled out."""
    proto = proto_label(rec)
    ports = rec[9] in (6, 17) and rec[18] & S_L4
    sport, dport = (rec[10], rec[11]) if ports else (None, None)
    head = f"{n:>5}  {_clock(rec[1])}  "
    if rec[7] is None:
        body = f"{proto.upper()} {rec[2]} bytes"
    else:
        body = f"{_endpoint(rec[7], sport)} > {_endpoint(rec[8], dport)}  {proto.upper()}"
        if rec[9] == 6 and rec[18] & S_L4:
            body += " [" + ", ".join(flag_names(rec[12])) + "] " + _tcp_detail(rec, frame)
        elif rec[9] in (1, 58) and rec[18] & S_L4:
            names = _ICMP if rec[9] == 1 else _ICMP6
            body += f" {names.get(rec[10], 'type ' + str(rec[10]))} (code {rec[11]}) len={rec[17]}"
        elif rec[9] not in (6, 17, 1, 58) or rec[18] & S_L4:
            body += f" len={rec[17]}"
        if rec[17] and (rec[9] not in (6, 17, 1, 58) or rec[18] & S_L4):
            body += "  '" + _show(_payload(rec, frame)[:40]) + "'" + ("..." if rec[17] > 40 else "")
    words = _status_words(rec[18])
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
        if rec[9] != 6 or not rec[18] & S_L4:
            return None
        src, dst, sport, dport, flags = rec[7], rec[8], rec[10], rec[11], rec[12]
        key = (src, sport, dst, dport) if (src, sport) <= (dst, dport) else (dst, dport, src, sport)
        flow = self._flows.setdefault(key, {"client": None, "phase": 0, "fins": set()})
        me = (src, sport)
        syn, ack, fin, rst = flags & 0x02, flags & 0x10, flags & 0x01, flags & 0x04
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


def capture_stats(buf, predicate: Optional[Callable[[tuple], bool]] = None,
                  checks: bool = False) -> dict:
    """The stats dict of a capture buffer; with a predicate, over the matching packets only.

    Without a predicate this is the stats path of the packet core (C speed on
    the compiled core); with one, the records path feeds the same counters.
    """
    if predicate is None:
        return packet.aggregate(buf, checks)
    return packet.aggregate_records(
        rec for rec in packet.iter_records(buf, checks) if predicate(rec))


def open_and_stats(path, predicate=None, checks: bool = False) -> dict:
    """:func:`capture_stats` of a file by name."""
    with open_capture(path) as buf:
        return capture_stats(buf, predicate, checks)
