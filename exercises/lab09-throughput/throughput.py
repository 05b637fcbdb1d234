"""Lab 9: throughput and loss.

Fill in the TODOs, then check your work with:

    netlab lab check 9

Run the experiments with:  python throughput.py
"""
import socket
import struct
import sys
import threading
import time


def loss_percent(sent, received):
    """Percentage of datagrams lost (0.0 when nothing was sent).

    UDP may duplicate a datagram, so more may arrive than were sent: that is
    no loss (0.0), never a negative one. Negative counts raise ValueError.
    """
    raise NotImplementedError("TODO: loss_percent(sent, received)")


def set_rcvbuf(sock, size):
    """Ask for a receive buffer of ``size`` bytes; return the size the kernel granted."""
    # TODO: setsockopt, then ask the socket what it really got.
    raise NotImplementedError("TODO: set_rcvbuf(sock, size)")


def udp_blast(host, port, count, size, rate):
    """Send ``count`` numbered datagrams of ``size`` bytes at ``rate`` per second.

    Datagram i starts with i as a 4-byte big-endian number. rate 0 means as
    fast as possible. Return the number of datagrams sent.
    """
    # TODO: when should datagram i leave? Sleep until then (do not drift).
    raise NotImplementedError("TODO: udp_blast(host, port, count, size, rate)")


def udp_count(sock, idle):
    """Receive on ``sock`` until nothing arrives for ``idle`` seconds: (datagrams, bytes)."""
    raise NotImplementedError("TODO: udp_count(sock, idle)")


def measure_loss(rate, count, size, rcvbuf):
    """One experiment on loopback: blast ``count`` datagrams at ``rate`` into a receiver
    with a ``rcvbuf``-byte buffer that counts them at the same time.

    Return {"rate", "count", "size", "rcvbuf", "sent", "received", "loss_percent"}.
    """
    # TODO: a receiving socket on 127.0.0.1 port 0, set_rcvbuf, a thread running udp_count,
    # TODO: udp_blast, join the thread, compute the loss.
    raise NotImplementedError("TODO: measure_loss(rate, count, size, rcvbuf)")


def tcp_bulk(host, port, nbytes):
    """Send ``nbytes`` to a TCP sink; return the rate in megabits per second.

    Time it until the data has really arrived: half-close and wait for the
    server to close, not just until sendall() returns.
    """
    raise NotImplementedError("TODO: tcp_bulk(host, port, nbytes)")


if __name__ == "__main__":
    print("rate/s   rcvbuf   sent  received  loss%")
    for rate in (1000, 10000, 0):
        for rcvbuf in (4096, 1 << 20):
            row = measure_loss(rate, 2000, 1000, rcvbuf)
            print(f"{rate:6}  {rcvbuf:7}  {row['sent']:5}  {row['received']:8}  {row['loss_percent']:5.1f}")
    _ = (socket, struct, sys, threading, time)  # you will need them
