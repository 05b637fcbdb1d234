"""Lab 13: reliable transfer over UDP, stop-and-wait and a sliding window (reference solution)."""
import socket
import struct
import sys
import time

MSS = 1000          # payload bytes per DATA datagram
HEADER = struct.Struct(">cI")
DATA, ACK, END = b"D", b"A", b"E"
END_TRIES = 10      # END is sent at most this often without an ACK


def make_packet(kind, number, payload=b""):
    """One datagram: a kind byte (D, A or E), a 4-byte big-endian number, the payload."""
    return HEADER.pack(kind, number) + payload


def parse_packet(datagram):
    """``(kind, number, payload)`` of a datagram; ValueError if it is too short or of no known kind."""
    if len(datagram) < HEADER.size:
        raise ValueError("a datagram shorter than the 5-byte header")
    kind, number = HEADER.unpack_from(datagram)
    if kind not in (DATA, ACK, END):
        raise ValueError("unknown kind %r" % kind)
    return kind, number, datagram[HEADER.size:]


def chunks(data):
    return [data[i:i + MSS] for i in range(0, len(data), MSS)]


def _acks(sock):
    """Every ACK number waiting on ``sock`` now or within its timeout (bad datagrams skipped)."""
    got = []
    while True:
        try:
            datagram = sock.recv(2048)
        except (socket.timeout, BlockingIOError):
            return got
        except ConnectionRefusedError:
            continue
        try:
            kind, number, _ = parse_packet(datagram)
        except ValueError:
            continue
        if kind == ACK:
            got.append(number)
        sock.settimeout(0)    # drain what else is there without waiting


def _finish(sock, addr, count, timeout):
    """Send END until the receiver acknowledges it (ACK count + 1), at most END_TRIES times."""
    for _ in range(END_TRIES):
        sock.sendto(make_packet(END, count), addr)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            if count + 1 in _acks(sock):
                return True
    return False


def send_window(host, port, data, window=8, timeout=0.2):
    """Send ``data`` reliably with a sliding window of ``window`` packets (go-back-N).

    Returns the number of DATA datagrams sent (retransmissions included).
    """
    addr = (host, port)
    packets = chunks(data)
    base = nxt = sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        timer = time.monotonic() + timeout
        while base < len(packets):
            while nxt < len(packets) and nxt < base + window:
                sock.sendto(make_packet(DATA, nxt, packets[nxt]), addr)
                sent += 1
                nxt += 1
            sock.settimeout(max(timer - time.monotonic(), 0.001))
            acks = [n for n in _acks(sock) if base < n <= len(packets)]
            if acks:
                base = max(acks)           # cumulative: everything below is there
                timer = time.monotonic() + timeout
            elif time.monotonic() >= timer:
                nxt = base                 # go back: resend everything not acknowledged
                timer = time.monotonic() + timeout
        _finish(sock, addr, len(packets), timeout)
    return sent


def send_stop_and_wait(host, port, data, timeout=0.2):
    """Send ``data`` reliably, one packet at a time; the number of DATA datagrams sent."""
    return send_window(host, port, data, 1, timeout)


def receive(port, idle=3.0, linger=0.3):
    """Receive one transfer on UDP ``port`` and return its bytes.

    Answer every DATA with a cumulative ACK (the number of the next packet
    needed), keep early packets until the gap before them is filled, and after
    END keep answering for ``linger`` seconds, in case the last ACK was lost.
    Raise TimeoutError when nothing arrives for ``idle`` seconds.
    """
    have, expected, done = {}, 0, None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        while True:
            wait = idle if done is None else done - time.monotonic()
            if wait <= 0:
                return b"".join(have[i] for i in range(expected))
            sock.settimeout(wait)
            try:
                datagram, addr = sock.recvfrom(2048)
            except socket.timeout:
                if done is None:
                    raise TimeoutError("nothing arrived for %g s" % idle) from None
                continue
            try:
                kind, number, payload = parse_packet(datagram)
            except ValueError:
                continue
            if kind == DATA:
                if expected <= number < expected + 1024:
                    have.setdefault(number, payload)
                while expected in have:
                    expected += 1
                sock.sendto(make_packet(ACK, expected), addr)
            elif kind == END and number == expected:
                sock.sendto(make_packet(ACK, expected + 1), addr)
                if done is None:
                    done = time.monotonic() + linger


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "receive":
        sys.stdout.buffer.write(receive(int(sys.argv[2]), idle=30))
    elif len(sys.argv) == 4 and sys.argv[1] in ("send", "send1"):
        with open(sys.argv[3], "rb") as f:
            payload = f.read()
        if sys.argv[1] == "send":
            count = send_window("127.0.0.1", int(sys.argv[2]), payload)
        else:
            count = send_stop_and_wait("127.0.0.1", int(sys.argv[2]), payload)
        print(count, "DATA datagrams", file=sys.stderr)
    else:
        print(__doc__)
