"""The iterative and threaded models: blocking sockets, one handler per connection.

Both share one accept/receive loop. The *iterative* server serves an accepted
connection to the end before it looks at the next one (or at a UDP datagram):
the 50th client waits for the 49 before it. The *threaded* server hands each
connection to its own thread and goes straight back to accept().
"""
from __future__ import annotations

import selectors
import socket
import time as _time

from netlab import services
from netlab.servers._common import (LINGER_SECONDS, RECV_SIZE, REST_SECONDS, handle_datagram,
                                    is_disconnect, listener_must_rest, wait_socket)
from netlab.servers._engine import Engine

__all__ = ["IterativeEngine", "ThreadedEngine", "serve_connection"]

# chargen chunk for one blocking sendall(): small enough that a slow client
# holds the handler in one call for little data, large enough to be cheap.
_CHUNK = 16384
_BATCH_SECONDS = 0.02


def _send(engine: Engine, conn: socket.socket, data: bytes) -> None:
    if data:
        conn.sendall(data)
        engine.stats.add("bytes_out", len(data))


def _receive(engine: Engine, conn: socket.socket, session: services.TcpSession) -> bool:
    """Feed one recv() to ``session`` and send its answer; False once the client sent EOF."""
    data = conn.recv(RECV_SIZE)
    if data:
        engine.stats.add("bytes_in", len(data))
        _send(engine, conn, session.received(data))
        return True
    _send(engine, conn, session.eof_received())
    return False


def _linger(engine: Engine, conn: socket.socket) -> None:
    """Half-close, then read and drop until the client's EOF (bounded in time)."""
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        return
    deadline = _time.monotonic() + LINGER_SECONDS
    while not engine.stopping.is_set():
        left = deadline - _time.monotonic()
        if left <= 0:
            return
        conn.settimeout(left)
        try:
            data = conn.recv(RECV_SIZE)
        except (socket.timeout, OSError):
            return  # the reply is out; a silent or vanished client changes nothing
        if not data:
            return
        engine.stats.add("bytes_in", len(data))


def serve_connection(engine: Engine, conn: socket.socket) -> None:
    """Run one TCP connection of ``engine.service`` to its end, blocking.

    Idle limit: every recv/send gets ``idle_timeout``; a timeout ends the
    connection. Errors that only mean "the client left" end it quietly; any
    other error is counted, never raised: one client never stops the server.
    """
    stats = engine.stats
    idle = engine.limits.idle_seconds  # None: no limit
    session = services.tcp_session(engine.service)
    read_open = True
    try:
        conn.settimeout(idle)
        _send(engine, conn, session.connected())
        while not session.finished and not engine.stopping.is_set():
            if session.streaming:
                readable, writable = wait_socket(conn, read_open, True, idle)
                if not (readable or writable):
                    stats.add("timeouts")
                    return
                if readable:
                    read_open = _receive(engine, conn, session)
                if writable:
                    _send(engine, conn, session.pull(_CHUNK))
                continue
            read_open = _receive(engine, conn, session)
        if session.finished and read_open and not engine.stopping.is_set():
            _linger(engine, conn)
    except socket.timeout:
        stats.add("timeouts")
    except Exception as exc:  # noqa: BLE001 - see docstring
        if not is_disconnect(exc):
            stats.add("errors")
    finally:
        conn.close()


class IterativeEngine(Engine):
    """One thread does everything, one client at a time."""

    model = "iterative"

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        self._sel = sel
        self._rest_until = None
        try:
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
            for proto, sock in self.socks.items():
                sel.register(sock, selectors.EVENT_READ, proto)
            while not self.stopping.is_set():
                timeout = None
                if self._rest_until is not None:  # the listener rests: see _accept
                    timeout = self._rest_until - _time.monotonic()
                    if timeout <= 0:
                        self._rest_until, timeout = None, None
                        sel.register(self.socks["tcp"], selectors.EVENT_READ, "tcp")
                for key, _ in sel.select(timeout):
                    if key.data == "wake":
                        self.drain_wake()
                    elif key.data == "udp":
                        for _ in range(64):
                            if not handle_datagram(key.fileobj, self._udp(), self.guard,
                                                   self.stats):
                                break
                    elif key.data == "tcp" and not self.stopping.is_set():
                        self._accept(key.fileobj)
        finally:
            sel.close()

    _udp_service = None

    def _udp(self):
        if self._udp_service is None:
            self._udp_service = services.udp_service(self.service)
        return self._udp_service

    #: Connections taken per wake-up of the listener (the iterative server
    #: serves one to its end before it looks again).
    accept_batch = 1

    def _accept(self, listener: socket.socket) -> None:
        # A batch ends after accept_batch connections or _BATCH_SECONDS, so a
        # stop request (the wake-up pair) is seen soon even when starting a
        # thread takes milliseconds (it does with thousands alive).
        until = _time.monotonic() + _BATCH_SECONDS
        for _ in range(self.accept_batch):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if listener_must_rest(exc, self.stats):  # out of descriptors
                    self._sel.unregister(listener)
                    self._rest_until = _time.monotonic() + REST_SECONDS
                return
            self.stats.add("connections")
            self._handle(conn)
            if self.stopping.is_set() or _time.monotonic() > until:
                return

    def _handle(self, conn: socket.socket) -> None:
        self.track(conn)
        self.stats.add("active")
        try:
            serve_connection(self, conn)
        finally:
            self.stats.add("active", -1)
            self.untrack(conn)


class ThreadedEngine(IterativeEngine):
    """Accept in one thread, serve each connection in a thread of its own.

    Its limit is the accept queue: each accepted connection costs a thread
    start (a few hundred microseconds, more on a busy machine), so a burst
    of connects faster than that fills the kernel's queue (backlog 1024,
    capped by ``net.core.somaxconn``); the kernel then drops further
    handshakes and those clients retry or are reset. See the concurrency
    lesson.
    """

    model = "threaded"
    accept_batch = 64  # drain the queue, but let the UDP socket and stop() in

    def _handle(self, conn: socket.socket) -> None:
        if self.active_count() >= self.limits.max_connections:
            self.stats.add("rejected")
            conn.close()
            return
        self.stats.add("active")
        self.spawn_handler(self._serve, conn)  # tracked before the thread starts

    def _serve(self, conn: socket.socket) -> None:
        try:
            serve_connection(self, conn)
        finally:
            self.stats.add("active", -1)
