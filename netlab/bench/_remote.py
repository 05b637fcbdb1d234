"""Two hosts: ``netlab bench udp|tcp --server`` and ``--client HOST``.

Like iperf3, a test between two machines needs a *control connection* beside
the data: the client tells the server what it is about to send, the server
says what it granted (its receive buffer), and at the end each side tells
the other what it saw, so that both print the same complete result.

The control connection is TCP on ``--port`` (default :data:`DEFAULT_PORT`);
the UDP data go to the *same port number over UDP*: TCP and UDP have separate
port spaces, so the two never collide. TCP data come on a second connection
to the same TCP port, which opens with the test's cookie so that the server
knows it belongs to the test it set up.

Each message is one line of JSON. A session::

    client -> {"hello": "netlab-bench", "protocol": 1, "netlab": "0.1.0", "test": "udp", ...}
    server -> {"hello": "netlab-bench", "protocol": 1, "netlab": "0.1.0", "ok": true, ...}
              ... the data flow for --seconds ...
    client -> {"done": {"sent": N, "seconds": S, ...}}
    server -> {"result": {...}}        (the receiver's counters)

or, instead of ``ok``, ``{"error": "..."}`` (another protocol version, the
other test). Both sides turn every failure into one line naming the problem
and the way out: no server there, a server of another version, a peer that
went away in the middle.
"""
from __future__ import annotations

import json
import os
import select
import socket
import sys
from typing import Any, Callable, Dict, Optional, Tuple

import netlab
from netlab.binding import bind_socket, format_address
from netlab.errors import NetlabError

__all__ = ["DEFAULT_PORT", "PROTOCOL", "Control", "accept_data", "check_done", "connect", "new_cookie",
           "number", "reply",
           "serve"]

DEFAULT_PORT = 7201        # iperf3's 5201, moved into netlab's 7000 block
PROTOCOL = 1               # bump when the messages change
HELLO = "netlab-bench"
HANDSHAKE_SECONDS = 5.0
MAX_LINE = 65536


class Control:
    """One control connection: JSON lines with a deadline on every read."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self._buf = b""

    def send(self, message: Dict[str, Any]) -> None:
        try:
            self.sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise NetlabError(f"the control connection to {self.peer} broke: "
                              f"{exc.strerror or exc}") from None

    def ready(self) -> bool:
        """A message (or the end of the connection) is waiting."""
        return b"\n" in self._buf or bool(select.select([self.sock], [], [], 0)[0])

    def receive(self, timeout: float, what: str) -> Dict[str, Any]:
        """The next message within ``timeout`` seconds; ``what`` names it in errors."""
        while b"\n" not in self._buf:
            if not select.select([self.sock], [], [], timeout)[0]:
                raise NetlabError(f"{self.peer} sent no {what} within {timeout:g} s "
                                  "(is it a netlab bench of this kind, and not busy?)")
            try:
                chunk = self.sock.recv(65536)
            except OSError as exc:
                chunk = b""
                if exc.errno not in (None, 0):
                    raise NetlabError(f"the control connection to {self.peer} broke: "
                                      f"{exc.strerror or exc}") from None
            if not chunk:
                raise NetlabError(f"{self.peer} closed the control connection before its {what}")
            self._buf += chunk
            if len(self._buf) > MAX_LINE:
                raise NetlabError(f"{self.peer} is not a netlab bench peer "
                                  "(it sent a long line that is not a control message)")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise NetlabError(f"{self.peer} is not a netlab bench peer "
                              f"(it answered {line[:40]!r})")
        if "error" in message and what != "hello":
            raise NetlabError(f"{self.peer}: {message['error']}")
        return message

    def close(self) -> None:
        self.sock.close()


def number(value: Any, low: float, high: float) -> bool:
    """A JSON number (not a bool) within [low, high]: for checking what a peer sent."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def check_done(ctrl: "Control", done: Any) -> Dict[str, Any]:
    """The client's end-of-test message, checked: its ``sent`` count and ``seconds``."""
    if not (isinstance(done, dict) and isinstance(done.get("sent"), int) and done["sent"] >= 0
            and number(done.get("seconds"), 0, 1e6)):
        raise NetlabError(f"{ctrl.peer} ended the test without a valid count")
    return done


def _hello(test: str) -> Dict[str, Any]:
    return {"hello": HELLO, "protocol": PROTOCOL, "netlab": netlab.__version__, "test": test}


def reply(ctrl: Control, test: str, **fields: Any) -> None:
    """The server's answer to a hello: ``ok=True`` and what it granted, or ``error=...``."""
    ctrl.send(dict(_hello(test), **fields))


def connect(test: str, host: str, port: int, params: Dict[str, Any],
            timeout: float = HANDSHAKE_SECONDS) -> Tuple[Control, Dict[str, Any]]:
    """Open the control connection to a ``bench TEST --server`` and shake hands.

    Returns the connection and the server's answer (what it granted).
    """
    where = format_address(host, port)
    start_hint = f"start 'netlab bench {test} --server --port {port}' on {host}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        raise NetlabError(f"no netlab bench server at {where}: no answer within {timeout:g} s "
                          f"(a firewall? {start_hint})") from None
    except OSError as exc:
        raise NetlabError(f"no netlab bench server at {where}: {exc.strerror or exc}; "
                          f"{start_hint}") from None
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctrl = Control(sock, f"the server at {where}")
    try:
        ctrl.send(dict(_hello(test), **params))
        answer = ctrl.receive(timeout, "hello")
        if answer.get("hello") != HELLO:
            raise NetlabError(f"{where} is not a netlab bench server (it answered {answer!r:.60}); "
                              f"{start_hint}")
        if answer.get("protocol") != PROTOCOL:
            raise NetlabError(
                f"the server at {where} is netlab {answer.get('netlab', '?')} (bench protocol "
                f"{answer.get('protocol')}), this is netlab {netlab.__version__} (protocol "
                f"{PROTOCOL}): run the same netlab version on both hosts")
        if "error" in answer:
            raise NetlabError(f"the server at {where} refused the test: {answer['error']}")
        if answer.get("ok") is not True:
            # e.g. an echo server, which sends our own hello back
            raise NetlabError(f"{where} is not a netlab bench server (its answer has no 'ok'); "
                              f"{start_hint}")
    except BaseException:
        ctrl.close()
        raise
    return ctrl, answer


Handler = Callable[[Control, Dict[str, Any]], Optional[Dict[str, Any]]]


def serve(test: str, host: str, port: int, handler: Handler, once: bool = False,
          on_listening: Callable[[str], None] = print,
          on_result: Callable[[Dict[str, Any]], None] = print,
          stop=None, extra_listen: Optional[str] = None) -> int:
    """Accept control connections for ``test`` one after the other.

    ``handler(ctrl, hello)`` runs one test (it answers the hello itself once
    its data socket is ready) and returns the result to print, or None. A
    client that misbehaves or goes away costs its own test only: the server
    says so on stderr and waits for the next one. ``once`` stops after one
    test (iperf3's ``-1``). Returns the exit status.
    """
    listener = bind_socket("tcp", host, port, backlog=8)
    bound = listener.getsockname()[:2]
    on_listening(f"listening on tcp://{format_address(*bound)} (control"
                 + (f"), {extra_listen}" if extra_listen else ")")
                 + f": run 'netlab bench {test} --client HOST --port {bound[1]}' on the other host")
    sys.stdout.flush()
    try:
        while stop is None or not stop.set:
            if not select.select([listener], [], [], 0.2)[0]:
                continue
            try:
                sock, addr = listener.accept()
            except OSError:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ctrl = Control(sock, f"the client at {format_address(*addr[:2])}")
            try:
                result = _one_test(test, ctrl, handler, listener)
            except (NetlabError, OSError, ValueError, TypeError, KeyError) as exc:
                # One client's trouble (gone, garbled, malicious) ends its test only.
                text = exc if isinstance(exc, NetlabError) else f"{ctrl.peer} broke the test ({exc!r:.80})"
                print(f"netlab: test from {format_address(*addr[:2])} failed: {text}",
                      file=sys.stderr, flush=True)
                result = None
            finally:
                ctrl.close()
            if result is not None:
                on_result(result)
                sys.stdout.flush()
                if once:
                    break
    finally:
        listener.close()
    return 0


def _one_test(test: str, ctrl: Control, handler: Handler, listener: socket.socket):
    hello = ctrl.receive(HANDSHAKE_SECONDS, "hello")
    if hello.get("hello") != HELLO:
        reply(ctrl, test, error="this is a netlab bench server; it speaks JSON lines")
        raise NetlabError(f"{ctrl.peer} is not a netlab bench client")
    if hello.get("protocol") != PROTOCOL:
        reply(ctrl, test, error="another bench protocol version")
        raise NetlabError(f"{ctrl.peer} is netlab {hello.get('netlab', '?')} (bench protocol "
                          f"{hello.get('protocol')}), this is netlab {netlab.__version__} "
                          f"(protocol {PROTOCOL}): run the same netlab version on both hosts")
    if hello.get("test") != test:
        reply(ctrl, test, error=f"this server runs 'netlab bench {test} --server', not "
                                f"{hello.get('test')!r}: use 'netlab bench {test} --client'")
        raise NetlabError(f"{ctrl.peer} asked for a {hello.get('test')!r} test; this server "
                          f"runs {test}")
    hello["_listener"] = listener
    return handler(ctrl, hello)


def accept_data(listener: socket.socket, cookie: str, timeout: float = HANDSHAKE_SECONDS
                ) -> socket.socket:
    """The test's TCP data connection: the next one that opens with ``cookie``."""
    listener.settimeout(timeout)
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                raise NetlabError("the client's data connection did not come within "
                                  f"{timeout:g} s") from None
            conn.settimeout(timeout)
            want = cookie.encode()
            got = b""
            try:
                while len(got) < len(want):
                    chunk = conn.recv(len(want) - len(got))
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                got = b""
            if got == want:
                conn.settimeout(None)
                return conn
            conn.close()          # not ours: a stray connection
    finally:
        listener.settimeout(None)


def new_cookie() -> str:
    return os.urandom(8).hex()


# --- command line: the flags udp and tcp share ------------------------------------

def add_flags(p, test: str) -> None:
    """``--server``, ``--client HOST`` and ``--once`` (``--port`` is the experiment's own)."""
    p.add_argument("--server", action="store_true",
                   help=f"two hosts: be the receiving end; wait for 'netlab bench {test} --client' "
                   f"on control port --port (default {DEFAULT_PORT}), on all addresses unless "
                   "--host; prints every test's result; Ctrl-C stops")
    p.add_argument("--client", metavar="HOST",
                   help=f"two hosts: send to the 'netlab bench {test} --server' at HOST "
                   "(port --port); both sides print the result")
    p.add_argument("--once", action="store_true",
                   help="with --server: stop after one test (like iperf3 -1)")


def check_flags(args, test: str, local_only: Tuple[str, ...]) -> None:
    """Usage errors for flags that do not fit the chosen mode."""
    from netlab.errors import UsageError

    if args.server and args.client:
        raise UsageError("--server and --client exclude each other: run --server on the "
                         "receiving host and --client HOST on the sending one")
    if args.once and not args.server:
        raise UsageError("--once belongs to --server (stop after one test)")
    if args.server or args.client:
        for flag in local_only:
            if getattr(args, flag.lstrip("-").replace("-", "_"), None):
                raise UsageError(f"{flag} measures on this host only; leave it out with "
                                 f"--{'server' if args.server else 'client'}")
    if args.port is None:
        args.port = DEFAULT_PORT if (args.server or args.client) else 0
