"""What this machine and this process may do with ports.

Small, dependency-free readers of the facts the port lesson keeps coming back
to: may this process bind below 1024, where does the unprivileged range start
(``net.ipv4.ip_unprivileged_port_start``), which ports does the kernel hand out
as ephemeral ones (``net.ipv4.ip_local_port_range``).
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Optional

import netlab

__all__ = [
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "can_bind_privileged",
    "can_capture",
    "ephemeral_port_range",
    "has_capability",
    "info",
    "is_root",
    "pure_python_requested",
    "unprivileged_port_start",
]

# Capability bit numbers from <linux/capability.h>.
CAP_NET_BIND_SERVICE = 10
CAP_NET_RAW = 13

_PROC = "/proc/sys/net/ipv4"

#: Set to 1 to run on the pure-Python twins instead of the compiled core.
OPT_OUT = "NETLAB_PURE_PYTHON"


def pure_python_requested() -> bool:
    """True when the environment asks for the pure-Python core (``NETLAB_PURE_PYTHON=1``)."""
    return os.environ.get(OPT_OUT, "").strip() not in ("", "0")


#: Set by the command line (netlab.cli.main), so that only a running command speaks
#: on stderr about a fallback; a library import stays quiet (BACKEND_REASON tells).
CLI_ACTIVE = False
_twin_noted = False


def note_twin_fallback(reason: str) -> None:
    """Say once per process, on stderr, that a command runs on the slow twin
    although nobody asked for it, and how to get the compiled core."""
    global _twin_noted
    if _twin_noted or not CLI_ACTIVE or pure_python_requested():
        return
    _twin_noted = True
    print(f"netlab: warning: running the pure-Python twin, many times slower: {reason}",
          file=sys.stderr, flush=True)


def _read_proc(name: str) -> Optional[str]:
    try:
        with open(os.path.join(_PROC, name), encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def unprivileged_port_start() -> int:
    """The first port an ordinary process may bind (1024 unless changed).

    Linux 4.11 and later read it from ``net.ipv4.ip_unprivileged_port_start``;
    older kernels and other systems use the classic 1024.
    """
    value = _read_proc("ip_unprivileged_port_start")
    return int(value) if value and value.isdigit() else 1024


def ephemeral_port_range() -> tuple:
    """``(low, high)``: the ports the kernel picks for port 0 and for clients."""
    value = _read_proc("ip_local_port_range")
    if value:
        parts = value.split()
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return int(parts[0]), int(parts[1])
    return 32768, 60999  # the Linux default


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def has_capability(bit: int) -> bool:
    """Whether the effective capability set of this process holds ``bit``."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def can_bind_privileged() -> bool:
    """True when this process may bind ports below ``unprivileged_port_start``."""
    return unprivileged_port_start() == 0 or is_root() or has_capability(CAP_NET_BIND_SERVICE)


def can_capture() -> bool:
    """True when this process may open raw/packet sockets (root or CAP_NET_RAW)."""
    return is_root() or has_capability(CAP_NET_RAW)


def info() -> dict:
    """Everything ``netlab info`` shows, as a dict."""
    from netlab import packet

    low, high = ephemeral_port_range()
    return {
        "version": netlab.__version__,
        "backend": packet.BACKEND,
        "backend_reason": packet.BACKEND_REASON,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "platform": platform.platform(),
        "root": is_root(),
        "can_bind_below_1024": can_bind_privileged(),
        "cap_net_bind_service": has_capability(CAP_NET_BIND_SERVICE),
        "can_capture": can_capture(),
        "ip_unprivileged_port_start": unprivileged_port_start(),
        "ephemeral_port_range": [low, high],
    }
