"""Live capture on loopback with a Linux packet socket (``AF_PACKET``, packet(7)).

A packet socket bound to ``lo`` sees every frame twice: once leaving
(``PACKET_OUTGOING``) and once arriving (``PACKET_HOST``); we keep the
arriving copy only, so each packet shows once, as tcpdump shows it. Opening
one needs root or the CAP_NET_RAW capability.

Library use (what ``netlab tour`` calls)::

    from netlab.sniff import sniff, annotate_handshake
    records = sniff(port=7007, count=10, timeout=5)   # list of (Record, frame bytes)
    for rec, frame, note in annotate_handshake(records): ...
"""
from __future__ import annotations

import errno
import select
import socket
import struct
import time
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

from netlab import packet
from netlab.dissect import Annotator, Record
from netlab.errors import NetlabError
from netlab.packet import fields as F
from netlab.packet.fields import S_L4

__all__ = ["CaptureNotAllowed", "annotate_handshake", "capture_allowed", "iter_sniff", "sniff"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class CaptureNotAllowed(NetlabError):
    """This process may not open a packet socket."""


def capture_allowed() -> bool:
    """True when this process may open a packet socket (root or CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)).close()
        return True
    except (OSError, AttributeError):  # PermissionError is an OSError
        return False


# --- a kernel-side filter (classic BPF, SO_ATTACH_FILTER; see socket(7), filter docs) ---
#
# Everything on lo reaches a packet socket, including other programs' bulk
# traffic; decoding it all in Python would overflow the socket buffer and
# lose the packets we want. With a port, the kernel keeps only TCP/UDP frames
# with that port at either end (Ethernet framing, as on lo; IPv6 without
# extension headers), so the buffer holds just the conversation.

_LDH, _LDB, _LDH_X, _LDX_IHL, _JEQ, _JSET, _RET = 0x28, 0x30, 0x48, 0xB1, 0x15, 0x45, 0x06
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33


def _bpf_port(port: int) -> List[Tuple[int, int, int, int]]:
    """The program as (code, jump-if-true, jump-if-false, k); jumps count from the next one."""
    prog = [
        ("ldh", 12),                          # 0: ethertype
        ("jeq", 0x0800, "v4", None),          # 1
        ("jeq", 0x86DD, None, "drop"),        # 2
        ("ldb", 20),                          # 3: IPv6 next header
        ("jeq", 6, "v6ports", None),          # 4
        ("jeq", 17, None, "drop"),            # 5
        ("ldh", 54, "v6ports"),               # 6: source port (14 + 40)
        ("jeq", port, "accept", None),        # 7
        ("ldh", 56),                          # 8: destination port
        ("jeq", port, "accept", "drop"),      # 9
        ("ldb", 23, "v4"),                    # 10: IPv4 protocol
        ("jeq", 6, "v4frag", None),           # 11
        ("jeq", 17, None, "drop"),            # 12
        ("ldh", 20, "v4frag"),                # 13: flags + fragment offset
        ("jset", 0x1FFF, "drop", None),       # 14: a later fragment has no ports
        ("ldx_ihl", 14),                      # 15: X = IPv4 header length
        ("ldh_x", 14),                        # 16: source port at X + 14
        ("jeq", port, "accept", None),        # 17
        ("ldh_x", 16),                        # 18: destination port
        ("jeq", port, "accept", "drop"),      # 19
        ("ret", 262144, "accept"),            # 20: keep the frame (whole)
        ("ret", 0, "drop"),                   # 21: drop it
    ]
    labels = {}
    for i, ins in enumerate(prog):
        if ins[0] in ("ldh", "ldb", "ret") and len(ins) == 3:
            labels[ins[2]] = i
    out = []
    for i, ins in enumerate(prog):
        op = ins[0]
        if op in ("jeq", "jset"):
            jt = labels[ins[2]] - i - 1 if ins[2] else 0
            jf = labels[ins[3]] - i - 1 if ins[3] else 0
            out.append((_JEQ if op == "jeq" else _JSET, jt, jf, ins[1]))
        else:
            code = {"ldh": _LDH, "ldb": _LDB, "ldh_x": _LDH_X, "ldx_ihl": _LDX_IHL, "ret": _RET}[op]
            out.append((code, 0, 0, ins[1]))
    return out


def _attach_port_filter(sock: socket.socket, port: int) -> None:
    import ctypes

    prog = _bpf_port(port)
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _open(interface: str) -> socket.socket:
    if not hasattr(socket, "AF_PACKET"):
        raise NetlabError("live capture needs Linux packet sockets (AF_PACKET); "
                          "on this system use tcpdump -w FILE and then: netlab dissect FILE")
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except PermissionError:
        raise CaptureNotAllowed(
            "live capture needs root or CAP_NET_RAW (run it with sudo, or capture with "
            "tcpdump -w FILE and read it with: netlab dissect FILE)") from None
    try:
        sock.bind((interface, 0))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENODEV, errno.ENXIO):
            raise NetlabError(f"no network interface named {interface!r} "
                              "(list them with: ip link)") from None
        raise
    return sock


def iter_sniff(port: Optional[int] = None, count: Optional[int] = None,
               timeout: Optional[float] = None, interface: str = "lo",
               predicate: Optional[Callable[[tuple], bool]] = None,
               ready: Optional[Callable[[], None]] = None) -> Iterator[Tuple[Record, bytes]]:
    """Yield ``(Record, frame)`` for each packet seen on ``interface``.

    Stops after ``count`` matching packets or ``timeout`` seconds, whichever
    comes first (neither: until interrupted). ``port`` keeps TCP/UDP packets
    with that port at either end. ``ready`` is called once the socket listens,
    so a caller can start its traffic without racing the capture.
    """
    sock = _open(interface)
    loopback = interface == "lo"  # elsewhere an outgoing frame is seen once, outgoing
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    except OSError:
        pass  # keep the default buffer
    if port is not None:
        try:
            _attach_port_filter(sock, port)
        except OSError:
            pass  # no kernel filter: the Python check below still applies
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    try:
        if ready is not None:
            ready()
        while count is None or seen < count:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return
            readable, _, _ = select.select([sock], [], [], wait)
            if not readable:
                return
            frame, addr = sock.recvfrom(262144)
            if addr[2] == PACKET_OUTGOING and loopback:
                continue  # the same frame arrives again as incoming on lo
            rec = packet.decode_frame(frame, 1, False, time.time_ns(), -1)
            if port is not None and not (rec[F.STATUS] & S_L4 and rec[F.PROTO] in (6, 17)
                                         and port in (rec[F.SPORT], rec[F.DPORT])):
                continue
            if predicate is not None and not predicate(rec):
                continue
            seen += 1
            yield Record._make(rec), frame
    finally:
        sock.close()


def sniff(port: Optional[int] = None, count: Optional[int] = None,
          timeout: Optional[float] = 5.0, interface: str = "lo",
          ready: Optional[Callable[[], None]] = None) -> List[Tuple[Record, bytes]]:
    """Capture on loopback and return the list of ``(Record, frame)`` pairs."""
    return list(iter_sniff(port=port, count=count, timeout=timeout, interface=interface,
                           ready=ready))


def annotate_handshake(records: Iterable) -> List[Tuple[Record, bytes, Optional[str]]]:
    """Pair each ``(Record, frame)`` with its TCP step: SYN, SYN-ACK, ACK ... FIN, RST."""
    annotator = Annotator()
    return [(rec, frame, annotator.note(rec)) for rec, frame in records]
