"""The selectors model: one thread, non-blocking sockets, an event loop by hand.

This is netlab's default: it holds thousands of idle connections in one
thread, and its memory per connection is bounded. Each connection has an
output buffer of at most ``out_buffer`` bytes. When it is full the server
stops *reading* that client (echo: its bytes wait in the kernel, TCP flow
control slows the client down) and chargen generates more lines only when
the socket is writable and the buffer has room. A client that never reads
costs one buffer, not a growing heap, and the others stay served.

This loop is the readable reference. For echo and discard, whose TCP side
only moves bytes, the engine hands TCP to the compiled epoll loop of
``netlab._fastserve`` when it is built (see :mod:`netlab.servers._fast`): the
same rules in C, run with the GIL released. UDP stays here either way.
"""
from __future__ import annotations

import selectors
import socket
import time as _time
from typing import Dict, Optional

from netlab import services
from netlab.servers._common import (LINGER_SECONDS, RECV_SIZE, REST_SECONDS, Limits, Stats,
                                    handle_datagram, listener_must_rest)
from netlab.servers._engine import Engine
from netlab.servers._fast import CoreStats, use_compiled

__all__ = ["SelectorsEngine"]

_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_SWEEP = 0.25  # seconds between idle/linger sweeps


class _Conn:
    __slots__ = ("sock", "session", "out", "read_open", "last", "linger_until", "events")

    def __init__(self, sock: socket.socket, session: services.TcpSession, now: float) -> None:
        self.sock = sock
        self.session = session
        self.out = bytearray()
        self.read_open = True
        self.last = now
        self.linger_until: Optional[float] = None
        self.events = 0


class SelectorsEngine(Engine):
    model = "selectors"

    def __init__(self, service: str, socks: Dict[str, socket.socket], limits: Limits,
                 stats: Stats, compiled: Optional[bool] = None) -> None:
        module = use_compiled(service, socks, compiled)  # may refuse: before the wake pair
        super().__init__(service, socks, limits, stats)
        self._core = None
        if module is not None:
            # Built here, not in the serving thread: a failure surfaces in
            # start_server() and the counters are readable from the start.
            try:
                self._core = module.TcpCore(socks["tcp"].fileno(), service, limits.out_buffer,
                                            limits.idle_timeout, limits.max_connections)
            except BaseException:
                self._wake_r.close()
                self._wake_w.close()
                raise
            self.stats = CoreStats(stats, self._core)

    @property
    def compiled(self) -> bool:
        """True when the TCP side runs in the compiled core."""
        return self._core is not None

    def run(self) -> None:
        if self._core is not None:
            self._run_compiled()
            return
        self._sel = selectors.DefaultSelector()
        self._conns: Dict[int, _Conn] = {}
        self._udp = services.udp_service(self.service)
        sel = self._sel
        try:
            sel.register(self._wake_r, _READ, "wake")
            for proto, sock in self.socks.items():
                sel.register(sock, _READ, proto)
            next_sweep = _time.monotonic() + _SWEEP
            self._rest_until: Optional[float] = None
            while not self.stopping.is_set():
                for key, mask in sel.select(_SWEEP):
                    tag = key.data
                    if tag == "wake":
                        self.drain_wake()
                    elif tag == "tcp":
                        self._accept(key.fileobj)
                    elif tag == "udp":
                        for _ in range(64):
                            if not handle_datagram(key.fileobj, self._udp, self.guard,
                                                   self.stats):
                                break
                    else:
                        self._event(tag, mask)
                now = _time.monotonic()
                if self._rest_until is not None and now >= self._rest_until:
                    self._rest_until = None
                    sel.register(self.socks["tcp"], _READ, "tcp")
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + _SWEEP
        finally:
            for conn in list(self._conns.values()):
                self._close(conn)
            sel.close()

    def _run_compiled(self) -> None:
        """TCP in C (GIL released); wake-ups and UDP datagrams come back here."""
        core = self._core
        wake_bit = 1 << core.watch(self._wake_r.fileno())
        udp = self.socks.get("udp")
        udp_bit = 1 << core.watch(udp.fileno()) if udp is not None else 0
        udp_service = services.udp_service(self.service)
        try:
            while not self.stopping.is_set():
                ready = core.run(_SWEEP)
                if ready & wake_bit:
                    self.drain_wake()
                if ready & udp_bit:
                    for _ in range(64):
                        if not handle_datagram(udp, udp_service, self.guard, self.stats):
                            break
        finally:
            core.close()

    # -- connections --------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):  # take what is queued, but let others run too
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if listener_must_rest(exc, self.stats):  # out of descriptors
                    self._sel.unregister(listener)
                    self._rest_until = _time.monotonic() + REST_SECONDS
                    return
                continue
            self.stats.add("connections")
            if len(self._conns) >= self.limits.max_connections:
                self.stats.add("rejected")
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock, services.tcp_session(self.service), _time.monotonic())
            self._conns[sock.fileno()] = conn
            self.stats.add("active")
            try:
                conn.out += conn.session.connected()
                self._sel.register(sock, _READ, conn)
                conn.events = _READ
            except Exception:  # noqa: BLE001 - one client never stops the server
                self.stats.add("errors")
                self._close(conn)
                continue
            if conn.out:
                self._event(conn, 0)  # send the greeting (daytime, time, qotd) now
            else:
                self._update(conn)

    def _event(self, conn: _Conn, mask: int) -> None:
        session, limit = conn.session, self.limits.out_buffer
        try:
            if mask & _READ:
                data = conn.sock.recv(RECV_SIZE)
                if data:
                    self.stats.add("bytes_in", len(data))
                    conn.last = _time.monotonic()
                    if conn.linger_until is None:
                        conn.out += session.received(data)
                else:
                    conn.read_open = False
                    if conn.linger_until is not None:
                        self._close(conn)
                        return
                    conn.out += session.eof_received()
            # Write when the socket said so, and also optimistically right after
            # a read: an echo reply usually fits in the socket buffer at once,
            # which spares two epoll_ctl calls and a loop turn per round trip.
            if mask & _WRITE or conn.out:
                if session.streaming and not session.finished and len(conn.out) < limit \
                        and mask & _WRITE:
                    conn.out += session.pull(limit - len(conn.out))
                if conn.out:
                    sent = conn.sock.send(conn.out)
                    del conn.out[:sent]
                    self.stats.add("bytes_out", sent)
                    conn.last = _time.monotonic()
        except (BlockingIOError, InterruptedError):
            pass
        except Exception:  # noqa: BLE001 - reset, broken pipe, a service bug...
            self._close(conn)
            return
        self._update(conn)

    def _update(self, conn: _Conn) -> None:
        """Finish, half-close or re-arm ``conn`` after its state changed."""
        session = conn.session
        buffered = len(conn.out)
        if buffered > self._peak:
            self._peak = buffered
            self.stats.set("buffer_peak", buffered)
        if session.finished and not conn.out and conn.linger_until is None:
            if not conn.read_open:
                self._close(conn)
                return
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(conn)
                return
            conn.linger_until = _time.monotonic() + LINGER_SECONDS
        events = 0
        if conn.read_open and (conn.linger_until is not None
                               or len(conn.out) < self.limits.out_buffer):
            events |= _READ
        if conn.out or (session.streaming and not session.finished):
            events |= _WRITE
        if events == 0:
            self._close(conn)
            return
        if events != conn.events:
            self._sel.modify(conn.sock, events, conn)
            conn.events = events

    _peak = 0

    def _sweep(self, now: float) -> None:
        idle = self.limits.idle_timeout
        total = 0
        for conn in list(self._conns.values()):
            if conn.linger_until is not None and now >= conn.linger_until:
                self._close(conn)
            elif now - conn.last > idle:
                self.stats.add("timeouts")
                self._close(conn)
            else:
                total += len(conn.out)
        self.stats.set("buffered", total)

    def _close(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock.fileno(), None) is None:
            return
        self.stats.add("active", -1)
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        conn.out = bytearray()
