"""Lab 5: the daytime (RFC 867) and time (RFC 868) services (instructor's reference solution)."""
import socket
import struct
import sys
import time

DAYTIME_FORMAT = "%A, %B %d, %Y %H:%M:%S-UTC"

# 1900-01-01 to 1970-01-01: 70 years of 365 days plus 17 leap days
# (1904, 1908, ..., 1968; 1900 is not a leap year).
EPOCH_OFFSET = (70 * 365 + 17) * 86400  # 2208988800


def daytime_text(when):
    """The daytime reply for Unix time ``when``: the date in DAYTIME_FORMAT (UTC), then CRLF."""
    return time.strftime(DAYTIME_FORMAT, time.gmtime(when)) + "\r\n"


def time_value(when):
    """RFC 868 time: whole seconds since 1900-01-01 00:00 UTC."""
    return int(when) + EPOCH_OFFSET


def encode_time(when):
    """The 4-byte RFC 868 reply: 32 bits, big-endian, wrapping in 2036."""
    return struct.pack(">I", time_value(when) % 2**32)


def decode_time(data):
    """Unix time from a 4-byte RFC 868 reply."""
    if len(data) != 4:
        raise ValueError(f"an RFC 868 time is 4 bytes, got {len(data)}")
    return struct.unpack(">I", data)[0] - EPOCH_OFFSET


def serve_daytime(host, port):
    """TCP daytime server: one line per client, then close."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen()
        while True:
            conn, _ = listener.accept()
            with conn:
                try:
                    conn.sendall(daytime_text(time.time()).encode("ascii"))
                except OSError:
                    pass  # the client left already


def serve_time_udp(host, port):
    """UDP time server: answer every datagram with the 4-byte time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        while True:
            _, addr = sock.recvfrom(65535)
            sock.sendto(encode_time(time.time()), addr)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "daytime":
        serve_daytime("127.0.0.1", int(sys.argv[2]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "time":
        serve_time_udp("127.0.0.1", int(sys.argv[2]))
    else:
        print(__doc__)
