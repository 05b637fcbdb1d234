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
from netlab.binding import bind_socket, family_for, format_address
from netlab.bench import _common, _remote
from netlab.errors import NetlabError, UsageError

__all__ = ["DEFAULT_SECONDS", "DEFAULT_SIZE", "client_udp", "default_rcvbuf", "kernel_drops",
           "register", "run", "run_udp", "send_for", "serve_udp"]

DEFAULT_SIZE = 64
DEFAULT_SECONDS = 3.0
MAX_SIZE = 65507          # the largest UDP payload over IPv4
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)   # Linux: root may exceed rmem_max
CHUNK_NS = 50_000_000     # loops return to Python every 50 ms (progress, Ctrl-C)
DEFAULT_NAP_US = 100.0    # the receiver's nap once its queue is drained
MAX_GSO = 64              # datagrams per GSO send (the kernel's UDP_MAX_SEGMENTS)


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


# --- sizing the receive buffer, GSO ---------------------------------------------

# What one datagram costs in the receive buffer: the kernel charges its whole
# buffer ("truesize"), about 768 bytes of bookkeeping on top of the payload
# on Linux (a 64-byte datagram takes 832 bytes: the default 212,992 bytes
# hold only 256 of them, under 1 ms at 400,000 datagrams/s).
OVERHEAD = 768
HOLD_SECONDS = 0.05       # the default buffer absorbs a 50 ms stall of the receiver
UNPACED_RATE = 1_000_000  # the rate assumed when sending as fast as possible
MIN_AUTO_RCVBUF = 256 * 1024
MAX_AUTO_RCVBUF = 32 << 20
SOL_UDP = 17
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)   # Linux 4.18+


def default_rcvbuf(size: int, rate: float = 0.0) -> int:
    """The receive buffer to ask for: room for HOLD_SECONDS of datagrams at ``rate``.

    ``rate`` 0 (as fast as possible) assumes UNPACED_RATE. The kernel doubles
    what it is asked (half is for its bookkeeping), so we ask half of
    ``rate x HOLD_SECONDS x (size + OVERHEAD)``, within 256 KiB to 32 MiB.
    """
    need = (rate or UNPACED_RATE) * HOLD_SECONDS * (size + OVERHEAD) / 2
    return int(min(max(need, MIN_AUTO_RCVBUF), MAX_AUTO_RCVBUF))


def enable_gso(sock: socket.socket, size: int) -> None:
    """Let the kernel cut every send into ``size``-byte datagrams (UDP_SEGMENT)."""
    try:
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, size)
    except OSError as exc:
        raise NetlabError(f"--gso: this kernel has no UDP segmentation offload (UDP_SEGMENT: "
                          f"{exc.strerror or exc}); run without --gso") from None


def check_gso(gso: int, size: int, rate: float) -> None:
    if not gso:
        return
    if rate:
        raise UsageError("--gso and --rate exclude each other: GSO sends bursts of "
                         f"{gso} datagrams; pace without --gso")
    if gso * size > MAX_SIZE:
        raise UsageError(f"--gso {gso} x --size {size} is {gso * size} bytes, more than one "
                         f"UDP send may carry ({MAX_SIZE}); use --gso {max(MAX_SIZE // size, 1)} "
                         "or less")


# --- the two loops -------------------------------------------------------------

def send_for(io, sock: socket.socket, size: int, seconds: float, rate: float = 0.0, gso: int = 0,
             stopped=lambda: False, report=lambda sent: None) -> Dict[str, Any]:
    """Send stamped datagrams on the connected ``sock`` for ``seconds``.

    Returns to Python every 50 ms to look at ``stopped()`` and ``report(sent)``
    the count so far. The result is what the receiver needs: ``sent``,
    ``seconds``, ``errors``, ``last_errno``.
    """
    if gso:
        enable_gso(sock, size)
    t0 = io.monotonic_ns()
    end = t0 + int(seconds * 1e9)
    seq = sent = errors = last_errno = 0
    next_report = t0
    now = t0
    while now < end:
        s, e, err = io.udp_send(sock, size, seq, t0, rate, min(end, now + CHUNK_NS), gso)
        seq += s
        sent += s
        errors += e
        last_errno = err or last_errno
        now = io.monotonic_ns()
        if stopped():
            break
        if now >= next_report:
            report(sent)
            next_report = now + 200_000_000
    return {"sent": sent, "seconds": (io.monotonic_ns() - t0) / 1e9, "errors": errors,
            "last_errno": last_errno}


class Receiver:
    """The receiving end of one run: a socket, its counters, its kernel drops."""

    def __init__(self, io, sock: socket.socket, size: int, nap_us: float,
                 progress: _common.Progress) -> None:
        self.io = io
        self.sock = sock
        self.size = size
        self.nap_ns = int(nap_us * 1000)
        self.bufsize = max(size, 2048)
        self.progress = progress
        self.counters = io.UdpCounters()
        self.drops_before = kernel_drops(sock) or 0
        self.start = io.monotonic_ns()

    def chunk(self, sent: int = 0) -> int:
        """Receive for up to 50 ms, then redraw the progress line."""
        io, c = self.io, self.counters
        got = io.udp_recv(self.sock, c, io.monotonic_ns() + CHUNK_NS, self.bufsize, self.nap_ns)
        # The receiver's own view of loss so far: gaps below the highest
        # sequence number seen (the sender's count lags).
        expected = c.highest_seq + 1
        lost = max(expected - c.received, 0)
        elapsed = (io.monotonic_ns() - self.start) / 1e9
        self.progress.update(
            f"udp {self.size} B: sent {_common.si(max(sent, expected))}, "
            f"received {_common.si(c.received)} "
            f"({_common.si(c.received / elapsed if elapsed > 0 else 0.0)}/s), lost so far "
            f"{100.0 * lost / expected if expected else 0.0:.1f}%")
        return got

    def drain(self, silence_ns: int) -> None:
        """Take what is still in flight: until ``silence_ns`` without a datagram, or 3 s."""
        io = self.io
        end = io.monotonic_ns() + 3_000_000_000
        while io.monotonic_ns() < end:
            if io.udp_recv(self.sock, self.counters, io.monotonic_ns() + silence_ns,
                           self.bufsize, self.nap_ns) == 0:
                break
        self.progress.done()

    def drops(self) -> Optional[int]:
        after = kernel_drops(self.sock)
        return None if after is None else after - self.drops_before


def _discard_queued(sock: socket.socket) -> None:
    """Empty the receive queue (datagrams left over from an earlier test)."""
    for _ in range(1_000_000):
        try:
            sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            continue


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
        stdin = sys.stdin.fileno()
        info = send_for(io, sock, spec["size"], spec["seconds"], spec["rate"], spec.get("gso", 0),
                        stopped=lambda: bool(select.select([stdin], [], [], 0)[0]),
                        report=lambda sent: print(f"p {sent}", flush=True))
    except (OSError, NetlabError) as exc:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print("r " + json.dumps({"error": f"cannot send to {host}:{port}: {text}"}), flush=True)
        return 1
    finally:
        sock.close()
    print("r " + json.dumps(info), flush=True)
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


# --- one measurement on this host ----------------------------------------------

def _check_size(size: int) -> None:
    if not 20 <= size <= MAX_SIZE:
        raise UsageError(f"invalid --size {size}: a stamped datagram has 20 to {MAX_SIZE} bytes")


def run_udp(size: int = DEFAULT_SIZE, seconds: float = DEFAULT_SECONDS, rate: float = 0.0,
            backend: Optional[str] = None, rcvbuf: Optional[int] = None,
            target: Optional[Tuple[str, int]] = None, host: str = "127.0.0.1", port: int = 0,
            progress: Optional[_common.Progress] = None,
            stop: Optional[_common.StopFlag] = None, gso: int = 0,
            nap_us: float = DEFAULT_NAP_US) -> Dict[str, Any]:
    """Measure one UDP run and return the result dict (what ``--json`` prints).

    ``rate`` is datagrams per second (0: as fast as possible); ``target`` a
    forwarder in front of the receiver (see the module docstring). ``rcvbuf``
    None sizes the receive buffer for the rate (:func:`default_rcvbuf`);
    ``gso`` > 0 sends that many datagrams per system call through UDP
    segmentation offload; ``nap_us`` is the receiver's nap (0: block).
    Ctrl-C (or ``stop.set``) ends the run early with ``interrupted`` set.
    """
    _check_size(size)
    check_gso(gso, size, rate)
    io = _common.netio(backend)
    progress = progress or _common.Progress(enabled=False)
    sock = bind_socket("udp", host, port)
    sender = None
    try:
        asked = rcvbuf or default_rcvbuf(size, rate)
        granted = set_rcvbuf(sock, asked)
        dest = target or sock.getsockname()[:2]
        rx = Receiver(io, sock, size, nap_us, progress)
        sender = _Sender({"backend": io.BACKEND, "target": list(dest), "size": size,
                          "seconds": seconds, "rate": rate, "gso": gso})
        interrupted = False
        # Hard bound: sending time plus generous start-up and drain time.
        hard_end = rx.start + int((seconds + 15) * 1e9)
        with _common.stop_context(stop) as flag:
            while sender.result is None and io.monotonic_ns() < hard_end and not flag.set:
                rx.chunk(sender.sent)
                sender.poll()
            if flag.set and sender.result is None:
                # Ctrl-C: the sender stops and tells how many it sent.
                interrupted = True
                sender.stop()
                wait_end = io.monotonic_ns() + 2_000_000_000
                while sender.result is None and io.monotonic_ns() < wait_end:
                    rx.chunk(sender.sent)
                    sender.poll()
        if sender.result is None:
            sender.stop()
            raise NetlabError("the UDP sender did not report back in time; try again "
                              "(is the machine very busy?)")
        if "error" in sender.result:
            raise NetlabError(sender.result["error"])
        # Stop after 0.2 s of silence (1 s through a forwarder, which may
        # delay datagrams on purpose).
        rx.drain(1_000_000_000 if target else 200_000_000)
        drops = rx.drops()
    finally:
        if sender is not None:
            sender.close()
        sock.close()
    return _result(size, sender.result, rx.counters.result(), io, granted, rate, target,
                   drops, interrupted, asked=asked, gso=gso, nap_us=nap_us)


# --- two hosts: --server and --client ------------------------------------------

def serve_udp(host: str = "0.0.0.0", port: int = _remote.DEFAULT_PORT, once: bool = False,
              backend: Optional[str] = None, nap_us: float = DEFAULT_NAP_US,
              on_listening=print, on_result=print, stop=None) -> int:
    """``bench udp --server``: receive the tests of ``--client`` hosts, one at a time.

    Control over TCP on ``port``, the datagrams on the same port over UDP.
    """
    io = _common.netio(backend)
    sock = bind_socket("udp", host, port if port else 0)
    if not port:
        port = sock.getsockname()[1]   # port 0: the same number for the control socket

    def handler(ctrl, hello):
        size, seconds = hello.get("size"), hello.get("seconds")
        rate, rcvbuf = hello.get("rate") or 0.0, hello.get("rcvbuf")
        if not (isinstance(size, int) and _remote.number(size, 20, MAX_SIZE)
                and _remote.number(seconds, 1e-3, _common.MAX_SECONDS)
                and _remote.number(rate, 0, 1e9)
                and (rcvbuf is None or _remote.number(rcvbuf, 1, 1 << 30))):
            _remote.reply(ctrl, "udp", error="bad test parameters")
            raise NetlabError(f"{ctrl.peer} sent bad test parameters")
        asked = int(rcvbuf or default_rcvbuf(size, rate))
        granted = set_rcvbuf(sock, asked)
        _discard_queued(sock)
        rx = Receiver(io, sock, size, nap_us, _common.Progress())
        _remote.reply(ctrl, "udp", ok=True, port=port, rcvbuf=granted, backend=io.BACKEND,
                      nap_us=nap_us)
        hard_end = rx.start + int((seconds + 15) * 1e9)
        while not ctrl.ready() and io.monotonic_ns() < hard_end:
            rx.chunk()
        done = _remote.check_done(ctrl, ctrl.receive(5.0, "end of test").get("done"))
        rx.drain(300_000_000)
        gso = done.get("gso") if isinstance(done.get("gso"), int) else 0
        result = _result(size, {"sent": done["sent"], "seconds": done["seconds"]},
                         rx.counters.result(), io, granted, rate, None, rx.drops(),
                         done.get("interrupted") is True, asked=asked, gso=gso, nap_us=nap_us)
        result.update(role="server", client=ctrl.peer.split(" at ")[-1],
                      sender_backend=done.get("backend") if done.get("backend") in _common.BACKENDS
                      else None)
        ctrl.send({"result": result})
        return result

    try:
        return _remote.serve("udp", host, port, handler, once=once, on_listening=on_listening,
                             on_result=on_result, stop=stop,
                             extra_listen=f"udp://{format_address(host, port)} (data)")
    finally:
        sock.close()


def client_udp(host: str, port: int = _remote.DEFAULT_PORT, size: int = DEFAULT_SIZE,
               seconds: float = DEFAULT_SECONDS, rate: float = 0.0, rcvbuf: Optional[int] = None,
               backend: Optional[str] = None, gso: int = 0,
               progress: Optional[_common.Progress] = None,
               stop: Optional[_common.StopFlag] = None) -> Dict[str, Any]:
    """``bench udp --client HOST``: send to a ``--server`` there; its counts come back."""
    _check_size(size)
    check_gso(gso, size, rate)
    io = _common.netio(backend)
    progress = progress or _common.Progress(enabled=False)
    ctrl, answer = _remote.connect("udp", host, port, {
        "size": size, "seconds": seconds, "rate": rate, "rcvbuf": rcvbuf})
    sock = socket.socket(family_for(host), socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _common.timeval(0.1))
        try:
            sock.connect((host, int(answer.get("port") or port)))
        except OSError as exc:
            raise NetlabError(f"cannot send to {host}: {exc.strerror or exc}") from None
        with _common.stop_context(stop) as flag:
            info = send_for(io, sock, size, seconds, rate, gso,
                            stopped=lambda: flag.set or ctrl.ready(),
                            report=lambda sent: progress.update(
                                f"udp {size} B to {host}: sent {_common.si(sent)}"))
            info.update(interrupted=flag.set, gso=gso, backend=io.BACKEND)
        progress.done()
        ctrl.send({"done": info})
        result = ctrl.receive(10.0, "result").get("result")
    finally:
        sock.close()
        ctrl.close()
    if not isinstance(result, dict):
        raise NetlabError(f"the server at {format_address(host, port)} sent no result")
    result.update(role="client", server=format_address(host, port),
                  sender_backend=io.BACKEND)
    return result


def _result(size: int, sent_info: Dict[str, Any], got: Dict[str, Any], io, rcvbuf: int, rate: float,
            target, drops: Optional[int], interrupted: bool, asked: Optional[int] = None,
            gso: int = 0, nap_us: float = DEFAULT_NAP_US) -> Dict[str, Any]:
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
        "rcvbuf_asked": asked,
        "nap_us": nap_us,
        "gso": gso or None,
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
        help="datagrams per second, loss, duplicates, reordering and jitter (one host or two)",
        description="Send stamped UDP datagrams to a receiver and count what arrives: "
        "sent, received, lost, duplicated, reordered, RFC 3550 jitter and the kernel's "
        "receive-buffer drops. On one host the sender is a child process. With --target the "
        "datagrams go to HOST:PORT, which must forward them to the receiver (--port), e.g. "
        "'netlab redirect' with --loss. On two hosts run --server on the receiving one and "
        "--client HOST on the sending one. The receive buffer is sized for the rate unless "
        "--rcvbuf says otherwise. Ctrl-C prints what was measured so far (exit 0).",
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
                   help="receive buffer to ask for (SO_RCVBUF; SO_RCVBUFFORCE when privileged); "
                   f"default: room for {HOLD_SECONDS * 1000:g} ms at the rate (--rate, or "
                   f"{UNPACED_RATE:,}/s unpaced), {MIN_AUTO_RCVBUF >> 10} KiB to "
                   f"{MAX_AUTO_RCVBUF >> 20} MiB; the kernel reports twice what it was asked")
    p.add_argument("--gso", type=_gso, default=0, metavar="N",
                   help="sender: N datagrams per send through UDP segmentation offload "
                   "(UDP_SEGMENT, Linux 4.18+; 1-64); the receiver still reads and counts "
                   "separate datagrams (no GRO)")
    p.add_argument("--nap", type=_nap, default=DEFAULT_NAP_US, metavar="US",
                   help=f"receiver: drain the queue at every wake-up, and when blocking "
                   "until the next datagram brought only a few, nap US microseconds instead "
                   f"(default {DEFAULT_NAP_US:g}; 0: always block)")
    p.add_argument("--target", type=_common.host_port, metavar="HOST:PORT",
                   help="send to HOST:PORT, a forwarder to the receiver (see --port)")
    p.add_argument("--port", type=port_number, default=None,
                   help="the receiver's UDP port (default 0: the OS picks); with --server or "
                   f"--client the control port, also the UDP data port (default "
                   f"{_remote.DEFAULT_PORT})")
    p.add_argument("--host", default=None,
                   help="the receiver's address (default 127.0.0.1; with --server: all, 0.0.0.0)")
    _remote.add_flags(p, "udp")
    p.set_defaults(func=run)


def _gso(text: str) -> int:
    value = _common.positive_int(text)
    if value > MAX_GSO:
        raise argparse.ArgumentTypeError(f"invalid --gso {value}: the kernel takes 1 to "
                                         f"{MAX_GSO} datagrams per send")
    return value


def _nap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"invalid --nap {text!r}: microseconds from 0 to 100000")
    return value


def _notes(args: argparse.Namespace, results: List[Dict[str, Any]]) -> List[str]:
    r0 = results[0]
    notes = [f"backend {r0['backend']} ("
             + ("sendmmsg/recvmmsg, up to " + str(r0['batch']) + " datagrams per call"
                if r0["backend"] == "cython" else "one system call per datagram")
             + (f", receiver naps {r0['nap_us']:g} us when blocking does not pay"
                if r0.get("nap_us") else ", receiver blocks")
             + f"), receive buffer {r0['rcvbuf']} bytes"
             + (" (asked " + str(r0["rcvbuf_asked"]) + (", sized for the rate" if not args.rcvbuf
                                                        else "") + ")"
                if r0.get("rcvbuf_asked") else "")
             + (f", paced at {r0['rate']:g} datagrams/s" if r0["rate"] else "")
             + (f", via {r0['target']}" if r0["target"] else "")]
    if r0.get("gso"):
        notes.append(f"GSO: the sender handed the kernel {r0['gso']} datagrams per send "
                     "(UDP_SEGMENT); the receiver read and counted each datagram (no GRO)")
    if r0.get("role") == "client":
        notes.append(f"two hosts: sent from here to the server at {r0['server']}; "
                     "received, lost and kernel drops counted there")
    if r0.get("role") == "server":
        notes.append(f"two hosts: sent by the client at {r0['client']}, received here")
    if r0.get("rcvbuf_asked") and r0["rcvbuf"] < r0["rcvbuf_asked"]:
        notes.append(f"note: the kernel granted {r0['rcvbuf']} of {r0['rcvbuf_asked']} bytes "
                     "(net.core.rmem_max caps unprivileged processes)")
    if any(r["interrupted"] for r in results):
        notes.append("interrupted: the figures cover the time measured before Ctrl-C")
    if any(r.get("send_error") for r in results):
        notes.append("sender errors: " + ", ".join(sorted({r["send_error"] for r in results
                                                           if r.get("send_error")})))
    return notes


def run(args: argparse.Namespace) -> int:
    _common.check_plot_path(args.plot)
    _remote.check_flags(args, "udp", ("--target", "--sweep") if args.client else
                        ("--target", "--sweep", "--rate", "--rcvbuf", "--gso", "--plot"))
    if args.server:
        return _serve(args)
    if args.client and args.host:
        raise UsageError("--host is the receiver's own address; with --client name the server "
                         "as --client HOST")
    _common.check_target_port(args, "udp")
    check_gso(args.gso, args.size, args.rate)
    sizes = args.sweep or [args.size]
    progress = _common.Progress()
    results = []
    with _common.StopFlag() as stop:
        for size in sizes:
            if stop.set:
                break             # Ctrl-C between two sizes: report the ones measured
            if args.client:
                results.append(client_udp(args.client, args.port, size, args.seconds, args.rate,
                                          args.rcvbuf, args.backend, args.gso, progress, stop))
                continue
            results.append(run_udp(size=size, seconds=args.seconds, rate=args.rate,
                                   backend=args.backend, rcvbuf=args.rcvbuf, target=args.target,
                                   host=args.host or "127.0.0.1", port=args.port,
                                   progress=progress, stop=stop, gso=args.gso, nap_us=args.nap))
    progress.done()
    if not results:
        print("netlab: interrupted before anything was measured", file=sys.stderr)
        return 0
    _common.emit(args, results, COLUMNS, _notes(args, results), single=not args.sweep)
    if args.plot:
        labels = [f"{r['size']} B" for r in results]
        _common.plot(args.plot, f"netlab bench udp ({results[0]['backend']})", "datagram size",
                     labels, [("received datagrams/s", [r["recv_pps"] for r in results])],
                     ylabel2=("loss %", [r["loss_percent"] for r in results]),
                     command=_common.command_line())
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    def show(result: Dict[str, Any]) -> None:
        _common.emit(args, [result], COLUMNS, [] if args.json else _notes(args, [result]))

    with _common.StopFlag() as stop:
        return serve_udp(args.host or "0.0.0.0", args.port, once=args.once, backend=args.backend,
                         nap_us=args.nap, on_listening=_common.listening_printer(args),
                         on_result=show, stop=stop)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--sender":
    sys.exit(_sender_main(json.loads(sys.argv[2])))
