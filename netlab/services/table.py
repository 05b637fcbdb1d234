"""The facts of the six services, in one table every part of netlab reads.

One row per service: its name, the RFC that defines it, its well-known port
(below 1024: binding it needs privilege), netlab's default port (7000 + the
well-known one: bindable by anyone, easy to remember) and a one-line summary
of what it does. The CLI (help texts, default ports), the UDP loop guard, the
clients, the tour and the docs take these facts from here, so they cannot
disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

__all__ = ["BY_NAME", "SERVICE_TABLE", "ServiceFacts", "facts"]


@dataclass(frozen=True)
class ServiceFacts:
    """What there is to know about one service, without running it."""

    name: str
    rfc: int
    well_known_port: int
    default_port: int
    summary: str


#: The six services, in the order netlab lists them.
SERVICE_TABLE: Tuple[ServiceFacts, ...] = (
    ServiceFacts("echo", 862, 7, 7007,
                 "sends back every byte (TCP until you close; UDP per datagram)"),
    ServiceFacts("discard", 863, 9, 7009, "reads and drops everything, answers nothing"),
    ServiceFacts("chargen", 864, 19, 7019,
                 "streams 72-character lines of printable ASCII (UDP: 0-512 characters)"),
    ServiceFacts("daytime", 867, 13, 7013,
                 "sends the date and time as one ASCII line, then closes"),
    ServiceFacts("time", 868, 37, 7037,
                 "sends 4 bytes: seconds since 1900-01-01 UTC, big-endian, then closes"),
    ServiceFacts("qotd", 865, 17, 7017, "sends one quote of the day, then closes"),
)

#: Service name -> its row.
BY_NAME: Dict[str, ServiceFacts] = {row.name: row for row in SERVICE_TABLE}


def facts(name: str) -> ServiceFacts:
    """The row of service ``name``; ValueError naming the choices otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}: choose one of "
                         f"{', '.join(BY_NAME)}") from None
