"""The one event loop the TCP and UDP relays share: a selector, timers, a wake-up.

Everything runs in one thread, so the relays need no locks. A handler is
called with the selector's event mask; a timer with no arguments. One
misbehaving peer (or a bug its traffic triggers) must not stop the relay for
everyone else, so an exception in a handler is counted and the loop goes on
(``NETLAB_DEBUG=1`` raises it instead).
"""
from __future__ import annotations

import heapq
import itertools
import os
import selectors
import socket
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

__all__ = ["Loop"]


class Loop:
    """A selector loop with timers; :meth:`stop` is safe from signal handlers
    and other threads."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._masks: Dict[socket.socket, int] = {}
        self._handlers: Dict[socket.socket, Callable[[int], None]] = {}
        self._timers: List[Tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        self.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        self.internal_errors = 0
        self.closed = False

    # ---------------------------------------------------------------- sockets

    def register(self, sock: socket.socket, mask: int, handler: Callable[[int], None]) -> None:
        """Call ``handler(events)`` when ``sock`` is ready for ``mask`` (0: not yet)."""
        self._handlers[sock] = handler
        self.set_mask(sock, mask)

    def set_mask(self, sock: socket.socket, mask: int) -> None:
        """Change what ``sock`` waits for; 0 waits for nothing."""
        old = self._masks.get(sock, 0)
        if mask == old:
            return
        if old and mask:
            self._sel.modify(sock, mask)
        elif mask:
            self._sel.register(sock, mask)
        else:
            self._sel.unregister(sock)
        if mask:
            self._masks[sock] = mask
        else:
            self._masks.pop(sock, None)

    def forget(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` and close it."""
        self.set_mask(sock, 0)
        self._handlers.pop(sock, None)
        try:
            sock.close()
        except OSError:
            pass

    # ---------------------------------------------------------------- time

    def at(self, due: float, action: Callable[[], None]) -> None:
        """Run ``action()`` at ``due`` (a ``time.monotonic()`` value)."""
        heapq.heappush(self._timers, (due, next(self._seq), action))

    def every(self, seconds: float, action: Callable[[float], None]) -> None:
        """Run ``action(now)`` every ``seconds``."""
        def tick() -> None:
            action(time.monotonic())
            self.at(time.monotonic() + seconds, tick)
        self.at(time.monotonic() + seconds, tick)

    # ---------------------------------------------------------------- running

    def run(self, seconds: Optional[float] = None) -> None:
        """Serve until :meth:`stop`, or for ``seconds`` when given."""
        end = None if seconds is None else time.monotonic() + seconds
        while not self._stop.is_set():
            now = time.monotonic()
            if end is not None and now >= end:
                break
            timeout = 1.0 if end is None else end - now
            if self._timers:
                timeout = min(timeout, self._timers[0][0] - now)
            for key, events in self._sel.select(max(0.0, timeout)):
                handler = self._handlers.get(key.fileobj)  # type: ignore[call-overload]
                if handler is not None:
                    self._guarded(handler, events)
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, action = heapq.heappop(self._timers)
                self._guarded(action)

    def _guarded(self, func: Callable, *args) -> None:
        try:
            func(*args)
        except Exception:  # noqa: BLE001
            self.internal_errors += 1
            if os.environ.get("NETLAB_DEBUG"):
                raise

    def stop(self) -> None:
        """Make :meth:`run` return soon (from any thread or a signal handler)."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _on_wake(self, events: int) -> None:
        try:
            self._wake_r.recv(64)
        except OSError:
            pass

    def close(self) -> None:
        """Close every socket still registered, and the loop itself."""
        if self.closed:
            return
        self.closed = True
        for sock in list(self._handlers):
            self.forget(sock)
        self._wake_w.close()
        self._sel.close()
