"""Lab 2: binding and privileges (instructor's reference solution)."""
import errno
import socket
import sys


def bind_tcp(host, port):
    """Return a TCP socket bound to (host, port) and listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Without SO_REUSEADDR, bind() fails with EADDRINUSE while connections
    # from a previous run of the server are still in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def bind_udp(host, port):
    """Return a UDP socket bound to (host, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


OUTCOMES = {
    errno.EADDRINUSE: "in-use",
    errno.EACCES: "permission-denied",
    errno.EPERM: "permission-denied",
    errno.EADDRNOTAVAIL: "not-available",
}


def try_bind(proto, host, port):
    """Try to bind ``proto`` on (host, port): "ok", "in-use", "permission-denied", "not-available"."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in OUTCOMES:
                return OUTCOMES[exc.errno]
            raise
    return "ok"


def bind_same_port(host, tries=20):
    """Return (tcp_socket, udp_socket) bound to the same port number, chosen by the OS."""
    for _ in range(tries):
        tcp = bind_tcp(host, 0)
        port = tcp.getsockname()[1]
        try:
            udp = bind_udp(host, port)
        except OSError as exc:
            tcp.close()
            if exc.errno == errno.EADDRINUSE:
                continue  # that number is taken over UDP: ask again
            raise
        return tcp, udp
    raise OSError(errno.EADDRINUSE, f"no port free over both TCP and UDP after {tries} tries")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    for proto in ("tcp", "udp"):
        print(proto, port, try_bind(proto, "127.0.0.1", port))
