"""The socket loops of ``netlab bench``: both twins, crafted sequences, real loopback.

``netlab._netio`` (compiled) and ``netlab._pynetio`` (the readable reference)
must count loss, duplicates, reordering and RFC 3550 jitter identically.
"""
from __future__ import annotations

import errno
import random
import os
import socket
import socketserver
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netlab import _pynetio
from netlab.packet import pure_python_requested

try:
    from netlab import _netio
except ImportError:  # pragma: no cover - only under NETLAB_PURE_PYTHON=1
    _netio = None

_TWINS = {"cython": _netio, "python": _pynetio}


@pytest.fixture(params=["cython", "python"], ids=["c", "py"])
def io(request):
    mod = _TWINS[request.param]
    if mod is None:
        if pure_python_requested():
            pytest.skip("NETLAB_PURE_PYTHON=1: netlab._netio not built")
        pytest.fail("netlab._netio did not import; rebuild: python setup.py build_ext --inplace")
    return mod


def test_compiled_twin_is_really_compiled():
    if _netio is None:
        if pure_python_requested():
            pytest.skip("NETLAB_PURE_PYTHON=1")
        pytest.fail("netlab._netio is missing")
    assert _netio.BACKEND == "cython" and _netio.__file__.endswith((".so", ".pyd"))
    assert _pynetio.BACKEND == "python"


def test_same_public_names():
    assert _netio is None or sorted(_netio.__all__) == sorted(_pynetio.__all__)
    for mod in filter(None, _TWINS.values()):
        for name in mod.__all__:
            assert hasattr(mod, name), (mod.BACKEND, name)


def feed(io, events):
    """events: (seq, send_ns, arrival_ns) tuples, in arrival order."""
    c = io.UdpCounters()
    for seq, sent, arrived in events:
        c.feed(io.encode_stamp(seq, sent, 64), arrived)
    return c


# --- stamps ---------------------------------------------------------------------------

def test_stamp_round_trip(io):
    data = io.encode_stamp(123456789, 987654321012, 100)
    assert len(data) == 100 and data[:4] == b"NLB1"
    assert io.parse_stamp(data) == (123456789, 987654321012)
    assert io.parse_stamp(bytearray(data)) == (123456789, 987654321012)
    assert io.parse_stamp(memoryview(data)[:20]) == (123456789, 987654321012)


def test_stamp_layout_is_big_endian(io):
    data = io.encode_stamp(1, 2)
    assert data == b"NLB1" + (1).to_bytes(8, "big") + (2).to_bytes(8, "big")


@pytest.mark.parametrize("data", [b"", b"NLB1", b"NLB1" + bytes(15), b"XLB1" + bytes(16)])
def test_not_a_stamp(io, data):
    assert io.parse_stamp(data) is None


def test_stamp_too_small(io):
    with pytest.raises(ValueError, match="at least 20"):
        io.encode_stamp(0, 0, 19)


# --- counters on crafted sequences ---------------------------------------------------

def test_in_order_no_jitter(io):
    c = feed(io, [(s, 1000 * s, 1000 * s + 50) for s in range(100)])
    r = c.result()
    assert (r["received"], r["duplicated"], r["reordered"], r["foreign"]) == (100, 0, 0, 0)
    assert r["highest_seq"] == 99 and r["bytes"] == 6400 and r["jitter_us"] == 0.0


def test_loss_shows_as_gaps(io):
    lost = {3, 7, 50}
    c = feed(io, [(s, s, s) for s in range(100) if s not in lost])
    assert c.received == 97 and c.highest_seq == 99
    assert 100 - c.received == len(lost)            # sent - received
    assert c.duplicated == 0 and c.reordered == 0


def test_duplicates_count_once(io):
    seqs = [0, 1, 1, 2, 3, 3, 3, 4]
    c = feed(io, [(s, 0, 0) for s in seqs])
    assert c.received == 5 and c.duplicated == 3 and c.reordered == 0


def test_reordering_rfc4737(io):
    # 2 overtakes 1: 1 arrives late -> one reordered datagram.
    assert feed(io, [(s, 0, 0) for s in [0, 2, 1, 3]]).reordered == 1
    # 5 overtakes 1..4: each of them arrives below the next expected number.
    c = feed(io, [(s, 0, 0) for s in [0, 5, 1, 2, 3, 4, 6]])
    assert c.reordered == 4 and c.received == 7 and c.highest_seq == 6


def test_late_duplicate_is_a_duplicate_not_a_reorder(io):
    c = feed(io, [(s, 0, 0) for s in [0, 1, 2, 1]])
    assert c.duplicated == 1 and c.reordered == 0


def test_jitter_rfc3550_by_hand(io):
    # transit times 10, 20, 10, 40 ns -> |D| = 10, 10, 30
    # J1 = 10/16 = 0.625; J2 = J1 + (10 - J1)/16 = 1.2109375;
    # J3 = J2 + (30 - J2)/16 = 3.01025390625  (all exact in binary floating point)
    c = feed(io, [(0, 100, 110), (1, 200, 220), (2, 300, 310), (3, 400, 440)])
    assert c.jitter_ns == 3.01025390625
    assert c.result()["jitter_us"] == round(3.01025390625 / 1000, 3)


def test_jitter_ignores_duplicates_and_uses_arrival_order(io):
    # A duplicate with a wild transit time must not move the jitter.
    base = [(0, 0, 10), (1, 100, 120), (2, 200, 210)]
    dup = base[:2] + [(1, 100, 99999)] + base[2:]
    assert feed(io, base).jitter_ns == feed(io, dup).jitter_ns
    # Arrival order: 1 arrives before 0 -> D computed from 1 to 0.
    c = feed(io, [(1, 100, 130), (0, 0, 10)])   # transits 30 then 10
    assert c.jitter_ns == 20 / 16


def test_foreign_datagrams_are_set_aside(io):
    c = io.UdpCounters()
    for data in (b"", b"hello", b"XXXX" + bytes(60), io.encode_stamp(io.MAX_SEQ + 1, 0, 64)):
        c.feed(data, 0)
    c.feed(io.encode_stamp(io.MAX_SEQ, 0, 64), 0)   # the largest allowed number is fine
    assert c.foreign == 4 and c.received == 1 and c.highest_seq == io.MAX_SEQ


def test_crafted_lossy_sequence(io):
    """A sequence like a lossy relay makes: loss, duplicates, reordering, jitter."""
    rng = random.Random(6)
    arrivals, lost, dups = [], 0, 0
    for s in range(2000):
        r = rng.random()
        if r < 0.05:
            lost += 1
            continue
        t = 1000 * s
        arrivals.append((s, t, t + rng.randrange(100, 200)))
        if r > 0.97:
            arrivals.append((s, t, t + 300))
            dups += 1
    # swap some neighbours: each swap makes exactly one late datagram
    swaps = 0
    i = 0
    while i + 1 < len(arrivals):
        a, b = arrivals[i], arrivals[i + 1]
        first_copy = i == 0 or arrivals[i - 1][0] != a[0]
        if not (a[0] < b[0] and first_copy) or rng.random() > 0.03:
            i += 1
            continue
        arrivals[i], arrivals[i + 1] = b, a
        swaps += 1
        i += 3
    c = feed(io, arrivals)
    assert c.received == 2000 - lost
    assert c.duplicated == dups
    assert c.reordered == swaps > 0
    assert 0 < c.jitter_ns < 300


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 10**12), st.integers(0, 10**12)),
                max_size=300))
def test_both_twins_count_alike(events):
    if _netio is None:
        pytest.skip("compiled twin not built")
    a, b = feed(_netio, events), feed(_pynetio, events)
    assert a.result() == b.result()
    assert a.jitter_ns == b.jitter_ns


@settings(max_examples=100, deadline=None)
@given(seq=st.integers(0, 2**64 - 1), send_ns=st.integers(0, 2**63 - 1),
       size=st.integers(20, 200), length=st.integers(0, 600),
       blob=st.binary(max_size=40))
def test_both_twins_stamp_and_pattern_alike(seq, send_ns, size, length, blob):
    if _netio is None:
        pytest.skip("compiled twin not built")
    stamped = _netio.encode_stamp(seq, send_ns, size)
    assert stamped == _pynetio.encode_stamp(seq, send_ns, size)
    for data in (stamped, blob, b"NLB1" + blob):
        assert _netio.parse_stamp(data) == _pynetio.parse_stamp(data)
    assert _netio.pattern(length) == _pynetio.pattern(length)


@pytest.mark.parametrize("offset, flip", [(0, None), (7, None), (1000, 3), (250, 999)])
def test_both_twins_check_a_stream_alike(offset, flip):
    """tcp_recv of both twins on the very same bytes: same (received, mismatched, eof)."""
    if _netio is None:
        pytest.skip("compiled twin not built")
    pat = _pynetio.pattern(1000)
    start = offset % _pynetio.PATTERN_PERIOD
    stream = bytearray(pat[start:start + 1000])
    if flip is not None:
        stream[flip] ^= 0xFF
    results = []
    for mod in (_netio, _pynetio):
        a, b = socket.socketpair()
        with a, b:
            a.sendall(stream)
            a.shutdown(socket.SHUT_WR)
            results.append(mod.tcp_recv(b, pat, bytearray(1000), offset,
                                        mod.monotonic_ns() + 2_000_000_000))
    assert results[0] == results[1]
    assert results[1][0] == 1000 and results[1][2] is True
    assert (results[1][1] > 0) == (flip is not None)


# --- on real loopback sockets ----------------------------------------------------------

def _udp_pair():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    return tx, rx


def test_udp_send_and_receive_paced(io):
    tx, rx = _udp_pair()
    with tx, rx:
        c = io.UdpCounters()
        t0 = io.monotonic_ns()
        sent, errors, _ = io.udp_send(tx, 100, 0, t0, 2000.0, t0 + 100_000_000)  # ~200
        got = io.udp_recv(rx, c, io.monotonic_ns() + 200_000_000, 2048)
    assert errors == 0 and 150 <= sent <= 250   # paced: about rate x time, never a flood
    assert got == sent == c.received and c.highest_seq == sent - 1
    assert c.duplicated == c.reordered == c.foreign == 0
    assert c.bytes == 100 * sent


def test_udp_recv_stops_at_deadline_when_idle(io):
    tx, rx = _udp_pair()
    with tx, rx:
        c = io.UdpCounters()
        start = io.monotonic_ns()
        assert io.udp_recv(rx, c, start + 30_000_000) == 0
        assert io.monotonic_ns() >= start + 30_000_000


def test_udp_send_reports_refusal(io):
    tx, rx = _udp_pair()
    rx.close()                                  # nobody listens there any more
    with tx:
        t0 = io.monotonic_ns()
        sent, errors, err = io.udp_send(tx, 64, 0, t0, 0.0, t0 + 20_000_000)
    # The first datagram goes out; the ICMP "port unreachable" it causes makes
    # a later send fail with ECONNREFUSED, which the loop counts and reports.
    assert sent >= 1 and errors >= 1 and err == errno.ECONNREFUSED


def test_tcp_stream_is_verified(io):
    bufsize = 4096
    pat = io.pattern(bufsize)
    assert pat[:256] == bytes(i % 251 for i in range(256)) and len(pat) == bufsize + 251
    a, b = socket.socketpair()
    with a, b:
        # Kernel-side send timeout: a full buffer makes send() return EAGAIN,
        # so the loop looks at its deadline instead of blocking for good.
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("@ll", 0, 10000))
        t = io.monotonic_ns()
        n = io.tcp_send(a, pat, bufsize, 0, t + 5_000_000)
        a.shutdown(socket.SHUT_WR)
        got, bad, eof = io.tcp_recv(b, pat, bytearray(bufsize), 0, io.monotonic_ns() + 2_000_000_000)
    assert n > 0 and got == n and bad == 0 and eof


def test_tcp_corruption_is_caught(io):
    pat = io.pattern(1000)
    stream = bytearray(pat[:1000])
    stream[500] ^= 0xFF
    a, b = socket.socketpair()
    with a, b:
        a.sendall(stream)
        a.shutdown(socket.SHUT_WR)
        got, bad, eof = io.tcp_recv(b, pat, bytearray(1000), 0, io.monotonic_ns() + 2_000_000_000)
    assert got == 1000 and eof and bad > 0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


def test_echo_load_round_trips(io):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    socks = []
    try:
        for _ in range(4):
            socks.append(socket.create_connection(server.server_address, timeout=5))
        load = io.EchoLoad(socks, 32)
        done = load.run(io.monotonic_ns() + 100_000_000)
        done += load.run(io.monotonic_ns() + 50_000_000)
        lat = load.latencies()
        assert done > 4 and load.round_trips == done == len(lat)
        assert all(x > 0 for x in lat) and load.errors == 0
        load.close()
    finally:
        for s in socks:
            s.close()
        server.shutdown()
        server.server_close()


def test_echo_load_counts_a_dead_server(io):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    c = socket.create_connection(lsock.getsockname(), timeout=5)
    conn, _ = lsock.accept()
    conn.close()                                 # the "server" hangs up at once
    try:
        load = io.EchoLoad([c], 16)
        assert load.run(io.monotonic_ns() + 200_000_000) == 0
        assert load.errors == 1 and load.round_trips == 0
    finally:
        c.close()
        lsock.close()



def test_echo_load_close_releases_its_poller(io):
    # Both twins give their epoll/selector descriptor back on close(), not
    # only when the object is garbage-collected.
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    c = socket.create_connection(lsock.getsockname(), timeout=5)
    conn, _ = lsock.accept()
    try:
        load = io.EchoLoad([c], 16)
        load.run(io.monotonic_ns() + 1_000_000)   # make sure the poller exists
        before = len(os.listdir("/proc/self/fd"))
        load.close()
        assert len(os.listdir("/proc/self/fd")) == before - 1
    finally:
        conn.close()
        c.close()
        lsock.close()

@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=40),
                          st.binary(max_size=30).map(lambda b: b"NLB1" + b)), max_size=50))
def test_any_bytes_are_counted_never_crash(blobs):
    # Random bytes, many of them behind the right magic: stamps with wild
    # sequence numbers and times, short ones, foreign ones.
    if _netio is None:
        pytest.skip("compiled twin not built")
    results = []
    for mod in (_netio, _pynetio):
        c = mod.UdpCounters()
        for i, blob in enumerate(blobs):
            c.feed(blob, i)
        results.append(c.result())
    assert results[0] == results[1]
    r = results[0]
    assert r["received"] + r["duplicated"] + r["foreign"] == len(blobs)
