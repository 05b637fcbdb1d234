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
import threading
from typing import Any, Dict, Optional, Tuple

from netlab._cliutil import port_number
from netlab.binding import bind_socket, family_for
from netlab.bench import _common
from netlab.errors import NetlabError, UsageError

__all__ = ["DEFAULT_BUFFER", "DEFAULT_SECONDS", "register", "run", "run_tcp"]

DEFAULT_SECONDS = 3.0
DEFAULT_BUFFER = 128 * 1024     # the block size iperf3 uses for TCP
MAX_BUFFER = 16 * 1024 * 1024
CHUNK_NS = 50_000_000


def run_tcp(seconds: float = DEFAULT_SECONDS, buffer: int = DEFAULT_BUFFER,
            backend: Optional[str] = None, host: str = "127.0.0.1", port: int = 0,
            target: Optional[Tuple[str, int]] = None,
            progress: Optional[_common.Progress] = None,
            stop: Optional[_common.StopFlag] = None) -> Dict[str, Any]:
    """Measure one bulk transfer on loopback; return the result dict (``--json``).

    With ``target`` the sender connects there instead, and whatever listens
    there must forward to the receiver on ``port`` (e.g. ``netlab redirect``
    with ``--delay``: TCP still delivers every byte, in order).
    Ctrl-C (or ``stop.set``) ends the sending early; ``interrupted`` says so.
    """
    if not 1 <= buffer <= MAX_BUFFER:
        raise UsageError(f"invalid --buffer {buffer}: choose 1 to {MAX_BUFFER} bytes")
    io = _common.netio(backend)
    progress = progress or _common.Progress(enabled=False)
    pat = io.pattern(buffer)
    listener = bind_socket("tcp", host, port, backlog=1)
    state: Dict[str, Any] = {"received": 0, "bad": 0, "eof": False, "error": None, "end_ns": None}
    hard_end = io.monotonic_ns() + int((seconds + 15) * 1e9)

    def receive() -> None:
        try:
            listener.settimeout(10)
            conn, _ = listener.accept()
            conn.settimeout(None)
            # Time out inside the kernel (not via Python's poll) so the
            # compiled loop can look at the clock now and then.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _common.timeval(0.1))
            buf = bytearray(buffer)
            with conn:
                while not state["eof"] and io.monotonic_ns() < hard_end:
                    got, bad, eof = io.tcp_recv(conn, pat, buf, state["received"],
                                                io.monotonic_ns() + CHUNK_NS)
                    state["received"] += got
                    state["bad"] += bad
                    if eof:
                        state["eof"] = True
                        state["end_ns"] = io.monotonic_ns()
        except OSError as exc:
            state["error"] = exc

    thread = threading.Thread(target=receive, name="netlab-bench-tcp-receiver", daemon=True)
    thread.start()
    sent = 0
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
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _common.timeval(0.1))
        start = io.monotonic_ns()
        end = start + int(seconds * 1e9)
        with _common.stop_context(stop) as flag:
            while not flag.set:
                now = io.monotonic_ns()
                if now >= end:
                    break
                sent += io.tcp_send(sock, pat, buffer, sent, min(end, now + CHUNK_NS))
                elapsed = (io.monotonic_ns() - start) / 1e9
                progress.update(f"tcp: {_common.si(state['received'])}B received, "
                                f"{state['received'] * 8 / elapsed / 1e9:.2f} Gbit/s so far")
            interrupted = flag.set
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
    end_ns = state["end_ns"] or io.monotonic_ns()
    elapsed = max((end_ns - start) / 1e9, 1e-9)
    received = state["received"]
    return {
        "bytes": received,
        "seconds": round(elapsed, 3),
        "gbps": round(received * 8 / elapsed / 1e9, 3),
        "verified": bool(state["eof"] and received == sent and state["bad"] == 0),
        "sent": sent,
        "mismatched": state["bad"],
        "buffer": buffer,
        "backend": io.BACKEND,
        "target": f"{target[0]}:{target[1]}" if target else None,
        "interrupted": interrupted,
    }


COLUMNS = [("bytes", "bytes"), ("seconds", "seconds"), ("gbps", "Gbit/s"),
           ("verified", "verified"), ("buffer", "buffer"), ("backend", "backend")]


def register(sub) -> None:
    p = sub.add_parser(
        "tcp",
        help="bulk TCP transfer on loopback: Gbit/s, every byte verified",
        description="Send a known byte stream over one TCP connection on loopback for "
        "--seconds, then check at the receiver that every byte arrived, in order. "
        "Ctrl-C prints what was measured so far (exit 0).",
    )
    _common.add_common_flags(p, DEFAULT_SECONDS)
    p.add_argument("--buffer", type=_common.byte_count, default=DEFAULT_BUFFER, metavar="BYTES",
                   help=f"bytes per send/recv call (default {DEFAULT_BUFFER})")
    p.add_argument("--backend", choices=_common.BACKENDS, default=None,
                   help="cython: loops with the GIL released; python: the readable reference")
    p.add_argument("--target", type=_common.host_port, metavar="HOST:PORT",
                   help="connect to HOST:PORT, a forwarder to the receiver (see --port), "
                   "e.g. 'netlab redirect' with --delay")
    p.add_argument("--port", type=port_number, default=0,
                   help="the receiver's TCP port (default 0: the OS picks)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _common.check_plot_path(args.plot)
    _common.check_target_port(args, "tcp")
    result = run_tcp(seconds=args.seconds, buffer=args.buffer, backend=args.backend,
                     port=args.port, target=args.target, progress=_common.Progress())
    notes = []
    if result["interrupted"]:
        notes.append("interrupted: the figures cover the time measured before Ctrl-C")
    if result["target"]:
        notes.append(f"via {result['target']}")
    if not result["verified"]:
        notes.append(f"NOT verified: sent {result['sent']} bytes, received {result['bytes']}, "
                     f"{result['mismatched']} in blocks that differed")
    _common.emit(args, [result], COLUMNS, notes)
    if args.plot:
        _common.plot(args.plot, f"netlab bench tcp ({result['backend']})", "",
                     [f"buffer {result['buffer']} B"], [("Gbit/s", [result["gbps"]])],
                     command=_common.command_line())
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0
