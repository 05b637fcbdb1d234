"""netlab scan against nmap, side by side, in an empty namespace the test creates.

Both scanners scan the same ports of 127.0.0.1 inside one ``nlscan-``
namespace, interleaved round by round (so both see the same noise), and
the ratio goes to ``extra_info``. With timing off (the default
``--benchmark-disable``) each runs once over a short range and the test only
checks both agree; measure the full range for real with::

    python -m pytest tests/test_hardening_scan_bench.py --benchmark-enable -s
"""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.test_hardening_scan import _scan_in, scan_netns

NMAP_FLAG = {"tcp": "-sT", "udp": "-sU"}


def _nmap_open(ns: str, proto: str, ports: str) -> set:
    out = subprocess.run(["ip", "netns", "exec", ns, "nmap", NMAP_FLAG[proto], "-n", "-Pn",
                          "-p", ports, "-oG", "-", "127.0.0.1"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return {int(field.split("/")[0]) for line in out.stdout.splitlines() if "Ports:" in line
            for field in line.split("Ports:")[1].split(",") if "/open/" in field}


def _timed(func, *args, **kwargs):
    start = time.monotonic()
    result = func(*args, **kwargs)
    return time.monotonic() - start, result


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.benchmark(group="scan-vs-nmap")
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_scan_time_against_nmap(benchmark, proto):
    if not shutil.which("nmap"):
        pytest.skip("needs nmap (Debian: apt-get install nmap)")
    full = not benchmark.disabled
    ports, rounds = ("1-65535", 3) if full else ("1-3000", 1)
    times = {"netlab": [], "nmap": []}
    found = {}
    with scan_netns() as ns:
        def compare():
            for _ in range(rounds):
                seconds, rows = _timed(_scan_in, ns, "127.0.0.1", ports, f"--{proto}",
                                       timeout=600)
                times["netlab"].append(seconds)
                found["netlab"] = {r["port"] for r in rows if r["state"] == "open"}
                seconds, found["nmap"] = _timed(_nmap_open, ns, proto, ports)
                times["nmap"].append(seconds)

        benchmark.pedantic(compare, rounds=1, iterations=1)
    best = {k: min(v) for k, v in times.items()}
    ratio = best["netlab"] / best["nmap"]
    benchmark.extra_info.update(ports=ports, runs=times, best=best,
                                netlab_over_nmap=round(ratio, 3))
    print(f"\n{proto} {ports} in an empty namespace, best of {rounds}: netlab "
          f"{best['netlab']:.2f} s, nmap {best['nmap']:.2f} s, ratio {ratio:.2f}")
    # Nothing listens in the namespace: both must say so (no phantoms either side).
    assert found["netlab"] == found["nmap"] == set()
