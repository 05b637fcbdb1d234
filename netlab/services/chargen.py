"""Character Generator Protocol, RFC 864.

TCP (port 19): an endless stream of 72-character lines, each followed by
CR LF. The characters are the 95 printable ASCII characters, space (0x20) to
tilde (0x7E), taken as a *ring*: line 0 starts with space, line N starts one
character further round the ring than line N-1, and wraps past ``~`` back to
space. Whatever the client sends is thrown away. The stream repeats after
95 lines (95 x 74 = 7030 bytes), so it is computed once and sliced.

UDP: each datagram is answered by a datagram holding a random number (0 to
512) of characters of the ring, whatever the request held.
"""
from __future__ import annotations

import random
from typing import Optional

from netlab.services._base import TcpSession, UdpService
from netlab.services.table import facts

__all__ = [
    "CYCLE",
    "LINE_WIDTH",
    "MAX_UDP_CHARS",
    "RFC",
    "RING",
    "WELL_KNOWN_PORT",
    "ChargenSession",
    "ChargenUdp",
    "line",
    "ring_chars",
    "stream",
]

_FACTS = facts("chargen")
RFC = _FACTS.rfc
WELL_KNOWN_PORT = _FACTS.well_known_port

#: The 95 printable ASCII characters, 0x20 (space) to 0x7E (tilde).
RING = bytes(range(0x20, 0x7F))
LINE_WIDTH = 72
MAX_UDP_CHARS = 512


def line(n: int) -> bytes:
    """Line ``n`` (0-based) of the TCP stream: 72 ring characters + CR LF."""
    start = n % len(RING)
    doubled = RING + RING
    return doubled[start:start + LINE_WIDTH] + b"\r\n"


#: One full period of the TCP stream, lines 0 to 94, 7030 bytes.
CYCLE = b"".join(line(n) for n in range(len(RING)))
# Twice the cycle so any slice of up to len(CYCLE) bytes is contiguous.
_CYCLE2 = CYCLE + CYCLE


def stream(offset: int, size: int) -> bytes:
    """``size`` bytes of the endless TCP stream starting at byte ``offset``."""
    if size <= 0:
        return b""
    start = offset % len(CYCLE)
    if size <= len(CYCLE):
        return _CYCLE2[start:start + size]
    whole, rest = divmod(size, len(CYCLE))
    body = _CYCLE2[start:start + len(CYCLE)] * whole
    return body + _CYCLE2[start:start + rest]


def ring_chars(start: int, count: int) -> bytes:
    """``count`` consecutive ring characters beginning at ring index ``start``."""
    if count <= 0:
        return b""
    reps = (start % len(RING) + count) // len(RING) + 1
    text = RING * reps
    first = start % len(RING)
    return text[first:first + count]


class ChargenSession(TcpSession):
    """RFC 864 over TCP: stream lines for as long as the client keeps the connection.

    The client's EOF does *not* end the stream: it only means the client has
    nothing to say (and RFC 864 ignores what it says anyway). The server stops
    when the client closes or resets the connection.
    """

    streaming = True

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0

    def eof_received(self) -> bytes:
        return b""

    def pull(self, size: int) -> bytes:
        data = stream(self.offset, size)
        self.offset += len(data)
        return data


class ChargenUdp(UdpService):
    """RFC 864 over UDP: 0 to 512 ring characters per datagram.

    Successive replies start one character further round the ring, like the
    lines of the TCP stream, so a learner sees the pattern move.
    """

    def __init__(self, rng: Optional[random.Random] = None) -> None:
        self.rng = rng or random.Random()
        self.count = 0

    def reply(self, datagram: bytes) -> Optional[bytes]:
        size = self.rng.randint(0, MAX_UDP_CHARS)
        data = ring_chars(self.count, size)
        self.count += 1
        return data
