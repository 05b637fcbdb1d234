"""Make a corpus of real captures of traffic made here, for tools/fidelity.py.

    sudo python3 tools/make_corpus.py OUTDIR

Needs root, tcpdump, dumpcap and iproute2. Every packet stays on this machine:
loopback, and a pair of network namespaces (``nlfid-a``, ``nlfid-b``, removed
afterwards even on failure) joined by a veth pair that also carries an 802.1Q
VLAN and an 802.1ad/802.1Q QinQ stack, with IPv6 BIG TCP allowed
(``gso_max_size`` 185000, so IPv6 packets over 64 KB carry a jumbo option).

The traffic: TCP transfers (IPv4, IPv6, over the VLANs), UDP datagrams large
enough to be fragmented, pings. The captures: tcpdump on loopback (pcap in
micro- and nanoseconds, ``-i any`` Linux cooked v2, a 64-byte snaplen that
cuts transport headers), tcpdump on the veth (VLAN tags, BIG TCP), dumpcap on
two interfaces at once (pcapng with two interface blocks), and a gzip copy.
Prints the files it wrote.
"""
from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

NS_A, NS_B = "nlfid-a", "nlfid-b"
VETH_A, VETH_B = "nlfida0", "nlfidb0"
# (interface suffix, IPv4 prefix, IPv6 prefix): the plain veth, then VLAN stacks when the
# kernel has 802.1Q (``vlans()``)
NETS = [("", "10.99.0.", "fd99::")]
VLAN_NETS = [(".100", "10.99.100.", "fd99:100::"), (".q.300", "10.99.200.", "fd99:200::")]
PORT = 9099
BIG_TCP = False  # set by setup(): the veth accepts IPv6 packets over 64 KB

SERVE = r"""
import socket, sys, threading
def tcp(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, %(port)d)); s.listen(8); s.settimeout(30)
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            return
        with c:
            c.settimeout(10)
            while c.recv(65536):
                pass
            c.sendall(b"done")
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    threading.Thread(target=tcp, args=(fam, addr), daemon=True).start()
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(("::", %(port)d)); u.settimeout(30)
print("ready", flush=True)
try:
    while True:
        u.recvfrom(65536)
except OSError:
    pass
""" % {"port": PORT}


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


def in_ns(ns, *cmd, check=True):
    return sh("ip", "netns", "exec", ns, *cmd, check=check)


def setup() -> list:
    """Both namespaces and their links; returns the networks to send over."""
    nets = list(NETS)
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", VETH_A, "netns", NS_A, "type", "veth", "peer", "name", VETH_B,
       "netns", NS_B)
    for ns, dev, host in ((NS_A, VETH_A, "1"), (NS_B, VETH_B, "2")):
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "ip", "link", "set", dev, "up")
        global BIG_TCP
        BIG_TCP = in_ns(ns, "ip", "link", "set", dev, "gso_max_size", "185000", "gro_max_size",
                        "185000", check=False).returncode == 0  # where the kernel allows it
        vlan = in_ns(ns, "ip", "link", "add", "link", dev, "name", dev + ".100", "type", "vlan",
                     "id", "100", check=False).returncode == 0  # no 802.1Q in some kernels
        if vlan:
            in_ns(ns, "ip", "link", "add", "link", dev, "name", dev + ".q", "type", "vlan",
                  "proto", "802.1ad", "id", "200")
            in_ns(ns, "ip", "link", "add", "link", dev + ".q", "name", dev + ".q.300",
                  "type", "vlan", "id", "300")
            in_ns(ns, "ip", "link", "set", dev + ".q", "up")
            if ns == NS_A:
                nets += VLAN_NETS
        for suffix, v4, v6 in nets:
            name = dev + suffix
            in_ns(ns, "ip", "link", "set", name, "up")
            in_ns(ns, "ip", "addr", "add", v4 + host + "/24", "dev", name)
            in_ns(ns, "ip", "addr", "add", v6 + host + "/64", "dev", name, "nodad")
    return nets


def teardown():
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "del", ns, check=False)


def start_capture(cmd, path):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (os.path.exists(path) and os.path.getsize(path) >= 24):
        time.sleep(0.05)
    time.sleep(1.0)  # the file header is out; give the capture a moment to really listen
    return proc


def stop(procs):
    time.sleep(0.5)
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


CLIENT = r"""
import socket, sys
nets = eval(sys.argv[1])
for suffix, v4, v6 in nets:
    for fam, addr in ((socket.AF_INET, v4 + "2"), (socket.AF_INET6, v6 + "2")):
        with socket.create_connection((addr, %(port)d), timeout=10) as c:
            c.sendall(bytes(range(256)) * 2000)
            c.shutdown(socket.SHUT_WR)
            c.recv(10)
        u = socket.socket(fam, socket.SOCK_DGRAM)
        for size in (20, 1400, 4000, 20000):  # the large ones are fragmented
            u.sendto(b"u" * size, (addr, %(port)d))
        u.close()
""" % {"port": PORT}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_traffic(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen()

    def serve():
        for _ in range(2):
            conn, _ = srv.accept()
            with conn:
                conn.sendall(conn.recv(65536)[::-1])
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"netlab corpus " * 50)
            c.recv(65536)
    t.join(5)
    srv.close()
    for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        u = socket.socket(fam, socket.SOCK_DGRAM)
        for size in (1, 500, 9000):
            u.sendto(b"d" * size, (addr, port))
        u.close()
    if shutil.which("ping"):
        sh("ping", "-c", "2", "-i", "0.2", "127.0.0.1", check=False)
        sh("ping", "-6", "-c", "2", "-i", "0.2", "::1", check=False)


def make(out):
    os.makedirs(out, exist_ok=True)
    written = []
    # 1. loopback, four ways at once
    port = free_port()
    only_ours = ["port", str(port), "or", "icmp", "or", "icmp6"]  # not other programs' traffic
    lo = {"lo.pcap": ["tcpdump", "-i", "lo", "-U", "-n"],
          "lo-nano.pcap": ["tcpdump", "-i", "lo", "-U", "-n", "--time-stamp-precision=nano"],
          "any-sll2.pcap": ["tcpdump", "-i", "any", "-U", "-n"],
          "lo-snap64.pcap": ["tcpdump", "-i", "lo", "-U", "-n", "-s", "64"]}
    procs = [start_capture(cmd + ["-w", os.path.join(out, name)] + only_ours,
                           os.path.join(out, name))
             for name, cmd in lo.items()]
    try:
        for _round in range(3):  # a capture that was slow to start gets another round
            loopback_traffic(port)
            time.sleep(1)
            if all(os.path.getsize(os.path.join(out, n)) > 2000 for n in lo):
                break
    finally:
        stop(procs)
    written += [os.path.join(out, n) for n in lo]
    # 2. two namespaces: VLAN, QinQ, fragments, BIG TCP
    teardown()
    try:
        nets = setup()
        time.sleep(2)  # IPv6 neighbours: let the links settle
        server = subprocess.Popen(["ip", "netns", "exec", NS_B, sys.executable, "-c", SERVE],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            server.stdout.readline()
            veth = os.path.join(out, "veth-vlan-bigtcp.pcap")
            two = os.path.join(out, "dumpcap-two-interfaces.pcapng")
            procs = [start_capture(["ip", "netns", "exec", NS_A, "tcpdump", "-i", VETH_A, "-U",
                                    "-n", "-w", veth], veth),
                     start_capture(["ip", "netns", "exec", NS_A, "dumpcap", "-q", "-i", VETH_A,
                                    "-i", "lo", "-w", two], two)]
            try:
                in_ns(NS_A, sys.executable, "-c", CLIENT, repr(nets))
                in_ns(NS_A, "ping", "-c", "2", "-i", "0.2", "10.99.0.2", check=False)
            finally:
                stop(procs)
            written += [veth, two]
        finally:
            server.terminate()
            server.wait(timeout=10)
            server.stdout.close()
    finally:
        teardown()
    # 3. the same bytes gzip-compressed
    gz = os.path.join(out, "lo.pcap.gz")
    with open(os.path.join(out, "lo.pcap"), "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    written.append(gz)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: make_corpus.py OUTDIR", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("make_corpus: needs root (namespaces, tcpdump)", file=sys.stderr)
        return 1
    for tool in ("tcpdump", "dumpcap", "ip"):
        if not shutil.which(tool):
            print(f"make_corpus: {tool} not found (apt-get install tcpdump tshark iproute2)",
                  file=sys.stderr)
            return 1
    for path in make(argv[0]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
