"""Lab 3: a UDP echo server and client (RFC 862).

Fill in the TODOs, then check your work with:

    netlab lab check 3

Try it by hand in two terminals:

    python udp_echo.py server 9007
    python udp_echo.py client 9007 "hello"
"""
import socket
import sys


def serve(host, port):
    """Echo every datagram received on (host, port) back to its sender, forever."""
    # TODO: create and bind a UDP socket.
    # TODO: loop: receive one datagram and the sender's address, send it back.
    raise NotImplementedError("TODO: serve(host, port)")


def echo(host, port, data, timeout=1.0, retries=3):
    """Send ``data`` to the echo server and return the reply (bytes).

    Wait ``timeout`` seconds for a reply; without one, send again, at most
    ``retries`` more times. Then raise TimeoutError.
    """
    # TODO: a UDP socket, a timeout, a bounded loop of tries.
    raise NotImplementedError("TODO: echo(host, port, data, timeout, retries)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server":
        serve("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "client":
        print(echo("127.0.0.1", int(sys.argv[2]), sys.argv[3].encode()))
    else:
        print(__doc__)
    _ = socket  # you will need it
