"""The six classic small services, sans-I/O: logic only, no sockets.

=========  ========  ====  ============================================
service    RFC       port  module
=========  ========  ====  ============================================
echo       RFC 862      7  :mod:`netlab.services.echo`
discard    RFC 863      9  :mod:`netlab.services.discard`
chargen    RFC 864     19  :mod:`netlab.services.chargen`
qotd       RFC 865     17  :mod:`netlab.services.qotd`
daytime    RFC 867     13  :mod:`netlab.services.daytime`
time       RFC 868     37  :mod:`netlab.services.time`
=========  ========  ====  ============================================

Each module offers a :class:`~netlab.services._base.TcpSession` subclass (one
per connection) and a :class:`~netlab.services._base.UdpService` subclass;
:func:`tcp_session` and :func:`udp_service` build them by service name, so
every server model runs every service the same way.
"""
from __future__ import annotations

from typing import Dict

from netlab.services import chargen, daytime, discard, echo, guard, qotd
from netlab.services import time as time_service
from netlab.services._base import TcpSession, UdpService
from netlab.services.guard import GUARDED_PORTS, RateLimiter, UdpGuard

__all__ = [
    "GUARDED_PORTS",
    "MODULES",
    "RFCS",
    "SERVICES",
    "WELL_KNOWN_PORTS",
    "RateLimiter",
    "TcpSession",
    "UdpGuard",
    "UdpService",
    "chargen",
    "daytime",
    "discard",
    "echo",
    "guard",
    "qotd",
    "tcp_session",
    "time_service",
    "udp_service",
]

SERVICES = ("echo", "discard", "chargen", "daytime", "time", "qotd")

MODULES = {
    "echo": echo,
    "discard": discard,
    "chargen": chargen,
    "daytime": daytime,
    "time": time_service,
    "qotd": qotd,
}

#: Service name -> its RFC number.
RFCS: Dict[str, int] = {name: mod.RFC for name, mod in MODULES.items()}
#: Service name -> its well-known port (below 1024: needs privilege to bind).
WELL_KNOWN_PORTS: Dict[str, int] = {name: mod.WELL_KNOWN_PORT for name, mod in MODULES.items()}

_TCP = {
    "echo": echo.EchoSession,
    "discard": discard.DiscardSession,
    "chargen": chargen.ChargenSession,
    "daytime": daytime.DaytimeSession,
    "time": time_service.TimeSession,
    "qotd": qotd.QotdSession,
}
_UDP = {
    "echo": echo.EchoUdp,
    "discard": discard.DiscardUdp,
    "chargen": chargen.ChargenUdp,
    "daytime": daytime.DaytimeUdp,
    "time": time_service.TimeUdp,
    "qotd": qotd.QotdUdp,
}


def _check(name: str) -> None:
    if name not in MODULES:
        raise ValueError(f"unknown service {name!r}: choose one of {', '.join(SERVICES)}")


def tcp_session(name: str) -> TcpSession:
    """A fresh TCP session (one per connection) of service ``name``."""
    _check(name)
    return _TCP[name]()


def udp_service(name: str) -> UdpService:
    """The UDP side of service ``name`` (one per server socket)."""
    _check(name)
    return _UDP[name]()
