"""Lab 12: a UDP pinger, with timeouts and round-trip statistics.

Fill in the TODOs, then check your work with:

    netlab lab check 12

Try it by hand, through a lossy link, in three terminals:

    netlab echo --udp 9007
    netlab redirect --udp --loss 0.2 --delay 30 --seed 1 9107 127.0.0.1:9007
    python pinger.py 9107 10
"""
import socket
import sys
import time


def summarize(rtts):
    """Statistics of one ping run.

    ``rtts`` has one entry per ping sent: the round-trip time in milliseconds,
    or None when no reply came in time. Return a dict with ``sent``,
    ``received``, ``lost``, ``loss_percent`` and ``min``, ``avg``, ``max``,
    ``stddev`` of the RTTs (ms; None when nothing came back).
    """
    # TODO: count, then the four statistics of the replies that came.
    raise NotImplementedError("TODO: summarize(rtts)")


def ping(host, port, count=10, timeout=1.0):
    """Send ``count`` pings to the UDP echo server at (host, port), one after another.

    Ping number ``seq`` (1, 2, ...) is the datagram ``b"Ping <seq> <time>"``.
    Wait up to ``timeout`` seconds for *its* reply, then go on with the next.
    Return the list of RTTs in ms, None for each ping that timed out.
    """
    # TODO: one UDP socket; for each ping: send, wait for the matching reply, measure.
    raise NotImplementedError("TODO: ping(host, port, count, timeout)")


def report(host, port, count=10, timeout=1.0):
    """Ping and print each reply and the summary, like the ping command."""
    rtts = ping(host, port, count, timeout)
    for seq, rtt in enumerate(rtts, 1):
        print("seq=%d %s" % (seq, "time=%.3f ms" % rtt if rtt is not None else "Request timed out"))
    s = summarize(rtts)
    print("%d packets transmitted, %d received, %.1f%% packet loss"
          % (s["sent"], s["received"], s["loss_percent"]))
    if s["received"]:
        print("rtt min/avg/max/stddev = %.3f/%.3f/%.3f/%.3f ms" % (s["min"], s["avg"], s["max"], s["stddev"]))
    return s


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
    else:
        report("127.0.0.1", int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    _ = (socket, time)  # you will need them
