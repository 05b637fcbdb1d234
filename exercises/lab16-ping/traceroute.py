"""Lab 16: traceroute with UDP probes and ICMP errors (RFC 792).

    python traceroute.py 198.19.3.2

Each probe is a UDP datagram with a small TTL; the router where the TTL runs
out answers "time exceeded", the destination answers "port unreachable".
Read the handout (README.md) first: it explains how a UDP socket gets those
ICMP errors without any privilege (IP_RECVERR and the error queue).
"""
import select  # noqa: F401 - you will need these
import socket
import struct  # noqa: F401
import sys
import time  # noqa: F401

IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux; the socket module has no name for it before 3.12
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
SO_EE_ORIGIN_ICMP = 2
TIME_EXCEEDED, DEST_UNREACHABLE = 11, 3
BASE_PORT = 33434  # traceroute's classic first port: nobody listens this high up


def parse_error(data):
    """``{"errno", "origin", "type", "code", "offender"}`` of a ``struct sock_extended_err``.

    ``data`` is the ancillary data of an IP_RECVERR message: the 16-byte
    struct (see ``man 7 ip``), then the ``sockaddr_in`` of the offender, the
    router or host that sent the ICMP error (None when it is not IPv4).
    ValueError when ``data`` is too short.
    """
    raise NotImplementedError("TODO: unpack struct sock_extended_err and the offender's address")


def hop_line(ttl, address, rtts):
    """One line of output: the TTL, who answered (if anyone), each RTT in ms or ``*``.

    `` 2  198.19.2.2  0.412 ms  *`` or `` 3  *  *``.
    """
    raise NotImplementedError("TODO: format one hop")


def open_probe_socket():
    """A UDP socket whose ICMP errors the kernel queues for us (IP_RECVERR)."""
    raise NotImplementedError("TODO: a UDP socket with IP_RECVERR on")


def probe(sock, host, port, ttl, timeout):
    """Send one probe to ``host:port`` with ``ttl``: ``(who answered, rtt, ICMP type)``, or Nones."""
    raise NotImplementedError("TODO: set IP_TTL, send, wait for the error queue, read it")


def traceroute(host, max_hops=30, timeout=1.0, probes=3):
    """Trace the path to ``host``: one ``{"ttl", "address", "rtts"}`` per hop, printed as it comes.

    ``rtts`` has one entry per probe (seconds, or None when nothing came in
    ``timeout``); stop after the hop where the destination itself answered,
    or after ``max_hops``.
    """
    raise NotImplementedError("TODO: TTL 1, 2, 3... until the destination answers")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python traceroute.py HOST (e.g. a host of 'netlab net up --subnets 2')")
    traceroute(socket.gethostbyname(sys.argv[1]))
