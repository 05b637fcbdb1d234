"""Lab 6: chargen and discard (RFC 864, RFC 863) — the pattern, flow control, amplification.

The expected pattern is built here from the RFC's description (the 95
printable ASCII characters as a ring, 72 per line, each line starting one
character further), never from the student's code.
"""
from __future__ import annotations

import os
import socket
import threading
import time

from netlab.labs._peers import HOST, read_to_eof, udp_ask, wait_for_udp
from netlab.labs._probes import bytes_of, call_all, server, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import free_port, wait_for_tcp
from netlab.services.table import facts as service_facts

__all__ = ["pattern_line", "pattern", "stream", "leave", "discard", "guard", "udp"]


RING = bytes(range(32, 127))  # the 95 printable ASCII characters, space to tilde
LINE = 72


def pattern_line(n: int) -> bytes:
    """Line ``n`` (from 0) of the RFC 864 pattern, with its CRLF."""
    start = n % len(RING)
    return (RING + RING)[start:start + LINE] + b"\r\n"


def _first_bad_line(data: bytes, first: int = 0) -> int:
    """Index of the first line of ``data`` that differs from the pattern (-1: all fine)."""
    for i in range(len(data) // 74):
        if data[i * 74:(i + 1) * 74] != pattern_line(first + i):
            return i
    return -1


def pattern(labdir: str) -> str:
    lines = [0, 1, 2, 23, 94, 95, 96, 1000]
    outcomes = call_all(labdir, "chargen", [["chargen_line", [n]] for n in lines])
    for n, out in zip(lines, outcomes):
        got = bytes_of(student_value(out, f"chargen_line({n})"))
        want = pattern_line(n)
        if got != want:
            if got is None:
                raise CheckFailed(f"chargen_line({n}) returned {out['value']!r}, expected bytes")
            if len(got) != 74:
                raise CheckFailed(f"chargen_line({n}) is {len(got)} bytes; a line is 72 characters + CRLF = 74")
            raise CheckFailed(f"chargen_line({n}) is {got[:20]!r}..., expected {want[:20]!r}...")
    return "lines 0-2, 23, 94-96 and 1000 match; the ring has 95 characters"


def stream(labdir: str) -> str:
    port = free_port()
    want = 74 * 300
    with server(labdir, "chargen", "serve_chargen", [HOST, port]) as box:
        wait_for_tcp(box, port)
        with socket.create_connection((HOST, port), timeout=3) as sock:
            data = b""
            deadline = time.monotonic() + 4
            while len(data) < want and time.monotonic() < deadline:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(want - len(data))
                except (socket.timeout, OSError):
                    break
                if not chunk:
                    break
                data += chunk
    if len(data) < want:
        raise CheckFailed(f"received only {len(data)} bytes of a stream that should never end")
    bad = _first_bad_line(data)
    if bad >= 0:
        raise CheckFailed(f"line {bad} of the stream is {data[bad * 74:bad * 74 + 20]!r}..., "
                          f"expected {pattern_line(bad)[:20]!r}...")
    return "300 lines, continuous across the ring"


def leave(labdir: str) -> str:
    port = free_port()
    with server(labdir, "chargen", "serve_chargen", [HOST, port]) as box:
        wait_for_tcp(box, port)
        slow = socket.create_connection((HOST, port), timeout=3)
        slow.recv(10)
        time.sleep(0.4)  # not reading: the buffers fill, the server's sendall() blocks
        slow.close()
        time.sleep(0.2)
        with socket.create_connection((HOST, port), timeout=3) as sock:
            sock.settimeout(3)
            data = b""
            while len(data) < 74 * 3:
                try:
                    chunk = sock.recv(1000)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
        alive = box.alive()
    if len(data) < 74 * 3:
        raise CheckFailed(f"after a client stopped reading and left, the next client got {len(data)} bytes"
                          + ("" if alive else " and the server had died"))
    return "the server waited for a slow reader, then served the next client"


def discard(labdir: str) -> str:
    port = free_port()
    data = os.urandom(2 << 20)
    with server(labdir, "chargen", "serve_discard", [HOST, port]) as box:
        wait_for_tcp(box, port)
        with socket.create_connection((HOST, port), timeout=3) as sock:
            result: dict = {}

            def read() -> None:
                result["reply"] = read_to_eof(sock, 5.0)
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except OSError as exc:
                raise CheckFailed(f"sending 2 MiB failed: {exc}") from None
            reader.join(6)
        reply, eof = result.get("reply", (b"", False))
    if reply:
        raise CheckFailed(f"discard sent {len(reply)} bytes back: it must send nothing")
    if not eof:
        raise CheckFailed("the server did not close after the client's half-close")
    return "2 MiB swallowed, nothing sent, closed after EOF"


def guard(labdir: str) -> str:
    own = [HOST, 9019]
    cases = [([HOST, service_facts("echo").well_known_port], False),
             ([HOST, service_facts("chargen").well_known_port], False), ([HOST, 1023], False), ([HOST, 0], False),
             (own, False), ([HOST, 1024], True), ([HOST, 40000], True), (["127.0.0.2", 9019], True)]
    outcomes = call_all(labdir, "chargen", [["should_answer", [addr, own]] for addr, _ in cases])
    for (addr, want), out in zip(cases, outcomes):
        call = f"should_answer({tuple(addr)}, {tuple(own)})"
        got = student_value(out, call)
        if bool(got) is not want:
            raise CheckFailed(f"{call} gave {got!r}, expected {want}")
    return "service ports and itself refused, ordinary clients answered"


def udp(labdir: str) -> str:
    port = free_port(socket.SOCK_DGRAM)
    with server(labdir, "chargen", "serve_chargen_udp", [HOST, port]) as box:
        first = wait_for_udp(box, port, b"")
        reply = udp_ask(port, b"x", 2.0)
        silent = None
        if os.geteuid() == 0:
            # Play an echo service: a datagram from a privileged port must get no answer.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as svc:
                for candidate in range(1020, 900, -1):
                    try:
                        svc.bind((HOST, candidate))
                        break
                    except OSError:
                        continue
                else:
                    candidate = 0
                if candidate:
                    silent = udp_ask(port, b"echo me", 0.5, svc) is None
    full = [pattern_line(n)[:-2] for n in range(len(RING))]
    for got in (first, reply):
        if got is None or not 0 < len(got) <= 512:
            raise CheckFailed(f"a UDP reply must hold 1 to 512 bytes, got {len(got or b'')}")
        lines = got.split(b"\r\n")
        # A reply cut between CR and LF (length 73 mod 74) ends in a lone CR.
        if lines[-1].endswith(b"\r"):
            lines[-1] = lines[-1][:-1]
        for i, line in enumerate(lines):
            if line and not any(f.startswith(line) for f in full):
                raise CheckFailed(f"reply line {i} {line[:20]!r}... is not a line of the pattern")
    if silent is False:
        raise CheckFailed("the server answered a datagram from a port below 1024: "
                          "that is how chargen/echo loops start")
    note = "; silent to a privileged source port" if silent else ""
    return f"replies of {len(first)} and {len(reply)} bytes of pattern{note}"
