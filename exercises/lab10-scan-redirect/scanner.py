"""Lab 10, part 1: a TCP connect scanner for your own machine.

Scan only hosts you own or have written permission to scan. This scanner
refuses anything but this machine (the loopback network).

Fill in the TODOs, then check your work with:

    netlab lab check 10

Try it:  python scanner.py 1-1024
"""
import ipaddress
import socket
import sys


def scan(host, ports, timeout=0.5):
    """Return the sorted list of ``ports`` on ``host`` that accept a TCP connection.

    Raise ValueError (before sending anything) if ``host`` is not a loopback address.
    """
    # TODO: the ethics check first.
    # TODO: for each port: a socket, a timeout, connect_ex, close.
    raise NotImplementedError("TODO: scan(host, ports, timeout)")


if __name__ == "__main__":
    first, _, last = (sys.argv[1] if len(sys.argv) > 1 else "1-1024").partition("-")
    print(scan("127.0.0.1", range(int(first), int(last or first) + 1)))
    _ = (ipaddress, socket)  # you will need them
