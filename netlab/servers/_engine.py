"""The base of every concurrency model: threads, the wake-up pair, stopping."""
from __future__ import annotations

import socket
import threading
import time as _time
from typing import Dict, List, Set

from netlab import pktinfo
from netlab.servers._common import Limits, Stats

__all__ = ["Engine"]

# The longest stop() waits for handler threads (threaded model) to finish
# after their connections were shut down: they are daemon threads, so a
# process that exits does not wait for the stragglers of 5,000 connections
# (their sockets close with the process).
_HANDLER_GRACE = 0.5
# The longest stop() itself shuts connections down before a closer thread
# takes over the rest (see Engine.interrupt).
_SHUTDOWN_SECONDS = 0.25


def _shut_down(conns) -> None:
    """Shut ``conns`` down both ways: a handler blocked in recv/send wakes at once."""
    for conn in conns:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by its handler


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
        self._wake_w.setblocking(False)  # signal.set_wakeup_fd needs it non-blocking
        self._threads: List[threading.Thread] = []
        # Connections being served by blocking handlers, so stop() can wake them
        # (and wait for them: a handler removes its connection when it ends).
        self._active: Set[socket.socket] = set()
        self._active_lock = threading.Condition()
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

    def spawn_handler(self, target, conn: socket.socket) -> None:
        """Serve ``conn`` in a thread of its own (threaded model).

        The connection is tracked (see :meth:`track`) before the thread
        starts, so stop() finds it at once; the thread forgets itself when
        it ends, so starting one costs the same with 5 or 5,000 running.
        """
        self.track(conn)
        thread = threading.Thread(target=self._handler, args=(target, conn),
                                  name="netlab-conn", daemon=True)
        thread.start()

    def _handler(self, target, conn: socket.socket) -> None:
        try:
            target(conn)
        finally:
            self.untrack(conn)

    def _guarded_run(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - recorded, reported by the handle
            if not self.stopping.is_set():
                self.error = exc

    def run(self) -> None:  # pragma: no cover - every model overrides it
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: wake the threads, end live connections, close every socket.

        ``timeout`` bounds the whole stop, not each thread: a threaded server
        with thousands of connections must not take thousands of joins.
        """
        deadline = _time.monotonic() + timeout
        self.stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self.interrupt()
        # The serving thread (the iterative model serves in it): once it is
        # gone no new handler appears.
        for t in list(self._threads):
            t.join(max(0.0, deadline - _time.monotonic()))
        grace = min(_HANDLER_GRACE, max(0.0, deadline - _time.monotonic()))
        with self._active_lock:
            self._active_lock.wait_for(lambda: not self._active, grace)
        for sock in self.socks.values():
            sock.close()
        self._wake_r.close()
        self._wake_w.close()

    def interrupt(self) -> None:
        """Unblock handlers stuck in recv/send: shut their connections down.

        Each shutdown() wakes a handler, which takes the GIL before this
        thread gets it back: thousands of connections cost thousands of
        hand-overs, each as slow as the machine is busy. So this thread
        stops after ``_SHUTDOWN_SECONDS`` and a closer thread shuts the rest
        down while stop() goes on. A connection tracked after :attr:`stopping` was
        set is shut down by :meth:`track` itself.
        """
        until = _time.monotonic() + _SHUTDOWN_SECONDS
        with self._active_lock:
            active = list(self._active)
        for i, conn in enumerate(active):
            if _time.monotonic() > until:
                threading.Thread(target=_shut_down, args=(active[i:],), daemon=True,
                                 name=f"netlab-{self.service}-closer").start()
                return
            _shut_down((conn,))

    # -- helpers for blocking handlers --------------------------------------
    def track(self, conn: socket.socket) -> None:
        with self._active_lock:
            self._active.add(conn)
        if self.stopping.is_set():  # raced with stop(): end it now
            _shut_down((conn,))

    def untrack(self, conn: socket.socket) -> None:
        with self._active_lock:
            self._active.discard(conn)
            if not self._active:
                self._active_lock.notify_all()

    def active_count(self) -> int:
        with self._active_lock:
            return len(self._active)

    @property
    def wakeup_fd(self) -> int:
        """The write end of the wake-up pair, for ``signal.set_wakeup_fd``.

        Any byte written there means "stop": :meth:`stop` writes one, and so
        does the C signal handler once the CLI points ``set_wakeup_fd`` here.
        So Ctrl-C / SIGTERM ends the serving loops at once, before Python's
        own handler can run: with thousands of handler threads the main
        thread may wait seconds for the GIL, and the accept loop would keep
        starting threads meanwhile.
        """
        return self._wake_w.fileno()

    def drain_wake(self) -> None:
        """Empty the wake-up pair; a byte there means stop (see :attr:`wakeup_fd`)."""
        try:
            while self._wake_r.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass
        self.stopping.set()
