"""Servers for the six classic services, in four concurrency models.

:func:`start_server` binds synchronously (so a port in use or a privileged
port fails right away with a :class:`~netlab.errors.NetlabError` that explains
it) and then serves in background thread(s). The returned
:class:`ServerHandle` reports the bound ports and counters and stops the
server; it is a context manager::

    with start_server("echo", port=0) as srv:
        print(srv.urls)          # ['tcp://127.0.0.1:40123', 'udp://127.0.0.1:40123']

The protocol logic comes from :mod:`netlab.services` (sans-I/O); this package
only moves bytes. Models:

``iterative``
    one thread, one client at a time: the 50th client waits for the 49 before it.
``threaded``
    one thread per TCP connection, blocking sockets.
``selectors``
    one thread, non-blocking sockets and readiness events, a bounded output
    buffer per connection (the default: it scales best). For echo and discard
    its TCP side runs in the compiled epoll loop ``netlab._fastserve`` when
    that is built (``ServerHandle.compiled``); ``compiled=False`` or
    ``NETLAB_PURE_PYTHON=1`` keeps the readable Python loop.
``asyncio``
    one event-loop thread, one coroutine per connection.

Every model serves both TCP and UDP; UDP replies pass the loop guard and the
per-source rate limit of :mod:`netlab.services.guard`.
"""
from __future__ import annotations

import threading
from typing import Dict, Iterable, List, Optional

from netlab import services
from netlab.errors import NetlabError
from netlab.servers._asyncio import AsyncioEngine
from netlab.servers._blocking import IterativeEngine, ThreadedEngine
from netlab.servers._common import Limits, Stats, bind_all, format_url
from netlab.servers._selectors import SelectorsEngine

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PORTS",
    "MODELS",
    "PROTOCOLS",
    "Limits",
    "ServerHandle",
    "format_url",
    "start_server",
]

MODELS = ("iterative", "threaded", "selectors", "asyncio")
#: The model that scales best, with one thread and bounded memory per connection.
DEFAULT_MODEL = "selectors"
#: 7000 + the well-known port, bindable without privilege and easy to remember
#: (read from the service table, :data:`netlab.services.SERVICE_TABLE`).
DEFAULT_PORTS: Dict[str, int] = services.DEFAULT_PORTS
PROTOCOLS = ("tcp", "udp")

_ENGINES = {
    "iterative": IterativeEngine,
    "threaded": ThreadedEngine,
    "selectors": SelectorsEngine,
    "asyncio": AsyncioEngine,
}


class ServerHandle:
    """A running server: its ports, URLs and counters; :meth:`stop` ends it."""

    def __init__(self, engine, host: str, ports: Dict[str, int]) -> None:
        self._engine = engine
        self._stopped = False
        self._lock = threading.Lock()
        self.service: str = engine.service
        self.model: str = engine.model
        self.host = host
        self.limits: Limits = engine.limits
        #: ``{"tcp": port, "udp": port}`` for the protocols bound.
        self.ports: Dict[str, int] = dict(ports)
        #: True when the TCP side runs in the compiled core (netlab._fastserve).
        self.compiled: bool = bool(getattr(engine, "compiled", False))

    @property
    def urls(self) -> List[str]:
        """``["tcp://127.0.0.1:7007", "udp://127.0.0.1:7007"]`` (IPv6 in brackets)."""
        return [format_url(proto, self.host, port) for proto, port in self.ports.items()]

    @property
    def port(self) -> int:
        """The port number (the same for TCP and UDP)."""
        return next(iter(self.ports.values()))

    @property
    def running(self) -> bool:
        return not self._stopped

    @property
    def error(self) -> Optional[BaseException]:
        """The exception that ended the serving thread early, if any."""
        return self._engine.error

    @property
    def wakeup_fd(self) -> int:
        """A descriptor for ``signal.set_wakeup_fd()``: a signal then stops the
        serving loops at once (the CLI does this for Ctrl-C and SIGTERM)."""
        return self._engine.wakeup_fd

    def stats(self) -> Dict[str, int]:
        """Counters: connections, datagrams, bytes_in, bytes_out, and more detail
        (active, rejected, timeouts, errors, replies, udp_looped, udp_limited,
        udp_dropped, buffered, buffer_peak)."""
        return self._engine.stats.snapshot()

    def stop(self) -> Dict[str, int]:
        """Close every socket, join the threads; return the final counters."""
        with self._lock:
            if not self._stopped:
                self._stopped = True
                self._engine.stop()
        return self.stats()

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        core = " compiled" if self.compiled else ""
        return (f"<ServerHandle {self.service} {self.model}{core} {' '.join(self.urls)} "
                f"{state}>")


def start_server(service: str, host: str = "127.0.0.1", port: int = 0,
                 protocols: Iterable[str] = PROTOCOLS, model: str = DEFAULT_MODEL,
                 compiled: Optional[bool] = None, **limits) -> ServerHandle:
    """Bind ``service`` on ``host``:``port`` for ``protocols`` and serve it in the background.

    ``port`` 0 lets the OS choose (TCP and UDP still share one number).
    ``limits`` are the fields of :class:`Limits`: ``idle_timeout``,
    ``max_connections``, ``out_buffer``, ``udp_rate``, ``udp_burst``.
    ``compiled`` (selectors model, echo and discard): None uses the compiled
    TCP loop when it is built and ``NETLAB_PURE_PYTHON`` is unset, False
    keeps the Python loop, True requires the compiled one.
    Binding errors raise :class:`NetlabError` with a one-line explanation.
    """
    if service not in services.SERVICES:
        raise NetlabError(f"unknown service {service!r}: choose one of "
                          f"{', '.join(services.SERVICES)}")
    if model not in _ENGINES:
        raise NetlabError(f"unknown server model {model!r}: choose one of {', '.join(MODELS)}")
    protocols = tuple(dict.fromkeys(protocols))
    if not protocols or any(p not in PROTOCOLS for p in protocols):
        raise NetlabError(f"protocols must be 'tcp' and/or 'udp', not {protocols!r}")
    if not 0 <= int(port) <= 65535:
        raise NetlabError(f"invalid port {port}: ports run from 0 to 65535")
    if compiled and model != "selectors":
        raise NetlabError(f"the compiled server core belongs to the selectors model, not "
                          f"{model}: use model='selectors' or leave compiled unset")
    parsed = Limits.from_kwargs(limits)
    socks = bind_all(host, int(port), protocols)
    ports = {proto: sock.getsockname()[1] for proto, sock in socks.items()}
    try:
        if model == "selectors":
            engine = SelectorsEngine(service, socks, parsed, Stats(), compiled=compiled)
        else:
            engine = _ENGINES[model](service, socks, parsed, Stats())
    except BaseException:
        for sock in socks.values():
            sock.close()
        raise
    try:
        engine.start()
    except BaseException:
        engine.stop()
        raise
    if engine.error is not None:  # e.g. the asyncio loop could not start serving
        engine.stop()
        raise NetlabError(f"the {model} {service} server failed to start: "
                          f"{type(engine.error).__name__}: {engine.error}")
    return ServerHandle(engine, host, ports)
