"""``netlab sniff`` and :func:`netlab.sniff.sniff`: live capture on loopback (root)."""
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from netlab.sniff import annotate_handshake, capture_allowed, sniff
from tests.conftest import ROOT, free_port

needs_capture = pytest.mark.skipif(not capture_allowed(),
                                   reason="needs root or CAP_NET_RAW for a packet socket")


def talk(port, message=b"hello sniff"):
    """A real TCP server and client on loopback: connect, send, echo, close."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen()

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(conn.recv(100))
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(message)
        assert c.recv(100) == message
    t.join(5)
    srv.close()


@pytest.mark.root
@needs_capture
def test_api_sees_each_packet_once_and_names_the_handshake():
    port = free_port()
    started = threading.Event()
    result = []
    t = threading.Thread(target=lambda: result.extend(
        sniff(port=port, count=20, timeout=3, ready=started.set)), daemon=True)
    t.start()
    assert started.wait(5)
    talk(port)
    t.join(10)
    notes = [note for _rec, _frame, note in annotate_handshake(result)]
    flags = [rec.flags for rec, _frame in result]
    assert flags[:3] == [0x02, 0x12, 0x10]  # SYN, SYN-ACK, ACK: each exactly once
    assert "handshake 1/3" in notes[0] and "handshake 2/3" in notes[1] and "3/3" in notes[2]
    assert sum(1 for f in flags if f & 0x01) == 2  # one FIN each way
    assert any(n and "FIN" in n for n in notes)
    payloads = [frame[rec.payload_off:rec.payload_off + rec.payload_len] for rec, frame in result]
    assert payloads.count(b"hello sniff") == 2  # there and back, not four times


@pytest.mark.root
@needs_capture
@pytest.mark.skipif(not shutil.which("tcpdump"), reason="needs tcpdump (apt-get install tcpdump)")
def test_cli_writes_a_pcap_that_tcpdump_reads(tmp_path):
    port = free_port()
    out_file = tmp_path / "live.pcap"
    proc = subprocess.Popen([sys.executable, "-m", "netlab", "sniff", "--port", str(port),
                             "--count", "8", "--timeout", "8", "-w", str(out_file)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "capturing on lo" in proc.stderr.readline()
        talk(port)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    lines = stdout.splitlines()
    # 8 is the fewest a connect/send/echo/close can take (ACKs may ride on data)
    assert len(lines) == 8
    assert "handshake 1/3" in lines[0] and "handshake 2/3" in lines[1] and "3/3" in lines[2]
    assert any("FIN" in line for line in lines)
    assert "8 packets captured" in stderr
    read = subprocess.run(["tcpdump", "-nn", "-r", str(out_file)], capture_output=True, text=True,
                          timeout=30)
    assert read.returncode == 0, read.stderr
    assert len(read.stdout.splitlines()) == 8 and "Flags [S]" in read.stdout
    dissected = subprocess.run([sys.executable, "-m", "netlab", "dissect", str(out_file)], cwd=ROOT,
                               capture_output=True, text=True, timeout=30)
    assert dissected.stdout.splitlines()[0].split()[2:] == lines[0].split()[2:]


@pytest.mark.root
@needs_capture
def test_timeout_bounds_a_quiet_capture(netlab_cli):
    port = free_port()
    t0 = time.monotonic()
    out = netlab_cli("sniff", "--port", port, "--timeout", "0.5", "--json")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and time.monotonic() - t0 < 10


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv (util-linux) to drop CAP_NET_RAW")
def test_without_cap_net_raw_one_clear_line():
    out = subprocess.run(["setpriv", "--bounding-set=-net_raw", sys.executable, "-m", "netlab",
                          "sniff", "--count", "1", "--timeout", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [out.stderr.strip()]
    assert "CAP_NET_RAW" in out.stderr and "root" in out.stderr


@pytest.mark.parametrize("args", [["--count", "0"], ["--port", "70000"], ["--timeout", "-1"],
                                  ["--timeout", "soon"]])
def test_bad_arguments_are_usage_errors(netlab_cli, args):
    out = netlab_cli("sniff", *args)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1


def test_unwritable_output_file_is_one_clear_line(netlab_cli, tmp_path):
    # Checked before the packet socket opens, so no root is needed.
    out = netlab_cli("sniff", "--timeout", "0.5", "-w", str(tmp_path / "missing" / "x.pcap"))
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines() == [out.stderr.strip()]
    assert "cannot write" in out.stderr and "folder" in out.stderr


@pytest.mark.root
@needs_capture
@pytest.mark.parametrize("host, family", [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)])
def test_kernel_filter_keeps_only_the_port(host, family):
    """The BPF program attached for --port drops other ports inside the kernel."""
    from netlab import packet
    from netlab.sniff import _attach_port_filter, _open

    port, other = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    sock = _open("lo")
    try:
        _attach_port_filter(sock, port)
        sock.setblocking(False)
        for _ in range(100_000):  # drop what was queued before the filter was attached
            try:
                sock.recv(65536)
            except BlockingIOError:
                break
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            for dport in (other, port, other):
                u.sendto(b"x", (host, dport))
        seen = []
        deadline = time.monotonic() + 2
        sock.settimeout(0.3)
        while time.monotonic() < deadline:
            try:
                frame = sock.recv(65536)
            except socket.timeout:
                break
            seen.append(packet.decode_frame(frame)[11])
        assert seen and set(seen) == {port}
    finally:
        sock.close()
