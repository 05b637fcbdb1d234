"""Lab 4: a TCP echo server and client (RFC 862).

Fill in the TODOs, then check your work with:

    netlab lab check 4

Try it by hand in two terminals:

    python tcp_echo.py server 9007
    python tcp_echo.py client 9007 "hello"
"""
import socket
import sys


def recv_exactly(sock, n):
    """Return exactly ``n`` bytes from ``sock``.

    Raise ConnectionError if the peer closes the connection before that.
    """
    # TODO: one recv() is not enough. Why?
    raise NotImplementedError("TODO: recv_exactly(sock, n)")


def serve(host, port):
    """Echo server: for each client, send back everything it sends, until it is done."""
    # TODO: bind and listen (remember SO_REUSEADDR from lab 2).
    # TODO: accept a client; echo until it has nothing more to say; close; next client.
    # TODO: one misbehaving client must not stop the server.
    raise NotImplementedError("TODO: serve(host, port)")


def echo(host, port, data):
    """Send ``data`` to an echo server and return everything it sends back."""
    # TODO: connect and send all of data.
    # TODO: tell the server you are done sending, but keep reading.
    # TODO: read until the server closes.
    raise NotImplementedError("TODO: echo(host, port, data)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server":
        serve("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "client":
        print(echo("127.0.0.1", int(sys.argv[2]), sys.argv[3].encode()))
    else:
        print(__doc__)
    _ = socket  # you will need it
