"""``netlab bench echo`` through the real CLI, against real echo servers.

Servers: a small threaded echo server of the test's own, the plain C epoll
server of src_c/c/ (compiled here with gcc), and netlab's own in each model
(netlab.servers). Correctness only; speed lives in tests/benchmarks/.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import subprocess
import threading

import pytest

from netlab import servers
from netlab.packet import pure_python_requested
from tests.conftest import ROOT, free_port, interrupt_netlab

ECHO_KEYS = {"clients", "round_trips", "rtps", "p50_us", "p99_us", "model", "size", "errors"}


def _backends():
    return ["python"] if pure_python_requested() else ["cython", "python"]


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.request.sendall(data)


@pytest.fixture
def echo_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "%s:%d" % server.server_address
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def c_epoll_echo(tmp_path_factory):
    """The C epoll echo server of src_c/c/, compiled now and run on a free port."""
    if not shutil.which("gcc"):
        pytest.skip("needs gcc (Debian: apt-get install gcc) to build the C echo server")
    exe = tmp_path_factory.mktemp("c") / "epoll_echo"
    subprocess.run(["gcc", "-O2", "-o", str(exe), os.path.join(ROOT, "src_c", "c", "epoll_echo.c")],
                   check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([str(exe), "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("port "), line
        yield "127.0.0.1:" + line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.mark.parametrize("backend", _backends())
def test_json_against_a_threaded_echo_server(netlab_cli, echo_server, backend):
    out = netlab_cli("bench", "echo", "--target", echo_server, "--clients", "5", "--seconds",
                     "0.3", "--size", "100", "--backend", backend, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert ECHO_KEYS <= set(data)
    assert data["clients"] == 5 and data["size"] == 100 and data["model"] is None
    assert data["round_trips"] > 5 and data["errors"] == 0 and data["stalled"] == 0
    assert 0 < data["p50_us"] <= data["p99_us"]
    assert data["rtps"] == pytest.approx(data["round_trips"] / data["seconds"], rel=0.01)
    assert out.stderr == ""


def test_table_against_the_c_epoll_server(netlab_cli, c_epoll_echo):
    out = netlab_cli("bench", "echo", "--target", c_epoll_echo, "--clients", "20",
                     "--seconds", "0.3")
    assert out.returncode == 0, out.stderr
    head, _, row = out.stdout.splitlines()[:3]
    assert head.split()[:3] == ["server", "clients", "round"]
    assert row.split()[0] == c_epoll_echo and row.split()[1] == "20"
    assert f"server: {c_epoll_echo}" in out.stdout


def test_nothing_listening_is_a_runtime_error(netlab_cli):
    port = free_port()
    out = netlab_cli("bench", "echo", "--target", f"127.0.0.1:{port}", "--seconds", "0.2")
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1 and "cannot connect" in out.stderr


def test_a_server_that_hangs_up_counts_errors(netlab_cli):
    # Accepts and closes at once: every client fails, the run still ends cleanly.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    stop = threading.Event()

    def rude():
        lsock.settimeout(0.1)
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
                c.close()
            except OSError:
                pass

    t = threading.Thread(target=rude, daemon=True)
    t.start()
    try:
        out = netlab_cli("bench", "echo", "--target", "127.0.0.1:%d" % lsock.getsockname()[1],
                         "--clients", "3", "--seconds", "2", "--json")
    finally:
        stop.set()
        t.join(5)
        lsock.close()
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["errors"] == 3 and data["round_trips"] == 0 and data["stalled"] == 3
    assert data["p50_us"] is None and data["seconds"] < 1.9   # stopped early: nobody left


@pytest.mark.parametrize("argv, words", [
    (["--clients", "0"], "at least 1"),
    (["--clients", "30000"], "1 to 20000"),
    (["--size", "x"], "--size"),
    (["--size", "100000"], "1 to 65536"),
    (["--seconds", "0"], "positive"),
    (["--target", "localhost"], "HOST:PORT"),
    (["--target", "127.0.0.1:7", "--model", "threaded"], "exclude"),
    (["--plot", "a.svg"], "PNG"),
])
def test_bad_flags(netlab_cli, argv, words):
    out = netlab_cli("bench", "echo", *argv)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and words in out.stderr


def test_ctrl_c_prints_partial_result(echo_server):
    # Ctrl-C 6 s in: well into the run, even on a machine at load 50+ (start-up takes seconds).
    proc = interrupt_netlab("bench", "echo", "--target", echo_server, "--clients", "3",
                            "--seconds", "30", "--json", after=6)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["interrupted"] is True and data["round_trips"] > 0 and data["seconds"] < 15


def test_plot_compares_servers(netlab_cli, echo_server, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (pip install 'netlab[plot]')")
    png = tmp_path / "echo.png"
    out = netlab_cli("bench", "echo", "--target", echo_server, "--clients", "2",
                     "--seconds", "0.2", "--plot", png)
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"


# --- netlab's own server, in each concurrency model -------------------------------

def test_every_model_answers(netlab_cli):
    models = list(servers.MODELS)
    out = netlab_cli("bench", "echo", "--model", ",".join(models), "--clients", "4",
                     "--seconds", "0.3", "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    if len(models) == 1:
        data = [data]
    assert [d["model"] for d in data] == models
    for d in data:
        assert d["round_trips"] > 0 and d["errors"] == 0, d


def test_default_model_serves_all_clients(netlab_cli):
    out = netlab_cli("bench", "echo", "--clients", "10", "--seconds", "0.5", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model"] == servers.DEFAULT_MODEL
    assert data["stalled"] == 0 and data["errors"] == 0 and data["round_trips"] >= 10


def test_iterative_server_stalls_all_but_one(netlab_cli):
    out = netlab_cli("bench", "echo", "--model", "iterative", "--clients", "5",
                     "--seconds", "0.5", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    # One connection at a time: the first client is served, the others wait.
    assert data["round_trips"] > 0 and data["stalled"] == 4


def test_unknown_model_is_a_usage_error(netlab_cli):
    out = netlab_cli("bench", "echo", "--model", "quantum")
    assert out.returncode == 2 and "quantum" in out.stderr
    assert all(m in out.stderr for m in servers.MODELS)


def test_more_clients_than_the_servers_default_limit(netlab_cli):
    # netlab's servers take 512 connections by default; bench echo starts its
    # own with room for every client, so none is turned away.
    out = netlab_cli("bench", "echo", "--clients", "600", "--seconds", "0.5", "--json",
                     timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["clients"] == 600 and data["errors"] == 0 and data["stalled"] == 0


def test_help_names_the_cap_and_its_reasons(netlab_cli):
    out = netlab_cli("bench", "echo", "--help")
    text = " ".join(out.stdout.split())
    assert "at most 20,000" in text and "ephemeral port" in text and "512" in text
