"""Every service x both protocols x every concurrency model, over loopback.

The selectors model runs twice: as started by default (its TCP side in the
compiled loop of netlab._fastserve for echo and discard, when built) and as
``selectors-python``, forced onto the readable Python loop. Both must behave
the same; tests/test_fastserve.py checks which path is taken.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import threading
import time

import pytest

from netlab import servers, services
from netlab.errors import NetlabError
from netlab.servers import DEFAULT_MODEL, DEFAULT_PORTS, MODELS
from netlab.services import chargen, qotd
from netlab.services import time as time_service
from tests.conftest import free_port

LOOP = "127.0.0.1"
#: The selectors model with its compiled TCP path switched off.
PY_SELECTORS = "selectors-python"
VARIANTS = (*MODELS, PY_SELECTORS)
DAYTIME_RE = re.compile(rb"[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n")


def _read_to_eof(sock: socket.socket, limit: int = 1 << 22) -> bytes:
    got = b""
    while len(got) < limit:
        data = sock.recv(65536)
        if not data:
            return got
        got += data
    raise AssertionError("server did not close")


def _connect(port: int, host: str = LOOP) -> socket.socket:
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(5)
    return s


def _udp(port: int, payload: bytes, host: str = LOOP, wait: float = 2.0):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as u:
        u.settimeout(wait)
        u.sendto(payload, (host, port))
        try:
            return u.recvfrom(65535)[0]
        except socket.timeout:
            return None


def start_server(service, model=DEFAULT_MODEL, **kwargs):
    """netlab.servers.start_server, with ``selectors-python`` = selectors on its Python loop."""
    if model == PY_SELECTORS:
        return servers.start_server(service, model="selectors", compiled=False, **kwargs)
    return servers.start_server(service, model=model, **kwargs)


def _wait_for(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_public_constants():
    assert servers.MODELS == ("iterative", "threaded", "selectors", "asyncio")
    assert servers.DEFAULT_MODEL == "selectors"
    assert servers.DEFAULT_PORTS == {"echo": 7007, "discard": 7009, "daytime": 7013,
                                     "qotd": 7017, "chargen": 7019, "time": 7037}
    for name, port in DEFAULT_PORTS.items():
        assert port == 7000 + services.WELL_KNOWN_PORTS[name]


# -- the matrix -----------------------------------------------------------------
def check_tcp(service: str, port: int) -> None:
    with _connect(port) as s:
        if service == "echo":
            payload = os.urandom(300_000)  # more than the socket buffers hold
            sender = threading.Thread(target=lambda: (s.sendall(payload),
                                                      s.shutdown(socket.SHUT_WR)))
            sender.start()
            got = _read_to_eof(s)
            sender.join(10)
            assert got == payload  # every byte back, then the server closed
        elif service == "discard":
            s.sendall(b"x" * 100_000)
            s.shutdown(socket.SHUT_WR)
            assert _read_to_eof(s) == b""
        elif service == "chargen":
            f = s.makefile("rb")
            for n in range(200):
                assert f.readline() == chargen.line(n)
            f.close()
        elif service == "daytime":
            line = _read_to_eof(s)
            assert DAYTIME_RE.fullmatch(line), line
        elif service == "time":
            data = _read_to_eof(s)
            when, _ = time_service.decode(data)
            assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 5
        elif service == "qotd":
            assert _read_to_eof(s) in qotd.quotes()


def check_udp(service: str, port: int) -> None:
    if service == "echo":
        assert _udp(port, b"a letter\n") == b"a letter\n"
        assert _udp(port, b"") == b""
    elif service == "discard":
        assert _udp(port, b"into the void", wait=0.3) is None
    elif service == "chargen":
        for _ in range(5):
            data = _udp(port, b"")
            assert data is not None and len(data) <= 512
            assert all(0x20 <= c <= 0x7E for c in data)
    elif service == "daytime":
        assert DAYTIME_RE.fullmatch(_udp(port, b"what time is it?"))
    elif service == "time":
        data = _udp(port, b"")  # RFC 868 answers even an empty datagram
        when, _ = time_service.decode(data)
        assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 5
    elif service == "qotd":
        assert _udp(port, b"x") in qotd.quotes()


@pytest.mark.parametrize("model", VARIANTS)
@pytest.mark.parametrize("service", services.SERVICES)
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_every_service_protocol_and_model(service, proto, model):
    with start_server(service, port=0, protocols=(proto,), model=model) as srv:
        assert list(srv.ports) == [proto]
        port = srv.ports[proto]
        (check_tcp if proto == "tcp" else check_udp)(service, port)
        stats = srv.stats()
        if proto == "udp":
            assert _wait_for(lambda: srv.stats()["datagrams"] >= 1)
        else:
            assert stats["connections"] == 1
    assert srv.stats()["active"] == 0


@pytest.mark.parametrize("model", VARIANTS)
def test_tcp_and_udp_share_one_port_number_and_stop_closes_both(model):
    with start_server("echo", model=model) as srv:
        assert srv.ports["tcp"] == srv.ports["udp"] == srv.port
        assert srv.urls == [f"tcp://127.0.0.1:{srv.port}", f"udp://127.0.0.1:{srv.port}"]
        assert _udp(srv.port, b"ping") == b"ping"
        port = srv.port
    assert not srv.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOP, port), timeout=2).close()
    # both port numbers are free again
    with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((LOOP, port))
        u.bind((LOOP, port))


@pytest.mark.parametrize("model", VARIANTS)
def test_echo_half_close_gets_everything_back(model):
    with start_server("echo", protocols=("tcp",), model=model) as srv, \
            _connect(srv.port) as s:
        s.sendall(b"first ")
        assert s.recv(100) == b"first "
        s.sendall(b"and last")
        s.shutdown(socket.SHUT_WR)   # "I am done talking, still listening"
        assert _read_to_eof(s) == b"and last"
        assert _wait_for(lambda: srv.stats()["bytes_out"] == 14)


@pytest.mark.parametrize("model", [DEFAULT_MODEL, PY_SELECTORS])
def test_stats_count_connections_datagrams_and_bytes(model):
    with start_server("echo", model=model) as srv:
        with _connect(srv.port) as s:
            s.sendall(b"12345")
            s.shutdown(socket.SHUT_WR)
            _read_to_eof(s)
        _udp(srv.port, b"abc")
        assert _wait_for(lambda: srv.stats()["bytes_out"] == 8)
        st = srv.stats()
        assert {k: st[k] for k in ("connections", "datagrams", "bytes_in", "bytes_out")} == \
            {"connections": 1, "datagrams": 1, "bytes_in": 8, "bytes_out": 8}
    assert srv.stop()["connections"] == 1  # stop() is idempotent and returns the totals


# -- scale and robustness ---------------------------------------------------------
@pytest.mark.parametrize("model", ["selectors", PY_SELECTORS, "threaded", "asyncio"])
def test_200_concurrent_echo_clients_each_get_their_bytes(model):
    with start_server("echo", protocols=("tcp",), model=model) as srv:
        clients = []
        try:
            for _ in range(200):
                clients.append(_connect(srv.port))
            payloads = [os.urandom(2000) + b"#%d" % i for i in range(200)]
            for s, p in zip(clients, payloads):   # all 200 are open at once
                s.sendall(p)
            for s, p in zip(clients, payloads):
                got = b""
                while len(got) < len(p):
                    data = s.recv(len(p) - len(got))
                    assert data, "server closed early"
                    got += data
                assert got == p
            assert srv.stats()["active"] == 200
        finally:
            for s in clients:
                s.close()
        assert _wait_for(lambda: srv.stats()["active"] == 0)
        assert srv.stats()["connections"] == 200


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
@pytest.mark.parametrize("model", VARIANTS)
def test_ipv6_loopback(model):
    with start_server("echo", host="::1", model=model) as srv:
        assert srv.urls == [f"tcp://[::1]:{srv.port}", f"udp://[::1]:{srv.port}"]
        with socket.create_connection(("::1", srv.port), timeout=5) as s:
            s.sendall(b"six")
            s.shutdown(socket.SHUT_WR)
            assert _read_to_eof(s) == b"six"
        assert _udp(srv.port, b"v6", host="::1") == b"v6"


def _stalled_chargen_client(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up fast
    s.settimeout(5)
    s.connect((LOOP, port))
    return s


def _settled(srv, key: str = "bytes_out", timeout: float = 5.0) -> int:
    """Wait until a counter stops moving (two equal samples 0.25 s apart)."""
    deadline = time.monotonic() + timeout
    last = srv.stats()[key]
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = srv.stats()[key]
        if now == last:
            return now
        last = now
    raise AssertionError(f"{key} still growing after {timeout} s: {last}")


def _tcp_wmem_max() -> int:
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


@pytest.mark.parametrize("model", ["selectors", PY_SELECTORS, "threaded", "asyncio"])
def test_never_reading_chargen_client_stops_generation_others_served(model):
    limit = 32768
    with start_server("chargen", protocols=("tcp",), model=model, out_buffer=limit) as srv:
        stalled = _stalled_chargen_client(srv.port)
        try:
            # The server fills the kernel buffers, then must stop producing:
            # what it sent is bounded by those buffers, not by time.
            assert _wait_for(lambda: srv.stats()["bytes_out"] > 0)
            sent_to_stalled = _settled(srv)
            assert sent_to_stalled <= _tcp_wmem_max() + 2 * 65536 + limit
            # Another client is served in full meanwhile.
            with _connect(srv.port) as other:
                f = other.makefile("rb")
                for n in range(2000):
                    assert f.readline() == chargen.line(n)
                f.close()
            assert _wait_for(lambda: srv.stats()["active"] == 1)
            # Only the stalled client is left: nothing more is generated for it.
            later = _settled(srv)
            time.sleep(0.3)
            assert srv.stats()["bytes_out"] == later
            assert srv.stats()["buffer_peak"] <= limit  # selectors' own queue stayed bounded
        finally:
            stalled.close()


@pytest.mark.parametrize("model", VARIANTS)
def test_loop_guard_no_reply_to_service_source_ports(model):
    with start_server("echo", protocols=("udp",), model=model) as srv:
        # Bind the "attacker" to one of netlab's own 70xx ports (or 7 as root).
        candidates = ([7, 19] if os.geteuid() == 0 else []) + [7019, 7007, 7013, 7037]
        for src in candidates:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((LOOP, src))
            except OSError:
                u.close()
                continue
            break
        else:
            pytest.skip("every guarded source port is in use on this machine")
        with u:
            u.settimeout(0.4)
            u.sendto(b"storm?", (LOOP, srv.port))
            with pytest.raises(socket.timeout):
                u.recvfrom(100)
        assert _wait_for(lambda: srv.stats()["udp_looped"] == 1)
        assert _udp(srv.port, b"ok") == b"ok"  # ordinary ports still get answers


@pytest.mark.parametrize("model", ["selectors", PY_SELECTORS, "asyncio"])
def test_udp_rate_limit_per_source(model):
    with start_server("chargen", protocols=("udp",), model=model,
                      udp_rate=2, udp_burst=5) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(0.3)
            for _ in range(30):
                u.sendto(b"x", (LOOP, srv.port))
            replies = 0
            try:
                while replies < 40:
                    u.recvfrom(1000)
                    replies += 1
            except socket.timeout:
                pass
        assert 5 <= replies <= 7
        assert _wait_for(lambda: srv.stats()["udp_limited"] >= 23)


@pytest.mark.parametrize("model", ["selectors", PY_SELECTORS, "threaded", "asyncio"])
def test_max_connections_closes_the_extra_ones(model):
    with start_server("echo", protocols=("tcp",), model=model, max_connections=2) as srv:
        a, b = _connect(srv.port), _connect(srv.port)
        try:
            for s in (a, b):
                s.sendall(b"hi")
                assert s.recv(10) == b"hi"
            with _connect(srv.port) as c:
                try:
                    assert c.recv(10) == b""  # accepted and closed at once
                except ConnectionResetError:
                    pass
            assert srv.stats()["rejected"] == 1
            a.sendall(b"still")
            assert a.recv(10) == b"still"
        finally:
            a.close()
            b.close()


@pytest.mark.parametrize("model", VARIANTS)
def test_idle_timeout_closes_a_silent_client(model):
    with start_server("echo", protocols=("tcp",), model=model, idle_timeout=0.4) as srv:
        with _connect(srv.port) as s:
            start = time.monotonic()
            assert s.recv(10) == b""
            assert 0.3 < time.monotonic() - start < 3
        assert _wait_for(lambda: srv.stats()["timeouts"] == 1)


@pytest.mark.parametrize("model", VARIANTS)
def test_a_client_that_resets_does_not_hurt_the_server(model):
    with start_server("echo", model=model) as srv:
        s = _connect(srv.port)
        s.sendall(b"x" * 1000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
        for _ in range(2):
            with _connect(srv.port) as t:
                t.sendall(b"fine")
                t.shutdown(socket.SHUT_WR)
                assert _read_to_eof(t) == b"fine"
        assert srv.error is None


def test_iterative_server_makes_the_second_client_wait():
    with start_server("echo", protocols=("tcp",), model="iterative") as srv:
        first = _connect(srv.port)
        first.sendall(b"1")
        assert first.recv(1) == b"1"
        with _connect(srv.port) as second:  # the kernel queues it in the backlog
            second.sendall(b"2")
            second.settimeout(0.4)
            with pytest.raises(socket.timeout):
                second.recv(1)               # nobody serves it yet
            first.close()
            second.settimeout(5)
            assert second.recv(1) == b"2"    # its turn came


def test_daytime_reply_survives_a_client_that_talks_first():
    # Closing with unread client bytes would send RST and could kill the reply.
    with start_server("daytime", protocols=("tcp",)) as srv, _connect(srv.port) as s:
        s.sendall(b"hello?\n" * 100)
        time.sleep(0.1)
        assert DAYTIME_RE.fullmatch(_read_to_eof(s))


# -- errors ----------------------------------------------------------------------------
def test_port_in_use_raises_netlab_error_naming_it():
    with start_server("echo", protocols=("tcp",)) as srv:
        with pytest.raises(NetlabError, match=rf"port {srv.port}/tcp is already in use"):
            start_server("echo", port=srv.port, protocols=("tcp",))


def test_udp_port_in_use_closes_the_tcp_socket_too():
    for _ in range(10):  # the UDP port's TCP twin may be taken by someone else: try another
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((LOOP, 0))
            port = u.getsockname()[1]
            with pytest.raises(NetlabError) as failed:
                start_server("echo", port=port)
        if f"{port}/tcp" not in str(failed.value):
            break
    assert f"{port}/udp" in str(failed.value)
    # the TCP half was released: it can be bound again
    with socket.socket() as t:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((LOOP, port))


@pytest.mark.parametrize("kwargs, message", [
    (dict(service="gopher"), "unknown service"),
    (dict(service="echo", model="forking"), "unknown server model"),
    (dict(service="echo", protocols=("sctp",)), "protocols"),
    (dict(service="echo", port=70000), "invalid port"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(NetlabError, match=message):
        start_server(**kwargs)


def test_unknown_limit_is_a_type_error():
    with pytest.raises(TypeError, match="unknown server limit"):
        start_server("echo", idle=5)
    with pytest.raises(ValueError, match="max_connections"):
        start_server("echo", max_connections=0)


def test_fixed_port_is_honoured():
    port = free_port()
    try:
        srv = start_server("time", port=port, protocols=("tcp",))
    except NetlabError:
        pytest.skip("the free port was taken in between")
    with srv:
        assert srv.ports == {"tcp": port}
        assert DEFAULT_MODEL in repr(srv)


@pytest.mark.parametrize("model", VARIANTS)
def test_stop_is_prompt_even_with_a_stalled_chargen_client(model):
    srv = start_server("chargen", protocols=("tcp",), model=model)
    stalled = _stalled_chargen_client(srv.port)
    try:
        assert _wait_for(lambda: srv.stats()["bytes_out"] > 0)
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 3
        stalled.settimeout(5)
        try:  # the client sees the end: EOF after the queued data, or a reset
            while stalled.recv(65536):
                pass
        except ConnectionResetError:
            pass
    finally:
        stalled.close()


@pytest.mark.parametrize("model", [DEFAULT_MODEL, PY_SELECTORS])
def test_echo_client_that_never_reads_gets_flow_control_not_memory(model):
    limit = 16384
    with start_server("echo", protocols=("tcp",), model=model, out_buffer=limit) as srv:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((LOOP, srv.port))
            s.setblocking(False)
            pushed = 0
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and pushed < 64 << 20:
                try:
                    pushed += s.send(b"p" * 65536)
                except BlockingIOError:
                    # the server stopped reading: TCP flow control pushes back
                    time.sleep(0.05)
                    try:
                        pushed += s.send(b"p" * 65536)
                    except BlockingIOError:
                        break
            assert pushed < 64 << 20, "the server kept reading without bound"
            peak = srv.stats()["buffer_peak"]
            # one receive may land on a nearly full buffer, never more
            assert peak <= limit + 65536


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a raw socket to spoof the source port")
@pytest.mark.parametrize("model", VARIANTS)
def test_loop_guard_covers_the_servers_own_port(model):
    # A datagram forged to come *from* the server's own address and port would
    # make an unguarded echo server answer itself until the rate limit stopped it.
    import struct

    with start_server("echo", protocols=("udp",), model=model) as srv:
        port = srv.port
        payload = b"talk to yourself"
        udp = struct.pack(">HHHH", port, port, 8 + len(payload), 0) + payload  # checksum 0: none
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP) as raw:
            raw.sendto(udp, (LOOP, 0))
        assert _wait_for(lambda: srv.stats()["udp_looped"] == 1)
        time.sleep(0.2)
        stats = srv.stats()
        assert stats["udp_looped"] == 1 and stats["bytes_out"] == 0, stats
        assert _udp(srv.port, b"ok") == b"ok"
