"""Lab 7: concurrency — iterative, threaded and selectors servers under 50 clients, measured.

Each server is started in the sandbox and 50 grader clients connect at once.
Every client says hello, waits a moment (a "slow" client, like a person
typing), says bye, and checks both echoes. The grader measures the wall time
and samples the server process's thread count from ``/proc/PID/status``, so a
"selectors" server that secretly starts threads is caught.
"""
from __future__ import annotations

import os
import socket
import threading
import time

from netlab.labs._peers import HOST, read_to_eof
from netlab.labs._probes import server
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import free_port, wait_for_tcp

__all__ = ["iterative", "load", "partial_sends", "selectors", "threaded"]


CLIENTS = 50


def _threads_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 1000:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(1000)
        if not chunk:
            break
        data += chunk
    return data


def load(port: int, hold: float, box=None, timeout: float = 8.0) -> dict:
    """Run :data:`CLIENTS` clients at once against ``port``: timings, errors, overlap and peaks.

    ``overlap`` is the most clients being served at one moment, measured by
    the grader's clients (from the echo of their hello to the echo of their
    bye); ``peak_threads`` and ``peak_processes`` are sampled from ``/proc``
    for the sandbox ``box``.
    """
    errors: list = []
    done: list = []
    spans: list = []
    deadline = time.monotonic() + timeout
    start_gate = threading.Event()

    def client(i: int) -> None:
        start_gate.wait(2)
        try:
            with socket.create_connection((HOST, port), timeout=timeout) as sock:
                began = 0.0
                for word in (b"hello", b"bye"):
                    line = b"%s %d\n" % (word, i)
                    sock.sendall(line)
                    got = _read_line(sock, deadline)
                    if got != line:
                        errors.append(f"client {i} sent {line!r} and got {got!r}")
                        return
                    if word == b"hello":
                        began = time.monotonic()
                        time.sleep(hold)
                spans.append((began, time.monotonic()))
            done.append(time.monotonic())
        except OSError as exc:
            errors.append(f"client {i}: {type(exc).__name__} {exc}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    peak = {"threads": 0, "processes": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set() and box is not None:
            pids = box.processes()
            peak["processes"] = max(peak["processes"], len(pids))
            peak["threads"] = max(peak["threads"], sum(_threads_of(p) for p in pids))
            time.sleep(0.005)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    start_gate.set()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 0.5)
    stop.set()
    sampler.join(1)
    elapsed = (max(done) if done else time.monotonic()) - began
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    overlap = now = 0
    for _, step in events:
        now += step
        overlap = max(overlap, now)
    return {"ok": len(done), "errors": errors, "elapsed": elapsed, "overlap": overlap,
            "peak_threads": peak["threads"], "peak_processes": peak["processes"]}


def _run(labdir: str, func: str, hold: float) -> dict:
    port = free_port()
    with server(labdir, "servers", func, [HOST, port]) as box:
        wait_for_tcp(box, port)
        result = load(port, hold, box)
    if result["ok"] != CLIENTS:
        first = result["errors"][0] if result["errors"] else "no answer in time"
        raise CheckFailed(f"{result['ok']} of {CLIENTS} clients were served right; {first}")
    if result["peak_processes"] > 1:
        raise CheckFailed(f"served all clients, but with {result['peak_processes']} processes: this "
                          f"model runs in one process (fork-per-client is another model)")
    return result


def _run_concurrent(labdir: str, func: str, hold: float) -> dict:
    """:func:`_run`, and fail unless the clients were served at the same time."""
    r = _run(labdir, func, hold)
    serial = CLIENTS * hold
    if r["elapsed"] > serial / 4 or r["overlap"] < 5:
        raise CheckFailed(f"{CLIENTS} clients that each wait {hold} s took {r['elapsed']:.1f} s, at most "
                          f"{r['overlap']} served at once: they were not served at the same time")
    return r


def iterative(labdir: str) -> str:
    hold = 0.02
    r = _run(labdir, "serve_iterative", hold)
    if r["peak_threads"] > 1:
        raise CheckFailed(f"served all clients but ran {r['peak_threads']} threads: an iterative server has one")
    if r["overlap"] > 1:
        raise CheckFailed(f"{r['overlap']} clients were being served at the same moment: an iterative "
                          f"server finishes one client before it accepts the next")
    return (f"{CLIENTS} clients in {r['elapsed']:.2f} s, one at a time (measured) "
            f"(each held its connection {hold * 1000:.0f} ms: at least {CLIENTS * hold:.1f} s in a row)")


def threaded(labdir: str) -> str:
    r = _run_concurrent(labdir, "serve_threaded", 0.2)
    if r["peak_threads"] < 5:
        raise CheckFailed(f"fast, but the server never ran more than {r['peak_threads']} threads")
    return f"{CLIENTS} clients in {r['elapsed']:.2f} s, up to {r['overlap']} at once, {r['peak_threads']} threads"


def selectors(labdir: str) -> str:
    r = _run_concurrent(labdir, "serve_selectors", 0.2)
    if r["peak_threads"] > 1:
        raise CheckFailed(f"fast, but with {r['peak_threads']} threads: a selectors server uses one")
    return f"{CLIENTS} clients in {r['elapsed']:.2f} s, up to {r['overlap']} at once, on a single thread"


def partial_sends(labdir: str) -> str:
    """A client that sends a lot and reads late: the server's send() takes only part of it."""
    port = free_port()
    data = os.urandom(4 << 20)
    with server(labdir, "servers", "serve_selectors", [HOST, port]) as box:
        wait_for_tcp(box, port)
        big = socket.create_connection((HOST, port), timeout=10)
        sender = threading.Thread(target=lambda: _send_quietly(big, data), daemon=True)
        sender.start()
        time.sleep(0.5)  # not reading yet: the server cannot send all it has
        start = time.monotonic()
        small = load(port, 0.0, None, timeout=5)
        others = time.monotonic() - start
        reply, _ = read_to_eof(big, 10, limit=len(data))
        sender.join(2)
        big.close()
        alive = box.alive()
    if small["ok"] != CLIENTS:
        raise CheckFailed(f"while one client was slow to read, only {small['ok']} of {CLIENTS} others "
                          f"were served: the server blocked on that one client")
    if reply != data:
        raise CheckFailed(f"a client sent {len(data) >> 20} MiB and read it back late: {len(reply)} bytes "
                          f"came back{'' if len(reply) < len(data) else ' (different bytes)'}"
                          + ("" if alive else "; the server died"))
    return f"{len(data) >> 20} MiB echoed to a late reader; meanwhile {CLIENTS} clients in {others:.2f} s"


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)  # no half-close: the echo is read by its length
    except OSError:
        pass
