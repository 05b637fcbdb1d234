"""Echo Protocol, RFC 862: send back exactly what was received.

TCP (port 7): every byte read is written back until the client closes. A
client may *half-close* (``shutdown(SHUT_WR)``): it has no more to say but
still listens, so the server sends back everything still owed, then closes.
UDP: each datagram is answered by a datagram with the same data (an empty
datagram gets an empty reply).
"""
from __future__ import annotations

from typing import Optional

from netlab.services._base import TcpSession, UdpService
from netlab.services.table import facts

__all__ = ["RFC", "WELL_KNOWN_PORT", "EchoSession", "EchoUdp", "echo"]

_FACTS = facts("echo")
RFC = _FACTS.rfc
WELL_KNOWN_PORT = _FACTS.well_known_port


def echo(data: bytes) -> bytes:
    """The whole protocol logic: the answer to ``data`` is ``data``."""
    return bytes(data)


class EchoSession(TcpSession):
    """RFC 862 over TCP: echo each chunk; at the client's EOF, finish."""

    def received(self, data: bytes) -> bytes:
        return echo(data)


class EchoUdp(UdpService):
    """RFC 862 over UDP: the reply datagram carries the received data."""

    def reply(self, datagram: bytes) -> Optional[bytes]:
        return echo(datagram)
