"""Issue 12, redirect and --host: what hostile load and odd input found.

* ``--host ""`` is a usage error (servers and redirect); ``--host [::1]`` works.
* ``redirect --udp`` bound to every address answers from the address the
  client sent to (a connected client drops anything else).
* At the 4,096-flow cap a new UDP flow costs O(1), so new sources keep being
  answered; a refused target is said in the text summary, and the UDP summary
  counts only datagrams that reached the target.
* One rule for other hosts, shared with scan: ``--authorized``.

All traffic stays on loopback (127.0.0.0/8, ::1).
"""
from __future__ import annotations

import json
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

import pytest

from netlab import binding, pktinfo
from netlab.services.lossy import LossyLink
from netlab.redirect import Redirector, start_redirect
from tests.conftest import ROOT, interrupt_netlab, netlab_env

# ------------------------------------------------------------------ --host


@pytest.mark.parametrize("argv", [
    ["echo", "--host", ""], ["echo", "--host", " "], ["daytime", "--client", "--host", ""],
    ["redirect", "0", "127.0.0.1:9", "--host", ""], ["echo", "--host", "[127.0.0.1]"],
    ["redirect", "0", "127.0.0.1:9", "--host", "[::1"],
])
def test_bad_host_is_a_one_line_usage_error(netlab_cli, argv):
    # Regression: "" bound every interface and printed tcp://:PORT.
    out = netlab_cli(*argv, timeout=20)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host" in lines[0], lines
    assert "listening" not in out.stdout


def test_bracketed_ipv6_host_is_accepted(netlab_cli):
    # Regression: [::1], the form netlab prints, was "unknown host".
    for out in (interrupt_netlab("echo", "--tcp", "0", "--host", "[::1]", after=6.0),
                netlab_cli("redirect", "0", "[::1]:9", "--tcp", "--host", "[::1]",
                           "--seconds", "0.5")):
        assert out.returncode == 0, out.stderr
    assert re.search(r"^listening on tcp://\[::1\]:\d+$", out.stdout, re.M), out.stdout


def test_parse_host():
    assert binding.parse_host("[::1]") == "::1"
    assert binding.parse_host(" 127.0.0.1 ") == "127.0.0.1"
    assert binding.parse_host("localhost") == "localhost"
    for bad in ("", "  ", "[]", "[127.0.0.1]", "[::1", "::1]"):
        with pytest.raises(binding.UsageError):
            binding.parse_host(bad)


# ------------------------------------------------------------------ real peers

class UdpEcho:
    """A UDP echo peer in a thread, on 127.0.0.1."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
                self.sock.sendto(data, addr)
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def udp_echo():
    peer = UdpEcho()
    yield peer
    peer.close()


def _dead_port(kind):
    """A port with nobody on it: bound, then freed."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ item 6: reply address

@pytest.mark.parametrize("dest", ["127.0.0.5", "127.0.0.1"])
def test_wildcard_udp_relay_answers_from_the_address_sent_to(udp_echo, dest):
    # Regression: bound to 0.0.0.0, the reply to 127.0.0.5 left from
    # 127.0.0.1 and the client's connected socket dropped it.
    with start_redirect(0, "127.0.0.1", udp_echo.port, host="0.0.0.0",
                        protocols=("udp",)) as relay:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            client.connect((dest, relay.ports["udp"]))
            client.settimeout(3)
            client.send(b"ping")
            assert client.recv(100) == b"ping"


def test_pktinfo_reports_and_sets_the_local_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        server.bind(("0.0.0.0", 0))
        server.settimeout(3)
        pktinfo.enable(server)
        client.bind(("127.0.0.1", 0))
        client.connect(("127.0.0.7", server.getsockname()[1]))
        client.settimeout(3)
        client.send(b"hi")
        data, peer, local_ip = pktinfo.recv(server, 100)
        assert (data, peer, local_ip) == (b"hi", client.getsockname(), "127.0.0.7")
        assert pktinfo.send(server, b"back", peer, local_ip) == 4
        assert client.recv(100) == b"back"   # a connected socket: only from 127.0.0.7


def test_pktinfo_on_a_socket_bound_to_one_address_is_plain_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        server.bind(("127.0.0.1", 0))
        server.settimeout(3)
        pktinfo.enable(server)
        client.settimeout(3)
        client.sendto(b"x", server.getsockname())
        data, peer, local_ip = pktinfo.recv(server, 100)
        assert (data, local_ip) == (b"x", None)
        pktinfo.send(server, b"y", peer, None)
        assert client.recv(10) == b"y"


def test_lossy_link_is_sans_io_and_reproducible():
    def fates(seed):
        link = LossyLink(loss=0.2, duplicate=0.2, reorder=0.2, seed=seed)
        out = []
        for i in range(200):
            sent, _held = link.decide(i)
            out += sent
        return out + link.release(), link.stats

    first, stats = fates("s")
    assert (first, stats) == fates("s") and first != fates("t")[0]
    assert stats["received"] == 200 and stats["dropped"] > 0 and stats["reordered"] > 0
    assert len(first) == 200 - stats["dropped"] + stats["duplicated"]
    clean = LossyLink()
    assert [clean.decide(i) for i in range(3)] == [([0], False), ([1], False), ([2], False)]


def test_ipv6_wildcard_udp_relay_answers(udp_echo):
    with start_redirect(0, "127.0.0.1", udp_echo.port, host="::", protocols=("udp",)) as relay:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as client:
            client.connect(("::1", relay.ports["udp"]))
            client.settimeout(3)
            client.send(b"ping6")
            assert client.recv(100) == b"ping6"


# ------------------------------------------------------------------ item 9: summaries

def _redirect_cli(*args):
    return subprocess.Popen([sys.executable, "-m", "netlab", "redirect", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=netlab_env())


def _listening_port(proc):
    for _ in range(5):
        line = proc.stdout.readline()
        m = re.match(r"listening on \w+://127\.0\.0\.1:(\d+)", line)
        if m:
            return int(m.group(1))
    raise AssertionError("no listening line: " + proc.stderr.read())


def _stop(proc):
    proc.send_signal(2)
    out, err = proc.communicate(timeout=10)
    return out, err


def test_refused_tcp_target_is_said_in_the_text_summary():
    proc = _redirect_cli(0, f"127.0.0.1:{_dead_port(socket.SOCK_STREAM)}", "--tcp")
    try:
        port = _listening_port(proc)
        for _ in range(2):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    assert c.recv(10) == b""
            except ConnectionResetError:
                pass   # the relay resets the client: the target refused
        time.sleep(0.3)
        out, err = _stop(proc)
    finally:
        proc.kill()
        proc.communicate()
    summary = out.strip().splitlines()[-1]
    assert "2 connections" in summary and "target refused 2" in summary, summary


def test_udp_summary_counts_only_datagrams_that_reached_the_target():
    # Regression: with nothing listening at the target, the summary said
    # "3 datagrams to target" and nothing about the refusal.
    proc = _redirect_cli(0, f"127.0.0.1:{_dead_port(socket.SOCK_DGRAM)}", "--udp")
    try:
        port = _listening_port(proc)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            for i in range(3):
                c.sendto(b"x", ("127.0.0.1", port))
                time.sleep(0.3)   # one ICMP error per datagram, read before the next
        out, err = _stop(proc)
    finally:
        proc.kill()
        proc.communicate()
    summary = out.strip().splitlines()[-1]
    assert "udp 1 client, 0 datagrams to target" in summary, summary
    assert "target refused 3" in summary, summary


# ------------------------------------------------------------------ item 9: the rule

def test_off_box_target_needs_authorized(netlab_cli):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): refused before anything is bound or sent.
    out = netlab_cli("redirect", "0", "192.0.2.1:80", "--tcp", "--seconds", "1")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--authorized" in lines[0], lines
    with pytest.raises(binding.UsageError):
        Redirector(0, "192.0.2.1", 80, protocols=("tcp",))
    # With the flag it is accepted; no client comes, so nothing is sent.
    Redirector(0, "192.0.2.1", 80, protocols=("tcp",), authorized=True).close()


# ------------------------------------------------------------------ item 9: the flow cap

CAP = 4096


def new_flow_answers(relay_port: int, fill: int = CAP, new: int = 4000,
                     per_second: float = 1000.0, grace: float = 1.0) -> int:
    """Fill the relay's flow table with ``fill`` sources, then send one datagram
    from each of ``new`` fresh sources at ``per_second``; return how many of
    the fresh ones got their answer (within ``grace`` s after the last send)."""
    sel = selectors.DefaultSelector()
    socks = []
    try:
        def source():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            return s

        def drain(until):
            got = 0
            while True:
                left = until - time.monotonic()
                events = sel.select(max(0.0, left))
                for key, _ in events:
                    try:
                        key.fileobj.recv(64)
                        got += key.data
                    except OSError:
                        pass
                    sel.unregister(key.fileobj)
                if left <= 0:
                    return got

        for start in range(0, fill, 256):   # the table fills up: 4,096 live flows
            for _ in range(min(256, fill - start)):
                s = source()
                sel.register(s, selectors.EVENT_READ, 0)
                s.sendto(b"f", ("127.0.0.1", relay_port))
            drain(time.monotonic() + 0.05)
        answered = 0
        t0 = time.monotonic()
        for i in range(new):
            s = source()
            sel.register(s, selectors.EVENT_READ, 1)
            s.sendto(b"n", ("127.0.0.1", relay_port))
            answered += drain(t0 + (i + 1) / per_second)
        answered += drain(time.monotonic() + grace)
        return answered
    finally:
        sel.close()
        for s in socks:
            s.close()


@pytest.mark.slow
def test_new_flows_are_answered_at_the_flow_cap():
    # Regression: each new flow at the cap searched all 4,096 for the oldest;
    # 94 of 4,000 new sources at 1,000/s were answered.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * CAP + 4000 + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"needs {need} open files (ulimit -n; the hard limit is {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    echo = subprocess.Popen(
        [sys.executable, "-c",
         "import socket\n"
         "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))\n"
         "print(s.getsockname()[1], flush=True)\n"
         "while True:\n"
         "    d, a = s.recvfrom(2048); s.sendto(d, a)"], stdout=subprocess.PIPE, text=True)
    relay = None
    try:
        target = int(echo.stdout.readline())
        relay = _redirect_cli(0, f"127.0.0.1:{target}", "--udp")
        answered = new_flow_answers(_listening_port(relay))
        out, _ = _stop(relay)
    finally:
        for proc in (echo, relay):
            if proc is not None:
                proc.kill()
                proc.communicate()
    assert answered >= 3000, f"only {answered} of 4000 new sources answered at the cap"
    assert "evicted" in out.strip().splitlines()[-1]
