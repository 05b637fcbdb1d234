"""Lab 2 probes (child side, standard library only): binding as the student's code does it."""
import os
import socket
import time

from .runtime import student_module

HOST = "127.0.0.1"


def probe_listen(labdir, port):
    """bind_tcp and bind_udp on ``port``; what the sockets are, after one connection and one datagram."""
    mod = student_module(labdir, "binding")
    tcp = mod.bind_tcp(HOST, port)
    udp = mod.bind_udp(HOST, port)
    out = {
        "tcp_type": int(tcp.type), "tcp_name": list(tcp.getsockname()),
        "udp_type": int(udp.type), "udp_name": list(udp.getsockname()),
    }
    tcp.settimeout(3)
    with socket.create_connection((HOST, port), timeout=3):
        conn, _ = tcp.accept()
        conn.close()
    udp.settimeout(3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.sendto(b"ping", (HOST, port))
        out["udp_got"] = udp.recvfrom(100)[0].decode()
    tcp.close()
    udp.close()
    return out


def probe_hold_tcp(labdir, port):
    """bind_tcp(HOST, port) and keep the socket until the grader stops us (it connects to check)."""
    mod = student_module(labdir, "binding")
    sock = mod.bind_tcp(HOST, port)
    time.sleep(60)
    sock.close()


def probe_unprivileged(labdir, port):
    """try_bind on a privileged port as an ordinary user."""
    mod = student_module(labdir, "binding")
    if os.geteuid() == 0:
        # Practice mode as root: drop root for this child only, after the import, so
        # that the privileged port really is out of reach as it is for a student.
        # (The sandbox runs as an unprivileged user already.)
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    return {"tcp": mod.try_bind("tcp", HOST, port), "udp": mod.try_bind("udp", HOST, port)}


def probe_same_port(labdir, rounds):
    """bind_same_port a few times: types and port numbers of each pair."""
    mod = student_module(labdir, "binding")
    out = []
    for _ in range(rounds):
        tcp, udp = mod.bind_same_port(HOST)
        out.append({"tcp_type": int(tcp.type), "udp_type": int(udp.type),
                    "tcp_port": tcp.getsockname()[1], "udp_port": udp.getsockname()[1]})
        tcp.close()
        udp.close()
    return out
