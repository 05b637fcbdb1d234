"""The compiled TCP hot path of the selectors model (``netlab._fastserve``).

The Python loop of :mod:`netlab.servers._selectors` is the readable reference;
for the two services whose TCP side is pure byte moving (RFC 862 echo, RFC 863
discard) the selectors model hands that side to the epoll loop of
``netlab._fastserve``, which runs with the GIL released. Everything else
(UDP with its loop guard and rate limit, the other services, stopping) stays
in Python.

The compiled path is used when the module is built, the OS has epoll, and
``NETLAB_PURE_PYTHON`` is not set; ``start_server(..., compiled=False)``
forces the Python loop, ``compiled=True`` requires the compiled one.
"""
from __future__ import annotations

from types import ModuleType
from typing import Dict, Optional, Tuple

from netlab import _twins
from netlab.errors import NetlabError
from netlab.servers._common import Stats

__all__ = ["FAST_SERVICES", "CoreStats", "core_module", "use_compiled"]

#: Services whose TCP side the compiled core serves.
FAST_SERVICES = ("echo", "discard")
# Counters the core keeps for the TCP side; Python keeps its own for UDP.
_SUMMED = ("connections", "bytes_in", "bytes_out", "active", "rejected", "timeouts", "errors")


def core_module() -> Tuple[Optional[ModuleType], str]:
    """``(netlab._fastserve, reason)``, or ``(None, why not)``."""
    fastserve, _backend, reason = _twins.choose("servers")
    if fastserve is None:
        return None, reason
    if not fastserve.HAVE_EPOLL:
        return None, "no epoll on this OS"
    return fastserve, reason


def use_compiled(service: str, protocols, compiled: Optional[bool]) -> Optional[ModuleType]:
    """The core module when the TCP side of ``service`` should run compiled, else None.

    ``compiled``: None decides by availability, False never, True insists
    (a :class:`NetlabError` naming the way out when it cannot).
    """
    if compiled is False or "tcp" not in protocols:
        return None
    if service not in FAST_SERVICES:
        if compiled:
            raise NetlabError(f"the compiled server core serves {' and '.join(FAST_SERVICES)} "
                              f"only, not {service}: leave compiled unset")
        return None
    module, reason = core_module()
    if module is None and compiled:
        raise NetlabError(f"the compiled server core is not available: {reason}")
    return module


class CoreStats(Stats):
    """The server's counters: Python's (UDP) plus the compiled core's (TCP).

    The core's counters are C integers it updates without the GIL; reading
    one is a single aligned load, so a snapshot is never torn per counter.
    """

    def __init__(self, base: Stats, core) -> None:
        # Share the base's lock and values: the handle may hold either object.
        self._lock = base._lock
        self._values = base._values
        self.core = core

    def snapshot(self) -> Dict[str, int]:
        values = super().snapshot()
        core = self.core
        for key in _SUMMED:
            values[key] += getattr(core, key)
        values["buffered"] = core.buffered
        values["buffer_peak"] = max(values["buffer_peak"], core.buffer_peak)
        return values
