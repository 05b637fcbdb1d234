"""Time Protocol, RFC 868: seconds since 1900-01-01 00:00 UTC as 4 bytes.

The server sends a 32-bit unsigned integer in network (big-endian) byte
order. The epoch is **1900**, not the UNIX 1970: the two differ by
2,208,988,800 seconds (70 years, 17 of them leap years). 32 bits run out on
2036-02-07 06:28:16 UTC; like NTP (RFC 4330) netlab sends the value modulo
2**32 and, when decoding, reads values below 2**31 as the era after 2036.

TCP (port 37): 4 bytes on connect, then close. UDP: 4 bytes in answer to
any datagram, the empty one included.
"""
from __future__ import annotations

import datetime as _dt
import struct
import time as _time
from typing import Optional, Tuple

from netlab.services._base import TcpSession, UdpService
from netlab.services.table import facts

__all__ = [
    "EPOCH_OFFSET",
    "RFC",
    "WELL_KNOWN_PORT",
    "TimeSession",
    "TimeUdp",
    "decode",
    "encode",
    "seconds_since_1900",
]

_FACTS = facts("time")
RFC = _FACTS.rfc
WELL_KNOWN_PORT = _FACTS.well_known_port

#: Seconds from 1900-01-01 to 1970-01-01 (UTC).
EPOCH_OFFSET = 2_208_988_800
_ERA = 1 << 32
_EPOCH_1900 = _dt.datetime(1900, 1, 1, tzinfo=_dt.timezone.utc)


def seconds_since_1900(unix_time: Optional[float] = None) -> int:
    """The RFC 868 value for ``unix_time`` (default: now), modulo 2**32."""
    if unix_time is None:
        unix_time = _time.time()
    return (int(unix_time) + EPOCH_OFFSET) % _ERA


def encode(unix_time: Optional[float] = None) -> bytes:
    """The 4 bytes a time server sends for ``unix_time`` (default: now)."""
    return struct.pack("!I", seconds_since_1900(unix_time))


def decode(data: bytes) -> Tuple[_dt.datetime, int]:
    """``(UTC datetime, raw 32-bit value)`` from the 4 bytes a server sent.

    Raises ValueError saying how many bytes arrived when it is not exactly 4.
    """
    if len(data) != 4:
        raise ValueError(f"an RFC 868 time reply is 4 bytes, got {len(data)}")
    (raw,) = struct.unpack("!I", data)
    seconds = raw if raw >= (1 << 31) else raw + _ERA  # after 2036: next era
    return _EPOCH_1900 + _dt.timedelta(seconds=seconds), raw


class TimeSession(TcpSession):
    """RFC 868 over TCP: 4 bytes on connect, then close."""

    def connected(self) -> bytes:
        self.finished = True
        return encode()


class TimeUdp(UdpService):
    """RFC 868 over UDP: 4 bytes for any datagram, even an empty one."""

    def reply(self, datagram: bytes) -> Optional[bytes]:
        return encode()
