"""Memory: walking a capture costs a few megabytes, whatever the file's size.

A file larger than 1 GB is made on the fly as a *sparse* file: 4,100 records of
256 KiB each, where only each record's header and the first bytes of its frame
(Ethernet, IPv4 with total length 0 so the packet runs to the frame's end, UDP
length 0 so every byte is payload) are written; the rest are holes that read
as zeros. Disk use is about 16 MB, and the file is removed afterwards.

Each walk runs in a fresh interpreter that reads every byte of every frame
(the stats path verifying checksums, or the records path copying each frame)
and reports its peak RSS (VmHWM) next to its RSS before opening the file: the
walk must add less than 64 MB (the flow table here is one flow).
"""
import os
import struct
import subprocess
import sys

import pytest

from tests.conftest import ROOT, netlab_env

RECORDS = 4100
CAPLEN = 262144
LIMIT_KB = 64 * 1024

WALK = r"""
import sys
from netlab import packet
from netlab.packet import fields as F
from netlab.packet.pcap import open_capture

def rss(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))

path, mode = sys.argv[1], sys.argv[2]
before = rss("VmRSS:")
touched = 0
with open_capture(path) as buf:
    if mode == "stats":
        stats = packet.aggregate(buf, True)
        assert stats["checksums"]["l4_bad"] == stats["packets"], stats  # every byte was summed
        touched = stats["captured_bytes"]
    else:
        for rec in packet.iter_records(buf):
            touched += len(buf[rec[F.OFFSET]:rec[F.OFFSET] + rec[F.CAPLEN]])
print(packet.BACKEND, touched, before, rss("VmHWM:"))
"""


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "sparse.pcap"
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 0, 0, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2]))
    frame = b"\0" * 12 + b"\x08\x00" + ip + struct.pack(">HHHH", 4000, 5000, 0, 1)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, CAPLEN, 1))
        for i in range(RECORDS):
            f.write(struct.pack("<IIII", i, 0, CAPLEN, CAPLEN) + frame)
            f.seek(CAPLEN - len(frame), os.SEEK_CUR)  # a hole: zeros, no disk blocks
        f.truncate()
    size = path.stat().st_size
    assert size > 2**30
    yield str(path), size
    path.unlink()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
@pytest.mark.parametrize("backend, mode", [("cython", "stats"), ("cython", "records"),
                                           ("python", "records")])
def test_rss_stays_small_on_a_file_over_1gb(big_capture, backend, mode):
    path, size = big_capture
    env = netlab_env({"NETLAB_PURE_PYTHON": "1" if backend == "python" else "0"})
    out = subprocess.run([sys.executable, "-c", WALK, path, mode], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=110)
    assert out.returncode == 0, out.stderr
    name, touched, before, peak = out.stdout.split()
    assert name == backend
    assert int(touched) == RECORDS * CAPLEN  # every frame byte was read
    grown = int(peak) - int(before)
    assert grown < LIMIT_KB, f"RSS grew by {grown} kB walking {size} bytes"
