"""``netlab dissect``: text, JSON, stats, filters and damaged files, through the real CLI."""
import json
import os
import struct

import pytest

DATA = os.path.join(os.path.dirname(__file__), "data")
HANDSHAKE = os.path.join(DATA, "handshake.pcap")


@pytest.mark.parametrize("name", ["handshake.pcap", "handshake.pcapng"])
def test_json_lines(netlab_cli, name):
    out = netlab_cli("dissect", os.path.join(DATA, name), "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["n"] for r in rows] == list(range(1, 16))
    assert [r["flags"] for r in rows[:3]] == [["SYN"], ["SYN", "ACK"], ["ACK"]]
    first = rows[0]
    for key in ("n", "ts", "src", "dst", "proto", "sport", "dport", "flags", "length", "payload"):
        assert key in first
    assert (first["src"], first["dport"], first["proto"], first["length"]) == ("127.0.0.1", 7107, "tcp", 74)
    sent = [bytes.fromhex(r["payload"]) for r in rows if r["payload"] and r["sport"] != 7107]
    assert sent[:3] == [b"hello netlab\r\n", b"the quick brown fox\r\n", b"bye\r\n"]
    assert rows[-1]["proto"] == "udp" and bytes.fromhex(rows[-1]["payload"]) == b"udp datagram"
    assert rows[-1]["flags"] == [] and rows[-1]["payload_text"] == "udp datagram"
    assert "FIN" in rows[11]["flags"]


def test_text_lines_name_the_handshake(netlab_cli):
    out = netlab_cli("dissect", HANDSHAKE)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 15
    assert "handshake 1/3" in lines[0] and "[SYN]" in lines[0] and "mss 65495" in lines[0]
    assert "handshake 2/3" in lines[1] and "handshake 3/3" in lines[2]
    assert "'hello netlab\\r\\n'" in lines[3]
    assert "FIN" in lines[11] and "closed" in lines[13]


def test_filters(netlab_cli):
    def count(expr):
        out = netlab_cli("dissect", HANDSHAKE, "--json", "--filter", expr)
        assert out.returncode == 0, out.stderr
        return len(out.stdout.splitlines())
    assert count("udp") == 1
    assert count("tcp") == 14
    assert count("tcp and not port 7107") == 0
    assert count("port 7107") == 15
    assert count("host 127.0.0.1 and (udp or icmp)") == 1
    assert count("host 10.0.0.1") == 0


@pytest.mark.parametrize("expr", ["tcp and", "port", "port 70000", "host nope", "(tcp", "bogus"])
def test_bad_filter_is_a_usage_error(netlab_cli, expr):
    out = netlab_cli("dissect", HANDSHAKE, "--filter", expr)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("netlab: error: bad filter") and len(out.stderr.splitlines()) == 1


def test_stats_json(netlab_cli):
    out = netlab_cli("dissect", HANDSHAKE, "--stats", "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["packets"] == 15 and stats["error"] is None
    assert {p["proto"]: p["packets"] for p in stats["protocols"]} == {"tcp": 14, "udp": 1}
    assert stats["tcp"]["handshakes"] == 1 and stats["tcp"]["closed"] == 1
    assert stats["flows"][0]["state"] == "closed" and stats["flows"][0]["dport"] == 7107
    filtered = json.loads(netlab_cli("dissect", HANDSHAKE, "--stats", "--json", "--filter", "udp").stdout)
    assert filtered["packets"] == 1


def test_stats_text(netlab_cli):
    out = netlab_cli("dissect", os.path.join(DATA, "mixed_sll2.pcap"), "--stats")
    assert out.returncode == 0, out.stderr
    assert "14 packets" in out.stdout and "reset" in out.stdout and "closed" in out.stdout


def test_truncated_file_shows_good_packets_then_one_error(netlab_cli, tmp_path):
    with open(HANDSHAKE, "rb") as f:
        data = f.read()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:700])
    out = netlab_cli("dissect", cut, "--json")
    assert out.returncode == 1
    assert len(out.stdout.splitlines()) == 7
    assert len(out.stderr.splitlines()) == 1 and "byte offset 642" in out.stderr
    stats = netlab_cli("dissect", cut, "--stats", "--json")
    assert stats.returncode == 1 and json.loads(stats.stdout)["packets"] == 7


@pytest.mark.parametrize("content, words", [(b"", "too short"), (b"hello world, not a capture", "magic")])
def test_not_a_capture(netlab_cli, tmp_path, content, words):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    out = netlab_cli("dissect", bad)
    assert out.returncode == 1 and out.stdout == ""
    assert words in out.stderr and len(out.stderr.splitlines()) == 1


def test_missing_file(netlab_cli, tmp_path):
    out = netlab_cli("dissect", tmp_path / "nope.pcap")
    assert out.returncode == 1 and "no such file" in out.stderr
    assert len(out.stderr.splitlines()) == 1


def test_pure_python_gives_the_same_output(netlab_cli):
    a = netlab_cli("dissect", os.path.join(DATA, "mixed_sll.pcap"), "--json", "--checksums")
    b = netlab_cli("dissect", os.path.join(DATA, "mixed_sll.pcap"), "--json", "--checksums",
                   env={"NETLAB_PURE_PYTHON": "1"})
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and len(a.stdout.splitlines()) == 14


def test_binary_payload_is_escaped_once_and_exact_in_json(netlab_cli, tmp_path):
    # One UDP datagram with a non-ASCII byte, a quote and a backslash.
    from netlab.packet.pcap import PcapWriter
    payload = b"hi \xff 'x' \\ end\r\n"
    udp = struct.pack(">HHHH", 5000, 7007, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
    frame = b"\0" * 12 + b"\x08\x00" + ip
    path = tmp_path / "one.pcap"
    with PcapWriter(path) as w:
        w.write(frame, 1_700_000_000_123_456_000)
    text = netlab_cli("dissect", path)
    assert text.returncode == 0, text.stderr
    assert "'hi \\xff \\'x\\' \\\\ end\\r\\n'" in text.stdout  # not \\\\xff
    row = json.loads(netlab_cli("dissect", path, "--json").stdout)
    assert bytes.fromhex(row["payload"]) == payload
    assert (row["length"], row["sport"], row["dport"]) == (len(frame), 5000, 7007)
    assert row["ts"] == 1700000000.123456


def test_cut_transport_header_has_no_payload(netlab_cli, tmp_path):
    # A snaplen of 40 keeps 6 bytes of the TCP header: those are not payload.
    from netlab.packet.pcap import PcapWriter
    tcp = struct.pack(">HHIIBBHHH", 40000, 7007, 1, 0, 0x50, 0x02, 65535, 0, 0) + b"data"
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + tcp
    frame = b"\0" * 12 + b"\x08\x00" + ip
    path = tmp_path / "cut.pcap"
    with PcapWriter(path, snaplen=40) as w:
        w.write(frame, 1_700_000_000_000_000_000)
    out = netlab_cli("dissect", path, "--json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert (row["proto"], row["length"], row["wirelen"]) == ("tcp", 40, len(frame))
    assert row["payload"] == "" and row["sport"] is None and "truncated" in row["status"]
    text = netlab_cli("dissect", path)
    assert "truncated" in text.stdout and "'" not in text.stdout


def test_filter_keeps_the_capture_numbers_and_notes(netlab_cli):
    every = netlab_cli("dissect", HANDSHAKE).stdout.splitlines()
    kept = netlab_cli("dissect", HANDSHAKE, "--filter", "src port 7107").stdout.splitlines()
    assert 0 < len(kept) < len(every)
    assert all(line in every for line in kept)  # same number, same note
    assert any("handshake 2/3" in line for line in kept)
    rows = [json.loads(line) for line in
            netlab_cli("dissect", HANDSHAKE, "--json", "--filter", "udp").stdout.splitlines()]
    assert [r["n"] for r in rows] == [15]


def test_icmp_port_unreachable_is_named_like_tcpdump(netlab_cli):
    # A real capture (tcpdump on lo): UDP to a closed port on 127.0.0.1 and ::1.
    out = netlab_cli("dissect", os.path.join(DATA, "dissect", "icmp_unreachable.pcap"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4
    assert "ICMP 127.0.0.1 udp port 34034 unreachable (code 3)" in lines[1]
    assert "ICMP6 ::1 udp port 53057 unreachable (code 4)" in lines[3]
    assert "'" not in lines[1] and "\\x" not in lines[1]  # no quoted bytes
    rows = [json.loads(line) for line in netlab_cli(
        "dissect", os.path.join(DATA, "dissect", "icmp_unreachable.pcap"), "--json").stdout.splitlines()]
    assert (rows[1]["icmp_type"], rows[1]["icmp_code"]) == (3, 3)
