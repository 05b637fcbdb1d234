"""Lab 12: a UDP pinger — timeouts, RTT min/avg/max/stddev, loss, through a lossy relay.

The grader runs its own echo server behind netlab's UDP relay, impaired with
a seeded loss and a delay. The fate of every datagram on that link follows
from the seed alone (:class:`netlab.services.lossy.LossyLink`), so the grader
knows which pings must come back before the student's pinger runs, and
cross-checks that against the relay's own counters afterwards.
"""
from __future__ import annotations

import math
import socket
import threading
import time
from typing import List, Tuple

from netlab.labs._peers import HOST, UdpPeer
from netlab.labs._probes import call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import run_probe, value_of
from netlab.redirect import start_redirect
from netlab.services.lossy import LossyLink

__all__ = ["statistics", "lossy", "late", "timeouts", "report"]

LOSS, DELAY_MS, COUNT, TIMEOUT = 0.2, 20.0, 12, 0.35


def _answered(seed: int, count: int, loss: float = LOSS) -> Tuple[List[bool], List[int], int]:
    """Through the relay seeded ``seed``: which of ``count`` pings get their reply, the
    sequence numbers that reach the echo server, and the number of drops.

    The relay decides each datagram's fate with one seeded link per direction,
    in the order datagrams arrive: the pings in order on the way there, the
    echoes of those that passed on the way back.
    """
    up = LossyLink(loss, 0.0, 0.0, f"{seed}/to_target")
    down = LossyLink(loss, 0.0, 0.0, f"{seed}/to_client")
    arrive = [seq for seq in range(1, count + 1) if up.decide(seq)[0]]
    answered = [seq in arrive and bool(down.decide(seq)[0]) for seq in range(1, count + 1)]
    return answered, arrive, up.stats["dropped"] + down.stats["dropped"]


def _ping_through_relay(labdir: str, seed: int, probe: bool = False):
    """Run the student's pinger through a seeded relay: ``(outcome, relay stats, pings seen)``."""
    with UdpPeer(lambda i, d: d) as echo:
        with start_redirect(0, HOST, echo.port, protocols=("udp",), loss=LOSS, delay_ms=DELAY_MS,
                            seed=seed) as relay:
            port = relay.ports["udp"]
            if probe:
                out = value_of(run_probe(labdir, "lab12:probe_report",
                                         {"port": port, "count": COUNT, "timeout": TIMEOUT}, timeout=12),
                               "ping and summarize")
            else:
                out = call_all(labdir, "pinger", [["ping", [HOST, port, COUNT, TIMEOUT]]], timeout=12)[0]
            time.sleep(2 * DELAY_MS / 1000)
            stats = relay.stats()["udp"]
        seen = [d for _, d in echo.received]
    return out, stats, seen


def _judge_rtts(rtts, seed: int, stats: dict, seen: list) -> List[bool]:
    call = f"ping(host, port, {COUNT}, {TIMEOUT}) through a relay losing {LOSS:.0%} (seed {seed})"
    if not isinstance(rtts, list) or len(rtts) != COUNT:
        raise CheckFailed(f"{call} returned {str(rtts)[:80]}: expected a list of {COUNT} RTTs (None when lost)")
    if stats["to_target"]["received"] != COUNT:
        raise CheckFailed(f"the relay received {stats['to_target']['received']} datagrams from your pinger, "
                          f"expected {COUNT}: one per ping, no retries")
    want, arrive, dropped = _answered(seed, COUNT)
    seqs = [data.split()[1:2] for data in seen]
    if seqs != [[str(seq).encode()] for seq in arrive]:
        raise CheckFailed(f"the echo server received {[d[:16] for d in seen][:4]}...; the pings that pass "
                          f"the link should be b'Ping <seq> <time>' with seq {arrive[:4]}...: "
                          f"one datagram per ping, numbered from 1")
    lost_by_relay = COUNT - sum(want)
    if stats["dropped"] != dropped or stats["to_client"]["sent"] != sum(want):
        raise CheckFailed(f"the relay's counters ({stats['dropped']} dropped, {stats['to_client']['sent']} "
                          f"replies delivered) differ from what its seed says ({dropped}, {sum(want)}): "
                          f"please tell your teacher")
    got = [r is not None for r in rtts]
    if got != want:
        wrong = [i + 1 for i, (g, w) in enumerate(zip(got, want)) if g != w]
        seq = wrong[0]
        what = ("got no reply in your list, but the relay delivered its echo"
                if want[seq - 1] else "has an RTT, but the relay lost it (or its echo)")
        raise CheckFailed(f"{call}: ping {seq} {what} ({lost_by_relay} of {COUNT} were lost)")
    floor = 2 * DELAY_MS * 0.9
    for seq, rtt in enumerate(rtts, 1):
        if rtt is not None and (not isinstance(rtt, (int, float)) or not floor <= rtt <= TIMEOUT * 1000 + 50):
            raise CheckFailed(f"ping {seq}: RTT {_ms(rtt)}, but the relay delays {DELAY_MS:g} ms each way "
                              f"and the timeout is {TIMEOUT * 1000:g} ms: measure in milliseconds, "
                              f"from send to reply")
    return want


def _ms(rtt) -> str:
    return f"{rtt:.1f} ms" if isinstance(rtt, (int, float)) else repr(rtt)


def statistics(labdir: str) -> str:
    cases = [[10.0, None, 30.0, 20.0], [None, None], [5.0], [1.0, 2.0, 3.0, 4.0, None, None, None, None]]
    outs = call_all(labdir, "pinger", [["summarize", [c]] for c in cases])
    for case, out in zip(cases, outs):
        got = student_value(out, f"summarize({case})")
        if not isinstance(got, dict):
            raise CheckFailed(f"summarize({case}) returned {got!r}, expected a dict")
        rtts = [r for r in case if r is not None]
        avg = sum(rtts) / len(rtts) if rtts else None
        want = {"sent": len(case), "received": len(rtts), "lost": len(case) - len(rtts),
                "loss_percent": 100.0 * (len(case) - len(rtts)) / len(case),
                "min": min(rtts) if rtts else None, "avg": avg, "max": max(rtts) if rtts else None,
                "stddev": math.sqrt(sum((r - avg) ** 2 for r in rtts) / len(rtts)) if rtts else None}
        for key, value in want.items():
            have = got.get(key, "missing")
            ok = (have is None) if value is None else (
                isinstance(have, (int, float)) and not isinstance(have, bool) and abs(have - value) < 1e-6)
            if not ok:
                hint = " (the population standard deviation: divide by the number of replies)" \
                    if key == "stddev" else ""
                raise CheckFailed(f"summarize({case})[{key!r}] is {have!r}, expected {value!r}{hint}")
    return f"{len(cases)} runs summarized, all lost and none lost included"


def lossy(labdir: str) -> str:
    lines = []
    for seed in (4, 8):
        out, stats, seen = _ping_through_relay(labdir, seed)
        rtts = student_value(out, f"ping(host, port, {COUNT}, {TIMEOUT})")
        want = _judge_rtts(rtts, seed, stats, seen)
        lines.append(f"seed {seed}: {COUNT - sum(want)} lost")
    return f"{COUNT} pings per run, each lost one the relay lost, the others timed ({', '.join(lines)})"


def report(labdir: str) -> str:
    seed = 11
    out, stats, seen = _ping_through_relay(labdir, seed, probe=True)
    if not isinstance(out, dict):
        raise CheckFailed(f"ping/summarize returned {out!r}")
    want = _judge_rtts(out.get("rtts"), seed, stats, seen)
    summary = out.get("summary")
    if not isinstance(summary, dict):
        raise CheckFailed(f"summarize(ping(...)) returned {summary!r}, expected a dict")
    lost = COUNT - sum(want)
    expect = {"sent": COUNT, "received": sum(want), "lost": lost, "loss_percent": 100.0 * lost / COUNT}
    for key, value in expect.items():
        have = summary.get(key)
        if not isinstance(have, (int, float)) or abs(have - value) > 1e-6:
            raise CheckFailed(f"after the run, summarize gave {key} = {have!r}; the relay's counters say {value:g}")
    rtts = [r for r in out["rtts"] if r is not None]
    if rtts and (abs(summary.get("min", -1) - min(rtts)) > 1e-6 or abs(summary.get("max", -1) - max(rtts)) > 1e-6):
        raise CheckFailed("summarize's min/max are not those of the RTTs ping returned")
    return (f"{lost}/{COUNT} lost = {100.0 * lost / COUNT:.1f}%, as the relay counted; "
            f"rtt min/avg/max {summary['min']:.1f}/{summary['avg']:.1f}/{summary['max']:.1f} ms")


def _late_server(replies: List[tuple], lifetime: float = 8.0):
    """A UDP server that answers ping ``seq`` with the given ``(delay, copies)``; returns (port, stop)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.settimeout(0.05)
    stop = threading.Event()
    arrivals: List[float] = []

    def loop() -> None:
        deadline = time.monotonic() + lifetime
        timers = []
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                data, addr = sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                break
            arrivals.append(time.monotonic())
            n = len(arrivals) - 1
            delay, copies = replies[n] if n < len(replies) else (None, 0)
            for _ in range(copies):
                t = threading.Timer(delay, lambda d=data, a=addr: _send(sock, d, a))
                t.daemon = True
                t.start()
                timers.append(t)
        for t in timers:
            t.cancel()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(timeout=2)
        sock.close()
    return sock.getsockname()[1], close, arrivals


def _send(sock: socket.socket, data: bytes, addr: tuple) -> None:
    try:
        sock.sendto(data, addr)
    except OSError:
        pass


def late(labdir: str) -> str:
    timeout = 0.2
    # Ping 1's echo comes 60 ms after its timeout, while ping 2 waits for its own,
    # which comes 150 ms after ping 2; ping 3's comes twice at once.
    port, close, _ = _late_server([(0.26, 1), (0.15, 1), (0.0, 2)])
    try:
        out = call_all(labdir, "pinger", [["ping", [HOST, port, 3, timeout]]], timeout=8)[0]
    finally:
        close()
    rtts = student_value(out, f"ping(host, port, 3, {timeout})")
    if not isinstance(rtts, list) or len(rtts) != 3:
        raise CheckFailed(f"ping(..., 3, {timeout}) returned {rtts!r}: expected 3 entries")
    if rtts[0] is not None:
        raise CheckFailed(f"ping 1's echo came after {timeout} s, yet ping 1 has RTT {rtts[0]!r}: "
                          f"a reply after the timeout is lost")
    if not isinstance(rtts[1], (int, float)) or rtts[1] < 100:
        raise CheckFailed(f"ping 2's echo came 150 ms after it, but its RTT is {_ms(rtts[1])}: the late "
                          f"echo of ping 1 arrived first; match replies by sequence number")
    if rtts[2] is None:
        raise CheckFailed("ping 3 was answered (twice) but has no RTT")
    return f"a late echo ignored, ping 2 timed at {rtts[1]:.0f} ms, a duplicate echo counted once"


def timeouts(labdir: str) -> str:
    timeout, count = 0.3, 3
    port, close, arrivals = _late_server([])
    try:
        start = time.monotonic()
        out = call_all(labdir, "pinger", [["ping", [HOST, port, count, timeout]]], timeout=8)[0]
        elapsed = time.monotonic() - start
        seen = list(arrivals)
    finally:
        close()
    rtts = student_value(out, f"ping(host, port, {count}, {timeout}) to a silent server")
    if rtts != [None] * count:
        raise CheckFailed(f"a silent server, yet ping returned {rtts!r}: expected [None, None, None]")
    if len(seen) != count:
        raise CheckFailed(f"the server received {len(seen)} pings, expected {count}")
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    if not all(0.8 * timeout <= g <= 2 * timeout + 0.1 for g in gaps):
        raise CheckFailed(f"with timeout={timeout} the pings came {', '.join(f'{g:.2f}' for g in gaps)} s "
                          f"apart: wait `timeout` for each reply, then send the next ping")
    return f"3 pings {', '.join(f'{g:.2f}' for g in gaps)} s apart, all reported lost ({elapsed:.1f} s)"
