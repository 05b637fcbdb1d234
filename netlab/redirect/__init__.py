"""Port redirection ("80 to 8080") for TCP and UDP, with an optional lossy link.

A redirector listens on one port and forwards to a target ``host:port``:

* **TCP** (:mod:`netlab.redirect._tcp`): every accepted connection gets its
  own connection to the target; bytes are copied both ways, a half-close
  (FIN) is passed on and a reset resets the other side.
* **UDP** (:mod:`netlab.redirect._udp`): there are no connections, so the
  relay keeps one upstream socket per client address; a reply from the
  target arrives on that client's socket, which is how the relay knows whom
  to send it back to. Flows idle for ``udp_idle`` seconds are forgotten.

The lossy link (:mod:`netlab.services.lossy`) turns UDP's letter analogy into
an experiment: datagrams can be dropped (``loss``), sent twice (``duplicate``),
held back so that the next one overtakes them (``reorder``) and delayed
(``delay_ms``), each fate decided by a generator seeded with ``seed``. TCP gets
only the delay, and still delivers every byte in order: the reliability is
TCP's, not the link's.

Both relays run in one thread on one selector loop
(:mod:`netlab.redirect._loop`): :func:`start_redirect` runs it in the
background for Python callers (tours, benchmarks, tests); ``netlab redirect``
runs it in the foreground. A target that is not this machine needs
``authorized=True`` (``--authorized``), the rule ``netlab scan`` follows too.
"""
from __future__ import annotations

from typing import Optional, Sequence

from netlab.errors import UsageError
from netlab.redirect._relay import Redirector, parse_target

__all__ = ["Redirector", "UsageError", "parse_target", "start_redirect"]


def start_redirect(listen_port: int, target_host: str, target_port: int, host: str = "127.0.0.1",
                   protocols: Sequence[str] = ("tcp", "udp"), loss: float = 0.0,
                   duplicate: float = 0.0, reorder: float = 0.0, delay_ms: float = 0.0,
                   seed: Optional[int] = None, udp_idle: float = 30.0,
                   authorized: bool = False) -> Redirector:
    """Start a redirector in a background thread and return it.

    The handle has ``.ports`` (``{"tcp": n, "udp": n}``), ``.stats()``,
    ``.summary()``, ``.stop()`` and is a context manager::

        with start_redirect(0, "127.0.0.1", 7007, protocols=("udp",), loss=0.1, seed=1) as r:
            ...  # send to r.ports["udp"]
        print(r.stats()["udp"]["dropped"])
    """
    return Redirector(listen_port, target_host, target_port, host=host, protocols=protocols,
                      loss=loss, duplicate=duplicate, reorder=reorder, delay_ms=delay_ms,
                      seed=seed, udp_idle=udp_idle, authorized=authorized).start()
