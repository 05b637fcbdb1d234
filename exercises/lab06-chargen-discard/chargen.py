"""Lab 6: the chargen (RFC 864) and discard (RFC 863) services.

Fill in the TODOs, then check your work with:

    netlab lab check 6

Try it by hand:  python chargen.py tcp 9019    then:  nc 127.0.0.1 9019 | head
"""
import socket
import sys


def chargen_line(n):
    """Line ``n`` (counting from 0) of the RFC 864 pattern, as bytes ending in CRLF."""
    # TODO: which characters make up the ring, and how many are there?
    # TODO: where does line n start in the ring, and how long is a line?
    raise NotImplementedError("TODO: chargen_line(n)")


def serve_chargen(host, port):
    """TCP chargen: send pattern lines to each client until it goes away, then serve the next."""
    # TODO: what happens to sendall() when the client stops reading?
    # TODO: and when the client closes?
    raise NotImplementedError("TODO: serve_chargen(host, port)")


def serve_discard(host, port):
    """TCP discard: read and throw away everything a client sends, until it is done."""
    raise NotImplementedError("TODO: serve_discard(host, port)")


def should_answer(addr, own_addr):
    """Loop guard: may a UDP chargen server answer a datagram from ``addr``?

    ``addr`` and ``own_addr`` are (host, port) pairs.
    """
    # TODO: which senders could answer back, and back, and back...?
    raise NotImplementedError("TODO: should_answer(addr, own_addr)")


def serve_chargen_udp(host, port):
    """UDP chargen: answer each allowed datagram with at most 512 bytes of the pattern."""
    raise NotImplementedError("TODO: serve_chargen_udp(host, port)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "tcp":
        serve_chargen("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "udp":
        serve_chargen_udp("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "discard":
        serve_discard("127.0.0.1", int(sys.argv[2]))
    else:
        print(__doc__)
    _ = socket  # you will need it
