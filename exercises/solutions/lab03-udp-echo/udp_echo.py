"""Lab 3: a UDP echo server and client (instructor's reference solution)."""
import socket
import sys

MAX_DATAGRAM = 65535  # the largest UDP payload over IPv4 is 65507; never cut one short


def serve(host, port):
    """Echo every datagram received on (host, port) back to its sender, forever."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        while True:
            data, addr = sock.recvfrom(MAX_DATAGRAM)
            try:
                sock.sendto(data, addr)
            except OSError:
                pass  # one unreachable client must not stop the server


def echo(host, port, data, timeout=1.0, retries=3):
    """Send ``data`` to the echo server and return the reply, retrying on timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        # connect() on UDP only fixes the peer: replies from anyone else are dropped.
        sock.connect((host, port))
        sock.settimeout(timeout)
        for attempt in range(1 + retries):
            sock.send(data)
            try:
                return sock.recv(MAX_DATAGRAM)
            except socket.timeout:
                continue
    raise TimeoutError(f"no echo from {host}:{port} after {1 + retries} tries of {timeout} s")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server":
        serve("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "client":
        print(echo("127.0.0.1", int(sys.argv[2]), sys.argv[3].encode()))
    else:
        print(__doc__)
