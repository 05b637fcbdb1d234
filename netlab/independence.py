"""TCP and UDP have separate port spaces: one demonstration, as data.

A port number alone names nothing: the kernel keys sockets by (protocol,
address, port). So a TCP socket and a UDP socket can both bind port P at the
same time, while a second TCP socket on P is refused with EADDRINUSE, and so
is a second UDP socket. :func:`demonstrate` runs exactly that on real sockets
and reports each step.
"""
from __future__ import annotations

import errno
import os
import socket
from typing import List, Optional

from netlab import ports as registry
from netlab.binding import explain_bind_error, family_for
from netlab.errors import NetlabError

__all__ = ["demonstrate", "free_port_both"]


def free_port_both(host: str = "127.0.0.1", tries: int = 50) -> int:
    """A port the OS just gave out that is free for TCP *and* UDP on ``host``."""
    family = family_for(host)
    for _ in range(tries):
        with socket.socket(family, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            with socket.socket(family, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
                return port
    raise NetlabError(f"found no port free for both TCP and UDP on {host} after {tries} tries "
                      "(give a PORT explicitly)")


def _try_bind(kind: int, host: str, port: int, listen: bool):
    """Bind a fresh socket; return (socket or None, errno or None).

    No SO_REUSEADDR: the demonstration is about the plain rule.
    """
    sock = socket.socket(family_for(host), kind)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(8)
    except OSError as exc:
        sock.close()
        return None, exc.errno
    return sock, None


def demonstrate(port: Optional[int] = None, host: str = "127.0.0.1") -> dict:
    """Bind TCP and UDP on one port, then a second TCP and a second UDP socket.

    Returns ``port``, ``host``, ``tcp_bound``, ``udp_bound``,
    ``second_tcp_errno`` (EADDRINUSE, 98 on Linux), ``second_tcp_error``,
    ``second_udp_errno``, ``second_udp_error``, ``service`` (IANA names) and
    ``steps`` (one dict per bind: ``step``, ``socket``, ``ok``, ``errno``,
    ``error``, ``meaning``). Raises :class:`NetlabError` when the first TCP or
    UDP bind fails (the port is taken or privileged): the lesson needs a free
    port.
    """
    if port is None or port == 0:
        port = free_port_both(host)
    opened: List[socket.socket] = []
    steps = []

    def step(label: str, kind: int, listen: bool, meaning_ok: str, meaning_fail: str) -> Optional[int]:
        sock, err = _try_bind(kind, host, port, listen)
        if sock is not None:
            opened.append(sock)
        steps.append({
            "step": len(steps) + 1,
            "socket": label,
            "ok": sock is not None,
            "errno": err,
            "error": errno.errorcode.get(err) if err else None,
            "meaning": meaning_ok if sock is not None else meaning_fail,
        })
        return err

    def must_bind(proto: str, *how) -> None:
        err = step(*how)
        if err is not None:
            raise NetlabError(explain_bind_error(OSError(err, os.strerror(err)), proto, host, port))

    try:
        must_bind("tcp", "first TCP socket", socket.SOCK_STREAM, True,
                  "TCP port bound and listening",
                  "the TCP port is already taken on this machine")
        must_bind("udp", "UDP socket", socket.SOCK_DGRAM, False,
                  "UDP bound too: TCP and UDP are separate port spaces",
                  "the UDP port is already taken on this machine")
        second_tcp = step("second TCP socket", socket.SOCK_STREAM, True,
                          "unexpected: two TCP sockets share the port",
                          "refused: within TCP the port has one owner")
        second_udp = step("second UDP socket", socket.SOCK_DGRAM, False,
                          "unexpected: two UDP sockets share the port",
                          "refused: within UDP the port has one owner too")
    finally:
        for sock in opened:
            sock.close()
    return {
        "port": port,
        "host": host,
        "tcp_bound": True,
        "udp_bound": True,
        "second_tcp_errno": second_tcp,
        "second_tcp_error": errno.errorcode.get(second_tcp) if second_tcp else None,
        "second_udp_errno": second_udp,
        "second_udp_error": errno.errorcode.get(second_udp) if second_udp else None,
        "service": {"tcp": registry.service_name(port, "tcp"),
                    "udp": registry.service_name(port, "udp")},
        "steps": steps,
    }

