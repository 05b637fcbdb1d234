"""Lab 10: scanning and redirection — a connect scanner on your own host, a port redirector.

The scanner only ever meets ports the grader opened itself on 127.0.0.1, and
must refuse to scan any host that is not this machine. The redirector sits
between grader clients and a grader echo server.
"""
from __future__ import annotations

import os
import random
import socket
import time

from netlab.labs._peers import HOST, TcpPeer, exchange, read_to_eof
from netlab.labs._probes import call_all, server, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeFailed, explain, free_port, wait_for_tcp

__all__ = ["scan", "ethics", "forward", "half_close", "concurrent", "dead_target"]



def _closed_ports(n: int) -> list:
    """Ports that were free a moment ago (bound, then released): closed."""
    return [free_port() for _ in range(n)]


def scan(labdir: str) -> str:
    listeners = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.bind((HOST, 0))
            s.listen(16)
            listeners.append(s)
        open_ports = sorted(s.getsockname()[1] for s in listeners)
        ports = open_ports + _closed_ports(47)
        random.shuffle(ports)
        start = time.monotonic()
        out = call_all(labdir, "scanner", [["scan", [HOST, ports, 0.5]]], timeout=10)[0]
        elapsed = time.monotonic() - start
    finally:
        for s in listeners:
            s.close()
    got = student_value(out, f"scan('{HOST}', 50 ports, 0.5)")
    if got != open_ports:
        raise CheckFailed(f"scan found {got!r}; the grader opened {open_ports} (of 50 ports, in random order)")
    return f"3 open of 50 ports found in {elapsed:.2f} s"


def ethics(labdir: str) -> str:
    outcomes = call_all(labdir, "scanner", [["scan", ["192.0.2.1", [80], 0.5]],
                                            ["scan", ["10.1.2.3", [22], 0.5]],
                                            ["scan", ["127.0.0.2", [free_port()], 0.5]]], timeout=8)
    for host, out in zip(("192.0.2.1", "10.1.2.3"), outcomes):
        if out.get("error") == "NotImplementedError":
            student_value(out, "scan")
        if out.get("error") != "ValueError":
            what = f"returned {out['value']!r}" if out.get("ok") else f"raised {out.get('error')}"
            raise CheckFailed(f"scan({host!r}, ...) {what}; it must refuse with ValueError")
    student_value(outcomes[2], "scan('127.0.0.2', ...) (all of 127.0.0.0/8 is loopback)")
    return "192.0.2.1 and 10.1.2.3 refused, 127.0.0.2 allowed"


def _echo(conn: socket.socket) -> None:
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


class _Redirector:
    def __init__(self, labdir: str, target: int) -> None:
        self.port = free_port()
        self.box = server(labdir, "redirector", "redirect", [HOST, self.port, HOST, target])

    def __enter__(self) -> "_Redirector":
        try:
            wait_for_tcp(self.box, self.port)
        except ProbeFailed:
            self.box.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.box.stop()


def forward(labdir: str) -> str:
    data = os.urandom(256 << 10)
    with TcpPeer(_echo) as target, _Redirector(labdir, target.port) as red:
        reply, _ = exchange(red.port, data)
    if reply[:len(data)] != data:
        raise CheckFailed(f"sent {len(data)} bytes through the redirector to an echo server, "
                          f"got {len(reply)} back{'' if len(reply) < len(data) else ' (different bytes)'}")
    return f"{len(data) >> 10} KiB to the echo server and back"


def half_close(labdir: str) -> str:
    with TcpPeer(_echo) as target, _Redirector(labdir, target.port) as red:
        reply, eof = exchange(red.port, b"last words")
    if reply != b"last words":
        raise CheckFailed(f"got {reply!r} back")
    if not eof:
        raise CheckFailed("the echo came back but never the end of the stream: the client's half-close "
                          "did not reach the server (or the server's close did not come back)")
    return "EOF went through in both directions"


def concurrent(labdir: str) -> str:
    results: list = []
    with TcpPeer(_echo) as target, _Redirector(labdir, target.port) as red:
        # Ten clients hold their connections open at the same time.
        socks = []
        try:
            for _ in range(10):
                socks.append(socket.create_connection((HOST, red.port), timeout=3))
            for i, s in enumerate(socks):
                s.sendall(b"client %d\n" % i)
            for i, s in enumerate(socks):
                s.settimeout(3)
                try:
                    results.append(s.recv(100) == b"client %d\n" % i)
                except OSError:
                    results.append(False)
        finally:
            for s in socks:
                s.close()
    if not all(results):
        raise CheckFailed(f"{sum(results)} of 10 clients holding their connections open got their echo")
    return "10 clients with open connections all served"


def dead_target(labdir: str) -> str:
    dead = free_port()
    with _Redirector(labdir, dead) as red:
        with socket.create_connection((HOST, red.port), timeout=3) as s:
            data, eof = read_to_eof(s, 3)
        time.sleep(0.1)
        if not red.box.alive():
            raise CheckFailed("the redirector died when its target was down: " + explain(red.box.stop(), "it"))
        with socket.create_connection((HOST, red.port), timeout=3) as s:
            pass
    if not eof:
        raise CheckFailed("with the target down, the client's connection was left open: close it")
    return "the client was closed and the redirector kept running"
