"""The service commands through the real CLI: output lines, signals, errors, clients."""
from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from netlab import sysinfo
from netlab.servers import start_server
from netlab.services import chargen
from tests.conftest import ROOT, free_port_both

LISTEN_RE = re.compile(r"listening on (tcp|udp)://(\[::1\]|127\.0\.0\.1):(\d+)")
SUMMARY_RE = re.compile(r"stopped (\w+) \((\w+)\) after [\d.]+ s: (\d+) connections?, "
                        r"(\d+) datagrams?, (\d+) bytes? in, (\d+) bytes? out(; withheld: .*)?")


class ServerProcess:
    """``python -m netlab ARGS`` as a background server, stopped by its PID."""

    def __init__(self, *args: str, prefix=()):
        env = dict(os.environ)
        env.pop("NETLAB_DEBUG", None)
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "netlab", *args], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: "queue.Queue[str]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # EOF

    def listening(self, count: int, timeout: float = 20.0):
        """The first ``count`` lines, which must be 'listening on ...' lines."""
        found = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("server printed no 'listening on' line in time")
            if line == "":
                raise AssertionError("server exited: " + self.proc.stderr.read())
            m = LISTEN_RE.fullmatch(line.rstrip("\n"))
            assert m, line
            found.append((m.group(1), m.group(2), int(m.group(3))))
        return found

    def stop(self, sig=signal.SIGINT, timeout: float = 10.0):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("server did not stop on signal")
        self._reader.join(5)
        rest = []
        while not self._lines.empty():
            rest.append(self._lines.get())
        return rc, "".join(rest), self.proc.stderr.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


def _one_line_error(out, code):
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "error" in lines[0]
    return lines[0]


# -- the server --------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_server_listens_on_both_and_stops_cleanly_on_signal(sig):
    with ServerProcess("echo", "0") as srv:
        lines = srv.listening(2)
        assert [p for p, _, _ in lines] == ["tcp", "udp"]
        port = lines[0][2]
        assert lines[1][2] == port  # one port number for both protocols
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"hello\n")
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b"hello\n"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.sendto(b"abc", ("127.0.0.1", port))
            assert u.recv(100) == b"abc"
        rc, out, err = srv.stop(sig)
    assert rc == 0 and err == ""
    summary = out.strip().splitlines()
    assert len(summary) == 1
    m = SUMMARY_RE.fullmatch(summary[0])
    assert m, summary
    assert m.group(1, 2) == ("echo", "selectors")
    assert [int(x) for x in m.group(3, 4, 5, 6)] == [1, 1, 9, 9]
    # the sockets are closed: the port is free for both protocols again
    with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("127.0.0.1", port))
        u.bind(("127.0.0.1", port))




@pytest.mark.parametrize("model", ["selectors", "threaded"])
def test_signal_at_any_moment_stops_the_server(model):
    """Regression: the SIGINT handler used to call Event.set() while the main
    thread could hold that Event's lock inside wait(); a signal delivered to a
    serving thread then ran the handler at that moment and hung the server for
    ever. Signals at several moments of the wait loop must all stop it."""
    for delay in (0.0, 0.13, 0.27, 0.41, 0.55, 0.77):
        with ServerProcess("discard", "0", "--model", model) as srv:
            srv.listening(2)
            time.sleep(delay)
            rc, out, err = srv.stop(signal.SIGINT, timeout=10)
        assert rc == 0 and err == "", (delay, rc, err)
        assert SUMMARY_RE.fullmatch(out.strip()), out

@pytest.mark.parametrize("flag, model", [("--tcp", "iterative"), ("--udp", "asyncio")])
def test_one_protocol_and_a_model(flag, model):
    with ServerProcess("time", flag, "0", "--model", model) as srv:
        (proto, host, port), = srv.listening(1)
        assert proto == flag[2:] and host == "127.0.0.1"
        rc, out, err = srv.stop(signal.SIGTERM)
    assert rc == 0 and err == ""
    assert SUMMARY_RE.fullmatch(out.strip()).group(2) == model


def test_summary_explains_withheld_udp_replies():
    with ServerProcess("echo", "--udp", "0", "--udp-rate", "1") as srv:
        (_, _, port), = srv.listening(1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(2)
            for _ in range(4):
                u.sendto(b"x", ("127.0.0.1", port))
            assert u.recv(10) == b"x"  # the first one fits in the burst
            u.settimeout(0.3)
            with pytest.raises(socket.timeout):
                u.recv(10)
        rc, out, err = srv.stop()
    assert rc == 0 and err == ""
    m = SUMMARY_RE.fullmatch(out.strip())
    assert m and m.group(4) == "4"
    assert m.group(7) == "; withheld: 3 UDP replies over --udp-rate"


def test_idle_timeout_and_max_connections_flags():
    with ServerProcess("echo", "--tcp", "0", "--idle-timeout", "0.3",
                       "--max-connections", "1") as srv:
        (_, _, port), = srv.listening(1)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as first:
            first.sendall(b"a")
            assert first.recv(1) == b"a"
            with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
                try:
                    assert second.recv(1) == b""   # over the limit: closed at once
                except ConnectionResetError:
                    pass
            start = time.monotonic()
            assert first.recv(1) == b""            # idle: closed by the server
            assert time.monotonic() - start < 3
        rc, out, err = srv.stop()
    assert rc == 0 and "1 connection over --max-connections" in out


def test_default_port_is_7000_plus_the_well_known_one():
    try:
        with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind(("127.0.0.1", 7017))
            u.bind(("127.0.0.1", 7017))
    except OSError:
        pytest.skip("port 7017 is busy on this machine")
    with ServerProcess("qotd") as srv:
        assert srv.listening(2) == [("tcp", "127.0.0.1", 7017), ("udp", "127.0.0.1", 7017)]
        assert srv.stop()[0] == 0


def test_ipv6_host():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback (::1) on this machine")
    with ServerProcess("daytime", "0", "--host", "::1") as srv:
        lines = srv.listening(2)
        assert [(p, h) for p, h, _ in lines] == [("tcp", "[::1]"), ("udp", "[::1]")]
        with socket.create_connection(("::1", lines[0][2]), timeout=5) as s:
            assert s.recv(100).endswith(b"-UTC\r\n")
        assert srv.stop()[0] == 0


@pytest.mark.parametrize("port", ["70000", "-1", "abc", "65536"])
def test_bad_port_is_a_usage_error(netlab_cli, port):
    line = _one_line_error(netlab_cli("echo", port), 2)
    assert "port" in line and port.lstrip("-") in line


def test_port_in_use_names_it_and_how_to_find_the_owner(netlab_cli):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        line = _one_line_error(netlab_cli("chargen", "--tcp", str(port)), 1)
    assert f"port {port}/tcp is already in use" in line
    assert "netstat" in line or "ss -l" in line


def _unprivileged_prefix():
    if os.geteuid() != 0 and not sysinfo.has_capability(sysinfo.CAP_NET_BIND_SERVICE):
        return ()
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running privileged and setpriv (util-linux) is missing to drop "
                    "CAP_NET_BIND_SERVICE")
    return (setpriv, "--bounding-set", "-net_bind_service", "--inh-caps", "-net_bind_service")


def test_privileged_port_explains_the_sysctl_and_the_way_out():
    start = sysinfo.unprivileged_port_start()
    if start <= 13:
        pytest.skip(f"ip_unprivileged_port_start is {start}: port 13 needs no privilege here")
    prefix = _unprivileged_prefix()
    env = dict(os.environ)
    env.pop("NETLAB_DEBUG", None)
    out = subprocess.run([*prefix, sys.executable, "-m", "netlab", "daytime", "13"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    line = _one_line_error(out, 1)
    assert f"below {start}" in line
    assert "CAP_NET_BIND_SERVICE" in line and "root" in line
    assert "7013" in line


def test_address_not_on_this_machine(netlab_cli):
    line = _one_line_error(netlab_cli("echo", "0", "--host", "192.0.2.1"), 1)
    assert "192.0.2.1" in line and "127.0.0.1" in line


@pytest.mark.parametrize("argv, word", [
    (["echo", "--client", "--model", "threaded"], "--model"),
    (["echo", "-m", "hi", "0"], "--client"),
    (["time", "--client", "0"], "port 0"),
    (["echo", "--tcp", "--udp"], "not allowed"),
    (["echo", "--idle-timeout", "0"], "more than 0"),
])
def test_misused_flags_are_usage_errors(netlab_cli, argv, word):
    assert word in _one_line_error(netlab_cli(*argv), 2)


def test_never_reading_chargen_client_does_not_grow_server_memory():
    psutil = pytest.importorskip("psutil")
    with ServerProcess("chargen", "--tcp", "0") as srv:
        (_, _, port), = srv.listening(1)
        proc = psutil.Process(srv.proc.pid)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        try:
            time.sleep(0.5)
            before = proc.memory_info().rss
            # Meanwhile another client streams 3 MB, and the stalled one waits.
            with socket.create_connection(("127.0.0.1", port), timeout=5) as reader:
                got = 0
                first = reader.recv(74)
                while got < 3_000_000:
                    data = reader.recv(65536)
                    assert data
                    got += len(data)
            assert first.startswith(chargen.line(0)[:len(first)])
            time.sleep(0.5)
            after = proc.memory_info().rss
            assert after - before < 4 * 1024 * 1024, (before, after)
        finally:
            stalled.close()
        assert srv.stop()[0] == 0


# -- the clients ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ports():
    handles = {n: start_server(n) for n in ("echo", "discard", "chargen", "daytime",
                                            "time", "qotd")}
    try:
        yield {n: str(h.port) for n, h in handles.items()}
    finally:
        for h in handles.values():
            h.stop()


@pytest.mark.parametrize("proto", [[], ["--udp"]], ids=["tcp", "udp"])
def test_echo_client_message_and_stdin(netlab_cli, ports, proto):
    out = netlab_cli("echo", "--client", *proto, ports["echo"], "-m", "hello there")
    assert out.returncode == 0 and out.stdout == "hello there\n", out.stderr
    out = netlab_cli("echo", "--client", *proto, ports["echo"], input="one\ntwo\n")
    assert out.returncode == 0 and out.stdout == "one\ntwo\n", out.stderr


def test_daytime_and_qotd_clients(netlab_cli, ports):
    for proto in ([], ["--udp"]):
        out = netlab_cli("daytime", "--client", *proto, ports["daytime"])
        assert out.returncode == 0
        assert re.fullmatch(r"\w+day, \w+ \d+, \d{4} \d\d:\d\d:\d\d-UTC\n", out.stdout)
        out = netlab_cli("qotd", "--client", *proto, ports["qotd"])
        assert out.returncode == 0 and "-- netlab" in out.stdout


def test_time_client_prints_utc_date_and_raw_number(netlab_cli, ports):
    out = netlab_cli("time", "--client", "--udp", ports["time"])
    assert out.returncode == 0, out.stderr
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC  \(raw (\d+) = 0x([0-9a-f]{8}) "
                     r"seconds since 1900-01-01 00:00 UTC\)\n", out.stdout)
    assert m, out.stdout
    assert abs(int(m.group(2)) - (int(time.time()) + 2208988800)) < 10
    assert int(m.group(3), 16) == int(m.group(2))
    js = netlab_cli("time", "--client", ports["time"], "--json")
    import json
    data = json.loads(js.stdout)
    assert set(data) == {"utc", "raw"} and abs(data["raw"] - int(m.group(2))) < 10


def test_chargen_client_prints_n_lines(netlab_cli, ports):
    out = netlab_cli("chargen", "--client", ports["chargen"], "--lines", "5")
    assert out.returncode == 0
    assert out.stdout.splitlines() == [chargen.line(n)[:72].decode() for n in range(5)]


def test_discard_client(netlab_cli, ports):
    out = netlab_cli("discard", "--client", ports["discard"], "-m", "bye")
    assert out.returncode == 0 and "sent 4 bytes" in out.stdout


def test_udp_client_without_reply_exits_1_with_one_line(netlab_cli):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = str(sink.getsockname()[1])
        out = netlab_cli("daytime", "--client", "--udp", port, "--timeout", "0.2",
                         "--retries", "1")
    line = _one_line_error(out, 1)
    assert "no reply" in line and "after 2 tries" in line


def test_tcp_client_refused_exits_1(netlab_cli):
    port = free_port_both()
    line = _one_line_error(netlab_cli("qotd", "--client", str(port)), 1)
    assert "refused" in line
