"""Lab 4: a TCP echo server and client — streams, partial sends, sendall, half-close."""
from __future__ import annotations

import os
import socket
import struct
import time

from netlab.labs._peers import HOST, TcpPeer, exchange, read_to_eof
from netlab.labs._probes import bytes_of, call_all, server, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeFailed, explain, free_port, run_probe, value_of, wait_for_tcp

__all__ = ["echo_line", "echo_bulk", "survive_reset", "recv_exactly", "client"]



def _start(labdir: str, port: int, tick: float = 0.0):
    box = server(labdir, "tcp_echo", "serve", [HOST, port], tick)
    try:
        wait_for_tcp(box, port)
    except ProbeFailed:
        box.stop()
        raise
    return box


def echo_line(labdir: str) -> str:
    port = free_port()
    with _start(labdir, port):
        reply, _ = exchange(port, b"hello, stream\r\n", 3)
    if reply != b"hello, stream\r\n":
        raise CheckFailed(f"sent b'hello, stream\\r\\n', got back {reply[:40]!r}")
    return "a line came back"


def echo_bulk(labdir: str) -> str:
    port = free_port()
    data = os.urandom(1 << 20)
    # Small send buffers (defs/lab04.toml) and a signal every 2 ms: send() returns
    # after part of the data, and only sendall() (or a loop on send) echoes it all.
    with _start(labdir, port, tick=0.002):
        reply, eof = exchange(port, data, 8)
    if reply != data:
        same = next((i for i, (x, y) in enumerate(zip(reply, data)) if x != y), min(len(reply), len(data)))
        raise CheckFailed(f"sent {len(data)} bytes, got {len(reply)} back, the first {same} right")
    if not eof:
        raise CheckFailed("all data came back, but the server did not close after the client's half-close")
    return "1 MiB echoed byte for byte, then the server closed"


def survive_reset(labdir: str) -> str:
    port = free_port()
    with _start(labdir, port) as box:
        rude = socket.create_connection((HOST, port), timeout=3)
        rude.sendall(os.urandom(200000))
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rude.close()
        time.sleep(0.2)
        if not box.alive():
            raise CheckFailed("the server died after a client reset its connection: "
                              + explain(box.stop(), "it"))
        reply, _ = exchange(port, b"still there?", 3)
    if reply != b"still there?":
        raise CheckFailed(f"after a client reset its connection, the next client got {reply[:40]!r}")
    return "a reset client did not stop the server"


def recv_exactly(labdir: str) -> str:
    data = os.urandom(2048)
    connections = []

    def dribble(conn: socket.socket) -> None:
        # First connection: small pieces with pauses, so each recv() on the other
        # end sees only a few bytes. Second: 5 bytes, then the end of the stream.
        connections.append(conn)
        if len(connections) == 1:
            for i in range(0, len(data), 97):
                conn.sendall(data[i:i + 97])
                time.sleep(0.002)
            time.sleep(0.5)
        else:
            conn.sendall(b"short")
    with TcpPeer(dribble) as peer:
        value = value_of(run_probe(labdir, "lab04:probe_recv_exactly", {"port": peer.port, "n": len(data)},
                                   timeout=8), "recv_exactly")
    got = bytes.fromhex(value["data"]) if isinstance(value, dict) and isinstance(value.get("data"), str) else b""
    if got != data:
        raise CheckFailed(f"recv_exactly(sock, 2048) returned {len(got)} bytes or wrong ones "
                          f"when they arrived in 97-byte pieces")
    if not str(value.get("early_eof", "")).endswith("Error"):
        raise CheckFailed(f"recv_exactly(sock, 10) {value.get('early_eof')} although the peer closed after 5 bytes")
    return f"2048 bytes gathered from 97-byte pieces; early close: {value['early_eof']}"


def _lazy_echo(conn: socket.socket) -> None:
    # Echo only after the client's EOF, and in small pieces: a client that
    # does not half-close, or reads once, fails here.
    data, _ = read_to_eof(conn, 8, limit=1 << 22)
    for i in range(0, len(data), 1000):
        conn.sendall(data[i:i + 1000])
    conn.shutdown(socket.SHUT_WR)


def client(labdir: str) -> str:
    data = os.urandom(300000)
    with TcpPeer(_lazy_echo) as peer:
        out = call_all(labdir, "tcp_echo", [["echo", [HOST, peer.port, {"bytes": data.hex()}]]],
                       timeout=6)[0]
    got = bytes_of(student_value(out, "echo(host, port, 300000 bytes)"))
    if got != data:
        raise CheckFailed(f"echo() returned {len(got) if got is not None else out['value']!r} "
                          f"bytes of {len(data)}")
    return "300000 bytes through a server that answers only after EOF"
