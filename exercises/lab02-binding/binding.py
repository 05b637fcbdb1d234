"""Lab 2: binding and privileges.

Fill in every function marked TODO, then check your work with:

    netlab lab check 2

Try your code by hand with:  python binding.py 80   (and again with 8080)
"""
import errno
import socket
import sys


def bind_tcp(host, port):
    """Return a TCP socket bound to (host, port) and listening.

    A restarted server must be able to bind again at once, even while old
    connections on this port are still in TIME_WAIT.
    """
    # TODO: create the socket, set the option the lesson talks about,
    # TODO: bind and listen.
    raise NotImplementedError("TODO: bind_tcp(host, port)")


def bind_udp(host, port):
    """Return a UDP socket bound to (host, port)."""
    # TODO: which socket type is UDP? Does a UDP socket listen()?
    raise NotImplementedError("TODO: bind_udp(host, port)")


def try_bind(proto, host, port):
    """Try to bind ``proto`` ("tcp" or "udp") on (host, port) and say how it went.

    Return one of: "ok", "in-use", "permission-denied", "not-available".
    Never leave the port bound: close the socket before returning.
    """
    # TODO: catch OSError and look at exc.errno (compare with errno.E... names).
    raise NotImplementedError("TODO: try_bind(proto, host, port)")


def bind_same_port(host):
    """Return (tcp_socket, udp_socket) bound to the same port number, chosen by the OS."""
    # TODO: let the OS pick a TCP port, then claim the same number for UDP.
    # TODO: what if that number is already taken over UDP?
    raise NotImplementedError("TODO: bind_same_port(host)")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    for proto in ("tcp", "udp"):
        try:
            print(proto, port, try_bind(proto, "127.0.0.1", port))
        except NotImplementedError as exc:
            print(exc)
    _ = (errno, socket)  # you will need them
