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
from netlab.labs._registry import CheckFailed, Lab, check, student_module
from netlab.labs._runner import free_port, run_probe, value_of

__all__ = ["LAB"]

CHECKS: list = []
LAB = Lab(2, "lab02-binding", "Binding and privileges", ["binding.rst"], ["binding.py"], CHECKS)

HOST = "127.0.0.1"


# --- probes (child side) ---------------------------------------------------

def probe_listen(labdir: str, port: int) -> dict:
    mod = student_module(labdir, "binding")
    tcp = mod.bind_tcp(HOST, port)
    udp = mod.bind_udp(HOST, port)
    out = {
        "tcp_type": int(tcp.type), "tcp_name": list(tcp.getsockname()),
        "udp_type": int(udp.type), "udp_name": list(udp.getsockname()),
        "reuse": tcp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR),
    }
    tcp.settimeout(3)
    with socket.create_connection((HOST, port), timeout=3):
        conn, _ = tcp.accept()
        conn.close()
    out["accepted"] = True
    udp.settimeout(3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.sendto(b"ping", (HOST, port))
        out["udp_got"] = udp.recvfrom(100)[0].decode()
    tcp.close()
    udp.close()
    return out


def _make_time_wait(server: socket.socket, port: int) -> None:
    """One connection on ``port`` that the *server* closes first: TIME_WAIT on the server side."""
    server.settimeout(3)
    client = socket.create_connection((HOST, port), timeout=3)
    conn, _ = server.accept()
    conn.close()              # the active close: this end will sit in TIME_WAIT
    client.recv(1)            # wait for the FIN
    client.close()
    server.close()


def probe_time_wait(labdir: str, port: int, control_port: int) -> dict:
    mod = student_module(labdir, "binding")
    # Control experiment first: without SO_REUSEADDR a port in TIME_WAIT
    # cannot be bound again, which is what the check relies on.
    plain = socket.socket()
    plain.bind((HOST, control_port))
    plain.listen()
    _make_time_wait(plain, control_port)
    again = socket.socket()
    try:
        again.bind((HOST, control_port))
        control = "bound"
    except OSError as exc:
        control = errno.errorcode.get(exc.errno, str(exc.errno))
    finally:
        again.close()
    _make_time_wait(mod.bind_tcp(HOST, port), port)
    second = mod.bind_tcp(HOST, port)  # the student's server restarting
    second.close()
    return {"control": control}


def probe_unprivileged(labdir: str, port: int) -> dict:
    mod = student_module(labdir, "binding")
    if os.geteuid() == 0:
        # Drop root for this child only, after the import, so that the
        # privileged port really is out of reach as it is for a student.
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    return {"tcp": mod.try_bind("tcp", HOST, port), "udp": mod.try_bind("udp", HOST, port)}


def probe_same_port(labdir: str, rounds: int) -> list:
    mod = student_module(labdir, "binding")
    out = []
    for _ in range(rounds):
        tcp, udp = mod.bind_same_port(HOST)
        out.append({"tcp_type": int(tcp.type), "udp_type": int(udp.type),
                    "tcp_port": tcp.getsockname()[1], "udp_port": udp.getsockname()[1]})
        tcp.close()
        udp.close()
    return out


# --- checks (parent side) ----------------------------------------------------

@check(CHECKS, "bind TCP and UDP", 3,
       "bind_tcp: socket(AF_INET, SOCK_STREAM), bind((host, port)), listen(); "
       "bind_udp: SOCK_DGRAM and bind, no listen")
def _listen(labdir: str) -> str:
    port = free_port()
    value = value_of(run_probe(labdir, "netlab.labs.lab02:probe_listen", {"port": port}), "binding.py")
    if value["tcp_type"] != socket.SOCK_STREAM or value["udp_type"] != socket.SOCK_DGRAM:
        raise CheckFailed("bind_tcp must return a SOCK_STREAM socket and bind_udp a SOCK_DGRAM one")
    if value["tcp_name"] != [HOST, port] or value["udp_name"] != [HOST, port]:
        raise CheckFailed(f"sockets bound to {value['tcp_name']} and {value['udp_name']}, "
                          f"expected {HOST}:{port}")
    return f"TCP accepted a connection and UDP received a datagram on port {port}"


@check(CHECKS, "restart despite TIME_WAIT", 3,
       "set SO_REUSEADDR before bind() in bind_tcp, or a restarted server fails with "
       "EADDRINUSE while old connections sit in TIME_WAIT")
def _time_wait(labdir: str) -> str:
    port, control = free_port(), free_port()
    value = value_of(run_probe(labdir, "netlab.labs.lab02:probe_time_wait",
                               {"port": port, "control_port": control}), "bind_tcp")
    if value["control"] != "EADDRINUSE":
        return f"rebound after TIME_WAIT (this kernel allowed it even without SO_REUSEADDR: {value['control']})"
    return "a port with a connection in TIME_WAIT was bound again (without SO_REUSEADDR: EADDRINUSE)"


@check(CHECKS, "port in use", 3,
       "catch OSError and look at exc.errno: errno.EADDRINUSE means someone else has the port")
def _in_use(labdir: str) -> str:
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


@check(CHECKS, "free port and foreign address", 3,
       "return 'ok' and close the socket when bind works; EADDRNOTAVAIL means the address "
       "is not one of this machine's ('not-available')")
def _ok_and_foreign(labdir: str) -> str:
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


@check(CHECKS, "privileged port", 3,
       "errno.EACCES (or EPERM) on bind means the port is below ip_unprivileged_port_start "
       "and you are not root: return 'permission-denied'")
def _privileged(labdir: str) -> str:
    start = sysinfo.unprivileged_port_start()
    if start <= 1:
        return (f"not testable here: ip_unprivileged_port_start is {start}, so every port is "
                f"open to everyone on this machine (points given)")
    port = min(start - 1, 1023)
    if os.geteuid() != 0 and sysinfo.can_bind_privileged():
        return "not testable here: this process may bind privileged ports (points given)"
    value = value_of(run_probe(labdir, "netlab.labs.lab02:probe_unprivileged", {"port": port}), "try_bind")
    if value != {"tcp": "permission-denied", "udp": "permission-denied"}:
        raise CheckFailed(f"as an ordinary user, try_bind on port {port} gave {value['tcp']!r} (tcp) "
                          f"and {value['udp']!r} (udp), expected 'permission-denied'")
    return f"port {port} as an ordinary user: 'permission-denied' over TCP and UDP"


@check(CHECKS, "TCP and UDP share a port number", 3,
       "bind TCP to port 0, read the port with getsockname(), bind UDP to that number; "
       "if UDP is taken, close both and try again (a bounded number of times)")
def _same_port(labdir: str) -> str:
    rounds = value_of(run_probe(labdir, "netlab.labs.lab02:probe_same_port", {"rounds": 5}),
                      "bind_same_port")
    for r in rounds:
        if (r["tcp_type"], r["udp_type"]) != (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            raise CheckFailed("bind_same_port must return (tcp_socket, udp_socket) in that order")
        if r["tcp_port"] != r["udp_port"] or r["tcp_port"] == 0:
            raise CheckFailed(f"TCP got port {r['tcp_port']} and UDP {r['udp_port']}: "
                              f"they should be the same non-zero number")
    return f"5 times a TCP and a UDP socket on one port number, e.g. {rounds[0]['tcp_port']}"
