"""pcap and pcapng reading (both backends), the writers, and damaged files."""
import io
import os
import shutil
import struct
import subprocess

import dpkt
import pytest

from netlab.packet import fields as F
from netlab.packet.pcap import PcapngWriter, PcapWriter, convert_to_pcapng, open_capture

DATA = os.path.join(os.path.dirname(__file__), "data")
FRAME = bytes(dpkt.ethernet.Ethernet(
    src=b"\0" * 6, dst=b"\0" * 6, type=0x0800,
    data=dpkt.ip.IP(src=b"\x7f\0\0\1", dst=b"\x7f\0\0\1", p=17,
                    data=dpkt.udp.UDP(sport=1, dport=7, data=b"hi", ulen=10))))


def write_pcap(**kw):
    out = io.BytesIO()
    w = PcapWriter(out, **kw)
    w.write(FRAME, ts_ns=1_700_000_000_123_456_789)
    w.write(FRAME[:20], ts_ns=1_700_000_001_000_000_000, wirelen=len(FRAME))
    return out.getvalue()


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("ns", [False, True])
def test_pcap_byte_orders_and_units(core, order, ns):
    data = write_pcap(byteorder=order, nanoseconds=ns)
    info = core.capture_info(data)
    assert info == {"format": "pcap", "byte_order": "little" if order == "<" else "big",
                    "ts_unit": "ns" if ns else "us", "snaplen": 262144, "linktype": 1}
    recs = list(core.iter_records(data))
    assert [r[F.TS_NS] for r in recs] == [1_700_000_000_123_456_789 if ns else 1_700_000_000_123_456_000,
                                    1_700_000_001_000_000_000]
    assert [(r[F.CAPLEN], r[F.WIRELEN]) for r in recs] == [(len(FRAME), len(FRAME)), (20, len(FRAME))]
    assert recs[0][11] == 7 and recs[0][0] == 24 + 16


def test_pcapng_interfaces_and_resolutions(core):
    out = io.BytesIO()
    w = PcapngWriter(out, byteorder=">")
    eth_if = w.add_interface(1)                         # microseconds (default)
    raw_if = w.add_interface(101, tsresol=9)            # nanoseconds
    bin_if = w.add_interface(1, tsresol=0x80 | 20)      # 2**-20 s
    ts = 1_700_000_000_123_456_789
    w.write(FRAME, eth_if, ts)
    w.write(FRAME[14:], raw_if, ts)
    w.write(FRAME, bin_if, ts)
    recs = list(core.iter_records(out.getvalue()))
    assert [r[F.IFID] for r in recs] == [0, 1, 2]
    assert [r[F.LINKTYPE] for r in recs] == [1, 101, 1]
    assert recs[0][1] == 1_700_000_000_123_456_000 and recs[1][F.TS_NS] == ts
    assert abs(recs[2][1] - ts) < 1000  # 2**-20 s is about 954 ns
    assert all(r[F.DPORT] == 7 for r in recs)
    assert core.capture_info(out.getvalue())["format"] == "pcapng"


def test_pcapng_matches_dpkt():
    path = os.path.join(DATA, "handshake.pcapng")
    with open(path, "rb") as f:
        theirs = [(round(ts * 1e6), buf) for ts, buf in dpkt.pcapng.Reader(f)]
    with open_capture(path) as buf:
        from netlab.packet import iter_records
        ours = [(r[F.TS_NS] // 1000, bytes(buf[r[F.OFFSET]:r[F.OFFSET] + r[F.CAPLEN]])) for r in iter_records(buf)]
    assert ours == theirs and len(ours) == 15


def test_pcapng_several_sections(core):
    a, b = io.BytesIO(), io.BytesIO()
    for out, link in ((a, 1), (b, 101)):
        w = PcapngWriter(out, byteorder="<" if link == 1 else ">")
        w.add_interface(link)
        w.write(FRAME if link == 1 else FRAME[14:], 0, 10**15)
    recs = list(core.iter_records(a.getvalue() + b.getvalue()))
    assert [r[F.LINKTYPE] for r in recs] == [1, 101] and recs[1][F.DPORT] == 7


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump (apt-get install tcpdump)")
@pytest.mark.parametrize("kind", ["pcap", "pcap-ns", "pcapng"])
def test_tcpdump_reads_our_files(tmp_path, kind):
    path = tmp_path / f"out.{kind}"
    if kind == "pcapng":
        convert_to_pcapng(os.path.join(DATA, "handshake.pcap"), path)
    else:
        with PcapWriter(path, nanoseconds=kind == "pcap-ns") as w:
            w.write(FRAME, ts_ns=1_700_000_000_000_000_000)
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    if kind == "pcapng":
        assert len(lines) == 15 and "Flags [S]" in lines[0]
    else:
        assert lines == ["%s IP 127.0.0.1.1 > 127.0.0.1.7: UDP, length 2" % lines[0].split()[0]]


# --- damaged files: the good records first, then one error naming the offset ----

def _collect(core, data):
    got = []
    with pytest.raises(core.CaptureError) as info:
        for rec in core.iter_records(data):
            got.append(rec)
    return got, info.value


def test_truncated_pcap_delivers_then_names_offset(core):
    data = write_pcap()
    cut = data[:-5]
    got, err = _collect(core, cut)
    assert len(got) == 1
    assert err.offset == 24 + 16 + len(FRAME)
    assert "truncated record" in str(err) and f"byte offset {err.offset}" in str(err)
    stats = core.aggregate(cut)
    assert stats["packets"] == 1 and stats["error"]["offset"] == err.offset


@pytest.mark.parametrize("data, offset, words", [
    (b"", 0, "too short"),
    (b"\x00\x01\x02\x03garbage", 0, "not a pcap or pcapng file"),
    (struct.pack("<I", 0xA1B2C3D4) + b"\0" * 10, 0, "truncated pcap file header"),
])
def test_not_a_capture(core, data, offset, words):
    with pytest.raises(core.CaptureError) as info:
        core.iter_records(data)
    assert info.value.offset == offset and words in str(info.value)


def test_huge_record_length(core):
    data = bytearray(write_pcap())
    struct.pack_into("<I", data, 24 + 8, 0x7FFFFFFF)
    got, err = _collect(core, bytes(data))
    assert got == [] and err.offset == 24 and "bad record length" in str(err)


def test_damaged_pcapng_block(core):
    out = io.BytesIO()
    w = PcapngWriter(out)
    w.add_interface(1)
    w.write(FRAME, 0, 10**18)
    w.write(FRAME, 5 - 5, 10**18)
    data = bytearray(out.getvalue())
    second = len(data) - (32 + len(FRAME) + (-len(FRAME)) % 4)
    struct.pack_into("<I", data, second + 8, 3)  # names interface 3, only 1 defined
    got, err = _collect(core, bytes(data))
    assert len(got) == 1 and err.offset == second
    assert "interface 3, only 1 defined" in str(err)


def test_shipped_captures_decode_identically(both_cores):
    c, py = both_cores
    for name in sorted(os.listdir(DATA)):
        if not name.endswith((".pcap", ".pcapng")):
            continue
        with open_capture(os.path.join(DATA, name)) as buf:
            for checks in (False, True):
                assert list(c.iter_records(buf, checks)) == list(py.iter_records(buf, checks)), name
                assert c.aggregate(buf, checks) == py.aggregate(buf, checks), name


def _block(btype, body, order="<"):
    body += b"\0" * ((-len(body)) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def test_pcapng_other_block_types(core):
    """Name resolution and statistics blocks are skipped; simple and obsolete packet blocks read."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 1, 0, 65535)
                 + struct.pack("<HH", 9, 1) + b"\x09\0\0\0" + struct.pack("<HH", 0, 0))
    nrb = _block(4, struct.pack("<HH", 1, 6) + b"\x7f\0\0\1lo\0\0" + struct.pack("<HH", 0, 0))
    spb = _block(3, struct.pack("<I", len(FRAME)) + FRAME)
    opb = _block(2, struct.pack("<HHIIII", 0, 0, 0, 5, len(FRAME), len(FRAME)) + FRAME)
    isb = _block(5, struct.pack("<III", 0, 0, 0))
    epb_opts = _block(6, struct.pack("<IIIII", 0, 0, 7, len(FRAME), len(FRAME)) + FRAME
                      + b"\0" * ((-len(FRAME)) % 4) + struct.pack("<HH", 1, 4) + b"note"
                      + struct.pack("<HH", 0, 0))
    recs = list(core.iter_records(shb + idb + nrb + spb + opb + isb + epb_opts))
    assert len(recs) == 3
    assert [r[F.TS_NS] for r in recs] == [0, 5, 7]  # nanosecond interface (if_tsresol 9)
    assert all(r[F.DPORT] == 7 and r[F.CAPLEN] == len(FRAME) for r in recs)


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d[:8] + b"\x00\x00\x00\x00" + d[12:], "bad byte-order magic"),
    (lambda d: d[:12] + b"\x02\x00" + d[14:], "unsupported pcapng version 2.0"),
    (lambda d: d[:-1], "truncated block"),
    (lambda d: d[:-4] + b"\x99\x99\x99\x99", "does not match"),
])
def test_damaged_pcapng_headers(core, mutate, words):
    out = io.BytesIO()
    w = PcapngWriter(out)
    w.add_interface(1)
    w.write(FRAME, 0, 0)
    with pytest.raises(core.CaptureError) as info:
        list(core.iter_records(mutate(out.getvalue())))
    assert words in str(info.value)
