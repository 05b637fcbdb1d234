"""Lab 16: ping with ICMP echo (RFC 792), reference solution.

    python ping.py 127.0.0.1
"""
import os
import socket
import struct
import sys
import time

ECHO_REPLY, ECHO_REQUEST = 0, 8


def checksum(data):
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(">%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_echo_request(ident, seq, payload):
    """An ICMP echo request: type 8, code 0, checksum, identifier, sequence number, payload."""
    header = struct.pack(">BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack(">BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + payload


def parse_icmp(packet):
    """``{"type", "code", "id", "seq", "payload"}`` of an ICMP message, with or without an IPv4 header."""
    if len(packet) >= 20 and packet[0] >> 4 == 4:  # a raw socket hands over the IP header too
        packet = packet[(packet[0] & 0x0F) * 4:]
    if len(packet) < 8:
        raise ValueError("ICMP message of %d bytes, shorter than its 8-byte header" % len(packet))
    kind, code, _, ident, seq = struct.unpack_from(">BBHHH", packet)
    return {"type": kind, "code": code, "id": ident, "seq": seq, "payload": bytes(packet[8:])}


def open_socket():
    """An ICMP socket and its kind: "dgram" (no privilege needed where allowed) or "raw"."""
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), "dgram"
    except PermissionError:  # net.ipv4.ping_group_range does not include our group
        return socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP), "raw"


def ping(host, count=4, timeout=1.0, interval=0.2):
    """Ping ``host`` ``count`` times: ``{"sent", "received", "rtts"}``, an RTT in seconds or None per request."""
    sock, kind = open_socket()
    ident = os.getpid() & 0xFFFF  # a datagram socket replaces it with its own
    rtts = []
    with sock:
        for seq in range(1, count + 1):
            payload = os.urandom(16)
            start = time.monotonic()
            sock.sendto(build_echo_request(ident, seq, payload), (host, 0))
            rtt = None
            deadline = start + timeout
            while rtt is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    reply = parse_icmp(sock.recv(65535))
                except socket.timeout:
                    break
                except ValueError:
                    continue
                if (reply["type"] == ECHO_REPLY and reply["seq"] == seq and reply["payload"] == payload
                        and (kind == "dgram" or reply["id"] == ident)):
                    rtt = time.monotonic() - start
            rtts.append(rtt)
            if seq < count:
                time.sleep(max(0.0, interval - (time.monotonic() - start)))
    return {"sent": count, "received": sum(r is not None for r in rtts), "rtts": rtts}


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    result = ping(target)
    for seq, rtt in enumerate(result["rtts"], 1):
        print("seq=%d %s" % (seq, "time=%.3f ms" % (rtt * 1000) if rtt is not None else "timeout"))
    print("%d sent, %d received" % (result["sent"], result["received"]))
