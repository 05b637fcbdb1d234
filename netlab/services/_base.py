"""The shape every service module shares: a TCP session and a UDP reply.

A service is sans-I/O: it never sees a socket. A server model (iterative,
threaded, selectors, asyncio) drives it with three kinds of events and sends
whatever bytes come back:

* :meth:`TcpSession.connected` once, right after ``accept()``;
* :meth:`TcpSession.received` for every chunk the client sent;
* :meth:`TcpSession.eof_received` when the client shut down its sending side.

After each call the server checks :attr:`TcpSession.finished`: once true it
flushes what is still queued and closes. A *streaming* service (chargen) also
offers :meth:`TcpSession.pull`, which the server calls only when the socket can
take more bytes, so a client that never reads never makes the server buffer
more than it chose to.

UDP needs no state of its own: :meth:`UdpService.reply` maps one datagram to
one reply (or ``None``: send nothing).
"""
from __future__ import annotations

from typing import Optional

__all__ = ["TcpSession", "UdpService"]


class TcpSession:
    """One TCP connection of a service; subclasses override what differs."""

    #: True for services that produce output on demand (chargen), read with pull().
    streaming = False

    def __init__(self) -> None:
        self.finished = False

    def connected(self) -> bytes:
        """Bytes to send as soon as the connection is up."""
        return b""

    def received(self, data: bytes) -> bytes:
        """Bytes to send in answer to ``data`` (default: ignore it, RFC 863-868)."""
        return b""

    def eof_received(self) -> bytes:
        """The client will send no more; by default the conversation is over."""
        self.finished = True
        return b""

    def pull(self, size: int) -> bytes:
        """Up to ``size`` more bytes of a streaming service (default: none)."""
        return b""


class UdpService:
    """The UDP side of a service: one datagram in, at most one datagram out."""

    def reply(self, datagram: bytes) -> Optional[bytes]:
        return None
