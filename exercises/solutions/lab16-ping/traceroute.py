"""Lab 16: traceroute with UDP probes and ICMP errors (RFC 792), reference solution.

    python traceroute.py 198.19.3.2

Each probe is a UDP datagram with a small TTL; the router where the TTL runs
out answers "time exceeded", the destination answers "port unreachable". With
IP_RECVERR the kernel queues those ICMP errors on the UDP socket's error
queue, so no privilege is needed.
"""
import select
import socket
import struct
import sys
import time

IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux; the socket module has no name for it before 3.12
MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
SO_EE_ORIGIN_ICMP = 2
TIME_EXCEEDED, DEST_UNREACHABLE = 11, 3
BASE_PORT = 33434  # traceroute's classic first port: nobody listens this high up
EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err, in this machine's byte order


def parse_error(data):
    """``{"errno", "origin", "type", "code", "offender"}`` of a ``struct sock_extended_err``.

    The offender (the router or host that sent the ICMP error) is the
    ``sockaddr_in`` right after the 16-byte struct; None when it is not IPv4.
    """
    if len(data) < EXTENDED_ERR.size:
        raise ValueError("%d bytes, shorter than a sock_extended_err (%d)" % (len(data), EXTENDED_ERR.size))
    err, origin, kind, code, _pad, _info, _data = EXTENDED_ERR.unpack_from(data)
    offender = None
    rest = data[EXTENDED_ERR.size:]
    if len(rest) >= 8 and struct.unpack_from("=H", rest)[0] == socket.AF_INET:
        offender = socket.inet_ntoa(rest[4:8])
    return {"errno": err, "origin": origin, "type": kind, "code": code, "offender": offender}


def hop_line(ttl, address, rtts):
    """`` 2  198.19.2.2  0.412 ms  *``: the TTL, who answered, one RTT (or ``*``) per probe."""
    times = ["%.3f ms" % (rtt * 1000) if rtt is not None else "*" for rtt in rtts]
    return "  ".join(["%2d" % ttl] + ([address] if address else []) + times)


def open_probe_socket():
    """A UDP socket whose ICMP errors the kernel queues for us (IP_RECVERR)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    return sock


def probe(sock, host, port, ttl, timeout):
    """Send one probe to ``host:port`` with ``ttl``: ``(who answered, rtt, ICMP type)``, or Nones."""
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    poller = select.poll()
    poller.register(sock, select.POLLIN)  # POLLERR, the error queue, is always reported
    start = time.monotonic()
    sock.sendto(b"netlab traceroute", (host, port))
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            return None, None, None
        try:
            _, ancillary, _, original = sock.recvmsg(512, 512, MSG_ERRQUEUE)
        except BlockingIOError:  # an ordinary datagram came in: not ours to answer
            sock.recv(65535, socket.MSG_DONTWAIT)
            continue
        rtt = time.monotonic() - start
        for level, kind, data in ancillary:
            if level != socket.IPPROTO_IP or kind != IP_RECVERR:
                continue
            error = parse_error(data)
            # The error names the datagram it is about: a late one for an
            # earlier probe (another port) does not answer this one.
            if error["origin"] == SO_EE_ORIGIN_ICMP and original[1] == port:
                return error["offender"], rtt, error["type"]


def traceroute(host, max_hops=30, timeout=1.0, probes=3):
    """Trace the path to ``host``: one ``{"ttl", "address", "rtts"}`` per hop, printed as it comes."""
    hops = []
    port = BASE_PORT
    with open_probe_socket() as sock:
        for ttl in range(1, max_hops + 1):
            address, rtts, arrived = None, [], False
            for _ in range(probes):
                port += 1  # a port per probe tells the answers apart
                who, rtt, kind = probe(sock, host, port, ttl, timeout)
                rtts.append(rtt)
                address = address or who
                arrived = arrived or kind == DEST_UNREACHABLE
            hops.append({"ttl": ttl, "address": address, "rtts": rtts})
            print(hop_line(ttl, address, rtts), flush=True)
            if arrived:
                break
    return hops


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python traceroute.py HOST (e.g. a host of 'netlab net up --subnets 2')")
    traceroute(socket.gethostbyname(sys.argv[1]))
