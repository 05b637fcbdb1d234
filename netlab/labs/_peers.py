"""Grader-side peers: small real servers and clients the checks talk to.

They run in the grader's process, in daemon threads, on 127.0.0.1 ports the
OS picks; every loop is bounded by a deadline so a check can never hang.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Callable, List, Optional

from netlab.labs._runner import ProbeFailed, Sandbox, explain

__all__ = ["TcpPeer", "UdpPeer", "UdpService", "bound_sockets", "exchange", "read_to_eof", "udp_ask", "udp_bound",
           "wait_for_udp", "wait_for_udp_bound"]

HOST = "127.0.0.1"


class UdpService:
    """A grader-side UDP socket on a free port of 127.0.0.1, served by a thread.

    Subclasses set up their own state, then call ``super().__init__`` (which
    starts the thread) and answer each datagram in :meth:`handle`. The thread
    ends by itself after ``lifetime`` seconds, or at :meth:`close`.
    """

    def __init__(self, lifetime: float = 15.0, rcvbuf: Optional[int] = None,
                 poll: float = 0.1) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(poll)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def handle(self, data: bytes, addr) -> None:
        raise NotImplementedError

    def send(self, data: bytes, addr) -> None:
        """Answer ``addr``; a refused or unreachable client is not the grader's problem."""
        try:
            self.sock.sendto(data, addr)
        except OSError:
            pass

    def _loop(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.handle(data, addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class UdpPeer(UdpService):
    """A UDP socket on a free port that answers datagrams with ``reply(index, data)``.

    ``reply`` returns the bytes to send back or None to stay silent; every
    datagram received is kept in ``received`` as ``(time, data)``.
    """

    def __init__(self, reply: Callable[[int, bytes], Optional[bytes]], lifetime: float = 15.0,
                 rcvbuf: Optional[int] = None) -> None:
        self.received: List[tuple] = []
        self._reply = reply
        super().__init__(lifetime, rcvbuf)

    def handle(self, data: bytes, addr) -> None:
        self.received.append((time.monotonic(), data))
        answer = self._reply(len(self.received) - 1, data)
        if answer is not None:
            self.send(answer, addr)


class TcpPeer:
    """A listening TCP socket on a free port; each connection goes to ``handler(conn)`` in a thread."""

    def __init__(self, handler: Callable[[socket.socket], None], lifetime: float = 15.0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.errors: List[str] = []
        self._handler = handler
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            self._handler(conn)
        except OSError as exc:
            self.errors.append(str(exc))
        finally:
            conn.close()

    def _loop(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> "TcpPeer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def udp_ask(port: int, data: bytes, timeout: float = 1.0, sock: Optional[socket.socket] = None) -> Optional[bytes]:
    """Send one datagram to ``port`` and return the first reply, or None after ``timeout``."""
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        sock.sendto(data, (HOST, port))
        try:
            return sock.recvfrom(65535)[0]
        except socket.timeout:
            return None
    finally:
        if own:
            sock.close()


def wait_for_udp(box: Sandbox, port: int, probe: bytes = b"ready?", timeout: float = 5.0) -> bytes:
    """Send ``probe`` until the student's UDP server answers; its first answer."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while time.monotonic() < deadline:
            if not box.alive():
                res = box.stop()
                raise ProbeFailed(explain(res, "your server")
                                  + ("" if res.error else " before it answered"))
            reply = udp_ask(port, probe, 0.2, sock)
            if reply is not None:
                return reply
    raise ProbeFailed(f"your server did not answer a datagram on {HOST}:{port} within {timeout:g} s "
                      f"(does it bind the host and port it was given, and send the reply back "
                      f"to the address recvfrom() returned?)")


_TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "0A": "LISTEN"}


def bound_sockets(proto: str, port: int) -> list:
    """``(address, state)`` of the IPv4 sockets on local ``port`` in this network (``/proc/net/tcp|udp``).

    The grader's own view of what the student's code bound: nothing the
    submission reports about itself.
    """
    found = []
    try:
        with open(f"/proc/net/{proto}", encoding="ascii") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 4:
                    continue
                addr, _, hexport = fields[1].partition(":")
                if int(hexport, 16) != port:
                    continue
                host = socket.inet_ntoa(bytes.fromhex(addr)[::-1])
                state = _TCP_STATES.get(fields[3], fields[3]) if proto == "tcp" else "BOUND"
                if proto == "udp" or state == "LISTEN":
                    found.append((host, state))
    except (OSError, ValueError):
        pass
    return found


def udp_bound(port: int) -> bool:
    """Whether a UDP socket is bound to ``port`` in this network namespace."""
    return bool(bound_sockets("udp", port))


def wait_for_udp_bound(box: Sandbox, port: int, timeout: float = 5.0) -> None:
    """Wait until the student's code has bound UDP ``port`` (seen by the grader, not reported)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if udp_bound(port):
            return
        if not box.alive():
            raise ProbeFailed(explain(box.stop(), "your code") + " before it bound its socket")
        time.sleep(0.01)
    raise ProbeFailed(f"nothing was bound to UDP port {port} after {timeout:g} s")


def read_to_eof(sock: socket.socket, timeout: float, limit: int = 1 << 24) -> tuple:
    """Read until the peer closes, at most ``timeout`` seconds: ``(data, saw_eof)``."""
    deadline = time.monotonic() + timeout
    chunks, total = [], 0
    while total < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        except ConnectionError:
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks), False


def exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple:
    """Send ``data`` to a TCP server and half-close, reading all the while: ``(reply, saw_eof)``.

    The sending runs in a thread: an echo server answering a large send fills
    the buffers of both directions, and a client that only reads afterwards
    would wait for ever. Once ``len(data)`` bytes are back, the end of the
    stream gets at most 2 s more.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        def send() -> None:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        reply, eof = read_to_eof(sock, timeout, limit=len(data))
        if not eof:
            rest, eof = read_to_eof(sock, max(0.2, min(2.0, deadline - time.monotonic())))
            reply += rest
        sender.join(timeout=1)
    return reply, eof
