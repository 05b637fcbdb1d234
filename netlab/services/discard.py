"""Discard Protocol, RFC 863: throw away everything, answer nothing.

TCP (port 9): read and drop until the client closes. UDP: no reply, ever.
A discard server is the sink of throughput experiments: it costs the sender
nothing but the network.
"""
from __future__ import annotations

from typing import Optional

from netlab.services._base import TcpSession, UdpService
from netlab.services.table import facts

__all__ = ["RFC", "WELL_KNOWN_PORT", "DiscardSession", "DiscardUdp"]

_FACTS = facts("discard")
RFC = _FACTS.rfc
WELL_KNOWN_PORT = _FACTS.well_known_port


class DiscardSession(TcpSession):
    """RFC 863 over TCP: received data is dropped; the client's EOF ends it."""


class DiscardUdp(UdpService):
    """RFC 863 over UDP: nothing is sent back."""

    def reply(self, datagram: bytes) -> Optional[bytes]:
        return None
