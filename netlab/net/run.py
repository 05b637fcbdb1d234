"""Running a program inside a host: ``ip netns exec NAMESPACE PROGRAM ARGS...``.

``ip netns exec`` enters the namespace and then *becomes* the program (exec,
same process ID), so signals, exit status and the terminal all belong to the
program itself: Ctrl-C stops a server in a host as it would anywhere.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from typing import List, Sequence

from netlab.errors import UsageError
from netlab.net._shell import NetError, need_tool

__all__ = ["exec_in_host", "host_argv", "start_in_host", "stop", "wait_ready"]


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


def start_in_host(ns: str, command: Sequence[str]) -> subprocess.Popen:
    """Start ``command`` in namespace ``ns`` without waiting (see :func:`wait_ready`)."""
    return subprocess.Popen(host_argv(ns, command), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, bufsize=0)


def wait_ready(proc: subprocess.Popen, ready: str = "listening on",
               timeout: float = 15.0) -> None:
    """Wait until ``proc``'s output shows ``ready`` (a server's ``listening on`` line).

    Raises a NetError, after stopping it, if that does not happen within ``timeout`` s.
    """
    seen, deadline = b"", time.monotonic() + timeout
    while ready.encode() not in seen:
        left = deadline - time.monotonic()
        readable = select.select([proc.stdout], [], [], left)[0] if left > 0 else []
        chunk = os.read(proc.stdout.fileno(), 4096) if readable else b""
        if not chunk:
            stop(proc)
            raise NetError(f"{' '.join(map(str, proc.args[4:]))} did not start: "
                           f"{seen.decode(errors='replace').strip() or 'no output'}")
        seen += chunk


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started by :func:`start_in_host` (SIGTERM, then SIGKILL), by its PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
