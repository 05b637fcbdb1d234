"""Captures into Arrow and Parquet, side by side with tshark -> CSV -> pyarrow (pytest-benchmark).

Run with timing (root, tcpdump, iperf3 and tshark; about two minutes)::

    sudo python -m pytest tests/benchmarks/test_bench_arrow.py --benchmark-enable -s

It makes a capture of at least 1.2 M packets of real loopback traffic on the
spot (iperf3 sends small UDP datagrams to an iperf3 server on a loopback
address of its own, tcpdump captures them), then measures, in one run:

* packets per second into an Arrow table: the compiled core, the pure twin
  (on the first 100 k packets) and ``tshark -T fields`` to CSV read by
  ``pyarrow.csv`` (the usual route today), wall clock and CPU time;
* Parquet bytes per packet of ``dissect --parquet``;
* the peak memory (max RSS) of ``dissect --parquet`` on the first quarter,
  half and all of the capture: it stays flat as the file grows.

The summary table at the end gives the ratios. The default run (timing
disabled) does the same on 20 k packets, once, as a test.
"""
import os
import resource
import shutil
import subprocess
import sys
import time

import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install 'netlab[data]'")
import pyarrow.csv  # noqa: E402

from netlab import arrow, packet  # noqa: E402
from netlab.packet.pcap import open_capture  # noqa: E402
from netlab.packet import fields as F  # noqa: E402
from tests.conftest import ROOT, free_port, netlab_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a timed run takes minutes

HOST = "127.0.0.79"  # a loopback address of its own: no other test's packets get in
TIMED_PACKETS = 1_200_000
TEST_PACKETS = 20_000
TWIN_PACKETS = 100_000
RESULTS: dict = {}
# What tshark prints per packet: the fields of the Arrow table it can give.
TSHARK_FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
                 "ip.proto", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
                 "tcp.flags", "frame.cap_len", "frame.len", "tcp.seq_raw", "tcp.ack_raw",
                 "udp.length"]


def _timed(request) -> bool:
    config = request.config
    return bool(config.getoption("benchmark_enable", False)) or not config.getoption(
        "benchmark_disable", False)


def _need(*tools):
    if os.geteuid() != 0:
        pytest.skip("needs root to capture on lo with tcpdump")
    for tool in tools:
        if not shutil.which(tool):
            pytest.skip(f"needs {tool} (Debian: apt-get install {tool})")


def _cut(path, out, packets):
    """The first ``packets`` records of a pcap file, as a file of its own."""
    with open_capture(path) as buf:
        assert packet.capture_info(buf)["format"] == "pcap"
        end = len(buf)
        for i, rec in enumerate(packet.iter_records(buf)):
            if i == packets:
                end = rec[F.OFFSET] - 16  # the record header before the frame
                break
        with open(out, "wb") as f:
            f.write(buf[:end])
    return out


@pytest.fixture(scope="module")
def capture(request, tmp_path_factory):
    """A real capture of loopback traffic: (path, packets)."""
    _need("tcpdump", "iperf3")
    wanted = TIMED_PACKETS if _timed(request) else TEST_PACKETS
    folder = tmp_path_factory.mktemp("arrow-bench")
    path = str(folder / "lo.pcap")
    port = free_port(host="127.0.0.1")
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", HOST, "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "-B", "262144", "-w", path,
                             f"host {HOST}"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.path.exists(path):
            time.sleep(0.05)
        time.sleep(0.5)
        # -k: a count of datagrams, so the loop is bounded; -b 0: as fast as it goes.
        subprocess.run(["iperf3", "-c", HOST, "-p", str(port), "-u", "-l", "64", "-b", "0",
                        "-k", str(wanted + wanted // 10)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600, check=True)
        time.sleep(1.0)
    finally:
        dump.terminate()
        dump.communicate(timeout=30)
        server.kill()
        server.wait()
    with open_capture(path) as buf:
        packets = packet.aggregate(buf)["packets"]
    assert packets >= wanted, f"tcpdump kept {packets} packets, wanted {wanted}"
    RESULTS["packets"] = packets
    RESULTS["file_bytes"] = os.path.getsize(path)
    return path, packets


def _run(benchmark, request, func, rounds=3):
    rounds = rounds if _timed(request) else 1
    start_cpu = time.process_time() + _children_cpu()
    start = time.perf_counter()
    result = benchmark.pedantic(func, rounds=rounds, iterations=1)
    wall = (time.perf_counter() - start) / rounds
    cpu = (time.process_time() + _children_cpu() - start_cpu) / rounds
    return result, wall, cpu


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


@pytest.mark.benchmark(group="into-arrow")
def test_compiled_core_into_arrow(benchmark, request, capture, both_cores):
    path, packets = capture
    arrow.to_arrow(os.path.join(ROOT, "netlab", "data", "samples", "handshake.pcap"))  # imports
    table, wall, cpu = _run(benchmark, request, lambda: arrow.to_arrow(path, backend="cython"))
    assert table.num_rows == packets
    assert table.column("proto").to_pylist()[-1] in ("udp", "tcp")
    RESULTS["netlab"] = (packets / wall, packets / cpu)
    benchmark.extra_info.update(packets=packets, packets_per_s=packets / wall,
                                packets_per_cpu_s=packets / cpu)


@pytest.mark.benchmark(group="into-arrow")
def test_pure_twin_into_arrow(benchmark, request, capture, tmp_path):
    path, packets = capture
    part = _cut(path, str(tmp_path / "first.pcap"), min(TWIN_PACKETS, packets))
    n = min(TWIN_PACKETS, packets)
    table, wall, cpu = _run(benchmark, request, lambda: arrow.to_arrow(part, backend="python"))
    assert table.num_rows == n
    RESULTS["twin"] = (n / wall, n / cpu)
    benchmark.extra_info.update(packets=n, packets_per_s=n / wall, packets_per_cpu_s=n / cpu)


@pytest.mark.benchmark(group="into-arrow")
def test_tshark_csv_pyarrow(benchmark, request, capture, tmp_path):
    _need("tshark")
    path, packets = capture
    csv = str(tmp_path / "lo.csv")

    def pipeline():
        fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
        with open(csv, "wb") as out:
            subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=,",
                            "-E", "header=y", "-E", "occurrence=f", *fields], stdout=out,
                           stderr=subprocess.DEVNULL, check=True, timeout=1800)
        return pyarrow.csv.read_csv(csv)

    table, wall, cpu = _run(benchmark, request, pipeline, rounds=1)  # minutes a round
    assert table.num_rows == packets
    RESULTS["tshark"] = (packets / wall, packets / cpu)
    benchmark.extra_info.update(packets=packets, packets_per_s=packets / wall,
                                packets_per_cpu_s=packets / cpu)


# The child reports its own peak (VmHWM of its address space): the parent's
# max RSS would count the pages of this big pytest process it was forked from.
PEAK = ("import sys\nfrom netlab.cli import main\nrc = main(sys.argv[1:])\n"
        "with open('/proc/self/status') as f:\n"
        "    print([l.split()[1] for l in f if l.startswith('VmHWM')][0], file=sys.stderr)\n"
        "sys.exit(rc)")


def _parquet_run(path, out):
    """``dissect FILE --parquet OUT`` in a child: (peak RSS in bytes, CPU seconds)."""
    before = _children_cpu()
    done = subprocess.run([sys.executable, "-c", PEAK, "dissect", path, "--parquet", out],
                          capture_output=True, text=True, cwd=ROOT, env=netlab_env(),
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.split()[-1]) * 1024, _children_cpu() - before


def test_parquet_size_and_flat_memory(capture, tmp_path):
    path, packets = capture
    rss = []
    for share in (4, 2, 1):
        n = packets // share
        part = path if share == 1 else _cut(path, str(tmp_path / f"part{share}.pcap"), n)
        out = str(tmp_path / f"part{share}.parquet")
        peak, cpu = _parquet_run(part, out)
        rss.append((n, peak, cpu))
        if share == 1:
            RESULTS["parquet_bytes_per_packet"] = os.path.getsize(out) / packets
            RESULTS["parquet_pps"] = packets / cpu
    RESULTS["rss"] = rss
    # Four times the packets, about the same memory: the batches, not the file.
    (_n4, quarter, _w4), _half, (_n1, full, _w1) = rss
    assert full < quarter * 1.25 + 16 * 2**20, rss


def test_zz_summary(capture, capsys):
    """The side-by-side table (printed; run with -s to keep it in the log)."""
    if "netlab" not in RESULTS:
        pytest.skip("the timed benchmarks did not run")
    rows = [("netlab compiled core -> Arrow", *RESULTS["netlab"])]
    if "twin" in RESULTS:
        rows.append(("netlab pure twin -> Arrow", *RESULTS["twin"]))
    if "tshark" in RESULTS:
        rows.append(("tshark -T fields -> CSV -> pyarrow", *RESULTS["tshark"]))
    lines = [f"capture: {RESULTS['packets']} packets, {RESULTS['file_bytes'] / 1e6:.1f} MB "
             f"(loopback UDP via iperf3, tcpdump)", "",
             f"{'route':38} {'packets/s':>12} {'packets/CPU s':>14}"]
    lines += [f"{name:38} {wall:12,.0f} {cpu:14,.0f}" for name, wall, cpu in rows]
    if "tshark" in RESULTS:
        ratio = [RESULTS["netlab"][i] / RESULTS["tshark"][i] for i in (0, 1)]
        lines.append(f"{'ratio netlab / tshark':38} {ratio[0]:11.1f}x {ratio[1]:13.1f}x")
    if "rss" in RESULTS:
        lines += ["", f"dissect --parquet: {RESULTS['parquet_bytes_per_packet']:.1f} bytes per packet, "
                  f"{RESULTS['parquet_pps']:,.0f} packets/CPU s (the whole command)",
                  "peak memory (max RSS) as the file grows: " + ", ".join(
                      f"{n} packets {peak / 2**20:.0f} MB" for n, peak, _w in RESULTS["rss"])]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert rows
