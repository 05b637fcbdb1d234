"""Lab 10, part 2: a TCP port redirector (instructor's reference solution)."""
import socket
import sys
import threading


def pipe(src, dst):
    """Copy bytes from ``src`` to ``dst``; pass the end of stream on as a half-close."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _serve(client, target_host, target_port):
    try:
        upstream = socket.create_connection((target_host, target_port), timeout=5)
    except OSError:
        client.close()  # the target is down: hang up on this client only
        return
    upstream.settimeout(None)
    back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    back.start()
    pipe(client, upstream)
    back.join()
    upstream.close()
    client.close()


def redirect(listen_host, listen_port, target_host, target_port):
    """Accept clients and connect each one to the target, forever."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((listen_host, listen_port))
        listener.listen()
        while True:
            client, _ = listener.accept()
            threading.Thread(target=_serve, args=(client, target_host, target_port),
                             daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    redirect("127.0.0.1", int(sys.argv[1]), "127.0.0.1", int(sys.argv[2]))
