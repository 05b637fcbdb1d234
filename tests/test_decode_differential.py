"""The twins agree on everything, and both agree with dpkt on real captures.

* hypothesis feeds garbage and mutated real captures (pcap and pcapng) to
  both backends: identical records, identical stats, identical errors at the
  same offsets, and never a crash;
* captures that tcpdump made of real loopback traffic (shipped in
  tests/data, and made afresh here when root and tcpdump are available) are
  decoded by netlab and by dpkt, field by field.
"""
import decimal
import os
import shutil
import socket
import subprocess
import threading
import time

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.packet import fields as F
from netlab.packet.pcap import open_capture
from tests.conftest import free_port

DATA = os.path.join(os.path.dirname(__file__), "data")
FUZZ_DIR = os.path.join(DATA, "fuzz")


def _read(path):
    with open(path, "rb") as f:
        return f.read()


SEEDS = [_read(os.path.join(DATA, n)) for n in sorted(os.listdir(DATA))
         if n.endswith((".pcap", ".pcapng"))]
if os.path.isdir(FUZZ_DIR):
    SEEDS += [_read(os.path.join(FUZZ_DIR, n)) for n in sorted(os.listdir(FUZZ_DIR))]
# The third-party captures of tests/test_fidelity.py (the small ones: mutation
# speed), whose link types and encapsulations the loopback captures lack.
for _root, _dirs, _files in sorted(os.walk(os.path.join(DATA, "captures"))):
    SEEDS += [_read(os.path.join(_root, n)) for n in sorted(_files)
              if n.endswith((".pcap", ".pcapng")) and os.path.getsize(os.path.join(_root, n)) < 16384]


def outcome(core, data, checks):
    recs = []
    try:
        for rec in core.iter_records(data, checks):
            recs.append(rec)
        err = None
    except core.CaptureError as exc:
        err = (exc.offset, str(exc))
    try:
        stats = core.aggregate(data, checks)
    except core.CaptureError as exc:
        stats = ("error", exc.offset, str(exc))
    return recs, err, stats


def assert_twins_agree(both_cores, data, checks=True):
    c, py = both_cores
    assert outcome(c, data, checks) == outcome(py, data, checks)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_garbage(both_cores, data):
    assert_twins_agree(both_cores, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(SEEDS))), st.lists(
    st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6), st.integers(0, 4000))
def test_mutated_real_captures(both_cores, which, flips, cut):
    data = bytearray(SEEDS[which])
    for pos, value in flips:
        data[pos % len(data)] = value
    data = bytes(data[: len(data) - cut % len(data)])
    assert_twins_agree(both_cores, data)
    assert_twins_agree(both_cores, data, checks=False)


# every link type either core decodes, and one neither knows
LINKTYPES = [0, 1, 6, 7, 9, 10, 11, 12, 14, 50, 51, 101, 104, 105, 107, 108, 109, 113, 117, 123,
             127, 129, 163, 192, 204, 205, 219, 226, 228, 229, 239, 242, 258, 276, 9999]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(LINKTYPES))
def test_single_frames(both_cores, frame, link):
    c, py = both_cores
    for checks in (False, True):
        assert c.decode_frame(frame, link, checks) == py.decode_frame(frame, link, checks)
    assert c.tcp_options(frame[:40]) == py.tcp_options(frame[:40])


_MAGICS = [b"", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
           b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(st.sampled_from(_MAGICS), st.binary(max_size=40)).map(b"".join),
                 st.sampled_from(SEEDS).map(lambda seed: seed[:64])))
def test_capture_info(both_cores, data):
    results = []
    for core in both_cores:
        try:
            results.append(core.capture_info(data))
        except core.CaptureError as exc:
            results.append((exc.offset, str(exc)))
    assert results[0] == results[1]


# --- against dpkt ----------------------------------------------------------------

def dpkt_view(path):
    """(ts_us, src, dst, proto, sport, dport, flags, payload) per packet, by dpkt."""
    out = []
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        link = reader.datalink()
        for ts, buf in reader:
            l3 = {1: dpkt.ethernet.Ethernet, 113: dpkt.sll.SLL, 276: dpkt.sll2.SLL2}[link](buf).data
            if isinstance(l3, dpkt.ip.IP):
                src, dst = socket.inet_ntoa(l3.src), socket.inet_ntoa(l3.dst)
            else:
                src = socket.inet_ntop(socket.AF_INET6, l3.src)
                dst = socket.inet_ntop(socket.AF_INET6, l3.dst)
            l4 = l3.data
            flags = l4.flags if isinstance(l4, dpkt.tcp.TCP) else 0
            if isinstance(ts, decimal.Decimal):  # dpkt's nanosecond timestamps
                ts_us = (int(ts * 10**9) + 500) // 1000
            else:
                ts_us = round(ts * 1e6)
            out.append((ts_us, src, dst, l3.p if hasattr(l3, "p") else l3.nxt,
                        l4.sport, l4.dport, flags, bytes(l4.data)))
    return out


def netlab_view(core, path):
    with open_capture(path) as buf:
        return [((r[F.TS_NS] + 500) // 1000, r[F.SRC], r[F.DST], r[F.PROTO], r[F.SPORT], r[F.DPORT], r[F.FLAGS],
                 bytes(buf[r[F.OFFSET] + r[F.PAYLOAD_OFF]:r[F.OFFSET] + r[F.PAYLOAD_OFF] + r[F.PAYLOAD_LEN]]))
                for r in core.iter_records(buf)]


REAL = [n for n in sorted(os.listdir(DATA)) if n.endswith((".pcap", ".pcapng"))]


@pytest.mark.parametrize("name", REAL)
def test_shipped_tcpdump_captures_match_dpkt(core, name):
    path = os.path.join(DATA, name)
    theirs = dpkt_view(path)
    assert len(theirs) >= 14
    ours = netlab_view(core, path)
    assert [r[1:] for r in ours] == [r[1:] for r in theirs]
    # dpkt gives pcapng times as floats: allow its rounding, one microsecond
    assert max(abs(a[0] - b[0]) for a, b in zip(ours, theirs)) <= 1


def _talk(port):
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen()

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(conn.recv(100)[::-1])
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"netlab differential")
        c.recv(100)
    t.join(5)
    srv.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"a datagram", ("127.0.0.1", port))
    u.close()


def _capture_and_compare(both_cores, cmd, path, port):
    """Run a capture tool while real traffic flows, then netlab == dpkt on its file."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (path.exists() and path.stat().st_size >= 24):
            time.sleep(0.05)
        time.sleep(0.3)
        _talk(port)
        deadline = time.monotonic() + 10
        want = 11  # handshake 3 + data/acks + teardown 3..4 + 1 datagram (at least)
        while time.monotonic() < deadline:
            try:
                if len(dpkt_view(str(path))) >= want:
                    break
            except (ValueError, dpkt.NeedData, dpkt.UnpackError):
                pass  # a block still being written
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    theirs = dpkt_view(str(path))
    assert len(theirs) >= want
    for core in both_cores:
        ours = netlab_view(core, str(path))
        assert [r[1:] for r in ours] == [r[1:] for r in theirs]
        # dpkt gives pcapng times as floats: allow its rounding, one microsecond
        assert max(abs(a[0] - b[0]) for a, b in zip(ours, theirs)) <= 1
    with open_capture(path) as buf:
        stats = both_cores[0].aggregate(buf)
        assert stats == both_cores[1].aggregate(buf)
    assert stats["tcp"]["handshakes"] == 1 and stats["tcp"]["closed"] == 1
    assert any(p["proto"] == "udp" and p["port"] == port for p in stats["ports"])


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run tcpdump on lo")
@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump (apt-get install tcpdump)")
@pytest.mark.parametrize("iface, extra", [("lo", []), ("any", []), ("lo", ["--time-stamp-precision=nano"]),
                                          ("lo", ["-s", "60"])])  # -s 60 cuts TCP options
def test_fresh_tcpdump_capture_matches_dpkt(both_cores, tmp_path, iface, extra):
    port = free_port()
    path = tmp_path / "live.pcap"
    _capture_and_compare(both_cores, ["tcpdump", "-i", iface, "-U", "-n", *extra, "-w", str(path),
                                      f"port {port}"], path, port)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run dumpcap on lo")
@pytest.mark.skipif(not shutil.which("dumpcap"), reason="needs dumpcap (apt-get install tshark)")
def test_fresh_dumpcap_pcapng_matches_dpkt(both_cores, tmp_path):
    # dumpcap (Wireshark's capture engine) writes pcapng by default: section,
    # interface, enhanced packet and interface statistics blocks.
    port = free_port()
    path = tmp_path / "live.pcapng"
    _capture_and_compare(both_cores, ["dumpcap", "-q", "-i", "lo", "-f", f"port {port}",
                                      "-w", str(path)], path, port)
    assert path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"


def test_many_flows_grow_the_flow_table(both_cores):
    """5000 flows (IPv4 and IPv6, both directions): the C hash table grows, order is first-seen."""
    import io
    import struct

    from netlab.packet.pcap import PcapWriter

    out = io.BytesIO()
    w = PcapWriter(out, linktype=101)
    for i in range(2500):
        for v6 in (False, True):
            udp = struct.pack(">HHHH", 1024 + i, 53, 8, 0)
            if v6:
                a = socket.inet_pton(socket.AF_INET6, f"2001:db8::{i:x}")
                b = socket.inet_pton(socket.AF_INET6, "2001:db8::ffff")
                pkt = struct.pack(">IHBB", 0x60000000, 8, 17, 64) + a + b + udp
                back = struct.pack(">IHBB", 0x60000000, 8, 17, 64) + b + a + udp[2:4] + udp[:2] + udp[4:]
            else:
                a, b = struct.pack(">I", 0x0A000000 + i), socket.inet_aton("10.255.255.255")
                head = struct.pack(">BBHHHBBH", 0x45, 0, 28, 0, 0, 64, 17, 0)
                pkt, back = head + a + b + udp, head + b + a + udp[2:4] + udp[:2] + udp[4:]
            w.write(pkt, ts_ns=i)
            w.write(back, ts_ns=i)
    c, py = both_cores
    stats = c.aggregate(out.getvalue())
    assert stats == py.aggregate(out.getvalue())
    assert len(stats["flows"]) == 5000 and stats["packets"] == 10000
    assert all(f["packets"] == 2 and f["dport"] == 53 for f in stats["flows"])
    assert [f["sport"] for f in stats["flows"][:4]] == [1024, 1024, 1025, 1025]
    assert stats["flows"][1]["src"] == "2001:db8::"


def _frames_of_every_link_type():
    """(linktype, frame bytes): up to 5 real frames per link type of the shipped captures."""
    from netlab.packet.pure.capture import CaptureError, iter_frames

    found = {}
    for seed in SEEDS:
        try:
            for off, _ts, caplen, _wire, _ifid, link in iter_frames(seed):
                if len(found.setdefault(link, [])) < 5:
                    found[link].append(bytes(seed[off:off + caplen]))
        except CaptureError:
            pass  # a damaged seed (tests/data/fuzz) still gave its good frames
    return [(link, frame) for link, frames in sorted(found.items()) for frame in frames]


REAL_FRAMES = _frames_of_every_link_type()


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(REAL_FRAMES), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                              max_size=4), st.integers(0, 200))
def test_mutated_frames_of_every_link_type(both_cores, real, flips, cut):
    """Real frames of each link type, bytes changed and cut: both cores decode alike."""
    link, frame = real
    data = bytearray(frame)
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    data = bytes(data[: max(0, len(data) - cut)])
    c, py = both_cores
    for checks in (False, True):
        assert c.decode_frame(data, link, checks) == py.decode_frame(data, link, checks)
