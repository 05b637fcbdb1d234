"""Lab 4: a TCP echo server and client (instructor's reference solution)."""
import socket
import sys


def recv_exactly(sock, n):
    """Return exactly ``n`` bytes from ``sock``; ConnectionError if the peer closes first."""
    # A stream has no message boundaries: recv() returns whatever has arrived.
    chunks, have = [], 0
    while have < n:
        chunk = sock.recv(min(n - have, 65536))
        if not chunk:
            raise ConnectionError(f"peer closed after {have} of {n} bytes")
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


def handle(conn):
    """Echo one client until it half-closes (recv() returns b'')."""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)  # send() may send only part; sendall() loops for us


def serve(host, port):
    """Iterative echo server: one client at a time."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen()
        while True:
            conn, _ = listener.accept()
            with conn:
                try:
                    handle(conn)
                except OSError:
                    pass  # reset or broken pipe: that client is gone, serve the next


def echo(host, port, data):
    """Send ``data``, half-close, and return everything the server sends back."""
    with socket.create_connection((host, port)) as sock:
        sock.sendall(data)
        # Half-close: "I am done sending", while the reply can still come in.
        # (Sending everything before reading is fine for a server that echoes as
        # it reads only while the data fits in the socket buffers; a threaded
        # sender would lift that limit.)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server":
        serve("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "client":
        print(echo("127.0.0.1", int(sys.argv[2]), sys.argv[3].encode()))
    else:
        print(__doc__)
