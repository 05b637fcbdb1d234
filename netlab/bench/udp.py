"""``netlab bench udp``: push stamped datagrams and count what arrives.

UDP is a letter: nothing tells the sender that one was lost. The sender
stamps every datagram with a sequence number and its send time; the receiver
counts received, lost, duplicated and reordered datagrams and the RFC 3550
jitter (see :mod:`netlab._pynetio`), and asks the kernel how many datagrams it
dropped because the receive buffer was full (``/proc/net/udp``, Linux).

Topology. The receiver is a socket of this process (``--port``, default: the
OS picks); the sender is a child process (``python -m netlab.bench.udp``) so
that both use a core of their own and each keeps its own GIL. Without
``--target`` the sender sends straight to the receiver. With
``--target HOST:PORT`` it sends there instead, and whatever sits at the
target must *forward* to the receiver, e.g. a lossy relay::

    netlab redirect 9001 127.0.0.1:9000 --udp --loss 0.05 --reorder 0.02 &
    netlab bench udp --port 9000 --target 127.0.0.1:9001

The run lasts ``seconds`` of sending; the receiver then drains what is still
in flight (until 0.2 s of silence, 1 s with ``--target``). Ctrl-C stops
early and reports what was measured so far (``"interrupted": true``), exit
status 0.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

from netlab._cliutil import port_number
from netlab.binding import bind_socket, family_for
from netlab.bench import _common
from netlab.errors import NetlabError, UsageError

__all__ = ["DEFAULT_SECONDS", "DEFAULT_SIZE", "kernel_drops", "register", "run", "run_udp"]

DEFAULT_SIZE = 64
DEFAULT_SECONDS = 3.0
MAX_SIZE = 65507          # the largest UDP payload over IPv4
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)   # Linux: root may exceed rmem_max
CHUNK_NS = 50_000_000     # loops return to Python every 50 ms (progress, Ctrl-C)


# --- the receive buffer and the kernel's own drop counter --------------------

def set_rcvbuf(sock: socket.socket, size: int) -> int:
    """Ask for a receive buffer of ``size`` bytes; return what the kernel granted.

    Linux doubles the value (bookkeeping overhead) and caps it at
    ``net.core.rmem_max`` unless the process is privileged, in which case
    SO_RCVBUFFORCE lifts the cap.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def kernel_drops(sock: socket.socket) -> Optional[int]:
    """Datagrams the kernel dropped for ``sock`` (full buffer), or None if unknown.

    Read from the last column of ``/proc/net/udp`` (``udp6`` for IPv6), the
    row whose inode is this socket's.
    """
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    name = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
    try:
        with open(name, encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    header = lines[0].split() if lines else []
    for line in lines[1:]:
        cols = line.split()
        # columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        if len(cols) >= 13 and cols[9] == inode and "drops" in header:
            try:
                return int(cols[-1])
            except ValueError:
                return None
    return None


# --- the sender child process --------------------------------------------------

def _sender_main(spec: Dict[str, Any]) -> int:
    """Body of the sender process: send until done or told to stop on stdin.

    Speaks to the parent over its stdout: ``p SENT`` lines every 0.2 s and one
    final ``r {json}``. A line on stdin, or stdin closing, stops it early.
    """
    io = _common.netio(spec["backend"])
    host, port = spec["target"]
    sock = socket.socket(family_for(host), socket.SOCK_DGRAM)
    try:
        # A send never blocks longer than 0.1 s, so a stop request is seen.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _common.timeval(0.1))
        sock.connect((host, port))
    except OSError as exc:
        print("r " + json.dumps({"error": f"cannot send to {host}:{port}: {exc.strerror or exc}"}),
              flush=True)
        return 1
    stdin = sys.stdin.fileno()
    t0 = io.monotonic_ns()
    end = t0 + int(spec["seconds"] * 1e9)
    seq = sent = errors = last_errno = 0
    next_report = t0
    now = t0
    while now < end:
        s, e, err = io.udp_send(sock, spec["size"], seq, t0, spec["rate"], min(end, now + CHUNK_NS))
        seq += s
        sent += s
        errors += e
        last_errno = err or last_errno
        now = io.monotonic_ns()
        if select.select([stdin], [], [], 0)[0]:
            break                       # the parent asked us to stop (or went away)
        if now >= next_report:
            print(f"p {sent}", flush=True)
            next_report = now + 200_000_000
    elapsed = (io.monotonic_ns() - t0) / 1e9
    print("r " + json.dumps({"sent": sent, "seconds": elapsed, "errors": errors,
                             "last_errno": last_errno}), flush=True)
    sock.close()
    return 0


class _Sender:
    """The sender child process, seen from the receiver."""

    def __init__(self, spec: Dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netlab.bench.udp", "--sender", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            # Its own session: a Ctrl-C on the terminal reaches only the parent,
            # which then stops the child in order and keeps its count.
            start_new_session=True,
            env=dict(os.environ, PYTHONPATH=_package_root()
                     + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")),
        )
        self._buf = b""
        self.sent = 0
        self.result: Optional[Dict[str, Any]] = None

    def poll(self) -> None:
        """Read whatever the child said, without blocking."""
        fd = self.proc.stdout.fileno()
        while self.result is None and select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                if self.result is None:
                    self.proc.wait(timeout=5)
                    err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
                    self.result = {"error": "the sender process ended early"
                                   + (f": {err[-1]}" if err else "")}
                return
            self._buf += chunk
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                if line.startswith(b"p "):
                    self.sent = int(line[2:])
                elif line.startswith(b"r "):
                    self.result = json.loads(line[2:])
                    self.sent = self.result.get("sent", self.sent)

    def stop(self) -> None:
        """Ask the child to stop now (it answers with its final count)."""
        try:
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _package_root() -> str:
    # The child must import this very netlab (a checkout may not be installed).
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- one measurement -----------------------------------------------------------

def run_udp(size: int = DEFAULT_SIZE, seconds: float = DEFAULT_SECONDS, rate: float = 0.0,
            backend: Optional[str] = None, rcvbuf: Optional[int] = None,
            target: Optional[Tuple[str, int]] = None, host: str = "127.0.0.1", port: int = 0,
            progress: Optional[_common.Progress] = None,
            stop: Optional[_common.StopFlag] = None) -> Dict[str, Any]:
    """Measure one UDP run and return the result dict (what ``--json`` prints).

    ``rate`` is datagrams per second (0: as fast as possible); ``target`` a
    forwarder in front of the receiver (see the module docstring). Ctrl-C (or
    ``stop.set``) ends the run early with ``interrupted`` set.
    """
    if not 20 <= size <= MAX_SIZE:
        raise UsageError(f"invalid --size {size}: a stamped datagram has 20 to {MAX_SIZE} bytes")
    io = _common.netio(backend)
    progress = progress or _common.Progress(enabled=False)
    sock = bind_socket("udp", host, port)
    sender = None
    try:
        granted = set_rcvbuf(sock, rcvbuf) if rcvbuf else sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF)
        local = sock.getsockname()[:2]
        dest = target or local
        counters = io.UdpCounters()
        drops_before = kernel_drops(sock) or 0
        spec = {"backend": io.BACKEND, "target": list(dest), "size": size,
                "seconds": seconds, "rate": rate}
        sender = _Sender(spec)
        interrupted = False
        start = io.monotonic_ns()
        # Hard bound: sending time plus generous start-up and drain time.
        hard_end = start + int((seconds + 15) * 1e9)
        bufsize = max(size, 2048)
        with _common.stop_context(stop) as flag:
            while sender.result is None and io.monotonic_ns() < hard_end and not flag.set:
                io.udp_recv(sock, counters, io.monotonic_ns() + CHUNK_NS, bufsize)
                sender.poll()
                # The receiver's own view of loss so far: gaps below the
                # highest sequence number seen (the sender's count lags).
                expected = counters.highest_seq + 1
                lost = max(expected - counters.received, 0)
                elapsed = (io.monotonic_ns() - start) / 1e9
                rate_now = counters.received / elapsed if elapsed > 0 else 0.0
                progress.update(f"udp {size} B: sent {_common.si(max(sender.sent, expected))}, "
                                f"received {_common.si(counters.received)} "
                                f"({_common.si(rate_now)}/s), lost so far "
                                f"{100.0 * lost / expected if expected else 0.0:.1f}%")
            if flag.set and sender.result is None:
                # Ctrl-C: the sender stops and tells how many it sent.
                interrupted = True
                sender.stop()
                wait_end = io.monotonic_ns() + 2_000_000_000
                while sender.result is None and io.monotonic_ns() < wait_end:
                    io.udp_recv(sock, counters, io.monotonic_ns() + CHUNK_NS, bufsize)
                    sender.poll()
        if sender.result is None:
            sender.stop()
            raise NetlabError("the UDP sender did not report back in time; try again "
                              "(is the machine very busy?)")
        if "error" in sender.result:
            raise NetlabError(sender.result["error"])
        # Drain what is still in flight: stop after 0.2 s of silence (1 s
        # through a forwarder, which may delay datagrams on purpose), or 3 s.
        silence = 1_000_000_000 if target else 200_000_000
        drain_end = io.monotonic_ns() + 3_000_000_000
        while io.monotonic_ns() < drain_end:
            if io.udp_recv(sock, counters, io.monotonic_ns() + silence, bufsize) == 0:
                break
        progress.done()
        drops_after = kernel_drops(sock)
    finally:
        if sender is not None:
            sender.close()
        sock.close()
    return _result(size, sender.result, counters.result(), io, granted, rate, target,
                   None if drops_after is None else drops_after - drops_before, interrupted)


def _result(size: int, sent_info: Dict[str, Any], got: Dict[str, Any], io, rcvbuf: int, rate: float,
            target, drops: Optional[int], interrupted: bool) -> Dict[str, Any]:
    seconds = max(float(sent_info["seconds"]), 1e-9)
    sent = int(sent_info["sent"])
    received = int(got["received"])
    result = {
        "size": size,
        "seconds": round(seconds, 3),
        "sent": sent,
        "received": received,
        "lost": max(sent - received, 0),
        "duplicated": got["duplicated"],
        "reordered": got["reordered"],
        "send_pps": round(sent / seconds, 1),
        "recv_pps": round(received / seconds, 1),
        "gbps": round(got["bytes"] * 8 / seconds / 1e9, 4),
        "jitter_us": got["jitter_us"],
        "loss_percent": round(100.0 * max(sent - received, 0) / sent, 3) if sent else 0.0,
        "kernel_drops": drops,
        "foreign": got["foreign"],
        "send_errors": int(sent_info.get("errors", 0)),
        "backend": io.BACKEND,
        "batch": io.BATCH,
        "rcvbuf": rcvbuf,
        "rate": rate or None,
        "target": f"{target[0]}:{target[1]}" if target else None,
        "interrupted": interrupted,
    }
    if sent_info.get("errors") and sent_info.get("last_errno"):
        result["send_error"] = os.strerror(int(sent_info["last_errno"]))
    return result


# --- command line --------------------------------------------------------------

COLUMNS = [("size", "size"), ("seconds", "seconds"), ("sent", "sent"), ("received", "received"),
           ("lost", "lost"), ("duplicated", "dup"), ("reordered", "reord"),
           ("send_pps", "send/s"), ("recv_pps", "recv/s"), ("gbps", "Gbit/s"),
           ("jitter_us", "jitter us"), ("kernel_drops", "kernel drops")]


def _sizes(text: str, what: str = "--sweep") -> List[int]:
    out = []
    for part in text.split(","):
        try:
            value = int(part.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {text!r}: expected a size in bytes"
                + (", or several like 64,512,1400" if what == "--sweep" else "")) from None
        if not 20 <= value <= MAX_SIZE:
            raise argparse.ArgumentTypeError(
                f"invalid size {value} in {what}: a stamped datagram has 20 to {MAX_SIZE} bytes")
        out.append(value)
    return out


def _size(text: str) -> int:
    return _sizes(text, "--size")[0] if "," not in text else _bad_size(text)


def _bad_size(text: str) -> int:
    raise argparse.ArgumentTypeError(f"invalid --size {text!r}: one size; use --sweep for several")


def register(sub) -> None:
    p = sub.add_parser(
        "udp",
        help="datagrams per second, loss, duplicates, reordering and jitter",
        description="Send stamped UDP datagrams to a receiver and count what arrives: "
        "sent, received, lost, duplicated, reordered, RFC 3550 jitter and the kernel's "
        "receive-buffer drops. The sender is a child process. With --target the datagrams "
        "go to HOST:PORT, which must forward them to the receiver (--port), e.g. "
        "'netlab redirect' with --loss. Ctrl-C prints what was measured so far (exit 0).",
    )
    p.add_argument("--size", type=_size, default=DEFAULT_SIZE, metavar="BYTES",
                   help=f"UDP payload size (default {DEFAULT_SIZE}, at least 20 for the stamp)")
    _common.add_common_flags(p, DEFAULT_SECONDS)
    p.add_argument("--rate", type=_common.positive_float, default=0.0, metavar="PPS",
                   help="datagrams per second (default: as fast as possible)")
    p.add_argument("--backend", choices=_common.BACKENDS, default=None,
                   help="cython: sendmmsg/recvmmsg batches with the GIL released; "
                   "python: one system call per datagram, the readable reference")
    p.add_argument("--sweep", type=_sizes, metavar="SIZES",
                   help="run several sizes one after the other, e.g. 64,512,1400")
    p.add_argument("--rcvbuf", type=_common.byte_count, metavar="BYTES",
                   help="receive buffer to ask for (SO_RCVBUF; SO_RCVBUFFORCE when privileged)")
    p.add_argument("--target", type=_common.host_port, metavar="HOST:PORT",
                   help="send to HOST:PORT, a forwarder to the receiver (see --port)")
    p.add_argument("--port", type=port_number, default=0,
                   help="the receiver's UDP port (default 0: the OS picks)")
    p.add_argument("--host", default="127.0.0.1", help="the receiver's address (default 127.0.0.1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _common.check_plot_path(args.plot)
    _common.check_target_port(args, "udp")
    sizes = args.sweep or [args.size]
    progress = _common.Progress()
    results = []
    with _common.StopFlag() as stop:
        for size in sizes:
            if stop.set:
                break             # Ctrl-C between two sizes: report the ones measured
            results.append(run_udp(size=size, seconds=args.seconds, rate=args.rate,
                                   backend=args.backend, rcvbuf=args.rcvbuf, target=args.target,
                                   host=args.host, port=args.port, progress=progress, stop=stop))
    progress.done()
    if not results:
        print("netlab: interrupted before anything was measured", file=sys.stderr)
        return 0
    r0 = results[0]
    notes = [f"backend {r0['backend']} ("
             + ("sendmmsg/recvmmsg, up to " + str(r0['batch']) + " datagrams per call"
                if r0["backend"] == "cython" else "one system call per datagram")
             + f"), receive buffer {r0['rcvbuf']} bytes"
             + (f", paced at {r0['rate']:g} datagrams/s" if r0["rate"] else "")
             + (f", via {r0['target']}" if r0["target"] else "")]
    if args.rcvbuf and r0["rcvbuf"] < args.rcvbuf:
        notes.append(f"note: the kernel granted {r0['rcvbuf']} of {args.rcvbuf} bytes "
                     "(net.core.rmem_max caps unprivileged processes)")
    if any(r["interrupted"] for r in results):
        notes.append("interrupted: the figures cover the time measured before Ctrl-C")
    if any(r.get("send_error") for r in results):
        notes.append("sender errors: " + ", ".join(sorted({r["send_error"] for r in results
                                                           if r.get("send_error")})))
    _common.emit(args, results, COLUMNS, notes, single=not args.sweep)
    if args.plot:
        labels = [f"{r['size']} B" for r in results]
        _common.plot(args.plot, f"netlab bench udp ({r0['backend']})", "datagram size", labels,
                     [("received datagrams/s", [r["recv_pps"] for r in results])],
                     ylabel2=("loss %", [r["loss_percent"] for r in results]),
                     command=_common.command_line())
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--sender":
    sys.exit(_sender_main(json.loads(sys.argv[2])))
