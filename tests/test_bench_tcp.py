"""``netlab bench tcp`` through the real CLI: every byte arrives, in order, verified."""
from __future__ import annotations

import json

import pytest

from netlab import redirect
from netlab.bench import tcp
from netlab.packet import pure_python_requested
from tests.conftest import free_port, interrupt_netlab


def _backends():
    return ["python"] if pure_python_requested() else ["cython", "python"]


@pytest.mark.parametrize("backend", _backends())
def test_json_contract_and_verification(netlab_cli, backend):
    out = netlab_cli("bench", "tcp", "--seconds", "0.3", "--buffer", "64K", "--backend", backend,
                     "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"bytes", "seconds", "gbps", "verified"} <= set(data)
    assert data["verified"] is True and data["bytes"] == data["sent"] > 0
    assert data["mismatched"] == 0 and data["buffer"] == 65536 and data["backend"] == backend
    assert data["gbps"] == pytest.approx(data["bytes"] * 8 / data["seconds"] / 1e9, rel=0.02)
    assert out.stderr == ""


def test_odd_buffer_sizes_still_verify():
    # 1000 is not a multiple of the pattern period (251): offsets must carry over.
    r = tcp.run_tcp(seconds=0.2, buffer=1000)
    assert r["verified"] and r["mismatched"] == 0 and r["bytes"] == r["sent"] > 1000


def test_table(netlab_cli):
    out = netlab_cli("bench", "tcp", "--seconds", "0.2")
    assert out.returncode == 0, out.stderr
    head, rule, row = out.stdout.splitlines()[:3]
    assert head.split()[:3] == ["bytes", "seconds", "Gbit/s"]
    assert row.split()[3] == "yes"


@pytest.mark.parametrize("argv, words", [
    (["--buffer", "0"], "at least 1"),
    (["--buffer", "big"], "--buffer"),
    (["--buffer", str(64 << 20)], "--buffer"),
    (["--seconds", "x"], "--seconds"),
    (["--seconds", "99999"], "at most"),
    (["--plot", "out.jpg"], "PNG"),
])
def test_bad_flags(netlab_cli, argv, words):
    out = netlab_cli("bench", "tcp", *argv)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and words in out.stderr


def test_ctrl_c_reports_partial_transfer():
    # Ctrl-C 6 s in: well into the run, even on a machine at load 50+ (start-up takes seconds).
    proc = interrupt_netlab("bench", "tcp", "--seconds", "30", "--json", after=6)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["interrupted"] is True and data["seconds"] < 15
    assert data["verified"] is True and data["bytes"] > 0


def test_through_a_delaying_relay_every_byte_still_arrives():
    port = free_port()
    with redirect.start_redirect(0, "127.0.0.1", port, protocols=("tcp",), delay_ms=20) as relay:
        r = tcp.run_tcp(seconds=0.5, buffer=16384, port=port,
                        target=("127.0.0.1", relay.ports["tcp"]))
        stats = relay.stats()["tcp"]
    assert r["target"] == f"127.0.0.1:{relay.ports['tcp']}"
    assert r["verified"] and r["bytes"] == r["sent"] > 0 and r["mismatched"] == 0
    assert stats["connections"] == 1


def test_target_needs_port(netlab_cli):
    out = netlab_cli("bench", "tcp", "--target", "127.0.0.1:9")
    assert out.returncode == 2 and "--port" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_target_with_nothing_listening_is_one_clear_line(netlab_cli):
    out = netlab_cli("bench", "tcp", "--target", f"127.0.0.1:{free_port()}", "--port",
                     str(free_port()), "--seconds", "0.3")
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines() == [out.stderr.strip()]
    assert "cannot connect to 127.0.0.1:" in out.stderr and "--port" in out.stderr


@pytest.mark.parametrize("backend", _backends())
def test_discard_counts_every_byte_without_claiming_verification(netlab_cli, backend):
    out = netlab_cli("bench", "tcp", "--seconds", "0.3", "--discard", "--backend", backend,
                     "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["discard"] is True and data["complete"] is True
    assert data["bytes"] == data["sent"] > 0
    assert data["verified"] is False and data["mismatched"] == 0


def test_sweep_over_buffer_sizes(netlab_cli):
    out = netlab_cli("bench", "tcp", "--seconds", "0.2", "--sweep", "4K,64K,1M", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [r["buffer"] for r in data] == [4096, 65536, 1 << 20]
    assert all(r["verified"] and r["bytes"] > 0 for r in data)


def test_sweep_with_a_bad_size_is_a_usage_error(netlab_cli):
    out = netlab_cli("bench", "tcp", "--sweep", "64K,lots")
    assert out.returncode == 2 and "invalid size 'lots'" in out.stderr
