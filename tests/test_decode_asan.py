"""The C walk of the packet core under AddressSanitizer and UBSan (gcc).

``fuzz/walk_asan.c`` copies each capture into a heap block of exactly its size
and runs it, and a few hundred fixed-seed mutations of it, through the reader,
the stats path and the frame decoder; one byte read out of bounds or one
undefined operation stops it with a report.
"""
import glob
import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

gcc = shutil.which("gcc")


@pytest.mark.skipif(not gcc, reason="needs gcc with libasan (apt-get install gcc)")
def test_walk_is_clean_under_sanitizers(tmp_path):
    exe = tmp_path / "walk_asan"
    build = subprocess.run([gcc, "-g", "-O1", "-fsanitize=address,undefined",
                            "-fno-sanitize-recover=all", "-I", os.path.join(ROOT, "src_c"),
                            os.path.join(ROOT, "fuzz", "walk_asan.c"), "-o", str(exe)],
                           capture_output=True, text=True, timeout=120)
    if build.returncode != 0 and "asan" in build.stderr.lower():
        pytest.skip(f"gcc cannot link the sanitizers here: {build.stderr.strip()[:120]}")
    assert build.returncode == 0, build.stderr
    inputs = sorted(glob.glob(os.path.join(ROOT, "tests", "data", "*.pcap*")))
    inputs += sorted(glob.glob(os.path.join(ROOT, "tests", "data", "fuzz", "*")))
    # the third-party captures: every link type and encapsulation the walk knows
    inputs += sorted(p for p in glob.glob(os.path.join(ROOT, "tests", "data", "captures", "*", "*"))
                     if p.endswith((".pcap", ".pcapng")))
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1")
    run = subprocess.run([str(exe), "150", *inputs], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == ""
    assert '"runs": %d' % (151 * len(inputs)) in run.stdout
