"""The TCP relay: one connection to the target per accepted client, bytes copied both ways.

A half-close is respected: when one side shuts down its sending direction
(FIN), the relay shuts down the same direction towards the other side
(``shutdown(SHUT_WR)``) and keeps copying the other way until that side
finishes too. A reset on one side resets the other. ``delay`` holds every
chunk back that long; TCP still delivers every byte, in order.
"""
from __future__ import annotations

import collections
import errno
import selectors
import socket
import struct
import time
from typing import Deque, Dict

from netlab.redirect._loop import Loop

__all__ = ["TcpRelay"]

_CHUNK = 65536
_HIGH_WATER = 1 << 20        # bytes queued per direction before we stop reading
_ACCEPTS_PER_EVENT = 64


class _Direction:
    """Bytes flowing from ``src`` to ``dst``, each chunk due at its time."""

    def __init__(self, src: socket.socket, dst: socket.socket, name: str):
        self.src, self.dst, self.name = src, dst, name
        self.queue: Deque[list] = collections.deque()   # [due, data or None (EOF)]
        self.queued = 0
        self.eof_read = False
        self.eof_sent = False
        self.timer_due = 0.0

    def head_due(self, now: float) -> bool:
        return bool(self.queue) and self.queue[0][0] <= now


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.client, self.upstream = client, upstream
        self.connected = False
        self.up = _Direction(client, upstream, "to_target")
        self.down = _Direction(upstream, client, "to_client")
        self.closed = False


class TcpRelay:
    """Accepts on ``listener`` and relays each client to ``target``."""

    COUNTERS = ("connections", "active", "bytes_to_target", "bytes_to_client", "failed",
                "refused", "resets")

    def __init__(self, loop: Loop, listener: socket.socket, target: tuple, family: int,
                 delay: float):
        self.loop, self.listener, self.target, self.family = loop, listener, target, family
        self.delay = delay
        self.pairs: Dict[int, _Pair] = {}
        self.stats = dict.fromkeys(self.COUNTERS, 0)
        loop.register(listener, selectors.EVENT_READ, self._on_accept)

    def snapshot(self) -> dict:
        """The counters, with ``active`` connections now."""
        return dict(self.stats, active=len(self.pairs))

    def close(self) -> None:
        for pair in list(self.pairs.values()):
            self._close(pair)

    # ---------------------------------------------------------------- events

    def _on_accept(self, events: int) -> None:
        for _ in range(_ACCEPTS_PER_EVENT):
            try:
                client, _peer = self.listener.accept()
            except OSError:  # EAGAIN (none left), ECONNABORTED, EMFILE...: keep serving
                return
            client.setblocking(False)
            upstream = socket.socket(self.family, socket.SOCK_STREAM)
            upstream.setblocking(False)
            for s in (client, upstream):
                # The relay must not add Nagle's delay on top of the peers' own.
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            self.pairs[id(pair)] = pair
            self.stats["connections"] += 1
            err = upstream.connect_ex(self.target)
            if err not in (0, errno.EINPROGRESS):
                self._failed(pair, err)
                continue
            self.loop.register(client, 0, lambda ev, p=pair: self._on_ready(p, p.client, ev))
            self.loop.register(upstream, 0, lambda ev, p=pair: self._on_ready(p, p.upstream, ev))
            pair.connected = err == 0
            self._update(pair)

    def _on_ready(self, pair: _Pair, sock: socket.socket, events: int) -> None:
        if pair.closed:
            return
        now = time.monotonic()
        if sock is pair.upstream and not pair.connected:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._failed(pair, err)
                return
            pair.connected = True
        try:
            if events & selectors.EVENT_READ:
                self._read(pair.up if sock is pair.client else pair.down, now)
            if events & selectors.EVENT_WRITE:
                self._write(pair.down if sock is pair.client else pair.up, now)
        except OSError:
            self.stats["resets"] += 1
            self._abort(pair)
            return
        if pair.up.eof_sent and pair.down.eof_sent:
            self._close(pair)
        else:
            self._update(pair)

    def _failed(self, pair: _Pair, err: int) -> None:
        # The target refused or is unreachable: reset the client so it sees
        # the failure at once, as if it had connected directly.
        self.stats["failed"] += 1
        if err == errno.ECONNREFUSED:
            self.stats["refused"] += 1
        self._abort(pair)

    # ---------------------------------------------------------------- copying

    def _read(self, d: _Direction, now: float) -> None:
        if d.eof_read or d.queued >= _HIGH_WATER:
            return
        try:
            data = d.src.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        due = now + self.delay
        if not data:
            d.eof_read = True
            d.queue.append([due, None])
        else:
            d.queue.append([due, data])
            d.queued += len(data)
        if not self.delay:
            self._write(d, now)   # the common case: pass it straight on

    def _write(self, d: _Direction, now: float) -> None:
        while d.head_due(now):
            data = d.queue[0][1]
            if data is None:
                d.queue.popleft()
                if not d.eof_sent:
                    d.eof_sent = True
                    try:
                        d.dst.shutdown(socket.SHUT_WR)   # pass the half-close on
                    except OSError:
                        pass
                continue
            try:
                sent = d.dst.send(data)
            except (BlockingIOError, InterruptedError):
                return
            d.queued -= sent
            self.stats["bytes_" + d.name] += sent
            if sent < len(data):
                d.queue[0][1] = data[sent:]
                return
            d.queue.popleft()

    def _update(self, pair: _Pair) -> None:
        """Recompute what each socket of ``pair`` waits for, and any timers."""
        if pair.closed:
            return
        now = time.monotonic()
        masks = {pair.client: 0, pair.upstream: 0}
        if not pair.connected:
            masks[pair.upstream] = selectors.EVENT_WRITE
        else:
            for d in (pair.up, pair.down):
                if not d.eof_read and d.queued < _HIGH_WATER:
                    masks[d.src] |= selectors.EVENT_READ
                if d.head_due(now):
                    masks[d.dst] |= selectors.EVENT_WRITE
                elif d.queue and d.timer_due != d.queue[0][0]:
                    d.timer_due = d.queue[0][0]
                    self.loop.at(d.timer_due, lambda p=pair: self._update(p))
        for sock, mask in masks.items():
            self.loop.set_mask(sock, mask)

    # ---------------------------------------------------------------- ending

    def _close(self, pair: _Pair) -> None:
        if pair.closed:
            return
        pair.closed = True
        self.pairs.pop(id(pair), None)
        self.loop.forget(pair.client)
        self.loop.forget(pair.upstream)

    def _abort(self, pair: _Pair) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: the peer learns
        # the other side failed instead of seeing a polite end of stream.
        linger = struct.pack("ii", 1, 0)
        for sock in (pair.client, pair.upstream):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            except OSError:
                pass
        self._close(pair)
