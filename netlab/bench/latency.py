"""``netlab bench latency``: one request at a time, how long is a round trip?

``bench echo`` keeps many clients busy and measures what a *server* sustains;
this experiment measures what *one* exchange costs: a client sends ``--size``
bytes to an echo server, waits until all of them came back, records the
time, and sends the next (a ping-pong, like sockperf's ``ping-pong`` mode).
The result is the distribution of round-trip times: p50, p99, p99.9 and max
(nearest rank over every round trip), and the round trips per second that
one waiting client gets.

Over UDP a request that gets no answer within 200 ms counts as ``lost`` and
the next one goes out; a late answer to an earlier request is recognised
(every request carries its number) and ignored. Over TCP the echo must come
back whole.

Without ``--target`` the echo server is netlab's own, in a child process
with a core and a GIL of its own: over TCP the RFC 862 server of
:mod:`netlab.servers` (its default model), over UDP the echo loop of the
socket loops module (``udp_echo``: compiled, batched ``recvmmsg`` /
``sendmmsg``, or the Python twin with ``--backend python``). With
``--target HOST:PORT`` any echo server is measured (xinetd's, socat's, a
real machine's). The first 0.1 s warm the path up and are not counted.
Ctrl-C stops early and reports what was measured so far (exit status 0).
"""
from __future__ import annotations

import argparse
import os
import select
import socket
import sys
from typing import Any, Dict, List, Optional, Tuple

from netlab.bench import _common
from netlab.bench.echo import serve_in_child
from netlab.errors import NetlabError, UsageError

__all__ = ["DEFAULT_SECONDS", "DEFAULT_SIZE", "register", "run", "run_latency", "udp_echo_in_child"]

DEFAULT_SECONDS = 3.0
DEFAULT_SIZE = 64
MAX_UDP_SIZE = 65507
MAX_TCP_SIZE = 65536
CHUNK_NS = 50_000_000
WARMUP_NS = 100_000_000
TIMEOUT_NS = 200_000_000       # a UDP request without an answer by then is lost


# --- netlab's UDP echo loop in a child process -------------------------------------

def _serve_udp_main(backend: str) -> int:
    """Body of the UDP echo child: print the port, echo until stdin closes."""
    io = _common.netio(backend)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(f"port {sock.getsockname()[1]}", flush=True)
    stdin = sys.stdin.fileno()
    try:
        while True:
            io.udp_echo(sock, io.monotonic_ns() + CHUNK_NS)
            if select.select([stdin], [], [], 0)[0] and not os.read(stdin, 1):
                break                      # the parent closed our stdin (or went away)
    finally:
        sock.close()
    return 0


class udp_echo_in_child(serve_in_child):
    """``with udp_echo_in_child(backend) as (host, port):`` the UDP echo loop, own process."""

    def __init__(self, backend: str, timeout: float = 15.0) -> None:
        super().__init__(f"udp echo loop ({backend})", timeout)
        self.backend = backend

    def command(self) -> List[str]:
        return [sys.executable, "-m", "netlab.bench.latency", "--serve-udp", self.backend]


# --- the measurement ----------------------------------------------------------------

def _percentiles(samples: List[int]) -> Dict[str, Optional[float]]:
    lat = sorted(samples)
    out = {}
    for key, p in (("p50_us", 50), ("p99_us", 99), ("p999_us", 99.9)):
        v = _common.percentile(lat, p)
        out[key] = None if v is None else round(v / 1000, 2)
    out["min_us"] = round(lat[0] / 1000, 2) if lat else None
    out["max_us"] = round(lat[-1] / 1000, 2) if lat else None
    out["mean_us"] = round(sum(lat) / len(lat) / 1000, 2) if lat else None
    return out


def measure(host: str, port: int, udp: bool, size: int = DEFAULT_SIZE,
            seconds: float = DEFAULT_SECONDS, backend: Optional[str] = None,
            progress: Optional[_common.Progress] = None,
            stop: Optional[_common.StopFlag] = None) -> Dict[str, Any]:
    """Ping-pong against the echo server at host:port; the result dict (``--json``)."""
    io = _common.netio(backend)
    progress = progress or _common.Progress(enabled=False)
    proto = "udp" if udp else "tcp"
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    except OSError as exc:
        raise NetlabError(f"cannot create a {proto} socket: {exc.strerror or exc}") from None
    samples: List[int] = []
    lost = 0
    interrupted = False
    try:
        try:
            if not udp:
                sock.settimeout(5)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((host, port))
            sock.settimeout(None)
        except OSError as exc:
            raise NetlabError(f"cannot reach the echo server at {host}:{port} over {proto}: "
                              f"{exc.strerror or exc} (is it running? see --target)") from None
        seq = 0
        try:
            # Warm-up: caches, the scheduler and the server's first wake-ups.
            warm, _ = io.ping_pong(sock, size, seq, io.monotonic_ns() + WARMUP_NS, udp, TIMEOUT_NS)
            seq += len(warm) + 1
            start = io.monotonic_ns()
            end = start + int(seconds * 1e9)
            with _common.stop_context(stop) as flag:
                while not flag.set:
                    now = io.monotonic_ns()
                    if now >= end:
                        break
                    got, missed = io.ping_pong(sock, size, seq, min(end, now + CHUNK_NS), udp,
                                               TIMEOUT_NS)
                    samples.extend(got)
                    lost += missed
                    seq += len(got) + missed
                    progress.update(f"latency {proto} {size} B: {len(samples):,} round trips, "
                                    f"last {got[-1] / 1000 if got else 0:.1f} us")
                interrupted = flag.set
            elapsed = max((io.monotonic_ns() - start) / 1e9, 1e-9)
        except OSError as exc:
            raise NetlabError(f"the echo server at {host}:{port} failed the ping-pong: "
                              f"{exc.strerror or exc}") from None
    finally:
        sock.close()
        progress.done()
    if not samples:
        raise NetlabError(f"no answer from the echo server at {host}:{port} over {proto} "
                          f"({lost} requests lost): is it an echo server?")
    result = {"protocol": proto, "size": size, "round_trips": len(samples), "lost": lost,
              "seconds": round(elapsed, 3), "rtps": round(len(samples) / elapsed, 1)}
    result.update(_percentiles(samples))
    result.update(backend=io.BACKEND, interrupted=interrupted)
    return result


def run_latency(udp: bool = False, size: int = DEFAULT_SIZE, seconds: float = DEFAULT_SECONDS,
                backend: Optional[str] = None, target: Optional[Tuple[str, int]] = None,
                progress: Optional[_common.Progress] = None,
                stop: Optional[_common.StopFlag] = None) -> Dict[str, Any]:
    """One latency run against ``target`` or netlab's own echo server (in a child)."""
    limit = MAX_UDP_SIZE if udp else MAX_TCP_SIZE
    if not 1 <= size <= limit:
        raise UsageError(f"invalid --size {size}: choose 1 to {limit} bytes over "
                         f"{'UDP' if udp else 'TCP'}")
    if target is not None:
        result = measure(target[0], target[1], udp, size, seconds, backend, progress, stop)
        result.update(server=f"{target[0]}:{target[1]}", target=f"{target[0]}:{target[1]}")
        return result
    io = _common.netio(backend)
    if udp:
        child, name = udp_echo_in_child(io.BACKEND), f"netlab udp_echo ({io.BACKEND})"
    else:
        from netlab import servers

        model = servers.DEFAULT_MODEL
        child, name = serve_in_child(model), f"netlab echo ({model})"
    with child as (host, port):
        result = measure(host, port, udp, size, seconds, io.BACKEND, progress, stop)
    result.update(server=name, target=None)
    return result


# --- command line ---------------------------------------------------------------------

COLUMNS = [("server", "server"), ("protocol", "proto"), ("size", "size"),
           ("round_trips", "round trips"), ("lost", "lost"), ("p50_us", "p50 us"),
           ("p99_us", "p99 us"), ("p999_us", "p99.9 us"), ("max_us", "max us"),
           ("backend", "client")]


def register(sub) -> None:
    p = sub.add_parser(
        "latency",
        help="ping-pong round trips, one at a time: p50, p99, p99.9, max (UDP or TCP)",
        description="Send --size bytes to an echo server, wait for all of them to come back, "
        "repeat: the round-trip times of one waiting client, as percentiles (p50, p99, "
        "p99.9, max). Without --target netlab's own echo runs in a child process (TCP: "
        "netlab's server in its default model; UDP: the echo loop of the chosen --backend). "
        "Ctrl-C prints what was measured so far (exit 0).",
    )
    proto = p.add_mutually_exclusive_group()
    proto.add_argument("--udp", action="store_true", help="UDP datagrams (a lost one is counted)")
    proto.add_argument("--tcp", action="store_true", help="one TCP connection (the default)")
    p.add_argument("--size", type=_common.byte_count, default=DEFAULT_SIZE, metavar="BYTES",
                   help=f"bytes per request (default {DEFAULT_SIZE})")
    _common.add_common_flags(p, DEFAULT_SECONDS)
    p.add_argument("--backend", type=_backends, default=None, metavar="BACKEND",
                   help="client loop (and netlab's UDP echo loop): cython (GIL released) or "
                   "python (the readable reference); both, comma-separated, to compare")
    p.add_argument("--target", type=_common.host_port, metavar="HOST:PORT",
                   help="measure the echo server at HOST:PORT instead (e.g. xinetd's)")
    p.set_defaults(func=run)


def _backends(text: str) -> List[str]:
    return _common.name_list(text, _common.BACKENDS, "--backend", "cython")


def run(args: argparse.Namespace) -> int:
    _common.check_plot_path(args.plot)
    backends = args.backend or [None]
    progress = _common.Progress()
    results = []
    with _common.StopFlag() as stop:
        for backend in backends:
            if stop.set:
                break
            results.append(run_latency(args.udp, args.size, args.seconds, backend, args.target,
                                       progress, stop))
    if not results:
        print("netlab: interrupted before anything was measured", file=sys.stderr)
        return 0
    notes = ["round-trip times in microseconds, nearest-rank percentiles over every round "
             "trip after a 0.1 s warm-up"]
    if any(r["lost"] for r in results):
        notes.append(f"lost: UDP requests without an answer within {TIMEOUT_NS // 1_000_000} ms")
    if any(r["interrupted"] for r in results):
        notes.append("interrupted: the figures cover the time measured before Ctrl-C")
    _common.emit(args, results, COLUMNS, notes, single=len(backends) == 1)
    if args.plot:
        labels = ["p50", "p99", "p99.9", "max"]
        _common.plot(args.plot, f"netlab bench latency, {results[0]['protocol']}, {args.size} B",
                     "percentile", labels,
                     [(f"{r['server']}, client {r['backend']} (us)",
                       [r["p50_us"], r["p99_us"], r["p999_us"], r["max_us"]]) for r in results],
                     command=_common.command_line())
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--serve-udp":
    sys.exit(_serve_udp_main(sys.argv[2]))
