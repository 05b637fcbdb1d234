"""netlab.clients against real netlab servers (and silent sockets) on loopback."""
from __future__ import annotations

import datetime as dt
import socket
import time

import pytest

from netlab import clients
from netlab.errors import NetlabError
from netlab.servers import start_server
from netlab.services import chargen, qotd

H = "127.0.0.1"


@pytest.fixture(scope="module")
def srv():
    """One server per service (TCP and UDP), shared by this module's tests."""
    handles = {name: start_server(name) for name in
               ("echo", "discard", "chargen", "daytime", "time", "qotd")}
    try:
        yield {name: h.port for name, h in handles.items()}
    finally:
        for h in handles.values():
            h.stop()


def test_tcp_echo_binary_and_large(srv):
    data = bytes(range(256)) * 1000
    assert clients.tcp_echo(H, srv["echo"], data, timeout=5) == data
    assert clients.tcp_echo(H, srv["echo"], b"", timeout=5) == b""


def test_tcp_echo_lines_interactive(srv):
    lines = [b"one\n", b"two two\n", b"\n"]
    assert list(clients.tcp_echo_lines(H, srv["echo"], iter(lines))) == lines


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_echo_by_protocol(srv, proto):
    assert clients.echo(proto, H, srv["echo"], b"letter or call?\n") == b"letter or call?\n"


def test_udp_echo(srv):
    assert clients.udp_echo(H, srv["echo"], b"x" * 1400, timeout=1, retries=0) == b"x" * 1400


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_daytime(srv, proto):
    text = clients.daytime(proto, H, srv["daytime"])
    parsed = dt.datetime.strptime(text, "%A, %B %d, %Y %H:%M:%S-UTC")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert abs((now - parsed).total_seconds()) < 5


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_time_gives_datetime_and_raw(srv, proto):
    when, raw = clients.time(proto, H, srv["time"])
    assert when.tzinfo is not None
    assert abs(time.time() - when.timestamp()) < 5
    assert raw == int(when.timestamp()) + 2_208_988_800


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_qotd(srv, proto):
    text = clients.qotd(proto, H, srv["qotd"])
    assert (text.replace("\n", "\r\n") + "\r\n").encode() in qotd.quotes()


def test_chargen_tcp_lines(srv):
    lines = clients.chargen("tcp", H, srv["chargen"], lines=120)
    assert lines == [chargen.line(n)[:72].decode() for n in range(120)]
    assert clients.chargen("tcp", H, srv["chargen"], lines=0) == []


def test_chargen_udp_one_reply_per_line(srv):
    replies = clients.chargen("udp", H, srv["chargen"], lines=4)
    assert len(replies) == 4
    for r in replies:
        assert len(r) <= 512 and all(" " <= c <= "~" for c in r)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_discard_counts_what_it_sent(srv, proto):
    assert clients.discard(proto, H, srv["discard"], b"gone" * 10) == 40


def _silent_udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((H, 0))
    return s


def test_udp_no_reply_says_so_after_n_tries():
    with _silent_udp() as sink:
        port = sink.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(NetlabError, match=r"no reply from udp://127\.0\.0\.1:\d+ after 3 tries"):
            clients.udp_echo(H, port, b"hello?", timeout=0.1, retries=2)
        assert time.monotonic() - start >= 0.3
        sink.settimeout(1)
        got = [sink.recvfrom(100)[0] for _ in range(3)]  # really sent three times
        assert got == [b"hello?"] * 3


def test_udp_one_try_wording():
    with _silent_udp() as sink:
        with pytest.raises(NetlabError, match="after 1 try "):
            clients.daytime("udp", H, sink.getsockname()[1], timeout=0.1, retries=0)


def test_udp_port_unreachable_is_reported_at_once():
    with _silent_udp() as s:
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(NetlabError, match="port unreachable"):
        clients.time("udp", H, port, timeout=2, retries=3)
    assert time.monotonic() - start < 1.5


def test_tcp_refused_is_one_clear_error():
    with socket.socket() as s:
        s.bind((H, 0))
        port = s.getsockname()[1]
    with pytest.raises(NetlabError, match="connection refused"):
        clients.qotd("tcp", H, port)


def test_time_from_a_server_that_sends_garbage():
    with socket.socket() as lst:
        lst.bind((H, 0))
        lst.listen(1)
        port = lst.getsockname()[1]
        import threading

        def serve():
            conn, _ = lst.accept()
            conn.sendall(b"not a time")
            conn.close()
        t = threading.Thread(target=serve)
        t.start()
        with pytest.raises(NetlabError, match="4 bytes, got 10"):
            clients.time("tcp", H, port)
        t.join(5)


def test_bad_protocol_name():
    with pytest.raises(NetlabError, match="'tcp' or 'udp'"):
        clients.daytime("sctp", H, 1)


def test_default_ports():
    assert clients.default_port("echo") == 7007
    assert clients.default_port("time") == 7037


@pytest.mark.parametrize("fetch", [clients.daytime, clients.qotd], ids=["daytime", "qotd"])
def test_an_empty_answer_is_an_error_not_an_empty_line(srv, fetch):
    # Regression: pointed at the wrong server, daytime/qotd printed an empty
    # line and exited 0. The discard server closes with nothing over TCP; the
    # echo server answers the empty request datagram with an empty datagram.
    with pytest.raises(NetlabError, match="answered with nothing"):
        fetch("tcp", H, srv["discard"], timeout=5)
    with pytest.raises(NetlabError, match="answered with nothing"):
        fetch("udp", H, srv["echo"], timeout=2, retries=0)
