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
import time

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


# --- drain-then-nap, GSO, discard, UDP echo, ping-pong -------------------------------

@pytest.mark.parametrize("nap_ns", [0, 100_000], ids=["block", "nap"])
def test_udp_recv_counts_every_datagram_whether_it_naps_or_blocks(io, nap_ns):
    tx, rx = _udp_pair()
    with tx, rx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        c = io.UdpCounters()
        t0 = io.monotonic_ns()
        sent, errors, _ = io.udp_send(tx, 64, 0, t0, 5000.0, t0 + 100_000_000)
        got = io.udp_recv(rx, c, io.monotonic_ns() + 200_000_000, 2048, nap_ns)
    assert errors == 0 and sent > 0
    assert got == sent == c.received and c.highest_seq == sent - 1


def test_udp_recv_idle_receiver_sleeps_instead_of_napping(io):
    # Nothing arrives: the loop blocks in the kernel (a nap only follows a
    # wake-up that brought a few datagrams), so 0.1 s idle costs a handful
    # of wake-ups, not 1,000 naps of 100 us.
    tx, rx = _udp_pair()
    with tx, rx:
        start_cpu = time.process_time()
        start = io.monotonic_ns()
        assert io.udp_recv(rx, io.UdpCounters(), start + 100_000_000) == 0
        assert io.monotonic_ns() >= start + 100_000_000
        assert time.process_time() - start_cpu < 0.08


def _gso_available() -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.setsockopt(17, 103, 64)   # SOL_UDP, UDP_SEGMENT
        return True
    except OSError:
        return False
    finally:
        probe.close()


def test_udp_send_with_gso_gives_separate_stamped_datagrams(io):
    if not _gso_available():
        pytest.skip("needs UDP_SEGMENT (Linux 4.18+)")
    tx, rx = _udp_pair()
    with tx, rx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        tx.setsockopt(17, 103, 64)
        c = io.UdpCounters()
        t0 = io.monotonic_ns()
        sent, errors, _ = io.udp_send(tx, 64, 0, t0, 0.0, t0 + 2_000_000, 8)
        io.udp_recv(rx, c, io.monotonic_ns() + 100_000_000, 2048)
    # Every send carries 8 datagrams; the receiver sees each on its own, 64 B each.
    assert errors == 0 and sent > 0 and sent % 8 == 0
    assert c.received > 0 and c.bytes == 64 * c.received and c.foreign == 0
    assert c.duplicated == 0 and c.highest_seq < sent


def test_udp_send_gso_refuses_pacing_and_too_many_segments(io):
    tx, rx = _udp_pair()
    with tx, rx:
        t0 = io.monotonic_ns()
        with pytest.raises(ValueError):
            io.udp_send(tx, 64, 0, t0, 1000.0, t0 + 1_000_000, 8)
        with pytest.raises(ValueError):
            io.udp_send(tx, 64, 0, t0, 0.0, t0 + 1_000_000, io.MAX_GSO_SEGMENTS + 1)


def test_tcp_discard_counts_without_checking(io):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.close(), b.close()
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        a = socket.create_connection(listener.getsockname())
        b, _ = listener.accept()
    with a, b:
        a.sendall(b"\xff" * 300_000)          # not the pattern: discard does not look
        a.shutdown(socket.SHUT_WR)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", 0, 10000))
        got, eof = io.tcp_discard(b, 65536, io.monotonic_ns() + 2_000_000_000)
    assert got == 300_000 and eof


def test_udp_echo_answers_each_sender(io):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    done = []
    t = threading.Thread(target=lambda: done.append(io.udp_echo(server, io.monotonic_ns() + 300_000_000)))
    t.start()
    try:
        for k, c in enumerate(clients):
            c.settimeout(2)
            c.sendto(bytes([k]) * (10 + k), server.getsockname())
        replies = [c.recvfrom(100)[0] for c in clients]
    finally:
        t.join()
        server.close()
        for c in clients:
            c.close()
    assert replies == [bytes([k]) * (10 + k) for k in range(3)]
    assert done == [3]


@pytest.mark.parametrize("udp", [True, False], ids=["udp", "tcp"])
def test_ping_pong_against_an_echo(io, udp):
    if udp:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        stop = threading.Event()

        def serve():
            server.settimeout(0.05)
            while not stop.is_set():
                try:
                    data, addr = server.recvfrom(65536)
                except socket.timeout:
                    continue
                server.sendto(data, addr)
        addr = server.getsockname()
    else:
        srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
        srv.daemon_threads = True
        addr = srv.server_address
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    t = threading.Thread(target=serve if udp else srv.serve_forever, daemon=True)
    t.start()
    try:
        sock.connect(addr)
        samples, lost = io.ping_pong(sock, 100, 0, io.monotonic_ns() + 100_000_000, udp)
    finally:
        sock.close()
        if udp:
            stop.set()
            t.join()
            server.close()
        else:
            srv.shutdown()
            srv.server_close()
    assert len(samples) > 5 and lost == 0
    assert all(0 < s < 100_000_000 for s in samples)


def test_ping_pong_over_udp_counts_silence_as_loss(io):
    # A socket that receives but never answers: every request times out.
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with mute, sock:
        sock.connect(mute.getsockname())
        samples, lost = io.ping_pong(sock, 64, 0, io.monotonic_ns() + 150_000_000, True,
                                     50_000_000)
    assert samples == [] and 2 <= lost <= 4


def test_ping_pong_ignores_a_stale_reply(io):
    # An answer that is not the request just sent (a late echo) must not count.
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def wrong_echo():
        server.settimeout(2)
        data, addr = server.recvfrom(100)
        server.sendto(b"\x00" * len(data), addr)      # wrong bytes: stale
        time.sleep(0.03)
        server.sendto(data, addr)                       # the real echo, 30 ms later
    t = threading.Thread(target=wrong_echo)
    t.start()
    with server, sock:
        sock.connect(server.getsockname())
        # The deadline ends the loop after the first request (it only starts new ones before it).
        samples, lost = io.ping_pong(sock, 32, 7, io.monotonic_ns() + 5_000_000, True, 500_000_000)
        t.join()
    assert len(samples) == 1 and lost == 0
    assert samples[0] >= 25_000_000      # timed to the real echo, not the stale one
