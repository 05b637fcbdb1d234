"""Lab 4 probe (child side, standard library only): recv_exactly against the grader's peer."""
import socket

from .runtime import student_module

HOST = "127.0.0.1"


def probe_recv_exactly(labdir, port, n):
    """Connect twice to the grader's peer: recv_exactly(n) of its dribble, then of a short stream."""
    mod = student_module(labdir, "tcp_echo")
    out = {}
    with socket.create_connection((HOST, port), timeout=5) as a:
        out["data"] = mod.recv_exactly(a, n).hex()
    with socket.create_connection((HOST, port), timeout=5) as b:
        try:
            got = mod.recv_exactly(b, 10)
            out["early_eof"] = "returned %d bytes" % len(got)
        except (ConnectionError, EOFError) as exc:
            out["early_eof"] = type(exc).__name__
    return out
