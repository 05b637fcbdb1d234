"""Real many-flow loopback captures for the parse and dissect benches.

:func:`record_flows` starts tcpdump on ``lo``, drives ``flows`` TCP
connections (connect, ``messages`` echoed messages, close) and ``udp``
datagrams against a small echo server on 127.0.0.1, and stops tcpdump: a
real capture written by a real tool, with thousands of flows when asked.
It needs root (or CAP_NET_RAW) and tcpdump. The shipped sample
``netlab/data/samples/flows.pcap`` was made with it::

    python -c "from netlab.bench.flows import record_flows; \\
        record_flows('netlab/data/samples/flows.pcap', flows=2000, udp=1000, snaplen=68)"

(22,000 packets, about 3,000 flows, 1.8 MB: headers only, small enough to ship.)

Traffic goes to 127.0.0.1 only, to ports the OS picked; tcpdump's filter
keeps only that traffic.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from netlab.errors import NetlabError

__all__ = ["record_flows"]


def _echo_server(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        with conn:
            conn.settimeout(5)
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
            except OSError:
                pass


def _udp_echo(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(65536)
        except socket.timeout:
            continue
        sock.sendto(data, peer)


def _tcp_flow(port: int, messages: int, size: int) -> None:
    payload = (b"netlab flow %d " % port).ljust(size, b"x")[:size]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        for _ in range(messages):
            c.sendall(payload)
            got = 0
            while got < size:
                chunk = c.recv(65536)
                if not chunk:
                    return
                got += len(chunk)


def record_flows(path: str, flows: int = 3000, messages: int = 1, size: int = 64,
                 udp: int = 500, snaplen: int = 0, timeout: float = 900.0) -> dict:
    """Capture ``flows`` TCP echo connections and ``udp`` UDP exchanges on loopback into ``path``.

    Returns ``{"path", "flows", "udp", "seconds"}``. ``snaplen`` 0 keeps whole
    packets; a small one (e.g. 80) keeps headers only, for a file small
    enough to ship. Raises :class:`NetlabError` without tcpdump or privilege.
    """
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        raise NetlabError("tcpdump is not installed (apt-get install tcpdump)")
    if os.geteuid() != 0:
        raise NetlabError("capturing on loopback needs root (run as root or with sudo)")
    stop = threading.Event()
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(128)
    usock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    usock.bind(("127.0.0.1", 0))
    tport, uport = tcp.getsockname()[1], usock.getsockname()[1]
    threads = [threading.Thread(target=_echo_server, args=(tcp, stop), daemon=True),
               threading.Thread(target=_udp_echo, args=(usock, stop), daemon=True)]
    for t in threads:
        t.start()
    cmd = [tcpdump, "-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536", "-s", str(snaplen), "-w", path,
           f"host 127.0.0.1 and (tcp port {tport} or udp port {uport})"]
    dump = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        line = dump.stderr.readline()  # "listening on lo, ..." once it captures
        if "listening" not in line:
            raise NetlabError(f"tcpdump did not start: {line.strip() or 'no message'}")
        for i in range(flows):
            if time.monotonic() - t0 > timeout:
                raise NetlabError(f"recording took more than {timeout:.0f} s; ask for fewer flows")
            _tcp_flow(tport, messages, size)
        for i in range(udp):  # a fresh socket each: one UDP flow per datagram and reply
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.settimeout(2)
                c.sendto(b"netlab datagram %d" % i, ("127.0.0.1", uport))
                try:
                    c.recvfrom(65536)
                except socket.timeout:
                    pass
        time.sleep(0.5)  # let tcpdump write the last packets
    finally:
        dump.send_signal(signal.SIGINT)
        try:
            dump.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dump.kill()
            dump.wait()
        dump.stderr.close()
        stop.set()
        for t in threads:
            t.join(timeout=2)
        tcp.close()
        usock.close()
    return {"path": path, "flows": flows, "udp": udp, "seconds": time.monotonic() - t0}
