"""``dissect`` output speed: the compiled core and its twin (pytest-benchmark).

Run with timing:  python -m pytest tests/benchmarks/test_bench_dissect.py --benchmark-enable
The default run (timing disabled) runs each once, as a test. The side-by-side
figures against tcpdump and tshark come from ``netlab bench dissect``.
"""
import json
import shutil

import pytest

from netlab.bench.parse import make_bench_file
from netlab.packet.pcap import open_capture

PACKETS = 3000


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dissect") / "bench.pcap"
    make_bench_file(str(path), PACKETS)
    return str(path)


def _lines(core, buf, as_json):
    return sum(chunk.count(b"\n") for chunk in core.format_capture(buf, as_json))


@pytest.mark.benchmark(group="dissect-text")
def test_text_output(benchmark, core, bench_file):
    with open_capture(bench_file) as buf:
        assert benchmark(_lines, core, buf, False) == PACKETS


@pytest.mark.benchmark(group="dissect-json")
def test_json_output(benchmark, core, bench_file):
    with open_capture(bench_file) as buf:
        assert benchmark(_lines, core, buf, True) == PACKETS


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump (apt-get install tcpdump)")
def test_cli_json_keys(netlab_cli):
    out = netlab_cli("bench", "dissect", "--json", "--packets", "2000", "--repeats", "1",
                     "--no-tshark", "--pure", timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["packets"] == 2000 and data["generated"]
    for key in ("tcpdump_text", "netlab_text", "netlab_json", "pure_text", "pure_json",
                "startup", "python_startup"):
        assert data["cpu_s"][key] > 0, key
    assert data["ratios"]["tcpdump_text_vs_netlab_text"] > 0
    assert data["ratios"]["tshark_json_vs_netlab_json"] is None  # --no-tshark


def test_cli_bad_file(netlab_cli, tmp_path):
    out = netlab_cli("bench", "dissect", tmp_path / "missing.pcap")
    assert out.returncode == 1 and "no such file" in out.stderr
    assert len(out.stderr.splitlines()) == 1
