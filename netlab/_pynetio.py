"""Socket loops of ``netlab bench``, in plain Python: the readable reference.

The compiled twin ``netlab._netio`` (``src_c/_netio.pyx``) has the same names
and gives the same counter results; it only batches system calls
(``sendmmsg``/``recvmmsg``) and runs its loops with the GIL released. Read this
module to see *what* the benchmark does; run the twin to see what batching buys.

Three experiments live here:

* **UDP datagrams with stamps.** Every datagram starts with a 20-byte stamp:
  ``b"NLB1"``, a 64-bit sequence number and the 64-bit send time in
  nanoseconds of the monotonic clock (the same clock for every process of the
  machine, so sender and receiver may be different processes). The receiver
  feeds each datagram to :class:`UdpCounters`, which counts what a
  connectionless service cannot prevent: loss, duplication, reordering, and
  the interarrival jitter of RFC 3550 (section 6.4.1).
* **TCP bulk transfer.** The sender writes a stream whose byte at offset ``k``
  is ``k % 251`` (a prime period, so a lost, repeated or shifted block is
  caught); the receiver checks every byte against it.
* **Echo round trips.** :class:`EchoLoad` keeps N connections busy in a closed
  loop (send a request, wait for all of it to come back, record the time) and
  keeps every round-trip time for percentiles.

Every loop runs until a deadline on the monotonic clock (``time.monotonic_ns``)
and returns, so the caller can print progress, honour Ctrl-C and stop on time.
"""
from __future__ import annotations

import errno
import select
import selectors
import socket
import struct
import time
from typing import List, Optional, Tuple

__all__ = [
    "BACKEND",
    "BATCH",
    "EchoLoad",
    "HAVE_MMSG",
    "MAGIC",
    "MAX_GSO_SEGMENTS",
    "MAX_SEQ",
    "NAP_NS",
    "PATTERN_PERIOD",
    "SMALL_WAKE",
    "STAMP_SIZE",
    "UdpCounters",
    "encode_stamp",
    "monotonic_ns",
    "parse_stamp",
    "pattern",
    "ping_pong",
    "tcp_discard",
    "tcp_recv",
    "tcp_send",
    "udp_echo",
    "udp_recv",
    "udp_send",
]

BACKEND = "python"
HAVE_MMSG = False      # this twin makes one system call per datagram, on purpose
BATCH = 1              # datagrams per system call
MAGIC = b"NLB1"
STAMP_SIZE = 20        # magic (4) + sequence number (8) + send time in ns (8)
# Sequence numbers above this are treated as foreign: the duplicate detector
# keeps one bit per sequence number (32 MiB at most), and no bounded run of a
# few minutes gets near 268 million datagrams.
MAX_SEQ = (1 << 28) - 1
PATTERN_PERIOD = 251   # TCP stream byte k is k % 251
# The UDP receiver drains its queue, then naps NAP_NS so that the next call
# finds many datagrams waiting, as long as a wake-up brings SMALL_WAKE or more
# (see udp_recv).
NAP_NS = 100_000
SMALL_WAKE = 16
MAX_GSO_SEGMENTS = 64  # the kernel's UDP_MAX_SEGMENTS: datagrams per GSO send

_STAMP = struct.Struct(">4sQQ")

monotonic_ns = time.monotonic_ns


def encode_stamp(seq: int, send_ns: int, size: int = STAMP_SIZE) -> bytes:
    """A datagram of ``size`` bytes (at least STAMP_SIZE) stamped with seq and time."""
    if size < STAMP_SIZE:
        raise ValueError(f"a stamped datagram needs at least {STAMP_SIZE} bytes, got {size}")
    buf = bytearray(size)
    _STAMP.pack_into(buf, 0, MAGIC, seq, send_ns)
    return bytes(buf)


def parse_stamp(data) -> Optional[Tuple[int, int]]:
    """``(seq, send_ns)`` of a stamped datagram, or None when it carries no stamp."""
    if len(data) < STAMP_SIZE:
        return None
    magic, seq, send_ns = _STAMP.unpack_from(data, 0)
    if magic != MAGIC:
        return None
    return seq, send_ns


class UdpCounters:
    """What the receiver of stamped datagrams saw.

    * ``received``: distinct datagrams (each sequence number counts once);
    * ``duplicated``: extra copies of a sequence number already received;
    * ``reordered``: datagrams that arrived after one with a higher sequence
      number (RFC 4737's definition: seq below the next expected one);
    * ``foreign``: datagrams without a valid stamp (ignored otherwise);
    * ``jitter``: RFC 3550 interarrival jitter, in ns, over distinct datagrams
      in arrival order: ``J += (|D| - J) / 16`` where ``D`` is the change in
      transit time (arrival - send) from the previous datagram.

    Loss is not counted here: only the sender knows how many it sent, so
    ``lost = sent - received``.
    """

    def __init__(self) -> None:
        self.received = 0
        self.duplicated = 0
        self.reordered = 0
        self.foreign = 0
        self.bytes = 0
        self.highest_seq = -1
        self.jitter_ns = 0.0
        self._last_transit = 0
        self._seen = bytearray()  # one bit per sequence number

    def feed(self, data, arrival_ns: int) -> None:
        """Count one datagram that arrived at ``arrival_ns`` (monotonic clock)."""
        stamp = parse_stamp(data)
        if stamp is None or stamp[0] > MAX_SEQ:
            self.foreign += 1
            return
        seq, send_ns = stamp
        byte, bit = seq >> 3, 1 << (seq & 7)
        if byte >= len(self._seen):
            # Grow the bitmap by doubling, so growing costs O(1) amortised.
            self._seen.extend(bytes(max(byte + 1, 2 * len(self._seen), 4096) - len(self._seen)))
        if self._seen[byte] & bit:
            self.duplicated += 1
            return
        self._seen[byte] |= bit
        self.received += 1
        self.bytes += len(data)
        if seq < self.highest_seq:
            self.reordered += 1
        else:
            self.highest_seq = seq
        transit = arrival_ns - send_ns
        if self.received > 1:
            d = transit - self._last_transit
            self.jitter_ns += (float(abs(d)) - self.jitter_ns) / 16.0
        self._last_transit = transit

    def result(self) -> dict:
        """The counters as a dict (jitter in microseconds)."""
        return {
            "received": self.received,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "foreign": self.foreign,
            "bytes": self.bytes,
            "highest_seq": self.highest_seq,
            "jitter_us": round(self.jitter_ns / 1000.0, 3),
        }


def udp_send(sock: socket.socket, size: int, seq: int, t0_ns: int, rate: float,
             deadline_ns: int, gso: int = 0) -> Tuple[int, int, int]:
    """Send stamped datagrams numbered ``seq, seq+1, ...`` until ``deadline_ns``.

    ``sock`` is a connected UDP socket. With ``rate`` > 0 datagram ``k`` is
    due at ``t0_ns + k / rate`` seconds (so pacing holds across calls); with
    0 it sends as fast as it can. With ``gso`` > 0 the socket has UDP_SEGMENT
    set to ``size`` (generic segmentation offload): one ``send`` carries
    ``gso`` stamped datagrams back to back and the kernel cuts them apart.
    Returns ``(sent, errors, last_errno)``; a failed send is retried with the
    same sequence numbers.
    """
    if not 0 <= gso <= MAX_GSO_SEGMENTS or (gso and rate > 0):
        raise ValueError("gso: 0 or 1-64 segments per message, and not with a paced rate")
    seg = gso or 1
    buf = bytearray(encode_stamp(0, 0, size) * seg)
    sent = errors = last_errno = 0
    interval = 1e9 / rate if rate > 0 else 0.0
    now = monotonic_ns()
    while now < deadline_ns:
        if interval:
            due = t0_ns + int(seq * interval)
            if due > now:
                time.sleep((min(due, deadline_ns) - now) / 1e9)
                now = monotonic_ns()
                continue
        for k in range(seg):
            _STAMP.pack_into(buf, k * size, MAGIC, seq + k, now)
        try:
            sock.send(buf)
        except OSError as exc:
            errors += 1
            last_errno = exc.errno or 0
            if exc.errno == errno.ECONNREFUSED:
                time.sleep(0.001)  # nobody listens yet: do not spin
        else:
            sent += seg
            seq += seg
        now = monotonic_ns()
    return sent, errors, last_errno


def udp_recv(sock: socket.socket, counters: UdpCounters, deadline_ns: int,
             bufsize: int = 65536, nap_ns: int = NAP_NS) -> int:
    """Receive datagrams into ``counters`` until ``deadline_ns``; return how many.

    Drain, then nap when napping pays. Every wake-up drains the queue (reads
    without blocking until it is empty). A receiver that *blocks* until the
    next datagram is woken for every one or two when it keeps up, and each
    wake-up costs more than the datagrams it brings; so a blocking wake-up
    that brought fewer than SMALL_WAKE datagrams makes the next wait a *nap*
    of ``nap_ns``, after which many datagrams are waiting (the receive buffer
    must hold what arrives during a nap: ``nap_ns`` x the rate). A nap that
    brought fewer than SMALL_WAKE means the rate is low, and on a busy
    machine a blocked receiver is woken late and finds a full queue anyway:
    then the next wait blocks again. ``nap_ns=0`` always blocks (the old
    design). One ``recv_into`` per datagram; its arrival time is read right
    after it.
    """
    buf = bytearray(bufsize)
    view = memoryview(buf)
    got = 0
    wake = 0            # datagrams this wake-up brought so far
    napping = False
    while True:
        try:
            n = sock.recv_into(buf, bufsize, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            left = deadline_ns - monotonic_ns()
            if left <= 0:
                return got
            # Drained: this wake-up is over. Was it worth it?
            if nap_ns > 0:
                napping = wake >= SMALL_WAKE if napping else 0 < wake < SMALL_WAKE
            wake = 0
            if napping:
                time.sleep(nap_ns / 1e9)
            else:
                select.select([sock], [], [], min(left, 10_000_000) / 1e9)
            continue
        except ConnectionRefusedError:
            continue  # an ICMP error queued on the socket: not a datagram
        arrival = monotonic_ns()
        counters.feed(view[:n], arrival)
        got += 1
        wake += 1
        if got & 63 == 0 and arrival >= deadline_ns:
            return got


def udp_echo(sock: socket.socket, deadline_ns: int) -> int:
    """Echo every datagram on ``sock`` back to its sender until ``deadline_ns``.

    The RFC 862 echo over UDP, reduced to its loop: ``recvfrom``, ``sendto``
    the same bytes. Returns the datagrams echoed; a reply that cannot be sent
    is dropped, as UDP may.
    """
    buf = bytearray(65536)
    view = memoryview(buf)
    echoed = 0
    while True:
        left = deadline_ns - monotonic_ns()
        if left <= 0:
            return echoed
        if not select.select([sock], [], [], min(left, 10_000_000) / 1e9)[0]:
            continue
        try:
            n, addr = sock.recvfrom_into(buf, len(buf), socket.MSG_DONTWAIT)
            sock.sendto(view[:n], addr)
        except OSError:
            continue          # nothing there after all, or the reply could not go out
        echoed += 1


def _put_seq(req: bytearray, seq: int) -> None:
    # The request number in the first (up to) 8 bytes, big-endian.
    k = min(len(req), 8)
    req[:k] = (seq & ((1 << (8 * k)) - 1)).to_bytes(k, "big")


def ping_pong(sock: socket.socket, size: int, seq: int, deadline_ns: int, udp: bool,
              timeout_ns: int = 200_000_000) -> Tuple[List[int], int]:
    """Round trips of ``size`` bytes on a connected ``sock`` until ``deadline_ns``.

    One request at a time: send it (request ``seq`` carries its number in its
    first bytes), wait until all of it came back, record the time, send the
    next. Returns ``(samples_ns, lost)``. Over UDP a request without an answer
    within ``timeout_ns`` counts as lost, and a reply that is not the request
    just sent (a late answer to an earlier one) is ignored. Over TCP the echo
    must come back whole; a stream that stops answering is an error.
    """
    req = bytearray(i % PATTERN_PERIOD for i in range(size))
    buf = bytearray(size + 1)
    view = memoryview(buf)
    samples: List[int] = []
    lost = 0
    sock.settimeout(0.01)    # look at the clock every 10 ms while waiting
    try:
        while monotonic_ns() < deadline_ns:
            _put_seq(req, seq)
            seq += 1
            t0 = monotonic_ns()
            try:
                if udp:
                    sock.send(req)
                else:
                    sock.sendall(req)
            except ConnectionRefusedError:
                if not udp:
                    raise
                lost += 1    # no echo there (yet)
                time.sleep(0.001)
                continue
            off = 0
            answered = False
            while monotonic_ns() - t0 < timeout_ns:
                try:
                    n = sock.recv_into(view[off:], (size + 1) if udp else size - off)
                except socket.timeout:
                    continue
                except ConnectionRefusedError:
                    if not udp:
                        raise
                    break
                if udp:
                    if n == size and buf[:size] == req:
                        answered = True
                        break
                    continue          # a late or foreign reply
                if n == 0:
                    raise ConnectionResetError(errno.ECONNRESET, "the echo server closed")
                off += n
                if off == size:
                    answered = True
                    break
            if answered:
                samples.append(monotonic_ns() - t0)
            elif udp:
                lost += 1
            else:
                raise TimeoutError(errno.ETIMEDOUT, "the echo server stopped answering")
    finally:
        sock.settimeout(None)
    return samples, lost


def pattern(length: int) -> bytes:
    """``length + PATTERN_PERIOD`` bytes of the TCP test stream from offset 0.

    Any window of ``length`` bytes of the stream starting at offset ``k`` is
    ``pattern(length)[k % PATTERN_PERIOD:][:length]``.
    """
    return bytes(i % PATTERN_PERIOD for i in range(length + PATTERN_PERIOD))


def tcp_send(sock: socket.socket, pat: bytes, bufsize: int, offset: int,
             deadline_ns: int) -> int:
    """Write the test stream from ``offset`` in blocks of ``bufsize`` until the deadline.

    Returns the bytes written. ``pat`` is :func:`pattern` ``(bufsize)``.
    """
    view = memoryview(pat)
    total = 0
    while monotonic_ns() < deadline_ns:
        start = (offset + total) % PATTERN_PERIOD
        try:
            total += sock.send(view[start:start + bufsize])
        except (BlockingIOError, InterruptedError):
            continue  # SO_SNDTIMEO expired: look at the clock again
    return total


def tcp_recv(sock: socket.socket, pat: bytes, buf: bytearray, offset: int,
             deadline_ns: int) -> Tuple[int, int, bool]:
    """Read the test stream until the deadline or end of stream.

    Returns ``(received, mismatched, eof)``: bytes read, bytes of those that
    differ from the expected stream (a block counts whole when any byte
    differs), and whether the peer closed.
    """
    got = bad = 0
    bufsize = len(buf)
    while monotonic_ns() < deadline_ns:
        try:
            n = sock.recv_into(buf, bufsize)
        except (BlockingIOError, InterruptedError):
            continue  # SO_RCVTIMEO expired
        if n == 0:
            return got, bad, True
        start = (offset + got) % PATTERN_PERIOD
        if buf[:n] != pat[start:start + n]:   # bytes compare: one memcmp
            bad += n
        got += n
    return got, bad, False


def tcp_discard(sock: socket.socket, bufsize: int, deadline_ns: int) -> Tuple[int, bool]:
    """Read the stream without copying it until the deadline or end of stream.

    ``MSG_TRUNC`` on a TCP socket (Linux) drops up to ``bufsize`` bytes from
    the receive queue and says how many: nothing is copied to the program,
    so nothing is checked. Returns ``(received, eof)``.
    """
    got = 0
    sink = bytearray(bufsize)   # never written for TCP; Python wants the room
    while monotonic_ns() < deadline_ns:
        try:
            n = sock.recv_into(sink, bufsize, socket.MSG_TRUNC)
        except (BlockingIOError, InterruptedError):
            continue  # SO_RCVTIMEO expired
        if n == 0:
            return got, True
        got += n
    return got, False


class EchoLoad:
    """N echo connections in a closed loop: send, wait for the echo, repeat.

    ``socks`` are connected TCP sockets (blocking; requests of at most 64 KiB
    always fit in the send buffer while the previous echo is fully read).
    Every round-trip time is kept in ns for percentiles.
    """

    def __init__(self, socks: List[socket.socket], size: int) -> None:
        self.socks = list(socks)
        self.size = size
        self.request = bytes(i % PATTERN_PERIOD for i in range(size))
        self.round_trips = 0
        self.errors = 0
        self.samples: List[int] = []
        self._pending = [0] * len(self.socks)   # bytes still to come back
        self._sent_at = [0] * len(self.socks)
        self._done = [0] * len(self.socks)      # round trips per connection
        self._alive = [True] * len(self.socks)
        self._live = len(self.socks)
        self._sel = selectors.DefaultSelector()
        self._buf = bytearray(max(size, 4096))
        for i, s in enumerate(self.socks):
            self._sel.register(s, selectors.EVENT_READ, i)
        self._started = False

    def _fire(self, i: int) -> None:
        self._sent_at[i] = monotonic_ns()
        try:
            self.socks[i].sendall(self.request)
            self._pending[i] = self.size
        except OSError:
            self._drop(i)

    def _drop(self, i: int) -> None:
        if not self._alive[i]:
            return
        self.errors += 1
        self._alive[i] = False
        self._live -= 1
        try:
            self._sel.unregister(self.socks[i])
        except (KeyError, ValueError):
            pass

    def run(self, deadline_ns: int) -> int:
        """Keep the loop going until ``deadline_ns``; return round trips in this call."""
        if not self._started:
            self._started = True
            for i in range(len(self.socks)):
                self._fire(i)
        done = 0
        while self._live:
            left = deadline_ns - monotonic_ns()
            if left <= 0:
                break
            for key, _ in self._sel.select(left / 1e9):
                i = key.data
                try:
                    n = self.socks[i].recv_into(self._buf, self._pending[i], socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    self._drop(i)
                    continue
                if n == 0:
                    self._drop(i)
                    continue
                self._pending[i] -= n
                if self._pending[i] == 0:
                    self.samples.append(monotonic_ns() - self._sent_at[i])
                    self._done[i] += 1
                    done += 1
                    self._fire(i)
        self.round_trips += done
        return done

    def latencies(self) -> List[int]:
        """Every round-trip time measured so far, in ns, in completion order."""
        return list(self.samples)

    def per_client(self) -> List[int]:
        """Round trips completed by each connection (0: it never got an answer)."""
        return list(self._done)

    def close(self) -> None:
        self._sel.close()
