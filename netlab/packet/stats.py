"""Statistics over records: what ``dissect --stats`` counts, shared by both cores.

Counting needs no compiled twin: this module works on record tuples (fields
in :mod:`netlab.packet.fields`), from whichever core made them. The compiled
core's stats path counts in C and shapes its tables in C too; its
``aggregate_records`` and the public names below are these.

* :func:`aggregate_records` - the counters of any iterable of records (a
  filtered ``iter_records``, ``sniff``'s live packets);
* :func:`finish_stats` - raw counters into the dict ``--json`` prints;
* :func:`proto_name`, :func:`tcp_state_name` - the words for the numbers.

Byte counts are wire lengths (``wirelen``), i.e. what was on the wire even
when the capture kept less. A port counts every packet that has it at either
end. A flow is the bidirectional 5-tuple of a TCP or UDP packet; its ``src``
is the sender of its first packet (the client, when the capture saw the SYN).
"""
from __future__ import annotations

from operator import itemgetter
from typing import Iterable

from netlab.packet import fields as F
from netlab.packet.pcap import CaptureError

__all__ = ["aggregate_records", "finish_stats", "proto_name", "tcp_state_name"]


def proto_name(proto: int) -> str:
    """``6 -> "tcp"``, ``58 -> "icmp6"``, unknown numbers -> ``"ip-N"``."""
    return F.PROTO_NAMES.get(proto) or f"ip-{proto}"


def tcp_state_name(state: int) -> str:
    """One word for a TCP flow's state bits (``T_*``), the most advanced event first."""
    if state & F.T_RST:
        return "reset"
    if state & F.T_FIN_A and state & F.T_FIN_B:
        return "closed"
    if state & (F.T_FIN_A | F.T_FIN_B):
        return "closing"
    if state & F.T_ACK:
        return "established"
    if state & F.T_SYNACK:
        return "syn-ack"
    if state & F.T_SYN:
        return "syn-sent"
    return "mid-stream"


# What the counters look at in a record: packets alike in these fields count alike.
_SHAPE = (F.WIRELEN, F.CAPLEN, F.ETHERTYPE, F.SRC, F.DST, F.PROTO, F.SPORT, F.DPORT, F.FLAGS,
          F.STATUS)
_shape_of = itemgetter(*_SHAPE)

# The status bits counted one by one: raw counter name -> bit.
_STATUS_COUNTERS = {"vlan": F.S_VLAN, "fragments": F.S_FRAG, "truncated": F.S_TRUNC,
                    "malformed": F.S_MALFORMED, "checked": F.S_CHECKED,
                    "ip_checksum_bad": F.S_IPCSUM_BAD, "l4_checksum_bad": F.S_L4CSUM_BAD}


def _count_shapes(records: Iterable[tuple], shapes: dict) -> None:
    """Pass 1: count identical packet *shapes*, remembering where each was first and last.

    Real captures repeat a few shapes (same addresses, ports, flags, lengths)
    over and over, so one dictionary update per packet does the per-packet
    work; pass 2 (:class:`_Tally`) adds each shape to the tables once, with
    its count. The only order-dependent rule (an ACK counts as the
    handshake's third step only after the SYN-ACK) is kept exact by the
    first and last positions.
    """
    get = shapes.get
    for i, rec in enumerate(records):
        shape = _shape_of(rec)
        seen = get(shape)
        if seen is None:
            shapes[shape] = [1, i, i]
        else:
            seen[0] += 1
            seen[2] = i


class _Flow:
    """One bidirectional TCP or UDP flow, as its first packet named it."""

    __slots__ = ("src", "sport", "dst", "dport", "proto", "packets", "bytes", "state",
                 "synack_first", "ack_last")

    def __init__(self, src, sport, dst, dport, proto) -> None:
        self.src, self.sport, self.dst, self.dport, self.proto = src, sport, dst, dport, proto
        self.packets = self.bytes = self.state = 0
        self.synack_first = None  # position of the first SYN-ACK
        self.ack_last = -1        # position of the last plain ACK

    def add_tcp(self, src, sport, flags: int, first: int, last: int) -> None:
        """Fold the TCP flags of packets from (src, sport) into the flow's state."""
        if flags & F.TCP_SYN and not flags & F.TCP_ACK:
            self.state |= F.T_SYN
        if flags & (F.TCP_SYN | F.TCP_ACK) == F.TCP_SYN | F.TCP_ACK:
            self.state |= F.T_SYNACK
            if self.synack_first is None or first < self.synack_first:
                self.synack_first = first
        if not flags & F.TCP_SYN and flags & F.TCP_ACK and last > self.ack_last:
            self.ack_last = last
        if flags & F.TCP_FIN:
            from_first_sender = (src, sport) == (self.src, self.sport)
            self.state |= F.T_FIN_A if from_first_sender else F.T_FIN_B
        if flags & F.TCP_RST:
            self.state |= F.T_RST

    def row(self) -> list:
        # The third step of the handshake: an ACK later than the first SYN-ACK.
        if self.synack_first is not None and self.ack_last > self.synack_first:
            self.state |= F.T_ACK
        return [self.src, self.sport, self.dst, self.dport, self.proto, self.packets,
                self.bytes, self.state]


class _Tally:
    """Pass 2: the raw counters, each packet shape added with its count."""

    def __init__(self) -> None:
        self.raw = dict.fromkeys(("packets", "bytes", "captured_bytes", "ipv4", "ipv6",
                                  "non_ip", *_STATUS_COUNTERS), 0)
        self.protos: dict = {}  # IP protocol number -> [packets, bytes]
        self.ports: dict = {}   # (protocol, port) -> [packets, bytes]
        self.flows: dict = {}   # (proto, lower end, its port, upper end, its port) -> _Flow
        self.arp = [0, 0]
        self.other = [0, 0]

    def add(self, shape: tuple, count: int, first: int, last: int) -> None:
        wirelen, caplen, ethertype, src, dst, proto, sport, dport, flags, status = shape
        raw = self.raw
        raw["packets"] += count
        raw["bytes"] += wirelen * count
        raw["captured_bytes"] += caplen * count
        for name, bit in _STATUS_COUNTERS.items():
            if status & bit:
                raw[name] += count
        if src is None:  # not IP: ARP, or something else
            raw["non_ip"] += count
            _add(self.arp if ethertype == F.ETH_ARP else self.other, count, wirelen)
            return
        raw["ipv6" if ":" in src else "ipv4"] += count
        if proto < 0:  # an IP header without a protocol we could read
            _add(self.other, count, wirelen)
            return
        _add(self.protos.setdefault(proto, [0, 0]), count, wirelen)
        if not (status & F.S_L4 and proto in (F.IPPROTO_TCP, F.IPPROTO_UDP)):
            return
        for port in ((sport,) if sport == dport else (sport, dport)):
            _add(self.ports.setdefault((proto, port), [0, 0]), count, wirelen)
        # One key for both directions: the smaller endpoint first.
        if (src, sport) <= (dst, dport):
            key = (proto, src, sport, dst, dport)
        else:
            key = (proto, dst, dport, src, sport)
        flow = self.flows.get(key)
        if flow is None:  # shapes come in first-seen order: this is the flow's first packet
            flow = self.flows[key] = _Flow(src, sport, dst, dport, proto)
        flow.packets += count
        flow.bytes += wirelen * count
        if proto == F.IPPROTO_TCP:
            flow.add_tcp(src, sport, flags, first, last)

    def counters(self, error) -> dict:
        return dict(self.raw, protos=self.protos, arp=self.arp, other=self.other,
                    ports=self.ports, flows=[flow.row() for flow in self.flows.values()],
                    error=error)


def _add(entry: list, count: int, wirelen: int) -> None:
    entry[0] += count
    entry[1] += wirelen * count


def finish_stats(raw: dict) -> dict:
    """Shape raw counters into the stats dict ``--json`` prints."""
    protocols = [{"proto": proto_name(p), "number": p, "packets": v[0], "bytes": v[1]}
                 for p, v in raw["protos"].items()]
    for name, (pk, by) in (("arp", raw["arp"]), ("other", raw["other"])):
        if pk:
            protocols.append({"proto": name, "number": None, "packets": pk, "bytes": by})
    protocols.sort(key=lambda r: (-r["packets"], -r["bytes"], r["proto"]))
    ports = [{"proto": proto_name(p), "port": port, "packets": v[0], "bytes": v[1]}
             for (p, port), v in raw["ports"].items()]
    ports.sort(key=lambda r: (-r["packets"], -r["bytes"], r["proto"], r["port"]))
    flows = []
    tcp = {"flows": 0, "handshakes": 0, "syn_without_synack": 0, "fin": 0, "closed": 0, "rst": 0}
    for src, sport, dst, dport, proto, pk, by, state in raw["flows"]:
        row = {"proto": proto_name(proto), "src": src, "sport": sport, "dst": dst,
               "dport": dport, "packets": pk, "bytes": by, "state": None}
        if proto == F.IPPROTO_TCP:
            row["state"] = tcp_state_name(state)
            tcp["flows"] += 1
            tcp["handshakes"] += bool(state & F.T_ACK)
            tcp["syn_without_synack"] += bool(state & F.T_SYN and not state & F.T_SYNACK)
            tcp["fin"] += bool(state & (F.T_FIN_A | F.T_FIN_B))
            tcp["closed"] += bool(state & F.T_FIN_A and state & F.T_FIN_B)
            tcp["rst"] += bool(state & F.T_RST)
        flows.append(row)
    keys = ("packets", "bytes", "captured_bytes", "ipv4", "ipv6", "non_ip", "vlan",
            "fragments", "truncated", "malformed")
    out = {k: raw[k] for k in keys}
    out["checksums"] = {"checked": raw["checked"], "ip_bad": raw["ip_checksum_bad"],
                        "l4_bad": raw["l4_checksum_bad"]}
    out.update(protocols=protocols, ports=ports, flows=flows, tcp=tcp, error=raw["error"])
    return out


def aggregate_records(records: Iterable[tuple]) -> dict:
    """Stats over any iterable of record tuples (e.g. a filtered ``iter_records``)."""
    shapes: dict = {}
    error = None
    try:
        _count_shapes(records, shapes)  # on damage, the shapes counted so far stay
    except CaptureError as exc:
        error = {"offset": exc.offset, "message": str(exc)}
    tally = _Tally()
    for shape, (count, first, last) in shapes.items():
        tally.add(shape, count, first, last)
    return finish_stats(tally.counters(error))
