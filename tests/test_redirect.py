"""netlab redirect: TCP and UDP forwarding, clean stops, and the lossy link."""
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from netlab.redirect import parse_target, start_redirect
from tests.conftest import ROOT, free_port

LISTEN_RE = re.compile(r"^listening on (tcp|udp)://127\.0\.0\.1:(\d+)$")


# ------------------------------------------------------------------ real peers

class _ThreadedPeer:
    """A bound socket served by a daemon thread (``_serve``) until ``close()``.

    The 0.2 s socket timeout lets ``_serve`` look at ``stop`` that often.
    """

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        raise NotImplementedError

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


class TcpReverser(_ThreadedPeer):
    """Reads until the client half-closes, then answers with the bytes reversed.

    A reply can only arrive if the relay passed the half-close on *and* kept
    the other direction open: exactly what half-close support means.
    """

    def __init__(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        super().__init__(sock)

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _handle(conn):
        with conn:
            conn.settimeout(10)
            chunks = []
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
                conn.sendall(b"".join(chunks)[::-1])
            except OSError:
                pass


class UdpUpper(_ThreadedPeer):
    """Answers each datagram with its bytes upper-cased, to the sender."""

    def __init__(self, port=0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", port))
        super().__init__(sock)

    def _serve(self):
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.sock.sendto(data.upper(), addr)


@pytest.fixture
def tcp_target():
    t = TcpReverser()
    yield t
    t.close()


@pytest.fixture
def udp_target():
    t = UdpUpper()
    yield t
    t.close()


class RedirectProcess:
    """``netlab redirect ...`` as a real process; reads its 'listening on' lines."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "netlab", "redirect", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        self.buf = b""
        self.ports = {}
        deadline = time.monotonic() + 20
        while True:
            line = self.readline(deadline)
            if line is None:
                raise AssertionError("redirect gave no 'forwarding' line: "
                                     + self.proc.stderr.read().decode(errors="replace"))
            m = LISTEN_RE.match(line)
            if m:
                self.ports[m.group(1)] = int(m.group(2))
            elif line.startswith("forwarding to"):
                break

    def readline(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not select.select(
                    [self.proc.stdout], [], [], 0)[0]:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    return None
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def stop(self, sig=signal.SIGINT):
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, (self.buf + out).decode(), err.decode()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


@pytest.fixture
def redirect_cli():
    started = []

    def start(*args):
        r = RedirectProcess(*args)
        started.append(r)
        return r

    yield start
    for r in started:
        r.kill()


def _tcp_round_trip(port, payload, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = c.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


# ------------------------------------------------------------------ through the CLI

def test_tcp_both_directions_with_half_close(redirect_cli, tcp_target):
    r = redirect_cli(0, f"127.0.0.1:{tcp_target.port}", "--tcp")
    assert set(r.ports) == {"tcp"}
    payload = random.Random(1).randbytes(300_000)
    assert _tcp_round_trip(r.ports["tcp"], payload) == payload[::-1]
    assert _tcp_round_trip(r.ports["tcp"], b"abc") == b"cba"
    code, out, err = r.stop(signal.SIGINT)
    assert code == 0, err
    assert err == ""
    summary = out.strip().splitlines()[-1]
    assert "redirect stopped" in summary and "tcp 2 connections" in summary
    assert "300003 bytes to target" in summary


def test_udp_replies_go_back_to_the_right_client(redirect_cli, udp_target):
    r = redirect_cli(0, f"127.0.0.1:{udp_target.port}", "--udp")
    assert set(r.ports) == {"udp"}
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for i, c in enumerate(clients):
            c.settimeout(5)
            c.sendto(f"client {i}".encode(), ("127.0.0.1", r.ports["udp"]))
        for i, c in enumerate(reversed(clients)):
            c.sendto(f"again {2 - i}".encode(), ("127.0.0.1", r.ports["udp"]))
        for i, c in enumerate(clients):
            got = {c.recvfrom(100)[0], c.recvfrom(100)[0]}
            assert got == {f"CLIENT {i}".encode(), f"AGAIN {i}".encode()}
    finally:
        for c in clients:
            c.close()
    code, out, _ = r.stop(signal.SIGTERM)
    assert code == 0
    assert "udp 3 clients, 6 datagrams to target, 6 back" in out


def test_default_is_tcp_and_udp_on_one_port(redirect_cli, tcp_target):
    udp = UdpUpper(tcp_target.port) if _udp_free(tcp_target.port) else None
    try:
        r = redirect_cli(0, f"127.0.0.1:{tcp_target.port}")
        assert set(r.ports) == {"tcp", "udp"} and r.ports["tcp"] == r.ports["udp"]
        assert _tcp_round_trip(r.ports["tcp"], b"hello") == b"olleh"
        if udp:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.settimeout(5)
                c.sendto(b"hi", ("127.0.0.1", r.ports["udp"]))
                assert c.recvfrom(10)[0] == b"HI"
        code, out, _ = r.stop()
        # Counts of one read as English (before: "tcp 1 connections").
        assert code == 0 and "tcp 1 connection, " in out
        if udp:
            assert "udp 1 client, 1 datagram to target, 1 back" in out, out
    finally:
        if udp:
            udp.close()


def _wait_listening(port, timeout=10):
    """Wait until something listens on TCP ``port`` without connecting to it
    (socat without fork would spend its one connection on a probe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
               for c in psutil.net_connections("tcp4")):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def _udp_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_target_down_resets_the_client(redirect_cli):
    dead = free_port()
    r = redirect_cli(0, f"127.0.0.1:{dead}", "--tcp")
    # The relay accepts, fails to reach the target, and resets the client:
    # the reset may even beat the end of the client's own connect().
    try:
        with socket.create_connection(("127.0.0.1", r.ports["tcp"]), timeout=5) as c:
            data = c.recv(10)
    except ConnectionResetError:
        data = b""
    assert data == b""
    code, out, _ = r.stop()
    assert code == 0 and "tcp 1 connection," in out


def test_lossy_udp_from_the_cli_reports_counters(redirect_cli, udp_target):
    r = redirect_cli(0, f"127.0.0.1:{udp_target.port}", "--udp", "--loss", "50%",
                     "--seed", "4", "--json")
    got = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(0.2)
        for i in range(12):
            c.sendto(b"x%d" % i, ("127.0.0.1", r.ports["udp"]))
            try:
                c.recvfrom(100)
                got += 1
            except socket.timeout:
                pass
    code, out, _ = r.stop()
    assert code == 0
    stats = json.loads(out.strip().splitlines()[-1])
    udp = stats["udp"]
    assert stats["settings"]["loss"] == 0.5 and stats["settings"]["seed"] == 4
    assert udp["to_target"]["received"] == 12
    passed_up = 12 - udp["to_target"]["dropped"]
    assert udp["to_client"]["received"] == passed_up
    assert got == passed_up - udp["to_client"]["dropped"]
    assert 0 < udp["dropped"] == udp["to_target"]["dropped"] + udp["to_client"]["dropped"]


@pytest.mark.parametrize("argv", [
    ["0", "127.0.0.1:9", "--tcp", "--loss", "0.1"],
    ["0", "127.0.0.1:9", "--udp", "--loss", "1.5"],
    ["0", "127.0.0.1:x"],
    ["0", "127.0.0.1:0"],
    ["70000", "127.0.0.1:9"],
    ["0", "127.0.0.1:9", "--delay", "-5"],
])
def test_usage_errors(netlab_cli, argv):
    out = netlab_cli("redirect", *argv)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_listen_port_in_use_is_a_runtime_error(netlab_cli):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        out = netlab_cli("redirect", holder.getsockname()[1], "127.0.0.1:9", "--tcp")
    assert out.returncode == 1 and "in use" in out.stderr


def test_parse_target():
    assert parse_target("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_target("[::1]:7") == ("::1", 7)
    assert parse_target("8080") == ("127.0.0.1", 8080)


# ------------------------------------------------------------------ the lossy link (Python API)

def _lossy_run(target_port, n=300, **impair):
    """Send n numbered datagrams through a relay; return (arrivals, relay stats).

    The sink reads in its own thread while the burst is sent, so its socket
    buffer never overflows: every loss counted here is the relay's choice.
    """
    arrivals = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", target_port))
        sink.settimeout(0.4)

        def collect():
            while True:
                try:
                    arrivals.append(int.from_bytes(sink.recv(16), "big"))
                except socket.timeout:
                    return

        with start_redirect(0, "127.0.0.1", target_port, protocols=("udp",), **impair) as r:
            reader = threading.Thread(target=collect, daemon=True)
            reader.start()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as src:
                for i in range(n):
                    src.sendto(i.to_bytes(4, "big"), ("127.0.0.1", r.ports["udp"]))
                    if i % 50 == 49:
                        time.sleep(0.002)  # let the reader keep up with the burst
            reader.join(10)
            stats = r.stats()
    return arrivals, stats


def _observed(arrivals):
    """What a receiver sees: unique datagrams, duplicates, late (reordered) arrivals."""
    seen, dups, late, highest = set(), 0, 0, -1
    for seq in arrivals:
        if seq in seen:
            dups += 1
            continue
        seen.add(seq)
        if seq < highest:
            late += 1
        highest = max(highest, seq)
    return len(seen), dups, late


def test_lossy_link_counters_match_what_the_receiver_sees():
    port = free_port(socket.SOCK_DGRAM)
    arrivals, stats = _lossy_run(port, loss=0.2, duplicate=0.1, reorder=0.1, seed=7)
    up = stats["udp"]["to_target"]
    assert up["received"] == 300 and up["send_errors"] == 0
    unique, dups, late = _observed(arrivals)
    assert up["dropped"] == 300 - unique > 0
    assert up["duplicated"] == dups > 0
    assert up["reordered"] == late > 0
    assert up["sent"] == len(arrivals)
    assert stats["udp"]["dropped"] == up["dropped"]


def test_seed_makes_the_link_reproducible():
    port = free_port(socket.SOCK_DGRAM)
    first = _lossy_run(port, loss=0.3, duplicate=0.2, reorder=0.2, seed=42)
    second = _lossy_run(port, loss=0.3, duplicate=0.2, reorder=0.2, seed=42)
    other = _lossy_run(port, loss=0.3, duplicate=0.2, reorder=0.2, seed=43)
    assert first[0] == second[0]
    assert first[1]["udp"]["to_target"] == second[1]["udp"]["to_target"]
    assert first[0] != other[0]


def test_clean_link_loses_nothing_and_keeps_order():
    arrivals, stats = _lossy_run(free_port(socket.SOCK_DGRAM), n=500)
    assert arrivals == list(range(500))
    assert stats["udp"]["dropped"] == stats["udp"]["duplicated"] == stats["udp"]["reordered"] == 0


def test_udp_delay_keeps_order_and_delays():
    port = free_port(socket.SOCK_DGRAM)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", port))
        sink.settimeout(5)
        with start_redirect(0, "127.0.0.1", port, protocols=("udp",), delay_ms=80) as r:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as src:
                t0 = time.monotonic()
                for i in range(50):
                    src.sendto(bytes([i]), ("127.0.0.1", r.ports["udp"]))
                first = sink.recv(4)
                elapsed = time.monotonic() - t0
                rest = [sink.recv(4) for _ in range(49)]
    assert elapsed >= 0.075  # nothing arrives before the delay has passed
    assert [b[0] for b in [first] + rest] == list(range(50))


def test_tcp_with_delay_still_delivers_every_byte_in_order(tcp_target):
    payload = random.Random(2).randbytes(200_000)
    with start_redirect(0, "127.0.0.1", tcp_target.port, protocols=("tcp",), delay_ms=40) as r:
        t0 = time.monotonic()
        assert _tcp_round_trip(r.ports["tcp"], payload) == payload[::-1]
        elapsed = time.monotonic() - t0
        stats = r.stats()
    assert elapsed >= 0.075  # there and back: two delays at least
    assert stats["tcp"]["bytes_to_target"] == stats["tcp"]["bytes_to_client"] == len(payload)


def test_udp_flows_expire_when_idle(udp_target):
    with start_redirect(0, "127.0.0.1", udp_target.port, protocols=("udp",), udp_idle=0.2) as r:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(5)
            c.sendto(b"a", ("127.0.0.1", r.ports["udp"]))
            assert c.recv(10) == b"A"
            assert r.stats()["udp"]["active"] == 1
            deadline = time.monotonic() + 5
            while r.stats()["udp"]["expired"] == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert r.stats()["udp"] == dict(r.stats()["udp"], expired=1, active=0)
            # A new datagram from the same client starts a fresh flow that works.
            c.sendto(b"b", ("127.0.0.1", r.ports["udp"]))
            assert c.recv(10) == b"B"
        assert r.stats()["udp"]["clients"] == 2


def test_api_handle():
    r = start_redirect(0, "127.0.0.1", 9, protocols=("tcp", "udp"))
    try:
        assert set(r.ports) == {"tcp", "udp"}
        assert r.listen_urls() == [f"tcp://127.0.0.1:{r.ports['tcp']}",
                                   f"udp://127.0.0.1:{r.ports['udp']}"]
    finally:
        final = r.stop()
    assert final["tcp"]["connections"] == 0 and "redirect stopped" in r.summary()


@pytest.mark.skipif(not shutil.which("socat"), reason="needs socat (apt-get install socat)")
def test_full_duplex_through_socat_echo():
    """Both directions busy at once (an echo streams back while we still send):
    the relay must not deadlock when both of its buffers fill."""
    port = free_port()
    peer = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "EXEC:cat"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        payload = random.Random(3).randbytes(4_000_000)
        with start_redirect(0, "127.0.0.1", port, protocols=("tcp",)) as r:
            with socket.create_connection(("127.0.0.1", r.ports["tcp"]), timeout=20) as c:
                def send():
                    c.sendall(payload)
                    c.shutdown(socket.SHUT_WR)
                sender = threading.Thread(target=send, daemon=True)
                sender.start()
                chunks = []
                while True:
                    data = c.recv(1 << 16)
                    if not data:
                        break
                    chunks.append(data)
                sender.join(20)
        assert b"".join(chunks) == payload
    finally:
        if peer.poll() is None:
            peer.terminate()
        peer.wait(5)


def test_reordering_never_mixes_up_clients(udp_target):
    """A held datagram of one client, overtaken by another client's, still
    travels on its own client's flow, and its reply comes back to it."""
    with start_redirect(0, "127.0.0.1", udp_target.port, protocols=("udp",),
                        reorder=0.5, seed=5) as r:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for i in range(20):
                a.sendto(b"a%02d" % i, ("127.0.0.1", r.ports["udp"]))
                b.sendto(b"b%02d" % i, ("127.0.0.1", r.ports["udp"]))
            got = {}
            for name, sock in (("a", a), ("b", b)):
                sock.settimeout(0.5)
                got[name] = set()
                while True:
                    try:
                        got[name].add(sock.recv(16))
                    except socket.timeout:
                        break
        finally:
            a.close()
            b.close()
        stats = r.stats()["udp"]
    assert got["a"] == {b"A%02d" % i for i in range(20)}
    assert got["b"] == {b"B%02d" % i for i in range(20)}
    assert stats["reordered"] > 0
