"""Records and statistics over a whole capture: the readable twin.

Two ways through a capture, both offered by each backend:

* :func:`iter_records` - the *records path*: one compact tuple per frame
  (fields in :data:`netlab._pycore.decode.RECORD_FIELDS`), what ``dissect``
  iterates;
* :func:`aggregate` - the *stats path*: counters only (packets and bytes per
  protocol, per port, per flow, TCP flow states). The compiled core runs this
  loop in C with the GIL released and makes no Python object per packet.

Byte counts are wire lengths (``wirelen``), i.e. what was on the wire even
when the capture kept less. A port counts every packet that has it at either
end. A flow is the bidirectional 5-tuple of a TCP or UDP packet; its ``src``
is the sender of its first packet (the client, when the capture saw the SYN).
"""
from __future__ import annotations

from typing import Iterable, Iterator

from netlab._pycore.capture import CaptureError, walk
from netlab._pycore.decode import S_CHECKED, S_FRAG, S_IPCSUM_BAD, S_L4, S_L4CSUM_BAD, \
    S_MALFORMED, S_TRUNC, S_VLAN
from netlab.pfilter import predicate

__all__ = [
    "PROTO_NAMES", "T_ACK", "T_FIN_A", "T_FIN_B", "T_RST", "T_SYN", "T_SYNACK",
    "aggregate", "aggregate_records", "finish_stats", "iter_batches", "iter_records", "proto_name",
    "tcp_state_name",
]

PROTO_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 41: "ipv6-in-ip", 47: "gre",
               50: "esp", 51: "ah", 58: "icmp6", 89: "ospf", 103: "pim", 132: "sctp"}

# TCP flow state bits (the same values in src_c/walk.h).
T_SYN = 0x01     # SYN without ACK seen (the client's opening)
T_SYNACK = 0x02  # SYN+ACK seen (the server's answer)
T_ACK = 0x04     # an ACK after the SYN-ACK: the three-way handshake is complete
T_FIN_A = 0x08   # FIN from the flow's first sender
T_FIN_B = 0x10   # FIN from the other side
T_RST = 0x20     # RST seen


def proto_name(proto: int) -> str:
    """``6 -> "tcp"``, ``58 -> "icmp6"``, unknown numbers -> ``"ip-N"``."""
    return PROTO_NAMES.get(proto) or f"ip-{proto}"


def tcp_state_name(state: int) -> str:
    """One word for a TCP flow's state bits, the most advanced event first."""
    if state & T_RST:
        return "reset"
    if state & T_FIN_A and state & T_FIN_B:
        return "closed"
    if state & (T_FIN_A | T_FIN_B):
        return "closing"
    if state & T_ACK:
        return "established"
    if state & T_SYNACK:
        return "syn-ack"
    if state & T_SYN:
        return "syn-sent"
    return "mid-stream"


def iter_records(buf, checks: bool = False) -> Iterator[tuple]:
    """Iterate one record tuple per frame of a pcap/pcapng buffer (e.g. an mmap).

    A file that is not a capture raises :class:`CaptureError` at once; a
    damaged record raises it (with ``.offset``) after every good record
    before it was yielded.
    """
    return walk(buf, bool(checks))


def _count(records: Iterable[tuple], shapes: dict) -> None:
    """Pass 1: count identical packet *shapes*, remembering where each was first and last.

    Real captures repeat a few shapes (same addresses, ports, flags, lengths)
    over and over, so one dictionary update per packet does the per-packet
    work; pass 2 (:func:`_expand`) turns shapes into the tables. The only
    order-dependent rule (an ACK counts as the handshake's third step only
    after the SYN-ACK) is kept exact by the first/last positions.
    """
    get = shapes.get
    i = 0
    for r in records:
        key = (r[3], r[2], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[18])
        seen = get(key)
        if seen is None:
            shapes[key] = [1, i, i]
        else:
            seen[0] += 1
            seen[2] = i
        i += 1


def _expand(shapes: dict, error) -> dict:
    """Pass 2: from counted shapes (in first-seen order) to the raw counters."""
    n = nbytes = captured = ip4 = ip6 = non_ip = 0
    vlan = fragments = truncated = malformed = checked = ip_bad = l4_bad = 0
    protos: dict = {}
    ports: dict = {}
    flows: dict = {}  # canonical 5-tuple -> [src, sport, dst, dport, proto, pk, by, state, synack_first, ack_last]
    arp = [0, 0]
    other = [0, 0]
    for (w, caplen, et, src, dst, proto, sport, dport, flags, status), (c, first, last) in shapes.items():
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
        if src is None:
            non_ip += c
            bucket = arp if et == 0x0806 else other
            bucket[0] += c
            bucket[1] += w * c
            continue
        if ":" in src:
            ip6 += c
        else:
            ip4 += c
        if proto < 0:
            other[0] += c
            other[1] += w * c
            continue
        entry = protos.setdefault(proto, [0, 0])
        entry[0] += c
        entry[1] += w * c
        if not (status & S_L4 and (proto == 6 or proto == 17)):
            continue
        for port in ((sport,) if sport == dport else (sport, dport)):
            entry = ports.setdefault((proto, port), [0, 0])
            entry[0] += c
            entry[1] += w * c
        # Bidirectional flow key: the smaller endpoint first.
        if (src, sport) <= (dst, dport):
            key = (proto, src, sport, dst, dport)
        else:
            key = (proto, dst, dport, src, sport)
        flow = flows.get(key)
        if flow is None:  # shapes come in first-seen order: this is the flow's first packet
            flow = flows[key] = [src, sport, dst, dport, proto, 0, 0, 0, None, -1]
        flow[5] += c
        flow[6] += w * c
        if proto == 6:
            state = flow[7]
            if flags & 0x02 and not flags & 0x10:
                state |= T_SYN
            if flags & 0x12 == 0x12:
                state |= T_SYNACK
                if flow[8] is None or first < flow[8]:
                    flow[8] = first
            if not flags & 0x02 and flags & 0x10 and last > flow[9]:
                flow[9] = last
            if flags & 0x01:
                same = src == flow[0] and sport == flow[1] and dst == flow[2] and dport == flow[3]
                state |= T_FIN_A if same else T_FIN_B
            if flags & 0x04:
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
    """Shape raw counters (from either backend) into the stats dict ``--json`` prints."""
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
        if proto == 6:
            row["state"] = tcp_state_name(state)
            tcp["flows"] += 1
            tcp["handshakes"] += bool(state & T_ACK)
            tcp["syn_without_synack"] += bool(state & T_SYN and not state & T_SYNACK)
            tcp["fin"] += bool(state & (T_FIN_A | T_FIN_B))
            tcp["closed"] += bool(state & T_FIN_A and state & T_FIN_B)
            tcp["rst"] += bool(state & T_RST)
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
        _count(records, shapes)  # on damage, the shapes counted so far stay
    except CaptureError as exc:
        error = {"offset": exc.offset, "message": str(exc)}
    return finish_stats(_expand(shapes, error))


def aggregate(buf, checks: bool = False, program=None) -> dict:
    """Stats over a whole pcap/pcapng buffer; a damaged record ends the walk.

    The counts cover every frame before the damage; ``error`` is then
    ``{"offset": ..., "message": ...}`` (``None`` for a clean file). A file
    that is not a capture at all raises :class:`CaptureError` instead.
    ``program`` (a :mod:`netlab.pfilter` program) counts the matching packets only.
    """
    records = iter_records(buf, checks)
    if program is not None:
        records = filter(predicate(program), records)
    return aggregate_records(records)


def iter_batches(buf, checks: bool = False, size: int = 64,
                 program=None) -> Iterator[list]:
    """Iterate lists of up to ``size`` record tuples; ``program`` keeps matching ones only.

    The records of :func:`iter_records` a list at a time: the compiled twin
    makes each list in one call (and runs the filter program in C), so a
    Python loop over a batch pays no call per packet.
    """
    if size < 1:
        raise ValueError(f"batch size {size}: give 1 or more")
    records = iter_records(buf, checks)  # not a capture: CaptureError now
    if program is not None:
        records = filter(predicate(program), records)
    return _batches(records, size)


def _batches(records, size: int) -> Iterator[list]:
    batch: list = []
    try:
        for rec in records:
            batch.append(rec)
            if len(batch) == size:
                yield batch
                batch = []
    except CaptureError:
        if batch:  # the good records before the damage come first
            yield batch
        raise
    if batch:
        yield batch
