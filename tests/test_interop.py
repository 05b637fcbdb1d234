"""Interoperability with real peers: socat and nc as clients of netlab servers,
netlab clients against Debian's xinetd internal services (run unprivileged on
free high ports, stopped by PID)."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from netlab import clients
from netlab.servers import start_server
from netlab.services import chargen, qotd
from netlab.services import time as time_service
from tests.conftest import free_port_both

H = "127.0.0.1"
SOCAT = shutil.which("socat")
NC = shutil.which("nc")
XINETD = shutil.which("xinetd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

needs_socat = pytest.mark.skipif(not SOCAT, reason="socat is not installed (apt-get install socat)")
needs_nc = pytest.mark.skipif(not NC, reason="nc is not installed (apt-get install netcat-openbsd)")


def _run(argv, data=b"", timeout=15):
    out = subprocess.run(argv, input=data, capture_output=True, timeout=timeout)
    assert out.returncode == 0, (argv, out.returncode, out.stderr)
    return out.stdout


@pytest.fixture(scope="module")
def srv():
    handles = {n: start_server(n) for n in ("echo", "discard", "chargen", "daytime",
                                            "time", "qotd")}
    try:
        yield handles
    finally:
        for h in handles.values():
            h.stop()


# -- socat and nc as clients -------------------------------------------------------
@needs_socat
def test_socat_tcp_echo(srv):
    data = b"hello from socat\n" + bytes(range(256)) * 200
    assert _run([SOCAT, "-t", "2", "-", f"TCP:{H}:{srv['echo'].port}"], data) == data


@needs_socat
def test_socat_udp_echo(srv):
    got = _run([SOCAT, "-t", "0.7", "-", f"UDP:{H}:{srv['echo'].port}"], b"a letter\n")
    assert got == b"a letter\n"


@needs_nc
def test_nc_tcp_echo_half_close(srv):
    # -N: shutdown(SHUT_WR) at the end of stdin; the server echoes and closes.
    assert _run([NC, "-N", H, str(srv["echo"].port)], b"one\ntwo\n") == b"one\ntwo\n"


@needs_nc
def test_nc_udp_echo(srv):
    got = _run([NC, "-u", "-w", "1", H, str(srv["echo"].port)], b"datagram\n")
    assert got == b"datagram\n"


@needs_nc
def test_nc_daytime_and_qotd(srv):
    line = _run([NC, H, str(srv["daytime"].port)], b"")
    assert line.endswith(b"-UTC\r\n") and str(dt.datetime.now(dt.timezone.utc).year).encode() in line
    assert _run([NC, H, str(srv["qotd"].port)], b"") in qotd.quotes()


@needs_socat
def test_socat_time_is_four_bytes_since_1900(srv):
    for addr in ("TCP", "UDP"):
        data = _run([SOCAT, "-t", "2", "-", f"{addr}:{H}:{srv['time'].port}"],
                    b"" if addr == "TCP" else b"\n")
        when, _ = time_service.decode(data)
        assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 5


@needs_socat
def test_socat_reads_the_chargen_stream(srv):
    proc = subprocess.Popen([SOCAT, "-u", f"TCP:{H}:{srv['chargen'].port}", "-"],
                            stdout=subprocess.PIPE)
    try:
        want = chargen.stream(0, 3 * len(chargen.CYCLE))
        got = b""
        deadline = time.monotonic() + 10
        while len(got) < len(want) and time.monotonic() < deadline:
            data = proc.stdout.read1(65536)
            if not data:
                break
            got += data
        assert got[:len(want)] == want
    finally:
        proc.terminate()
        proc.wait(5)
        proc.stdout.close()


@needs_socat
def test_socat_udp_chargen(srv):
    data = _run([SOCAT, "-t", "1", "-", f"UDP:{H}:{srv['chargen'].port}"], b"x")
    assert len(data) <= 512 and all(0x20 <= c <= 0x7E for c in data)


@needs_socat
def test_socat_into_discard(srv):
    before = srv["discard"].stats()["bytes_in"]
    _run([SOCAT, "-t", "2", "-", f"TCP:{H}:{srv['discard'].port}"], b"z" * 500_000)
    deadline = time.monotonic() + 5
    while srv["discard"].stats()["bytes_in"] - before < 500_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv["discard"].stats()["bytes_in"] - before == 500_000


# -- netlab clients against xinetd -----------------------------------------------------
XINETD_SERVICES = ("echo", "discard", "daytime", "time", "chargen")


def _xinetd_conf(ports) -> str:
    parts = ["defaults\n{\n    instances = 50\n}\n"]
    for name in XINETD_SERVICES:
        for kind, proto, wait in (("stream", "tcp", "no"), ("dgram", "udp", "yes")):
            parts.append(
                f"service {name}\n{{\n"
                f"    type        = INTERNAL UNLISTED\n"
                f"    id          = {name}-{kind}\n"
                f"    socket_type = {kind}\n"
                f"    protocol    = {proto}\n"
                f"    wait        = {wait}\n"
                f"    port        = {ports[name]}\n"
                f"    bind        = {H}\n"
                f"}}\n")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def xinetd():
    if not XINETD:
        pytest.skip("xinetd is not installed (apt-get install xinetd)")
    ports = {name: free_port_both() for name in XINETD_SERVICES}
    if len(set(ports.values())) != len(ports):
        pytest.skip("could not find distinct free ports for xinetd")
    workdir = tempfile.mkdtemp(prefix="netlab-xinetd-")
    os.chmod(workdir, 0o777)  # xinetd may run as nobody and writes its log here
    conf = os.path.join(workdir, "xinetd.conf")
    with open(conf, "w") as f:
        f.write(_xinetd_conf(ports))
    os.chmod(conf, 0o644)
    argv = [XINETD, "-dontfork", "-f", conf, "-filelog", os.path.join(workdir, "log"),
            "-pidfile", os.path.join(workdir, "pid")]
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv:
        # Show that it needs no privilege: high ports, run as nobody.
        argv = [setpriv, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((H, ports["daytime"]), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = ""
                    try:
                        with open(os.path.join(workdir, "log")) as f:
                            log = f.read()[-500:]
                    except OSError:
                        pass
                    pytest.skip(f"xinetd did not start: {proc.stderr.read()!r} {log}")
                time.sleep(0.05)
        yield ports
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        proc.stderr.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_netlab_echo_client_against_xinetd(xinetd, proto):
    data = b"netlab meets xinetd\n"
    assert clients.echo(proto, H, xinetd["echo"], data) == data


def test_netlab_tcp_echo_half_close_against_xinetd(xinetd):
    data = os.urandom(100_000)
    assert clients.tcp_echo(H, xinetd["echo"], data) == data


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_netlab_time_client_against_xinetd(xinetd, proto):
    when, raw = clients.time(proto, H, xinetd["time"])
    assert abs(time.time() - when.timestamp()) < 5
    assert raw == int(when.timestamp()) + time_service.EPOCH_OFFSET


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_netlab_daytime_client_against_xinetd(xinetd, proto):
    text = clients.daytime(proto, H, xinetd["daytime"])
    assert str(dt.datetime.now(dt.timezone.utc).year) in text
    assert all(" " <= c <= "~" for c in text)


def test_netlab_chargen_client_against_xinetd(xinetd):
    lines = clients.chargen("tcp", H, xinetd["chargen"], lines=10)
    assert len(lines) == 10
    assert all(len(line) == 72 for line in lines)
    for a, b in zip(lines, lines[1:]):
        assert a[1:] == b[:-1]  # each line starts one character further on
    replies = clients.chargen("udp", H, xinetd["chargen"], lines=1)
    assert len(replies) == 1 and replies[0]


def test_netlab_discard_client_against_xinetd(xinetd):
    assert clients.discard("tcp", H, xinetd["discard"], b"q" * 10_000) == 10_000


def test_cli_udp_chargen_prints_exactly_n_lines_from_xinetd(xinetd, netlab_cli):
    # Regression: xinetd packs many CR LF lines into one 1024-byte datagram and
    # '--lines 3' printed dozens of lines (with stray CRs).
    out = netlab_cli("chargen", "--client", "--udp", str(xinetd["chargen"]), "--lines", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == 4, out.stdout
    assert all(line and "\r" not in line and all(" " <= c <= "~" for c in line)
               for line in lines[:3])
