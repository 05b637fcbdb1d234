"""Sockets on this machine, like ``netstat -a -n``, with owners and service names.

The system side comes from psutil (``psutil.net_connections``), which reads the
kernel's socket tables (``/proc/net/tcp`` and friends on Linux) and maps each
socket to its owning process. Without root, sockets of other users show no
PID or program, exactly as ``netstat -p`` does.
"""
from __future__ import annotations

import socket
from typing import Dict, List, Optional, Set, Tuple

from netlab import ports as registry
from netlab.binding import format_address

__all__ = ["connections", "format_address", "holders"]

_LISTENING_UDP = "UNCONN"   # a bound UDP socket with no peer: UDP's "listening"
_CONNECTED_UDP = "CONNECTED"


def _psutil():
    # Imported at first use, not at import time: every CLI command module is
    # imported to build the parser, and 'netlab info' must not need psutil.
    try:
        import psutil
    except ImportError:
        from netlab.errors import NetlabError

        raise NetlabError("netstat needs the psutil package, which this Python cannot import "
                          "(install it with 'pip install psutil', or use 'ss -a -n -p')") from None
    return psutil


def _program(pid: Optional[int], cache: Dict[int, Optional[str]]) -> Optional[str]:
    if pid is None:
        return None
    psutil = _psutil()
    if pid not in cache:
        try:
            cache[pid] = psutil.Process(pid).name()
        except (psutil.Error, OSError):
            cache[pid] = None  # gone already, or not ours to look at
    return cache[pid]


def _raw(kind: str):
    psutil = _psutil()
    try:
        return psutil.net_connections(kind=kind)
    except psutil.AccessDenied:
        from netlab.errors import NetlabError

        raise NetlabError("this system does not let an ordinary user list sockets "
                          "(run as root, or use 'ss -a -n')") from None


def connections(protocols: Tuple[str, ...] = ("tcp", "udp"), listening: bool = False) -> List[dict]:
    """Every IPv4/IPv6 TCP and UDP socket as a dict, sorted by protocol and local port.

    Keys: ``proto`` (``tcp``/``udp``), ``family`` (``ipv4``/``ipv6``), ``local``
    and ``remote`` (``ip:port``; ``remote`` None when there is no peer),
    ``local_port``, ``state`` (TCP states such as ``LISTEN``; ``UNCONN`` or
    ``CONNECTED`` for UDP), ``pid`` and ``program`` (None when unknown or not
    visible to this user), ``service`` (the IANA name of the port the socket
    serves: the local port for listening and server-side sockets, the remote
    port for client sockets). ``listening`` keeps only TCP ``LISTEN`` sockets and
    unconnected UDP sockets.
    """
    psutil = _psutil()
    raw = []
    for proto in protocols:
        raw.extend((proto, c) for c in _raw(proto))
    # A TCP connection whose local port is also a listening port on this host
    # is the server side: it serves its local port. Otherwise it is a client and
    # the remote port names the service it talks to.
    listen_ports: Set[Tuple[str, int]] = {
        (proto, c.laddr.port) for proto, c in raw
        if c.laddr and (c.status == psutil.CONN_LISTEN or (proto == "udp" and not c.raddr))}
    names: Dict[int, Optional[str]] = {}
    rows = []
    for proto, c in raw:
        if not c.laddr:
            continue
        if proto == "udp":
            state = _CONNECTED_UDP if c.raddr else _LISTENING_UDP
            is_listening = not c.raddr
        else:
            state = c.status
            is_listening = c.status == psutil.CONN_LISTEN
        if listening and not is_listening:
            continue
        if is_listening or not c.raddr or (proto, c.laddr.port) in listen_ports:
            service_port = c.laddr.port
        else:
            service_port = c.raddr.port
        rows.append({
            "proto": proto,
            "family": "ipv6" if c.family == socket.AF_INET6 else "ipv4",
            "local": format_address(c.laddr.ip, c.laddr.port),
            "remote": format_address(c.raddr.ip, c.raddr.port) if c.raddr else None,
            "local_port": c.laddr.port,
            "state": state,
            "pid": c.pid,
            "program": _program(c.pid, names),
            "service": registry.service_name(service_port, proto),
        })
    order = {"LISTEN": 0, _LISTENING_UDP: 0}
    rows.sort(key=lambda r: (r["proto"], order.get(r["state"], 1), r["local_port"], r["family"],
                             r["local"], r["remote"] or ""))
    return rows


def holders(port: int, proto: str = "tcp", host: Optional[str] = None) -> List[dict]:
    """Who holds ``port`` for ``proto``: a list of ``{pid, program, local, state}``.

    For TCP only sockets that block a new bind count (listening, or bound to
    the port as their local end); ``host`` keeps only sockets on that address
    or on a wildcard address.
    """
    out = []
    seen = set()
    for row in connections((proto,)):
        if row["local_port"] != port:
            continue
        ip = row["local"].rsplit(":", 1)[0].strip("[]")
        if host and ip not in (host, "0.0.0.0", "::"):
            continue
        if proto == "tcp" and row["state"] not in ("LISTEN", "ESTABLISHED", "SYN_RECV", "CLOSE_WAIT"):
            continue
        key = (row["pid"], row["local"], row["state"])
        if key in seen:
            continue
        seen.add(key)
        out.append({"pid": row["pid"], "program": row["program"], "local": row["local"],
                    "state": row["state"]})
    return out
