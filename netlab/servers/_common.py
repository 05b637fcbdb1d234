"""What every server model shares: limits, counters, binding, UDP replies."""
from __future__ import annotations

import errno
import math
import select
import socket
import threading
from dataclasses import dataclass, fields
from typing import Dict, Optional

from netlab import pktinfo, services
from netlab.binding import bind_socket, format_url
from netlab.errors import NetlabError
from netlab.services.guard import DEFAULT_UDP_RATE, GUARDED_PORTS, UdpGuard

__all__ = [
    "LINGER_SECONDS",
    "RECV_SIZE",
    "REST_SECONDS",
    "Limits",
    "Stats",
    "bind_all",
    "format_url",
    "listener_must_rest",
    "handle_datagram",
    "is_disconnect",
    "udp_reply",
    "wait_socket",
]

RECV_SIZE = 65536
# After the last byte of a finished reply the server half-closes and waits at
# most this long for the client's EOF before closing. Closing while unread
# client bytes sit in the receive buffer makes the kernel send RST, and a RST
# can destroy the reply still in flight (a daytime line lost because the
# client had typed something). Lingering briefly avoids that.
LINGER_SECONDS = 2.0
# Idle timeouts this long (about 31 years) or longer mean "no limit".
_NO_LIMIT = 1e9
# Out of descriptors (EMFILE and friends), accept() fails while the client
# stays queued, so the listener is readable again at once: a loop that kept
# watching it would spin at full CPU. Every model stops watching the listener
# for this long instead, as the compiled loop does between its sweeps.
REST_SECONDS = 0.25
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclass
class Limits:
    """Per-server limits; every keyword of ``start_server(**limits)`` is a field."""

    #: Close a TCP connection after this many seconds without progress either way
    #: (``math.inf``, ``--idle-timeout inf``: no limit).
    idle_timeout: float = 120.0
    #: TCP connections served at once; more are accepted and closed at once.
    max_connections: int = 512
    #: Bytes a connection may queue in the server before it stops reading
    #: (echo) or generating (chargen) until the client catches up.
    out_buffer: int = 65536
    #: UDP replies per second to one source address (0 means unlimited).
    udp_rate: float = DEFAULT_UDP_RATE
    #: Replies a source may get in one burst (by default min(rate, 1000)).
    udp_burst: Optional[int] = None

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> "Limits":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown server limit(s): {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(known))})")
        limits = cls(**{k: v for k, v in kwargs.items() if v is not None})
        if not limits.idle_timeout > 0:  # also refuses NaN
            raise ValueError("idle_timeout must be more than 0 seconds (inf: no limit)")
        if limits.idle_timeout >= _NO_LIMIT:  # beyond what timers take: no limit at all
            limits.idle_timeout = math.inf
        if limits.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if limits.out_buffer < 1024:
            raise ValueError("out_buffer must be at least 1024 bytes")
        if limits.udp_rate < 0:
            raise ValueError("udp_rate must be 0 (unlimited) or more")
        return limits

    @property
    def idle_seconds(self) -> Optional[float]:
        """The idle timeout for socket calls: None when there is no limit."""
        return None if math.isinf(self.idle_timeout) else self.idle_timeout

    def guard(self, own_port: int = 0) -> UdpGuard:
        """The UDP loop guard; ``own_port`` (the port this server bound) is guarded
        too, so a spoofed datagram "from" the server itself cannot make it talk to
        itself, whatever port it runs on."""
        ports = GUARDED_PORTS | ({own_port} if own_port else set())
        return UdpGuard(rate=self.udp_rate, burst=self.udp_burst, guarded_ports=ports)


class Stats:
    """Thread-safe counters of one server."""

    KEYS = ("connections", "datagrams", "bytes_in", "bytes_out", "active",
            "rejected", "timeouts", "errors", "replies", "udp_looped", "udp_limited",
            "udp_dropped", "buffered", "buffer_peak")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, int] = dict.fromkeys(self.KEYS, 0)

    def add(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._values[key] += amount

    def set(self, key: str, value: int) -> None:
        with self._lock:
            self._values[key] = value

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._values)


def bind_all(host: str, port: int, protocols) -> Dict[str, socket.socket]:
    """Bind every protocol of ``protocols`` on ``host`` and one shared port number.

    With port 0 the OS picks the TCP port and UDP must get the same number; if
    that number happens to be taken for UDP, try again with another.
    """
    protocols = tuple(protocols)
    tries = 20 if port == 0 and len(protocols) > 1 else 1
    last: Optional[NetlabError] = None
    for _ in range(tries):
        socks: Dict[str, socket.socket] = {}
        chosen = port
        try:
            for proto in protocols:
                # A deep accept queue: a burst of clients (200 at once in the
                # tests, a class in a lab) is queued rather than SYN-dropped
                # and retried a second later. The kernel caps it at somaxconn.
                sock = bind_socket(proto, host, chosen, backlog=1024)
                socks[proto] = sock
                chosen = sock.getsockname()[1]
            return socks
        except NetlabError as exc:
            last = exc
            for sock in socks.values():
                sock.close()
    assert last is not None
    raise last


def is_disconnect(exc: BaseException) -> bool:
    """True for the errors that only mean "the client went away"."""
    return isinstance(exc, (ConnectionError, socket.timeout)) or (
        isinstance(exc, OSError) and exc.errno in (
            errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF, errno.ESHUTDOWN,
            errno.ETIMEDOUT, errno.ECONNABORTED))


def listener_must_rest(exc: OSError, stats: "Stats") -> bool:
    """Count a failed ``accept()``; True when the listener should rest (out of
    descriptors or memory), False when the next client can be taken at once
    (e.g. ECONNABORTED: that one left before we accepted it)."""
    stats.add("errors")
    return exc.errno in _OUT_OF_DESCRIPTORS


def wait_socket(sock: socket.socket, read: bool, write: bool,
                timeout: Optional[float]) -> tuple:
    """Wait up to ``timeout`` s (None: for ever) until ``sock`` is readable/writable.

    poll() rather than select(): select() fails on descriptors above 1023,
    which a busy threaded server reaches.
    """
    poller = select.poll()
    mask = (select.POLLIN if read else 0) | (select.POLLOUT if write else 0)
    poller.register(sock, mask)
    events = poller.poll(None if timeout is None else max(0.0, timeout) * 1000)
    if not events:
        return False, False
    ev = events[0][1]
    hangup = ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL)
    return bool(ev & select.POLLIN) or bool(hangup and read), \
        bool(ev & select.POLLOUT) or bool(hangup and write)


def udp_reply(service: "services.UdpService", guard: UdpGuard, stats: Stats, data: bytes,
              addr) -> Optional[bytes]:
    """Count one datagram from ``addr`` and return the reply to send, or None.

    None when the service answers nothing, fails on this datagram (counted as
    an error), or the loop guard / per-source rate limit withholds the reply.
    """
    stats.add("datagrams")
    stats.add("bytes_in", len(data))
    try:
        reply = service.reply(data)
    except Exception:  # noqa: BLE001 - one bad datagram never stops the server
        stats.add("errors")
        return None
    if reply is None:
        return None
    looped, limited = guard.looped, guard.limited
    if not guard.allow(addr):
        stats.add("udp_looped", guard.looped - looped)
        stats.add("udp_limited", guard.limited - limited)
        return None
    return reply


def handle_datagram(sock: socket.socket, service: "services.UdpService", guard: UdpGuard,
                    stats: Stats) -> bool:
    """Receive one datagram from non-blocking ``sock`` and answer it if allowed.

    Returns False when nothing was waiting. A reply that cannot be sent at
    once is dropped (UDP promises nothing), never queued.
    """
    try:
        # recvmsg with the datagram's destination address: a wildcard-bound
        # server answers from the address the client wrote to (netlab.pktinfo).
        data, addr, local_ip = pktinfo.recv(sock, RECV_SIZE)
    except (BlockingIOError, InterruptedError, socket.timeout):
        return False
    except OSError:
        # e.g. ECONNREFUSED left by an ICMP error for an earlier reply.
        stats.add("errors")
        return True
    reply = udp_reply(service, guard, stats, data, addr)
    if reply is None:
        return True
    try:
        sent = pktinfo.send(sock, reply, addr, local_ip)
    except (BlockingIOError, InterruptedError):
        stats.add("udp_dropped")
        return True
    except OSError:
        stats.add("errors")
        return True
    # Counted only once the kernel took the datagram.
    stats.add("replies")
    stats.add("bytes_out", sent)
    return True
