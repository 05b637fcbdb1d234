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
per second.
"""
from __future__ import annotations

import errno
import ipaddress
import selectors
import socket
import time
from typing import Callable, Dict, List, Optional, Sequence

from netlab import ports as registry
from netlab.binding import family_for
from netlab.errors import NetlabError, UsageError

__all__ = ["ETHICS_NOTE", "check_target", "is_own_address", "parse_ports", "resolve", "scan"]

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
    """The IP address for ``host`` (a literal or a name), IPv4 preferred."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"unknown host {host!r} ({exc.strerror}); "
                         "give an IP address such as 127.0.0.1") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    return infos[0][4][0]


def is_own_address(ip: str) -> bool:
    """True for loopback addresses and addresses of this machine's interfaces."""
    addr = ipaddress.ip_address(ip)
    if addr.is_loopback:
        return True
    try:
        import psutil

        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.address.split("%")[0] == ip:
                    return True
    except Exception:  # noqa: BLE001 - when in doubt, treat the host as someone else's
        pass
    return False


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


# A probe's hooks get the socket and ``finish(sock, state, detail)``, which
# records the port's result and releases the socket.
_Finish = Callable[[socket.socket, str, Optional[str]], None]


def _run_probes(ip: str, ports: Sequence[int], proto: str, concurrency: int,
                limiter: _Limiter, timeout: float,
                open_socket: Callable[[int], socket.socket],
                launch: Callable[[socket.socket, int, _Finish], Optional[int]],
                on_ready: Callable[[socket.socket, _Finish], None],
                timeout_state: str, timeout_detail: str,
                progress: Optional[Callable[[int, int], None]] = None) -> Dict[int, dict]:
    """The event loop both scans share: keep at most ``concurrency`` probes in
    flight, start new ones no faster than ``limiter`` allows, and give each
    ``timeout`` seconds before it counts as ``timeout_state``.

    ``open_socket(family)`` makes a non-blocking socket; ``launch`` starts the
    probe and returns the selector event to wait for, or None when it already
    called ``finish``; ``on_ready`` handles a socket the selector reports.
    """
    family = family_for(ip)
    sel = selectors.DefaultSelector()
    todo = list(reversed(ports))
    inflight: Dict[socket.socket, tuple] = {}
    results: Dict[int, dict] = {}

    def finish(sock: socket.socket, state: str, detail: Optional[str]) -> None:
        port, _ = inflight.pop(sock)
        try:
            sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        results[port] = _result(port, proto, state, detail)
        if progress:
            progress(len(results), len(ports))

    try:
        while todo or inflight:
            now = time.monotonic()
            while todo and len(inflight) < concurrency and limiter.wait_time(now) == 0:
                limiter.take(now)
                port = todo.pop()
                sock = open_socket(family)
                inflight[sock] = (port, now + timeout)
                event = launch(sock, port, finish)
                if event is not None:
                    sel.register(sock, event)
            if inflight:
                wait = min(due for _, due in inflight.values()) - now
                if todo and len(inflight) < concurrency:
                    wait = min(wait, limiter.wait_time(now))
                for key, _ in sel.select(max(0.0, wait)):
                    on_ready(key.fileobj, finish)  # type: ignore[arg-type]
            elif todo:
                time.sleep(limiter.wait_time(now))
            now = time.monotonic()
            for sock, (port, due) in list(inflight.items()):
                if due <= now:
                    finish(sock, timeout_state, timeout_detail)
    finally:
        for sock in list(inflight):
            sock.close()
        sel.close()
    return results


def _tcp_outcome(sock: socket.socket, err: int, finish: _Finish) -> None:
    """Record a finished connect: 0 is open, RST (ECONNREFUSED) closed, else filtered."""
    if err == 0:
        finish(sock, "open", None)
    elif err == errno.ECONNREFUSED:
        finish(sock, "closed", "ECONNREFUSED")
    else:
        finish(sock, "filtered", errno.errorcode.get(err, str(err)))


def _scan_tcp(ip: str, ports: Sequence[int], concurrency: int, rate: Optional[float],
              timeout: float, progress: Optional[Callable[[int, int], None]]) -> Dict[int, dict]:
    def open_socket(family: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        # SO_LINGER 0: close() sends RST instead of FIN, so an open port
        # is not left with thousands of TIME_WAIT entries on our side.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return sock

    def launch(sock: socket.socket, port: int, finish: _Finish) -> Optional[int]:
        err = sock.connect_ex((ip, port))
        if err == errno.EINPROGRESS:
            return selectors.EVENT_WRITE
        _tcp_outcome(sock, err, finish)
        return None

    def on_ready(sock: socket.socket, finish: _Finish) -> None:
        _tcp_outcome(sock, sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), finish)

    return _run_probes(ip, ports, "tcp", concurrency, _Limiter(rate), timeout,
                       open_socket, launch, on_ready,
                       "filtered", "no answer (timeout)", progress)


def _scan_udp_round(ip: str, ports: Sequence[int], concurrency: int, rate: Optional[float],
                    timeout: float, payload: bytes) -> Dict[int, dict]:
    def open_socket(family: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        return sock

    def launch(sock: socket.socket, port: int, finish: _Finish) -> Optional[int]:
        try:
            # connect() makes the kernel deliver ICMP errors for this
            # peer to this socket (as ECONNREFUSED on the next recv).
            sock.connect((ip, port))
            # By default an empty datagram: echo, daytime, time, qotd
            # and chargen all answer one (RFC 862-868).
            sock.send(payload)
        except OSError as exc:
            state = "closed" if exc.errno == errno.ECONNREFUSED else "open|filtered"
            finish(sock, state, errno.errorcode.get(exc.errno or 0))
            return None
        return selectors.EVENT_READ

    def on_ready(sock: socket.socket, finish: _Finish) -> None:
        try:
            sock.recv(65535)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:
                finish(sock, "closed", "ICMP port unreachable")
            else:
                finish(sock, "open|filtered", errno.errorcode.get(exc.errno or 0))
            return
        finish(sock, "open", "reply received")

    return _run_probes(ip, ports, "udp", concurrency, _Limiter(rate), timeout,
                       open_socket, launch, on_ready,
                       "open|filtered", "no reply (timeout)")


def check_target(host: str, allow_remote: bool = False) -> str:
    """Resolve ``host``; refuse it unless it is this machine or ``allow_remote``."""
    ip = resolve(host)
    if not allow_remote and not is_own_address(ip):
        raise UsageError(f"refusing to scan {host} ({ip}): it is not this machine. "
                         f"{ETHICS_NOTE} If you own it or have permission, add --authorized")
    return ip


def scan(host: str = "127.0.0.1", ports: Sequence[int] = tuple(range(1, 1025)),
         protocol: str = "tcp", *, concurrency: Optional[int] = None, rate: Optional[float] = None,
         timeout: Optional[float] = None, retries: int = 1, allow_remote: bool = False,
         payload: bytes = b"",
         progress: Optional[Callable[[int, int], None]] = None) -> List[dict]:
    """Scan ``ports`` of ``host`` over ``protocol`` (``tcp`` or ``udp``).

    Returns one dict per port, in port order: ``port``, ``proto``, ``state``
    (``open``, ``closed``, ``filtered`` for TCP; ``open``, ``closed``,
    ``open|filtered`` for UDP), ``service`` (IANA name), ``detail``. Defaults:
    TCP 200 probes in flight, unlimited rate, 1 s timeout; UDP 50 in flight,
    500 probes/s (ICMP errors are rate-limited by the target), 1 s timeout,
    ports that stay silent probed ``retries`` more times; UDP probes carry
    ``payload`` (empty by default, as nmap does for unknown services). A host that is not
    this machine needs ``allow_remote=True`` (you own it or may test it).
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
    try:
        if protocol == "tcp":
            found = _scan_tcp(ip, list(ports), concurrency or 200, rate,
                              timeout or 1.0, progress)
        else:
            todo = list(ports)
            found = {}
            for attempt in range(1 + max(0, retries)):
                got = _scan_udp_round(ip, todo, concurrency or 50, rate or 500.0, timeout or 1.0,
                                      payload)
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
