"""``netlab net``: real network namespaces, real nftables rules, real peers (nmap).

Every test makes its own network under a name no one else uses (``t`` + this
process ID + a counter: namespaces ``netlab-tNNNN-h1`` ...) and removes it in
a ``finally``, pass or fail. Traffic only flows inside those namespaces: the
hosts' bridge lives in a namespace of its own, so not one packet can reach this
machine's network or any other. Ports are fixed numbers inside the fresh
namespaces (no other program can hold them there) because the tests are about
what rules on named ports do.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from netlab import net, sysinfo
from tests.conftest import ROOT, netlab_env, run_netlab

IS_ROOT = sysinfo.is_root()
needs_root = pytest.mark.skipif(
    not (IS_ROOT and shutil.which("ip")),
    reason="needs root and iproute2 (network namespaces); CI runs as root")
needs_nft = pytest.mark.skipif(not shutil.which("nft"),
                               reason="needs nft (Debian package nftables)")
needs_nmap = pytest.mark.skipif(not shutil.which("nmap"), reason="needs nmap (Debian package nmap)")

H1, H2 = net.host_address(1), net.host_address(2)
_COUNTER = itertools.count(1)


def _unique_name() -> str:
    return f"t{os.getpid() % 10**7}{next(_COUNTER)}"


@contextlib.contextmanager
def _network(hosts: int = 2, subnets: int = 1):
    name = _unique_name()
    try:
        net.up(name, hosts, subnets)
        yield name
    finally:
        net.down(name)


@pytest.fixture
def network():
    with _network() as name:
        yield name


def in_host(name: str, host: str, *command, input=None, timeout=30):
    """Run ``command`` in ``host`` through the real CLI (``netlab net run``)."""
    return run_netlab("net", "run", "--name", name, host, "--", *command, input=input,
                      timeout=timeout)


@contextlib.contextmanager
def serving(name: str, host: str, *server_args):
    """A netlab server running inside ``host`` until the block ends (stopped by its PID)."""
    argv = [sys.executable, "-m", "netlab", "net", "run", "--name", name, host, "--",
            "netlab", *server_args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=netlab_env(), cwd=ROOT)
    lines: "queue.Queue[str]" = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout],
                              daemon=True)
    reader.start()
    try:
        wanted = 1 if "--tcp" in server_args or "--udp" in server_args else 2
        seen, deadline = 0, time.monotonic() + 20
        while seen < wanted:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"server in {host} did not start within 20 s") from None
            seen += line.startswith("listening on")
        yield proc
    finally:
        proc.terminate()  # `net run` exec'd into the server: this PID is the server
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()


def echo(name: str, host: str, target: str, port: int, proto: str = "tcp", text: str = "hi"):
    return in_host(name, host, "netlab", "echo", "--client", f"--{proto}", "--host", target,
                   str(port), "-m", text, "--timeout", "2", "--retries", "1")


def _our_namespaces(name: str):
    listed = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return [e["name"] for e in json.loads(listed or "[]") if e["name"].startswith(f"netlab-{name}-")]


def _root_links():
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    return [link["ifname"] for link in json.loads(out)]


# --------------------------------------------------------------------------- up, ls, down

@needs_root
def test_up_ls_down_through_the_cli_leave_nothing_behind():
    name = _unique_name()
    links_before = set(_root_links())
    try:
        up = run_netlab("net", "up", "--hosts", "3", "--name", name, "--json")
        assert up.returncode == 0, up.stderr
        rows = json.loads(up.stdout)
        hosts = {r["host"]: r for r in rows if r["role"] == "host"}
        assert sorted(hosts) == ["h1", "h2", "h3"]
        assert [hosts[h]["addresses"] for h in ("h1", "h2", "h3")] == \
            [["198.18.1.1/24"], ["198.18.1.2/24"], ["198.18.1.3/24"]]
        assert sorted(_our_namespaces(name)) == sorted(r["namespace"] for r in rows)
        # Nothing was added to this machine's own network namespace.
        assert not {link for link in set(_root_links()) - links_before if name in link}
        ls = run_netlab("net", "ls", "--name", name, "--json")
        assert ls.returncode == 0 and json.loads(ls.stdout) == rows
        text = run_netlab("net", "ls", "--name", name).stdout
        assert f"netlab-{name}-h3" in text and "198.18.1.3/24" in text
        again = run_netlab("net", "up", "--name", name)
        assert again.returncode == 1 and "already up" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1
        # Each host has its own loopback, up.
        lo = in_host(name, "h2", "ip", "-j", "addr", "show", "dev", "lo")
        assert json.loads(lo.stdout)[0]["operstate"] in ("UNKNOWN", "UP")
        assert "127.0.0.1" in lo.stdout
    finally:
        down = run_netlab("net", "down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert f"removed 4 namespace(s)" in down.stdout
    assert _our_namespaces(name) == []
    assert not [link for link in _root_links() if name in link]
    assert run_netlab("net", "ls", "--name", name, "--json").stdout.strip() == "[]"


@needs_root
def test_down_cleans_up_after_a_crash():
    # What a crash in the middle of `net up` leaves: namespaces, one with half a link.
    name = _unique_name()
    made = [f"netlab-{name}-switch", f"netlab-{name}-h1", f"netlab-{name}-h2"]
    try:
        for ns in made:
            subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", made[0], "link", "add", "name", "h1", "type", "veth",
                        "peer", "name", "eth0", "netns", made[1]], check=True)
        down = run_netlab("net", "down", "--name", name, "--json")
        assert down.returncode == 0, down.stderr
        assert sorted(json.loads(down.stdout)["removed"]) == sorted(made)
        assert _our_namespaces(name) == []
    finally:
        for ns in _our_namespaces(name):
            subprocess.run(["ip", "netns", "delete", ns], check=False)


# --------------------------------------------------------------------------- reachability

@needs_root
def test_hosts_reach_each_other_over_tcp_and_udp(network):
    with serving(network, "h2", "echo", "7007", "--host", "0.0.0.0"):
        for proto in ("tcp", "udp"):
            got = echo(network, "h1", H2, 7007, proto, f"hello over {proto}")
            assert got.returncode == 0, got.stderr
            assert f"hello over {proto}" in got.stdout
    # The server is gone: the same connection is now refused by h2's kernel.
    gone = echo(network, "h1", H2, 7007)
    assert gone.returncode == 1 and "refused" in gone.stderr


@needs_root
def test_two_subnets_talk_through_the_router():
    with _network(hosts=4, subnets=2) as name:
        rows = {r["host"]: r for r in net.describe(name)}
        assert rows["h1"]["addresses"] == ["198.18.1.1/24"]
        assert rows["h4"]["addresses"] == ["198.18.2.4/24"]
        assert sorted(rows["router"]["addresses"]) == ["198.18.1.254/24", "198.18.2.254/24"]
        with serving(name, "h4", "echo", "--tcp", "7007", "--host", "0.0.0.0"):
            got = echo(name, "h1", "198.18.2.4", 7007, text="across the router")
            assert got.returncode == 0, got.stderr
            assert "across the router" in got.stdout


@needs_root
def test_binding_0000_vs_127001_vs_host_address_seen_from_another_host(network):
    with serving(network, "h1", "echo", "--tcp", "8001", "--host", "0.0.0.0"), \
            serving(network, "h1", "echo", "--tcp", "8002", "--host", "127.0.0.1"), \
            serving(network, "h1", "echo", "--tcp", "8003", "--host", H1):
        from_h2 = {port: echo(network, "h2", H1, port) for port in (8001, 8002, 8003)}
        assert from_h2[8001].returncode == 0 and "hi" in from_h2[8001].stdout
        assert from_h2[8003].returncode == 0 and "hi" in from_h2[8003].stdout
        # 127.0.0.1 is h1's own loopback: another host cannot reach it.
        assert from_h2[8002].returncode == 1 and "refused" in from_h2[8002].stderr
        # ... and a server bound to h1's address is not on h1's loopback.
        local = {port: echo(network, "h1", "127.0.0.1", port) for port in (8001, 8002, 8003)}
        assert local[8001].returncode == 0 and local[8002].returncode == 0
        assert local[8003].returncode == 1 and "refused" in local[8003].stderr
    # h1 cannot bind an address it does not have (h2's).
    foreign = in_host(network, "h1", "netlab", "echo", "--tcp", "8004", "--host", H2)
    assert foreign.returncode == 1 and "not an address of this machine" in foreign.stderr
    assert len(foreign.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- firewall vs scanners

OPEN, DROPPED, REJECTED, NOBODY = 8001, 8002, 8003, 8004
PORTS = f"{OPEN}-{NOBODY}"


def _netlab_scan(name: str, proto: str) -> dict:
    got = in_host(name, "h2", "netlab", "scan", H1, PORTS, f"--{proto}", "--authorized",
                  "--json", "--timeout", "1", timeout=60)
    assert got.returncode == 0, got.stderr
    return {r["port"]: r["state"] for r in json.loads(got.stdout)}


def _nmap(name: str, proto: str) -> dict:
    kind = "-sS" if proto == "tcp" else "-sU"
    got = in_host(name, "h2", "nmap", kind, "-Pn", "-n", "-p", PORTS, "--max-retries", "1",
                  "--max-rtt-timeout", "500ms", "-oX", "-", H1, timeout=120)
    assert got.returncode == 0, got.stderr
    tree = ET.fromstring(got.stdout)
    return {int(p.get("portid")): p.find("state").get("state") for p in tree.iter("port")}


def _firewall(name: str, action: str, port: int, proto: str):
    extra = ["--udp"] if proto == "udp" else []
    done = run_netlab("net", "firewall", "--name", name, "h1", action, str(port), *extra)
    assert done.returncode == 0, done.stderr
    return done


@needs_root
@needs_nft
@needs_nmap
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_drop_reject_open_closed_as_netlab_scan_and_nmap_see_them(network, proto):
    # A server listens on OPEN, DROPPED and REJECTED; nothing on NOBODY.
    with contextlib.ExitStack() as stack:
        for port in (OPEN, DROPPED, REJECTED):
            stack.enter_context(serving(network, "h1", "echo", f"--{proto}", str(port),
                                        "--host", "0.0.0.0"))
        _firewall(network, "drop", DROPPED, proto)
        _firewall(network, "reject", REJECTED, proto)
        rules = json.loads(run_netlab("net", "rules", "--name", network, "h1", "--json").stdout)
        assert {(r["action"], r["proto"], r["port"]) for r in rules} == \
            {("drop", proto, DROPPED), ("reject", proto, REJECTED)}
        ours, theirs = _netlab_scan(network, proto), _nmap(network, proto)
        silent = "filtered" if proto == "tcp" else "open|filtered"
        assert ours == {OPEN: "open", DROPPED: silent, REJECTED: "closed", NOBODY: "closed"}
        assert theirs == ours
        # allow undoes the drop: the server behind it answers again.
        _firewall(network, "allow", DROPPED, proto)
        assert _netlab_scan(network, proto)[DROPPED] == "open"


# --------------------------------------------------------------------------- kernel redirect

@needs_root
@needs_nft
def test_kernel_redirect_80_to_8080_reaches_a_netlab_server(network):
    with serving(network, "h1", "echo", "8080", "--host", "0.0.0.0"):
        before = echo(network, "h2", H1, 80)
        assert before.returncode == 1 and "refused" in before.stderr
        for extra in ([], ["--udp"]):
            done = run_netlab("net", "redirect", "--name", network, "h1", "80", "8080", *extra)
            assert done.returncode == 0, done.stderr
            assert "redirects" in done.stdout
        for proto in ("tcp", "udp"):
            # From another host (prerouting) and from h1 itself (output).
            for host, target in (("h2", H1), ("h1", "127.0.0.1")):
                got = echo(network, host, target, 80, proto, f"to 80 over {proto}")
                assert got.returncode == 0, (host, proto, got.stderr)
                assert f"to 80 over {proto}" in got.stdout
        rules = run_netlab("net", "rules", "--name", network, "h1")
        assert "redirect to :8080" in rules.stdout
        flushed = run_netlab("net", "rules", "--name", network, "h1", "--flush", "--json")
        assert flushed.returncode == 0 and json.loads(flushed.stdout) == []
        after = echo(network, "h2", H1, 80)
        assert after.returncode == 1 and "refused" in after.stderr


# --------------------------------------------------------------------------- link shaping

@needs_root
def test_rate_limits_the_link_and_delay_needs_netem(network):
    done = run_netlab("net", "link", "--name", network, "h1", "--rate", "1mbit")
    assert done.returncode == 0, done.stderr
    row = [r for r in net.describe(network) if r["host"] == "h1"][0]
    assert row["link"]["qdisc"] == "tbf" and row["link"]["rate_bit"] == 1_000_000
    # 400 kB at 1 Mbit/s take at least 3.2 s on the wire; unshaped, milliseconds.
    data = "x" * 400_000
    with serving(network, "h2", "discard", "--tcp", "7009", "--host", "0.0.0.0"):
        start = time.monotonic()
        sent = in_host(network, "h1", "netlab", "discard", "--client", "--tcp", "--host", H2,
                       "7009", input=data, timeout=60)
        took = time.monotonic() - start
    assert sent.returncode == 0, sent.stderr
    assert took > 2.0, f"400 kB through a 1 Mbit/s link took only {took:.2f} s"
    delay = run_netlab("net", "link", "--name", network, "h1", "--delay", "20")
    if delay.returncode == 0:   # a kernel with netem
        assert [r for r in net.describe(network) if r["host"] == "h1"][0]["link"]["delay_ms"] == 20
    else:
        assert delay.returncode == 1
        assert "netem" in delay.stderr and "netlab redirect" in delay.stderr
        assert len(delay.stderr.strip().splitlines()) == 1
    cleared = run_netlab("net", "link", "--name", network, "h1", "--clear")
    assert cleared.returncode == 0 and "link -" in cleared.stdout


# --------------------------------------------------------------------------- refusals

def _unprivileged_python():
    """An interpreter the user nobody may run (pyenv under /root often is not)."""
    for python in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                python, "-c", "import netlab.cli"],
                               capture_output=True, env=netlab_env(), cwd=ROOT)
        if probe.returncode == 0:
            return python
    return None


@pytest.mark.parametrize("argv", [["ls"], ["up", "--hosts", "2"], ["down"],
                                  ["firewall", "h1", "drop", "80"]])
def test_refused_without_root_in_one_line(argv):
    if IS_ROOT:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv (Debian package util-linux) to become nobody")
        python = _unprivileged_python()
        if python is None:
            pytest.skip("no Python interpreter here that the user nobody may run")
        try:
            pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("needs a user named nobody")
        got = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                              python, "-m", "netlab", "net", *argv], capture_output=True,
                             text=True, env=netlab_env(), cwd=ROOT, timeout=60)
    else:
        got = run_netlab("net", *argv)
    assert got.returncode == 1
    assert got.stderr.count("\n") == 1 and "needs root" in got.stderr
    assert "Traceback" not in got.stderr


@pytest.mark.parametrize("argv", [
    ["up", "--hosts", "0"], ["up", "--hosts", "abc"], ["up", "--name", "Bad-Name"],
    ["up", "--rate", "fast"], ["up", "--delay", "-5"], ["up", "--subnets", "3"],
    ["firewall", "h1", "block", "80"], ["firewall", "h1", "drop", "70000"],
    ["redirect", "h1", "80"], ["link", "h1", "--rate", "10 parsecs"], [],
])
def test_bad_input_is_a_one_line_usage_error(argv):
    got = run_netlab("net", *argv)
    assert got.returncode == 2, got.stderr
    assert got.stderr.count("\n") == 1 and "Traceback" not in got.stderr


@needs_root
def test_a_host_that_is_not_there_is_one_line():
    name = _unique_name()
    got = run_netlab("net", "run", "--name", name, "h1", "--", "true")
    assert got.returncode == 1 and f"network {name} is not up" in got.stderr
    assert got.stderr.count("\n") == 1
    with _network() as up:
        got = run_netlab("net", "firewall", "--name", up, "h7", "drop", "80")
        assert got.returncode == 1 and "no host 'h7'" in got.stderr
        missing = in_host(up, "h1", "no-such-program-here")
        assert missing.returncode == 1 and missing.stderr.count("\n") == 1
        status = in_host(up, "h1", "sh", "-c", "exit 3")
        assert status.returncode == 3   # the command's own exit status


# --------------------------------------------------------------------------- the tour's step

@needs_root
@needs_nft
def test_tour_step_shows_binding_and_the_firewall_from_another_host():
    from netlab.tour import STEPS

    number = [s.number for s in STEPS if s.lesson == "lessons/network"][0]
    got = run_netlab("tour", "--step", number, timeout=120)
    assert got.returncode == 0, got.stderr
    assert "tour done: 1 of 1 step(s) ran" in got.stdout
    rows = dict(re.findall(r"^\s+(\d+)/tcp\s+(\S+)", got.stdout, re.M))
    assert rows == {"7001": "open", "7002": "closed", "7003": "filtered", "7004": "closed",
                    "7005": "closed"}
    # The step removed its network again.
    name = re.search(r"network (tour\d+):", got.stdout).group(1)
    assert _our_namespaces(name) == []


@needs_root
def test_missing_nft_is_one_line_naming_the_package(monkeypatch, capsys):
    # The one stand-in of this file: a machine without nft is simulated by
    # hiding the program from the lookup, since this machine has it installed.
    from netlab import cli
    from netlab.net import _shell

    real_which = shutil.which
    monkeypatch.setattr(_shell.shutil, "which",
                        lambda name, *a, **k: None if name == "nft" else real_which(name, *a, **k))
    assert cli.main(["net", "firewall", "h1", "drop", "80"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nftables" in err and "apt-get install nftables" in err


@needs_root
def test_up_with_delay_says_netem_is_missing_and_leaves_nothing():
    name = _unique_name()
    try:
        got = run_netlab("net", "up", "--name", name, "--delay", "20", "--rate", "10mbit", "-v")
        if got.returncode == 0:   # a kernel with netem: every host link is delayed
            assert "+ tc -n" in got.stdout and "netem delay 20ms" in got.stdout
            assert all(r["link"]["delay_ms"] == 20 for r in net.describe(name)
                       if r["role"] == "host")
        else:
            assert got.returncode == 1 and got.stderr.count("\n") == 1
            assert "no netem" in got.stderr and "netlab redirect" in got.stderr
            assert "+ ip netns add" in got.stdout   # --verbose showed each step
            assert _our_namespaces(name) == []      # the half-made network was removed
    finally:
        net.down(name)
