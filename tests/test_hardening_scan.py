"""Issue 12, scan: no phantom open ports, fast defaults at home, polite ones elsewhere.

The phantom tests run the real CLI inside an empty network namespace the test
creates (``nlscan-...``, removed even on failure), where nothing listens at
all: every "open" port there is a phantom. The namespace's ephemeral range is
narrowed to the two ports scanned, so that ``connect()`` is sure to pick the
probed port for its own end now and then; that is the defect, made certain
instead of rare (over the full ephemeral range it happens a few times per scan).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid

import pytest

from netlab import scan
from tests.conftest import netlab_env, ROOT

EPHEMERAL = (40000, 40001)


def _need_netns():
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace (ip netns add)")
    if not shutil.which("ip"):
        pytest.skip("needs ip (Debian: apt-get install iproute2)")


@contextlib.contextmanager
def scan_netns(ephemeral=None):
    """An empty network namespace with loopback up (and, given ``(lo, hi)``,
    that ephemeral port range); removed on the way out, even on failure."""
    _need_netns()
    name = f"nlscan-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        commands = [["ip", "link", "set", "lo", "up"]]
        if ephemeral:
            commands.append(["sysctl", "-q", "-w",
                             f"net.ipv4.ip_local_port_range={ephemeral[0]} {ephemeral[1]}"])
        for cmd in commands:
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10)


@pytest.fixture
def empty_netns():
    """An empty namespace whose ephemeral range is the two ports ``EPHEMERAL``."""
    with scan_netns(EPHEMERAL) as name:
        yield name


def _scan_in(ns: str, *args: str, timeout: float = 60) -> list:
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "netlab", "scan",
                          *args, "--json"], capture_output=True, text=True, timeout=timeout,
                         cwd=ROOT, env=netlab_env())
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.root
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_no_phantom_open_ports_in_an_empty_namespace(empty_netns, proto):
    # Before the fix the TCP probe of 40000 got local port 40000 every time
    # (simultaneous open with itself), and a UDP probe read its own datagram
    # in about half the scans.
    ports = f"{EPHEMERAL[0]}-{EPHEMERAL[1]}"
    seen = []
    for _ in range(8):
        rows = _scan_in(empty_netns, "127.0.0.1", ports, f"--{proto}", "--timeout", "0.3",
                        "--retries", "0")
        assert [r["port"] for r in rows] == list(EPHEMERAL)
        seen += [r["state"] for r in rows]
    assert seen == ["closed"] * len(seen), seen


@pytest.mark.root
def test_scan_agrees_with_nmap_in_the_namespace(empty_netns):
    if not shutil.which("nmap"):
        pytest.skip("needs nmap (Debian: apt-get install nmap)")
    # A TCP listener inside the namespace, on a port outside the ephemeral range.
    with subprocess.Popen(
            ["ip", "netns", "exec", empty_netns, "python3", "-c",
             "import socket,sys,time\n"
             "s=socket.socket(); s.bind(('127.0.0.1', 5555)); s.listen(64)\n"
             "print('ready', flush=True); time.sleep(60)"],
            stdout=subprocess.PIPE, text=True) as listener:
        try:
            assert listener.stdout.readline().strip() == "ready"
            rows = _scan_in(empty_netns, "127.0.0.1", "5550-5560,40000-40001")
            nmap = subprocess.run(["ip", "netns", "exec", empty_netns, "nmap", "-sT", "-n",
                                   "-Pn", "-p", "5550-5560,40000-40001", "-oG", "-",
                                   "127.0.0.1"], capture_output=True, text=True, timeout=60)
        finally:
            listener.kill()
    ours = {r["port"] for r in rows if r["state"] == "open"}
    theirs = {int(field.split("/")[0]) for line in nmap.stdout.splitlines()
              if "Ports:" in line for field in line.split("Ports:")[1].split(",")
              if "/open/" in field}
    assert ours == theirs == {5555}


def test_mapped_loopback_is_this_machine(netlab_cli):
    # Regression: ::ffff:127.0.0.1 was refused as "not this machine".
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        out = netlab_cli("scan", "::ffff:127.0.0.1", str(port), "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert (row["port"], row["state"]) == (port, "open")
    assert scan.is_own_address("::ffff:127.0.0.1")
    assert not scan.is_own_address("::ffff:192.0.2.1")


def test_bracketed_ipv6_target_is_accepted(netlab_cli):
    with socket.socket(socket.AF_INET6) as srv:
        srv.bind(("::1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        out = netlab_cli("scan", "[::1]", str(port), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["state"] == "open"


def test_pace_is_free_at_home_and_polite_elsewhere():
    # Before: one default for every host (TCP 200 in flight with no rate
    # limit, UDP 500/s), so this machine was slow and another host was not spared.
    for proto in ("tcp", "udp"):
        home = scan.default_pace(proto, "127.0.0.1")
        away = scan.default_pace(proto, "192.0.2.1")   # TEST-NET-1: only looked at, never sent to
        assert home.rate is None and home.concurrency >= 500
        assert away.rate is not None and away.rate <= 500
        assert away.concurrency <= 100
    assert scan.default_pace("udp", "::ffff:127.0.0.1").rate is None


@pytest.mark.root
def test_probes_wait_for_a_free_local_port(empty_netns):
    # Four silent UDP services and two local ports: the third probe finds no
    # port to bind and must wait for an earlier probe to time out, not fail.
    with subprocess.Popen(
            ["ip", "netns", "exec", empty_netns, sys.executable, "-c",
             "import socket,time\n"
             "s=[socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]\n"
             "[x.bind(('127.0.0.1', 5000 + i)) for i, x in enumerate(s)]\n"
             "print('ready', flush=True); time.sleep(60)"],
            stdout=subprocess.PIPE, text=True) as silent:
        try:
            assert silent.stdout.readline().strip() == "ready"
            rows = _scan_in(empty_netns, "127.0.0.1", "5000-5003", "--udp", "--timeout", "0.3",
                            "--retries", "0")
        finally:
            silent.kill()
    assert [r["state"] for r in rows] == ["open|filtered"] * 4


def test_udp_retries_keep_to_the_kernels_icmp_budget():
    # The first round on this machine is unlimited; a retry round (ports that
    # were silent) goes no faster than this kernel sends ICMP errors.
    path = "/proc/sys/net/ipv4/icmp_msgs_per_sec"
    if not os.path.exists(path):
        pytest.skip("needs Linux's net.ipv4.icmp_msgs_per_sec")
    with open(path) as f:
        budget = float(f.read())
    home = scan.default_pace("udp", "127.0.0.1")
    slowed = scan._within_icmp_budget(home)
    assert slowed.rate == budget and slowed.concurrency == home.concurrency
    polite = scan.Pace(20, budget / 10, 1.0)
    assert scan._within_icmp_budget(polite) == polite
