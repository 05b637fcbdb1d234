"""Lab 7: three ways to serve many clients (instructor's reference solution)."""
import selectors
import socket
import sys
import threading


def listener(host, port):
    """A listening TCP socket."""
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


def _safe_echo(conn):
    try:
        echo_client(conn)
    except OSError:
        pass  # one client's reset must not stop the server


def serve_iterative(host, port):
    """One client at a time: the others wait in the listen backlog."""
    with listener(host, port) as lsock:
        while True:
            conn, _ = lsock.accept()
            _safe_echo(conn)


def serve_threaded(host, port):
    """One thread per client: simple, but each thread costs a stack and a switch."""
    with listener(host, port) as lsock:
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=_safe_echo, args=(conn,), daemon=True).start()


def serve_selectors(host, port):
    """All clients in one thread: wait for readiness, never block on one client."""
    sel = selectors.DefaultSelector()
    lsock = listener(host, port)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    pending = {}  # conn -> bytes still to send back

    def close(conn):
        sel.unregister(conn)
        pending.pop(conn, None)
        conn.close()

    while True:
        for key, events in sel.select():
            sock = key.fileobj
            if sock is lsock:
                try:
                    conn, _ = lsock.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                pending[conn] = b""
                sel.register(conn, selectors.EVENT_READ, None)
                continue
            try:
                if events & selectors.EVENT_READ:
                    data = sock.recv(4096)
                    if not data:
                        close(sock)
                        continue
                    pending[sock] += data
                if pending[sock]:
                    sent = sock.send(pending[sock])  # may take only part of it
                    pending[sock] = pending[sock][sent:]
            except BlockingIOError:
                pass
            except OSError:
                close(sock)
                continue
            # Wait for writability only while something is left to send.
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending[sock] else 0)
            if key.events != want:
                sel.modify(sock, want, None)


if __name__ == "__main__":
    kinds = {"iterative": serve_iterative, "threaded": serve_threaded, "selectors": serve_selectors}
    if len(sys.argv) >= 3 and sys.argv[1] in kinds:
        kinds[sys.argv[1]]("127.0.0.1", int(sys.argv[2]))
    else:
        print(__doc__)
