"""Statistics over records: what ``dissect --stats`` counts, shared by both cores.

Counting needs no compiled twin: this module works on record tuples (fields
in :mod:`netlab.packet.fields`), from whichever core made them. The compiled
core's stats path counts in C and shapes its tables in C too; its
``aggregate_records`` and the public names below are these.

* :func:`aggregate_records` - the counters of any iterable of records (a
  filtered ``iter_records``, ``sniff``'s live packets);
* :func:`finish_stats` - raw counters into the dict ``--json`` prints;
* :func:`proto_name`, :func:`tcp_state_name` - the words for the numbers;
* :class:`Rows` - the ``ports`` and ``flows`` tables: read-only sequences of
  row dicts, each row made when it is read (a capture with thousands of
  flows pays for the rows a program looks at, not for all of them).

Byte counts are wire lengths (``wirelen``), i.e. what was on the wire even
when the capture kept less. A port counts every packet that has it at either
end. A flow is the bidirectional 5-tuple of a TCP or UDP packet; its ``src``
is the sender of its first packet (the client, when the capture saw the SYN).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Iterable

from netlab.packet import fields as F
from netlab.packet.fields import (CAPLEN, DPORT, DST, ETH_ARP, ETHERTYPE, FLAGS, IPPROTO_TCP,
                                  IPPROTO_UDP, PROTO, S_CHECKED, S_FRAG, S_IPCSUM_BAD, S_L4,
                                  S_L4CSUM_BAD, S_MALFORMED, S_TRUNC, S_VLAN, SPORT, SRC, STATUS,
                                  T_ACK, T_FIN_A, T_FIN_B, T_RST, T_SYN, T_SYNACK, TCP_ACK,
                                  TCP_FIN, TCP_RST, TCP_SYN, WIRELEN)
from netlab.packet.pcap import CaptureError

__all__ = ["Rows", "aggregate_records", "finish_stats", "proto_name", "rows_equal",
           "tcp_state_name"]


class Rows(Sequence):
    """A table of the stats dict (``ports``, ``flows``): a read-only sequence of row dicts.

    It indexes, slices (a slice is a list), iterates and compares like a
    list of dicts, and ``list(rows)`` is one. Every read makes a new dict, so
    changing a row changes a copy. The compiled core's tables (in
    ``netlab.packet._core``) keep their rows in C and make each dict only when
    it is read; they behave the same, compare equal to these and count as
    ``Rows`` for ``isinstance``. JSON: netlab's
    ``--json`` prints them as arrays; for ``json.dumps`` give ``default=list``.
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: Iterable[dict] = ()) -> None:
        self._rows = list(rows)  # its dicts are the table's own: reads copy them

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [dict(r) for r in self._rows[index]]
        return dict(self._rows[index])

    def __iter__(self):
        for r in self._rows:
            yield dict(r)

    def __eq__(self, other) -> bool:  # != is its inverse (Python derives __ne__)
        return rows_equal(self, other)

    __hash__ = None  # type: ignore[assignment]  # compared by value, like a list

    def __repr__(self) -> str:
        return repr(self._rows)

    def __reduce__(self):
        return Rows, (self._rows,)


def rows_equal(rows, other):
    """``rows == other`` of a :class:`Rows` table: the same dicts in the same order.

    Any sequence of rows compares (a list, another core's table); a string
    or a non-sequence is ``NotImplemented``.
    """
    if not isinstance(other, Sequence) or isinstance(other, (str, bytes, bytearray)):
        return NotImplemented
    if len(rows) != len(other):
        return False
    return all(a == b for a, b in zip(rows, other))


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


def _count_shapes(records: Iterable[tuple], shapes: dict) -> None:
    """Pass 1: count identical packet *shapes*, remembering where each was first and last.

    Real captures repeat a few shapes (same addresses, ports, flags, lengths)
    over and over, so one dictionary update per packet does the per-packet
    work; pass 2 (:func:`_tally`) adds each shape to the tables once, with its
    count. The only order-dependent rule (an ACK counts as the handshake's
    third step only after the SYN-ACK) is kept exact by the first and last
    positions.
    """
    get = shapes.get
    i = 0
    for rec in records:
        # What the counters look at: packets alike in these fields count alike.
        shape = (rec[WIRELEN], rec[CAPLEN], rec[ETHERTYPE], rec[SRC], rec[DST], rec[PROTO],
                 rec[SPORT], rec[DPORT], rec[FLAGS], rec[STATUS])
        seen = get(shape)
        if seen is None:
            shapes[shape] = [1, i, i]
        else:
            seen[0] += 1
            seen[2] = i
        i += 1


def _tally(shapes: dict, error) -> dict:
    """Pass 2: from counted shapes (in first-seen order) to the raw counters.

    Each shape stands for ``c`` packets: every counter below adds what one
    packet of that shape adds, times ``c``.
    """
    n = nbytes = captured = ip4 = ip6 = non_ip = 0
    vlan = fragments = truncated = malformed = checked = ip_bad = l4_bad = 0
    protos: dict = {}  # IP protocol number -> [packets, bytes]
    ports: dict = {}   # (protocol, port) -> [packets, bytes]
    # one key for both directions, the smaller endpoint first -> [src, sport, dst, dport,
    # proto, packets, bytes, state, first SYN-ACK position, last plain ACK position]
    flows: dict = {}
    arp = [0, 0]
    other = [0, 0]
    for (w, caplen, et, src, dst, proto, sport, dport, flags, status), (c, first, last) in \
            shapes.items():
        n += c
        nbytes += w * c
        captured += caplen * c
        vlan += c * bool(status & S_VLAN)
        fragments += c * bool(status & S_FRAG)
        truncated += c * bool(status & S_TRUNC)
        malformed += c * bool(status & S_MALFORMED)
        checked += c * bool(status & S_CHECKED)
        ip_bad += c * bool(status & S_IPCSUM_BAD)
        l4_bad += c * bool(status & S_L4CSUM_BAD)
        if src is None:  # not IP: ARP, or something else
            non_ip += c
            bucket = arp if et == ETH_ARP else other
            bucket[0] += c
            bucket[1] += w * c
            continue
        if ":" in src:
            ip6 += c
        else:
            ip4 += c
        if proto < 0:  # an IP header without a protocol we could read
            other[0] += c
            other[1] += w * c
            continue
        entry = protos.setdefault(proto, [0, 0])
        entry[0] += c
        entry[1] += w * c
        if not (status & S_L4 and (proto == IPPROTO_TCP or proto == IPPROTO_UDP)):
            continue
        for port in ((sport,) if sport == dport else (sport, dport)):
            entry = ports.setdefault((proto, port), [0, 0])
            entry[0] += c
            entry[1] += w * c
        if (src, sport) <= (dst, dport):
            key = (proto, src, sport, dst, dport)
        else:
            key = (proto, dst, dport, src, sport)
        flow = flows.get(key)
        if flow is None:  # shapes come in first-seen order: this is the flow's first packet
            flow = flows[key] = [src, sport, dst, dport, proto, 0, 0, 0, None, -1]
        flow[5] += c
        flow[6] += w * c
        if proto == IPPROTO_TCP:  # the flow's state bits, and where its SYN-ACK / ACK were
            state = flow[7]
            if flags & TCP_SYN and not flags & TCP_ACK:
                state |= T_SYN
            if flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
                state |= T_SYNACK
                if flow[8] is None or first < flow[8]:
                    flow[8] = first
            if not flags & TCP_SYN and flags & TCP_ACK and last > flow[9]:
                flow[9] = last
            if flags & TCP_FIN:
                state |= T_FIN_A if src == flow[0] and sport == flow[1] else T_FIN_B
            if flags & TCP_RST:
                state |= T_RST
            flow[7] = state
    rows = []
    for flow in flows.values():
        # The third step of the handshake: an ACK later than the first SYN-ACK.
        if flow[8] is not None and flow[9] > flow[8]:
            flow[7] |= T_ACK
        rows.append(flow[:8])
    return {
        "packets": n, "bytes": nbytes, "captured_bytes": captured,
        "ipv4": ip4, "ipv6": ip6, "non_ip": non_ip, "vlan": vlan,
        "fragments": fragments, "truncated": truncated, "malformed": malformed,
        "checked": checked, "ip_checksum_bad": ip_bad, "l4_checksum_bad": l4_bad,
        "protos": protos, "arp": arp, "other": other, "ports": ports,
        "flows": rows, "error": error,
    }


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
    out.update(protocols=protocols, ports=Rows(ports), flows=Rows(flows), tcp=tcp,
               error=raw["error"])
    return out


def aggregate_records(records: Iterable[tuple]) -> dict:
    """Stats over any iterable of record tuples (e.g. a filtered ``iter_records``)."""
    shapes: dict = {}
    error = None
    try:
        _count_shapes(records, shapes)  # on damage, the shapes counted so far stay
    except CaptureError as exc:
        error = {"offset": exc.offset, "message": str(exc)}
    return finish_stats(_tally(shapes, error))
