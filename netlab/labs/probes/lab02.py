"""Lab 2 probes (child side, standard library only): binding as the student's code does it."""
import os
import socket
import time

from .runtime import student_module

HOST = "127.0.0.1"


def probe_hold_both(labdir, port):
    """bind_tcp and bind_udp on ``port`` and keep both until the grader, who looks at them, stops us."""
    mod = student_module(labdir, "binding")
    tcp = mod.bind_tcp(HOST, port)
    udp = mod.bind_udp(HOST, port)
    time.sleep(60)
    tcp.close()
    udp.close()


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
