"""Lab 12: a UDP pinger, with timeouts and round-trip statistics (reference solution)."""
import math
import socket
import sys
import time


def summarize(rtts):
    """Statistics of one ping run: ``rtts`` has one entry per ping, the RTT in ms or None if lost."""
    sent = len(rtts)
    got = [r for r in rtts if r is not None]
    out = {"sent": sent, "received": len(got), "lost": sent - len(got),
           "loss_percent": 100.0 * (sent - len(got)) / sent if sent else 0.0,
           "min": None, "avg": None, "max": None, "stddev": None}
    if got:
        avg = sum(got) / len(got)
        out.update(min=min(got), avg=avg, max=max(got),
                   stddev=math.sqrt(sum((r - avg) ** 2 for r in got) / len(got)))
    return out


def ping(host, port, count=10, timeout=1.0):
    """Send ``count`` pings, one after another; their RTTs in ms (None for a ping that timed out)."""
    rtts = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for seq in range(1, count + 1):
            start = time.monotonic()
            sock.sendto(b"Ping %d %.6f" % (seq, time.time()), (host, port))
            deadline = start + timeout
            rtt = None
            while rtt is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    data, _ = sock.recvfrom(2048)
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    continue    # ICMP port unreachable for an earlier ping: no reply for this one
                fields = data.split()
                # Only the reply to *this* ping counts: a late or duplicated
                # reply to an earlier one says nothing about this round trip.
                if len(fields) >= 2 and fields[0] == b"Ping" and fields[1] == str(seq).encode():
                    rtt = (time.monotonic() - start) * 1000.0
            rtts.append(rtt)
    return rtts


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
