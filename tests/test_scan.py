"""netlab scan: TCP connect scan and UDP probe, on loopback only."""
import json
import socket
import threading

import pytest

from netlab import scan


def _udp_peer_that_answers():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            sock.sendto(b"reply:" + data, addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, stop, thread


def _closed_udp_port():
    """A UDP port kept closed: a socket *connected* elsewhere matches no
    datagram from the scanner, so the kernel answers ICMP port unreachable."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.connect(("127.0.0.1", 9))
    return sock


def test_tcp_open_and_closed(netlab_cli):
    with socket.socket() as listener, socket.socket() as reserved:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        reserved.bind(("127.0.0.1", 0))  # bound, not listening: the kernel answers RST
        open_port, closed_port = listener.getsockname()[1], reserved.getsockname()[1]
        out = netlab_cli("scan", "127.0.0.1", f"{open_port},{closed_port}", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert all(set(r) == {"port", "proto", "state", "service"} for r in data)
    states = {r["port"]: r["state"] for r in data}
    assert states == {open_port: "open", closed_port: "closed"}
    assert {r["proto"] for r in data} == {"tcp"}


def test_tcp_range_with_concurrency_and_rate(netlab_cli):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        lo, hi = max(1, port - 20), min(65535, port + 20)
        out = netlab_cli("scan", "127.0.0.1", f"{lo}-{hi}", "--concurrency", "4",
                         "--rate", "2000", "--json")
    data = json.loads(out.stdout)
    assert [r["port"] for r in data] == list(range(lo, hi + 1))
    assert next(r for r in data if r["port"] == port)["state"] == "open"


def test_udp_open_closed_and_silent(netlab_cli):
    peer, stop, thread = _udp_peer_that_answers()
    closed = _closed_udp_port()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        ports = [s.getsockname()[1] for s in (peer, closed, silent)]
        out = netlab_cli("scan", "127.0.0.1", ",".join(map(str, ports)), "--udp",
                         "--timeout", "0.5", "--retries", "0", "--json")
    finally:
        stop.set()
        thread.join(2)
        for s in (peer, closed, silent):
            s.close()
    assert out.returncode == 0, out.stderr
    states = {r["port"]: r["state"] for r in json.loads(out.stdout)}
    assert states == {ports[0]: "open", ports[1]: "closed", ports[2]: "open|filtered"}


def test_text_output_names_services_and_warns(netlab_cli):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        out = netlab_cli("scan", "127.0.0.1", str(port))
    assert out.returncode == 0, out.stderr
    assert f"{port}/tcp" in out.stdout and "open" in out.stdout
    assert "own" in out.stderr  # the ethics note


def test_refuses_hosts_that_are_not_this_machine(netlab_cli):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never this machine, and nothing is sent.
    out = netlab_cli("scan", "192.0.2.1", "80")
    assert out.returncode == 2
    assert "--authorized" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("ports", ["0-5", "5-a", "10-5", "70000", ""])
def test_bad_port_lists(netlab_cli, ports):
    out = netlab_cli("scan", "127.0.0.1", ports)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_parse_ports():
    assert scan.parse_ports("7,13,19") == [7, 13, 19]
    assert scan.parse_ports("10-12,7,11") == [7, 10, 11, 12]


def test_rate_limiter_spaces_starts():
    lim = scan._Limiter(50.0)
    assert lim.wait_time(100.0) == 0.0
    lim.take(100.0)
    assert lim.wait_time(100.0) == pytest.approx(0.02)
    lim.take(100.02)
    assert lim.wait_time(100.02) == pytest.approx(0.02)
    assert scan._Limiter(None).wait_time(0.0) == 0.0


def test_library_scan_reports_services():
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        result = scan.scan("127.0.0.1", [port], "tcp")
    assert result[0]["state"] == "closed" and result[0]["proto"] == "tcp"
    assert "service" in result[0]


@pytest.mark.parametrize("bad", [["--retries", "-1"], ["--rate", "nan"], ["--rate", "0"],
                                 ["--concurrency", "0"], ["--timeout", "-1"]])
def test_bad_numbers_are_one_line_usage_errors_before_the_note(netlab_cli, bad):
    # Regression: these used to print the ethics note first (two stderr lines),
    # and --retries -1 / --rate nan were accepted.
    out = netlab_cli("scan", "127.0.0.1", "1-2", *bad)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and bad[0] in lines[0], lines
    assert out.stdout == ""


def test_a_lone_port_list_scans_this_machine(netlab_cli):
    # Regression: 'netlab scan 7007' read 7007 as the host 0.0.27.95 and refused it.
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        out = netlab_cli("scan", str(port), "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert (row["port"], row["proto"], row["state"]) == (port, "tcp", "open")
