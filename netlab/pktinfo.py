"""Answer a UDP datagram from the address it was sent to (IP_PKTINFO).

A UDP socket bound to a wildcard address (``0.0.0.0`` or ``::``) receives
datagrams sent to any local address. A plain ``sendto()`` of the reply lets
the kernel pick the source address from the route, so a datagram sent to
127.0.0.5 is answered *from* 127.0.0.1, and a client that ``connect()``-ed
its UDP socket to 127.0.0.5 drops that reply as coming from a stranger.

The kernel can say where each datagram was addressed: with ``IP_PKTINFO``
(IPv4) or ``IPV6_RECVPKTINFO`` (IPv6) set, ``recvmsg()`` returns it in an
ancillary message, and ``sendmsg()`` with the same kind of message picks the
source address of the reply.

* :func:`enable` switches this on for a wildcard-bound socket (a no-op
  otherwise: a socket bound to one address answers from it anyway);
* :func:`recv` returns ``(data, peer, local_ip)``, ``local_ip`` None when the
  kernel gave none;
* :func:`send` replies to ``peer`` from ``local_ip`` (a plain ``sendto()``
  when it is None).
"""
from __future__ import annotations

import socket
import struct
from typing import Optional, Tuple

__all__ = ["enable", "recv", "send"]

# Linux values; Python's socket module names IPV6_* but not IP_PKTINFO.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
# struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr} and
# struct in6_pktinfo {in6_addr addr; unsigned int ifindex}.
_IN_PKTINFO = struct.Struct("=i4s4s")
_IN6_PKTINFO = struct.Struct("=16sI")
_CMSG_SPACE = socket.CMSG_SPACE(max(_IN_PKTINFO.size, _IN6_PKTINFO.size))


def _wildcard(sock: socket.socket) -> bool:
    host = sock.getsockname()[0]
    return host in ("0.0.0.0", "::")


def enable(sock: socket.socket) -> None:
    """Ask the kernel for each datagram's destination address (wildcard-bound only)."""
    try:
        if not _wildcard(sock):
            return
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        elif sock.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    except (OSError, AttributeError):
        pass  # not supported here: replies leave from the routed address


def recv(sock: socket.socket, bufsize: int) -> Tuple[bytes, tuple, Optional[str]]:
    """``recvmsg()`` one datagram: ``(data, peer_addr, local_ip or None)``."""
    data, ancdata, _flags, peer = sock.recvmsg(bufsize, _CMSG_SPACE)
    local = None
    for level, kind, payload in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO \
                and len(payload) >= _IN_PKTINFO.size:
            _ifindex, _spec_dst, addr = _IN_PKTINFO.unpack_from(payload)
            local = socket.inet_ntop(socket.AF_INET, addr)
        elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO \
                and len(payload) >= _IN6_PKTINFO.size:
            addr, _ifindex = _IN6_PKTINFO.unpack_from(payload)
            local = socket.inet_ntop(socket.AF_INET6, addr)
    return data, peer, local


def send(sock: socket.socket, data: bytes, peer_addr: tuple, local_ip: Optional[str]) -> int:
    """Send ``data`` to ``peer_addr`` from ``local_ip`` (or as routed when None)."""
    if local_ip is None:
        return sock.sendto(data, peer_addr)
    if sock.family == socket.AF_INET6:
        info = _IN6_PKTINFO.pack(socket.inet_pton(socket.AF_INET6, local_ip), 0)
        cmsg = (socket.IPPROTO_IPV6, IPV6_PKTINFO, info)
    else:
        info = _IN_PKTINFO.pack(0, socket.inet_pton(socket.AF_INET, local_ip), bytes(4))
        cmsg = (socket.IPPROTO_IP, IP_PKTINFO, info)
    return sock.sendmsg([data], [cmsg], 0, peer_addr)
