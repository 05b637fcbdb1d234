"""Lab 2: binding and privileges — bind, explain failures, SO_REUSEADDR and TIME_WAIT.

The probes below run in the sandboxed child; the checks (in the parent) set
up the situations a real server meets: a port already taken, an address that
is not ours, a privileged port without privilege, a port full of TIME_WAIT.
"""
from __future__ import annotations

import errno
import os
import socket

from netlab import sysinfo
from netlab.labs._probes import call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._peers import bound_sockets, wait_for_udp_bound
from netlab.labs._runner import Sandbox, free_port, run_probe, value_of, wait_for_tcp

__all__ = ["listen", "time_wait", "in_use", "ok_and_foreign", "privileged", "same_port"]


HOST = "127.0.0.1"


def _make_time_wait(port: int) -> None:
    """One connection on ``port`` that the *server* closes first: TIME_WAIT on that port.

    The grader does this itself, in the private network the student's code
    shares, so the situation is real whatever the submission reports.
    """
    with socket.socket() as server:
        # Like the student's server before its restart (TIME_WAIT keeps the flag).
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((HOST, port))
        server.listen()
        server.settimeout(3)
        client = socket.create_connection((HOST, port), timeout=3)
        conn, _ = server.accept()
        conn.close()              # the active close: this end will sit in TIME_WAIT
        client.recv(1)            # wait for the FIN
        client.close()


def _rebind_without_reuse(port: int) -> str:
    """The control experiment: bind a port in TIME_WAIT without SO_REUSEADDR."""
    with socket.socket() as again:
        try:
            again.bind((HOST, port))
            return "bound"
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc.errno))


# --- checks (parent side) ----------------------------------------------------

def listen(labdir: str) -> str:
    port = free_port()
    # The student's sockets stay open while the grader looks at them from outside:
    # a TCP listener and a UDP socket on 127.0.0.1:port, seen in this network's tables.
    with Sandbox(labdir, "lab02:probe_hold_both", {"port": port}) as box:
        wait_for_tcp(box, port)
        wait_for_udp_bound(box, port)
        tcp = bound_sockets("tcp", port)
        udp = bound_sockets("udp", port)
    if tcp != [(HOST, "LISTEN")]:
        raise CheckFailed(f"on TCP port {port} the grader found {tcp or 'nothing'}: bind_tcp must bind "
                          f"{HOST}:{port} and listen()")
    if [addr for addr, _ in udp] != [HOST]:
        raise CheckFailed(f"on UDP port {port} the grader found {udp or 'nothing'}: bind_udp must bind "
                          f"{HOST}:{port}")
    return f"a TCP listener and a UDP socket on {HOST}:{port}, seen by the grader"


def time_wait(labdir: str) -> str:
    port, control = free_port(), free_port()
    _make_time_wait(control)
    if _rebind_without_reuse(control) != "EADDRINUSE":
        return "not testable here: this kernel rebinds a port in TIME_WAIT even without SO_REUSEADDR (points given)"
    _make_time_wait(port)
    # The student's server restarting on a port in TIME_WAIT: the grader sees it listen.
    with Sandbox(labdir, "lab02:probe_hold_tcp", {"port": port}) as box:
        wait_for_tcp(box, port)
    return "a port with a connection in TIME_WAIT was bound again (without SO_REUSEADDR: EADDRINUSE)"


def in_use(labdir: str) -> str:
    tcp = socket.socket()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tcp.bind((HOST, 0))
        tcp.listen()
        udp.bind((HOST, 0))
        t_port, u_port = tcp.getsockname()[1], udp.getsockname()[1]
        outcomes = call_all(labdir, "binding", [["try_bind", ["tcp", HOST, t_port]],
                                                ["try_bind", ["udp", HOST, u_port]]])
    finally:
        tcp.close()
        udp.close()
    for proto, port, out in (("tcp", t_port, outcomes[0]), ("udp", u_port, outcomes[1])):
        got = student_value(out, f"try_bind({proto!r}, {HOST!r}, {port})")
        if got != "in-use":
            raise CheckFailed(f"try_bind({proto!r}, ...) on a port the grader holds gave {got!r}, "
                              f"expected 'in-use'")
    return "a TCP and a UDP port held by the grader reported 'in-use'"


def ok_and_foreign(labdir: str) -> str:
    port = free_port()
    outcomes = call_all(labdir, "binding", [["try_bind", ["tcp", HOST, port]],
                                            ["try_bind", ["udp", HOST, port]],
                                            ["try_bind", ["tcp", "192.0.2.1", port]]])
    got = [student_value(o, f"try_bind call {i + 1}") for i, o in enumerate(outcomes)]
    if got[:2] != ["ok", "ok"]:
        raise CheckFailed(f"try_bind on free port {port} gave {got[0]!r} (tcp) and {got[1]!r} (udp), "
                          f"expected 'ok'")
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            raise CheckFailed(f"port {port} was still bound after try_bind returned: close the socket") from None
    if got[2] != "not-available":
        raise CheckFailed(f"try_bind('tcp', '192.0.2.1', ...) gave {got[2]!r}, expected 'not-available' "
                          f"(192.0.2.1 is a documentation address, not on this machine)")
    return "'ok' on a free port (and released it), 'not-available' for 192.0.2.1"


def privileged(labdir: str) -> str:
    start = sysinfo.unprivileged_port_start()
    if start <= 1:
        return (f"not testable here: ip_unprivileged_port_start is {start}, so every port is "
                f"open to everyone on this machine (points given)")
    port = min(start - 1, 1023)
    if os.geteuid() != 0 and sysinfo.can_bind_privileged():
        return "not testable here: this process may bind privileged ports (points given)"
    value = value_of(run_probe(labdir, "lab02:probe_unprivileged", {"port": port}), "try_bind")
    if value != {"tcp": "permission-denied", "udp": "permission-denied"}:
        raise CheckFailed(f"as an ordinary user, try_bind on port {port} gave {value['tcp']!r} (tcp) "
                          f"and {value['udp']!r} (udp), expected 'permission-denied'")
    return f"port {port} as an ordinary user: 'permission-denied' over TCP and UDP"


def same_port(labdir: str) -> str:
    rounds = value_of(run_probe(labdir, "lab02:probe_same_port", {"rounds": 5}),
                      "bind_same_port")
    for r in rounds:
        if (r["tcp_type"], r["udp_type"]) != (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            raise CheckFailed("bind_same_port must return (tcp_socket, udp_socket) in that order")
        if r["tcp_port"] != r["udp_port"] or r["tcp_port"] == 0:
            raise CheckFailed(f"TCP got port {r['tcp_port']} and UDP {r['udp_port']}: "
                              f"they should be the same non-zero number")
    return f"5 times a TCP and a UDP socket on one port number, e.g. {rounds[0]['tcp_port']}"
