"""``netlab bench latency``: ping-pong round trips through the real CLI.

Correctness only (no figure of speed): the percentiles are ordered, every
round trip is counted, netlab's own echo answers over UDP and TCP on both
backends, any echo can be the --target, and bad input is one line.
"""
from __future__ import annotations

import json
import socket
import threading

import pytest

from netlab.bench import latency
from netlab.packet import pure_python_requested
from tests.conftest import free_port, run_netlab

KEYS = {"protocol", "size", "round_trips", "lost", "p50_us", "p99_us", "p999_us", "max_us",
        "min_us", "mean_us", "rtps", "seconds", "backend", "server", "interrupted"}


def _backends():
    return ["python"] if pure_python_requested() else ["cython", "python"]


def _ordered(r):
    return r["min_us"] <= r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]


@pytest.mark.parametrize("proto", ["--udp", "--tcp"])
@pytest.mark.parametrize("backend", _backends())
def test_against_netlabs_own_echo(proto, backend):
    out = run_netlab("bench", "latency", proto, "--size", "100", "--seconds", "0.3",
                     "--backend", backend, "--json")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert KEYS <= set(r)
    assert r["protocol"] == proto[2:] and r["size"] == 100 and r["backend"] == backend
    assert r["round_trips"] > 10 and r["lost"] == 0 and _ordered(r)
    assert r["server"].startswith("netlab ")
    assert r["rtps"] == pytest.approx(r["round_trips"] / r["seconds"], rel=0.02)


def test_table_compares_both_backends():
    if pure_python_requested():
        pytest.skip("NETLAB_PURE_PYTHON=1: the compiled loops are not built")
    out = run_netlab("bench", "latency", "--udp", "--seconds", "0.2", "--backend", "cython,python")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "p99.9 us" in lines[0] and "max us" in lines[0]
    assert "netlab udp_echo (cython)" in lines[2] and "netlab udp_echo (python)" in lines[3]


def _udp_echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except socket.timeout:
                continue
            sock.sendto(data, addr)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return sock, stop, t


def test_target_any_udp_echo():
    sock, stop, t = _udp_echo()
    try:
        host, port = sock.getsockname()
        r = latency.run_latency(udp=True, size=32, seconds=0.2, target=(host, port))
    finally:
        stop.set()
        t.join()
        sock.close()
    assert r["target"] == f"127.0.0.1:{port}" and r["round_trips"] > 10 and _ordered(r)


def test_a_mute_udp_target_is_one_clear_line():
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    with mute:
        out = run_netlab("bench", "latency", "--udp", "--seconds", "0.5",
                         "--target", f"127.0.0.1:{mute.getsockname()[1]}")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no answer" in lines[0] and "lost" in lines[0]


def test_nothing_listening_over_tcp_is_one_clear_line():
    out = run_netlab("bench", "latency", "--tcp", "--target", f"127.0.0.1:{free_port()}")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the echo server" in lines[0]


@pytest.mark.parametrize("argv, words", [
    (["--udp", "--tcp"], "not allowed"),
    (["--size", "0"], "at least 1"),
    (["--udp", "--size", "70000"], "1 to 65507"),
    (["--backend", "rust"], "unknown backend"),
    (["--target", "nohost"], "HOST:PORT"),
    (["--seconds", "-1"], "--seconds"),
])
def test_bad_flags(argv, words):
    out = run_netlab("bench", "latency", *argv)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
