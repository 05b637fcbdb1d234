"""Lab 5: the daytime (RFC 867) and time (RFC 868) services.

Fill in the TODOs, then check your work with:

    netlab lab check 5

Try it by hand:

    python timeservices.py daytime 9013     then: nc 127.0.0.1 9013
    python timeservices.py time 9037        then: netlab time --client --udp 9037
"""
import socket
import struct
import sys
import time

DAYTIME_FORMAT = "%A, %B %d, %Y %H:%M:%S-UTC"


def daytime_text(when):
    """The daytime reply for Unix time ``when``: the date in DAYTIME_FORMAT (UTC), then CRLF."""
    # TODO: time.gmtime and time.strftime; what ends a line on the Internet?
    raise NotImplementedError("TODO: daytime_text(when)")


def time_value(when):
    """RFC 868 time for Unix time ``when``: whole seconds since 1900-01-01 00:00 UTC."""
    # TODO: Unix time counts from 1970. How many seconds are there between
    # TODO: 1900-01-01 and 1970-01-01? (Count the leap years; 1900 was not one.)
    raise NotImplementedError("TODO: time_value(when)")


def encode_time(when):
    """The 4-byte RFC 868 reply for Unix time ``when``."""
    # TODO: 32 bits, network byte order. What happens after 2**32 - 1?
    raise NotImplementedError("TODO: encode_time(when)")


def decode_time(data):
    """Unix time from a 4-byte RFC 868 reply; ValueError if ``data`` is not 4 bytes."""
    raise NotImplementedError("TODO: decode_time(data)")


def serve_daytime(host, port):
    """TCP daytime server: each client gets one daytime line, then the server closes."""
    raise NotImplementedError("TODO: serve_daytime(host, port)")


def serve_time_udp(host, port):
    """UDP time server: answer every datagram with the 4-byte time."""
    raise NotImplementedError("TODO: serve_time_udp(host, port)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "daytime":
        serve_daytime("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "time":
        serve_time_udp("127.0.0.1", int(sys.argv[2]))
    else:
        print(__doc__)
    _ = (socket, struct, time)  # you will need them
