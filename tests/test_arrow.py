"""Captures as Arrow tables: equal to ``dissect --json`` field by field, on both backends."""
import glob
import json
import os
import subprocess
import sys

import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install 'netlab[data]'")

from netlab import arrow, dissect, packet  # noqa: E402
from netlab.packet.pure import arrow as py_columns  # noqa: E402
from netlab.packet.pcap import open_capture  # noqa: E402

from tests.conftest import ROOT, run_netlab  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
SHIPPED = sorted(glob.glob(os.path.join(DATA, "*.pcap*"))
                 + glob.glob(os.path.join(ROOT, "netlab", "data", "samples", "*.pcap*")))
FUZZ = sorted(glob.glob(os.path.join(DATA, "fuzz", "*")))
HANDSHAKE = os.path.join(DATA, "handshake.pcap")

# The --json keys that are columns of the same name and value (the rest: see same_packet).
SAME = ("n", "ts_ns", "src", "dst", "proto", "sport", "dport", "flags", "length", "wirelen",
        "payload_len", "checksum", "status", "interface")


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def same_packet(row: dict, obj: dict) -> None:
    """Assert one table row says what one ``--json`` object says."""
    for key in SAME:
        assert row[key] == obj[key], (key, row, obj)
    for key in ("seq", "ack", "icmp_type", "icmp_code"):  # absent from the JSON when not TCP/ICMP
        assert row[key] == obj.get(key), (key, row, obj)
    assert row["payload"] == bytes.fromhex(obj["payload"])
    assert row["tcp_flags"] is None or dissect.flag_names(row["tcp_flags"]) == obj["flags"]


def rows_of(table) -> list:
    """Table rows as dicts; ``ts`` checked against ``ts_ns`` here (datetime has no nanoseconds)."""
    ts = table.column("ts").cast(pa.int64()).to_pylist()
    assert ts == table.column("ts_ns").to_pylist()
    return table.drop_columns(["ts"]).to_pylist()


def json_of(path, *options):
    out = run_netlab("dissect", path, "--json", *options)
    return out, [json.loads(line) for line in out.stdout.splitlines()]


def library_json(buf, checks=False) -> tuple:
    """What ``dissect --json`` prints for a buffer, through the same library calls; and the error."""
    objs = []
    try:
        for n, rec in enumerate(dissect.dissect(buf, None, checks), 1):
            objs.append(dissect.packet_json(n, rec, buf[rec.offset:rec.offset + rec.caplen]))
    except packet.CaptureError as exc:
        return objs, exc
    return objs, None


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_table_equals_json_on_shipped_captures(path):
    out, objs = json_of(path)
    assert out.returncode == 0, out.stderr
    table = packet.to_arrow(path, columns=arrow.COLUMNS)
    rows = rows_of(table)
    assert len(rows) == len(objs) > 0
    for row, obj in zip(rows, objs):
        same_packet(row, obj)


def test_checksums_column_equals_json_checksums():
    out, objs = json_of(HANDSHAKE, "--checksums")
    assert out.returncode == 0, out.stderr
    rows = rows_of(packet.to_arrow(HANDSHAKE, columns=arrow.COLUMNS, checks=True))
    assert {r["checksum"] for r in rows} <= {"ok", "bad"} and len(rows) == len(objs)
    for row, obj in zip(rows, objs):
        same_packet(row, obj)


def test_filter_equals_dissect_filter():
    expr = "tcp and port 7107 and not host ::1"
    out, objs = json_of(HANDSHAKE, "--filter", expr)
    assert out.returncode == 0, out.stderr
    rows = rows_of(packet.to_arrow(HANDSHAKE, columns=arrow.COLUMNS, filter=expr))
    assert 0 < len(rows) == len(objs) < 15
    assert [r["n"] for r in rows] == list(range(1, len(rows) + 1))  # counted after the filter
    for row, obj in zip(rows, objs):
        same_packet(row, obj)


def damaged_files(tmp_path) -> list:
    """Real captures cut short in a record and with an impossible record length."""
    raw = read(HANDSHAKE)
    files = []
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(raw[:-30])
    files.append(cut)
    # Packet 6's record header says 200 000 bytes (more than the file holds).
    recs, pos = [], 24
    while pos < len(raw):
        recs.append(pos)
        pos += 16 + int.from_bytes(raw[pos + 8:pos + 12], "little")
    bad = bytearray(raw)
    bad[recs[5] + 8:recs[5] + 12] = (200000).to_bytes(4, "little")
    (tmp_path / "badlen.pcap").write_bytes(bytes(bad))
    files.append(tmp_path / "badlen.pcap")
    ng = read(os.path.join(DATA, "handshake.pcapng"))
    (tmp_path / "cut.pcapng").write_bytes(ng[:len(ng) * 2 // 3])
    files.append(tmp_path / "cut.pcapng")
    return files


def test_damaged_files_give_the_rows_before_the_damage_then_the_error(tmp_path):
    for path in damaged_files(tmp_path):
        out, objs = json_of(path)
        assert out.returncode == 1 and "byte offset" in out.stderr and 0 < len(objs) < 15
        with pytest.raises(packet.CaptureError) as caught:
            packet.to_arrow(str(path), columns=arrow.COLUMNS)
        rows = rows_of(caught.value.table)
        assert len(rows) == len(objs)
        for row, obj in zip(rows, objs):
            same_packet(row, obj)
        assert f"byte offset {caught.value.offset}" in out.stderr
        # The batch iterator: every good packet in batches, then the same error.
        seen = []
        with pytest.raises(packet.CaptureError):
            for batch in packet.iter_arrow_batches(str(path), batch_size=4):
                seen.extend(batch.column("n").to_pylist())
        assert seen == [o["n"] for o in objs]


@pytest.mark.parametrize("backend", ["cython", "python"], ids=["c", "py"])
def test_fuzz_corpus_equals_json_on_each_backend(backend):
    """Malformed bytes of every kind: same rows as --json, the same error after them."""
    assert len(FUZZ) > 10
    for path in FUZZ:
        buf = read(path)
        objs, error = library_json(buf)
        try:
            table = arrow.to_arrow(buf, columns=arrow.COLUMNS, backend=backend)
            got = None
        except packet.CaptureError as exc:
            table, got = getattr(exc, "table", None), exc
        if error is not None and error.offset == 0:  # not a capture: refused at once
            assert got is not None and str(got) == str(error) and table.num_rows == 0
            continue
        assert str(got) == str(error), path
        rows = rows_of(table)
        assert len(rows) == len(objs), path
        for row, obj in zip(rows, objs):
            same_packet(row, obj)


@pytest.mark.parametrize("batch_size", [1, 3, 65536])
def test_both_backends_fill_identical_buffers(both_cores, batch_size):
    from netlab.packet import _arrow

    assert _arrow.BACKEND == "cython"
    for path in SHIPPED + FUZZ:
        buf = read(path)
        results = []
        for twin in (_arrow, py_columns):
            got = []
            try:
                for n, cols in twin.iter_columns(buf, batch_size, True, True):
                    got.append((n, {k: tuple(bytes(p) for p in v) if isinstance(v, tuple)
                                    else bytes(v) for k, v in cols.items()}))
            except packet.CaptureError as exc:
                got.append(("error", str(exc), exc.offset))
            results.append(got)
        assert results[0] == results[1], path


def test_twins_export_the_same_names(both_cores):
    from netlab.packet import _arrow

    assert set(py_columns.__all__) <= set(dir(_arrow))
    assert (_arrow.BACKEND, py_columns.BACKEND) == ("cython", "python")
    assert arrow._twin(None).BACKEND == packet.BACKEND  # the live backend's columns


def test_both_backends_give_equal_tables(both_cores):
    for path in SHIPPED:
        c = arrow.to_arrow(path, columns=arrow.COLUMNS, backend="cython", checks=True)
        p = arrow.to_arrow(path, columns=arrow.COLUMNS, backend="python", checks=True)
        assert c.equals(p) and c.schema == p.schema


def test_batches_concatenate_to_the_table_and_count_on():
    table = packet.to_arrow(HANDSHAKE)
    batches = list(packet.iter_arrow_batches(HANDSHAKE, batch_size=4))
    assert [b.num_rows for b in batches] == [4, 4, 4, 3]
    joined = pa.Table.from_batches(batches)
    assert joined.equals(table)
    assert joined.column("n").to_pylist() == list(range(1, 16))


def test_types_and_column_choice():
    table = packet.to_arrow(HANDSHAKE, columns=["ts", "src", "dport", "flags"])
    assert table.column_names == ["ts", "src", "dport", "flags"]
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("dport").type == pa.uint16()
    assert table.schema.field("flags").type == pa.list_(pa.string())
    full = packet.to_arrow(HANDSHAKE)
    assert full.column_names == list(arrow.DEFAULT_COLUMNS) and "payload" not in full.column_names
    assert full.schema.field("ts_ns").type == pa.int64()
    with pytest.raises(ValueError, match="unknown column 'port'"):
        packet.to_arrow(HANDSHAKE, columns=["port"])


def test_not_a_capture_and_empty_capture(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"hello, this is not a capture file")
    with pytest.raises(packet.CaptureError, match="not a pcap or pcapng file") as caught:
        packet.to_arrow(str(junk))
    assert caught.value.table.num_rows == 0
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(read(HANDSHAKE)[:24])  # a file header, no packet
    table = packet.to_arrow(str(empty))
    assert table.num_rows == 0 and table.schema == arrow.schema()


def test_memory_pages_of_the_mapping_are_released(tmp_path):
    """The walk hands the pages it has passed back (madvise): the packets stay right."""
    with open_capture(HANDSHAKE) as buf:
        table = arrow.to_arrow(buf, batch_size=2)
    assert table.equals(packet.to_arrow(HANDSHAKE))


BLOCKED = "import sys; sys.modules['pyarrow'] = None; "


def test_missing_pyarrow_is_one_line_naming_the_extra(tmp_path):
    code = BLOCKED + ("from netlab.packet import to_arrow\n"
                      "try:\n    to_arrow(sys.argv[1])\n"
                      "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code, HANDSHAKE], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("pyarrow is not installed: Arrow and Parquet output need it "
                                  "(pip install 'netlab[data]')")
    code = BLOCKED + "from netlab.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", code, "dissect", HANDSHAKE, "--parquet",
                          str(tmp_path / "x.parquet")], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "pip install 'netlab[data]'" in lines[0], out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "x.parquet").exists()
    # Without pyarrow, everything else of dissect still works.
    out = subprocess.run([sys.executable, "-c", code, "dissect", HANDSHAKE, "--stats"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and "15 packets" in out.stdout, out.stderr
