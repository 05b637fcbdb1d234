"""Lab 11: an HTTP/1.0 web server for the files of one folder.

Fill in the TODOs, then check your work with:

    netlab lab check 11

Try it by hand:

    python webserver.py 8080 www        # serve the folder www/ on port 8080
    curl -v http://127.0.0.1:8080/index.html
    netlab redirect 8081 127.0.0.1:8080 # then browse port 8081 (see the handout for 80)
"""
import os
import socket
import sys

MAX_HEAD = 16384  # bytes: a request head longer than this is refused with 400
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}


def parse_request(head):
    """The request line of ``head`` (bytes) as ``(method, path, version)`` strings.

    Raise ValueError when it is not METHOD SP PATH SP HTTP/1.x, when the path
    does not start with "/" or the bytes are not ASCII.
    """
    # TODO: take the first line, decode it, split it, check each part.
    raise NotImplementedError("TODO: parse_request(head)")


def response(status, body=b"", content_type="text/plain; charset=utf-8"):
    """A whole HTTP/1.0 response (bytes): status line, headers, blank line, body."""
    # TODO: the status line, Content-Type, Content-Length, a blank line, the body.
    raise NotImplementedError("TODO: response(status, body, content_type)")


def handle(conn, root):
    """Answer one HTTP/1.0 request on the connected socket ``conn``, then close it.

    200 with the file under ``root`` named by the path, 404 when there is none,
    400 for a malformed request. Never serve a file outside ``root``.
    """
    # TODO: read the request head (it may come in pieces), answer, close.
    raise NotImplementedError("TODO: handle(conn, root)")


def serve(host, port, root):
    """Serve the files under ``root`` on (host, port), forever."""
    # TODO: a listening TCP socket; accept and handle each client in turn.
    raise NotImplementedError("TODO: serve(host, port, root)")


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    folder = sys.argv[2] if len(sys.argv) > 2 else "."
    print("serving %s on http://127.0.0.1:%d/" % (os.path.abspath(folder), port))
    serve("127.0.0.1", port, folder)
    _ = socket  # you will need it
