"""Lab 5: daytime and time (RFC 867, RFC 868) — text versus binary, byte order, the 1900 epoch.

The server checks compare with the real clock of this machine, so a server
that counts from 1970 or sends little-endian is caught and named.
"""
from __future__ import annotations

import calendar
import socket
import struct
import time

from netlab.labs._peers import HOST, read_to_eof, udp_ask, wait_for_udp
from netlab.labs._probes import bytes_of, call_all, server, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import free_port, wait_for_tcp

__all__ = ["DAYTIME_FORMAT", "EPOCH_OFFSET", "epoch", "encode", "decode", "daytime_text", "time_server", "daytime_server"]


# Seconds from 1900-01-01 to 1970-01-01 (RFC 868): 70 years, 17 of them leap years.
EPOCH_OFFSET = (70 * 365 + 17) * 86400
DAYTIME_FORMAT = "%A, %B %d, %Y %H:%M:%S-UTC"
SLACK = 3.0  # seconds of clock difference allowed between the grader and a server


def _diagnose(raw: bytes, now: float) -> str:
    """Name the usual mistake behind a wrong 4-byte time value."""
    big, little = struct.unpack(">I", raw)[0], struct.unpack("<I", raw)[0]
    if abs(big - now) < SLACK:
        return "it counts from 1970 (the Unix epoch); RFC 868 counts from 1900"
    if abs(little - EPOCH_OFFSET - now) < SLACK:
        return "the right number in little-endian byte order; the network byte order is big-endian"
    if abs(little - now) < SLACK:
        return "little-endian and counted from 1970: both the byte order and the epoch are wrong"
    return f"that is {big} big-endian, {big - EPOCH_OFFSET - now:+.0f} s away from the real time"


def epoch(labdir: str) -> str:
    cases = [0, 1_000_000_000, 1_700_000_000.75]
    outcomes = call_all(labdir, "timeservices", [["time_value", [w]] for w in cases])
    for when, out in zip(cases, outcomes):
        got = student_value(out, f"time_value({when})")
        want = int(when) + EPOCH_OFFSET
        if got != want:
            hint = " (that is Unix time: it counts from 1970)" if got == int(when) else ""
            raise CheckFailed(f"time_value({when}) gave {got!r}, expected {want}{hint}")
    return "Unix time 0 is 2208988800 seconds after 1900"


def encode(labdir: str) -> str:
    wrap = 2**32 - EPOCH_OFFSET  # the second the 32-bit field wraps, 2036-02-07
    cases = [0, 1_700_000_000, wrap + 5]
    outcomes = call_all(labdir, "timeservices", [["encode_time", [w]] for w in cases])
    for when, out in zip(cases, outcomes):
        raw = bytes_of(student_value(out, f"encode_time({when})"))
        want = struct.pack(">I", (int(when) + EPOCH_OFFSET) % 2**32)
        if raw is None:
            raise CheckFailed(f"encode_time({when}) returned {out['value']!r}, expected 4 bytes")
        if raw != want:
            if len(raw) != 4:
                raise CheckFailed(f"encode_time({when}) gave {len(raw)} bytes; the field is 4 bytes")
            if raw == want[::-1]:
                raise CheckFailed(f"encode_time({when}) is little-endian; network byte order is big-endian")
            raise CheckFailed(f"encode_time({when}) gave {raw.hex()}, expected {want.hex()}")
    return "4 big-endian bytes, wrapping in February 2036"


def decode(labdir: str) -> str:
    raw = struct.pack(">I", 1_234_567_890 + EPOCH_OFFSET)
    outcomes = call_all(labdir, "timeservices", [["decode_time", [{"bytes": raw.hex()}]],
                                                 ["decode_time", [{"bytes": "000102"}]]])
    got = student_value(outcomes[0], f"decode_time({raw!r})")
    if got != 1_234_567_890:
        raise CheckFailed(f"decode_time({raw!r}) gave {got!r}, expected 1234567890 (Unix time)")
    if outcomes[1].get("error") != "ValueError":
        raise CheckFailed("decode_time(3 bytes) should raise ValueError, it "
                          + (f"returned {outcomes[1]['value']!r}" if outcomes[1].get("ok")
                             else f"raised {outcomes[1].get('error')}"))
    return "decoded 2009-02-13 23:31:30 UTC; 3 bytes refused"


def daytime_text(labdir: str) -> str:
    when = 1_700_000_000
    out = call_all(labdir, "timeservices", [["daytime_text", [when]]])[0]
    got = student_value(out, f"daytime_text({when})")
    want = time.strftime(DAYTIME_FORMAT, time.gmtime(when)) + "\r\n"
    if got != want:
        raise CheckFailed(f"daytime_text({when}) gave {got!r}, expected {want!r}")
    return repr(want)


def time_server(labdir: str) -> str:
    port = free_port(socket.SOCK_DGRAM)
    with server(labdir, "timeservices", "serve_time_udp", [HOST, port]) as box:
        wait_for_udp(box, port, b"")
        raw = udp_ask(port, b"", 2.0)
        now = time.time()
    if raw is None or len(raw) != 4:
        raise CheckFailed(f"expected a 4-byte reply, got {raw!r}")
    value = struct.unpack(">I", raw)[0] - EPOCH_OFFSET
    if abs(value - now) > SLACK:
        raise CheckFailed(f"the reply {raw.hex()} is not the current time: " + _diagnose(raw, now))
    return f"{raw.hex()} = {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(value))} UTC, {value - now:+.1f} s"


def daytime_server(labdir: str) -> str:
    port = free_port()
    with server(labdir, "timeservices", "serve_daytime", [HOST, port]) as box:
        wait_for_tcp(box, port)
        with socket.create_connection((HOST, port), timeout=3) as sock:
            data, eof = read_to_eof(sock, 3.0)
        now = time.time()
    if not eof:
        raise CheckFailed(f"got {data[:60]!r} but the server did not close the connection")
    if not data.endswith(b"\r\n"):
        raise CheckFailed(f"got {data[:60]!r}: the line must end with CRLF")
    try:
        when = calendar.timegm(time.strptime(data[:-2].decode("ascii"), DAYTIME_FORMAT))
    except (ValueError, UnicodeDecodeError):
        raise CheckFailed(f"got {data[:60]!r}, not in the format of daytime_text") from None
    if abs(when - now) > SLACK:
        raise CheckFailed(f"the server says {data[:-2].decode()}, {when - now:+.0f} s off the real time (UTC?)")
    return repr(data.decode("ascii"))
