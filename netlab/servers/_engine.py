"""The base of every concurrency model: threads, the wake-up pair, stopping."""
from __future__ import annotations

import socket
import threading
from typing import Dict, List, Set

from netlab import pktinfo
from netlab.servers._common import Limits, Stats

__all__ = ["Engine"]


class Engine:
    """Runs one service on already-bound sockets; subclasses supply :meth:`run`.

    ``socks`` maps ``"tcp"``/``"udp"`` to bound sockets (TCP already
    listening). The engine owns them from now on and closes them in
    :meth:`stop`. A socketpair wakes a thread blocked in select/poll, so stop
    is immediate rather than polled.
    """

    model = "?"

    def __init__(self, service: str, socks: Dict[str, socket.socket], limits: Limits,
                 stats: Stats) -> None:
        self.service = service
        self.socks = socks
        self.limits = limits
        self.stats = stats
        udp = socks.get("udp")
        self.guard = limits.guard(udp.getsockname()[1] if udp is not None else 0)
        if udp is not None:
            pktinfo.enable(udp)  # wildcard-bound: reply from the address written to
        self.stopping = threading.Event()
        self.error: "BaseException | None" = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._threads: List[threading.Thread] = []
        # Connections being served by blocking handlers, so stop() can wake them.
        self._active: Set[socket.socket] = set()
        self._active_lock = threading.Lock()
        for sock in socks.values():
            sock.setblocking(False)

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        self._spawn(self._guarded_run, f"netlab-{self.service}-{self.model}")

    def _spawn(self, target, name: str, *args) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)
        return t

    def _guarded_run(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - recorded, reported by the handle
            if not self.stopping.is_set():
                self.error = exc

    def run(self) -> None:  # pragma: no cover - every model overrides it
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: wake the threads, end live connections, close every socket."""
        self.stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self.interrupt()
        # The main thread first: once it is gone no new handler thread appears.
        if self._threads:
            self._threads[0].join(timeout)
        for t in list(self._threads[1:]):
            t.join(timeout)
        for sock in self.socks.values():
            sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def interrupt(self) -> None:
        """Unblock handlers stuck in recv/send: shut their connections down."""
        with self._active_lock:
            active = list(self._active)
        for conn in active:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- helpers for blocking handlers --------------------------------------
    def track(self, conn: socket.socket) -> None:
        with self._active_lock:
            self._active.add(conn)
        if self.stopping.is_set():  # raced with stop(): end it now
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def untrack(self, conn: socket.socket) -> None:
        with self._active_lock:
            self._active.discard(conn)

    def active_count(self) -> int:
        with self._active_lock:
            return len(self._active)

    def drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass
