"""UDP abuse guards: the loop guard and per-source reply rate limits.

Sans-I/O policy shared by every server model; the server asks
:meth:`UdpGuard.allow` before it sends a reply.

*Loop guard.* A UDP service answers whoever the source address claims to
be, and the source can be forged. A datagram "from" port 19 (chargen) of one
host sent to port 7 (echo) of another makes the two answer each other for
ever: the echo-chargen storm of CERT advisory CA-1996-01. Three rules stop it:

1. No reply goes to a *privileged* source port (below 1024). Every well-known
   service lives there, and no ordinary client sends from one: OpenBSD's
   inetd refuses these ports for its built-in UDP services for the same
   reason. (This also covers the six services' own ports 7, 9, 13, 17, 19, 37.)
2. No reply goes to netlab's own 70xx default ports, nor to the port this
   server is bound to (a datagram forged "from" the server itself).
3. Two servers on *any* ports (``PORT 0``) can still be made to talk to each
   other, and port numbers cannot tell a server from a client. What gives a
   loop away is its pace: two machines answering each other run as fast as
   the network lets them, from one fixed endpoint. So each source *endpoint*
   (address and port) gets at most :data:`PEER_RATE` replies per second
   (after a burst as large); a loop outruns that within milliseconds and is
   starved, while a client that needs more opens more sockets.

*Rate limit.* Even without a loop, a forged source turns a reply-bigger-than-
request service (chargen answers a 1-byte datagram with up to 512) into an
amplifier. A token bucket per source address caps the replies any one
address receives.

Both tables of buckets are bounded, so forged sources cannot exhaust memory,
and a full table never hands out a fresh budget: an entry is forgotten only
once its bucket has refilled (forgetting it gives nothing away), and while
every entry is still paying off, the sources the table cannot hold share one
overflow bucket. Flooding the table with forged sources therefore cannot make
the server forget a victim it is throttling.

``rate=0`` switches all of this rate limiting off, the loop rule 3 included:
a loop between two servers can then run for ever (the CLI warns).
"""
from __future__ import annotations

import time as _time
from collections import OrderedDict
from typing import Callable, FrozenSet, Iterable, Optional, Tuple

from netlab.services.table import SERVICE_TABLE

__all__ = [
    "DEFAULT_UDP_BURST",
    "DEFAULT_UDP_RATE",
    "GUARDED_PORTS",
    "PEER_RATE",
    "PRIVILEGED_PORTS",
    "RateLimiter",
    "UdpGuard",
]

#: Source ports below this are privileged (root-only), never answered.
PRIVILEGED_PORTS = 1024
#: Well-known ports of the six services (RFC 862-868) and netlab's 70xx defaults.
GUARDED_PORTS: FrozenSet[int] = frozenset(
    {row.well_known_port for row in SERVICE_TABLE} | {row.default_port for row in SERVICE_TABLE}
)

#: Replies per second one source address may receive (0 means no limit).
DEFAULT_UDP_RATE = 1000.0
#: How many replies a source may get in a burst before the rate applies.
DEFAULT_UDP_BURST = 1000
#: Replies per second (and burst) one source endpoint, address and port, may get.
PEER_RATE = 100.0
# Sources remembered at most per table.
_MAX_SOURCES = 4096


class RateLimiter:
    """A token bucket per key: ``rate`` tokens per second, at most ``burst``.

    At most ``max_keys`` buckets are kept. When a new key finds the table
    full, the least recently seen key is forgotten only if its bucket is full
    again; otherwise the new key is charged to one overflow bucket shared by
    every key the table cannot hold. So no key ever gets a fresh budget just
    because many others came by.
    """

    def __init__(self, rate: float, burst: Optional[int] = None,
                 clock: Callable[[], float] = _time.monotonic,
                 max_keys: int = _MAX_SOURCES) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: "OrderedDict[object, Tuple[float, float]]" = OrderedDict()
        self._overflow: Optional[Tuple[float, float]] = None
        #: Decisions taken with the shared overflow bucket.
        self.overflowed = 0

    def _take(self, bucket: Optional[Tuple[float, float]], now: float) -> Tuple[tuple, bool]:
        tokens, last = bucket if bucket is not None else (self.burst, now)
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        ok = tokens >= 1.0
        return (tokens - 1.0 if ok else tokens, now), ok

    def _forget_oldest(self, now: float) -> bool:
        """Drop the least recently seen key if its bucket has refilled."""
        key, (tokens, last) = next(iter(self._buckets.items()))
        if tokens + (now - last) * self.rate < self.burst:
            return False
        del self._buckets[key]
        return True

    def allow(self, key: object) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None and len(self._buckets) >= self.max_keys \
                and not self._forget_oldest(now):
            self.overflowed += 1
            self._overflow, ok = self._take(self._overflow, now)
            return ok
        self._buckets[key], ok = self._take(bucket, now)
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
        # A per-address limit at or below PEER_RATE caps every endpoint already.
        self.peers = RateLimiter(PEER_RATE, int(PEER_RATE), clock) if rate > PEER_RATE else None
        self.looped = 0
        self.limited = 0

    def allow(self, address: tuple) -> bool:
        """True when a reply may be sent to ``address`` (a socket address tuple)."""
        host, port = address[0], address[1]
        if port < PRIVILEGED_PORTS or port in self.ports:
            self.looped += 1
            return False
        # Before the per-address bucket, so a loop does not use up the budget
        # of the other clients on the same host.
        if self.peers is not None and not self.peers.allow((host, port)):
            self.looped += 1  # one endpoint answered this fast: a loop (rule 3)
            return False
        if not self.limiter.allow(host):
            self.limited += 1
            return False
        return True
