"""Answer a UDP datagram from the address it was sent to (IP_PKTINFO, IPV6_PKTINFO).

A UDP socket bound to every address (``0.0.0.0`` or ``::``) receives
datagrams sent to any address of this machine, say ``127.0.0.5``. A plain
``sendto()`` reply then leaves from whatever source address the routing
table picks (``127.0.0.1``), and a client whose socket is *connected* to
``127.0.0.5`` drops it: to the client, it came from a stranger. TCP never has
this problem, because an accepted socket is bound to the address the client
connected to.

The fix is ancillary data. With ``IP_PKTINFO`` (IPv4) or
``IPV6_RECVPKTINFO`` (IPv6) switched on, ``recvmsg()`` reports each
datagram's destination address; ``sendmsg()`` with the same kind of message
(``IP_PKTINFO`` / ``IPV6_PKTINFO``) sets the reply's source address::

    pktinfo.enable(sock)
    data, peer, local_ip = pktinfo.recv(sock, 65535)
    pktinfo.send(sock, reply, peer, local_ip)

A socket bound to one address needs none of it: ``enable`` leaves it alone,
``recv`` then returns None for ``local_ip`` and ``send`` is a plain ``sendto``.
"""
from __future__ import annotations

import socket
import struct
import sys
from typing import Optional, Tuple

__all__ = ["enable", "recv", "send"]

# Linux's numbers, for Pythons whose socket module does not name them.
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8 if sys.platform.startswith("linux") else None)
_IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", None)
_IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", None)

# struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst, ipi_addr; }
_IN_PKTINFO = struct.Struct("=i4s4s")
# struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
_IN6_PKTINFO = struct.Struct("=16si")
_ANCILLARY = socket.CMSG_SPACE(max(_IN_PKTINFO.size, _IN6_PKTINFO.size))


def _wildcard(sock: socket.socket) -> bool:
    return sock.getsockname()[0] in ("0.0.0.0", "::")


def enable(sock: socket.socket) -> None:
    """Ask the kernel to report each datagram's destination address on ``sock``.

    Does nothing for a socket bound to one address (it already knows) or
    where the platform lacks the option.
    """
    if not _wildcard(sock):
        return
    if sock.family == socket.AF_INET:
        level, option = socket.IPPROTO_IP, _IP_PKTINFO
    elif sock.family == socket.AF_INET6:
        level, option = socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO
    else:
        return
    if option is None:
        return
    try:
        sock.setsockopt(level, option, 1)
    except OSError:
        pass


def recv(sock: socket.socket, bufsize: int) -> Tuple[bytes, tuple, Optional[str]]:
    """One datagram: ``(data, peer address, the local address it was sent to)``.

    The local address is None when the kernel gave none (``enable`` was not
    called, or did nothing).
    """
    data, ancillary, _flags, peer = sock.recvmsg(bufsize, _ANCILLARY)
    local_ip = None
    for level, kind, payload in ancillary:
        if level == socket.IPPROTO_IP and kind == _IP_PKTINFO \
                and len(payload) >= _IN_PKTINFO.size:
            _, _, dest = _IN_PKTINFO.unpack_from(payload)
            local_ip = socket.inet_ntop(socket.AF_INET, dest)
        elif level == socket.IPPROTO_IPV6 and kind == _IPV6_PKTINFO \
                and len(payload) >= _IN6_PKTINFO.size:
            dest, _ = _IN6_PKTINFO.unpack_from(payload)
            local_ip = socket.inet_ntop(socket.AF_INET6, dest)
    return data, peer, local_ip


def send(sock: socket.socket, data: bytes, peer_addr: tuple, local_ip: Optional[str]) -> int:
    """Send ``data`` to ``peer_addr`` from ``local_ip`` (None: let routing choose)."""
    if local_ip is None:
        return sock.sendto(data, peer_addr)
    if sock.family == socket.AF_INET6:
        info = _IN6_PKTINFO.pack(socket.inet_pton(socket.AF_INET6, local_ip), 0)
        cmsg = (socket.IPPROTO_IPV6, _IPV6_PKTINFO, info)
    else:
        # ipi_spec_dst is the source address to use; ipi_addr is ignored on send.
        info = _IN_PKTINFO.pack(0, socket.inet_pton(socket.AF_INET, local_ip), bytes(4))
        cmsg = (socket.IPPROTO_IP, _IP_PKTINFO, info)
    return sock.sendmsg([data], [cmsg], 0, peer_addr)
