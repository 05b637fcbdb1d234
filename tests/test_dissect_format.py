"""``dissect`` output built in C (src_c/format.h) against its readable twin, byte for byte.

Every shipped and test capture, text and JSON, with and without checksums and
filters; crafted payloads for the escaping of ``payload_text`` and of the
text line; random frames for everything else. Also the records path in
batches and the filtered stats path, both evaluated in the compiled core.
"""
import glob
import json
import os
import random
import struct

import pytest

from netlab.packet import fields as F
from netlab.packet.pcap import PcapWriter, open_capture
from netlab.packet.pfilter import compile_filter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTURES = sorted(glob.glob(os.path.join(ROOT, "tests", "data", "*.pcap*"))
                  + glob.glob(os.path.join(ROOT, "tests", "data", "dissect", "*.pcap*"))
                  + glob.glob(os.path.join(ROOT, "netlab", "data", "samples", "*.pcap*"))
                  + glob.glob(os.path.join(ROOT, "tests", "data", "fuzz", "*")))
FILTERS = [None, "tcp and not port 7107", "udp or icmp or icmp6", "not tcp", "host ::1 or arp",
           "src port 7107", "dst host 127.0.0.1 and ip"]


def _output(core, buf, as_json, checks, program):
    """All output bytes and the error (message, offset) at the end, or None."""
    chunks = []
    try:
        for chunk in core.format_capture(buf, as_json, checks, program):
            assert isinstance(chunk, bytes) and chunk.endswith(b"\n")
            chunks.append(chunk)
    except core.CaptureError as exc:
        return b"".join(chunks), (str(exc), exc.offset)
    return b"".join(chunks), None


def _both(both_cores, path, as_json, checks=False, program=None):
    c, py = both_cores
    with open_capture(path) as buf:
        try:
            a = _output(c, buf, as_json, checks, program)
        except c.CaptureError as exc:  # not a capture at all: the same refusal
            with pytest.raises(py.CaptureError) as info:
                _output(py, buf, as_json, checks, program)
            assert (str(info.value), info.value.offset) == (str(exc), exc.offset)
            return None
        b = _output(py, buf, as_json, checks, program)
    assert a == b, f"{os.path.basename(path)} json={as_json} checks={checks} {program}"
    return a


@pytest.mark.parametrize("path", CAPTURES, ids=os.path.basename)
def test_every_capture_prints_the_same_bytes(both_cores, path):
    assert len(CAPTURES) > 30
    for as_json in (False, True):
        for checks in (False, True):
            for text in FILTERS[:3]:
                _both(both_cores, path, as_json, checks,
                      None if text is None else compile_filter(text).program)


def test_json_is_json_dumps_of_packet_json(both_cores):
    from netlab.packet.lines import packet_json
    c, _ = both_cores
    path = os.path.join(ROOT, "tests", "data", "mixed_sll.pcap")
    with open_capture(path) as buf:
        lines = b"".join(c.format_capture(buf, True, True)).decode("ascii").splitlines()
        recs = list(c.iter_records(buf, True))
    assert len(lines) == len(recs) == 14
    from netlab.packet.lines import Annotator
    notes = Annotator()
    for n, (line, rec) in enumerate(zip(lines, recs), 1):
        with open_capture(path) as buf:
            frame = bytes(buf[rec[F.OFFSET]:rec[F.OFFSET] + rec[F.CAPLEN]])
        assert line == json.dumps(packet_json(n, rec, frame, notes.note(rec)))


def _udp_frame(payload: bytes, sport=5000, dport=7007) -> bytes:
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2])) + udp
    return b"\0" * 12 + b"\x08\x00" + ip


PAYLOADS = [
    bytes(range(256)),                         # every byte once
    "héllo wörld ✓ 😀".encode(),               # 2-, 3- and 4-byte sequences (a surrogate pair)
    b"\xed\xa0\x80 surrogate \xed\xbf\xbf",    # encoded surrogates: not UTF-8
    b"\xc0\xaf overlong \xe0\x80\xaf \xf0\x80\x80\xaf",
    b"\xf4\x90\x80\x80 above U+10FFFF \xf5\x80",
    b"cut at the end \xe2\x82",                # a sequence the capture cuts
    b"\xe2\x82 cut inside \xf0\x9f\x98 x",
    b'quotes " \' and \\ backslash \x7f DEL \x00 NUL \x1b ESC \x08\x0c\t\r\n',
    b"\xff" * 50,
    b"",
]


def test_payload_escaping_matches_python(both_cores, tmp_path):
    path = tmp_path / "payloads.pcap"
    with PcapWriter(path) as w:
        for i, payload in enumerate(PAYLOADS):
            w.write(_udp_frame(payload), 1_700_000_000_000_000_000 + i * 1_234_567)
    text = _both(both_cores, path, False)[0].decode("ascii").splitlines()
    rows = [json.loads(line) for line in _both(both_cores, path, True)[0].decode("ascii").splitlines()]
    assert len(rows) == len(text) == len(PAYLOADS)
    for payload, row, line in zip(PAYLOADS, rows, text):
        assert bytes.fromhex(row["payload"]) == payload
        assert row["payload_text"] == payload.decode("utf-8", "backslashreplace")
        assert row["ts"] == row["ts_ns"] / 1e9
        if payload:
            assert "'" in line and ("..." in line) == (len(payload) > 40)


def _tcp_frame(rng, options: bytes, flags: int, payload: bytes, v6: bool) -> bytes:
    options += b"\0" * (-len(options) % 4)
    tcp = struct.pack(">HHIIBBHHH", rng.choice([80, 7107, rng.randrange(65536)]),
                      rng.choice([7107, rng.randrange(65536)]), rng.getrandbits(32),
                      rng.getrandbits(32), (5 + len(options) // 4) << 4 | rng.getrandbits(1),
                      flags, rng.randrange(65536), 0, 0) + options + payload
    if v6:
        ip = struct.pack(">IHBB16s16s", 6 << 28, len(tcp), 6, 64, b"\0" * 15 + b"\1",
                         bytes([0xfe, 0x80] + [0] * 13 + [rng.randrange(1, 3)])) + tcp
        return b"\0" * 12 + b"\x86\xdd" + ip
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     bytes([127, 0, 0, 1]), bytes([10, 0, 0, rng.randrange(1, 3)])) + tcp
    return b"\0" * 12 + b"\x08\x00" + ip


def test_random_tcp_frames_print_the_same_bytes(both_cores, tmp_path):
    # Random flags (handshake notes), options (well-formed and broken), payloads,
    # snap lengths cutting anywhere, addresses of both families.
    rng = random.Random(13)
    path = tmp_path / "random.pcap"
    with PcapWriter(path, snaplen=200) as w:
        for i in range(600):
            opts = rng.choice([b"", b"\x02\x04\x05\xb4", b"\x01\x01\x08\x0a" + os.urandom(8),
                               b"\x04\x02\x03\x03\x07", b"\x05\x0a" + os.urandom(8),
                               b"\x05\x02", b"\x02\x03\x05", b"\x09", bytes([rng.randrange(256)
                                                                              for _ in range(7)])])
            flags = rng.choice([0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, rng.randrange(512)])
            payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 40, 41, 150])))
            frame = _tcp_frame(rng, opts, flags & 0xFF, payload, rng.random() < 0.3)
            w.write(frame[:rng.choice([len(frame), len(frame), 40, 54, 60, 70])],
                    rng.getrandbits(63), wirelen=len(frame))
    for as_json in (False, True):
        for text in (None, "tcp and port 7107", "not host 10.0.0.1"):
            _both(both_cores, path, as_json, True, None if text is None else compile_filter(text).program)


def test_filtered_output_keeps_numbers_and_notes(both_cores):
    c, _ = both_cores
    path = os.path.join(ROOT, "tests", "data", "handshake.pcap")
    with open_capture(path) as buf:
        every = b"".join(c.format_capture(buf)).decode().splitlines()
        kept = b"".join(c.format_capture(buf, program=compile_filter("dst port 7107").program))
    kept = kept.decode().splitlines()
    assert 0 < len(kept) < len(every)
    for line in kept:  # the very line of the unfiltered output: number and note
        assert line in every
    assert int(kept[-1].split()[0]) > len(kept)


@pytest.mark.parametrize("size", [1, 5, 64, 4096])
def test_batches_are_the_records(core, size):
    path = os.path.join(ROOT, "tests", "data", "mixed_sll2.pcap")
    f = compile_filter("tcp and not port 7208")
    with open_capture(path) as buf:
        records = list(core.iter_records(buf))
        batches = list(core.iter_batches(buf, size=size))
        assert all(0 < len(b) <= size for b in batches)
        assert [r for b in batches for r in b] == records
        kept = [r for b in core.iter_batches(buf, size=size, program=f.program) for r in b]
        assert kept == [r for r in records if f(r)] and 0 < len(kept) < len(records)
    with pytest.raises(ValueError):
        core.iter_batches(b"", size=0)


def test_batches_end_with_the_damage(core):
    with open(os.path.join(ROOT, "tests", "data", "handshake.pcap"), "rb") as f:
        data = f.read()[:700]
    got = []
    with pytest.raises(core.CaptureError) as info:
        for batch in core.iter_batches(data, size=3):
            got.extend(batch)
    assert len(got) == 7 and info.value.offset == 642


@pytest.mark.parametrize("text", FILTERS[1:])
def test_filtered_stats_in_the_core(both_cores, text):
    c, py = both_cores
    f = compile_filter(text)
    for name in ("mixed_sll2.pcap", "mixed_lo_ns.pcapng", os.path.join("dissect", "icmp_unreachable.pcap")):
        with open_capture(os.path.join(ROOT, "tests", "data", name)) as buf:
            want = py.aggregate_records(r for r in py.iter_records(buf) if f(r))
            assert c.aggregate(buf, False, f.program) == py.aggregate(buf, False, f.program) == want
