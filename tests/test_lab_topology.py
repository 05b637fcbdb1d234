"""The private chain of routers a lab 16 check runs the student's traceroute in.

Real namespaces, veth pairs and nftables rules, made by the grader's keeper
process in a mount namespace of its own: the tests look at them from inside
(the wiring, a real probe across the routers) and from outside (nothing shows
up in this machine's network, nothing survives a timeout).
"""
from __future__ import annotations

import json
import os
import pathlib
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from netlab.labs import _topology
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeFailed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")
    or not shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin"),
    reason="builds network namespaces: needs root, iproute2 and nftables (CI runs as root)")


def _links() -> list:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return sorted(dev["ifname"] for dev in json.loads(out))


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _probe(target: str, ttl: int, timeout: float = 1.0):
    """One UDP probe with ``ttl`` from here: (ICMP type, offender) from the error queue, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.sendto(b"probe", (target, 33434 + ttl))
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(timeout * 1000):
            return None
        _, ancillary, _, _ = sock.recvmsg(64, 512, socket.MSG_ERRQUEUE)
        data = ancillary[0][2]
        return struct.unpack_from("=IBBBBII", data)[2], socket.inet_ntoa(data[20:24])


@needs_root
def test_the_chain_is_wired_as_described_and_private():
    links_before, netns_before = _links(), _netns_list()

    def inside(chain):
        addresses = {}
        for name, ns in chain.namespaces.items():
            out = subprocess.run(["ip", "-n", ns, "-j", "-4", "addr", "show"], capture_output=True,
                                 text=True, check=True).stdout
            addresses[name] = sorted(f"{dev['ifname']} {a['local']}" for dev in json.loads(out)
                                     for a in dev.get("addr_info", []) if dev["ifname"] != "lo")
        hops = [_probe(chain.target, ttl) for ttl in range(1, len(chain.path) + 1)]
        return {"addresses": addresses, "hops": hops, "path": chain.path, "target": chain.target,
                "seen_from_outside": _netns_list(), "links_outside": _links()}

    got = _topology.in_chain(inside, routers=2)
    assert got["addresses"] == {"h1": ["eth0 198.19.1.1"], "r1": ["left 198.19.1.2", "right 198.19.2.1"],
                                "r2": ["left 198.19.2.2", "right 198.19.3.1"], "h2": ["eth0 198.19.3.2"]}
    assert got["path"] == ["198.19.1.2", "198.19.2.2", "198.19.3.2"] and got["target"] == "198.19.3.2"
    # Time exceeded from each router, from the address the probe came in on; port unreachable from h2.
    assert got["hops"] == [[11, "198.19.1.2"], [11, "198.19.2.2"], [3, "198.19.3.2"]]
    # The keeper ran in h1: only h1's own interfaces, none of this machine's.
    assert got["links_outside"] == ["eth0", "lo"]
    # Its namespaces were bound in a /run/netns of its own: this machine never saw them.
    assert "nltr-" not in netns_before and "nltr-" not in _netns_list()
    assert _links() == links_before


@needs_root
def test_a_silent_router_sends_no_time_exceeded():
    def inside(chain):
        return [_probe(chain.target, ttl, timeout=0.5) for ttl in (1, 2, 3)]

    got = _topology.in_chain(inside, silent={"r1": ["time-exceeded"]})
    assert got == [None, [11, "198.19.2.2"], [3, "198.19.3.2"]]
    got = _topology.in_chain(inside, silent={"h2": ["destination-unreachable"]})
    assert got == [[11, "198.19.1.2"], [11, "198.19.2.2"], None]


def _processes_in(kind: str, inode: int) -> list:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}/ns/{kind}").st_ino == inode:
                    found.append(int(pid))
            except OSError:
                continue
    return found


@needs_root
def test_a_timeout_kills_the_keeper_and_frees_its_namespaces(tmp_path):
    record = tmp_path / "keeper.json"

    def hang(chain):
        record.write_text(json.dumps({"pid": os.getpid(), "net": os.stat("/proc/self/ns/net").st_ino,
                                      "mnt": os.stat("/proc/self/ns/mnt").st_ino}))
        sleeper = subprocess.Popen(["sleep", "60"])  # a child of the keeper, in h1
        sleeper.wait()

    start = time.monotonic()
    with pytest.raises(CheckFailed, match="did not finish within 3 s"):
        _topology.in_chain(hang, timeout=3)
    assert time.monotonic() - start < 10
    seen = json.loads(record.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (_processes_in("net", seen["net"]) or _processes_in("mnt", seen["mnt"])):
        time.sleep(0.05)
    # Nobody is left in h1 or in the keeper's mount namespace, which held the
    # only references to the chain's namespaces: the kernel has freed them.
    assert not _processes_in("net", seen["net"]) and not _processes_in("mnt", seen["mnt"])
    assert not os.path.exists(f"/proc/{seen['pid']}")
    assert "nltr-" not in _netns_list()


@needs_root
def test_check_failures_come_back_as_themselves():
    def failing(chain):
        raise CheckFailed(f"hop 1 is not {chain.path[0]}")

    with pytest.raises(CheckFailed, match=r"hop 1 is not 198\.19\.1\.2"):
        _topology.in_chain(failing, routers=1)

    def probe_failing(chain):
        raise ProbeFailed("traceroute.py does not compile")

    with pytest.raises(ProbeFailed, match="does not compile"):
        _topology.in_chain(probe_failing, routers=1)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="runs the check as the unprivileged user nobody: needs root and setpriv")
def test_without_root_the_check_says_how_to_run_it():
    code = ("from netlab.labs import _topology\n"
            "from netlab.labs._registry import CheckFailed\n"
            "try:\n"
            "    _topology.in_chain(lambda chain: 'built')\n"
            "except CheckFailed as exc:\n"
            "    print(exc)\n")
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python 3.11+ interpreter here that the user nobody may run with this checkout")
    done = subprocess.run(_AS_NOBODY + [python, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ROOT,
                               "HOME": "/tmp"}, cwd="/tmp")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("not run: ") and "need root" in done.stdout
    assert "sudo netlab lab check 16 --path DIR" in done.stdout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="grades as the unprivileged user nobody: needs root and setpriv to become it")
def test_graded_without_root_in_the_sandboxs_user_namespace():
    """As nobody, the grading worker's user namespace builds the chain; without it the check says why."""
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python 3.11+ interpreter here that the user nobody may run with this "
                    "checkout (in a folder only root can enter?)")
    # pytest's tmp_path is root's alone: nobody gets a folder of its own in /tmp.
    home = pathlib.Path(tempfile.mkdtemp(prefix="nltr-test-"))
    try:
        shutil.copytree(os.path.join(ROOT, "exercises", "solutions", "lab16-ping"), home / "lab16-ping")
        for folder, _, files in os.walk(home):
            for name in [folder] + [os.path.join(folder, f) for f in files]:
                os.chown(name, 65534, 65534)
        result = _check_as_nobody(python, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    trace = {t["name"]: t for t in result["tests"]}
    names = ["traceroute through the routers", "a silent router shows as *", "stop after max_hops"]
    if result["isolated"]:
        assert all(trace[n]["passed"] for n in names), [trace[n]["message"] for n in names]
        assert result["score"] == result["max_score"], [t["message"] for t in result["tests"] if not t["passed"]]
    else:  # no user namespaces for nobody here: zero points, and the way out
        assert not any(trace[n]["passed"] for n in names)
        assert all("sudo netlab lab check 16 --path DIR" in trace[n]["message"] for n in names)
    assert "nltr-" not in _netns_list()


_AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _python_for_nobody():
    """A Python 3.11+ (for tomllib) that nobody may run with this checkout, the system's first, or None.

    The system's first: bubblewrap, run as nobody, must also be able to reach
    the interpreter's folder to show it in the sandbox, and a Python under
    root's home may start for nobody yet stay out of bubblewrap's reach.
    """
    for python in ("/usr/bin/python3", sys.executable):
        try:
            done = subprocess.run(_AS_NOBODY + [python, "-c", "import tomllib, netlab.labs"],
                                  capture_output=True, timeout=60, cwd="/tmp",
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ROOT})
        except OSError:
            continue
        if done.returncode == 0:
            return python
    return None


def _check_as_nobody(python: str, home: pathlib.Path) -> dict:
    """``netlab lab check 16 --json`` of ``home/lab16-ping``, run as uid and gid 65534."""
    done = subprocess.run(_AS_NOBODY + [python, "-m", "netlab", "lab", "check", "16", "--path",
                           str(home / "lab16-ping"), "--json"], capture_output=True, text=True,
                          timeout=120, cwd=str(home),
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ROOT,
                               "HOME": str(home)})
    assert done.stdout, done.stderr[-2000:]
    return json.loads(done.stdout)


@needs_root
def test_student_code_runs_in_h1_with_the_usual_sandbox(tmp_path):
    """In the chain, the student's code sees h1's interfaces only, as nobody, with no capabilities."""
    from netlab.labs import batch, sandbox
    from netlab.labs._probes import call_all

    if not sandbox.isolation_status()[0]:
        pytest.skip(f"the sandbox is not available here: {sandbox.isolation_status()[1]}")
    (tmp_path / "spy.py").write_text(
        "import os, socket\n"
        "def look():\n"
        "    with open('/proc/self/status') as f:\n"
        "        caps = [line.split()[1] for line in f if line.startswith(('CapEff', 'CapPrm', 'CapInh', 'CapAmb'))]\n"
        "    return {'uid': os.getuid(), 'caps': caps, 'links': sorted(n for _, n in socket.if_nameindex()),\n"
        "            'netlab': os.path.exists(%r)}\n" % os.path.join(ROOT, "netlab"))

    def inside():
        return _topology.in_chain(lambda chain: call_all(str(tmp_path), "spy", [["look", []]])[0])

    got = batch.in_worker(inside, isolated=True, timeout=60)
    assert got["ok"], got
    seen = got["value"]
    assert seen["links"] == ["eth0", "lo"]
    assert seen["uid"] == 65534 and set(seen["caps"]) == {"0000000000000000"}
    assert seen["netlab"] is False  # the grader's files stay hidden
