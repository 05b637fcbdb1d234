"""The one switch between netlab's compiled cores and their pure-Python twins.

Three parts of netlab come twice, a compiled module built from ``src_c/`` and
a readable Python one with the same names and results (see :data:`TWINS`):

* ``packet``: the packet core, ``netlab.packet._core`` / ``netlab.packet.pure``;
* ``netio``: the socket loops of the benchmarks, ``netlab._netio`` / ``netlab._pynetio``;
* ``servers``: the epoll hot path of the selectors server, ``netlab._fastserve``
  (its twin is the Python loop of ``netlab.servers._selectors``).

One environment variable, ``NETLAB_PURE_PYTHON=1``, makes all three run on
their twin. This module imports nothing of netlab, so any module may ask it.
"""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Optional, Tuple

__all__ = ["CLI_ACTIVE", "OPT_OUT", "TWINS", "choose", "note_twin_fallback",
           "pure_python_requested"]

#: Set to 1 to run on the pure-Python twins instead of the compiled cores.
OPT_OUT = "NETLAB_PURE_PYTHON"

#: Each pair by name, as (compiled module, pure-Python module or None).
TWINS = {
    "packet": ("netlab.packet._core", "netlab.packet.pure"),
    "netio": ("netlab._netio", "netlab._pynetio"),
    "servers": ("netlab._fastserve", None),  # None: the caller runs its Python loop
}

#: Set by the command line (netlab.cli.main), so that only a running command speaks
#: on stderr about a fallback; a library import stays quiet (the reason tells).
CLI_ACTIVE = False
_twin_noted = False


def pure_python_requested() -> bool:
    """True when the environment asks for the pure-Python core (``NETLAB_PURE_PYTHON=1``)."""
    return os.environ.get(OPT_OUT, "").strip() not in ("", "0")


def choose(pair: str) -> Tuple[Optional[ModuleType], str, str]:
    """``(module, "cython" or "python", reason)`` for one pair of :data:`TWINS`.

    The compiled module unless the opt-out is set or it cannot be imported;
    then the twin (``None`` for a pair whose twin is the caller's own loop).
    The reason says why, and how to get the compiled one.
    """
    compiled, pure = TWINS[pair]
    if pure_python_requested():
        return _load(pure), "python", f"{OPT_OUT} is set"
    try:
        return importlib.import_module(compiled), "cython", "compiled core loaded"
    except ImportError as exc:
        return _load(pure), "python", why_not_compiled(exc)


def _load(name: Optional[str]) -> Optional[ModuleType]:
    return None if name is None else importlib.import_module(name)


def in_checkout() -> bool:
    """True when netlab runs from a source folder (``setup.py`` beside the package)."""
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.isfile(os.path.join(parent, "setup.py"))


def why_not_compiled(exc: ImportError) -> str:
    """Why a compiled module did not load, and the way to get it (checkout or install)."""
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if in_checkout():
        # Usually `pip install .` then a command run inside the checkout: Python
        # imports the source folder, which holds no compiled core.
        return (f"compiled core not built in the source folder {parent} ({exc}); "
                f"run netlab from another folder to use the installed copy, "
                f"or build here with: python setup.py build_ext --inplace")
    # An installed copy: the usual cause is an install with the opt-out set.
    return (f"compiled core not part of this install (installed with {OPT_OUT}=1?); "
            f"reinstall without {OPT_OUT} and with a C compiler to get it")


def note_twin_fallback(reason: str) -> None:
    """Say once per process, on stderr, that a command runs on the slow twin
    although nobody asked for it, and how to get the compiled core."""
    global _twin_noted
    if _twin_noted or not CLI_ACTIVE or pure_python_requested():
        return
    _twin_noted = True
    print(f"netlab: warning: running the pure-Python twin, many times slower: {reason}",
          file=sys.stderr, flush=True)
