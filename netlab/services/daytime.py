"""Daytime Protocol, RFC 867: the date and time as one line of ASCII.

RFC 867 leaves the format open ("an ASCII printable character string") and
suggests ``Weekday, Month Day, Year Time-Zone``. netlab sends, always in UTC
and independent of the locale::

    Saturday, November 21, 2026 14:05:09-UTC\\r\\n

TCP (port 13): the line is sent as soon as the connection is up, anything
the client sends is thrown away, and the server closes. UDP: every datagram,
whatever it holds, is answered with the line.
"""
from __future__ import annotations

import datetime as _dt
import time as _time
from typing import Optional, Union

from netlab.services._base import TcpSession, UdpService
from netlab.services.table import facts

__all__ = ["RFC", "WELL_KNOWN_PORT", "DaytimeSession", "DaytimeUdp", "daytime"]

_FACTS = facts("daytime")
RFC = _FACTS.rfc
WELL_KNOWN_PORT = _FACTS.well_known_port

# Spelled out here rather than taken from strftime("%A"), which follows the
# process locale: the wire format must not change with LANG.
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December")

When = Union[None, float, int, _dt.datetime]


def _utc(now: When) -> _dt.datetime:
    if now is None:
        now = _time.time()
    if isinstance(now, _dt.datetime):
        if now.tzinfo is None:
            return now.replace(tzinfo=_dt.timezone.utc)
        return now.astimezone(_dt.timezone.utc)
    return _dt.datetime.fromtimestamp(now, _dt.timezone.utc)


def daytime(now: When = None) -> bytes:
    """The daytime line for ``now`` (UNIX seconds or a datetime; default: the clock)."""
    t = _utc(now)
    text = (f"{_DAYS[t.weekday()]}, {_MONTHS[t.month - 1]} {t.day}, {t.year} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}-UTC\r\n")
    return text.encode("ascii")


class DaytimeSession(TcpSession):
    """RFC 867 over TCP: one line on connect, then close."""

    def connected(self) -> bytes:
        self.finished = True
        return daytime()


class DaytimeUdp(UdpService):
    """RFC 867 over UDP: one line per datagram received."""

    def reply(self, datagram: bytes) -> Optional[bytes]:
        return daytime()
