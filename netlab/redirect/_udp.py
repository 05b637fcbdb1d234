"""The UDP relay: one upstream socket per client address, replies routed back.

UDP has no connections, so the relay keeps one *flow* per client address
(ip, port): an upstream socket connected to the target. A reply from the
target arrives on that client's socket, which is how the relay knows whom to
send it back to. Flows idle for ``idle`` seconds are forgotten; at
``MAX_FLOWS`` the least recently active flow makes room for a new one.

The flows live in an ordered dict, least recently active first: a datagram
moves its flow to the end, so the flow to evict and the flows to expire are
always at the front. Each new flow costs the same at the cap as below it
(searching 4,096 flows for the oldest, once per new source, starved new
sources under a flood of them).

Bound to every address (``0.0.0.0``, ``::``), the relay answers each client
from the address the client sent to (:mod:`netlab.pktinfo`).

Both directions pass a :class:`~netlab.services.lossy.LossyLink`; the relay
sends what it lets through, after ``delay`` seconds.
"""
from __future__ import annotations

import collections
import errno
import selectors
import socket
import time
from typing import Callable, List, Optional, Tuple

from netlab import pktinfo
from netlab.redirect._loop import Loop
from netlab.services.lossy import REORDER_HOLD, LossyLink

__all__ = ["MAX_FLOWS", "UdpRelay", "big_buffers"]

MAX_FLOWS = 4096
_CHUNK = 65536
_BATCH = 256                 # datagrams read per readiness event, for fairness
_BUFFER = 4 << 20            # ask for big UDP buffers so bursts are not lost in the relay

_Item = Tuple[bytes, Callable[[bytes], object]]


def big_buffers(sock: socket.socket) -> None:
    """Ask for 4 MiB send and receive buffers on ``sock``.

    A burst must not overflow the relay's own buffers, or the "link" would
    lose datagrams it never chose to drop. SO_*BUFFORCE (root) passes
    net.core.rmem_max; otherwise the kernel caps the request.
    """
    for force, plain in (("SO_RCVBUFFORCE", socket.SO_RCVBUF),
                         ("SO_SNDBUFFORCE", socket.SO_SNDBUF)):
        for opt in (getattr(socket, force, None), plain):
            if opt is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, _BUFFER)
                break
            except OSError:
                continue


class _Flow:
    def __init__(self, client_addr: tuple, upstream: socket.socket, now: float):
        self.client_addr, self.upstream = client_addr, upstream
        self.local_ip: Optional[str] = None   # the address the client sent to, if wildcard
        self.last = now


def _snapshot(stats: dict, active: int, max_flows: int, up: LossyLink, down: LossyLink) -> dict:
    udp = dict(stats, active=active, max_flows=max_flows, to_target=dict(up.stats),
               to_client=dict(down.stats))
    for key in ("dropped", "duplicated", "reordered"):
        udp[key] = up.stats[key] + down.stats[key]
    return udp


class UdpRelay:
    """Relays datagrams from clients on ``listener`` to ``target`` and back."""

    COUNTERS = ("clients", "expired", "evicted", "target_unreachable")

    def __init__(self, loop: Loop, listener: socket.socket, target: tuple, family: int,
                 delay: float, up: LossyLink, down: LossyLink, idle: float,
                 max_flows: int = MAX_FLOWS):
        self.loop, self.listener, self.target, self.family = loop, listener, target, family
        self.delay, self.up, self.down, self.idle = delay, up, down, idle
        self.max_flows = max_flows
        self.flows: "collections.OrderedDict[tuple, _Flow]" = collections.OrderedDict()
        self.stats = dict.fromkeys(self.COUNTERS, 0)
        pktinfo.enable(listener)
        self.wildcard = listener.getsockname()[0] in ("0.0.0.0", "::")
        loop.register(listener, selectors.EVENT_READ, self._on_client)
        loop.every(1.0, self._expire)

    def snapshot(self) -> dict:
        """The counters, each link's and their totals, and ``active`` flows."""
        return _snapshot(self.stats, len(self.flows), self.max_flows, self.up, self.down)

    @classmethod
    def idle_snapshot(cls) -> dict:
        """What :meth:`snapshot` says for a relay that never ran (all zeros)."""
        return _snapshot(dict.fromkeys(cls.COUNTERS, 0), 0, MAX_FLOWS, LossyLink(), LossyLink())

    def close(self) -> None:
        for flow in list(self.flows.values()):
            self._drop(flow)

    # ---------------------------------------------------------------- clients to target

    def _on_client(self, events: int) -> None:
        listener, flows, link = self.listener, self.flows, self.up
        # A clean, undelayed link skips the lossy link: this loop is the
        # relay's hot path, and every Python call in it costs datagrams/s.
        fast = not link.active and not self.delay
        stats = link.stats
        now = time.monotonic()
        for _ in range(_BATCH):
            try:
                if self.wildcard:
                    data, addr, local_ip = pktinfo.recv(listener, _CHUNK)
                else:
                    data, addr = listener.recvfrom(_CHUNK)
                    local_ip = None
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue   # e.g. an ICMP error for an earlier reply to a client that left
            flow = flows.get(addr)
            if flow is None:
                flow = self._new_flow(addr, now)
                if flow is None:
                    continue
            else:
                flows.move_to_end(addr)
            flow.last = now
            flow.local_ip = local_ip
            if fast:
                stats["received"] += 1
                try:
                    flow.upstream.send(data)
                    stats["sent"] += 1
                except OSError:
                    stats["send_errors"] += 1
            else:
                self._pass(link, data, flow.upstream.send)

    def _new_flow(self, addr: tuple, now: float) -> Optional[_Flow]:
        if len(self.flows) >= self.max_flows:
            _, oldest = self.flows.popitem(last=False)
            self._drop(oldest)
            self.stats["evicted"] += 1
        try:
            upstream = socket.socket(self.family, socket.SOCK_DGRAM)
        except OSError:
            return None   # out of descriptors: this datagram is lost, the relay lives on
        try:
            upstream.setblocking(False)
            big_buffers(upstream)
            upstream.connect(self.target)   # replies from anyone else are filtered out
        except OSError:
            upstream.close()
            return None
        flow = _Flow(addr, upstream, now)
        self.flows[addr] = flow
        self.stats["clients"] += 1
        self.loop.register(upstream, selectors.EVENT_READ, lambda ev, f=flow: self._on_reply(f))
        return flow

    # ---------------------------------------------------------------- target to clients

    def _on_reply(self, flow: _Flow) -> None:
        now = time.monotonic()
        for _ in range(_BATCH):
            try:
                data = flow.upstream.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:
                    # ICMP port unreachable: the last datagram reached the
                    # target host, but nothing there listens on the port.
                    self.stats["target_unreachable"] += 1
                continue
            flow.last = now
            if flow.client_addr in self.flows:
                self.flows.move_to_end(flow.client_addr)
            self._pass(self.down, data, lambda d, f=flow: pktinfo.send(
                self.listener, d, f.client_addr, f.local_ip))

    # ---------------------------------------------------------------- the link

    def _pass(self, link: LossyLink, data: bytes, send: Callable[[bytes], object]) -> None:
        out, held = link.decide((data, send))
        self._emit(link, out)
        if held:
            token = link.held_token

            def flush() -> None:
                if link.held is not None and link.held_token == token:
                    self._emit(link, link.release())
            self.loop.at(time.monotonic() + REORDER_HOLD, flush)

    def _emit(self, link: LossyLink, items: List[_Item]) -> None:
        if not items:
            return
        if self.delay:
            self.loop.at(time.monotonic() + self.delay, lambda: self._send_all(link, items))
        else:
            self._send_all(link, items)

    @staticmethod
    def _send_all(link: LossyLink, items: List[_Item]) -> None:
        for data, send in items:
            try:
                send(data)
                link.stats["sent"] += 1
            except OSError:
                # A full socket buffer (EAGAIN) or an ICMP error from an earlier
                # datagram: the link lost it, counted apart from chosen drops.
                link.stats["send_errors"] += 1

    # ---------------------------------------------------------------- forgetting

    def _drop(self, flow: _Flow) -> None:
        self.flows.pop(flow.client_addr, None)
        self.loop.forget(flow.upstream)

    def _expire(self, now: float) -> None:
        while self.flows:
            flow = next(iter(self.flows.values()))
            if now - flow.last <= self.idle:
                return
            self._drop(flow)
            self.stats["expired"] += 1
