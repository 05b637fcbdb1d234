"""Lab 11: an HTTP/1.0 web server for the files of one folder (reference solution)."""
import mimetypes
import os
import socket
import sys

MAX_HEAD = 16384  # bytes: a request head longer than this is refused with 400
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}


def parse_request(head):
    """The request line of ``head`` (bytes) as ``(method, path, version)``; ValueError if malformed."""
    try:
        line = head.split(b"\r\n", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("the request line is not ASCII") from None
    parts = line.split(" ")
    if len(parts) != 3:
        raise ValueError("a request line is METHOD SP PATH SP VERSION")
    method, path, version = parts
    if not method.isalpha() or not method.isupper():
        raise ValueError("bad method %r" % method)
    if not path.startswith("/"):
        raise ValueError("the path must start with /")
    if not (version.startswith("HTTP/1.") and version[7:].isdigit()):
        raise ValueError("bad version %r" % version)
    return method, path, version


def response(status, body=b"", content_type="text/plain; charset=utf-8"):
    """A whole HTTP/1.0 response: status line, headers, blank line, body."""
    head = ("HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (status, REASONS[status], content_type, len(body)))
    return head.encode("ascii") + body


def error(status):
    return response(status, ("%d %s\n" % (status, REASONS[status])).encode("ascii"))


def read_head(conn):
    """Bytes up to the blank line ending the request head; None if the client leaves first."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) <= MAX_HEAD:
        chunk = conn.recv(4096)
        if not chunk:
            return data or None
        data += chunk
    return data


def file_for(root, path):
    """The file under ``root`` that ``path`` names, or None (missing, a folder, or outside root)."""
    path = path.split("?", 1)[0]
    if path.endswith("/"):
        path += "index.html"
    root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root, path.lstrip("/")))
    if not full.startswith(root + os.sep) or not os.path.isfile(full):
        return None
    return full


def answer(head, root):
    """The response bytes for one request head."""
    try:
        method, path, _ = parse_request(head)
    except ValueError:
        return error(400)
    if b"\r\n\r\n" not in head:
        return error(400)   # too long, or the client stopped sending half-way
    if method != "GET":
        return error(501)
    full = file_for(root, path)
    if full is None:
        return error(404)
    with open(full, "rb") as f:
        body = f.read()
    kind = mimetypes.guess_type(full)[0] or "application/octet-stream"
    return response(200, body, kind)


def handle(conn, root):
    """Answer one HTTP/1.0 request on ``conn``, then close it."""
    with conn:
        conn.settimeout(5)
        try:
            head = read_head(conn)
            if head is not None:
                conn.sendall(answer(head, root))
        except OSError:
            pass   # the client left or stalled: only this connection ends


def serve(host, port, root):
    """Serve the files under ``root`` on (host, port), one connection after another, forever."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, port))
        srv.listen(16)
        while True:
            conn, _ = srv.accept()
            handle(conn, root)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    folder = sys.argv[2] if len(sys.argv) > 2 else "."
    print("serving %s on http://127.0.0.1:%d/" % (os.path.abspath(folder), port))
    serve("127.0.0.1", port, folder)
