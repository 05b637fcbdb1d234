"""``netlab bench echo``: round trips per second and latency under many clients.

N clients each keep one TCP connection busy in a closed loop: send ``--size``
bytes, wait until all of them came back, record the round-trip time, repeat.
The result is round trips per second over all clients and the latency
percentiles p50 and p99 (nearest rank, over every round trip measured).

Without ``--target`` the server is netlab's own RFC 862 echo server
(:mod:`netlab.servers`) in the concurrency model ``--model``, run in a child
process so that it has a core and a GIL of its own; the clients run here
(the compiled loop in ``netlab._netio`` polls all connections with the GIL
released). ``--model`` may list several models, e.g.
``--model iterative,threaded,selectors``, to compare them side by side: an
iterative server serves one connection at a time, so with 50 clients 49 of
them wait (``stalled``) and the figures show it.

With ``--target HOST:PORT`` any echo server is measured, e.g. xinetd's.
Ctrl-C stops early and reports what was measured so far (exit status 0).
"""
from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

from netlab.bench import _common
from netlab.errors import NetlabError, UsageError

__all__ = ["DEFAULT_CLIENTS", "DEFAULT_SECONDS", "DEFAULT_SIZE", "register", "run", "run_echo",
           "serve_in_child"]

DEFAULT_CLIENTS = 50
DEFAULT_SECONDS = 3.0
DEFAULT_SIZE = 64
# Why there is a cap at all: every client is one connection, so one
# ephemeral port of 127.0.0.1 (Linux offers 28,232 by default,
# net.ipv4.ip_local_port_range) and two open files (this process and the
# server's). 20,000 stays inside both with room to spare; the open-file limit
# is raised to its hard limit when needed, and a clear error names it if
# that is still too low.
MAX_CLIENTS = 20000
MAX_SIZE = 65536
CHUNK_NS = 50_000_000


def _models() -> Tuple[Tuple[str, ...], Optional[str]]:
    """The server models netlab offers and the default one (empty if not available)."""
    try:
        from netlab import servers
    except ImportError:
        return (), None
    return tuple(servers.MODELS), servers.DEFAULT_MODEL


# --- netlab's echo server in a child process ----------------------------------------

def _serve_main(model: str, clients: int) -> int:
    """Body of the server child: start the echo server, print its port, wait for EOF.

    The server takes ``clients`` connections at once (its own default is
    Limits.max_connections, 512), so a large ``--clients`` is not turned away.
    """
    from netlab import servers

    raise_open_files(clients)
    handle = servers.start_server("echo", host="127.0.0.1", port=0, protocols=("tcp",),
                                  model=model,
                                  max_connections=max(clients, servers.Limits().max_connections))
    try:
        print(f"port {handle.ports['tcp']}", flush=True)
        # Serve until the parent closes our stdin (or goes away).
        while True:
            if not os.read(sys.stdin.fileno(), 1):
                break
    finally:
        handle.stop()
    return 0


def raise_open_files(clients: int) -> None:
    """Make room for ``clients`` connections: lift the soft open-file limit if needed."""
    import resource

    need = clients + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise NetlabError(f"--clients {clients} needs {need} open files and the hard limit "
                              f"is {hard}: use fewer clients or raise it (ulimit -Hn, as root)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


class serve_in_child:
    """``with serve_in_child(model) as (host, port):`` netlab's echo server, own process."""

    def __init__(self, model: str, timeout: float = 15.0, clients: int = DEFAULT_CLIENTS) -> None:
        self.model = model
        self.timeout = timeout
        self.clients = clients
        self.proc: Optional[subprocess.Popen] = None

    def command(self) -> List[str]:
        """The child's command line (a subclass may serve something else)."""
        return [sys.executable, "-m", "netlab.bench.echo", "--serve", self.model, str(self.clients)]

    def __enter__(self) -> Tuple[str, int]:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, env=env)  # Ctrl-C reaches the parent only
        fd = self.proc.stdout.fileno()
        if not select.select([fd], [], [], self.timeout)[0]:
            self.__exit__()
            raise NetlabError(f"netlab's echo server ({self.model}) did not start within "
                              f"{self.timeout:.0f} s; try again or use --target")
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        if not line.startswith("port "):
            err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
            self.__exit__()
            raise NetlabError(f"netlab's echo server ({self.model}) failed to start"
                              + (f": {err[-1]}" if err else ""))
        return "127.0.0.1", int(line.split()[1])

    def __exit__(self, *exc) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in (proc.stdout, proc.stderr):
            f.close()


# --- the measurement ------------------------------------------------------------------

def measure(host: str, port: int, clients: int = DEFAULT_CLIENTS, seconds: float = DEFAULT_SECONDS,
            size: int = DEFAULT_SIZE, backend: Optional[str] = None,
            progress: Optional[_common.Progress] = None,
            stop: Optional[_common.StopFlag] = None, label: str = "") -> Dict[str, Any]:
    """Drive ``clients`` closed-loop connections against the echo server at host:port."""
    io = _common.netio(backend)
    progress = progress or _common.Progress(enabled=False)
    raise_open_files(clients)
    socks: List[socket.socket] = []
    interrupted = False
    try:
        # All connections within 10 s, so a server that stops accepting
        # cannot stretch the run.
        connect_end = io.monotonic_ns() + 10_000_000_000
        for _ in range(clients):
            left = (connect_end - io.monotonic_ns()) / 1e9
            try:
                if left <= 0:
                    raise socket.timeout("timed out")
                s = socket.create_connection((host, port), timeout=min(5.0, left))
            except OSError as exc:
                raise NetlabError(f"cannot connect to the echo server at {host}:{port}: "
                                  f"{exc.strerror or exc} (is it running? see --target)") from None
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        load = io.EchoLoad(socks, size)
        start = io.monotonic_ns()
        end = start + int(seconds * 1e9)
        with _common.stop_context(stop) as flag:
            while not flag.set:
                now = io.monotonic_ns()
                if now >= end:
                    break
                load.run(min(end, now + CHUNK_NS))
                elapsed = (io.monotonic_ns() - start) / 1e9
                progress.update(f"echo {label}{clients} clients: {_common.si(load.round_trips)} "
                                f"round trips, {_common.si(load.round_trips / elapsed)}/s")
                if load.errors >= clients:
                    break                       # every connection is gone
            interrupted = flag.set
        elapsed = max((io.monotonic_ns() - start) / 1e9, 1e-9)
        lat = sorted(load.latencies())
        round_trips, errors = load.round_trips, load.errors
        stalled = sum(1 for n in load.per_client() if n == 0)
        load.close()
    finally:
        for s in socks:
            s.close()
        progress.done()
    p50, p99 = _common.percentile(lat, 50), _common.percentile(lat, 99)
    return {
        "clients": clients,
        "round_trips": round_trips,
        "rtps": round(round_trips / elapsed, 1),
        "p50_us": None if p50 is None else round(p50 / 1000, 1),
        "p99_us": None if p99 is None else round(p99 / 1000, 1),
        "seconds": round(elapsed, 3),
        "size": size,
        "errors": errors,
        "stalled": stalled,
        "backend": io.BACKEND,
        "interrupted": interrupted,
    }


def run_echo(clients: int = DEFAULT_CLIENTS, seconds: float = DEFAULT_SECONDS,
             size: int = DEFAULT_SIZE, model: Optional[str] = None,
             target: Optional[Tuple[str, int]] = None, backend: Optional[str] = None,
             progress: Optional[_common.Progress] = None,
             stop: Optional[_common.StopFlag] = None) -> Dict[str, Any]:
    """Measure one echo run; return the result dict (what ``--json`` prints).

    ``target`` measures any echo server; otherwise netlab's own in ``model``
    (default: netlab.servers.DEFAULT_MODEL) runs in a child process.
    """
    if not 1 <= clients <= MAX_CLIENTS:
        raise UsageError(f"invalid --clients {clients}: choose 1 to {MAX_CLIENTS}")
    if not 1 <= size <= MAX_SIZE:
        raise UsageError(f"invalid --size {size}: choose 1 to {MAX_SIZE} bytes")
    if target is not None:
        result = measure(target[0], target[1], clients, seconds, size, backend, progress, stop)
        result.update(model=None, target=f"{target[0]}:{target[1]}",
                      server=f"{target[0]}:{target[1]}")
        return result
    models, default = _models()
    if not models:
        raise NetlabError("netlab's echo server (netlab.servers) is not available here; "
                          "measure another echo server with --target HOST:PORT")
    model = model or default
    if model not in models:
        raise UsageError(f"unknown --model {model!r}: choose from {', '.join(models)}")
    with serve_in_child(model, clients=clients) as (host, port):
        result = measure(host, port, clients, seconds, size, backend, progress, stop,
                         label=f"{model}, ")
    result.update(model=model, target=None, server=f"netlab {model}")
    return result


# --- command line ---------------------------------------------------------------------

COLUMNS = [("server", "server"), ("clients", "clients"), ("round_trips", "round trips"),
           ("rtps", "round trips/s"), ("p50_us", "p50 us"), ("p99_us", "p99 us"),
           ("stalled", "stalled"), ("errors", "errors")]


def register(sub) -> None:
    models, default = _models()
    p = sub.add_parser(
        "echo",
        help="echo round trips per second and latency (p50, p99) under many clients",
        description="Keep --clients TCP connections busy in a closed loop against an echo "
        "server and report round trips per second and latency percentiles. Without --target "
        "netlab's own echo server runs in the concurrency model --model (several, comma-"
        "separated, to compare). Ctrl-C prints what was measured so far (exit 0).",
    )
    p.add_argument("--clients", type=_common.positive_int, default=DEFAULT_CLIENTS, metavar="N",
                   help=f"concurrent connections (default {DEFAULT_CLIENTS}, at most "
                   f"{MAX_CLIENTS:,}: each takes an ephemeral port and two open files; "
                   "netlab's own server is started to take them all, beyond its default "
                   "of 512 connections)")
    _common.add_common_flags(p, DEFAULT_SECONDS)
    p.add_argument("--size", type=_common.byte_count, default=DEFAULT_SIZE, metavar="BYTES",
                   help=f"bytes per request (default {DEFAULT_SIZE})")
    p.add_argument("--model", type=_model_list, metavar="MODEL",
                   help="server concurrency model" + (f": {', '.join(models)} (default {default}); "
                                                       "several, comma-separated, to compare"
                                                       if models else ""))
    p.add_argument("--target", type=_common.host_port, metavar="HOST:PORT",
                   help="measure the echo server at HOST:PORT instead (e.g. xinetd's)")
    p.add_argument("--backend", choices=_common.BACKENDS, default=None,
                   help="client loop: cython (poll with the GIL released) or python (selectors)")
    p.set_defaults(func=run)


def _model_list(text: str) -> List[str]:
    return _common.name_list(text, _models()[0], "--model", "threaded")


def run(args: argparse.Namespace) -> int:
    _common.check_plot_path(args.plot)
    if args.target and args.model:
        raise UsageError("--model and --target exclude each other: --model picks netlab's "
                         "own server, --target measures another one")
    if not 1 <= args.clients <= MAX_CLIENTS:
        raise UsageError(f"invalid --clients {args.clients}: choose 1 to {MAX_CLIENTS}")
    if not 1 <= args.size <= MAX_SIZE:
        raise UsageError(f"invalid --size {args.size}: choose 1 to {MAX_SIZE} bytes")
    models = args.model or [None]
    progress = _common.Progress()
    results = []
    with _common.StopFlag() as stop:
        for model in models:
            if stop.set:
                break
            results.append(run_echo(clients=args.clients, seconds=args.seconds, size=args.size,
                                    model=model, target=args.target, backend=args.backend,
                                    progress=progress, stop=stop))
    if not results:
        print("netlab: interrupted before anything was measured", file=sys.stderr)
        return 0
    notes = []
    if args.target:
        notes.append(f"server: {args.target[0]}:{args.target[1]}")
    if any(r["interrupted"] for r in results):
        notes.append("interrupted: the figures cover the time measured before Ctrl-C")
    if any(r["stalled"] for r in results):
        notes.append("stalled: connections that never got an answer (the server served "
                     "others: an iterative server takes one connection at a time)")
    if any(r["errors"] for r in results):
        notes.append("errors: connections the server closed or reset during the run")
    _common.emit(args, results, COLUMNS, notes, single=len(models) == 1)
    if args.plot:
        labels = [r["server"] for r in results]
        _common.plot(args.plot, f"netlab bench echo, {args.clients} clients, {args.size} B",
                     "server", labels, [("round trips/s", [r["rtps"] for r in results])],
                     ylabel2=("p99 latency (us)", [r["p99_us"] or 0 for r in results]),
                     command=_common.command_line())
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--serve":
    sys.exit(_serve_main(sys.argv[2], int(sys.argv[3])))
