"""Lab 9 probes (child side, standard library only): buffers, a receiver, a bulk sender."""
import socket

from .runtime import student_module

HOST = "127.0.0.1"


def probe_rcvbuf(labdir):
    """set_rcvbuf on two sockets: what it returned and what the socket really has."""
    mod = student_module(labdir, "throughput")
    out = []
    for size in (65536, 1 << 30):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            got = mod.set_rcvbuf(s, size)
            out.append({"asked": size, "returned": got,
                        "actual": s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)})
    return out


def probe_count(labdir, port, idle):
    """udp_count on a socket bound to ``port``; the grader sends the datagrams and keeps the time."""
    mod = student_module(labdir, "throughput")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rx.bind((HOST, port))
        result = mod.udp_count(rx, idle)
    return list(result) if isinstance(result, (tuple, list)) else repr(result)


def probe_bulk(labdir, port, nbytes):
    """tcp_bulk to the grader's sink; the grader counts the bytes and times the transfer."""
    mod = student_module(labdir, "throughput")
    return mod.tcp_bulk(HOST, port, nbytes)
