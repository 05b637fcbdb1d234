"""netlab ports: ranges, IANA names over TCP/UDP, notes, the shipped registry."""
import json
import os
import subprocess
import sys

import pytest

import netlab
from netlab import ports

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "make_port_registry.py")


def _json(out):
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("port,expected", [
    (0, "well-known"), (1023, "well-known"), (1024, "registered"),
    (49151, "registered"), (49152, "dynamic"), (65535, "dynamic"),
])
def test_range_boundaries(port, expected):
    assert ports.port_range(port) == expected


def test_port_80_and_8080_through_the_cli(netlab_cli):
    data = _json(netlab_cli("ports", "80", "8080", "--json"))
    assert [d["port"] for d in data] == [80, 8080]
    assert data[0]["range"] == "well-known" and data[0]["tcp"] == "http" and data[0]["udp"] == "http"
    assert data[1]["range"] == "registered" and data[1]["tcp"] == "http-alt"
    assert any(n["topic"] == "alternative" for n in data[1]["notes"])


def test_names_resolve_to_their_ports(netlab_cli):
    data = _json(netlab_cli("ports", "http", "domain", "echo", "--json"))
    assert [(d["port"], d["tcp"], d["udp"]) for d in data] == [
        (80, "http", "http"), (53, "domain", "domain"), (7, "echo", "echo")]


def test_names_are_case_insensitive():
    assert ports.lookup_name("HTTP") == [80]


def test_unassigned_and_one_protocol_ports_show_null(netlab_cli):
    data = _json(netlab_cli("ports", "65535", "113", "--json"))
    assert data[0]["tcp"] is None and data[0]["udp"] is None and data[0]["range"] == "dynamic"
    # IANA gives 113 different names on TCP and UDP: the table keeps them apart.
    assert data[1]["tcp"] == "ident" and data[1]["udp"] == "auth"


def test_teaching_notes():
    amp = {p: [n for n in ports.describe_port(p)["notes"] if n["topic"] == "amplification"]
           for p in (7, 17, 19)}
    for port, notes in amp.items():
        assert notes and "udp" in notes[0]["protocols"], port
    assert "CA-1996-01" in amp[19][0]["note"]
    assert any(n["topic"] == "both" for n in ports.describe_port(53)["notes"])
    for port in (22, 23, 445, 3389):
        assert any(n["topic"] == "attacked" for n in ports.describe_port(port)["notes"]), port


def test_text_table_shows_names_and_notes(netlab_cli):
    out = netlab_cli("ports", "19")
    assert out.returncode == 0, out.stderr
    assert "chargen" in out.stdout and "well-known" in out.stdout
    assert "amplification" in out.stdout


@pytest.mark.parametrize("arg", ["70000", "-1", "65536", "ab%c"])
def test_bad_port_is_a_usage_error(netlab_cli, arg):
    out = netlab_cli("ports", arg)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_unknown_name_is_one_line_exit_1(netlab_cli):
    out = netlab_cli("ports", "no-such-service-xyz")
    assert out.returncode == 1
    assert out.stderr.startswith("netlab: error:") and len(out.stderr.strip().splitlines()) == 1


def test_no_argument_is_a_usage_error(netlab_cli):
    assert netlab_cli("ports").returncode == 2


def test_range_counts(netlab_cli):
    data = _json(netlab_cli("ports", "--range", "--json"))
    assert [(r["range"], r["first"], r["last"]) for r in data] == [
        ("well-known", 0, 1023), ("registered", 1024, 49151), ("dynamic", 49152, 65535)]
    assert sum(r["ports"] for r in data) == 65536
    # Recount from the registry itself, independently of range_summary's loop.
    named = [p for p in range(0, 1024) if ports.service_name(p, "tcp") or ports.service_name(p, "udp")]
    assert data[0]["assigned"] == len(named) > 500
    assert data[2]["assigned"] == 0  # IANA never assigns dynamic ports
    out = netlab_cli("ports", "--range")
    assert out.returncode == 0 and "registered" in out.stdout and "IANA" in out.stdout


def test_registry_is_a_package_data_file_from_iana():
    pkg = os.path.dirname(netlab.__file__)
    assert os.path.commonpath([ports.REGISTRY_FILE, pkg]) == pkg
    with open(ports.REGISTRY_FILE, encoding="utf-8") as f:
        head = f.read(2000)
    assert "IANA" in head and "Snapshot:" in head
    assert "IANA" in ports.registry_source() or "services" in ports.registry_source()


def test_registry_is_read_lazily():
    # Building the whole command line (every command module) must not read it.
    code = ("import netlab.cli as c, netlab.ports as p; c.build_parser(); "
            "a = p._registry.cache_info().currsize; "
            "p.service_name(7); print(a, p._registry.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["0", "1"], out.stderr


def test_generator_reads_an_iana_csv(tmp_path):
    src = tmp_path / "iana.csv"
    src.write_text(
        "Service Name,Port Number,Transport Protocol,Description,Assignee\n"
        "echo,7,tcp,Echo,x\n"
        "echo,7,udp,Echo,x\n"
        "www,80,tcp,World Wide Web,x\n"
        "http,80,tcp,World Wide Web HTTP,x\n"
        ",81,tcp,Unassigned,\n"
        "x11,6000-6002,tcp,X Window System,x\n"
        "foo,5,sctp,SCTP only,x\n")
    out_file = tmp_path / "reg.csv"
    res = subprocess.run([sys.executable, TOOL, "--source", str(src), "--output", str(out_file),
                          "--label", "test snapshot"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = out_file.read_text()
    assert "# Snapshot: test snapshot" in text
    rows = [line for line in text.splitlines() if not line.startswith("#")]
    assert rows == ["port,tcp,udp,description", "7,echo,echo,Echo",
                    "80,www,,World Wide Web", "6000-6002,x11,,X Window System"]


@pytest.mark.skipif(not os.path.exists("/usr/share/wireshark/services"),
                    reason="needs Debian's libwireshark-data (apt-get install libwireshark-data)")
def test_generator_reproduces_the_shipped_registry(tmp_path):
    label = ports.registry_source()
    out_file = tmp_path / "reg.csv"
    res = subprocess.run([sys.executable, TOOL, "--output", str(out_file), "--label", label],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libwireshark-data"],
                             capture_output=True, text=True).stdout.strip()
    if version and version not in label:
        pytest.skip(f"installed libwireshark-data {version} differs from the shipped snapshot")
    with open(ports.REGISTRY_FILE, encoding="utf-8") as f:
        assert out_file.read_text() == f.read()
