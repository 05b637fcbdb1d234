"""Lab 16: ping with ICMP echo (RFC 792).

Fill in the TODOs, then check your work with:

    netlab lab check 16

Try it by hand (no root needed where net.ipv4.ping_group_range allows it):

    python ping.py 127.0.0.1
"""
import os
import socket
import struct
import sys
import time

ECHO_REPLY, ECHO_REQUEST = 0, 8


def checksum(data):
    """The Internet checksum (RFC 1071) of ``data`` (bytes), as an int."""
    # TODO: 16-bit big-endian words, an odd byte, the carries, the complement.
    raise NotImplementedError("TODO: checksum(data)")


def build_echo_request(ident, seq, payload):
    """An ICMP echo request (bytes) with identifier ``ident``, sequence ``seq`` and ``payload``."""
    # TODO: the 8-byte ICMP header, then the payload; where does the checksum come from?
    raise NotImplementedError("TODO: build_echo_request(ident, seq, payload)")


def parse_icmp(packet):
    """``{"type", "code", "id", "seq", "payload"}`` of an ICMP message.

    ``packet`` may start with an IPv4 header (a raw socket) or not (a
    datagram ICMP socket). Raise ValueError if it is too short.
    """
    # TODO: is there an IPv4 header in front, and how long is it?
    raise NotImplementedError("TODO: parse_icmp(packet)")


def open_socket():
    """An ICMP socket and its kind: ``(sock, "dgram")`` without privilege where allowed, else ``(sock, "raw")``."""
    # TODO: which socket type needs no root, and what do you do when it is refused?
    raise NotImplementedError("TODO: open_socket()")


def ping(host, count=4, timeout=1.0, interval=0.2):
    """Ping ``host`` ``count`` times.

    Return ``{"sent": count, "received": n, "rtts": [...]}``: one entry per
    request, the round-trip time in seconds, or None when no reply came
    within ``timeout`` seconds. Requests go out ``interval`` seconds apart.
    """
    # TODO: for each sequence number: send, then wait for *its* reply (or the timeout).
    raise NotImplementedError("TODO: ping(host, count, timeout, interval)")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    result = ping(target)
    for seq, rtt in enumerate(result["rtts"], 1):
        print("seq=%d %s" % (seq, "time=%.3f ms" % (rtt * 1000) if rtt is not None else "timeout"))
    print("%d sent, %d received" % (result["sent"], result["received"]))
    _ = (os, socket, struct, time)  # you will need them
