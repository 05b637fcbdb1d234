"""Port redirection ("80 to 8080") for TCP and UDP, with an optional lossy link.

A redirector listens on one port and forwards to a target ``host:port``:

* **TCP**: every accepted connection gets its own connection to the target;
  bytes are copied both ways. A half-close is respected: when one side shuts
  down its sending direction (FIN), the relay shuts down the same direction
  towards the other side (``shutdown(SHUT_WR)``) and keeps copying the other
  way until that side finishes too. A reset on one side resets the other.
* **UDP**: there are no connections, so the relay keeps one upstream socket
  per client address (ip, port). A reply from the target arrives on that
  client's socket, which is how the relay knows whom to send it back to.
  Flows idle for ``udp_idle`` seconds are forgotten.

The "lossy link" turns UDP's letter analogy into an experiment: datagrams can
be dropped (``loss``), sent twice (``duplicate``), held back so that the next
one overtakes them (``reorder``) and delayed (``delay_ms``), each decided by a
pseudo-random generator seeded with ``seed`` so that the same datagrams in the
same order meet the same fate on every run. TCP gets only the delay, and still
delivers every byte in order: the reliability is TCP's, not the link's.

Everything runs in one thread around a selector (no thread per connection):
:func:`start_redirect` runs it in the background for Python callers (tours,
benchmarks, tests); ``netlab redirect`` runs it in the foreground.
"""
from __future__ import annotations

import collections
import errno
import heapq
import itertools
import os
import random
import selectors
import socket
import struct
import threading
import time
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

from netlab.binding import format_address, format_url
from netlab.errors import UsageError
from netlab.servers import bind_all

__all__ = ["Redirector", "parse_target", "start_redirect"]

_CHUNK = 65536
_HIGH_WATER = 1 << 20        # bytes queued per TCP direction before we stop reading
_UDP_BATCH = 256             # datagrams read per readiness event, for fairness
_REORDER_HOLD = 0.05         # s a held datagram waits to be overtaken before it goes anyway
_MAX_UDP_FLOWS = 4096
_RCVBUF = 4 << 20            # ask for big UDP buffers so bursts are not lost in the relay


def parse_target(text: str) -> Tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or just ``PORT`` (meaning 127.0.0.1) -> (host, port)."""
    text = text.strip()
    host, port_text = "127.0.0.1", text
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise UsageError(f"invalid target {text!r}: write an IPv6 target as [::1]:PORT")
        host, port_text = text[1:end], text[end + 2:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535 or not host:
        raise UsageError(f"invalid target {text!r}: use HOST:PORT with a port 1-65535, "
                         "e.g. 127.0.0.1:8080")
    return host, int(port_text)


# ---------------------------------------------------------------- the lossy link

_Item = Tuple[bytes, Callable[[bytes], object]]

class _Impairment:
    """Fate of each datagram in one direction: lost, duplicated, held back, delayed.

    Exactly three random numbers are drawn per datagram, whatever the
    probabilities, so one seed gives the same fates to the same sequence.
    A datagram travels as ``(bytes, send)``, ``send`` being how it leaves
    (its client's upstream socket, or a reply to its client): a held datagram
    must still go out the way it came, even when another client's overtakes it.
    """

    def __init__(self, loss: float, duplicate: float, reorder: float, seed_text: Optional[str]):
        self.loss, self.duplicate, self.reorder = loss, duplicate, reorder
        self.rng = random.Random(seed_text)
        self.active = bool(loss or duplicate or reorder)
        self.held: Optional[_Item] = None
        self.held_copies = 1
        self.held_token = 0
        self.stats = {"received": 0, "sent": 0, "dropped": 0, "duplicated": 0, "reordered": 0,
                      "send_errors": 0}

    def decide(self, item: "_Item") -> Tuple[List["_Item"], bool]:
        """What to emit now for ``item``, and whether ``item`` is now held back."""
        self.stats["received"] += 1
        if not self.active:
            return [item], False
        r_loss, r_dup, r_reorder = self.rng.random(), self.rng.random(), self.rng.random()
        if r_loss < self.loss:
            self.stats["dropped"] += 1
            return [], False
        copies = [item, item] if r_dup < self.duplicate else [item]
        if len(copies) == 2:
            self.stats["duplicated"] += 1
        if r_reorder < self.reorder and self.held is None:
            # Hold it back (with its duplicate, if any): the next datagram
            # that passes goes out first.
            self.held, self.held_copies = item, len(copies)
            self.held_token += 1
            return [], True
        out = copies
        if self.held is not None:
            # The held datagram goes out right behind this later one: reordered.
            out = copies + [self.held] * self.held_copies
            self.held = None
            self.stats["reordered"] += 1
        return out, False

    def release(self) -> List["_Item"]:
        """The held datagram, if nothing overtook it in time (not counted reordered)."""
        if self.held is None:
            return []
        out = [self.held] * self.held_copies
        self.held = None
        return out


# ------------------------------------------------------------------- TCP relay

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


class _TcpPair:
    def __init__(self, client: socket.socket, upstream: socket.socket, peer):
        self.client, self.upstream, self.peer = client, upstream, peer
        self.connected = False
        self.up = _Direction(client, upstream, "to_target")
        self.down = _Direction(upstream, client, "to_client")
        self.closed = False


# ------------------------------------------------------------------- UDP relay

class _UdpFlow:
    def __init__(self, client_addr, upstream: socket.socket, now: float):
        self.client_addr, self.upstream = client_addr, upstream
        self.last = now


class Redirector:
    """A TCP and/or UDP port redirector; see the module docstring.

    Create it (sockets are bound at once, so errors surface here), then either
    :meth:`run` it in this thread or :meth:`start` it in a background thread.
    ``ports`` maps ``"tcp"``/``"udp"`` to the bound port (useful with port 0).
    """

    def __init__(self, listen_port: int, target_host: str, target_port: int, *,
                 host: str = "127.0.0.1", protocols: Sequence[str] = ("tcp", "udp"),
                 loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 delay_ms: float = 0.0, seed: Optional[int] = None, udp_idle: float = 30.0):
        protocols = tuple(dict.fromkeys(p.lower() for p in protocols))
        if not protocols or any(p not in ("tcp", "udp") for p in protocols):
            raise UsageError(f"unknown protocols {protocols!r}: use tcp, udp or both")
        for name, value in (("loss", loss), ("duplicate", duplicate), ("reorder", reorder)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"--{name} {value} is not a probability: give a number from 0 to 1")
        if (loss or duplicate or reorder) and "udp" not in protocols:
            raise UsageError("--loss, --duplicate and --reorder act on UDP datagrams only "
                             "(TCP repairs loss itself); add --udp, or keep --delay for TCP")
        if delay_ms < 0 or delay_ms > 60000:
            raise UsageError(f"--delay {delay_ms} ms is out of range: give 0 to 60000 ms")
        if udp_idle <= 0:
            raise UsageError("the UDP idle timeout must be a positive number of seconds")
        try:
            infos = socket.getaddrinfo(target_host, target_port, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise UsageError(f"unknown target host {target_host!r} ({exc.strerror}); "
                             "give an IP address such as 127.0.0.1") from None
        infos.sort(key=lambda i: i[0] != socket.AF_INET)
        self.target = infos[0][4][:2]
        self.target_family = infos[0][0]
        self.host = host
        self.protocols = protocols
        self.delay = delay_ms / 1000.0
        self.settings = {"loss": loss, "duplicate": duplicate, "reorder": reorder,
                         "delay_ms": delay_ms, "seed": seed}
        self.udp_idle = udp_idle
        seed_text = None if seed is None else str(seed)
        self._up_imp = _Impairment(loss, duplicate, reorder,
                                   None if seed_text is None else seed_text + "/to_target")
        self._down_imp = _Impairment(loss, duplicate, reorder,
                                     None if seed_text is None else seed_text + "/to_client")
        self._sel = selectors.DefaultSelector()
        self._masks: Dict[socket.socket, int] = {}
        self._handlers: Dict[socket.socket, Callable[[int], None]] = {}
        self._timers: list = []
        self._seq = itertools.count()
        self._pairs: Dict[int, _TcpPair] = {}
        self._flows: Dict[tuple, _UdpFlow] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self._tcp_stats = {"connections": 0, "active": 0, "bytes_to_target": 0,
                           "bytes_to_client": 0, "failed": 0, "resets": 0}
        self._udp_stats = {"clients": 0, "expired": 0, "target_unreachable": 0}
        self._started_at = time.monotonic()
        self._internal_errors = 0
        self.ports: Dict[str, int] = {}
        self._listeners: Dict[str, socket.socket] = {}
        self._bind(listen_port)
        if target_port in self.ports.values() and self._same_host(target_host):
            self.close()
            raise UsageError(f"target {target_host}:{target_port} is the redirect's own port: "
                             "that would loop forever; choose another target")
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        if "tcp" in self._listeners:
            self._register(self._listeners["tcp"], selectors.EVENT_READ, self._on_accept)
        if "udp" in self._listeners:
            self._register(self._listeners["udp"], selectors.EVENT_READ, self._on_udp_client)

    # ---------------------------------------------------------------- setup

    def _same_host(self, target_host: str) -> bool:
        return target_host == self.host or {target_host, self.host} <= {"127.0.0.1", "localhost"}

    def _bind(self, listen_port: int) -> None:
        # With port 0 and both protocols, bind_all looks for one number free
        # for both, as for netlab's servers, so "the redirect's port" means one thing.
        self._listeners = bind_all(self.host, listen_port, self.protocols)
        for proto, sock in self._listeners.items():
            sock.setblocking(False)
            if proto == "udp":
                self._big_buffers(sock)
            self.ports[proto] = sock.getsockname()[1]

    @staticmethod
    def _big_buffers(sock: socket.socket) -> None:
        # A burst must not overflow the relay's own buffers, or the "link"
        # would lose datagrams it never chose to drop. SO_*BUFFORCE (root)
        # passes net.core.rmem_max; otherwise the kernel caps the request.
        for force, plain in (("SO_RCVBUFFORCE", socket.SO_RCVBUF),
                             ("SO_SNDBUFFORCE", socket.SO_SNDBUF)):
            for opt in (getattr(socket, force, None), plain):
                if opt is None:
                    continue
                try:
                    sock.setsockopt(socket.SOL_SOCKET, opt, _RCVBUF)
                    break
                except OSError:
                    continue

    def listen_urls(self) -> List[str]:
        """``['tcp://127.0.0.1:PORT', 'udp://...']``: what the CLI prints."""
        return [format_url(proto, self.host, port) for proto, port in self.ports.items()]

    # ---------------------------------------------------------------- selector helpers

    def _register(self, sock: socket.socket, mask: int, handler: Callable[[int], None]) -> None:
        self._handlers[sock] = handler
        self._set_mask(sock, mask)

    def _set_mask(self, sock: socket.socket, mask: int) -> None:
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

    def _forget(self, sock: socket.socket) -> None:
        self._set_mask(sock, 0)
        self._handlers.pop(sock, None)
        try:
            sock.close()
        except OSError:
            pass

    def _at(self, due: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (due, next(self._seq), action))

    # ---------------------------------------------------------------- the loop

    def run(self, seconds: Optional[float] = None) -> None:
        """Serve until :meth:`stop` (from a signal handler or another thread),
        or for ``seconds`` when given."""
        next_sweep = time.monotonic() + 1.0
        end = None if seconds is None else time.monotonic() + seconds
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                timeout = next_sweep - now
                if end is not None:
                    timeout = min(timeout, end - now)
                if self._timers:
                    timeout = min(timeout, self._timers[0][0] - now)
                for key, events in self._sel.select(max(0.0, timeout)):
                    handler = self._handlers.get(key.fileobj)
                    if handler is not None:
                        self._guarded(handler, events)
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, action = heapq.heappop(self._timers)
                    self._guarded(action)
                if now >= next_sweep:
                    self._expire_flows(now)
                    next_sweep = now + 1.0
        finally:
            self.close()

    def _guarded(self, func: Callable, *args) -> None:
        # One misbehaving peer (or a bug its traffic triggers) must not stop
        # the relay for everyone else: count it and carry on.
        try:
            func(*args)
        except Exception:  # noqa: BLE001
            self._internal_errors += 1
            if os.environ.get("NETLAB_DEBUG"):
                raise

    def start(self) -> "Redirector":
        """Run in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.run, name="netlab-redirect", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> dict:
        """Stop serving (safe from signal handlers and other threads); return :meth:`stats`."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return self.stats()

    def _on_wake(self, events: int) -> None:
        try:
            self._wake_r.recv(64)
        except OSError:
            pass

    def close(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for pair in list(self._pairs.values()):
            self._close_pair(pair)
        for flow in list(self._flows.values()):
            self._drop_flow(flow)
        for sock in list(self._handlers):
            self._forget(sock)
        for sock in self._listeners.values():
            sock.close()
        for sock in (getattr(self, "_wake_r", None), getattr(self, "_wake_w", None)):
            if sock is not None:
                sock.close()
        self._sel.close()

    def __enter__(self) -> "Redirector":
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- statistics

    def stats(self) -> dict:
        """Counters so far: ``tcp``, ``udp`` (with per-direction ``to_target`` and
        ``to_client`` and totals ``dropped``, ``duplicated``, ``reordered``),
        ``settings`` and ``seconds``."""
        up, down = dict(self._up_imp.stats), dict(self._down_imp.stats)
        udp = dict(self._udp_stats, active=len(self._flows), to_target=up, to_client=down)
        for key in ("dropped", "duplicated", "reordered"):
            udp[key] = up[key] + down[key]
        return {
            "ports": dict(self.ports),
            "target": format_address(*self.target),
            "seconds": round(time.monotonic() - self._started_at, 3),
            "settings": dict(self.settings),
            "tcp": dict(self._tcp_stats, active=len(self._pairs)),
            "udp": udp,
            "internal_errors": self._internal_errors,
        }

    def summary(self) -> str:
        """The one-line stop summary."""
        s = self.stats()
        parts = []
        if "tcp" in self.ports:
            t = s["tcp"]
            parts.append(f"tcp {t['connections']} connections, {t['bytes_to_target']} bytes to "
                         f"target, {t['bytes_to_client']} bytes back")
        if "udp" in self.ports:
            u = s["udp"]
            parts.append(f"udp {u['clients']} clients, {u['to_target']['received']} datagrams to "
                         f"target, {u['to_client']['received']} back, {u['dropped']} dropped, "
                         f"{u['duplicated']} duplicated, {u['reordered']} reordered")
        when = "stopped after" if self._stopped else "running for"
        return f"redirect {when} {s['seconds']:.1f} s: " + "; ".join(parts)

    # ---------------------------------------------------------------- TCP

    def _on_accept(self, events: int) -> None:
        listener = self._listeners["tcp"]
        for _ in range(64):
            try:
                client, peer = listener.accept()
            except OSError:  # EAGAIN (none left), ECONNABORTED, EMFILE...: keep serving
                return
            client.setblocking(False)
            upstream = socket.socket(self.target_family, socket.SOCK_STREAM)
            upstream.setblocking(False)
            for s in (client, upstream):
                # The relay must not add Nagle's delay on top of the peers' own.
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _TcpPair(client, upstream, peer)
            self._pairs[id(pair)] = pair
            self._tcp_stats["connections"] += 1
            err = upstream.connect_ex(self.target)
            if err not in (0, errno.EINPROGRESS):
                self._tcp_stats["failed"] += 1
                self._abort_pair(pair)
                continue
            self._handlers[client] = lambda ev, p=pair: self._on_tcp(p, p.client, ev)
            self._handlers[upstream] = lambda ev, p=pair: self._on_tcp(p, p.upstream, ev)
            if err == 0:
                pair.connected = True
            self._update(pair)

    def _on_tcp(self, pair: _TcpPair, sock: socket.socket, events: int) -> None:
        if pair.closed:
            return
        now = time.monotonic()
        if sock is pair.upstream and not pair.connected:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                # The target refused or is unreachable: reset the client so it
                # sees the failure at once, as if it had connected directly.
                self._tcp_stats["failed"] += 1
                self._abort_pair(pair)
                return
            pair.connected = True
        try:
            if events & selectors.EVENT_READ:
                d = pair.up if sock is pair.client else pair.down
                self._read(d, now)
            if events & selectors.EVENT_WRITE:
                d = pair.down if sock is pair.client else pair.up
                self._write(d, now)
        except OSError:
            self._tcp_stats["resets"] += 1
            self._abort_pair(pair)
            return
        self._after(pair)

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
            self._tcp_stats["bytes_" + d.name] += sent
            if sent < len(data):
                d.queue[0][1] = data[sent:]
                return
            d.queue.popleft()

    def _after(self, pair: _TcpPair) -> None:
        if pair.up.eof_sent and pair.down.eof_sent:
            self._close_pair(pair)
        else:
            self._update(pair)

    def _update(self, pair: _TcpPair) -> None:
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
                    self._at(d.timer_due, lambda p=pair: self._update(p))
        for sock, mask in masks.items():
            self._set_mask(sock, mask)

    def _close_pair(self, pair: _TcpPair) -> None:
        if pair.closed:
            return
        pair.closed = True
        self._pairs.pop(id(pair), None)
        self._forget(pair.client)
        self._forget(pair.upstream)

    def _abort_pair(self, pair: _TcpPair) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: the peer learns
        # the other side failed instead of seeing a polite end of stream.
        linger = struct.pack("ii", 1, 0)
        for sock in (pair.client, pair.upstream):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            except OSError:
                pass
        self._close_pair(pair)

    # ---------------------------------------------------------------- UDP

    def _emit(self, imp: _Impairment, items: List[_Item]) -> None:
        if not items:
            return
        if self.delay:
            self._at(time.monotonic() + self.delay, lambda: self._send_all(imp, items))
        else:
            self._send_all(imp, items)

    def _send_all(self, imp: _Impairment, items: List[_Item]) -> None:
        for data, send in items:
            try:
                send(data)
                imp.stats["sent"] += 1
            except OSError:
                # A full socket buffer (EAGAIN) or an ICMP error from an earlier
                # datagram: the link lost it, counted apart from chosen drops.
                imp.stats["send_errors"] += 1

    def _pass(self, imp: _Impairment, data: bytes, send: Callable[[bytes], None]) -> None:
        out, held = imp.decide((data, send))
        self._emit(imp, out)
        if held:
            token = imp.held_token

            def flush() -> None:
                if imp.held is not None and imp.held_token == token:
                    self._emit(imp, imp.release())
            self._at(time.monotonic() + _REORDER_HOLD, flush)

    def _on_udp_client(self, events: int) -> None:
        recvfrom = self._listeners["udp"].recvfrom
        flows = self._flows
        imp = self._up_imp
        # A clean, undelayed link skips the impairment machinery: this loop is
        # the relay's hot path, and every Python call in it costs datagrams/s.
        fast = not imp.active and not self.delay
        stats = imp.stats
        now = time.monotonic()
        for _ in range(_UDP_BATCH):
            try:
                data, addr = recvfrom(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue   # e.g. an ICMP error for an earlier reply to a client that left
            flow = flows.get(addr)
            if flow is None:
                flow = self._new_flow(addr, now)
                if flow is None:
                    continue
            flow.last = now
            if fast:
                stats["received"] += 1
                try:
                    flow.upstream.send(data)
                    stats["sent"] += 1
                except OSError:
                    stats["send_errors"] += 1
            else:
                self._pass(imp, data, flow.upstream.send)

    def _new_flow(self, addr, now: float) -> Optional[_UdpFlow]:
        if len(self._flows) >= _MAX_UDP_FLOWS:
            oldest = min(self._flows.values(), key=lambda f: f.last)
            self._drop_flow(oldest)
        try:
            upstream = socket.socket(self.target_family, socket.SOCK_DGRAM)
            upstream.setblocking(False)
            self._big_buffers(upstream)
            upstream.connect(self.target)   # replies from anyone else are filtered out
        except OSError:
            return None
        flow = _UdpFlow(addr, upstream, now)
        self._flows[addr] = flow
        self._udp_stats["clients"] += 1
        self._register(upstream, selectors.EVENT_READ, lambda ev, f=flow: self._on_udp_reply(f))
        return flow

    def _on_udp_reply(self, flow: _UdpFlow) -> None:
        listener = self._listeners["udp"]
        now = time.monotonic()
        for _ in range(_UDP_BATCH):
            try:
                data = flow.upstream.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:
                    self._udp_stats["target_unreachable"] += 1   # ICMP port unreachable
                continue
            flow.last = now
            self._pass(self._down_imp, data,
                       lambda d, a=flow.client_addr: listener.sendto(d, a))

    def _drop_flow(self, flow: _UdpFlow) -> None:
        self._flows.pop(flow.client_addr, None)
        self._forget(flow.upstream)

    def _expire_flows(self, now: float) -> None:
        for flow in [f for f in self._flows.values() if now - f.last > self.udp_idle]:
            self._drop_flow(flow)
            self._udp_stats["expired"] += 1


def start_redirect(listen_port: int, target_host: str, target_port: int, host: str = "127.0.0.1",
                   protocols: Sequence[str] = ("tcp", "udp"), loss: float = 0.0,
                   duplicate: float = 0.0, reorder: float = 0.0, delay_ms: float = 0.0,
                   seed: Optional[int] = None, udp_idle: float = 30.0) -> Redirector:
    """Start a redirector in a background thread and return it.

    The handle has ``.ports`` (``{"tcp": n, "udp": n}``), ``.stats()``,
    ``.summary()``, ``.stop()`` and is a context manager::

        with start_redirect(0, "127.0.0.1", 7007, protocols=("udp",), loss=0.1, seed=1) as r:
            ...  # send to r.ports["udp"]
        print(r.stats()["udp"]["dropped"])
    """
    return Redirector(listen_port, target_host, target_port, host=host, protocols=protocols,
                      loss=loss, duplicate=duplicate, reorder=reorder, delay_ms=delay_ms,
                      seed=seed, udp_idle=udp_idle).start()
