"""Lab 11: an HTTP/1.0 web server — GET of files from a folder, 200/404/400, Content-Length.

The grader picks the files (random bytes, so nothing can be guessed), talks
to the student's server with the standard library's own HTTP client and with
raw sockets for malformed requests, and finally reaches it through a port
redirection, the way port 80 is given to a server running on 8080.
"""
from __future__ import annotations

import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Dict, Iterator, Tuple

from netlab.labs._peers import HOST, read_to_eof
from netlab.labs._probes import call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import Sandbox, free_port, wait_for_tcp

__all__ = ["parse", "get", "not_found", "bad_requests", "pieces", "escape", "redirected"]

SECRET = b"grader secret: outside the web root\n"


def _files() -> Dict[str, bytes]:
    token = os.urandom(8).hex()
    return {
        "index.html": f"<!doctype html><title>lab 11</title><p>token {token}</p>\n".encode(),
        "notes.txt": f"plain text {token}\n".encode() * 40,
        "img/blob.bin": os.urandom(50000),   # binary, with every byte value, bigger than one recv()
    }


@contextmanager
def _web(labdir: str) -> Iterator[Tuple[int, Dict[str, bytes]]]:
    """The student's server on a free port, serving fresh random files: ``(port, files)``."""
    port = free_port()
    files = _files()
    args = {"port": port, "files": {k: v.hex() for k, v in files.items()},
            "outside": {"secret.txt": SECRET.hex()}}
    with Sandbox(labdir, "lab11:probe_serve", args) as box:
        wait_for_tcp(box, port)
        yield port, files


def _raw(port: int, data: bytes, gaps: float = 0.0) -> Tuple[bytes, bytes]:
    """Send ``data`` (a list of pieces when ``gaps``), read to EOF: ``(status line, whole reply)``."""
    pieces = data if isinstance(data, list) else [data]
    with socket.create_connection((HOST, port), timeout=5) as sock:
        for piece in pieces:
            try:
                sock.sendall(piece)
            except OSError:
                break   # the server answered and closed early: read what it said
            if gaps:
                time.sleep(gaps)
        reply, eof = read_to_eof(sock, 5)
    if not eof:
        raise CheckFailed("the server did not close the connection after its response "
                          "(HTTP/1.0: one request, one response, then close)")
    return reply.split(b"\r\n", 1)[0], reply


def _status(line: bytes) -> int:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise CheckFailed(f"the reply does not start with a status line like 'HTTP/1.0 200 OK': {line[:60]!r}")
    return int(parts[1])


def _body_of(reply: bytes, what: str) -> bytes:
    """The body of a raw reply, checked against its Content-Length."""
    head, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        raise CheckFailed(f"{what}: no blank line (CRLF CRLF) after the headers")
    lengths = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")[1:]
               if line.lower().startswith(b"content-length:")]
    if len(lengths) != 1 or not lengths[0].isdigit():
        raise CheckFailed(f"{what}: expected one Content-Length header, found {lengths!r}")
    if int(lengths[0]) != len(body):
        raise CheckFailed(f"{what}: Content-Length says {int(lengths[0])}, the body has {len(body)} bytes")
    return body


def parse(labdir: str) -> str:
    good = [(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n", ["GET", "/index.html", "HTTP/1.0"]),
            (b"GET / HTTP/1.1\r\n\r\n", ["GET", "/", "HTTP/1.1"]),
            (b"HEAD /a/b.txt HTTP/1.0\r\n\r\n", ["HEAD", "/a/b.txt", "HTTP/1.0"])]
    bad = [b"HELLO\r\n\r\n", b"GET /index.html HTTP/1.0 extra\r\n\r\n", b"GET index.html HTTP/1.0\r\n\r\n",
           b"GET / FTP/1.0\r\n\r\n", b"GET /\xff\xfe HTTP/1.0\r\n\r\n", b"\r\n\r\n"]
    outs = call_all(labdir, "webserver", [["parse_request", [{"bytes": h.hex()}]] for h, _ in good]
                    + [["parse_request", [{"bytes": h.hex()}]] for h in bad])
    for (head, want), out in zip(good, outs):
        got = student_value(out, f"parse_request({head[:30]!r})")
        if got != want:
            raise CheckFailed(f"parse_request({head[:30]!r}) returned {got!r}, expected {tuple(want)!r}")
    for head, out in zip(bad, outs[len(good):]):
        if out.get("error") == "NotImplementedError":
            student_value(out, "parse_request")
        if out.get("error") != "ValueError":
            what = f"returned {out.get('value')!r}" if out.get("ok") else f"raised {out.get('error')}"
            raise CheckFailed(f"parse_request({head!r}) {what}; a malformed request line must raise ValueError")
    return f"{len(good)} request lines split, {len(bad)} malformed ones refused"


def get(labdir: str) -> str:
    with _web(labdir) as (port, files):
        for name, data in files.items():
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/{name}", timeout=5) as resp:
                    body, status, headers = resp.read(), resp.status, resp.headers
            except urllib.error.HTTPError as exc:
                raise CheckFailed(f"GET /{name} (a file in the folder) gave {exc.code}, expected 200") from None
            except (OSError, http.client.HTTPException) as exc:
                raise CheckFailed(f"GET /{name}: the HTTP client failed: {exc}") from None
            if status != 200:
                raise CheckFailed(f"GET /{name} gave status {status}, expected 200")
            if body != data:
                raise CheckFailed(f"GET /{name}: {len(body)} bytes came, the file has {len(data)} "
                                  f"({'different bytes' if len(body) == len(data) else 'not the same'})")
            if headers.get("Content-Length") != str(len(data)):
                raise CheckFailed(f"GET /{name}: Content-Length {headers.get('Content-Length')!r}, "
                                  f"the file has {len(data)} bytes")
            if name.endswith(".html") and not str(headers.get("Content-Type", "")).startswith("text/html"):
                raise CheckFailed(f"GET /{name}: Content-Type {headers.get('Content-Type')!r}; "
                                  f"a browser needs text/html to show a page")
        _, reply = _raw(port, b"GET /img/blob.bin HTTP/1.0\r\n\r\n")
        if _body_of(reply, "GET /img/blob.bin") != files["img/blob.bin"]:
            raise CheckFailed("GET /img/blob.bin over a raw socket: the body is not the file")
        _, reply = _raw(port, b"GET / HTTP/1.0\r\n\r\n")
        if _body_of(reply, "GET /") != files["index.html"]:
            raise CheckFailed("GET / should serve index.html of the folder")
    return f"{len(files) + 1} files byte-exact with the right Content-Length, / is index.html"


def not_found(labdir: str) -> str:
    with _web(labdir) as (port, _):
        for path in ("/nothing-here.html", "/img/", "/img/missing.bin"):
            line, reply = _raw(port, f"GET {path} HTTP/1.0\r\n\r\n".encode())
            status = _status(line)
            if status != 404:
                raise CheckFailed(f"GET {path} (no such file) gave {status}, expected 404")
            _body_of(reply, f"GET {path}")
    return "3 missing paths answered 404 with a correct Content-Length"


def bad_requests(labdir: str) -> str:
    bad = [b"HELLO\r\n\r\n", b"GET /index.html HTTP/1.0 extra\r\n\r\n", b"GET index.html HTTP/1.0\r\n\r\n",
           b"GET / FTP/1.0\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n"]
    with _web(labdir) as (port, files):
        for data in bad:
            try:
                line, _ = _raw(port, data)
            except ConnectionError:
                raise CheckFailed(f"the server reset the connection for {data[:30]!r}...: answer 400 "
                                  f"(read the whole request head first)") from None
            status = _status(line) if line else 0
            if status != 400:
                raise CheckFailed(f"{data[:30]!r}... gave {status or 'no reply'}, expected 400 Bad Request")
        # A client that connects and leaves without a word, then one that is still alive:
        socket.create_connection((HOST, port), timeout=2).close()
        time.sleep(0.05)
        line, reply = _raw(port, b"GET /notes.txt HTTP/1.0\r\n\r\n")
        if _status(line) != 200 or _body_of(reply, "GET /notes.txt") != files["notes.txt"]:
            raise CheckFailed("after the malformed requests the server no longer serves /notes.txt")
    return f"{len(bad)} malformed requests got 400, and the server still serves files"


def pieces(labdir: str) -> str:
    request = [b"GE", b"T /index", b".html HTTP/1.0\r\nHost: 127.0.0.1\r", b"\nUser-Agent: lab11\r\n", b"\r\n"]
    with _web(labdir) as (port, files):
        line, reply = _raw(port, request, gaps=0.05)
        if _status(line) != 200:
            raise CheckFailed(f"a request sent in {len(request)} pieces got {line[:40]!r}: TCP is a stream, "
                              f"read until the blank line that ends the head")
        if _body_of(reply, "GET /index.html") != files["index.html"]:
            raise CheckFailed("a request sent in pieces got the wrong body")
    return f"a request in {len(request)} pieces, 50 ms apart, got 200"


def escape(labdir: str) -> str:
    with _web(labdir) as (port, _):
        for path in ("/../secret.txt", "/img/../../secret.txt", "/%2e%2e/secret.txt", "//etc/passwd"):
            line, reply = _raw(port, f"GET {path} HTTP/1.0\r\n\r\n".encode())
            status = _status(line)
            if SECRET in reply or b"root:" in reply or status == 200:
                raise CheckFailed(f"GET {path} gave {status} and a file outside the folder: resolve the path "
                                  f"(os.path.realpath) and refuse it unless it stays under the root")
            if status not in (400, 403, 404):
                raise CheckFailed(f"GET {path} gave {status}; expected 404 (or 400/403)")
    return "4 paths that leave the folder were refused"


def redirected(labdir: str) -> str:
    from netlab.errors import NetlabError
    from netlab.labs import sandbox
    from netlab.redirect import start_redirect

    with _web(labdir) as (port, files):
        relay = None
        if sandbox.config.isolated:
            # Port 80 itself, in the grading's private network (never the host's own).
            try:
                relay = start_redirect(80, HOST, port, protocols=("tcp",))
            except (NetlabError, OSError):
                relay = None
        if relay is None:
            relay = start_redirect(0, HOST, port, protocols=("tcp",))
        front = relay.ports["tcp"]
        with relay:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{front}/notes.txt", timeout=5) as resp:
                    body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                raise CheckFailed(f"GET http://{HOST}:{front}/notes.txt through the redirect failed: {exc}") from None
            count = relay.stats()["tcp"]["connections"]
    if body != files["notes.txt"]:
        raise CheckFailed("through the redirect, /notes.txt came back different")
    if count < 1:
        raise CheckFailed("the request did not go through the redirect")
    return f"redirect {front} -> {port}: the page came through the relay"
