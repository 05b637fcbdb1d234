"""netlab independence: TCP and UDP own separate port spaces."""
import errno
import json
import socket

from tests.conftest import free_port_both


def test_default_port_json(netlab_cli):
    out = netlab_cli("independence", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["tcp_bound"] is True and data["udp_bound"] is True
    assert data["second_tcp_errno"] == errno.EADDRINUSE
    assert data["second_udp_errno"] == errno.EADDRINUSE
    assert 1024 <= data["port"] <= 65535
    assert [s["ok"] for s in data["steps"]] == [True, True, False, False]


def test_given_port_and_table(netlab_cli):
    port = free_port_both()
    out = netlab_cli("independence", port)
    assert out.returncode == 0, out.stderr
    assert f"127.0.0.1:{port}" in out.stdout and "EADDRINUSE" in out.stdout
    # The demonstration closed its sockets: the port is free again for both.
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", port))


def test_port_taken_by_someone_else(netlab_cli):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = netlab_cli("independence", port, "--json")
    assert out.returncode == 1
    assert out.stdout == ""
    assert "in use" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_bad_port(netlab_cli):
    out = netlab_cli("independence", "70000")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
