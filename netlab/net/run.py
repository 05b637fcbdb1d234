"""Running a program inside a host: ``ip netns exec NAMESPACE PROGRAM ARGS...``.

``ip netns exec`` enters the namespace and then *becomes* the program (exec,
same process ID), so signals, exit status and the terminal all belong to the
program itself: Ctrl-C stops a server in a host as it would anywhere.
"""
from __future__ import annotations

import os
import shutil
import sys
from typing import List, Sequence

from netlab.errors import UsageError
from netlab.net._shell import NetError, need_tool

__all__ = ["exec_in_host", "host_argv"]


def host_argv(ns: str, command: Sequence[str]) -> List[str]:
    """The argv that runs ``command`` in namespace ``ns``.

    ``netlab ...`` runs this very netlab (``python -m netlab``), so a checkout
    works without an installed console script.
    """
    if not command:
        raise UsageError("no command to run: give one after --, e.g. "
                       "'netlab net run h1 -- ip addr'")
    command = list(command)
    if command[0] == "netlab":
        command = [sys.executable, "-m", "netlab", *command[1:]]
    elif not shutil.which(command[0]):
        raise NetError(f"no program {command[0]!r} found on PATH: check the name "
                       "or give its full path")
    return [need_tool("ip"), "netns", "exec", ns, *command]


def exec_in_host(ns: str, command: Sequence[str]) -> None:
    """Replace this process by ``command`` running in namespace ``ns`` (never returns)."""
    argv = host_argv(ns, command)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
