"""Lab 15: DNS by hand (RFC 1035).

Fill in the TODOs, then check your work with:

    netlab lab check 15

Try it by hand against any DNS server you run on loopback (dnsmasq, or the
grader's), for example on port 5353:

    python dns.py 5353 www.example.test
    python dns.py 5353 www.example.test AAAA
"""
import random
import socket
import struct
import sys

A, CNAME, AAAA = 1, 5, 28   # record types (QTYPE / TYPE)
CLASS_IN = 1                # the Internet class


def build_query(name, qtype, ident):
    """A DNS query (bytes) for ``name`` and record type ``qtype`` with transaction id ``ident``."""
    # TODO: the 12-byte header: which six 16-bit fields, in which byte order?
    # TODO: the question: the name as labels, then QTYPE and QCLASS.
    raise NotImplementedError("TODO: build_query(name, qtype, ident)")


def read_name(message, offset):
    """Read the name at ``offset`` of ``message``: return ``(name, offset_after)``.

    ``name`` is the labels joined with dots ("" for the root). Names may be
    compressed (RFC 1035 section 4.1.4). Raise ValueError on a malformed name.
    """
    # TODO: a length byte and a label, until the zero byte.
    # TODO: a compression pointer: where does the name continue, and where does it end?
    # TODO: a malformed message must raise ValueError, never loop for ever.
    raise NotImplementedError("TODO: read_name(message, offset)")


def parse_response(message):
    """Parse a DNS response.

    Return ``{"id": int, "rcode": int, "answers": [...]}``, each answer a dict
    ``{"name", "type", "ttl", "data"}``: ``data`` is the address text for A and
    AAAA, the name for CNAME, the raw bytes for any other type. Raise
    ValueError when the message is malformed.
    """
    # TODO: the header; skip the question section; read each answer record.
    raise NotImplementedError("TODO: parse_response(message)")


def lookup(server, port, name, qtype=A, timeout=2.0):
    """Ask the DNS server at ``(server, port)`` over UDP for ``name``.

    Return the list of the ``qtype`` records' data (addresses) of ``name``,
    following CNAME records in the answer.
    """
    # TODO: send a query; which reply is the answer to *your* query?
    # TODO: follow the CNAME chain from ``name``; keep the records of the final name.
    raise NotImplementedError("TODO: lookup(server, port, name, qtype, timeout)")


if __name__ == "__main__":
    if len(sys.argv) >= 3:
        kind = AAAA if len(sys.argv) > 3 and sys.argv[3] == "AAAA" else A
        print(lookup("127.0.0.1", int(sys.argv[1]), sys.argv[2], kind))
    else:
        print(__doc__)
    _ = (random, socket, struct)  # you will need them
