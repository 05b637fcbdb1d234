"""Lab 9: throughput — UDP loss versus rate and receive buffer, TCP bulk rate.

Every experiment is bounded: a fixed number of datagrams, a fixed number of
bytes, a timeout on every wait. The grader's own sinks count what arrived.
"""
from __future__ import annotations

import random
import socket
import struct
import time

from netlab.labs._peers import HOST, TcpPeer, UdpPeer, wait_for_udp_bound
from netlab.labs._probes import call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import Sandbox, free_port, run_probe, value_of

__all__ = ["loss", "rcvbuf", "blast", "count", "measure", "bulk"]



# --- checks (parent side) ----------------------------------------------------

def loss(labdir: str) -> str:
    # (3, 5): UDP duplicated two datagrams; that is no loss, and not a negative one.
    cases = [((100, 100), 0.0), ((100, 75), 25.0), ((3, 1), 200 / 3), ((0, 0), 0.0), ((3, 5), 0.0)]
    outcomes = call_all(labdir, "throughput", [["loss_percent", list(a)] for a, _ in cases]
                        + [["loss_percent", [10, -1]]])
    for (args, want), out in zip(cases, outcomes):
        got = student_value(out, f"loss_percent{args}")
        if not isinstance(got, (int, float)) or abs(got - want) > 1e-6:
            extra = " (more arrived than were sent: UDP duplicated some)" if args[1] > args[0] else ""
            raise CheckFailed(f"loss_percent{args} gave {got!r}, expected {want:.4g}{extra}")
    if outcomes[-1].get("error") != "ValueError":
        raise CheckFailed("loss_percent(10, -1) should raise ValueError: a count is never negative")
    return "five cases, duplicates included, and one impossible one"


def rcvbuf(labdir: str) -> str:
    rows = value_of(run_probe(labdir, "lab09:probe_rcvbuf"), "set_rcvbuf")
    for row in rows:
        if row["returned"] != row["actual"]:
            raise CheckFailed(f"set_rcvbuf(sock, {row['asked']}) returned {row['returned']!r}, but the socket "
                              f"has {row['actual']}: return what the kernel granted")
    if rows[0]["actual"] < 65536:
        raise CheckFailed("after set_rcvbuf(sock, 65536) the buffer is smaller than asked: was it set at all?")
    return f"asked 65536, granted {rows[0]['actual']}; asked 1 GiB, granted {rows[1]['actual']}"


def blast(labdir: str) -> str:
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


def count(labdir: str) -> str:
    count, idle = 300, 0.3
    port = free_port(socket.SOCK_DGRAM)
    sizes = [random.randint(20, 400) for _ in range(count)]
    with Sandbox(labdir, "lab09:probe_count", {"port": port, "idle": idle}) as box:
        wait_for_udp_bound(box, port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i, size in enumerate(sizes):
                tx.sendto(struct.pack(">I", i) + bytes(size - 4), (HOST, port))
                if i % 50 == 49:
                    time.sleep(0.002)  # gentle: none of them may be lost
        last = time.monotonic()
        result = box.wait(8)
        elapsed = time.monotonic() - last  # the grader's clock: last datagram to the answer
    got = value_of(result, "udp_count")
    if got != [count, sum(sizes)]:
        raise CheckFailed(f"udp_count returned {got!r}, expected ({count}, {sum(sizes)}): "
                          f"the grader sent {count} datagrams of different sizes")
    if elapsed > idle + 3:
        raise CheckFailed(f"udp_count took {elapsed:.1f} s after the last datagram to notice the end "
                          f"(idle was {idle} s)")
    return f"{count} datagrams, {sum(sizes)} bytes counted, done {elapsed:.2f} s after the last one"


def measure(labdir: str) -> str:
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


def bulk(labdir: str) -> str:
    nbytes = 16 << 20
    counted = {}

    def sink(conn: socket.socket) -> None:
        counted["start"] = time.monotonic()
        total = 0
        while True:
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            total += len(chunk)
        counted["end"] = time.monotonic()
        counted["bytes"] = total
        conn.shutdown(socket.SHUT_WR)

    with TcpPeer(sink) as peer:
        rate = value_of(run_probe(labdir, "lab09:probe_bulk",
                                  {"port": peer.port, "nbytes": nbytes}, timeout=10), "tcp_bulk")
        deadline = time.monotonic() + 2
        while "bytes" not in counted and time.monotonic() < deadline:
            time.sleep(0.01)
    if counted.get("bytes") != nbytes:
        raise CheckFailed(f"the server received {counted.get('bytes')} bytes, expected {nbytes}")
    # The grader's own timing, from its sink: accept to the end of the stream.
    measured = nbytes * 8 / 1e6 / max(counted["end"] - counted["start"], 1e-6)
    if not isinstance(rate, (int, float)) or not 0.3 * measured <= rate <= 3 * measured:
        raise CheckFailed(f"tcp_bulk returned {rate!r} Mbit/s; the grader timed about {measured:.0f} Mbit/s")
    return f"{nbytes >> 20} MiB at {rate:.0f} Mbit/s (grader's timing: {measured:.0f} Mbit/s)"
