"""Regenerate the real loopback captures in tests/data (needs root and tcpdump).

    sudo python tests/data/make_captures.py tests/data

* handshake.pcap     - tcpdump -i lo: a TCP client connects to a local server,
                       sends three lines that are echoed, closes; then one UDP
                       datagram. (Also netlab/data/samples/handshake.pcap.)
* mixed_sll2.pcap    - tcpdump -i any (Linux cooked v2): TCP over ::1 with a
                       request and an answer, UDP over IPv4 and IPv6, and a
                       refused connection (SYN answered by RST).
* mixed_sll.pcap     - the same traffic, tcpdump -i any -y LINUX_SLL (cooked v1).
* mixed_lo_ns.pcap   - the same traffic, tcpdump -i lo --time-stamp-precision=nano.
* *.pcapng           - the pcap files rewritten by netlab.packet.pcap.convert_to_pcapng
                       (Debian's tcpdump cannot write pcapng); dpkt and tcpdump
                       read them back in the tests.
"""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from netlab.packet.pcap import convert_to_pcapng  # noqa: E402


def capture(path, iface, extra, expr, traffic):
    proc = subprocess.Popen(["tcpdump", "-i", iface, "-U", *extra, "-w", path, expr],
                            stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        traffic()
        time.sleep(2.0)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def handshake(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen()

    def serve():
        conn, _ = srv.accept()
        while True:
            data = conn.recv(1000)
            if not data:
                break
            conn.sendall(data)
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(("127.0.0.1", port)) as c:
        for line in (b"hello netlab\r\n", b"the quick brown fox\r\n", b"bye\r\n"):
            c.sendall(line)
            c.recv(100)
    t.join()
    srv.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"udp datagram", ("127.0.0.1", port))


def mixed(port):
    srv = socket.socket(socket.AF_INET6)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("::1", port))
    srv.listen()

    def serve():
        conn, _ = srv.accept()
        conn.sendall(conn.recv(1000).upper())
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(("::1", port)) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        c.recv(100)
    t.join()
    srv.close()
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            u.sendto(b"\x00\x01binary\xff", (host, port))
    try:
        socket.create_connection(("127.0.0.1", port + 1), timeout=1).close()
    except OSError:
        pass  # refused, as intended: the capture shows SYN then RST


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    join = lambda name: os.path.join(out_dir, name)  # noqa: E731
    capture(join("handshake.pcap"), "lo", [], "port 7107", lambda: handshake(7107))
    for name, iface, extra, port in (("mixed_sll2.pcap", "any", [], 7207),
                                     ("mixed_sll.pcap", "any", ["-y", "LINUX_SLL"], 7307),
                                     ("mixed_lo_ns.pcap", "lo", ["--time-stamp-precision=nano"], 7407)):
        capture(join(name), iface, extra, f"port {port} or port {port + 1}",
                lambda port=port: mixed(port))
    convert_to_pcapng(join("handshake.pcap"), join("handshake.pcapng"))
    convert_to_pcapng(join("mixed_lo_ns.pcap"), join("mixed_lo_ns.pcapng"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
