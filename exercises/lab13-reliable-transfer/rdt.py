"""Lab 13: reliable transfer over UDP, stop-and-wait and a sliding window.

Fill in the TODOs, then check your work with:

    netlab lab check 13

Try it by hand through a bad link, in three terminals:

    python rdt.py receive 9013 > copy.bin
    netlab redirect --udp --loss 0.1 --duplicate 0.05 --reorder 0.1 --delay 20 --seed 1 9113 127.0.0.1:9013
    python rdt.py send 9113 some-file.bin      # or send1: stop-and-wait
    cmp some-file.bin copy.bin

Every datagram is a kind byte, a 4-byte big-endian number, then a payload:
  D n payload   DATA: packet n (0, 1, ...) of the file, at most MSS bytes
  A n           ACK: every packet below n has arrived (cumulative)
  E n           END: the file had n packets; answered with A n+1
"""
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
    # TODO: HEADER.pack, then the payload.
    raise NotImplementedError("TODO: make_packet(kind, number, payload)")


def parse_packet(datagram):
    """``(kind, number, payload)`` of a datagram; ValueError if it is too short or of no known kind."""
    # TODO: check the length and the kind, HEADER.unpack_from.
    raise NotImplementedError("TODO: parse_packet(datagram)")


def send_stop_and_wait(host, port, data, timeout=0.2):
    """Send ``data`` reliably to the receiver at (host, port), one packet at a time.

    Cut it into packets of MSS bytes; send each until an ACK covers it,
    sending again after ``timeout`` seconds without one; then END until it is
    acknowledged (at most END_TRIES times). Return the number of DATA
    datagrams sent, retransmissions included.
    """
    # TODO: one UDP socket, a loop over the packets, a timeout, ignore stale ACKs.
    raise NotImplementedError("TODO: send_stop_and_wait(host, port, data, timeout)")


def send_window(host, port, data, window=8, timeout=0.2):
    """Like send_stop_and_wait, but with up to ``window`` packets unacknowledged in flight.

    Return the number of DATA datagrams sent, retransmissions included.
    """
    # TODO: base (oldest unacknowledged) and next (next to send); one timer.
    raise NotImplementedError("TODO: send_window(host, port, data, window, timeout)")


def receive(port, idle=3.0, linger=0.3):
    """Receive one transfer on UDP port ``port`` of 127.0.0.1 and return its bytes.

    Answer every DATA with a cumulative ACK, keep early packets until the gap
    before them is filled, answer END n with ACK n+1 and keep answering for
    ``linger`` seconds more. Raise TimeoutError when nothing arrives for
    ``idle`` seconds.
    """
    # TODO: bind, loop over datagrams, a dict of packets by number.
    raise NotImplementedError("TODO: receive(port, idle, linger)")


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
    _ = (socket, time)  # you will need them
