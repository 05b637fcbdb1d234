"""Lab 6: chargen and discard (instructor's reference solution)."""
import random
import socket
import sys

RING = bytes(range(32, 127))  # 95 printable ASCII characters, space to tilde
LINE_LENGTH = 72
UDP_MAX = 512


def chargen_line(n):
    """Line ``n`` of the RFC 864 pattern: 72 characters from position n % 95, then CRLF."""
    start = n % len(RING)
    return (RING + RING)[start:start + LINE_LENGTH] + b"\r\n"


def _listener(host, port):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen()
    return sock


def serve_chargen(host, port):
    """TCP chargen: pattern lines until the client goes away."""
    # One full cycle of the ring, prepared once: 95 lines, 7030 bytes.
    cycle = b"".join(chargen_line(n) for n in range(len(RING)))
    with _listener(host, port) as listener:
        while True:
            conn, _ = listener.accept()
            with conn:
                try:
                    while True:
                        # sendall() blocks while the client does not read: that is
                        # TCP flow control keeping a fast sender in check.
                        conn.sendall(cycle)
                except OSError:
                    pass  # BrokenPipeError / ConnectionResetError: the client left


def serve_discard(host, port):
    """TCP discard: read and drop until the client closes."""
    with _listener(host, port) as listener:
        while True:
            conn, _ = listener.accept()
            with conn:
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass


def should_answer(addr, own_addr):
    """Loop guard: no answers to privileged (service) ports or to ourselves."""
    host, port = addr[0], addr[1]
    if port < 1024:
        # echo (7), chargen (19), daytime (13)...: a service that answers back
        # would start an endless ping-pong, the classic chargen/echo loop.
        return False
    return (host, port) != (own_addr[0], own_addr[1])


def serve_chargen_udp(host, port):
    """UDP chargen: one reply of 1..512 bytes of the pattern per allowed datagram."""
    cycle = b"".join(chargen_line(n) for n in range(len(RING)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        own = sock.getsockname()
        while True:
            _, addr = sock.recvfrom(65535)
            if should_answer(addr, own):
                sock.sendto(cycle[:random.randint(1, UDP_MAX)], addr)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "tcp":
        serve_chargen("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "udp":
        serve_chargen_udp("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "discard":
        serve_discard("127.0.0.1", int(sys.argv[2]))
    else:
        print(__doc__)
