"""Lab 13: reliable transfer over a lossy link — stop-and-wait, then a sliding window.

The student's sender talks to the grader's receiver, and the grader's sender
to the student's receiver, through netlab's UDP relay impaired with seeded
loss, duplication, reordering and delay. The grader's receiver sees every
datagram: it rebuilds the file, counts the DATA datagrams, and checks that the
sender never had more packets in flight than its window (a DATA number is
never beyond the last cumulative ACK the receiver sent plus the window).
"""
from __future__ import annotations

import os
import socket
import struct
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from netlab.labs._peers import HOST, UdpService, wait_for_udp_bound
from netlab.labs._probes import bytes_of, call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeFailed, Sandbox, free_port, value_of
from netlab.redirect import start_redirect

__all__ = ["packets", "stop_and_wait", "window", "speed", "receiver_acks", "receiver"]

MSS = 1000
HEADER = struct.Struct(">cI")


def _packet(kind: bytes, number: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, number) + payload


def _hex(data: bytes) -> dict:
    return {"bytes": data.hex()}


class _Receiver(UdpService):
    """The grader's receiver: cumulative ACKs, early packets kept, every DATA watched."""

    def __init__(self, lifetime: float = 20.0) -> None:
        self.have: Dict[int, bytes] = {}
        self.expected = 0
        self.data_datagrams = 0
        self.max_ahead = -1        # largest (DATA number - last ACK sent): < window, always
        self.oversize = 0
        self.garbage = 0
        self.ended = False
        self.first: Optional[float] = None   # when the first DATA came, and the END
        self.end_time: Optional[float] = None
        super().__init__(lifetime, poll=0.05)

    def handle(self, datagram: bytes, addr) -> None:
        if len(datagram) < HEADER.size or datagram[:1] not in (b"D", b"E"):
            self.garbage += 1
            return
        kind, number = HEADER.unpack_from(datagram)
        if kind == b"D":
            if self.first is None:
                self.first = time.monotonic()
            self.data_datagrams += 1
            self.max_ahead = max(self.max_ahead, number - self.expected)
            payload = datagram[HEADER.size:]
            if len(payload) > MSS:
                self.oversize += 1
            if number >= self.expected:
                self.have.setdefault(number, payload)
            while self.expected in self.have:
                self.expected += 1
            answer = self.expected
        elif number == self.expected:
            if not self.ended:
                self.end_time = time.monotonic()
            self.ended = True
            answer = self.expected + 1
        else:
            return
        self.send(_packet(b"A", answer), addr)

    def data(self) -> bytes:
        return b"".join(self.have[i] for i in range(self.expected))


@contextmanager
def _link(target_port: int, seed: int, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
          delay_ms: float = 2.0) -> Iterator:
    with start_redirect(0, HOST, target_port, protocols=("udp",), loss=loss, duplicate=duplicate,
                        reorder=reorder, delay_ms=delay_ms, seed=seed) as relay:
        yield relay


def _send_through(labdir: str, func: str, nbytes: int, seed: int, window: Optional[int], *,
                  loss: float, duplicate: float, reorder: float, delay_ms: float, timeout: float = 0.1):
    """The student's sender -> relay -> the grader's receiver: ``(data, receiver, seconds)``."""
    data = os.urandom(nbytes)
    rx = _Receiver()
    try:
        with _link(rx.port, seed, loss, duplicate, reorder, delay_ms) as relay:
            args = [HOST, relay.ports["udp"], _hex(data)] + ([window] if window else []) + [timeout]
            start = time.monotonic()
            out = call_all(labdir, "rdt", [[func, args]], timeout=15)[0]
            elapsed = time.monotonic() - start
            time.sleep(2 * delay_ms / 1000 + 0.02)
    finally:
        rx.close()
    what = f"{func}(host, port, {nbytes} bytes{f', window={window}' if window else ''}, timeout={timeout})"
    student_value(out, what)
    return data, rx, elapsed, what


def _judge(data: bytes, rx: _Receiver, what: str, link: str) -> None:
    if rx.oversize:
        raise CheckFailed(f"{what}: {rx.oversize} DATA datagrams carried more than {MSS} payload bytes")
    got = rx.data()
    if got != data:
        same = next((i for i, (a, b) in enumerate(zip(got, data)) if a != b), min(len(got), len(data)))
        raise CheckFailed(f"{what} over {link}: the receiver got {len(got)} of {len(data)} bytes in order, "
                          f"the first {same} right: resend until each packet is acknowledged")
    if not rx.ended:
        raise CheckFailed(f"{what}: the file arrived but no END for packet number {rx.expected} followed "
                          f"(the receiver must learn that the transfer is over)")


def packets(labdir: str) -> str:
    calls = [["make_packet", [_hex(b"D"), 7, _hex(b"hi")]], ["make_packet", [_hex(b"A"), 70000]],
             ["parse_packet", [_hex(b"E\x00\x00\x01\x00")]], ["parse_packet", [_hex(b"D\x00\x00\x00\x02xyz")]],
             ["parse_packet", [_hex(b"D\x00")]], ["parse_packet", [_hex(b"Q\x00\x00\x00\x00")]]]
    outs = call_all(labdir, "rdt", calls)
    wants = [b"D\x00\x00\x00\x07hi", b"A\x00\x01\x11\x70"]
    for text, out, want in zip(("make_packet(b'D', 7, b'hi')", "make_packet(b'A', 70000)"), outs, wants):
        got = bytes_of(student_value(out, text))
        if got != want:
            raise CheckFailed(f"{text} gave {got!r}, expected {want!r}: a kind byte, then the "
                              f"number in 4 bytes, big-endian (struct '>cI'), then the payload")
    for out, want, text in zip(outs[2:4], ([{"bytes": "45"}, 256, {"bytes": ""}], [{"bytes": "44"}, 2, {"bytes": "78797a"}]),
                               ("b'E\\x00\\x00\\x01\\x00'", "b'D\\x00\\x00\\x00\\x02xyz'")):
        got = student_value(out, f"parse_packet({text})")
        if got != want:
            raise CheckFailed(f"parse_packet({text}) returned {got!r}, expected (kind, number, payload) = "
                              f"{(bytes.fromhex(want[0]['bytes']), want[1], bytes.fromhex(want[2]['bytes']))!r}")
    for out, text in zip(outs[4:], ("b'D\\x00'", "b'Q\\x00\\x00\\x00\\x00'")):
        if out.get("error") == "NotImplementedError":
            student_value(out, "parse_packet")
        if out.get("error") != "ValueError":
            raise CheckFailed(f"parse_packet({text}) should raise ValueError (too short / unknown kind), "
                              f"it {'returned ' + repr(out.get('value')) if out.get('ok') else 'raised ' + str(out.get('error'))}")
    return "DATA and ACK built, END and DATA parsed, two bad datagrams refused"


def stop_and_wait(labdir: str) -> str:
    link = "a link losing 15%, duplicating 10% and reordering 10%"
    notes = []
    for seed in (1, 2):
        data, rx, elapsed, what = _send_through(labdir, "send_stop_and_wait", 15 * MSS + 123, seed, None,
                                                loss=0.15, duplicate=0.1, reorder=0.1, delay_ms=2)
        _judge(data, rx, what, f"{link} (seed {seed})")
        if rx.max_ahead > 0:
            raise CheckFailed(f"{what}: packet {rx.max_ahead} beyond the last acknowledged one was sent: "
                              f"stop-and-wait sends the next packet only after the ACK of this one")
        notes.append(f"seed {seed}: {rx.data_datagrams} DATA for 16 packets")
    return f"byte-exact, one packet in flight ({', '.join(notes)})"


def window(labdir: str) -> str:
    link = "a link losing 10%, duplicating 5% and reordering 10%"
    notes, size, win = [], 60 * MSS, 8
    for seed in (3, 4):
        data, rx, elapsed, what = _send_through(labdir, "send_window", size, seed, win,
                                                loss=0.1, duplicate=0.05, reorder=0.1, delay_ms=2)
        _judge(data, rx, what, f"{link} (seed {seed})")
        if rx.max_ahead >= win:
            raise CheckFailed(f"{what}: a packet {rx.max_ahead} beyond the last acknowledged one was sent: "
                              f"never more than `window` packets unacknowledged")
        if rx.max_ahead < win // 2:
            raise CheckFailed(f"{what}: at most {rx.max_ahead + 1} packets were ever in flight: "
                              f"send up to `window` packets before waiting for ACKs")
        if rx.data_datagrams > 3 * (size // MSS):
            raise CheckFailed(f"{what}: {rx.data_datagrams} DATA datagrams for {size // MSS} packets: "
                              f"resend only what is unacknowledged, once per timeout")
        notes.append(f"seed {seed}: {rx.data_datagrams} DATA for {size // MSS} packets")
    return f"byte-exact, at most {win} in flight ({', '.join(notes)})"


def speed(labdir: str) -> str:
    npackets, delay_ms, win = 40, 25.0, 8
    rtt = 2 * delay_ms / 1000
    data, rx, elapsed, what = _send_through(labdir, "send_window", npackets * MSS, 5, win,
                                            loss=0, duplicate=0, reorder=0, delay_ms=delay_ms, timeout=0.5)
    _judge(data, rx, what, f"a clean link with a {rtt * 1000:.0f} ms round trip")
    if rx.data_datagrams != npackets:
        raise CheckFailed(f"{what}: {rx.data_datagrams} DATA datagrams on a link that loses nothing, for "
                          f"{npackets} packets: a timeout longer than the round trip should never fire")
    floor = npackets * rtt      # what stop-and-wait needs at the least
    # The grader's clock, at its receiver: first DATA to END (no sandbox start-up in it).
    elapsed = rx.end_time - rx.first
    if elapsed > floor / 2:
        raise CheckFailed(f"{what} took {elapsed:.2f} s; stop-and-wait needs {floor:.1f} s, a window of "
                          f"{win} about {floor / win:.2f} s: keep the window full")
    return f"{npackets} packets, {npackets} DATA datagrams in {elapsed:.2f} s (stop-and-wait: at least {floor:.1f} s)"


def _ask(sock: socket.socket, port: int, datagram: bytes) -> Optional[int]:
    """Send one datagram to the student's receiver; the ACK number it answers, or None."""
    sock.sendto(datagram, (HOST, port))
    try:
        reply = sock.recv(2048)
    except socket.timeout:
        return None
    if len(reply) >= HEADER.size and reply[:1] == b"A":
        return HEADER.unpack_from(reply)[1]
    return -1


def _wait_receiving(box: Sandbox, port: int) -> None:
    """Until the student's receive() has bound ``port``; its own error if it ended first."""
    try:
        wait_for_udp_bound(box, port)
    except ProbeFailed:
        res = box.stop()
        if res.ok and isinstance(res.value, list) and res.value:
            student_value(res.value[0], f"receive({port})")
            raise CheckFailed(f"receive({port}) returned before anything was sent to it") from None
        raise


def receiver_acks(labdir: str) -> str:
    port = free_port(socket.SOCK_DGRAM)
    parts = [os.urandom(MSS), os.urandom(MSS), os.urandom(321)]
    script = [(b"D", 0, 1), (b"D", 2, 1), (b"D", 1, 3), (b"D", 1, 3), (b"D", 0, 3), (b"E", 3, 4)]
    with Sandbox(labdir, "calls", {"module": "rdt", "calls": [["receive", [port, 3.0, 0.3]]]}) as box:
        _wait_receiving(box, port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1.0)
            for step, (kind, number, want) in enumerate(script):
                got = _ask(sock, port, _packet(kind, number, parts[number] if kind == b"D" else b""))
                if got != want:
                    sent = ", ".join(f"{'DATA' if k == b'D' else 'END'} {n}" for k, n, _ in script[:step + 1])
                    raise CheckFailed(f"after {sent} the receiver answered "
                                      f"{'nothing' if got is None else f'ACK {got}'}, expected ACK {want}: "
                                      f"the ACK names the next packet needed (all before it are there); "
                                      f"END n is answered with ACK n+1")
        out = value_of(box.wait(5), "receive")[0]
    got = bytes_of(student_value(out, f"receive({port})"))
    if got != b"".join(parts):
        raise CheckFailed(f"receive returned {len(got or b'')} bytes, expected the {len(b''.join(parts))} "
                          f"of packets 0, 1, 2 in order")
    return "ACKs 1, 1, 3, 3, 3 for DATA 0, 2, 1, 1, 0; END 3 answered with ACK 4; the bytes in order"


def _grader_send(port: int, data: bytes, win: int = 8, timeout: float = 0.1, limit: float = 10.0) -> bool:
    """The grader's go-back-N sender; True when the END was acknowledged."""
    chunks = [data[i:i + MSS] for i in range(0, len(data), MSS)]
    base = nxt = 0
    deadline = time.monotonic() + limit
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        timer = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if base < len(chunks):
                while nxt < len(chunks) and nxt < base + win:
                    sock.sendto(_packet(b"D", nxt, chunks[nxt]), (HOST, port))
                    nxt += 1
            elif nxt == base:
                sock.sendto(_packet(b"E", len(chunks)), (HOST, port))
                nxt = base + 1    # END is in flight
            sock.settimeout(max(timer - time.monotonic(), 0.001))
            try:
                reply = sock.recv(2048)
            except socket.timeout:
                nxt = base
                timer = time.monotonic() + timeout
                continue
            except ConnectionRefusedError:
                continue
            if len(reply) < HEADER.size or reply[:1] != b"A":
                continue
            number = HEADER.unpack_from(reply)[1]
            if number == len(chunks) + 1:
                return True
            if base < number <= len(chunks):
                base = number
                nxt = max(nxt, base)
                timer = time.monotonic() + timeout
    return False


def receiver(labdir: str) -> str:
    notes = []
    for seed in (6, 7):
        port = free_port(socket.SOCK_DGRAM)
        data = os.urandom(40 * MSS + 7)
        with Sandbox(labdir, "calls", {"module": "rdt", "calls": [["receive", [port, 3.0, 0.3]]]}) as box:
            _wait_receiving(box, port)
            with _link(port, seed, loss=0.1, duplicate=0.15, reorder=0.15, delay_ms=2) as relay:
                acked = _grader_send(relay.ports["udp"], data)
                counts = relay.stats()["udp"]
            out = value_of(box.wait(5), "receive")[0]
        got = bytes_of(student_value(out, f"receive({port})"))
        if got != data:
            raise CheckFailed(f"over a link losing 10%, duplicating and reordering 15% (seed {seed}), receive "
                              f"returned {len(got or b'')} of {len(data)} bytes"
                              f"{'' if got is None or len(got) != len(data) else ', some wrong'}: keep each "
                              f"packet once, in its place")
        if not acked:
            raise CheckFailed(f"seed {seed}: the grader's sender never got the ACK of its END")
        notes.append(f"seed {seed}: {counts['duplicated']} duplicated, {counts['reordered']} reordered")
    return f"byte-exact under duplication and reordering ({', '.join(notes)})"
