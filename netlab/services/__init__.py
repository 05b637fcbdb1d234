"""The six classic small services, sans-I/O: logic only, no sockets.

One module per service (:mod:`netlab.services.echo`, ``discard``,
``chargen``, ``daytime``, ``time``, ``qotd``); their facts (RFC, well-known
port, netlab's 70xx default, a summary) live in one table,
:data:`SERVICE_TABLE` (:mod:`netlab.services.table`), that the CLI, the loop
guard, the clients, the tour and the docs read.

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
from netlab.services.table import SERVICE_TABLE, ServiceFacts, facts

__all__ = [
    "DEFAULT_PORTS",
    "GUARDED_PORTS",
    "MODULES",
    "RFCS",
    "SERVICES",
    "SERVICE_TABLE",
    "ServiceFacts",
    "WELL_KNOWN_PORTS",
    "RateLimiter",
    "TcpSession",
    "UdpGuard",
    "UdpService",
    "chargen",
    "daytime",
    "discard",
    "echo",
    "facts",
    "guard",
    "qotd",
    "tcp_session",
    "time_service",
    "udp_service",
]

#: The service names, in the order of :data:`SERVICE_TABLE`.
SERVICES = tuple(row.name for row in SERVICE_TABLE)

MODULES = {
    "echo": echo,
    "discard": discard,
    "chargen": chargen,
    "daytime": daytime,
    "time": time_service,
    "qotd": qotd,
}

#: Service name -> its RFC number.
RFCS: Dict[str, int] = {row.name: row.rfc for row in SERVICE_TABLE}
#: Service name -> its well-known port (below 1024, so binding it needs privilege).
WELL_KNOWN_PORTS: Dict[str, int] = {row.name: row.well_known_port for row in SERVICE_TABLE}
#: Service name -> netlab's default port (7000 + the well-known port).
DEFAULT_PORTS: Dict[str, int] = {row.name: row.default_port for row in SERVICE_TABLE}

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
    facts(name)  # ValueError naming the choices


def tcp_session(name: str) -> TcpSession:
    """A fresh TCP session (one per connection) of service ``name``."""
    _check(name)
    return _TCP[name]()


def udp_service(name: str) -> UdpService:
    """The UDP side of service ``name`` (one per server socket)."""
    _check(name)
    return _UDP[name]()
