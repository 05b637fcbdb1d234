"""Parsing speed, every backend on one generated capture (pytest-benchmark).

Run with timing:  python -m pytest tests/benchmarks/test_bench_parse.py --benchmark-enable
The default run (timing disabled) runs each once on a small file, as a test.
The ratios the issue asks for are printed by ``netlab bench parse --json``.
"""
import json
import os
import shutil

import pytest

from netlab.bench.parse import _dpkt_walk, c_baseline, make_bench_file
from netlab.packet.pcap import open_capture

PACKETS = 3000


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("parse") / "bench.pcap"
    make_bench_file(str(path), PACKETS)
    return str(path)


@pytest.mark.benchmark(group="parse-stats")
def test_stats_path(benchmark, core, bench_file):
    with open_capture(bench_file) as buf:
        stats = benchmark(core.aggregate, buf)
    assert stats["packets"] == PACKETS and stats["error"] is None


@pytest.mark.benchmark(group="parse-records")
def test_records_path(benchmark, core, bench_file):
    def walk(buf):
        n = 0
        for _ in core.iter_records(buf):
            n += 1
        return n
    with open_capture(bench_file) as buf:
        assert benchmark(walk, buf) == PACKETS


@pytest.mark.benchmark(group="parse-stats")
def test_stats_path_dpkt(benchmark, bench_file):
    assert benchmark(_dpkt_walk(bench_file, False)) == PACKETS


@pytest.mark.benchmark(group="parse-records")
def test_records_path_dpkt(benchmark, bench_file):
    assert benchmark(_dpkt_walk(bench_file, True)) == PACKETS


def test_c_baseline_counts_what_the_core_counts(both_cores, bench_file):
    result = c_baseline(bench_file, repeats=1)  # the plain C walk, in this process
    with open_capture(bench_file) as buf:
        stats = both_cores[0].aggregate(buf)
    assert result["packets"] == stats["packets"] == PACKETS
    assert result["flows"] == len(stats["flows"]) and result["error"] is None
    assert result["seconds"] > 0


def test_default_file_has_thousands_of_flows(both_cores, tmp_path):
    # The generated file repeats the shipped many-flow loopback capture.
    path = str(tmp_path / "flows.pcap")
    make_bench_file(path, 30_000)
    with open_capture(path) as buf:
        stats = both_cores[0].aggregate(buf)
    assert len(stats["flows"]) > 2000 and stats["tcp"]["handshakes"] > 1000


def test_cli_json_keys(netlab_cli):
    out = netlab_cli("bench", "parse", "--json", "--packets", "2000", "--repeats", "1", timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["packets"] == 2000
    for key in ("stats_pps", "records_pps"):
        assert {"cython", "python", "dpkt"} <= set(data[key])
        assert all(v > 0 for v in data[key].values())
    assert data["stats_pps"]["c"] > 0 and data["records_pps"]["cython-batch"] > 0
    for key in ("stats_first_call_s", "stats_best_call_s"):
        assert set(data[key]) == {"c", "cython"} and all(v > 0 for v in data[key].values())
    assert data["ratios"]["stats_cython_vs_c"] > 0 and data["ratios"]["stats_cython_vs_c_best_calls"] > 0
    # --repeats 1 on 2,000 packets: the short pair takes more turns, up to 4x repeats
    assert data["repeats"] == 1 and 1 <= data["stats_rounds"] <= 4


def test_cli_bad_file(netlab_cli, tmp_path):
    out = netlab_cli("bench", "parse", tmp_path / "missing.pcap")
    assert out.returncode == 1 and "no such file" in out.stderr
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    out = netlab_cli("bench", "parse", junk)
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1


def test_damaged_file_counts_the_packets_before_it(netlab_cli, tmp_path):
    import os

    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "handshake.pcap"), "rb") as f:
        data = f.read()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:700])
    out = netlab_cli("bench", "parse", cut, "--json", "--repeats", "1")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["packets"] == 7 and any("byte offset 642" in n for n in result["notes"])
    assert result["timed_packets"] % 7 == 0  # only the good packets were repeated


@pytest.mark.parametrize("name", ["handshake.pcap", "handshake.pcapng"])
def test_small_file_is_timed_repeated(tmp_path, name):
    # 15 packets time only per-call setup; the bench repeats them into one
    # valid file that dpkt and the core both read, packet for packet.
    import os

    import dpkt

    from netlab import packet
    from netlab.bench.parse import MIN_TIMED_PACKETS, _repeat_small_file

    src = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", name)
    count, repeat, path, damage = _repeat_small_file(src, str(tmp_path))
    assert (count, damage) == (15, None) and repeat * 15 >= MIN_TIMED_PACKETS
    with open_capture(path) as buf:
        stats = packet.aggregate(buf)
    assert stats["packets"] == 15 * repeat and stats["error"] is None
    with open(path, "rb") as f:
        reader = dpkt.pcapng.Reader(f) if name.endswith("ng") else dpkt.pcap.Reader(f)
        assert sum(1 for _ in reader) == 15 * repeat


def test_cli_small_file_reports_its_own_packet_count(netlab_cli):
    import os

    src = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "handshake.pcap")
    out = netlab_cli("bench", "parse", src, "--json", "--repeats", "1", timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["packets"] == 15 and result["timed_packets"] >= 50_000
    assert any("repeated" in n for n in result["notes"])
    for key in ("stats_pps", "records_pps"):
        assert {"cython", "python", "dpkt"} <= set(result[key])


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("tcpdump") is None,
                    reason="needs root and tcpdump (apt-get install tcpdump) to capture on lo")
def test_record_flows_captures_real_connections(both_cores, tmp_path):
    from netlab.bench.flows import record_flows

    path = str(tmp_path / "flows.pcap")
    record_flows(path, flows=20, messages=2, udp=5, snaplen=96)
    with open_capture(path) as buf:
        stats = both_cores[0].aggregate(buf)
        assert stats == both_cores[1].aggregate(buf)
    assert stats["tcp"]["flows"] == 20 and stats["tcp"]["handshakes"] == 20
    assert stats["tcp"]["closed"] == 20 and len(stats["flows"]) >= 21
