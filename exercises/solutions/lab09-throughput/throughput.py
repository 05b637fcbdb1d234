"""Lab 9: throughput and loss (instructor's reference solution)."""
import socket
import struct
import threading
import time


def loss_percent(sent, received):
    """Percentage of datagrams lost (0.0 when nothing was sent).

    UDP may duplicate a datagram, so more may arrive than were sent: that is
    no loss (0.0), never a negative one. Negative counts are a ValueError.
    """
    if sent < 0 or received < 0:
        raise ValueError(f"counts cannot be negative: sent {sent}, received {received}")
    if sent == 0 or received >= sent:
        return 0.0
    return 100.0 * (sent - received) / sent


def set_rcvbuf(sock, size):
    """Ask for a receive buffer; return what the kernel granted (Linux doubles, caps at rmem_max)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def udp_blast(host, port, count, size, rate):
    """Send ``count`` numbered datagrams of ``size`` bytes at ``rate`` per second."""
    padding = bytes(max(0, size - 4))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        for i in range(count):
            if rate:
                # Schedule from the start, not from the last send: sleep()
                # oversleeps a little each time, and that must not add up.
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            sock.sendto(struct.pack(">I", i) + padding, (host, port))
    return count


def udp_count(sock, idle):
    """Receive until nothing arrives for ``idle`` seconds: (datagrams, bytes)."""
    sock.settimeout(idle)
    datagrams = nbytes = 0
    while True:
        try:
            data = sock.recv(65535)
        except socket.timeout:
            return datagrams, nbytes
        datagrams += 1
        nbytes += len(data)


def measure_loss(rate, count, size, rcvbuf):
    """One loss experiment on loopback, receiver and sender at the same time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        granted = set_rcvbuf(rx, rcvbuf)
        rx.bind(("127.0.0.1", 0))
        port = rx.getsockname()[1]
        counted = {}
        receiver = threading.Thread(target=lambda: counted.update(n=udp_count(rx, 0.3)[0]))
        receiver.start()
        sent = udp_blast("127.0.0.1", port, count, size, rate)
        receiver.join()
    received = counted["n"]
    return {"rate": rate, "count": count, "size": size, "rcvbuf": granted,
            "sent": sent, "received": received, "loss_percent": loss_percent(sent, received)}


def tcp_bulk(host, port, nbytes):
    """Send ``nbytes`` to a TCP sink; megabits per second until the sink closed."""
    chunk = bytes(1 << 16)
    start = time.monotonic()
    with socket.create_connection((host, port)) as sock:
        left = nbytes
        while left > 0:
            piece = chunk if left >= len(chunk) else chunk[:left]
            sock.sendall(piece)
            left -= len(piece)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass  # the sink closes once it has everything
    elapsed = time.monotonic() - start
    return nbytes * 8 / 1e6 / elapsed


if __name__ == "__main__":
    print("rate/s   rcvbuf   sent  received  loss%")
    for rate in (1000, 10000, 0):
        for rcvbuf in (4096, 1 << 20):
            row = measure_loss(rate, 2000, 1000, rcvbuf)
            print(f"{rate:6}  {rcvbuf:7}  {row['sent']:5}  {row['received']:8}  {row['loss_percent']:5.1f}")
