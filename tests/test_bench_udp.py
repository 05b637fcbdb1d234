"""``netlab bench udp`` through the real CLI, and its counters through the lossy relay.

Correctness only: figures of speed live in tests/benchmarks/. Runs are short
(a fraction of a second) and paced where a count must be exact.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from netlab import redirect
from netlab.bench import udp
from netlab.packet import pure_python_requested
from tests.conftest import ROOT, free_port, interrupt_netlab

UDP_KEYS = {"size", "seconds", "sent", "received", "lost", "duplicated", "reordered",
            "send_pps", "recv_pps", "gbps", "jitter_us"}


def _backends():
    return ["python"] if pure_python_requested() else ["cython", "python"]


@pytest.mark.parametrize("backend", _backends())
def test_json_has_the_contract_keys(netlab_cli, backend):
    out = netlab_cli("bench", "udp", "--size", "200", "--seconds", "0.3", "--rate", "5000",
                     "--rcvbuf", "1048576", "--backend", backend, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert UDP_KEYS <= set(data)
    assert data["size"] == 200 and data["backend"] == backend
    assert data["sent"] > 0 and data["sent"] == data["received"] + data["lost"]
    assert data["duplicated"] == 0 and data["reordered"] == 0
    # paced at 5000/s: the sender never runs ahead of its schedule
    assert data["send_pps"] <= 5000 * 1.05
    assert data["gbps"] == pytest.approx(data["received"] * 200 * 8 / data["seconds"] / 1e9, rel=0.01)
    assert out.stderr == ""                  # no progress line when not on a terminal


def test_table_and_sweep(netlab_cli):
    out = netlab_cli("bench", "udp", "--sweep", "64,512", "--seconds", "0.2", "--rate", "2000")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["size", "seconds", "sent", "received"]
    assert lines[2].split()[0] == "64" and lines[3].split()[0] == "512"
    assert "backend" in out.stdout


def test_sweep_json_is_a_list(netlab_cli):
    out = netlab_cli("bench", "udp", "--sweep", "64,100", "--seconds", "0.2", "--rate", "1000",
                     "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert isinstance(data, list) and [d["size"] for d in data] == [64, 100]
    assert all(UDP_KEYS <= set(d) for d in data)


def test_sized_rcvbuf_at_a_fixed_rate_loses_nothing(netlab_cli):
    out = netlab_cli("bench", "udp", "--size", "64", "--seconds", "0.5", "--rate", "20000",
                     "--rcvbuf", "4M", "--json")  # iperf3-style suffix: 4 MiB
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["sent"] > 1000 and data["lost"] == 0 and data["received"] == data["sent"]
    assert data["rcvbuf"] >= 4 << 20 or os.geteuid() != 0   # root may exceed rmem_max
    assert data["kernel_drops"] in (0, None)


@pytest.mark.parametrize("argv, words", [
    (["--size", "10"], "20 to 65507"),
    (["--size", "abc"], "--size"),
    (["--size", "64,128"], "--sweep"),
    (["--sweep", "64,x"], "--sweep"),
    (["--seconds", "0"], "positive"),
    (["--seconds", "-1"], "positive"),
    (["--rate", "fast"], "--rate"),
    (["--backend", "rust"], "cython"),
    (["--rcvbuf", "0"], "at least 1"),
    (["--rcvbuf", "8X"], "64K or 8M"),
    (["--target", "nohost"], "HOST:PORT"),
    (["--target", "127.0.0.1:99999"], "1 to 65535"),
    (["--target", "127.0.0.1:9"], "--port"),
    (["--plot", "x.txt"], "PNG"),
    (["--bogus"], "unrecognized"),
])
def test_bad_flags_are_one_line_usage_errors(netlab_cli, argv, words):
    out = netlab_cli("bench", "udp", *argv)
    assert out.returncode == 2, (argv, out.stdout, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and words in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_port_in_use_is_a_runtime_error(netlab_cli):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        out = netlab_cli("bench", "udp", "--port", s.getsockname()[1], "--seconds", "0.2")
    assert out.returncode == 1 and "in use" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_ctrl_c_prints_what_was_measured(tmp_path):
    # Ctrl-C 6 s in: well into the run, even on a machine at load 50+ (start-up takes seconds).
    proc = interrupt_netlab("bench", "udp", "--seconds", "30", "--rate", "2000", "--json",
                            after=6)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["interrupted"] is True and data["seconds"] < 15
    assert data["sent"] > 0 and data["received"] > 0


def test_plot_is_a_png(netlab_cli, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (pip install 'netlab[plot]')")
    png = tmp_path / "udp.png"
    out = netlab_cli("bench", "udp", "--sweep", "64,256", "--seconds", "0.2", "--rate", "1000",
                     "--plot", png)
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {png}" in out.stdout


# --- the counters against the lossy relay (netlab.redirect) ------------------------

@pytest.mark.parametrize("backend", _backends())
def test_counters_match_what_the_lossy_relay_did(backend):
    port = free_port(socket.SOCK_DGRAM)
    with redirect.start_redirect(0, "127.0.0.1", port, protocols=("udp",), loss=0.1,
                                 duplicate=0.05, reorder=0.05, seed=6) as relay:
        result = udp.run_udp(size=100, seconds=0.5, rate=2000, backend=backend, rcvbuf=1 << 20,
                             target=("127.0.0.1", relay.ports["udp"]), port=port)
        stats = relay.stats()["udp"]["to_target"]
    assert result["target"] == f"127.0.0.1:{relay.ports['udp']}"
    assert stats["received"] == result["sent"] > 500
    assert stats["dropped"] > 0 and result["lost"] == stats["dropped"]
    assert stats["duplicated"] > 0 and result["duplicated"] == stats["duplicated"]
    assert stats["reordered"] > 0 and result["reordered"] == stats["reordered"]
    assert result["kernel_drops"] in (0, None)


def test_same_seed_same_fates():
    outcomes = []
    for _ in range(2):
        port = free_port(socket.SOCK_DGRAM)
        with redirect.start_redirect(0, "127.0.0.1", port, protocols=("udp",), loss=0.2,
                                     seed=42) as relay:
            # The same number of datagrams each time: pace slowly, stop on time.
            r = udp.run_udp(size=64, seconds=0.3, rate=1000, rcvbuf=1 << 20,
                            target=("127.0.0.1", relay.ports["udp"]), port=port)
        outcomes.append((r["sent"], r["lost"]))
    # The relay's fates depend only on the seed and the order: equal prefixes of
    # sent datagrams see equal losses, so the run that sent fewer lost no more.
    (s1, l1), (s2, l2) = outcomes
    assert l1 > 0 and l2 > 0
    assert (l1 <= l2) if s1 <= s2 else (l2 <= l1)


def test_progress_line_only_on_a_terminal():
    """On a terminal (a pty) the progress line is redrawn in place on stderr."""
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netlab", "bench", "udp", "--seconds", "1", "--rate", "2000"],
            stdout=subprocess.PIPE, stderr=slave, text=True, cwd=ROOT)
        os.close(slave)
        slave = -1
        out, _ = proc.communicate(timeout=30)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:         # EIO: the child side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "\rudp 64 B: sent" in err and "lost so far" in err and "/s)" in err  # rate so far
    assert "lost so far" not in out and out.splitlines()[0].startswith("size")


def test_datagrams_delayed_by_the_relay_are_still_counted():
    port = free_port(socket.SOCK_DGRAM)
    with redirect.start_redirect(0, "127.0.0.1", port, protocols=("udp",), delay_ms=300,
                                 seed=1) as relay:
        r = udp.run_udp(size=64, seconds=0.3, rate=1000, rcvbuf=1 << 20,
                        target=("127.0.0.1", relay.ports["udp"]), port=port)
    # Every datagram was still in the relay when the sender stopped: the
    # receiver drains until the path is quiet, so none counts as lost.
    assert r["sent"] > 200 and r["lost"] == 0 and r["received"] == r["sent"]
    assert r["reordered"] == 0 and r["duplicated"] == 0


@pytest.mark.parametrize("text, value", [("65536", 65536), ("64K", 65536), ("64k", 65536),
                                         ("8M", 8 << 20), ("1G", 1 << 30)])
def test_byte_sizes_take_binary_suffixes(text, value):
    from netlab.bench import _common
    assert _common.byte_count(text) == value


def test_receive_buffer_is_sized_for_the_rate_and_reported(netlab_cli):
    out = netlab_cli("bench", "udp", "--seconds", "0.2", "--rate", "200000", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["rcvbuf_asked"] == udp.default_rcvbuf(64, 200000)
    # 50 ms at 200,000/s of 64-byte datagrams (832 bytes each in the kernel), asked as half
    assert data["rcvbuf_asked"] == 200000 * 0.05 * (64 + 768) / 2
    assert data["rcvbuf"] >= min(data["rcvbuf_asked"], 212992)
    table = netlab_cli("bench", "udp", "--seconds", "0.2", "--rate", "2000")
    assert "sized for the rate" in table.stdout and "receiver naps 100 us when blocking does not pay" in table.stdout


def test_default_rcvbuf_stays_within_its_bounds():
    assert udp.default_rcvbuf(64, 1) == udp.MIN_AUTO_RCVBUF
    assert udp.default_rcvbuf(65507, 0) == udp.MAX_AUTO_RCVBUF
    assert udp.default_rcvbuf(64, 0) == udp.default_rcvbuf(64, udp.UNPACED_RATE)


def test_gso_run_is_labelled_and_counts_real_datagrams(netlab_cli):
    if pure_python_requested():
        pytest.skip("NETLAB_PURE_PYTHON=1: the compiled loops are not built")
    out = netlab_cli("bench", "udp", "--seconds", "0.2", "--gso", "16")
    if out.returncode == 1 and "UDP_SEGMENT" in out.stderr:
        pytest.skip("this kernel has no UDP GSO (UDP_SEGMENT)")
    assert out.returncode == 0, out.stderr
    assert "GSO: the sender handed the kernel 16 datagrams per send" in out.stdout
    data = json.loads(netlab_cli("bench", "udp", "--seconds", "0.2", "--gso", "16",
                                 "--json").stdout)
    assert data["gso"] == 16 and data["sent"] % 16 == 0 and data["received"] > 0
    assert data["gbps"] == pytest.approx(data["received"] * 64 * 8 / data["seconds"] / 1e9,
                                         rel=0.01)


def test_gso_too_big_for_one_send_is_a_usage_error(netlab_cli):
    out = netlab_cli("bench", "udp", "--size", "1400", "--gso", "64")
    assert out.returncode == 2 and "--gso 46" in out.stderr


@pytest.mark.parametrize("nap", ["0", "100"])
def test_blocking_and_napping_receivers_count_alike(netlab_cli, nap):
    out = netlab_cli("bench", "udp", "--seconds", "0.3", "--rate", "5000", "--nap", nap, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["nap_us"] == float(nap) and data["lost"] == 0 and data["received"] == data["sent"]
