"""netlab netstat: sockets like netstat -a -n, through psutil."""
import json
import os
import socket

from netlab import ports


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
