"""``dissect --parquet``: Parquet files and datasets that DuckDB reads, equal to ``--stats``."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("pyarrow", reason="pyarrow not installed: pip install 'netlab[data]'")
duckdb = pytest.importorskip("duckdb", reason="duckdb not installed: pip install 'netlab[test]'")
import pyarrow.parquet as pq  # noqa: E402

from netlab import packet  # noqa: E402
from tests.conftest import ROOT, run_netlab  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
SHIPPED = [os.path.join(DATA, n) for n in sorted(os.listdir(DATA)) if ".pcap" in n]
HANDSHAKE = os.path.join(DATA, "handshake.pcap")
LESSON = os.path.join(ROOT, "docs", "lessons", "data.rst")


def stats_of(path) -> dict:
    out = run_netlab("dissect", path, "--stats", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def sql(query: str, **views) -> list:
    """Run a DuckDB query with each view name bound to a Parquet file or glob."""
    con = duckdb.connect()
    try:
        for name, where in views.items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{where}')")
        return con.execute(query).fetchall()
    finally:
        con.close()


PROTOCOLS = """
SELECT CASE WHEN proto LIKE 'ether-%' OR proto LIKE 'link-%' OR proto = 'ip' THEN 'other'
            ELSE proto END AS p, count(*), sum(wirelen)
FROM pk GROUP BY p
"""
# A port counts every TCP/UDP packet that has it at either end (once when both ends have it).
PORTS = """
SELECT proto, port, count(*), sum(wirelen) FROM (
    SELECT proto, sport AS port, wirelen FROM pk WHERE sport IS NOT NULL
    UNION ALL
    SELECT proto, dport, wirelen FROM pk WHERE dport IS NOT NULL AND dport <> sport)
GROUP BY proto, port
"""
# Flows: the two directions of a 5-tuple together; TCP states from the flags.
FLOWS = """
WITH f AS (
    SELECT *, (src < dst OR (src = dst AND sport <= dport)) AS fwd FROM pk WHERE sport IS NOT NULL),
k AS (
    SELECT *, CASE WHEN fwd THEN src ELSE dst END AS a, CASE WHEN fwd THEN sport ELSE dport END AS pa,
              CASE WHEN fwd THEN dst ELSE src END AS b, CASE WHEN fwd THEN dport ELSE sport END AS pb
    FROM f),
w AS (
    SELECT *, first_value(src) OVER flow AS src0, first_value(sport) OVER flow AS sport0 FROM k
    WINDOW flow AS (PARTITION BY proto, a, pa, b, pb ORDER BY n))
SELECT proto, src0, sport0, CASE WHEN src0 = a AND sport0 = pa THEN b ELSE a END,
       CASE WHEN src0 = a AND sport0 = pa THEN pb ELSE pa END, count(*), sum(wirelen),
       bool_or(tcp_flags & 18 = 2) AS syn,
       bool_or(tcp_flags & 18 = 18) AS synack,
       coalesce(min(n) FILTER (WHERE tcp_flags & 18 = 18) < max(n) FILTER (WHERE tcp_flags & 18 = 16),
                false) AS handshake,
       bool_or(tcp_flags & 1 = 1 AND src = src0 AND sport = sport0) AS fin_a,
       bool_or(tcp_flags & 1 = 1 AND NOT (src = src0 AND sport = sport0)) AS fin_b,
       bool_or(tcp_flags & 4 = 4) AS rst
FROM w GROUP BY proto, a, pa, b, pb, src0, sport0
"""


def to_parquet(path, out):
    done = run_netlab("dissect", path, "--parquet", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_duckdb_over_parquet_equals_stats(tmp_path, path):
    stats = stats_of(path)
    pk = to_parquet(path, str(tmp_path / "pk.parquet"))
    (packets, nbytes), = sql("SELECT count(*), sum(wirelen) FROM pk", pk=pk)
    assert (packets, nbytes) == (stats["packets"], stats["bytes"])
    assert sorted(sql(PROTOCOLS, pk=pk)) == sorted(
        (p["proto"], p["packets"], p["bytes"]) for p in stats["protocols"])
    assert sorted(sql(PORTS, pk=pk)) == sorted(
        (p["proto"], p["port"], p["packets"], p["bytes"]) for p in stats["ports"])
    flows = sql(FLOWS, pk=pk)
    assert sorted(f[:7] for f in flows) == sorted(
        (f["proto"], f["src"], f["sport"], f["dst"], f["dport"], f["packets"], f["bytes"])
        for f in stats["flows"])
    tcp = [f for f in flows if f[0] == "tcp"]
    assert {
        "flows": len(tcp),
        "handshakes": sum(f[9] for f in tcp),
        "syn_without_synack": sum(f[7] and not f[8] for f in tcp),
        "fin": sum(f[10] or f[11] for f in tcp),
        "closed": sum(f[10] and f[11] for f in tcp),
        "rst": sum(f[12] for f in tcp),
    } == stats["tcp"]


def test_dataset_folder_of_many_captures_with_jobs(tmp_path):
    out = tmp_path / "dataset"
    done = run_netlab("dissect", *SHIPPED, "--parquet", out, "--jobs", "2", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    names = sorted(os.listdir(out))
    assert len(names) == len(SHIPPED) and all(n.endswith(".parquet") for n in names)
    assert [r["capture"] for r in summary["files"]] == SHIPPED
    per_file = [stats_of(p) for p in SHIPPED]
    assert summary["packets"] == sum(s["packets"] for s in per_file)
    assert [r["packets"] for r in summary["files"]] == [s["packets"] for s in per_file]
    # One dataset: DuckDB (and pyarrow) read the folder as one table.
    glob = str(out / "*.parquet")
    got = dict((p, (n, b)) for p, n, b in sql(PROTOCOLS, pk=glob))
    want: dict = {}
    for s in per_file:
        for p in s["protocols"]:
            n, b = want.get(p["proto"], (0, 0))
            want[p["proto"]] = (n + p["packets"], b + p["bytes"])
    assert got == want
    assert pq.read_table(out).num_rows == summary["packets"]
    # The same dataset with one job: the same files, byte-equal tables.
    serial = tmp_path / "serial"
    assert run_netlab("dissect", *SHIPPED, "--parquet", serial).returncode == 0
    for name in names:
        assert pq.read_table(serial / name).equals(pq.read_table(out / name))


def test_files_may_follow_the_options(tmp_path):
    # `dissect a.pcap --parquet out b.pcap` names two captures, as in tcpdump-style shells.
    first, *rest = SHIPPED
    done = run_netlab("dissect", first, "--parquet", tmp_path / "late", *rest, "--json")
    assert done.returncode == 0, done.stderr
    assert [r["capture"] for r in json.loads(done.stdout)["files"]] == SHIPPED
    wrong = run_netlab("dissect", first, "--parquet", tmp_path / "bad", "--bogus")
    assert wrong.returncode == 2 and "unrecognized arguments: --bogus" in wrong.stderr


def test_parquet_holds_the_arrow_table(tmp_path):
    pk = to_parquet(HANDSHAKE, str(tmp_path / "h.parquet"))
    back = pq.read_table(pk)
    table = packet.to_arrow(HANDSHAKE)
    assert back.drop_columns(["ts"]).equals(table.drop_columns(["ts"]))
    # ts: microseconds in Parquet (what every reader takes); ts_ns keeps the nanoseconds.
    assert back.column("ts").cast("int64").to_pylist() == [
        t // 1000 for t in table.column("ts_ns").to_pylist()]
    with pytest.raises(AssertionError):  # a test that could fail: the files do differ
        assert pq.read_table(to_parquet(os.path.join(DATA, "mixed_sll.pcap"),
                                        str(tmp_path / "m.parquet"))).equals(back)


def test_filter_and_checksums_apply_to_parquet(tmp_path):
    out = tmp_path / "udp.parquet"
    done = run_netlab("dissect", HANDSHAKE, "--parquet", out, "--filter", "udp", "--checksums")
    assert done.returncode == 0, done.stderr
    assert "1 packets" in done.stdout
    (proto, checksum, n), = sql("SELECT proto, checksum, n FROM pk", pk=str(out))
    assert (proto, n) == ("udp", 1) and checksum in ("ok", "bad")


def test_pure_python_opt_out_writes_the_same_parquet(tmp_path):
    path = os.path.join(DATA, "mixed_sll2.pcap")
    compiled = to_parquet(path, str(tmp_path / "c.parquet"))
    done = run_netlab("dissect", path, "--parquet", tmp_path / "py.parquet",
                      env={"NETLAB_PURE_PYTHON": "1"})
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "py.parquet").equals(pq.read_table(compiled))


def test_damaged_capture_keeps_its_rows_and_fails_one_line(tmp_path):
    with open(HANDSHAKE, "rb") as f:
        raw = f.read()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(raw[:-30])
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    out = tmp_path / "ds"
    done = run_netlab("dissect", HANDSHAKE, cut, junk, "--parquet", out)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in done.stderr
    assert "cut.pcap" in lines[0] and "byte offset" in lines[0] and "14 packets before it" in lines[0]
    assert "junk.pcap" in lines[1] and "not a pcap or pcapng file" in lines[1]
    assert sorted(os.listdir(out)) == ["cut.parquet", "handshake.parquet"]  # no part files left
    assert pq.read_table(out / "cut.parquet").column("n").to_pylist() == list(range(1, 15))


@pytest.mark.parametrize("args, code, words", [
    ([HANDSHAKE, "--parquet", "x.parquet"], 2, "give a folder name"),
    (["--jobs", "2"], 2, "go with --parquet"),
    ([HANDSHAKE], 2, "go with --parquet"),
    (["--parquet", "out", "--stats"], 2, "choose one"),
    (["--parquet", "out", "--jobs", "0"], 2, "invalid count"),
    (["--parquet", "out", "--filter", "port x"], 2, "not a port number"),
    (["missing.pcap", "--parquet", "out"], 1, "missing.pcap: no such file"),
])
def test_usage_errors_are_one_line(tmp_path, args, code, words):
    done = run_netlab("dissect", HANDSHAKE, *args, cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert len(done.stderr.splitlines()) == 1 and words in done.stderr, done.stderr
    assert not os.listdir(tmp_path)  # nothing written


def test_progress_line_on_a_terminal_only(tmp_path):
    done = run_netlab("dissect", HANDSHAKE, "--parquet", tmp_path / "a")
    assert done.returncode == 0 and done.stderr == ""  # not a terminal: quiet
    import pty
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "netlab", "dissect", HANDSHAKE, "--parquet",
                               str(tmp_path / "b")], stdout=subprocess.PIPE, stderr=slave,
                              cwd=ROOT, timeout=60)
        os.close(slave)
        slave = None
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    assert proc.returncode == 0
    assert b"1/1 files, 15 packets" in seen and b"packets/s" in seen


def lesson_sql(name: str) -> str:
    """The SQL of the lesson's code block named ``name`` (docs/lessons/data.rst)."""
    with open(LESSON, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"( *)\.\. code-block:: sql\n +:name: " + re.escape(name) + r"\n\n((?: .*\n|\n)+)",
                  text)
    assert m, f"no sql block named {name} in {LESSON}"
    body = m.group(2).split("\n\n")[0]  # the block ends at the first blank line
    return "\n".join(line.strip() for line in body.splitlines())


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("tcpdump"),
                    reason="needs root and tcpdump (Debian: apt-get install tcpdump) to capture lo")
def test_lesson_scan_queries_equal_stats_and_scan(tmp_path):
    """The lab step: a real scan of loopback, captured; DuckDB answers as --stats and scan do."""
    host = "127.0.0.77"  # a loopback address of its own: no other test's packets in the capture
    with socket.socket() as srv:
        srv.bind((host, 0))
        srv.listen()
        port = srv.getsockname()[1]
        lo, hi = port - 4, port + 4
        cap_file = tmp_path / "scan.pcap"
        cap = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-n", "-w", str(cap_file),
                                f"tcp and host {host} and portrange {lo}-{hi}"],
                               stderr=subprocess.PIPE)
        try:
            # tcpdump says "listening on lo" once its filter is attached: only then scan.
            ready = threading.Event()
            threading.Thread(target=lambda: [ready.set() for line in cap.stderr
                                             if b"listening on" in line], daemon=True).start()
            assert ready.wait(30), "tcpdump did not start listening within 30 s"
            scan = run_netlab("scan", host, f"{lo}-{hi}", "--json", "--all")
        finally:
            time.sleep(1.0)
            cap.terminate()
            cap.communicate(timeout=10)
    assert scan.returncode == 0, scan.stderr
    scanned = json.loads(scan.stdout)
    pk = to_parquet(cap_file, str(tmp_path / "scan.parquet"))
    stats = stats_of(cap_file)
    ports = sql(lesson_sql("scan-ports").replace("'scan.parquet'", "pk"), pk=pk)
    assert [p for p, _syns in ports] == list(range(lo, hi + 1))
    assert sorted({f["dport"] for f in stats["flows"]}) == [p for p, _syns in ports]
    (refused,), = sql(lesson_sql("scan-rst").replace("'scan.parquet'", "pk"), pk=pk)
    assert refused == stats["tcp"]["syn_without_synack"] > 0
    closed = sorted(r["port"] for r in scanned if r["state"] == "closed")
    assert refused == len(closed) and port not in closed  # the listening port answered SYN-ACK
