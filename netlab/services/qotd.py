"""Quote of the Day Protocol, RFC 865: one short quote, then close.

RFC 865 limits a quote to the ASCII printing characters, space, carriage
return and line feed, and asks that it be under 512 characters. The quotes
live in ``netlab/data/quotes.txt`` (one quote per block, blocks separated by a
line holding only ``%``) and are read at first use. On the wire every line of
a quote ends with CR LF.

TCP (port 17): one quote on connect, anything received is thrown away, then
close. UDP: one quote per datagram, whatever the datagram held.
"""
from __future__ import annotations

import os
import random
from typing import List, Optional

from netlab.services._base import TcpSession, UdpService
from netlab.services.table import facts

__all__ = [
    "MAX_QUOTE",
    "QUOTES_FILE",
    "RFC",
    "WELL_KNOWN_PORT",
    "QotdSession",
    "QotdUdp",
    "parse_quotes",
    "pick",
    "quotes",
]

_FACTS = facts("qotd")
RFC = _FACTS.rfc
WELL_KNOWN_PORT = _FACTS.well_known_port
#: The longest quote, in characters (RFC 865, "the quote ... should be less than
#: 512 characters").
MAX_QUOTE = 512

QUOTES_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "data", "quotes.txt")

_cache: Optional[List[bytes]] = None


def parse_quotes(text: str) -> List[bytes]:
    """Wire-ready quotes (CR LF line ends) from the ``%``-separated file text.

    Raises ValueError naming the quote number when one breaks RFC 865: a
    character outside printable ASCII, or 512 characters or more.
    """
    found: List[bytes] = []
    block: List[str] = []
    for raw in text.splitlines() + ["%"]:
        if raw.strip() == "%":
            lines = [ln.rstrip() for ln in block]
            while lines and not lines[0]:
                lines.pop(0)
            while lines and not lines[-1]:
                lines.pop()
            block = []
            if not lines:
                continue
            number = len(found) + 1
            if any(not 0x20 <= ord(c) <= 0x7E for ln in lines for c in ln):
                raise ValueError(f"quote {number} holds a character RFC 865 does not "
                                 "allow (printable ASCII, CR and LF only)")
            quote = ("\r\n".join(lines) + "\r\n").encode("ascii")
            if len(quote) >= MAX_QUOTE:
                raise ValueError(f"quote {number} is {len(quote)} characters; "
                                 f"RFC 865 asks for fewer than {MAX_QUOTE}")
            found.append(quote)
        else:
            block.append(raw)
    return found


def quotes() -> List[bytes]:
    """Every quote of ``netlab/data/quotes.txt``, read once."""
    global _cache
    if _cache is None:
        with open(QUOTES_FILE, encoding="utf-8") as f:
            _cache = parse_quotes(f.read())
        if not _cache:
            raise ValueError(f"{QUOTES_FILE} holds no quote")
    return _cache


def pick(rng: Optional[random.Random] = None) -> bytes:
    """One quote, chosen at random."""
    return (rng or random).choice(quotes())


class QotdSession(TcpSession):
    """RFC 865 over TCP: one quote on connect, then close."""

    def __init__(self, rng: Optional[random.Random] = None) -> None:
        super().__init__()
        self.rng = rng

    def connected(self) -> bytes:
        self.finished = True
        return pick(self.rng)


class QotdUdp(UdpService):
    """RFC 865 over UDP: one quote per datagram."""

    def __init__(self, rng: Optional[random.Random] = None) -> None:
        self.rng = rng

    def reply(self, datagram: bytes) -> Optional[bytes]:
        return pick(self.rng)
