"""Lab 16: ping and traceroute with ICMP — checksum, echo, round trips, timeouts, TTL.

The student's ``ping`` runs in the sandbox as an unprivileged user; the
grading network allows ICMP datagram sockets (``net.ipv4.ping_group_range``
in defs/lab16.toml) and the kernel there does not answer echo requests
(``net.ipv4.icmp_echo_ignore_all``): the grader does, from its own raw ICMP
socket, after a delay it picks at random for each request, or not at all, or
too late, with a stray reply of the wrong sequence number first. So it knows
every true round trip, every loss, and how many requests were really sent.

The student's ``traceroute`` runs in h1 of a private chain of routers made
for each run (:mod:`netlab.labs._topology`), so the grader knows
the exact path. It watches h1's link for the TTL of every probe, makes a
router (or the destination) silent with an nftables rule to see ``*``, and
answers for the destination itself after delays it picks, to check the RTTs.
"""
from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from typing import List, Optional

from netlab.labs import _topology, sandbox
from netlab.labs._probes import bytes_of, call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import run_probe, value_of

__all__ = ["LateDestination", "Responder", "checksum", "echo_request", "error_queue", "hop_lines", "lost",
           "parse", "ping", "silent_router", "trace_max_hops", "trace_path", "trace_rtts", "unprivileged"]

MODULE = "ping"
TRACE = "traceroute"


def internet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def checksum(labdir: str) -> str:
    cases = [os.urandom(n) for n in (8, 37, 200, 1)] + [b"\xff\xff" * 40]
    outs = call_all(labdir, MODULE, [["checksum", [{"bytes": c.hex()}]] for c in cases])
    for data, out in zip(cases, outs):
        got = student_value(out, f"checksum({len(data)} bytes)")
        if got != internet_checksum(data):
            raise CheckFailed(f"checksum of {len(data)} bytes {data[:6].hex()}...: {got!r}, "
                              f"expected {internet_checksum(data)}")
    return "the Internet checksum right for even, odd and carry-heavy data"


def echo_request(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    cases = [(rng.randrange(1 << 16), rng.randrange(1 << 16), os.urandom(n)) for n in (0, 17, 56)]
    outs = call_all(labdir, MODULE, [["build_echo_request", [i, s, {"bytes": p.hex()}]] for i, s, p in cases])
    for (ident, seq, payload), out in zip(cases, outs):
        call = f"build_echo_request({ident}, {seq}, {len(payload)} bytes)"
        got = bytes_of(student_value(out, call))
        if got is None or len(got) != 8 + len(payload):
            raise CheckFailed(f"{call}: {len(got) if got is not None else 'no'} bytes, expected 8 + {len(payload)}")
        kind, code, _, i, s = struct.unpack_from(">BBHHH", got)
        if (kind, code) != (8, 0):
            raise CheckFailed(f"{call}: type {kind} code {code}, an echo request is type 8 code 0")
        if (i, s) != (ident, seq):
            raise CheckFailed(f"{call}: identifier {i} and sequence {s} read back (byte order?)")
        if got[8:] != payload:
            raise CheckFailed(f"{call}: the payload after the header is not the one given")
        if internet_checksum(got) != 0:
            raise CheckFailed(f"{call}: the checksum field does not make the message sum to zero")
    return "echo requests with right type, id, sequence, payload and checksum"


def _ipv4(payload: bytes, options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    header = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload), 1, 0, 64, 1, 0,
                         socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")) + options
    return header + payload


def parse(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    ident, seq, payload = rng.randrange(1 << 16), rng.randrange(1 << 16), os.urandom(24)
    reply = struct.pack(">BBHHH", 0, 0, 0, ident, seq) + payload
    unreachable = struct.pack(">BBHHH", 3, 1, 0, 0, 0) + _ipv4(b"\x08\x00" + os.urandom(6))
    cases = [("an echo reply (datagram socket)", reply, 0),
             ("an echo reply after a 20-byte IPv4 header (raw socket)", _ipv4(reply), 0),
             ("an echo reply after an IPv4 header with 4 bytes of options", _ipv4(reply, b"\x01\x01\x01\x00"), 0),
             ("a destination unreachable", unreachable, 3)]
    outs = call_all(labdir, MODULE, [["parse_icmp", [{"bytes": p.hex()}]] for _, p, _ in cases]
                    + [["parse_icmp", [{"bytes": "0000"}]]])
    for (what, _, kind), out in zip(cases, outs):
        got = student_value(out, f"parse_icmp({what})")
        if not isinstance(got, dict) or got.get("type") != kind:
            raise CheckFailed(f"parse_icmp({what}) gave type {got.get('type') if isinstance(got, dict) else got!r}, "
                              f"expected {kind}")
        if kind == 0 and (got.get("id"), got.get("seq"), bytes_of(got.get("payload"))) != (ident, seq, payload):
            raise CheckFailed(f"parse_icmp({what}): id/seq/payload read wrong "
                              f"({got.get('id')}, {got.get('seq')}; expected {ident}, {seq})")
    if outs[-1].get("error") != "ValueError":
        raise CheckFailed(f"parse_icmp(2 bytes) gave {outs[-1].get('error') or 'a value'}, expected ValueError")
    return "replies read with and without an IP header (options too), other types and short messages"


def unprivileged(labdir: str) -> str:
    """open_socket() as the sandbox's unprivileged user, where ping_group_range allows ICMP datagram sockets."""
    value = value_of(run_probe(labdir, "lab16:probe_open_socket", {}, timeout=5), "open_socket()")
    if not isinstance(value, dict):
        raise CheckFailed(f"open_socket() gave {str(value)[:60]}")
    got = (value.get("family"), value.get("type"), value.get("proto"))
    want = (int(socket.AF_INET), int(socket.SOCK_DGRAM), socket.IPPROTO_ICMP)
    if not sandbox.config.isolated:
        if got[0] != want[0] or got[2] != want[2]:
            raise CheckFailed(f"open_socket() opened family/type/protocol {got}: not an IPv4 ICMP socket")
        return f"an ICMP socket of type {got[1]} (practice mode: the sandbox checks it needs no privilege)"
    if got != want:
        raise CheckFailed(f"open_socket() opened family/type/protocol {got} (kind {value.get('kind')!r}); "
                          f"the grading network allows ICMP datagram sockets to every group, "
                          f"expected {want}")
    return "an ICMP datagram socket, opened without any privilege"


class Responder:
    """The grader's ICMP echo server on the private network (a raw socket).

    The k-th echo request seen gets ``plan[k]``: a delay in seconds before the
    reply, or None for no reply. Each request first gets a stray reply with
    the wrong sequence number, at once; ``late`` (seconds) answers a request
    planned as lost after all, that much later.
    """

    def __init__(self, plan: List[Optional[float]], late: Optional[float] = None, lifetime: float = 10.0) -> None:
        self.plan = plan
        self.late = late
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock.settimeout(0.005)
        self.requests: List[tuple] = []  # (time, ident, seq)
        self._due: List[tuple] = []      # (time, reply bytes)
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @staticmethod
    def reply(ident: int, seq: int, payload: bytes) -> bytes:
        header = struct.pack(">BBHHH", 0, 0, 0, ident, seq)
        return struct.pack(">BBHHH", 0, 0, internet_checksum(header + payload), ident, seq) + payload

    def _send_due(self) -> None:
        now = time.monotonic()
        for item in [d for d in self._due if d[0] <= now]:
            self._due.remove(item)
            try:
                self.sock.sendto(item[1], ("127.0.0.1", 0))
            except OSError:
                pass

    def _loop(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self._send_due()
            try:
                packet = self.sock.recv(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            icmp = packet[(packet[0] & 0x0F) * 4:]
            if len(icmp) < 8 or icmp[0] != 8:
                continue  # our own replies come back here too
            ident, seq = struct.unpack_from(">HH", icmp, 4)
            now = time.monotonic()
            k = len(self.requests)
            self.requests.append((now, ident, seq))
            payload = icmp[8:]
            self._due.append((now, self.reply(ident, (seq + 1000) & 0xFFFF, payload)))
            delay = self.plan[k] if k < len(self.plan) else None
            if delay is not None:
                self._due.append((now + delay, self.reply(ident, seq, payload)))
            elif self.late is not None:
                self._due.append((now + self.late, self.reply(ident, seq, payload)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def _result(out: dict, call: str, count: int) -> dict:
    got = student_value(out, call)
    if not isinstance(got, dict) or not isinstance(got.get("rtts"), list):
        raise CheckFailed(f"{call} returned {str(got)[:60]}, expected {{'sent', 'received', 'rtts'}}")
    if len(got["rtts"]) != count or got.get("sent") != count:
        raise CheckFailed(f"{call}: sent {got.get('sent')!r} with {len(got['rtts'])} RTTs, expected {count}")
    return got


def _ping(labdir: str, plan: List[Optional[float]], timeout: float, late: Optional[float] = None) -> tuple:
    """Run the student's ping against the grader's responder: (result, requests seen, seconds)."""
    responder = Responder(plan, late)
    try:
        start = time.monotonic()
        out = call_all(labdir, MODULE, [["ping", ["127.0.0.1", len(plan), timeout, 0.05]]], timeout=8)[0]
        took = time.monotonic() - start
    finally:
        responder.close()
    call = f"ping('127.0.0.1', {len(plan)}, timeout={timeout})"
    return call, _result(out, call, len(plan)), responder.requests, took


def _ms(rtts: list) -> str:
    return ", ".join("lost" if r is None else f"{r * 1000:.0f}" if isinstance(r, (int, float)) else repr(r)
                     for r in rtts)


def ping(labdir: str) -> str:
    count = 4
    if not sandbox.config.isolated:
        call = f"ping('127.0.0.1', {count})"
        got = _result(call_all(labdir, MODULE, [["ping", ["127.0.0.1", count, 1.0, 0.05]]], timeout=8)[0],
                      call, count)
        if got.get("received") != count or not all(isinstance(r, (int, float)) and 0 < r < 1 for r in got["rtts"]):
            raise CheckFailed(f"{call} gave {got}: loopback answers every echo request")
        return f"{count} replies (practice mode: in the sandbox the grader answers, with known delays)"
    rng = random.Random(os.urandom(8))
    plan = [rng.uniform(0.03, 0.12) for _ in range(count)]
    call, got, requests, _ = _ping(labdir, plan, 1.0)
    if len(requests) != count or len({r[2] for r in requests}) != count:
        raise CheckFailed(f"{call}: the grader saw {len(requests)} echo requests with "
                          f"{len({r[2] for r in requests})} different sequence numbers, expected {count}")
    if got.get("received") != count:
        raise CheckFailed(f"{call}: received {got.get('received')!r}, but the grader answered all {count}")
    bad = [i for i, (r, d) in enumerate(zip(got["rtts"], plan))
           if not isinstance(r, (int, float)) or not d * 0.95 <= r < d + 0.2]
    if bad:
        first = got["rtts"][bad[0]]
        hint = " (a stray reply with another sequence number came first)" if isinstance(first, (int, float)) \
            and first < plan[bad[0]] * 0.95 else ""
        raise CheckFailed(f"{call}: RTTs {_ms(got['rtts'])} ms; the grader answered after {_ms(plan)} ms{hint}")
    return f"RTTs {_ms(got['rtts'])} ms for replies the grader delayed {_ms(plan)} ms, strays ignored"


def lost(labdir: str) -> str:
    if not sandbox.config.isolated:
        return "not measured in practice mode (in the sandbox the grader drops replies to test timeouts)"
    timeout = 0.5
    plan = [0.04, None, 0.04, None]
    call, got, requests, took = _ping(labdir, plan, timeout, late=timeout + 0.1)
    if len(requests) != len(plan):
        raise CheckFailed(f"{call}: {len(requests)} echo requests on the wire, expected {len(plan)}: "
                          f"a lost reply must not stop the pinging")
    want = [True, False, True, False]
    if [isinstance(r, (int, float)) for r in got["rtts"]] != want or got.get("received") != 2:
        raise CheckFailed(f"{call}: RTTs {_ms(got['rtts'])} ms, received {got.get('received')!r}; the grader "
                          f"answered requests 1 and 3 after 40 ms, 2 and 4 only after the timeout")
    if took < 2 * timeout:
        raise CheckFailed(f"{call} returned after {took:.2f} s: it cannot have waited {timeout} s for each lost reply")
    return f"2 of 4 replies lost or late: RTTs {_ms(got['rtts'])} ms, {took:.2f} s in all"


# -- traceroute ---------------------------------------------------------------

_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err
_ORIGIN_LOCAL, _ORIGIN_ICMP = 1, 2


def _extended_err(err: int, origin: int, kind: int, code: int, offender: Optional[str]) -> bytes:
    data = _EXTENDED_ERR.pack(err, origin, kind, code, 0, 0, 0)
    if offender is None:
        return data + struct.pack("=H14x", socket.AF_UNSPEC)
    return data + struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + socket.inet_aton(offender) + bytes(8)


def error_queue(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    router = f"198.19.{rng.randrange(1, 250)}.{rng.randrange(1, 250)}"
    target = f"198.18.{rng.randrange(1, 250)}.{rng.randrange(1, 250)}"
    cases = [("time exceeded", _extended_err(113, _ORIGIN_ICMP, 11, 0, router), (_ORIGIN_ICMP, 11, 0, router)),
             ("port unreachable", _extended_err(111, _ORIGIN_ICMP, 3, 3, target), (_ORIGIN_ICMP, 3, 3, target)),
             ("a local error (message too long)", _extended_err(90, _ORIGIN_LOCAL, 0, 0, None),
              (_ORIGIN_LOCAL, 0, 0, None))]
    outs = call_all(labdir, TRACE, [["parse_error", [{"bytes": d.hex()}]] for _, d, _ in cases]
                    + [["parse_error", [{"bytes": "00" * 10}]]])
    for (what, _, want), out in zip(cases, outs):
        got = student_value(out, f"parse_error({what})")
        fields = tuple(got.get(k) for k in ("origin", "type", "code", "offender")) if isinstance(got, dict) else got
        if fields != want:
            raise CheckFailed(f"parse_error({what}) read origin/type/code/offender {fields}, expected {want}")
    if outs[-1].get("error") != "ValueError":
        raise CheckFailed(f"parse_error(10 bytes) gave {outs[-1].get('error') or 'a value'}, expected ValueError")
    return "sock_extended_err read: origin, ICMP type and code, and the offender's address"


def _hop_problem(line: object, ttl: int, address: Optional[str], rtts: list) -> Optional[str]:
    if not isinstance(line, str) or "\n" in line.strip():
        return "not one line of text"
    words = line.split()
    if not words or words[0] != str(ttl):
        return f"it does not start with the TTL {ttl}"
    words = words[1:]
    if address is not None:
        if not words or words[0] != address:
            return f"the address {address} does not follow the TTL"
        words = words[1:]
    elif any(w.count(".") == 3 for w in words):
        return "nobody answered, yet it shows an address"
    for rtt in rtts:
        if rtt is None:
            if not words or words[0] != "*":
                return "a probe without an answer is not shown as *"
            words = words[1:]
            continue
        try:
            value = float(words[0])
        except (IndexError, ValueError):
            return f"no RTT in ms where {rtt * 1000:.1f} ms belongs"
        if abs(value - rtt * 1000) > 0.06 or words[1:2] != ["ms"]:
            return f"{words[0]} {' '.join(words[1:2])} for an RTT of {rtt * 1000:.1f} ms"
        words = words[2:]
    if words:
        return f"{' '.join(words)!r} left over"
    return None


def hop_lines(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    address = f"198.19.{rng.randrange(1, 250)}.2"
    cases = [(1, address, [rng.randrange(1, 400) / 10000, rng.randrange(1, 400) / 10000]),
             (rng.randrange(2, 30), None, [None, None, None]),
             (rng.randrange(2, 30), address, [rng.randrange(1, 400) / 10000, None])]
    outs = call_all(labdir, TRACE, [["hop_line", list(c)] for c in cases])
    for (ttl, addr, rtts), out in zip(cases, outs):
        call = f"hop_line({ttl}, {addr!r}, {rtts})"
        line = student_value(out, call)
        problem = _hop_problem(line, ttl, addr, rtts)
        if problem:
            raise CheckFailed(f"{call} gave {str(line)[:80]!r}: {problem}")
    return "hop lines with the TTL, the address, RTTs in ms and * for each timeout"


# (max_hops, timeout, probes) of each traceroute run.
PATH_RUN, SILENT_RUN, MAX_HOPS_RUN, RTT_RUN = (6, 1.0, 2), (6, 0.5, 2), (4, 0.4, 1), (6, 0.3, 3)


def _longest(run: tuple) -> float:
    """Seconds a traceroute of ``run`` may take: every probe timing out, and some start-up."""
    max_hops, timeout, probes = run
    return max_hops * probes * timeout + 3


def _in_chain(check, run: tuple, silent: Optional[dict] = None) -> str:
    """``check(chain)`` in a fresh chain of routers, given time for ``run`` and for the chain itself."""
    return _topology.in_chain(check, silent=silent, timeout=_longest(run) + 10)


def _trace(labdir: str, chain, run: tuple) -> tuple:
    """Run the student's traceroute in h1 towards h2: (call, hops, probes on the wire, seconds)."""
    max_hops, timeout, probes = run
    call = f"traceroute('{chain.target}', max_hops={max_hops}, timeout={timeout}, probes={probes})"
    with _topology.Wire(lifetime=_longest(run) + 2) as wire:
        start = time.monotonic()
        out = call_all(labdir, TRACE, [["traceroute", [chain.target, max_hops, timeout, probes]]],
                       timeout=_longest(run))[0]
        took = time.monotonic() - start
    hops = student_value(out, call)
    if not isinstance(hops, list) or not all(isinstance(h, dict) and isinstance(h.get("rtts"), list)
                                             for h in hops):
        raise CheckFailed(f"{call} returned {str(hops)[:80]}, expected a list of {{'ttl', 'address', 'rtts'}}")
    for hop in hops:
        if len(hop["rtts"]) != probes:
            raise CheckFailed(f"{call}: hop {hop.get('ttl')} has {len(hop['rtts'])} RTTs for {probes} probes")
    sent = [ttl for ttl, proto, dst in wire.packets if dst == chain.target]
    return call, hops, sent, took


def _wire_problem(sent: List[int], hops: int, probes: int) -> Optional[str]:
    """What is wrong with the TTLs of the probes seen on h1's link, or None."""
    if not sent:
        return "the grader saw no probe leave h1 towards the destination"
    if sent[0] != 1:
        return f"the first probe left with TTL {sent[0]}: the first hop is found with TTL 1"
    steps = [b - a for a, b in zip(sent, sent[1:])]
    if any(s < 0 or s > 1 for s in steps):
        return f"probes left with TTLs {sent[:12]}: the TTL goes up by one per hop, never down"
    if max(sent) != hops:
        return f"the last probe had TTL {max(sent)}, but the trace has {hops} hops"
    counts = [sent.count(t) for t in range(1, hops + 1)]
    if any(c != probes for c in counts):
        return f"probes per TTL on the wire: {counts}, expected {probes} each"
    return None


def _check_wire(call: str, sent: List[int], hops: int, probes: int) -> None:
    """Fail the check when the TTLs of the probes seen on h1's link are wrong."""
    problem = _wire_problem(sent, hops, probes)
    if problem:
        raise CheckFailed(f"{call}: {problem}")


def _addresses(hops: list) -> list:
    return [h.get("address") for h in hops]


def _path(labdir: str, chain) -> str:
    _, timeout, probes = PATH_RUN
    call, hops, sent, _ = _trace(labdir, chain, PATH_RUN)
    got, want = _addresses(hops), chain.path
    if got[:len(want)] == want and len(got) > len(want):
        raise CheckFailed(f"{call}: {len(got)} hops, but the destination {chain.target} answered at hop "
                          f"{len(want)} (port unreachable): stop there")
    if got != want:
        raise CheckFailed(f"{call}: hops {got}, but the path is {want}")
    if [h.get("ttl") for h in hops] != list(range(1, len(want) + 1)):
        raise CheckFailed(f"{call}: hop TTLs {[h.get('ttl') for h in hops]}, expected 1 to {len(want)}")
    bad = [r for h in hops for r in h["rtts"] if not isinstance(r, (int, float)) or not 0 < r < timeout]
    if bad:
        raise CheckFailed(f"{call}: RTTs {[h['rtts'] for h in hops]}; every router answered every probe "
                          f"in under {timeout:g} s")
    _check_wire(call, sent, len(want), probes)
    return f"{len(want)} hops {' '.join(want)}, probe TTLs {sent} on the wire"


def trace_path(labdir: str) -> str:
    return _in_chain(lambda chain: _path(labdir, chain), PATH_RUN)


def _silent(labdir: str, chain) -> str:
    _, timeout, probes = SILENT_RUN
    call, hops, sent, took = _trace(labdir, chain, SILENT_RUN)
    want = [None] + chain.path[1:]
    got = _addresses(hops)
    if got != want:
        raise CheckFailed(f"{call}: hops {got}; the first router drops its 'time exceeded' messages, so the "
                          f"trace is {want}: a silent hop is * and the trace goes on")
    if hops[0]["rtts"] != [None] * probes:
        raise CheckFailed(f"{call}: RTTs {hops[0]['rtts']} for the silent first hop, expected None for each probe")
    if took < probes * timeout * 0.9:
        raise CheckFailed(f"{call} took {took:.2f} s: it cannot have waited {timeout:g} s for each of the "
                          f"{probes} unanswered probes")
    _check_wire(call, sent, len(want), probes)
    return f"hop 1 silent: * for each probe after {timeout:g} s, then {' '.join(want[1:])}"


def silent_router(labdir: str) -> str:
    # The first router drops the packets whose TTL ran out without a word.
    return _in_chain(lambda chain: _silent(labdir, chain), SILENT_RUN, silent={"r1": ["time-exceeded"]})


def _max_hops(labdir: str, chain) -> str:
    max_hops, _, probes = MAX_HOPS_RUN
    call, hops, sent, _ = _trace(labdir, chain, MAX_HOPS_RUN)
    want = chain.path[:-1] + [None] * (max_hops - len(chain.path) + 1)
    got = _addresses(hops)
    if got != want:
        raise CheckFailed(f"{call}: hops {got}; the destination stays silent, so the trace is {want}, "
                          f"{max_hops} hops and no more")
    _check_wire(call, sent, max_hops, probes)
    return f"a silent destination: {max_hops} hops, the last {max_hops - len(chain.path) + 1} of them *"


def trace_max_hops(labdir: str) -> str:
    # The destination never says "port unreachable": nothing ends the trace but max_hops.
    return _in_chain(lambda chain: _max_hops(labdir, chain), MAX_HOPS_RUN,
                     silent={"h2": ["destination-unreachable"]})


class LateDestination:
    """The destination's answers, from the grader: port unreachable after a delay it picks.

    h2's own kernel is silenced (the chain's ``silent``). The grader watches
    h2's link for each probe that arrives; the k-th gets its answer after
    ``delays[k]`` seconds, from a raw socket in the last router that writes
    the whole IPv4 packet, with h2's address as its source, as h2 would.
    """

    def __init__(self, chain, delays: List[float], lifetime: float) -> None:
        self.chain, self.delays = chain, delays
        with sandbox.netns(f"/run/netns/{chain.namespaces[f'r{chain.routers}']}"):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.timers: List[threading.Timer] = []
        self.wire = _topology.Wire(lifetime=lifetime, netns=f"/run/netns/{chain.namespaces['h2']}",
                                   outgoing=False, on_packet=self._arrived)

    def _answer(self, probe: bytes) -> bytes:
        """ICMP port unreachable quoting the probe's IP header and 8 bytes, in an IPv4 packet to h1."""
        quoted = probe[:(probe[0] & 0x0F) * 4 + 8]
        icmp = struct.pack(">BBHI", 3, 3, 0, 0) + quoted
        icmp = icmp[:2] + struct.pack(">H", internet_checksum(icmp)) + icmp[4:]
        # Length, identifier and header checksum left 0: the kernel fills them in.
        return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 0, 0, 0, 64, socket.IPPROTO_ICMP, 0,
                           socket.inet_aton(self.chain.target), probe[12:16]) + icmp

    def _arrived(self, packet: bytes) -> None:
        if len(packet) < 28 or packet[9] != socket.IPPROTO_UDP or socket.inet_ntoa(packet[16:20]) != self.chain.target:
            return
        k = len(self.timers)
        answer = self._answer(packet)
        timer = threading.Timer(self.delays[k] if k < len(self.delays) else 0.01, self.sock.sendto,
                                (answer, (socket.inet_ntoa(answer[16:20]), 0)))
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def close(self) -> None:
        self.wire.close()
        for timer in self.timers:
            timer.cancel()
            timer.join(timeout=1)
        self.sock.close()


def _rtts(labdir: str, chain) -> str:
    _, timeout, probes = RTT_RUN
    # The first probe's answer comes after its timeout, while the second one waits for its own.
    delays = [timeout + 0.15, timeout - 0.1, random.Random(os.urandom(8)).uniform(0.05, timeout - 0.1)]
    destination = LateDestination(chain, delays, _longest(RTT_RUN) + 2)
    try:
        call, hops, _, _ = _trace(labdir, chain, RTT_RUN)
    finally:
        destination.close()
    if _addresses(hops) != chain.path:
        raise CheckFailed(f"{call}: hops {_addresses(hops)}, but the path is {chain.path}")
    got, want = hops[-1]["rtts"], [None] + delays[1:]
    right = (got[0] is None and all(isinstance(r, (int, float)) and d * 0.95 <= r < d + 0.2
                                    for r, d in zip(got[1:], want[1:])))
    if not right:
        late = (" (the answer to the first probe came late: it does not answer the second)"
                if isinstance(got[1], (int, float)) and got[1] < want[1] * 0.95 else "")
        raise CheckFailed(f"{call}: RTTs {_ms(got)} ms at the destination, which answered after "
                          f"{_ms(want)} ms{late}")
    return f"RTTs {_ms(got)} ms at the destination, which answered after {_ms(want)} ms"


def trace_rtts(labdir: str) -> str:
    return _in_chain(lambda chain: _rtts(labdir, chain), RTT_RUN, silent={"h2": ["destination-unreachable"]})
