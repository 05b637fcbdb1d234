"""The compiled TCP path of the selectors model (netlab._fastserve), over loopback.

tests/test_servers.py runs every behaviour on both paths; here: that the
default really takes the compiled path, how to switch it off, and what only
the core itself can show (the GIL released, the watch bits, its own limits),
and the server-level checks written here, run on both paths (``compiled``).
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time

import pytest

from netlab import servers
from netlab.errors import NetlabError
from netlab.packet import pure_python_requested
from netlab.servers import start_server
from tests.test_servers import LOOP, _connect, _read_to_eof, _wait_for


@pytest.fixture
def fastserve():
    """netlab._fastserve; built unless NETLAB_PURE_PYTHON=1 (then skipped)."""
    if pure_python_requested():
        pytest.skip("NETLAB_PURE_PYTHON=1: the compiled server core is not built")
    if not sys.platform.startswith("linux"):
        pytest.skip("the compiled server core needs epoll (Linux)")
    # Not importorskip: a core that is missing or broken must fail here.
    from netlab import _fastserve

    assert _fastserve.HAVE_EPOLL == 1
    return _fastserve


@pytest.fixture(params=[True, False], ids=["compiled", "python"])
def compiled(request):
    """Each TCP path of the selectors model in turn, for the assertions both must meet."""
    if request.param:
        request.getfixturevalue("fastserve")
    return request.param


# -- which path is taken ---------------------------------------------------------------
@pytest.mark.parametrize("service", ["echo", "discard"])
def test_default_model_uses_the_compiled_core(fastserve, service):
    with start_server(service) as srv:
        assert srv.model == servers.DEFAULT_MODEL == "selectors"
        assert srv.compiled is True
        assert "compiled" in repr(srv)


def test_python_side_knows_the_services_of_the_core(fastserve):
    # netlab.servers._fast decides before importing the core, from its own copy.
    from netlab.servers._fast import FAST_SERVICES

    assert FAST_SERVICES == fastserve.SERVICES


def test_compiled_false_and_the_opt_out_keep_the_python_loop(fastserve, monkeypatch):
    with start_server("echo", compiled=False) as srv:
        assert srv.compiled is False and "compiled" not in repr(srv)
    monkeypatch.setenv("NETLAB_PURE_PYTHON", "1")
    with start_server("echo") as srv:
        assert srv.compiled is False
    with pytest.raises(NetlabError, match="NETLAB_PURE_PYTHON"):
        start_server("echo", compiled=True)


def test_other_services_models_and_udp_only_stay_in_python(fastserve):
    for service in ("chargen", "daytime", "time", "qotd"):
        with start_server(service) as srv:
            assert srv.compiled is False
    with start_server("echo", protocols=("udp",)) as srv:
        assert srv.compiled is False
    with start_server("echo", model="threaded") as srv:
        assert srv.compiled is False


@pytest.mark.parametrize("kwargs, words", [
    (dict(service="chargen", compiled=True), "echo and discard only"),
    (dict(service="echo", model="asyncio", compiled=True), "selectors model"),
])
def test_insisting_on_the_core_where_it_does_not_apply(fastserve, kwargs, words):
    with pytest.raises(NetlabError, match=words):
        start_server(**kwargs)


# -- the compiled path as a server -----------------------------------------------------
def test_tcp_compiled_and_udp_in_python_share_one_engine(fastserve):
    with start_server("echo") as srv:
        assert srv.compiled
        with _connect(srv.port) as s:
            s.sendall(b"tcp bytes")
            s.shutdown(socket.SHUT_WR)
            assert _read_to_eof(s) == b"tcp bytes"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(2)
            u.sendto(b"udp", (LOOP, srv.port))
            assert u.recvfrom(100)[0] == b"udp"
        assert _wait_for(lambda: srv.stats()["bytes_out"] == 12)
        st = srv.stats()
        assert (st["connections"], st["datagrams"], st["bytes_in"], st["replies"]) == (1, 1, 12, 1)
    assert srv.stats()["active"] == 0


def test_discard_counts_and_answers_nothing(compiled):
    with start_server("discard", protocols=("tcp",), compiled=compiled) as srv, \
            _connect(srv.port) as s:
        assert srv.compiled is compiled
        payload = os.urandom(500_000)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        assert _read_to_eof(s) == b""
        assert _wait_for(lambda: srv.stats()["bytes_in"] == len(payload))
        assert srv.stats()["bytes_out"] == 0


def test_queue_stays_within_out_buffer_exactly(fastserve):
    # The core reads only what the queue has room for, so its peak is the
    # limit itself (the Python loop may overshoot by one recv()).
    limit = 4096
    with start_server("echo", protocols=("tcp",), out_buffer=limit) as srv:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((LOOP, srv.port))
            s.setblocking(False)
            pushed = 0
            for _ in range(400):        # bounded: at most 400 tries of 64 KiB
                try:
                    pushed += s.send(b"q" * 65536)
                except BlockingIOError:
                    time.sleep(0.01)
            assert pushed < 400 * 65536, "the server kept reading without bound"
            assert _wait_for(lambda: srv.stats()["buffer_peak"] > 0)
            assert srv.stats()["buffer_peak"] <= limit
            time.sleep(0.3)              # a sweep sees the queue
            assert 0 < srv.stats()["buffered"] <= limit


def test_half_closed_client_that_never_reads_is_timed_out(compiled):
    with start_server("echo", protocols=("tcp",), idle_timeout=0.5, out_buffer=4096,
                      compiled=compiled) as srv:
        assert srv.compiled is compiled
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((LOOP, srv.port))
            s.setblocking(False)
            for _ in range(100):         # fill every buffer on the way, bounded
                try:
                    s.send(b"z" * 65536)
                except BlockingIOError:
                    break
            s.shutdown(socket.SHUT_WR)   # owed bytes the client will not read
            assert _wait_for(lambda: srv.stats()["timeouts"] == 1, timeout=5)
            assert _wait_for(lambda: srv.stats()["active"] == 0)


def test_stop_closes_every_open_connection(compiled):
    srv = start_server("echo", protocols=("tcp",), compiled=compiled)
    assert srv.compiled is compiled
    clients = [_connect(srv.port) for _ in range(20)]
    try:
        for c in clients:
            c.sendall(b"hello")
            assert c.recv(10) == b"hello"
        assert srv.stats()["active"] == 20
        start = time.monotonic()
        final = srv.stop()
        assert time.monotonic() - start < 3
        assert final["active"] == 0 and final["connections"] == 20
        for c in clients:
            try:
                assert c.recv(10) == b""
            except ConnectionResetError:
                pass
    finally:
        for c in clients:
            c.close()


# -- the core on its own ---------------------------------------------------------------
@pytest.fixture
def core_parts(fastserve):
    lsock = socket.socket()
    lsock.bind((LOOP, 0))
    lsock.listen(64)
    lsock.setblocking(False)
    wake_r, wake_w = socket.socketpair()
    core = fastserve.TcpCore(lsock.fileno(), "echo", 65536, 30.0, 16)
    try:
        yield core, lsock, wake_r, wake_w
    finally:
        core.close()
        for s in (lsock, wake_r, wake_w):
            s.close()


def test_run_reports_watched_descriptors_by_bit(core_parts):
    core, _, wake_r, wake_w = core_parts
    other_r, other_w = socket.socketpair()
    with other_r, other_w:
        assert core.watch(wake_r.fileno()) == 0
        assert core.watch(other_r.fileno()) == 1
        assert core.run(0.05) == 0            # nothing readable: the time ran out
        other_w.send(b"!")
        assert core.run(5.0) == 0b10
        other_r.recv(10)
        wake_w.send(b"x")
        assert core.run(5.0) == 0b01


def test_run_releases_the_gil(core_parts):
    # A client in this very process is served while run() is inside C: that
    # is only possible if the loop released the GIL.
    core, lsock, wake_r, wake_w = core_parts
    core.watch(wake_r.fileno())
    result = []
    t = threading.Thread(target=lambda: result.append(core.run(30.0)))
    t.start()
    try:
        with _connect(lsock.getsockname()[1]) as c:
            for i in range(50):
                c.sendall(b"%d" % i)
                assert c.recv(10) == b"%d" % i
        assert t.is_alive(), "run() returned before it was woken"
    finally:
        wake_w.send(b"x")
        t.join(10)
    assert result == [1]
    assert core.connections == 1 and core.bytes_in == core.bytes_out > 0


def test_max_connections_and_counters(core_parts, fastserve):
    core, lsock, wake_r, wake_w = core_parts
    core.max_connections = 2
    port = lsock.getsockname()[1]
    a, b, c = _connect(port), _connect(port), _connect(port)
    with a, b, c:
        deadline = time.monotonic() + 5
        while core.connections < 3 and time.monotonic() < deadline:
            core.run(0.05)
        assert (core.connections, core.active, core.rejected) == (3, 2, 1)
        a.sendall(b"ping")
        while core.bytes_out < 4 and time.monotonic() < deadline:
            core.run(0.05)
        assert a.recv(10) == b"ping"
    with pytest.raises(ValueError, match="echo, discard"):
        fastserve.TcpCore(lsock.fileno(), "chargen")
    core.close()
    assert core.active == 0
    with pytest.raises(ValueError, match="closed"):
        core.run(0.01)


# -- descriptors: running out of them, and numbers above 1024 --------------------------
_CHILD = r"""
import json, os, resource, sys
from netlab.servers import start_server
limit, burn, compiled = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
if limit:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(burn)]  # push fd numbers up
srv = start_server("echo", protocols=("tcp",), compiled=compiled)
print(srv.port, int(srv.compiled), flush=True)
for line in sys.stdin:                       # "stats" as often as asked, then "stop"
    if line.strip() != "stats":
        break
    print(json.dumps(srv.stats()), flush=True)
srv.stop()
"""


class _Child:
    """An echo server in a child process with its own descriptor limit."""

    def __init__(self, limit: int, burn: int, compiled: bool) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(limit), str(burn), "1" if compiled else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line, f"the server child failed: {self._stderr()}"
        port, used = line.split()
        self.port, self.compiled = int(port), used == "1"

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()[-2000:]

    def stats(self) -> dict:
        import json

        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the server child failed: {self._stderr()}"
        return json.loads(line)

    def close(self) -> None:
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, ValueError):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc.stderr.close()


def _echo_once(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        data = sock.recv(65536)
        assert data, "server closed early"
        got += data
    assert got == payload


def test_out_of_descriptors_serves_the_others_and_recovers(compiled):
    child = _Child(limit=64, burn=0, compiled=compiled)
    clients = []
    try:
        assert child.compiled is compiled
        first = _connect(child.port)
        clients.append(first)
        for _ in range(80):          # more than the server's 64 descriptors
            clients.append(_connect(child.port))   # queued by the kernel if not accepted
        assert _wait_for(lambda: child.stats()["errors"] > 0)  # EMFILE, counted
        _echo_once(first, b"still served")
        for c in clients[1:]:
            c.close()
        del clients[1:]
        # Descriptors free again: the server accepts the next client.
        with _connect(child.port) as late:
            _echo_once(late, b"late but served")
    finally:
        for c in clients:
            c.close()
        child.close()


def test_descriptor_numbers_above_1024(compiled):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"the descriptor limit ({hard}) is too low to reach numbers above 1024")
    child = _Child(limit=1400 if hard == resource.RLIM_INFINITY else min(hard, 4096),
                   burn=1100, compiled=compiled)
    try:
        assert child.compiled is compiled
        socks = [_connect(child.port) for _ in range(3)]
        try:
            for i, s in enumerate(socks):
                _echo_once(s, b"high fd %d" % i)
            assert child.stats()["active"] == 3
        finally:
            for s in socks:
                s.close()
    finally:
        child.close()
