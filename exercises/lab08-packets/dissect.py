"""Lab 8: packet parsing.

Decode a capture file by hand: the pcap format, the IPv4 header, the TCP and
UDP headers, the Internet checksum and the three-way handshake.

Fill in the TODOs, then check your work with:

    netlab lab check 8

Try it on the capture in this folder:  python dissect.py loopback.pcap
Make your own (as root):  tcpdump -i lo -w mine.pcap port 9007
"""
import struct
import sys

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


def read_pcap(path):
    """Read a classic pcap file: return (linktype, [frame bytes, ...]).

    Raise ValueError if the file does not start with a pcap magic number.
    """
    # TODO: the 24-byte global header; which byte order? (look at the magic number)
    # TODO: then records: a 16-byte header (which field is the captured length?) and the frame.
    raise NotImplementedError("TODO: read_pcap(path)")


def ip_payload(frame, linktype):
    """The IPv4 packet inside a link-layer ``frame`` of type ``linktype``."""
    # TODO: what comes before the IP header for each link type?
    raise NotImplementedError("TODO: ip_payload(frame, linktype)")


def parse_ipv4(data):
    """Decode an IPv4 header: a dict with version, header_length (bytes), total_length,
    ttl, protocol, src and dst (dotted quad strings)."""
    raise NotImplementedError("TODO: parse_ipv4(data)")


def parse_tcp(segment):
    """Decode a TCP header: sport, dport, seq, ack, flags (int), header_length (bytes)."""
    raise NotImplementedError("TODO: parse_tcp(segment)")


def parse_udp(segment):
    """Decode a UDP header: sport, dport, length."""
    raise NotImplementedError("TODO: parse_udp(segment)")


def checksum(data):
    """The RFC 1071 Internet checksum of ``data`` (an int from 0 to 0xFFFF)."""
    # TODO: 16-bit big-endian words, an odd last byte, the carries, the complement.
    raise NotImplementedError("TODO: checksum(data)")


def transport_checksum_ok(packet):
    """True if the TCP or UDP checksum of this IPv4 ``packet`` is right.

    (A UDP checksum of 0 means "not computed": count it as right.)
    """
    # TODO: the pseudo-header: source, destination, a zero byte, the protocol, the length.
    raise NotImplementedError("TODO: transport_checksum_ok(packet)")


def find_handshake(packets):
    """Indices [syn, syn_ack, ack] of the first complete TCP three-way handshake
    in a list of IPv4 packets, or [] if there is none."""
    raise NotImplementedError("TODO: find_handshake(packets)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    link, frames = read_pcap(sys.argv[1])
    ips = [ip_payload(f, link) for f in frames]
    for number, ip in enumerate(ips):
        head = parse_ipv4(ip)
        print(number, head["src"], "->", head["dst"], "proto", head["protocol"],
              "checksum ok" if transport_checksum_ok(ip) else "checksum not ok")
    print("handshake:", find_handshake(ips))
    _ = struct  # you will need it
