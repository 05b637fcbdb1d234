"""Lab 16: ping with ICMP echo — checksum, echo request, replies, round trips, timeouts.

The student's ``ping`` runs in the sandbox as an unprivileged user; the
grading network allows ICMP datagram sockets (``net.ipv4.ping_group_range``
in defs/lab16.toml) and the kernel there does not answer echo requests
(``net.ipv4.icmp_echo_ignore_all``): the grader does, from its own raw ICMP
socket, after a delay it picks at random for each request, or not at all, or
too late, with a stray reply of the wrong sequence number first. So it knows
every true round trip, every loss, and how many requests were really sent.
Traceroute comes later.
"""
from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from typing import List, Optional

from netlab.labs import sandbox
from netlab.labs._probes import bytes_of, call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import run_probe, value_of

__all__ = ["Responder", "checksum", "echo_request", "lost", "parse", "ping", "unprivileged"]

MODULE = "ping"


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
