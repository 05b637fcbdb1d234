"""The port registry: ranges, IANA service names over TCP and UDP, teaching notes.

Port numbers are 16 bits (0-65535). RFC 6335 splits them into three ranges:

* **well-known** (system) ports 0-1023, assigned by IANA through IETF review;
  on most systems only root may bind them;
* **registered** (user) ports 1024-49151, assigned by IANA on request;
* **dynamic** (private, ephemeral) ports 49152-65535, never assigned: clients
  and ``bind(port 0)`` take them. (Linux picks ephemeral ports from
  ``net.ipv4.ip_local_port_range``, 32768-60999 by default, which overlaps the
  registered range; ``netlab info`` shows it.)

Names come from ``netlab/data/port-registry.csv``, derived from the IANA
registry by ``tools/make_port_registry.py`` (never from this host's
``/etc/services``, so every learner sees the same names). Notes for teaching
live in ``netlab/data/port-notes.csv``. Both are read once, at first use.
"""
from __future__ import annotations

import csv
import functools
import os
from typing import Dict, List, Optional, Tuple

from netlab.errors import NetlabError, UsageError

__all__ = [
    "RANGES",
    "describe_port",
    "lookup",
    "lookup_name",
    "port_range",
    "range_summary",
    "registry_source",
    "service_name",
]

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
REGISTRY_FILE = os.path.join(_DATA, "port-registry.csv")
NOTES_FILE = os.path.join(_DATA, "port-notes.csv")

#: The three ranges of RFC 6335 section 6, each as (name, first, last).
RANGES: Tuple[Tuple[str, int, int], ...] = (
    ("well-known", 0, 1023),
    ("registered", 1024, 49151),
    ("dynamic", 49152, 65535),
)


def port_range(port: int) -> str:
    """``'well-known'``, ``'registered'`` or ``'dynamic'`` for a port 0-65535."""
    if not 0 <= port <= 65535:
        raise UsageError(f"invalid port {port}: ports run from 0 to 65535 (16 bits)")
    for name, first, last in RANGES:
        if first <= port <= last:
            return name
    raise AssertionError("unreachable")  # the ranges cover 0-65535


def _read_data(path: str, what: str) -> Tuple[List[str], List[str]]:
    """``(comment lines, data lines)`` of one shipped data file, read once."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as exc:
        raise NetlabError(f"cannot read netlab's {what} {path}: {exc.strerror} "
                          "(reinstall netlab; the file ships with the package)") from None
    comments = [line for line in lines if line.startswith("#")]
    return comments, [line for line in lines if not line.startswith("#")]


class _Registry:
    """The registry file, indexed by port and by name (built once, lazily)."""

    def __init__(self) -> None:
        self.by_port: Dict[int, Dict[str, str]] = {}
        self.by_name: Dict[str, List[int]] = {}
        self.source = ""
        comments, rows = _read_data(REGISTRY_FILE, "port registry")
        for line in comments:
            if line.startswith("# Snapshot:"):
                self.source = line[len("# Snapshot:"):].strip()
        for row in csv.DictReader(rows):
            first, _, last = row["port"].partition("-")
            lo, hi = int(first), int(last or first)
            entry = {"tcp": row["tcp"], "udp": row["udp"], "description": row["description"]}
            for port in range(lo, hi + 1):
                self.by_port[port] = entry
            for proto in ("tcp", "udp"):
                name = row[proto].lower()
                if name:
                    ports = self.by_name.setdefault(name, [])
                    # A range (x11 6000-6063) resolves to its first port only.
                    if lo not in ports:
                        ports.append(lo)


@functools.lru_cache(maxsize=1)
def _registry() -> _Registry:
    return _Registry()


@functools.lru_cache(maxsize=1)
def _notes() -> Dict[int, List[Dict[str, str]]]:
    notes: Dict[int, List[Dict[str, str]]] = {}
    for row in csv.DictReader(_read_data(NOTES_FILE, "data file")[1]):
        notes.setdefault(int(row["port"]), []).append({
            "protocols": row["protocols"], "topic": row["topic"], "note": row["note"]})
    return notes


def registry_source() -> str:
    """Which IANA snapshot the registry was derived from (the data file's header)."""
    return _registry().source


def service_name(port: int, proto: str = "tcp") -> Optional[str]:
    """The IANA service name of ``port`` over ``proto`` (``tcp``/``udp``), or None."""
    entry = _registry().by_port.get(port)
    if entry is None:
        return None
    return entry.get(proto) or None


def describe_port(port: int) -> dict:
    """Everything netlab knows about one port number, as a dict.

    Keys: ``port``, ``range``, ``tcp``, ``udp`` (IANA names, None where
    unassigned), ``description`` (IANA's text), ``notes`` (teaching notes, a
    list of ``{"protocols", "topic", "note"}``).
    """
    kind = port_range(port)
    entry = _registry().by_port.get(port, {})
    return {
        "port": port,
        "range": kind,
        "tcp": entry.get("tcp") or None,
        "udp": entry.get("udp") or None,
        "description": entry.get("description") or None,
        "notes": list(_notes().get(port, [])),
    }


def lookup_name(name: str) -> List[int]:
    """The port(s) IANA assigns to service ``name`` (case-insensitive), maybe empty."""
    return list(_registry().by_name.get(name.strip().lower(), []))


def lookup(arg: str) -> List[dict]:
    """Describe a port number (``"80"``) or every port of a service name (``"http"``).

    A number outside 0-65535 raises :class:`UsageError`; an unknown name
    raises :class:`NetlabError`.
    """
    text = arg.strip()
    if text.lstrip("+-").isdigit():
        port = int(text)
        if not 0 <= port <= 65535:
            raise UsageError(f"invalid port {text}: ports run from 0 to 65535 (16 bits)")
        return [describe_port(port)]
    if not text or not all(c.isalnum() or c in "-_.+" for c in text):
        raise UsageError(f"invalid port or service name {arg!r}: give a number 0-65535 "
                         "or an IANA service name such as http or domain")
    ports = lookup_name(text)
    if not ports:
        raise NetlabError(f"no service named {text!r} in the IANA registry "
                          "(names look like http, domain, echo; try a port number)")
    return [describe_port(p) for p in ports]


def range_summary() -> List[dict]:
    """The three ranges with how many of their ports carry an IANA name.

    Each dict: ``range``, ``first``, ``last``, ``ports`` (size of the range),
    ``assigned`` (ports with a TCP or UDP name), ``tcp``, ``udp`` (ports with a
    name over that protocol).
    """
    by_port = _registry().by_port
    out = []
    for name, first, last in RANGES:
        tcp = udp = any_ = 0
        for port in range(first, last + 1):
            entry = by_port.get(port)
            if entry is None:
                continue
            tcp += bool(entry["tcp"])
            udp += bool(entry["udp"])
            any_ += bool(entry["tcp"] or entry["udp"])
        out.append({"range": name, "first": first, "last": last, "ports": last - first + 1,
                    "assigned": any_, "tcp": tcp, "udp": udp})
    return out
