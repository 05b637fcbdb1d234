"""Lab 9: throughput — UDP loss versus rate and receive buffer, TCP bulk rate.

Every experiment is bounded: a fixed number of datagrams, a fixed number of
bytes, a timeout on every wait. The grader's own sinks count what arrived.
"""
from __future__ import annotations

import socket
import struct
import threading
import time

from netlab.labs._peers import HOST, TcpPeer, UdpPeer
from netlab.labs._probes import call_all, student_value
from netlab.labs._registry import CheckFailed, Lab, check, student_module
from netlab.labs._runner import run_probe, value_of

__all__ = ["LAB"]

CHECKS: list = []
LAB = Lab(9, "lab09-throughput", "Throughput and loss", ["throughput.rst"], ["throughput.py"], CHECKS)


# --- probes (child side) ---------------------------------------------------

def probe_rcvbuf(labdir: str) -> list:
    mod = student_module(labdir, "throughput")
    out = []
    for size in (65536, 1 << 30):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            got = mod.set_rcvbuf(s, size)
            out.append({"asked": size, "returned": got,
                        "actual": s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)})
    return out


def probe_count(labdir: str, count: int, size: int) -> dict:
    mod = student_module(labdir, "throughput")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rx.bind((HOST, 0))
        port = rx.getsockname()[1]

        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                time.sleep(0.05)
                for i in range(count):
                    tx.sendto(struct.pack(">I", i) + bytes(size - 4), (HOST, port))
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        start = time.monotonic()
        result = mod.udp_count(rx, 0.3)
        elapsed = time.monotonic() - start
        sender.join(2)
    return {"result": list(result) if isinstance(result, (tuple, list)) else repr(result),
            "elapsed": elapsed}


def probe_bulk(labdir: str, port: int, nbytes: int) -> dict:
    mod = student_module(labdir, "throughput")
    start = time.monotonic()
    rate = mod.tcp_bulk(HOST, port, nbytes)
    elapsed = time.monotonic() - start
    return {"rate": rate, "elapsed": elapsed}


# --- checks (parent side) ----------------------------------------------------

@check(CHECKS, "loss in percent", 2,
       "100 * (sent - received) / sent; no datagrams sent means no loss (0.0); more received than "
       "sent is impossible here: ValueError")
def _loss(labdir: str) -> str:
    cases = [((100, 100), 0.0), ((100, 75), 25.0), ((3, 1), 200 / 3), ((0, 0), 0.0)]
    outcomes = call_all(labdir, "throughput", [["loss_percent", list(a)] for a, _ in cases]
                        + [["loss_percent", [10, 11]]])
    for (args, want), out in zip(cases, outcomes):
        got = student_value(out, f"loss_percent{args}")
        if not isinstance(got, (int, float)) or abs(got - want) > 1e-6:
            raise CheckFailed(f"loss_percent{args} gave {got!r}, expected {want:.4g}")
    if outcomes[-1].get("error") != "ValueError":
        raise CheckFailed("loss_percent(10, 11) should raise ValueError")
    return "four cases and one impossible one"


@check(CHECKS, "receive buffer size", 2,
       "setsockopt(SOL_SOCKET, SO_RCVBUF, size), then return getsockopt(...): Linux doubles the value "
       "for its bookkeeping and caps it at net.core.rmem_max")
def _rcvbuf(labdir: str) -> str:
    rows = value_of(run_probe(labdir, "netlab.labs.lab09:probe_rcvbuf"), "set_rcvbuf")
    for row in rows:
        if row["returned"] != row["actual"]:
            raise CheckFailed(f"set_rcvbuf(sock, {row['asked']}) returned {row['returned']!r}, but the socket "
                              f"has {row['actual']}: return what the kernel granted")
    if rows[0]["actual"] < 65536:
        raise CheckFailed("after set_rcvbuf(sock, 65536) the buffer is smaller than asked: was it set at all?")
    return f"asked 65536, granted {rows[0]['actual']}; asked 1 GiB, granted {rows[1]['actual']}"


@check(CHECKS, "paced UDP sender", 4,
       "udp_blast: datagram i starts with struct.pack('>I', i) and is `size` bytes long; send "
       "datagram i at start + i / rate (sleep until then), so the rate holds on average")
def _blast(labdir: str) -> str:
    count, size, rate = 200, 100, 2000.0
    with UdpPeer(lambda i, d: None, rcvbuf=4 << 20) as peer:
        out = call_all(labdir, "throughput", [["udp_blast", [HOST, peer.port, count, size, rate]]],
                       timeout=8)[0]
        time.sleep(0.1)
        got = list(peer.received)
    sent = student_value(out, f"udp_blast(host, port, {count}, {size}, {rate:g})")
    if sent != count:
        raise CheckFailed(f"udp_blast returned {sent!r}, expected {count} (the number sent)")
    if len(got) != count:
        raise CheckFailed(f"the grader received {len(got)} of {count} datagrams at a gentle rate")
    seqs = [struct.unpack(">I", d[:4])[0] if len(d) >= 4 else -1 for _, d in got]
    if seqs != list(range(count)):
        raise CheckFailed(f"sequence numbers {seqs[:5]}...: datagram i must start with struct.pack('>I', i)")
    if any(len(d) != size for _, d in got):
        raise CheckFailed(f"datagram sizes {sorted({len(d) for _, d in got})[:5]}, expected {size} bytes each")
    span = got[-1][0] - got[0][0]
    ideal = (count - 1) / rate
    if span < 0.8 * ideal:
        raise CheckFailed(f"{count} datagrams in {span * 1000:.0f} ms: not paced ({ideal * 1000:.0f} ms at {rate:g}/s)")
    if span > 3 * ideal + 0.1:
        raise CheckFailed(f"{count} datagrams took {span * 1000:.0f} ms, far slower than {rate:g}/s")
    return f"{count} numbered datagrams in {span * 1000:.0f} ms (ideal {ideal * 1000:.0f} ms)"


@check(CHECKS, "counting receiver", 3,
       "udp_count: settimeout(idle) and recv in a loop, counting datagrams and bytes, until a "
       "socket.timeout says nothing came for `idle` seconds")
def _count(labdir: str) -> str:
    count, size = 300, 200
    value = value_of(run_probe(labdir, "netlab.labs.lab09:probe_count", {"count": count, "size": size},
                               timeout=8), "udp_count")
    if value["result"] != [count, count * size]:
        raise CheckFailed(f"udp_count returned {value['result']!r}, expected ({count}, {count * size})")
    if value["elapsed"] > 3:
        raise CheckFailed(f"udp_count took {value['elapsed']:.1f} s to notice the end (idle was 0.3 s)")
    return f"{count} datagrams, {count * size} bytes counted, done {value['elapsed']:.2f} s after start"


@check(CHECKS, "loss versus receive buffer", 3,
       "measure_loss: bind a receiver, set_rcvbuf, count in a thread with udp_count, udp_blast at the "
       "rate (0 = as fast as possible), join, return the dict")
def _measure(labdir: str) -> str:
    cases = [[2000.0, 200, 200, 1 << 20], [0, 3000, 1400, 4096]]
    outcomes = call_all(labdir, "throughput", [["measure_loss", c] for c in cases], timeout=10)
    rows = []
    for case, out in zip(cases, outcomes):
        got = student_value(out, f"measure_loss{tuple(case)}")
        if not isinstance(got, dict) or not {"sent", "received", "loss_percent"} <= set(got):
            raise CheckFailed(f"measure_loss should return a dict with sent, received, loss_percent; got {got!r}")
        sent, received, loss = got["sent"], got["received"], got["loss_percent"]
        if sent != case[1] or not 0 <= received <= sent:
            raise CheckFailed(f"measure_loss{tuple(case)}: sent {sent!r}, received {received!r}")
        if abs(loss - 100.0 * (sent - received) / sent) > 0.01:
            raise CheckFailed(f"measure_loss{tuple(case)}: loss_percent {loss!r} does not match sent/received")
        rows.append(got)
    if rows[0]["loss_percent"] > 1.0:
        raise CheckFailed(f"{rows[0]['loss_percent']:.1f}% lost at 2000/s with a 1 MiB buffer: "
                          f"is the receiver reading while the sender sends?")
    if rows[1]["loss_percent"] == 0:
        raise CheckFailed("no loss at full speed with a 4 KiB receive buffer: is the buffer really set, "
                          "and the blast unpaced for rate 0?")
    return (f"{rows[0]['loss_percent']:.1f}% lost when paced with a big buffer, "
            f"{rows[1]['loss_percent']:.1f}% at full speed into 4 KiB")


@check(CHECKS, "TCP bulk rate", 3,
       "tcp_bulk: time from connect to the server's close: sendall the bytes, shutdown(SHUT_WR), "
       "recv until b''; return megabits per second (bits / 1e6 / seconds)")
def _bulk(labdir: str) -> str:
    nbytes = 16 << 20
    counted = {}

    def sink(conn: socket.socket) -> None:
        total = 0
        while True:
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            total += len(chunk)
        counted["bytes"] = total
        conn.shutdown(socket.SHUT_WR)

    with TcpPeer(sink) as peer:
        value = value_of(run_probe(labdir, "netlab.labs.lab09:probe_bulk",
                                   {"port": peer.port, "nbytes": nbytes}, timeout=10), "tcp_bulk")
        deadline = time.monotonic() + 2
        while "bytes" not in counted and time.monotonic() < deadline:
            time.sleep(0.01)
    if counted.get("bytes") != nbytes:
        raise CheckFailed(f"the server received {counted.get('bytes')} bytes, expected {nbytes}")
    measured = nbytes * 8 / 1e6 / max(value["elapsed"], 1e-6)
    rate = value["rate"]
    if not isinstance(rate, (int, float)) or not 0.5 * measured <= rate <= 3 * measured:
        raise CheckFailed(f"tcp_bulk returned {rate!r} Mbit/s; the grader timed about {measured:.0f} Mbit/s")
    return f"{nbytes >> 20} MiB at {rate:.0f} Mbit/s (grader's timing: {measured:.0f} Mbit/s)"
