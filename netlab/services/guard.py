"""UDP abuse guards: the loop guard and a per-source reply rate limit.

Sans-I/O policy shared by every server model; the server asks
:meth:`UdpGuard.allow` before it sends a reply.

*Loop guard.* A UDP service answers whoever the source address claims to
be, and the source can be forged. A datagram "from" port 19 (chargen) of one
host sent to port 7 (echo) of another makes the two answer each other for
ever: the echo-chargen storm of CERT advisory CA-1996-01. So no reply goes to
a source port that belongs to one of these services, neither the well-known
one (7, 9, 13, 17, 19, 37) nor netlab's own 70xx default.

*Rate limit.* Even without a loop, a forged source turns a reply-bigger-than-
request service (chargen answers a 1-byte datagram with up to 512) into an
amplifier. A token bucket per source address caps the replies any one address
receives; the table of buckets is bounded so forged sources cannot exhaust
memory.
"""
from __future__ import annotations

import time as _time
from collections import OrderedDict
from typing import Callable, FrozenSet, Iterable, Optional, Tuple

__all__ = [
    "DEFAULT_UDP_BURST",
    "DEFAULT_UDP_RATE",
    "GUARDED_PORTS",
    "RateLimiter",
    "UdpGuard",
]

#: Well-known ports of the six services (RFC 862-868) and netlab's 70xx defaults.
GUARDED_PORTS: FrozenSet[int] = frozenset(
    {7, 9, 13, 17, 19, 37} | {7000 + p for p in (7, 9, 13, 17, 19, 37)}
)

#: Replies per second one source address may receive (0: no limit).
DEFAULT_UDP_RATE = 1000.0
#: How many replies a source may get in a burst before the rate applies.
DEFAULT_UDP_BURST = 1000
# Sources remembered at most; the least recently seen is forgotten first.
_MAX_SOURCES = 4096


class RateLimiter:
    """A token bucket per key: ``rate`` tokens per second, at most ``burst``."""

    def __init__(self, rate: float, burst: Optional[int] = None,
                 clock: Callable[[], float] = _time.monotonic,
                 max_keys: int = _MAX_SOURCES) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: "OrderedDict[object, Tuple[float, float]]" = OrderedDict()

    def allow(self, key: object) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok

    def __len__(self) -> int:
        return len(self._buckets)


class UdpGuard:
    """Decides whether a reply may go to ``(host, port)``; counts what it refused."""

    def __init__(self, rate: float = DEFAULT_UDP_RATE, burst: Optional[int] = None,
                 guarded_ports: Iterable[int] = GUARDED_PORTS,
                 clock: Callable[[], float] = _time.monotonic) -> None:
        if burst is None:
            burst = int(max(1, min(rate, DEFAULT_UDP_BURST))) if rate > 0 else None
        self.ports = frozenset(guarded_ports)
        self.limiter = RateLimiter(rate, burst, clock)
        self.looped = 0
        self.limited = 0

    def allow(self, address: tuple) -> bool:
        """True when a reply may be sent to ``address`` (a socket address tuple)."""
        host, port = address[0], address[1]
        if port in self.ports:
            self.looped += 1
            return False
        if not self.limiter.allow(host):
            self.limited += 1
            return False
        return True
