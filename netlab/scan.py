"""Port scanning, the polite way: TCP connect scan and UDP probe.

Scan only hosts you own or have written permission to test. Scanning other
people's machines is at best rude and in many countries illegal; netlab
refuses targets that are not on this machine unless you say you are allowed.

* **TCP connect scan**: a full three-way handshake per port (no raw sockets,
  no root). A completed ``connect()`` means *open*; a RST (``ECONNREFUSED``)
  means *closed*; no answer before the timeout means *filtered* (a firewall
  dropped the SYN).
* **UDP probe**: UDP has no handshake, so a scanner sends a datagram on a
  *connected* UDP socket and listens. A reply means *open*. A closed port makes
  the target's kernel answer with ICMP port unreachable (RFC 792 type 3 code 3),
  which Linux reports on the connected socket as ``ECONNREFUSED``: *closed*.
  Silence means *open|filtered*: an open service that ignores the probe and a
  firewall that drops it look the same. Kernels rate-limit ICMP errors
  (``net.ipv4.icmp_msgs_per_sec``), so UDP scans go slower and retry silence.

Both run many probes at once from one thread (non-blocking sockets and a
selector), at most ``concurrency`` in flight and at most ``rate`` new probes
per second: by default as fast as it goes on this machine and at a polite
pace for any other host (``DEFAULT_PACE``). Each probe socket is bound
before it connects, to a local port other than the one it probes: a socket
connected to its own address talks to itself and makes a closed port look
open (see :func:`_probe_socket`).
"""
from __future__ import annotations

import collections
import errno
import ipaddress
import selectors
import socket
import struct
import time
from typing import Callable, Deque, Dict, List, NamedTuple, Optional, Sequence, Tuple

from netlab import ports as registry
from netlab.binding import check_own_host, family_for, is_own_address, parse_host
from netlab.errors import NetlabError, UsageError

__all__ = ["DEFAULT_PACE", "ETHICS_NOTE", "Pace", "check_target", "default_pace", "is_own_address",
           "parse_ports", "resolve", "scan"]

ETHICS_NOTE = ("Scan only hosts you own or are explicitly allowed to test: scanning other "
               "people's machines is abuse and, in many countries, a crime.")


def parse_ports(text: str) -> List[int]:
    """``"1-1024"``, ``"7,13,19"``, ``"7,10-20"`` -> sorted unique ports (1-65535)."""
    out = set()
    for part in text.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise UsageError(f"invalid port list {text!r}: use forms like 80, 7,13,19 or 1-1024")
        lo, hi = int(first), int(last) if dash else int(first)
        if not 1 <= lo <= 65535 or not 1 <= hi <= 65535:
            raise UsageError(f"invalid port in {text!r}: scan ports run from 1 to 65535 "
                             "(port 0 cannot be connected to)")
        if lo > hi:
            raise UsageError(f"invalid port range {part!r}: the first port must not exceed the last")
        out.update(range(lo, hi + 1))
    return sorted(out)


def resolve(host: str) -> str:
    """The IP address for ``host`` (a literal or a name), IPv4 preferred.

    An IPv4-mapped IPv6 address such as ``::ffff:127.0.0.1`` is the IPv4
    host it wraps, so it comes back in its IPv4 form (``127.0.0.1``).
    """
    try:
        infos = socket.getaddrinfo(parse_host(host, "host"), None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"unknown host {host!r} ({exc.strerror}); "
                         "give an IP address such as 127.0.0.1") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    ip = infos[0][4][0]
    mapped = getattr(ipaddress.ip_address(ip.split("%")[0]), "ipv4_mapped", None)
    return str(mapped) if mapped else ip


class Pace(NamedTuple):
    """How hard a scan pushes: probes in flight, new probes per second (None:
    no limit) and seconds to wait for an answer."""

    concurrency: int
    rate: Optional[float]
    timeout: float


# Default pace by (protocol, target is this machine). This machine answers
# in microseconds and only its own kernel is loaded, so nothing holds the
# scan back. Another host gets a polite pace: its network, its firewall
# logs and its ICMP budget (Linux: about 1 error per second per peer after
# a burst) are someone else's, and a flood teaches nothing a slow scan does not.
DEFAULT_PACE = {
    ("tcp", True): Pace(500, None, 1.0),
    ("udp", True): Pace(500, None, 1.0),
    ("tcp", False): Pace(100, 500.0, 1.0),
    ("udp", False): Pace(20, 100.0, 1.0),
}


class _Limiter:
    """At most ``rate`` starts per second (None: unlimited), evenly spaced."""

    def __init__(self, rate: Optional[float]) -> None:
        self.gap = 1.0 / rate if rate else 0.0
        self.next = float("-inf")

    def wait_time(self, now: float) -> float:
        return max(0.0, self.next - now)

    def take(self, now: float) -> None:
        self.next = max(self.next, now) + self.gap if self.gap else now


def _result(port: int, proto: str, state: str, detail: Optional[str] = None) -> dict:
    return {"port": port, "proto": proto, "state": state,
            "service": registry.service_name(port, proto), "detail": detail}


def _probe_socket(family: int, kind: int, port: int) -> socket.socket:
    """A non-blocking socket bound to an OS-chosen local port that is not ``port``.

    Left to itself, ``connect()`` picks the local port, and now and then it
    picks the very port being probed. On this host that socket then talks to
    itself: TCP completes a "simultaneous open" with itself and UDP reads its
    own probe, so a port nobody listens on looks open (a phantom). Binding
    first shows the port before any packet leaves; if it is the probed one,
    a second socket is bound while the first still holds that port, so the
    second cannot get it too.
    """
    wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
    unusable = []
    try:
        for _ in range(2):
            sock = socket.socket(family, kind)
            unusable.append(sock)
            sock.bind((wildcard, 0))
            if sock.getsockname()[1] != port:
                unusable.remove(sock)
                sock.setblocking(False)
                return sock
        raise OSError(errno.EADDRINUSE, f"no local port other than {port} was free")
    finally:
        for sock in unusable:
            sock.close()


# A probe is two functions of the socket and the target address: ``start``
# sends the probe and ``ready`` reads what the selector reported. Each returns
# ``(state, detail)`` when the port's answer is known, or None to keep waiting.
_Outcome = Optional[Tuple[str, Optional[str]]]


def _run_probes(ip: str, ports: Sequence[int], proto: str, kind: int, pace: Pace,
                start: Callable[[socket.socket, tuple], _Outcome],
                ready: Callable[[socket.socket], _Outcome], event: int,
                silent: Tuple[str, str], reuse_closed: bool = False,
                progress: Optional[Callable[[int, int], None]] = None) -> Dict[int, dict]:
    """The event loop both scans share: keep at most ``pace.concurrency``
    probes waiting, start new ones no faster than ``pace.rate`` allows, and
    give each ``pace.timeout`` seconds before its port counts as ``silent``.

    On this machine most answers are in before ``start`` returns (loopback
    delivers within the send call), so those probes never touch the selector.
    Every probe waits equally long, so the order they started in is the order
    they time out in: a queue, not a search, finds the next deadline.
    """
    family = family_for(ip)
    sel = selectors.DefaultSelector()
    todo = collections.deque(ports)
    waiting: Dict[socket.socket, int] = {}                      # socket -> its port
    deadlines: Deque[Tuple[float, socket.socket]] = collections.deque()
    limiter = _Limiter(pace.rate)
    results: Dict[int, dict] = {}
    # A UDP probe socket whose port answered "closed" at once holds nothing
    # more (the ICMP error was read, a closed port sends no data): connect()
    # points it at the next port, which saves making and closing a socket.
    spare: Optional[Tuple[socket.socket, int]] = None          # (socket, its local port)

    def record(port: int, outcome: Tuple[str, Optional[str]]) -> None:
        results[port] = _result(port, proto, *outcome)
        if progress:
            progress(len(results), len(ports))

    def release(sock: socket.socket) -> int:
        sel.unregister(sock)
        sock.close()
        return waiting.pop(sock)

    try:
        while todo or waiting:
            now = time.monotonic()
            starved = False
            while todo and len(waiting) < pace.concurrency and limiter.wait_time(now) == 0:
                port = todo.popleft()
                try:
                    if spare is not None and spare[1] != port:
                        (sock, local), spare = spare, None
                    else:
                        if spare is not None:
                            # It holds the very port probed next: a probe
                            # there would reach it, not the kernel's ICMP.
                            spare[0].close()
                            spare = None
                        sock, local = _probe_socket(family, kind, port), None
                except OSError as exc:
                    if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                        raise
                    if not waiting:
                        raise NetlabError(
                            "no local port is free for another probe: widen "
                            "net.ipv4.ip_local_port_range or close other connections") from None
                    # Every local port is held by a waiting probe: wait for one.
                    todo.appendleft(port)
                    starved = True
                    break
                limiter.take(now)
                outcome = start(sock, (ip, port))
                if outcome is None:
                    waiting[sock] = port
                    sel.register(sock, event)
                    deadlines.append((now + pace.timeout, sock))
                else:
                    record(port, outcome)
                    if reuse_closed and outcome[0] == "closed" and spare is None:
                        spare = (sock, local if local is not None else sock.getsockname()[1])
                    else:
                        sock.close()
            # Drop answered probes from the head: the head is the next deadline.
            while deadlines and deadlines[0][1] not in waiting:
                deadlines.popleft()
            if waiting:
                wait = deadlines[0][0] - now
                if todo and len(waiting) < pace.concurrency and not starved:
                    wait = min(wait, limiter.wait_time(now))
                for key, _ in sel.select(max(0.0, wait)):
                    outcome = ready(key.fileobj)  # type: ignore[arg-type]
                    if outcome is not None:
                        record(release(key.fileobj), outcome)  # type: ignore[arg-type]
            elif todo:
                time.sleep(limiter.wait_time(now))
            now = time.monotonic()
            while deadlines and (deadlines[0][1] not in waiting or deadlines[0][0] <= now):
                _, sock = deadlines.popleft()
                if sock in waiting:
                    record(release(sock), silent)
    finally:
        for sock in waiting:
            sock.close()
        if spare is not None:
            spare[0].close()
        sel.close()
    return results


_LINGER_RESET = struct.pack("ii", 1, 0)


def _tcp_outcome(sock: socket.socket, err: int) -> Tuple[str, Optional[str]]:
    """A finished connect: 0 is open, RST (ECONNREFUSED) closed, anything else filtered."""
    if err == 0:
        # SO_LINGER 0: close() sends RST instead of FIN, so an open port
        # is not left with thousands of TIME_WAIT entries on our side.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        return "open", None
    if err == errno.ECONNREFUSED:
        return "closed", "ECONNREFUSED"
    return "filtered", errno.errorcode.get(err, str(err))


def _tcp_start(sock: socket.socket, addr: tuple) -> _Outcome:
    err = sock.connect_ex(addr)
    if err == errno.EINPROGRESS:
        # Over loopback the SYN-ACK or RST has usually been handled already.
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            try:
                sock.getpeername()
            except OSError:
                return None     # still connecting: wait for the selector
    return _tcp_outcome(sock, err)


def _tcp_ready(sock: socket.socket) -> _Outcome:
    return _tcp_outcome(sock, sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))


def _scan_tcp(ip: str, ports: Sequence[int], pace: Pace,
              progress: Optional[Callable[[int, int], None]]) -> Dict[int, dict]:
    return _run_probes(ip, ports, "tcp", socket.SOCK_STREAM, pace, _tcp_start, _tcp_ready,
                       selectors.EVENT_WRITE, ("filtered", "no answer (timeout)"),
                       progress=progress)


def _udp_answer(sock: socket.socket) -> _Outcome:
    """What came back on a connected UDP probe socket, if anything yet."""
    try:
        sock.recv(65535)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return "closed", "ICMP port unreachable"
        return "open|filtered", errno.errorcode.get(exc.errno or 0)
    return "open", "reply received"


def _scan_udp_round(ip: str, ports: Sequence[int], pace: Pace, payload: bytes) -> Dict[int, dict]:
    def start(sock: socket.socket, addr: tuple) -> _Outcome:
        try:
            # connect() makes the kernel deliver ICMP errors for this
            # peer to this socket (as ECONNREFUSED on the next recv).
            sock.connect(addr)
            # By default an empty datagram: echo, daytime, time, qotd
            # and chargen all answer one (RFC 862-868).
            sock.send(payload)
        except OSError as exc:
            state = "closed" if exc.errno == errno.ECONNREFUSED else "open|filtered"
            return state, errno.errorcode.get(exc.errno or 0)
        return _udp_answer(sock)

    return _run_probes(ip, ports, "udp", socket.SOCK_DGRAM, pace, start, _udp_answer,
                       selectors.EVENT_READ, ("open|filtered", "no reply (timeout)"),
                       reuse_closed=True)


def _within_icmp_budget(pace: Pace) -> Pace:
    """``pace``, slowed to the ICMP errors per second this kernel allows.

    Kernels older than the one these lessons were written on rate-limit ICMP
    errors on loopback too (``net.ipv4.icmp_msgs_per_sec``, 1000 by default):
    a fast first round then hears silence from closed ports, and the retry of
    those ports must go no faster than the kernel will answer.
    """
    try:
        with open("/proc/sys/net/ipv4/icmp_msgs_per_sec") as f:
            budget = float(f.read())
    except (OSError, ValueError):
        return pace
    if budget <= 0 or pace.rate is not None and pace.rate <= budget:
        return pace
    return pace._replace(rate=budget)


def check_target(host: str, allow_remote: bool = False) -> str:
    """Resolve ``host``; refuse it unless it is this machine or ``allow_remote``
    (the rule :func:`netlab.binding.check_own_host` states for scan and redirect)."""
    ip = resolve(host)
    check_own_host(host, ip, allow_remote, "scan")
    return ip


def default_pace(protocol: str, ip: str) -> Pace:
    """The pace :func:`scan` uses for ``ip`` unless told otherwise: see ``DEFAULT_PACE``."""
    return DEFAULT_PACE[protocol, is_own_address(ip)]


def scan(host: str = "127.0.0.1", ports: Sequence[int] = tuple(range(1, 1025)),
         protocol: str = "tcp", *, concurrency: Optional[int] = None, rate: Optional[float] = None,
         timeout: Optional[float] = None, retries: int = 1, allow_remote: bool = False,
         payload: bytes = b"",
         progress: Optional[Callable[[int, int], None]] = None) -> List[dict]:
    """Scan ``ports`` of ``host`` over ``protocol`` (``tcp`` or ``udp``).

    Returns one dict per port, in port order: ``port``, ``proto``, ``state``
    (``open``, ``closed``, ``filtered`` for TCP; ``open``, ``closed``,
    ``open|filtered`` for UDP), ``service`` (IANA name), ``detail``.
    ``concurrency``, ``rate`` and ``timeout`` default to ``DEFAULT_PACE``:
    on this machine 500 probes in flight, no rate limit, 1 s timeout; on
    another host TCP 100 in flight at 500 probes/s and UDP 20 in flight at
    100 probes/s (ICMP errors are rate-limited by the target), 1 s timeout.
    UDP ports that stay silent are probed ``retries`` more times; UDP probes
    carry ``payload`` (empty by default, as nmap does for unknown services).
    A host that is not this machine needs ``allow_remote=True`` (you own it
    or may test it).
    """
    if protocol not in ("tcp", "udp"):
        raise UsageError(f"unknown protocol {protocol!r}: use tcp or udp")
    if not ports:
        raise UsageError("no ports to scan")
    if concurrency is not None and concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if rate is not None and rate <= 0:
        raise UsageError("--rate must be a positive number of probes per second")
    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    ip = check_target(host, allow_remote)
    base = default_pace(protocol, ip)
    pace = Pace(concurrency or base.concurrency, rate or base.rate, timeout or base.timeout)
    try:
        if protocol == "tcp":
            found = _scan_tcp(ip, list(ports), pace, progress)
        else:
            todo = list(ports)
            found = {}
            for attempt in range(1 + max(0, retries)):
                got = _scan_udp_round(ip, todo, pace if attempt == 0 or rate else
                                      _within_icmp_budget(pace), payload)
                found.update(got)
                todo = [p for p, r in got.items() if r["state"] == "open|filtered"]
                if progress:
                    progress(len(ports) - len(todo), len(ports))
                if not todo:
                    break
    except OSError as exc:
        if exc.errno == errno.EMFILE:
            raise NetlabError("too many open files: lower --concurrency "
                              "(or raise 'ulimit -n')") from None
        raise
    return [found[p] for p in sorted(found)]
