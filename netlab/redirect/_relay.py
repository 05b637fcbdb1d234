"""The redirector: bound listeners, a TCP and/or a UDP relay on one loop, counters."""
from __future__ import annotations

import socket
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

from netlab._cliutil import counted
from netlab.binding import check_own_host, format_address, format_url
from netlab.errors import UsageError
from netlab.redirect._loop import Loop
from netlab.redirect._tcp import TcpRelay
from netlab.redirect._udp import UdpRelay, big_buffers
from netlab.servers import bind_all
from netlab.services.lossy import LossyLink

__all__ = ["Redirector", "parse_target"]


def parse_target(text: str) -> Tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or just ``PORT`` (meaning 127.0.0.1) -> (host, port)."""
    text = text.strip()
    host, port_text = "127.0.0.1", text
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise UsageError(f"invalid target {text!r}: write an IPv6 target as [::1]:PORT")
        host, port_text = text[1:end], text[end + 2:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535 or not host:
        raise UsageError(f"invalid target {text!r}: use HOST:PORT with a port 1-65535, "
                         "e.g. 127.0.0.1:8080")
    return host, int(port_text)


def _resolve(host: str, port: int) -> Tuple[int, tuple]:
    """(family, address) of the target, IPv4 preferred."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UsageError(f"unknown target host {host!r} ({exc.strerror}); "
                         "give an IP address such as 127.0.0.1") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    return infos[0][0], infos[0][4][:2]


class Redirector:
    """A TCP and/or UDP port redirector; see :mod:`netlab.redirect`.

    Create it (sockets are bound at once, so errors surface here), then either
    :meth:`run` it in this thread or :meth:`start` it in a background thread.
    ``ports`` maps ``"tcp"``/``"udp"`` to the bound port (useful with port 0).
    A target that is not this machine needs ``authorized=True``, the rule
    ``netlab scan`` follows too.
    """

    def __init__(self, listen_port: int, target_host: str, target_port: int, *,
                 host: str = "127.0.0.1", protocols: Sequence[str] = ("tcp", "udp"),
                 loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 delay_ms: float = 0.0, seed: Optional[int] = None, udp_idle: float = 30.0,
                 authorized: bool = False):
        protocols = tuple(dict.fromkeys(p.lower() for p in protocols))
        if not protocols or any(p not in ("tcp", "udp") for p in protocols):
            raise UsageError(f"unknown protocols {protocols!r}: use tcp, udp or both")
        for name, value in (("loss", loss), ("duplicate", duplicate), ("reorder", reorder)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"--{name} {value} is not a probability: give a number from 0 to 1")
        if (loss or duplicate or reorder) and "udp" not in protocols:
            raise UsageError("--loss, --duplicate and --reorder act on UDP datagrams only "
                             "(TCP repairs loss itself); add --udp, or keep --delay for TCP")
        if delay_ms < 0 or delay_ms > 60000:
            raise UsageError(f"--delay {delay_ms} ms is out of range: give 0 to 60000 ms")
        if udp_idle <= 0:
            raise UsageError("the UDP idle timeout must be a positive number of seconds")
        self.target_family, self.target = _resolve(target_host, target_port)
        check_own_host(target_host, self.target[0], authorized, "forward to")
        self.host = host
        self.protocols = protocols
        self.settings = {"loss": loss, "duplicate": duplicate, "reorder": reorder,
                         "delay_ms": delay_ms, "seed": seed}
        self._started_at = time.monotonic()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        # With port 0 and both protocols, bind_all looks for one number free
        # for both, as for netlab's servers, so "the redirect's port" means one thing.
        listeners = bind_all(host, listen_port, protocols)
        self.ports: Dict[str, int] = {p: s.getsockname()[1] for p, s in listeners.items()}
        if target_port in self.ports.values() and self._same_host(target_host):
            for sock in listeners.values():
                sock.close()
            raise UsageError(f"target {format_address(target_host, target_port)} is the "
                             "redirect's own port: that would loop forever; choose another target")
        self._loop = Loop()
        delay = delay_ms / 1000.0
        self._tcp: Optional[TcpRelay] = None
        self._udp: Optional[UdpRelay] = None
        for proto, sock in listeners.items():
            sock.setblocking(False)
            if proto == "tcp":
                self._tcp = TcpRelay(self._loop, sock, self.target, self.target_family, delay)
            else:
                big_buffers(sock)
                seed_text = None if seed is None else str(seed)
                links = [LossyLink(loss, duplicate, reorder,
                                   None if seed_text is None else f"{seed_text}/{name}")
                         for name in ("to_target", "to_client")]
                self._udp = UdpRelay(self._loop, sock, self.target, self.target_family, delay,
                                     links[0], links[1], udp_idle)

    def _same_host(self, target_host: str) -> bool:
        return target_host == self.host or {target_host, self.host} <= {"127.0.0.1", "localhost"}

    def listen_urls(self) -> List[str]:
        """``['tcp://127.0.0.1:PORT', 'udp://...']``: what the CLI prints."""
        return [format_url(proto, self.host, port) for proto, port in self.ports.items()]

    # ---------------------------------------------------------------- running

    def run(self, seconds: Optional[float] = None) -> None:
        """Serve until :meth:`stop` (from a signal handler or another thread),
        or for ``seconds`` when given."""
        try:
            self._loop.run(seconds)
        finally:
            self.close()

    def start(self) -> "Redirector":
        """Run in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.run, name="netlab-redirect", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> dict:
        """Stop serving (safe from signal handlers and other threads); return :meth:`stats`."""
        self._loop.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return self.stats()

    def close(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for relay in (self._tcp, self._udp):
            if relay is not None:
                relay.close()
        self._loop.close()

    def __enter__(self) -> "Redirector":
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- counters

    def stats(self) -> dict:
        """Counters so far: ``tcp``, ``udp`` (with per-direction ``to_target`` and
        ``to_client`` and totals ``dropped``, ``duplicated``, ``reordered``),
        ``settings`` and ``seconds``.

        ``tcp.refused`` counts clients whose target connection was refused
        (``failed`` also counts unreachable targets); ``udp.target_unreachable``
        counts ICMP port unreachable errors from the target, ``udp.evicted``
        flows dropped at the cap of ``udp.max_flows``.
        """
        return {
            "ports": dict(self.ports),
            "target": format_address(*self.target),
            "seconds": round(time.monotonic() - self._started_at, 3),
            "settings": dict(self.settings),
            "tcp": self._tcp.snapshot() if self._tcp else dict.fromkeys(TcpRelay.COUNTERS, 0),
            "udp": self._udp.snapshot() if self._udp else UdpRelay.idle_snapshot(),
            "internal_errors": self._loop.internal_errors,
        }

    def summary(self) -> str:
        """The one-line stop summary; a refusing target is named in it."""
        s = self.stats()
        parts = []
        if self._tcp:
            t = s["tcp"]
            text = (f"tcp {counted(t['connections'], 'connection')}, "
                    f"{counted(t['bytes_to_target'], 'byte')} to target, "
                    f"{counted(t['bytes_to_client'], 'byte')} back")
            if t["refused"]:
                text += f", target refused {t['refused']} (is anything listening on {s['target']}?)"
            unreachable = t["failed"] - t["refused"]
            if unreachable:
                text += f", target unreachable for {unreachable}"
            parts.append(text)
        if self._udp:
            u = s["udp"]
            up = u["to_target"]
            # "To target" is what reached it: what the kernel took from us
            # (not what the link dropped or a full buffer refused) minus what
            # the target's kernel answered with ICMP port unreachable.
            reached = max(0, up["sent"] - u["target_unreachable"])
            text = (f"udp {counted(u['clients'], 'client')}, "
                    f"{counted(reached, 'datagram')} to target, "
                    f"{u['to_client']['received']} back, {u['dropped']} dropped, "
                    f"{u['duplicated']} duplicated, {u['reordered']} reordered")
            if u["target_unreachable"]:
                text += (f", target refused {u['target_unreachable']} (ICMP port unreachable: "
                         f"is anything listening on {s['target']}?)")
            if u["evicted"]:
                text += (f", {counted(u['evicted'], 'flow')} evicted at the "
                         f"{u['max_flows']}-flow cap")
            parts.append(text)
        when = "stopped after" if self._stopped else "running for"
        return f"redirect {when} {s['seconds']:.1f} s: " + "; ".join(parts)
