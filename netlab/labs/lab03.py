"""Lab 3: a UDP echo server and client (RFC 862), with timeouts and retries."""
from __future__ import annotations

import socket
import time

from netlab.labs._peers import HOST, UdpPeer, wait_for_udp
from netlab.labs._probes import bytes_of, call_all, server, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import free_port

__all__ = ["server_echo", "server_boundaries", "client", "client_retry", "client_gives_up"]



def _hex(data: bytes) -> dict:
    return {"bytes": data.hex()}


def server_echo(labdir: str) -> str:
    port = free_port(socket.SOCK_DGRAM)
    with server(labdir, "udp_echo", "serve", [HOST, port]) as box:
        first = wait_for_udp(box, port, b"hello, echo")
    if first != b"hello, echo":
        raise CheckFailed(f"sent b'hello, echo', got back {first[:40]!r}")
    return f"b'hello, echo' came back from port {port}"


def server_boundaries(labdir: str) -> str:
    port = free_port(socket.SOCK_DGRAM)
    sizes = [0, 1, 100, 1472, 8000, 60000]
    with server(labdir, "udp_echo", "serve", [HOST, port]) as box:
        wait_for_udp(box, port)
        clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        try:
            for c in clients:
                c.bind((HOST, 0))
                c.settimeout(2)
            for size in sizes:
                # Small datagrams: all three clients send before anyone reads, so the
                # server must answer each at its own address. Big ones go one at a
                # time, so that no socket buffer overflows (that would be UDP loss,
                # not the server's fault).
                groups = [clients] if size <= 1472 else [[c] for c in clients]
                for group in groups:
                    for c in group:
                        n = clients.index(c)
                        c.sendto(bytes([65 + n]) * size, (HOST, port))
                    for c in group:
                        n = clients.index(c)
                        try:
                            got = c.recvfrom(65535)[0]
                        except socket.timeout:
                            raise CheckFailed(f"client {n + 1} of 3 got no answer for its {size}-byte "
                                              f"datagram") from None
                        want = bytes([65 + n]) * size
                        if got != want:
                            raise CheckFailed(f"client {n + 1} sent {size} bytes and got back {len(got)} "
                                              f"bytes{' of another client' if got[:1] != want[:1] else ''}")
        finally:
            for c in clients:
                c.close()
    return f"3 clients x {len(sizes)} datagrams of 0 to 60000 bytes, each echoed whole to its sender"


def client(labdir: str) -> str:
    with UdpPeer(lambda i, d: d) as peer:
        out = call_all(labdir, "udp_echo", [["echo", [HOST, peer.port, _hex(b"ping 1"), 1.0, 3]]])[0]
    got = bytes_of(student_value(out, "echo(host, port, b'ping 1')"))
    if got != b"ping 1":
        raise CheckFailed(f"echo(...) returned {out['value']!r}, expected b'ping 1' (bytes)")
    return "echo() returned the server's reply"


def client_retry(labdir: str) -> str:
    # This peer loses the first two datagrams, as a busy network would.
    with UdpPeer(lambda i, d: d if i >= 2 else None) as peer:
        out = call_all(labdir, "udp_echo", [["echo", [HOST, peer.port, _hex(b"again"), 0.3, 3]]])[0]
        count = len(peer.received)
    got = bytes_of(student_value(out, "echo(..., timeout=0.3, retries=3) to a lossy server"))
    if got != b"again":
        raise CheckFailed(f"returned {out['value']!r}, expected b'again'")
    if count != 3:
        raise CheckFailed(f"the server received {count} datagrams; with 2 lost, the third try "
                          f"should have been the last")
    return "the first two datagrams were lost; the third try got the echo"


def client_gives_up(labdir: str) -> str:
    timeout = 0.35
    with UdpPeer(lambda i, d: None) as peer:
        start = time.monotonic()
        out = call_all(labdir, "udp_echo", [["echo", [HOST, peer.port, _hex(b"anyone?"), timeout, 2]]],
                       timeout=8)[0]
        elapsed = time.monotonic() - start
        arrivals = [t for t, _ in peer.received]
    if out.get("ok"):
        raise CheckFailed(f"echo() to a silent server returned {out['value']!r} instead of raising TimeoutError")
    if out.get("error") == "NotImplementedError":
        student_value(out, "echo()")
    if out.get("error") not in ("TimeoutError", "timeout"):
        raise CheckFailed(f"echo() to a silent server raised {out.get('error')}: {out.get('message')}; "
                          f"expected TimeoutError")
    if len(arrivals) != 3:
        raise CheckFailed(f"with retries=2 the server should see 3 datagrams, it saw {len(arrivals)}")
    # The grader's clock: the tries must be `timeout` apart, not some fixed wait of the client's own.
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    if not all(0.7 * timeout <= g <= 2 * timeout + 0.1 for g in gaps):
        raise CheckFailed(f"with timeout={timeout} the tries came {', '.join(f'{g:.2f}' for g in gaps)} s "
                          f"apart: wait `timeout` seconds for each reply (settimeout(timeout))")
    return f"3 tries {', '.join(f'{g:.2f}' for g in gaps)} s apart, then TimeoutError ({elapsed:.1f} s in all)"
