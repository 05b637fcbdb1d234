"""``netlab bench udp|tcp --server`` / ``--client HOST``: two hosts, one result.

Two processes on loopback, and (as root) two network namespaces joined by a
veth pair that the test creates and always removes (names ``nlbench-*``).
Correctness only: both sides report the same counts, and every failure of
the other side is one clear line. No figure of speed is asserted here.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading

import pytest

from netlab.bench import _remote
from tests.conftest import ROOT, free_port_both, interrupt_netlab, netlab_env, run_netlab


class Server:
    """``python -m netlab bench TEST --server ...`` as a child process, stopped by PID."""

    def __init__(self, *args, prefix=()):
        self.cmd = [*prefix, sys.executable, "-m", "netlab", "bench", *map(str, args)]
        self.proc = None
        self.listening = ""

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=netlab_env(), cwd=ROOT)
        # --json puts the "listening on" line on stderr, the table mode on stdout.
        streams = [self.proc.stdout, self.proc.stderr]
        ready = select.select(streams, [], [], 20)[0]
        assert ready, "the bench server did not start within 20 s"
        self.listening = ready[0].readline()
        assert self.listening.startswith("listening on tcp://"), self.listening
        return self

    def finish(self, timeout=30):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


def _client(*args, prefix=(), timeout=60):
    cmd = [*prefix, sys.executable, "-m", "netlab", "bench", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=netlab_env(), cwd=ROOT)


# --- two processes on loopback ----------------------------------------------------

def test_udp_both_sides_report_the_same_counts():
    port = free_port_both()
    with Server("udp", "--server", "--port", port, "--once", "--host", "127.0.0.1",
                "--json") as srv:
        out = _client("udp", "--client", "127.0.0.1", "--port", port, "--seconds", "0.3",
                      "--rate", "5000", "--json")
        code, server_out, server_err = srv.finish()
    assert out.returncode == 0, out.stderr
    assert code == 0, server_err
    mine, theirs = json.loads(out.stdout), json.loads(server_out)
    assert mine["role"] == "client" and theirs["role"] == "server"
    assert mine["server"] == f"127.0.0.1:{port}" and theirs["client"].startswith("127.0.0.1:")
    for key in ("sent", "received", "lost", "duplicated", "reordered", "rcvbuf", "kernel_drops"):
        assert mine[key] == theirs[key], key
    assert mine["sent"] > 0 and mine["sent"] == mine["received"] + mine["lost"]
    # the server sized its receive buffer for the client's rate and reported it
    assert mine["rcvbuf_asked"] and mine["rcvbuf"] >= mine["rcvbuf_asked"]
    assert f"udp://127.0.0.1:{port}" in srv.listening


@pytest.mark.parametrize("discard", [False, True], ids=["verify", "discard"])
def test_tcp_both_sides_report_the_same_stream(discard):
    port = free_port_both()
    with Server("tcp", "--server", "--port", port, "--once", "--host", "127.0.0.1") as srv:
        out = _client("tcp", "--client", "127.0.0.1", "--port", port, "--seconds", "0.3",
                      "--buffer", "64K", *(["--discard"] if discard else []), "--json")
        code, server_out, server_err = srv.finish()
    assert out.returncode == 0, out.stderr
    assert code == 0, server_err
    mine = json.loads(out.stdout)
    assert mine["bytes"] == mine["sent"] > 0 and mine["complete"] is True
    assert mine["verified"] is (not discard) and mine["discard"] is discard
    # the server printed its own table: the same byte count
    assert f"{mine['bytes']:,}" in server_out
    assert "sent by the client at 127.0.0.1" in server_out


def test_server_keeps_serving_after_a_bad_client():
    port = free_port_both()
    with Server("udp", "--server", "--port", port, "--host", "127.0.0.1") as srv:
        # a client of another protocol version: refused with a reason, server lives on
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(json.dumps({"hello": "netlab-bench", "protocol": 99, "netlab": "9.9",
                                  "test": "udp"}).encode() + b"\n")
            answer = json.loads(s.makefile().readline())
        assert "error" in answer and answer["protocol"] == _remote.PROTOCOL
        # garbage on the control port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        # a well-formed hello with nonsense in it, then a nonsense end of test
        for hello, done in (({"rcvbuf": "big"}, None), ({}, {"sent": "x", "seconds": []})):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(json.dumps(dict({"hello": "netlab-bench", "protocol": _remote.PROTOCOL,
                                           "test": "udp", "size": 64, "seconds": 0.1},
                                          **hello)).encode() + b"\n")
                f = s.makefile()
                answer = json.loads(f.readline())
                assert ("error" in answer) is (done is None)
                if done is not None:
                    s.sendall(json.dumps({"done": done}).encode() + b"\n")
                    assert f.readline() == ""       # no result for a bad count: closed
        # a real client still gets its test
        out = _client("udp", "--client", "127.0.0.1", "--port", port, "--seconds", "0.2",
                      "--rate", "2000", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["received"] > 0
        assert srv.proc.poll() is None
        srv.proc.terminate()                      # SIGTERM: by PID, the server we started
        _, _, err = srv.finish()
    # each bad client cost one line on the server's stderr, no traceback
    assert "protocol 99" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "failed" in line]) == 4


def test_no_server_is_one_clear_line():
    port = free_port_both()
    out = run_netlab("bench", "udp", "--client", "127.0.0.1", "--port", port, "--seconds", "0.2")
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no netlab bench server" in lines[0]
    assert f"--server --port {port}" in lines[0]


def _fake_server(answer: bytes):
    """A TCP listener that answers any first line with ``answer`` (one connection)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        listener.settimeout(10)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.makefile("rb").readline()
            conn.sendall(answer)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return listener, t


def test_server_of_another_version_is_one_clear_line():
    listener, t = _fake_server(json.dumps({"hello": "netlab-bench", "protocol": 99,
                                           "netlab": "9.9", "ok": True}).encode() + b"\n")
    with listener:
        port = listener.getsockname()[1]
        out = run_netlab("bench", "tcp", "--client", "127.0.0.1", "--port", port)
        t.join(10)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "netlab 9.9" in lines[0] and "same netlab version" in lines[0]


def test_an_echo_server_is_not_a_bench_server():
    from netlab import servers

    handle = servers.start_server("echo", port=0, protocols=("tcp",))
    try:
        out = run_netlab("bench", "udp", "--client", "127.0.0.1", "--port", handle.ports["tcp"])
    finally:
        handle.stop()
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a netlab bench server" in lines[0]


def test_the_other_test_is_refused_clearly():
    port = free_port_both()
    with Server("tcp", "--server", "--port", port, "--host", "127.0.0.1"):
        out = _client("udp", "--client", "127.0.0.1", "--port", port, "--seconds", "0.2")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "bench tcp --server" in lines[0]


@pytest.mark.parametrize("argv, words", [
    (["udp", "--server", "--client", "127.0.0.1"], "exclude"),
    (["udp", "--once"], "--server"),
    (["udp", "--client", "127.0.0.1", "--target", "127.0.0.1:9"], "--target"),
    (["tcp", "--server", "--discard"], "--discard"),
    (["udp", "--gso", "65"], "1 to 64"),
    (["udp", "--gso", "8", "--rate", "100"], "exclude"),
    (["udp", "--nap", "-1"], "--nap"),
])
def test_bad_mode_flags_are_usage_errors(argv, words):
    out = run_netlab("bench", *argv)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


# --- two network namespaces -------------------------------------------------------

def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


@pytest.fixture
def two_namespaces():
    """Namespaces nlbench-<pid>-a (10.213.7.1) and -b (10.213.7.2) on a veth pair."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces (CI runs as root)")
    if not shutil.which("ip"):
        pytest.skip("needs ip (Debian: apt-get install iproute2)")
    a, b = f"nlbench-{os.getpid()}-a", f"nlbench-{os.getpid()}-b"
    try:
        for ns in (a, b):
            _ip("netns", "add", ns)
        _ip("link", "add", "nlbva", "netns", a, "type", "veth", "peer", "name", "nlbvb",
            "netns", b)
        for ns, dev, addr in ((a, "nlbva", "10.213.7.1/24"), (b, "nlbvb", "10.213.7.2/24")):
            _ip("-n", ns, "addr", "add", addr, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield (["ip", "netns", "exec", a], "10.213.7.1"), (["ip", "netns", "exec", b], "10.213.7.2")
    finally:
        for ns in (a, b):
            _ip("netns", "delete", ns, check=False)   # takes the veth pair with it


@pytest.mark.parametrize("test", ["udp", "tcp"])
def test_between_two_namespaces(two_namespaces, test):
    (in_a, addr_a), (in_b, _) = two_namespaces
    extra = ["--rate", "5000"] if test == "udp" else []
    with Server(test, "--server", "--once", "--json", prefix=in_a) as srv:
        out = _client(test, "--client", addr_a, "--seconds", "0.3", *extra, "--json", prefix=in_b)
        code, server_out, server_err = srv.finish()
    assert out.returncode == 0, out.stderr
    assert code == 0, server_err
    mine, theirs = json.loads(out.stdout), json.loads(server_out)
    assert mine["server"] == f"{addr_a}:{_remote.DEFAULT_PORT}"
    assert theirs["client"].startswith("10.213.7.2:")
    if test == "udp":
        assert mine["received"] == theirs["received"] > 0
        assert mine["sent"] == mine["received"] + mine["lost"]
    else:
        assert mine["verified"] is True and mine["bytes"] == theirs["bytes"] > 0


@pytest.mark.parametrize("test", ["udp", "tcp"])
def test_ctrl_c_stops_a_waiting_server_cleanly(test):
    with Server(test, "--server", "--port", "0", "--host", "127.0.0.1") as srv:
        srv.proc.send_signal(signal.SIGINT)       # once it listens: by PID, ours
        code, out, err = srv.finish()
    assert code == 0 and err == "", err
    assert srv.listening.startswith("listening on tcp://127.0.0.1:")


def test_ctrl_c_on_the_client_ends_the_test_on_both_sides():
    port = free_port_both()
    with Server("udp", "--server", "--port", port, "--once", "--host", "127.0.0.1",
                "--json") as srv:
        r = interrupt_netlab("bench", "udp", "--client", "127.0.0.1", "--port", port,
                             "--seconds", "60", "--rate", "2000", "--json", after=6.0)
        code, server_out, server_err = srv.finish()
    assert r.returncode == 0, r.stderr
    assert code == 0, server_err
    mine, theirs = json.loads(r.stdout), json.loads(server_out)
    assert mine["interrupted"] is True and theirs["interrupted"] is True
    assert mine["sent"] == theirs["sent"] > 0 and mine["seconds"] < 30
