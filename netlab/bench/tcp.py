"""``netlab bench tcp``: bulk transfer over one connection, every byte checked.

TCP is a phone call: what is said arrives, complete and in order. The sender
writes a known stream (byte ``k`` is ``k % 251``) in blocks of ``--buffer``
bytes for ``--seconds``, then closes its half; the receiver reads to the end
and compares every byte with the stream it expects. ``verified`` is true when
all bytes sent arrived and none differed.

Both ends are threads of this process: the compiled loops (``netlab._netio``)
release the GIL, and the Python twin's ``send``/``recv_into`` release it while
in the kernel, so each end gets a core. The rate is measured at the receiver,
from the first byte sent to the end of the stream. Ctrl-C stops the sender
early; the result then covers what was sent until then (exit status 0).

With ``--target HOST:PORT`` the sender connects there and the forwarder
delivers to the receiver on ``--port``; through a relay with ``--delay`` the
rate drops but ``verified`` stays true: the reliability is TCP's::

    netlab redirect 9001 127.0.0.1:9000 --tcp --delay 20 &
    netlab bench tcp --port 9000 --target 127.0.0.1:9001
"""
from __future__ import annotations

import argparse
import socket
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

from netlab._cliutil import port_number
from netlab.binding import bind_socket, family_for, format_address
from netlab.bench import _common, _remote
from netlab.errors import NetlabError, UsageError

__all__ = ["DEFAULT_BUFFER", "DEFAULT_SECONDS", "client_tcp", "register", "run", "run_tcp",
           "serve_tcp"]

DEFAULT_SECONDS = 3.0
DEFAULT_BUFFER = 128 * 1024     # the block size iperf3 uses for TCP
MAX_BUFFER = 16 * 1024 * 1024
CHUNK_NS = 50_000_000


def _receive_stream(io, conn: socket.socket, buffer: int, discard: bool, state: Dict[str, Any],
                    hard_end: int) -> None:
    """Read one test stream to its end into ``state`` (received, bad, eof, end_ns).

    Verifying: every byte compared with the pattern. ``discard``: MSG_TRUNC,
    nothing copied, nothing checked (``verified`` is then not claimed).
    """
    # Time out inside the kernel (not via Python's poll) so the compiled
    # loop can look at the clock now and then.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _common.timeval(0.1))
    pat = None if discard else io.pattern(buffer)
    buf = None if discard else bytearray(buffer)
    while not state["eof"] and io.monotonic_ns() < hard_end:
        deadline = io.monotonic_ns() + CHUNK_NS
        if discard:
            got, eof = io.tcp_discard(conn, buffer, deadline)
            bad = 0
        else:
            got, bad, eof = io.tcp_recv(conn, pat, buf, state["received"], deadline)
        state["received"] += got
        state["bad"] += bad
        if eof:
            state["eof"] = True
            state["end_ns"] = io.monotonic_ns()


def _send_stream(io, sock: socket.socket, buffer: int, seconds: float, flag,
                 stopped=lambda: False, report=lambda sent, elapsed: None) -> Tuple[int, int, bool]:
    """Write the pattern for ``seconds``; returns (sent, start_ns, interrupted)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _common.timeval(0.1))
    pat = io.pattern(buffer)
    sent = 0
    start = io.monotonic_ns()
    end = start + int(seconds * 1e9)
    while not flag.set and not stopped():
        now = io.monotonic_ns()
        if now >= end:
            break
        sent += io.tcp_send(sock, pat, buffer, sent, min(end, now + CHUNK_NS))
        report(sent, (io.monotonic_ns() - start) / 1e9)
    return sent, start, flag.set


def _check_buffer(buffer: int) -> None:
    if not 1 <= buffer <= MAX_BUFFER:
        raise UsageError(f"invalid --buffer {buffer}: choose 1 to {MAX_BUFFER} bytes")


def run_tcp(seconds: float = DEFAULT_SECONDS, buffer: int = DEFAULT_BUFFER,
            backend: Optional[str] = None, host: str = "127.0.0.1", port: int = 0,
            target: Optional[Tuple[str, int]] = None,
            progress: Optional[_common.Progress] = None,
            stop: Optional[_common.StopFlag] = None, discard: bool = False) -> Dict[str, Any]:
    """Measure one bulk transfer on loopback; return the result dict (``--json``).

    With ``target`` the sender connects there instead, and whatever listens
    there must forward to the receiver on ``port`` (e.g. ``netlab redirect``
    with ``--delay``: TCP still delivers every byte, in order). ``discard``
    makes the receiver drop the bytes unread (MSG_TRUNC) instead of checking
    them. Ctrl-C (or ``stop.set``) ends the sending early; ``interrupted`` says so.
    """
    _check_buffer(buffer)
    io = _common.netio(backend)
    progress = progress or _common.Progress(enabled=False)
    listener = bind_socket("tcp", host, port, backlog=1)
    state = _new_state()
    hard_end = io.monotonic_ns() + int((seconds + 15) * 1e9)

    def receive() -> None:
        try:
            listener.settimeout(10)
            conn, _ = listener.accept()
            conn.settimeout(None)
            with conn:
                _receive_stream(io, conn, buffer, discard, state, hard_end)
        except OSError as exc:
            state["error"] = exc

    thread = threading.Thread(target=receive, name="netlab-bench-tcp-receiver", daemon=True)
    thread.start()
    sent = 0
    start = io.monotonic_ns()
    interrupted = False
    sock = socket.socket(family_for(target[0] if target else host), socket.SOCK_STREAM)
    try:
        try:
            sock.connect(target or listener.getsockname()[:2])
        except OSError as exc:
            if target is None:
                raise
            raise NetlabError(f"cannot connect to {target[0]}:{target[1]}: {exc.strerror or exc} "
                              "(is a forwarder listening there? it must forward to --port)") from None
        with _common.stop_context(stop) as flag:
            sent, start, interrupted = _send_stream(
                io, sock, buffer, seconds, flag,
                report=lambda n, elapsed: progress.update(
                    f"tcp: {_common.si(state['received'])}B received, "
                    f"{state['received'] * 8 / max(elapsed, 1e-9) / 1e9:.2f} Gbit/s so far"))
        sock.shutdown(socket.SHUT_WR)
        thread.join(timeout=max((hard_end - io.monotonic_ns()) / 1e9, 1.0))
    except OSError as exc:
        raise NetlabError(f"tcp transfer failed: {exc.strerror or exc}") from None
    finally:
        sock.close()
        listener.close()
        progress.done()
    if state["error"] is not None:
        exc = state["error"]
        raise NetlabError(f"tcp receiver failed: {getattr(exc, 'strerror', None) or exc}")
    result = _result(state, sent, start, io, buffer, discard, interrupted)
    result["target"] = f"{target[0]}:{target[1]}" if target else None
    return result


def _new_state() -> Dict[str, Any]:
    return {"received": 0, "bad": 0, "eof": False, "error": None, "end_ns": None}


def _result(state: Dict[str, Any], sent: int, start_ns: int, io, buffer: int, discard: bool,
            interrupted: bool, elapsed: Optional[float] = None) -> Dict[str, Any]:
    if elapsed is None:
        elapsed = ((state["end_ns"] or io.monotonic_ns()) - start_ns) / 1e9
    elapsed = max(elapsed, 1e-9)
    received = state["received"]
    complete = bool(state["eof"] and received == sent)
    return {
        "bytes": received,
        "seconds": round(elapsed, 3),
        "gbps": round(received * 8 / elapsed / 1e9, 3),
        # Discarded bytes are counted, not checked: only their number is verified.
        "verified": complete and state["bad"] == 0 and not discard,
        "complete": complete,
        "sent": sent,
        "mismatched": state["bad"],
        "buffer": buffer,
        "discard": discard,
        "backend": io.BACKEND,
        "target": None,
        "interrupted": interrupted,
    }


# --- two hosts: --server and --client ------------------------------------------

def serve_tcp(host: str = "0.0.0.0", port: int = _remote.DEFAULT_PORT, once: bool = False,
              backend: Optional[str] = None, on_listening=print, on_result=print,
              stop=None) -> int:
    """``bench tcp --server``: receive the streams of ``--client`` hosts, one at a time.

    Control and data are two connections to the same TCP port; the data
    connection opens with the cookie the server handed out.
    """
    io = _common.netio(backend)

    def handler(ctrl, hello):
        buffer = hello.get("buffer")
        seconds = hello.get("seconds")
        if not (isinstance(buffer, int) and _remote.number(buffer, 1, MAX_BUFFER)
                and _remote.number(seconds, 1e-3, _common.MAX_SECONDS)):
            _remote.reply(ctrl, "tcp", error="bad test parameters")
            raise NetlabError(f"{ctrl.peer} sent bad test parameters")
        discard = bool(hello.get("discard"))
        cookie = _remote.new_cookie()
        _remote.reply(ctrl, "tcp", ok=True, cookie=cookie, backend=io.BACKEND)
        conn = _remote.accept_data(hello["_listener"], cookie)
        state = _new_state()
        try:
            with conn:
                _receive_stream(io, conn, buffer, discard, state,
                                io.monotonic_ns() + int((seconds + 15) * 1e9))
        except OSError as exc:
            raise NetlabError(f"the data connection broke: {exc.strerror or exc}") from None
        done = _remote.check_done(ctrl, ctrl.receive(5.0, "end of test").get("done"))
        # The rate over the sender's clock: first byte sent to the end of the stream.
        result = _result(state, done["sent"], 0, io, buffer, discard,
                         done.get("interrupted") is True, elapsed=float(done["seconds"]))
        result.update(role="server", client=ctrl.peer.split(" at ")[-1],
                      sender_backend=done.get("backend") if done.get("backend") in _common.BACKENDS
                      else None)
        ctrl.send({"result": result})
        return result

    return _remote.serve("tcp", host, port, handler, once=once, on_listening=on_listening,
                         on_result=on_result, stop=stop)


def client_tcp(host: str, port: int = _remote.DEFAULT_PORT, seconds: float = DEFAULT_SECONDS,
               buffer: int = DEFAULT_BUFFER, backend: Optional[str] = None,
               discard: bool = False, progress: Optional[_common.Progress] = None,
               stop: Optional[_common.StopFlag] = None) -> Dict[str, Any]:
    """``bench tcp --client HOST``: stream to a ``--server`` there; its check comes back."""
    _check_buffer(buffer)
    io = _common.netio(backend)
    progress = progress or _common.Progress(enabled=False)
    ctrl, answer = _remote.connect("tcp", host, port, {
        "seconds": seconds, "buffer": buffer, "discard": discard})
    try:
        try:
            sock = socket.create_connection((host, port), timeout=5)
            sock.settimeout(None)
            sock.sendall(str(answer.get("cookie", "")).encode())
        except OSError as exc:
            raise NetlabError(f"cannot open the data connection to {format_address(host, port)}: "
                              f"{exc.strerror or exc}") from None
        with sock, _common.stop_context(stop) as flag:
            try:
                sent, start, interrupted = _send_stream(
                    io, sock, buffer, seconds, flag, stopped=ctrl.ready,
                    report=lambda n, elapsed: progress.update(
                        f"tcp to {host}: {_common.si(n)}B sent, "
                        f"{n * 8 / max(elapsed, 1e-9) / 1e9:.2f} Gbit/s so far"))
                sock.shutdown(socket.SHUT_WR)
                # The end of the stream is when the server has read it all:
                # wait for its close (it reads to EOF, then closes).
                sock.settimeout(15)
                while sock.recv(4096):
                    pass
            except OSError as exc:
                raise NetlabError(f"tcp transfer to {host} failed: {exc.strerror or exc}") from None
        progress.done()
        ctrl.send({"done": {"sent": sent, "seconds": (io.monotonic_ns() - start) / 1e9,
                            "interrupted": interrupted, "backend": io.BACKEND}})
        result = ctrl.receive(10.0, "result").get("result")
    finally:
        ctrl.close()
    if not isinstance(result, dict):
        raise NetlabError(f"the server at {format_address(host, port)} sent no result")
    result.update(role="client", server=format_address(host, port),
                  sender_backend=io.BACKEND)
    return result


COLUMNS = [("bytes", "bytes"), ("seconds", "seconds"), ("gbps", "Gbit/s"),
           ("verified", "verified"), ("buffer", "buffer"), ("backend", "backend")]


def _buffers(text: str) -> List[int]:
    return [_common.byte_count(part) for part in text.split(",")]


def register(sub) -> None:
    p = sub.add_parser(
        "tcp",
        help="bulk TCP transfer: Gbit/s, every byte verified (one host or two)",
        description="Send a known byte stream over one TCP connection for --seconds, then "
        "check at the receiver that every byte arrived, in order (--discard: count the bytes "
        "without copying them, MSG_TRUNC). On one host both ends are threads of this process; "
        "on two hosts run --server on the receiving one and --client HOST on the sending one. "
        "Ctrl-C prints what was measured so far (exit 0).",
    )
    _common.add_common_flags(p, DEFAULT_SECONDS)
    p.add_argument("--buffer", type=_common.byte_count, default=DEFAULT_BUFFER, metavar="BYTES",
                   help=f"bytes per send/recv call (default {DEFAULT_BUFFER})")
    p.add_argument("--sweep", type=_buffers, metavar="BUFFERS",
                   help="run several --buffer sizes one after the other, e.g. 16K,128K,1M")
    p.add_argument("--discard", action="store_true",
                   help="receiver: drop the bytes in the kernel without copying them "
                   "(recv with MSG_TRUNC, Linux); counted, not checked: 'verified' stays no")
    p.add_argument("--backend", choices=_common.BACKENDS, default=None,
                   help="cython: loops with the GIL released; python: the readable reference")
    p.add_argument("--target", type=_common.host_port, metavar="HOST:PORT",
                   help="connect to HOST:PORT, a forwarder to the receiver (see --port), "
                   "e.g. 'netlab redirect' with --delay")
    p.add_argument("--port", type=port_number, default=None,
                   help="the receiver's TCP port (default 0: the OS picks); with --server or "
                   f"--client the control and data port (default {_remote.DEFAULT_PORT})")
    p.add_argument("--host", default=None,
                   help="with --server: the address to listen on (default all, 0.0.0.0)")
    _remote.add_flags(p, "tcp")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _common.check_plot_path(args.plot)
    _remote.check_flags(args, "tcp", ("--target",) if args.client else
                        ("--target", "--sweep", "--discard", "--plot"))
    if args.host and not args.server:
        raise UsageError("--host is where --server listens; name the server as --client HOST")
    if args.server:
        with _common.StopFlag() as stop:
            return serve_tcp(args.host or "0.0.0.0", args.port, once=args.once,
                             backend=args.backend,
                             on_listening=_common.listening_printer(args),
                             on_result=lambda r: _emit(args, [r], single=True), stop=stop)
    _common.check_target_port(args, "tcp")
    buffers = args.sweep or [args.buffer]
    for b in buffers:
        _check_buffer(b)
    progress = _common.Progress()
    results = []
    with _common.StopFlag() as stop:
        for buffer in buffers:
            if stop.set:
                break
            if args.client:
                results.append(client_tcp(args.client, args.port, args.seconds, buffer,
                                          args.backend, args.discard, progress, stop))
            else:
                results.append(run_tcp(seconds=args.seconds, buffer=buffer, backend=args.backend,
                                       port=args.port, target=args.target, progress=progress,
                                       stop=stop, discard=args.discard))
    if not results:
        print("netlab: interrupted before anything was measured", file=sys.stderr)
        return 0
    _emit(args, results, single=not args.sweep)
    if args.plot:
        r0 = results[0]
        _common.plot(args.plot, f"netlab bench tcp ({r0['backend']}"
                     + (", --discard" if r0["discard"] else "") + ")", "buffer per call",
                     [f"{r['buffer']} B" for r in results], [("Gbit/s", [r["gbps"] for r in results])],
                     command=_common.command_line())
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


def _emit(args: argparse.Namespace, results: List[Dict[str, Any]], single: bool) -> None:
    notes = []
    r0 = results[0]
    if any(r["interrupted"] for r in results):
        notes.append("interrupted: the figures cover the time measured before Ctrl-C")
    if r0.get("target"):
        notes.append(f"via {r0['target']}")
    if r0.get("role") == "client":
        notes.append(f"two hosts: sent from here to the server at {r0['server']}, checked there")
    if r0.get("role") == "server":
        notes.append(f"two hosts: sent by the client at {r0['client']}, checked here")
    for r in results:
        if r["discard"]:
            if r["complete"]:
                notes.append(f"--discard: {r['bytes']} bytes counted in the kernel (MSG_TRUNC), "
                             "none copied or checked")
            else:
                notes.append(f"--discard: INCOMPLETE, sent {r['sent']} bytes, counted {r['bytes']}")
        elif not r["verified"]:
            notes.append(f"NOT verified: sent {r['sent']} bytes, received {r['bytes']}, "
                         f"{r['mismatched']} in blocks that differed")
    _common.emit(args, results, COLUMNS, notes, single=single)
