"""Lab 7: concurrency — iterative, threaded and selectors servers under 50 clients, measured.

Each server is started in the sandbox and 50 grader clients connect at once.
Every client says hello, waits a moment (a "slow" client, like a person
typing), says bye, and checks both echoes. The grader measures the wall time
and samples the server process's thread count from ``/proc/PID/status``, so a
"selectors" server that secretly starts threads is caught.
"""
from __future__ import annotations

import socket
import threading
import time

from netlab.labs._peers import HOST
from netlab.labs._probes import server
from netlab.labs._registry import CheckFailed, Lab, check
from netlab.labs._runner import free_port, wait_for_tcp

__all__ = ["LAB", "load"]

CHECKS: list = []
LAB = Lab(7, "lab07-concurrency", "Concurrency: iterative, threaded, selectors", ["concurrency.rst"],
          ["servers.py"], CHECKS)

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


def load(port: int, hold: float, pid: int = 0, timeout: float = 8.0) -> dict:
    """Run :data:`CLIENTS` clients at once against ``port``; timings, errors and peak threads."""
    errors: list = []
    done: list = []
    deadline = time.monotonic() + timeout
    start_gate = threading.Event()

    def client(i: int) -> None:
        start_gate.wait(2)
        try:
            with socket.create_connection((HOST, port), timeout=timeout) as sock:
                for word in (b"hello", b"bye"):
                    line = b"%s %d\n" % (word, i)
                    sock.sendall(line)
                    got = _read_line(sock, deadline)
                    if got != line:
                        errors.append(f"client {i} sent {line!r} and got {got!r}")
                        return
                    if word == b"hello":
                        time.sleep(hold)
            done.append(time.monotonic())
        except OSError as exc:
            errors.append(f"client {i}: {type(exc).__name__} {exc}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _threads_of(pid)) if pid else 0
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
    return {"ok": len(done), "errors": errors, "elapsed": elapsed, "peak_threads": peak[0]}


def _run(labdir: str, func: str, hold: float) -> dict:
    port = free_port()
    with server(labdir, "servers", func, [HOST, port]) as box:
        wait_for_tcp(box, port)
        result = load(port, hold, box.proc.pid)
    if result["ok"] != CLIENTS:
        first = result["errors"][0] if result["errors"] else "no answer in time"
        raise CheckFailed(f"{result['ok']} of {CLIENTS} clients were served right; {first}")
    return result


def _run_concurrent(labdir: str, func: str, hold: float) -> dict:
    """:func:`_run`, and fail unless the clients were served at the same time."""
    r = _run(labdir, func, hold)
    serial = CLIENTS * hold
    if r["elapsed"] > serial / 4:
        raise CheckFailed(f"{CLIENTS} clients that each wait {hold} s took {r['elapsed']:.1f} s: "
                          f"they were not served at the same time (one by one takes {serial:.0f} s)")
    return r


@check(CHECKS, "iterative server", 3,
       "serve_iterative: accept one client, echo its lines until it closes, then accept the next; "
       "no threads")
def _iterative(labdir: str) -> str:
    hold = 0.02
    r = _run(labdir, "serve_iterative", hold)
    if r["peak_threads"] > 1:
        raise CheckFailed(f"served all clients but ran {r['peak_threads']} threads: an iterative server has one")
    return (f"{CLIENTS} clients in {r['elapsed']:.2f} s, one after another "
            f"(each held its connection {hold * 1000:.0f} ms: at least {CLIENTS * hold:.1f} s in a row)")


@check(CHECKS, "threaded server", 4,
       "serve_threaded: the main thread only accepts; each connection gets its own "
       "threading.Thread(target=..., daemon=True)")
def _threaded(labdir: str) -> str:
    r = _run_concurrent(labdir, "serve_threaded", 0.2)
    if r["peak_threads"] < 5:
        raise CheckFailed(f"fast, but the server never ran more than {r['peak_threads']} threads")
    return f"{CLIENTS} clients in {r['elapsed']:.2f} s with up to {r['peak_threads']} threads"


@check(CHECKS, "selectors server", 5,
       "serve_selectors: one thread; register the listening socket and every connection with a "
       "selectors.DefaultSelector; non-blocking sockets; echo what is ready")
def _selectors(labdir: str) -> str:
    r = _run_concurrent(labdir, "serve_selectors", 0.2)
    if r["peak_threads"] > 1:
        raise CheckFailed(f"fast, but with {r['peak_threads']} threads: a selectors server uses one")
    return f"{CLIENTS} clients in {r['elapsed']:.2f} s on a single thread"
