"""Unit tests of the sans-I/O service logic (RFC 862-868), no network."""
from __future__ import annotations

import datetime as dt
import random
import re

import pytest

from netlab import services
from netlab.services import chargen, daytime, discard, echo, guard, qotd
from netlab.services import time as time_service


def test_the_six_services_with_their_rfcs_and_ports():
    assert services.SERVICES == ("echo", "discard", "chargen", "daytime", "time", "qotd")
    assert services.RFCS == {"echo": 862, "discard": 863, "chargen": 864, "qotd": 865,
                             "daytime": 867, "time": 868}
    assert services.WELL_KNOWN_PORTS == {"echo": 7, "discard": 9, "chargen": 19, "qotd": 17,
                                         "daytime": 13, "time": 37}


@pytest.mark.parametrize("name", services.SERVICES)
def test_every_module_docstring_names_its_rfc(name):
    mod = services.MODULES[name]
    assert f"RFC {services.RFCS[name]}" in mod.__doc__


def test_unknown_service_is_refused():
    with pytest.raises(ValueError, match="unknown service"):
        services.tcp_session("gopher")
    with pytest.raises(ValueError, match="unknown service"):
        services.udp_service("gopher")


# -- echo (RFC 862) ---------------------------------------------------------
def test_echo_returns_every_chunk_and_finishes_at_eof():
    s = echo.EchoSession()
    assert s.connected() == b""
    assert s.received(b"abc") == b"abc"
    assert s.received(bytes(range(256))) == bytes(range(256))
    assert not s.finished
    assert s.eof_received() == b""
    assert s.finished  # half-close: send what is owed, then close


@pytest.mark.parametrize("datagram", [b"", b"x", b"\x00\xff" * 700])
def test_echo_udp_replies_with_the_same_bytes(datagram):
    assert echo.EchoUdp().reply(datagram) == datagram


# -- discard (RFC 863) ------------------------------------------------------
def test_discard_never_answers():
    s = discard.DiscardSession()
    assert s.connected() == b"" and s.received(b"data" * 100) == b""
    s.eof_received()
    assert s.finished
    assert discard.DiscardUdp().reply(b"anything") is None
    assert discard.DiscardUdp().reply(b"") is None


# -- chargen (RFC 864) ------------------------------------------------------
def test_chargen_ring_is_the_95_printable_ascii_characters():
    assert len(chargen.RING) == 95
    assert chargen.RING[0] == 0x20 and chargen.RING[-1] == 0x7E
    assert chargen.RING == bytes(range(0x20, 0x7F))


def test_chargen_lines_are_72_characters_plus_crlf_shifting_by_one():
    assert chargen.line(0) == chargen.RING[:72] + b"\r\n"
    for n in range(200):
        ln = chargen.line(n)
        assert len(ln) == 74 and ln.endswith(b"\r\n")
        body = ln[:72]
        assert all(0x20 <= c <= 0x7E for c in body)
        assert body[0] == chargen.RING[n % 95]
        # consecutive characters follow the ring, wrapping ~ -> space
        for a, b in zip(body, body[1:]):
            assert (a - 0x20 + 1) % 95 == b - 0x20
    assert chargen.line(23).startswith(b"7")      # 0x20 + 23 = '7'
    assert chargen.line(94)[:2] == b"~ "           # wraps round the ring
    assert chargen.line(95) == chargen.line(0)     # period of 95 lines


def test_chargen_stream_is_the_concatenated_lines_from_any_offset():
    text = b"".join(chargen.line(n) for n in range(500))  # 37000 bytes
    assert chargen.CYCLE == text[:7030]
    rng = random.Random(864)
    for _ in range(300):
        offset = rng.randrange(0, 15000)
        size = rng.randrange(0, 15000)
        want = text[offset:offset + size]
        assert chargen.stream(offset, size) == want
    assert chargen.stream(5, 0) == b""


def test_chargen_session_streams_on_pull_and_ignores_input_and_eof():
    s = chargen.ChargenSession()
    assert s.streaming
    assert s.connected() == b""
    got = s.pull(100) + s.pull(1) + s.pull(20000)
    assert got == chargen.stream(0, 20101)
    assert s.received(b"ignored") == b""
    s.eof_received()
    assert not s.finished  # the client's EOF does not stop the stream
    assert s.pull(10) == chargen.stream(20101, 10)


def test_chargen_udp_replies_0_to_512_consecutive_ring_characters():
    svc = chargen.ChargenUdp(random.Random(19))
    sizes = []
    for i in range(3000):
        data = svc.reply(b"" if i % 2 else b"x")
        sizes.append(len(data))
        assert 0 <= len(data) <= 512
        if data:
            assert data[0] == chargen.RING[i % 95]  # starts one further each time
        for a, b in zip(data, data[1:]):
            assert (a - 0x20 + 1) % 95 == b - 0x20
    assert min(sizes) < 20 and max(sizes) > 490  # the whole range is used
    assert len(set(sizes)) > 300


def test_chargen_ring_chars_wraps():
    assert chargen.ring_chars(93, 4) == b"}~ !"
    assert chargen.ring_chars(0, 0) == b""
    assert len(chargen.ring_chars(50, 512)) == 512


# -- daytime (RFC 867) ------------------------------------------------------
def test_daytime_line_for_a_known_instant():
    when = dt.datetime(2026, 11, 21, 14, 5, 9, tzinfo=dt.timezone.utc)
    assert daytime.daytime(when) == b"Saturday, November 21, 2026 14:05:09-UTC\r\n"
    assert daytime.daytime(0) == b"Thursday, January 1, 1970 00:00:00-UTC\r\n"
    # naive datetimes are taken as UTC; aware ones are converted
    assert daytime.daytime(dt.datetime(2000, 2, 29, 23, 59, 59)) == \
        b"Tuesday, February 29, 2000 23:59:59-UTC\r\n"
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert daytime.daytime(dt.datetime(2026, 1, 1, 1, 0, 0, tzinfo=plus2)) == \
        b"Wednesday, December 31, 2025 23:00:00-UTC\r\n"


def test_daytime_now_is_printable_ascii_ending_crlf():
    line = daytime.daytime()
    assert line.endswith(b"\r\n")
    assert all(0x20 <= c <= 0x7E for c in line[:-2])
    m = re.fullmatch(rb"(\w+), (\w+) (\d+), (\d{4}) (\d\d):(\d\d):(\d\d)-UTC\r\n", line)
    assert m, line
    parsed = dt.datetime.strptime(line[:-6].decode().split(", ", 1)[1], "%B %d, %Y %H:%M:%S")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert abs((now - parsed).total_seconds()) < 5


def test_daytime_session_and_udp():
    s = daytime.DaytimeSession()
    out = s.connected()
    assert out.endswith(b"-UTC\r\n") and s.finished
    assert s.received(b"junk") == b""
    assert daytime.DaytimeUdp().reply(b"").endswith(b"-UTC\r\n")


# -- time (RFC 868) ---------------------------------------------------------
def test_time_counts_from_1900_big_endian():
    assert time_service.EPOCH_OFFSET == 2208988800
    assert time_service.encode(0) == bytes.fromhex("83aa7e80")  # 1970 in the 1900 epoch
    # RFC 868's own examples: 1 Jan 1970 = 2,208,988,800; 1 Jan 1976 = 2,398,291,200
    assert time_service.seconds_since_1900(6 * 365 * 86400 + 86400) == 2398291200
    (when, raw) = time_service.decode(bytes.fromhex("83aa7e80"))
    assert raw == 2208988800 and when == dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def test_time_now_round_trips():
    when, raw = time_service.decode(time_service.encode())
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((now - when).total_seconds()) < 5
    assert raw == int(when.timestamp()) + 2208988800


def test_time_wraps_in_2036_and_decodes_into_the_next_era():
    wrap = dt.datetime(2036, 2, 7, 6, 28, 16, tzinfo=dt.timezone.utc).timestamp()
    assert time_service.encode(wrap) == b"\x00\x00\x00\x00"
    assert time_service.encode(wrap - 1) == b"\xff\xff\xff\xff"
    when, raw = time_service.decode(b"\x00\x00\x00\x01")
    assert raw == 1 and when == dt.datetime(2036, 2, 7, 6, 28, 17, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("bad", [b"", b"\x01\x02\x03", b"\x00" * 5])
def test_time_decode_says_how_many_bytes_came(bad):
    with pytest.raises(ValueError, match=f"4 bytes, got {len(bad)}"):
        time_service.decode(bad)


def test_time_session_and_udp_even_for_an_empty_datagram():
    s = time_service.TimeSession()
    assert len(s.connected()) == 4 and s.finished
    reply = time_service.TimeUdp().reply(b"")
    assert len(reply) == 4
    assert abs(time_service.decode(reply)[1] - time_service.seconds_since_1900()) <= 2


# -- qotd (RFC 865) ---------------------------------------------------------
def test_every_shipped_quote_is_rfc865_clean():
    quotes = qotd.quotes()
    assert len(quotes) >= 10
    for q in quotes:
        assert len(q) < 512
        assert q.endswith(b"\r\n")
        assert all(0x20 <= c <= 0x7E or c in (0x0D, 0x0A) for c in q)
        assert b"\n" not in q.replace(b"\r\n", b"")  # every line end is CR LF


def test_parse_quotes_format_and_errors():
    assert qotd.parse_quotes("one\n%\n\ntwo\nlines\n\n%\n%\n") == [b"one\r\n",
                                                                  b"two\r\nlines\r\n"]
    with pytest.raises(ValueError, match="quote 2 is 5.. characters"):
        qotd.parse_quotes("ok\n%\n" + "x" * 550 + "\n")
    with pytest.raises(ValueError, match="quote 1 holds a character"):
        qotd.parse_quotes("caf\u00e9\n")
    with pytest.raises(ValueError, match="quote 1 holds a character"):
        qotd.parse_quotes("tab\there\n")


def test_qotd_session_and_udp_pick_shipped_quotes():
    quotes = set(qotd.quotes())
    s = qotd.QotdSession(random.Random(1))
    assert s.connected() in quotes and s.finished
    seen = {qotd.QotdUdp(random.Random(i)).reply(b"") for i in range(50)}
    assert seen <= quotes and len(seen) > 3


# -- UDP guard ----------------------------------------------------------------
def test_guarded_ports_are_the_services_and_netlab_defaults():
    assert guard.GUARDED_PORTS == {7, 9, 13, 17, 19, 37,
                                   7007, 7009, 7013, 7017, 7019, 7037}


@pytest.mark.parametrize("port", sorted(guard.GUARDED_PORTS))
def test_loop_guard_refuses_replies_to_service_ports(port):
    g = guard.UdpGuard(rate=0)
    assert not g.allow(("127.0.0.1", port))
    assert g.looped == 1
    assert g.allow(("127.0.0.1", 40000))


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_rate_limit_per_source_with_a_burst_and_refill():
    clock = FakeClock()
    g = guard.UdpGuard(rate=10, burst=5, clock=clock)
    a, b = ("10.0.0.1", 5000), ("10.0.0.2", 5000)
    assert [g.allow(a) for _ in range(8)] == [True] * 5 + [False] * 3
    assert g.limited == 3
    assert g.allow(b)            # another source has its own bucket
    clock.now += 0.25            # 2.5 tokens come back
    assert [g.allow(a) for _ in range(3)] == [True, True, False]
    clock.now += 100             # refills only up to the burst
    assert sum(g.allow(a) for _ in range(10)) == 5


def test_rate_limit_zero_means_unlimited_and_table_is_bounded():
    assert all(guard.UdpGuard(rate=0).allow(("h", 4000)) for _ in range(5000))
    limiter = guard.RateLimiter(rate=1, burst=1, max_keys=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
