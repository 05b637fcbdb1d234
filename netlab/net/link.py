"""A slower link: ``tc`` queueing disciplines on both ends of a host's veth pair.

``rate`` alone uses tbf (a token bucket: the classic rate limiter, in every
kernel). ``delay`` needs netem, the network emulator qdisc; kernels built
without it (``sch_netem``) refuse it, and netlab says so in one line and points
to ``netlab redirect --delay MS --loss P``, which delays and drops in user
space. Both directions are shaped: the host's ``eth0`` (what it sends) and the
switch's port (what it receives), so a delay of D ms adds 2*D to a round trip.
"""
from __future__ import annotations

import re
from typing import Optional

from netlab.errors import UsageError
from netlab.net._shell import NetError, Shell, first_line

__all__ = ["clear", "describe", "format_link", "parse_rate", "shape"]

_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit)", re.IGNORECASE)
NO_NETEM = ("this kernel has no netem qdisc (sch_netem), so a link cannot be delayed here "
            "(tbf rate limiting works: --rate); for delay and loss use "
            "'netlab redirect LISTEN_PORT HOST:PORT --delay MS --loss P'")


def parse_rate(text: str) -> int:
    """``"10mbit"`` -> 10000000 bits/s (units bit, kbit, mbit, gbit)."""
    match = _RATE.fullmatch(text.strip())
    if not match:
        raise UsageError(f"invalid rate {text!r}: give a number and a unit, e.g. 10mbit, "
                         "500kbit or 1gbit")
    bits = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if not 8000 <= bits <= 100 * 10**9:
        raise UsageError(f"invalid rate {text!r}: give 8kbit to 100gbit")
    return bits


def _qdisc(rate: Optional[int], delay_ms: Optional[float]) -> list:
    if delay_ms:
        args = ["netem", "delay", f"{delay_ms:g}ms"]
        return args + (["rate", f"{rate}bit"] if rate else [])
    # The bucket holds 10 ms worth of bytes, at least a few full frames, so a
    # burst never has to wait for a token it can never get.
    burst = max(rate // 8 // 100, 4 * 1514)
    return ["tbf", "rate", f"{rate}bit", "burst", str(burst), "latency", "50ms"]


def shape(sh: Shell, ns: str, dev: str, peer_ns: str, peer_dev: str,
          rate: Optional[int] = None, delay_ms: Optional[float] = None) -> None:
    """Limit both directions of the link ``ns:dev`` <-> ``peer_ns:peer_dev``."""
    if not (rate or delay_ms):
        raise UsageError("give --rate RATE and/or --delay MS (or --clear)")
    for where, device in ((ns, dev), (peer_ns, peer_dev)):
        done = sh.run("tc", "-n", where, "qdisc", "replace", "dev", device, "root",
                      *_qdisc(rate, delay_ms), check=False)
        if done.returncode != 0:
            if delay_ms and "unknown" in done.stderr.lower():
                raise NetError(NO_NETEM)
            raise NetError(f"tc could not shape {device} in {where}: {first_line(done.stderr)}")


def clear(sh: Shell, ns: str, dev: str, peer_ns: str, peer_dev: str) -> None:
    """Back to an unshaped link (deleting a root qdisc that is not there is fine)."""
    for where, device in ((ns, dev), (peer_ns, peer_dev)):
        sh.run("tc", "-n", where, "qdisc", "del", "dev", device, "root", check=False)


def describe(sh: Shell, ns: str, dev: str) -> Optional[dict]:
    """The shaping on ``ns:dev``: ``{"qdisc": ..., "rate_bit": ..., "delay_ms": ...}`` or None."""
    for q in sh.json("tc", "-n", ns, "-j", "qdisc", "show", "dev", dev):
        if not q.get("root") or q.get("kind") not in ("tbf", "netem"):
            continue
        opts = q.get("options", {})
        rate = opts.get("rate")
        delay = (opts.get("delay") or {}).get("delay") if q["kind"] == "netem" else None
        return {"qdisc": q["kind"], "rate_bit": rate * 8 if rate else None,
                "delay_ms": round(delay * 1000, 3) if delay else None}
    return None


def format_link(info: Optional[dict]) -> str:
    """``8mbit``, ``20ms``, ``8mbit 20ms`` or ``-`` for a table cell."""
    if not info:
        return "-"
    parts = []
    if info.get("rate_bit"):
        parts.append(_format_rate(info["rate_bit"]))
    if info.get("delay_ms"):
        parts.append(f"{info['delay_ms']:g}ms")
    return " ".join(parts) or info["qdisc"]


def _format_rate(bits: int) -> str:
    for unit, size in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bits >= size:
            return f"{bits / size:g}{unit}"
    return f"{bits}bit"
