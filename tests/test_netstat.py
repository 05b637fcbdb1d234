"""netlab netstat: sockets like netstat -a -n, through psutil."""
import json
import os
import socket
import subprocess
import sys

from netlab import ports
from tests.conftest import ROOT


def _rows(netlab_cli, *args):
    out = netlab_cli("netstat", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_listening_tcp_socket_with_owner(netlab_cli):
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        rows = _rows(netlab_cli, "--listening")
    mine = [r for r in rows if r["local"] == f"127.0.0.1:{port}"]
    assert len(mine) == 1, rows
    row = mine[0]
    assert set(row) >= {"proto", "local", "remote", "state", "pid", "program", "service"}
    assert row["proto"] == "tcp" and row["state"] == "LISTEN" and row["remote"] is None
    assert row["pid"] == os.getpid() and row["program"]


def test_udp_and_connections(netlab_cli):
    with socket.socket() as srv, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        udp.bind(("127.0.0.1", 0))
        port, uport = srv.getsockname()[1], udp.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            conn, _ = srv.accept()
            with conn:
                cport = client.getsockname()[1]
                everything = _rows(netlab_cli)
                listening = _rows(netlab_cli, "--listening")
                tcp_only = _rows(netlab_cli, "--tcp")
    established = [r for r in everything if r["state"] == "ESTABLISHED"
                   and {r["local"], r["remote"]} == {f"127.0.0.1:{port}", f"127.0.0.1:{cport}"}]
    assert len(established) == 2
    assert not [r for r in listening if r["local"] == f"127.0.0.1:{cport}"]
    u = [r for r in everything if r["proto"] == "udp" and r["local"] == f"127.0.0.1:{uport}"]
    assert len(u) == 1 and u[0]["state"] == "UNCONN" and u[0]["pid"] == os.getpid()
    assert all(r["proto"] == "tcp" for r in tcp_only)


def test_service_names_come_from_the_registry(netlab_cli):
    # Find a registered port with an IANA name that is free right now.
    for port in range(5000, 6000):
        name = ports.service_name(port, "tcp")
        if not name:
            continue
        srv = socket.socket()
        try:
            srv.bind(("127.0.0.1", port))
        except OSError:
            srv.close()
            continue
        break
    else:
        raise AssertionError("no free named port in 5000-5999")
    with srv:
        srv.listen()
        rows = _rows(netlab_cli, "--listening", "--tcp")
    row = next(r for r in rows if r["local"] == f"127.0.0.1:{port}")
    assert row["service"] == name


def test_table_and_usage_error(netlab_cli):
    out = netlab_cli("netstat", "--listening")
    assert out.returncode == 0 and "local address" in out.stdout and "state" in out.stdout
    bad = netlab_cli("netstat", "--tcp", "--udp")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_without_psutil_one_line_says_how_to_get_it(tmp_path):
    # Regression: a Python without psutil (e.g. the system one an ordinary user
    # falls back to) got "internal error: ModuleNotFoundError". Shadow psutil
    # with a package whose import fails, as a missing one does.
    (tmp_path / "psutil").mkdir()
    (tmp_path / "psutil" / "__init__.py").write_text("raise ImportError('no psutil here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    out = subprocess.run([sys.executable, "-m", "netlab", "netstat", "--listening"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "psutil" in lines[0] and "pip install psutil" in lines[0], lines
