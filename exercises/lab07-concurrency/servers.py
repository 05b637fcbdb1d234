"""Lab 7: three ways to serve many clients.

All three servers speak the same line echo protocol: every line a client
sends (ending in b"\\n") comes straight back, until the client closes.

Fill in the TODOs, then check (and measure) your work with:

    netlab lab check 7

Try one by hand:  python servers.py threaded 9007   then, in other terminals:  nc 127.0.0.1 9007
"""
import selectors
import socket
import sys
import threading


def listener(host, port):
    """A listening TCP socket (given to you: this lab is about what comes after)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def echo_client(conn):
    """Echo everything ``conn`` sends until it closes (blocking)."""
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            conn.sendall(data)


def serve_iterative(host, port):
    """One client at a time, in one thread."""
    # TODO: accept, echo_client, repeat. Easy, but watch what happens to the others.
    raise NotImplementedError("TODO: serve_iterative(host, port)")


def serve_threaded(host, port):
    """One thread per client."""
    # TODO: the main thread accepts; who runs echo_client?
    raise NotImplementedError("TODO: serve_threaded(host, port)")


def serve_selectors(host, port):
    """All clients in one thread, with the selectors module."""
    # TODO: a DefaultSelector, non-blocking sockets, and a loop over select().
    # TODO: when the listener is readable, accept; when a client is readable, recv and echo.
    # TODO: what if send() cannot take all the data right now?
    raise NotImplementedError("TODO: serve_selectors(host, port)")


if __name__ == "__main__":
    kinds = {"iterative": serve_iterative, "threaded": serve_threaded, "selectors": serve_selectors}
    if len(sys.argv) >= 3 and sys.argv[1] in kinds:
        kinds[sys.argv[1]]("127.0.0.1", int(sys.argv[2]))
    else:
        print(__doc__)
    _ = (selectors, threading)  # you will need them
