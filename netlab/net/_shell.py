"""Running ``ip``, ``nft`` and ``tc``: the one place netlab.net starts a program.

Why the ``ip`` tool and not pyroute2 (netlink from Python): every step netlab
takes is then a command a learner can read and type again (``netlab net up
--verbose`` prints them), the namespaces are the named ones that ``ip netns
exec``, ``tcpdump`` and ``nsenter`` users know, the firewall (``nft``) and the
link shaper (``tc``) are command-line tools anyway, and no extra package is
needed. The cost, one short process per step, is a few milliseconds.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from typing import Callable, Optional

from netlab import sysinfo
from netlab.errors import NetlabError

__all__ = ["NetError", "Shell", "need_root", "need_tool"]

# Debian package that provides each tool, for the "how to get it" half of an error.
_PACKAGES = {"ip": "iproute2", "tc": "iproute2", "nft": "nftables", "nmap": "nmap"}


class NetError(NetlabError):
    """A runtime problem of the virtual network (exit status 1)."""


def need_root() -> None:
    """Refuse, in one line, unless this process is root."""
    if not sysinfo.is_root():
        raise NetError("netlab net needs root: network namespaces, nftables and tc are "
                       "root-only (run it with sudo)")


def need_tool(name: str) -> str:
    """The path of ``name``, or a one-line error naming its Debian package."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not path:
        raise NetError(f"{name} is not installed: install the Debian package "
                       f"{_PACKAGES.get(name, name)} (apt-get install {_PACKAGES.get(name, name)})")
    return path


class Shell:
    """Runs commands, optionally echoing each one first (``echo=print``)."""

    def __init__(self, echo: Optional[Callable[[str], None]] = None) -> None:
        self.echo = echo

    def run(self, *argv: str, check: bool = True, input: Optional[str] = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
        """Run ``argv``; on failure (``check``) raise a NetError with its first error line."""
        shown = " ".join(argv)
        if self.echo:
            self.echo("+ " + shown + (" <<EOF\n" + input + "EOF" if input else ""))
        try:
            done = subprocess.run([need_tool(argv[0]), *argv[1:]], capture_output=True,
                                  text=True, input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NetError(f"{shown} did not finish within {timeout:g} s") from None
        if check and done.returncode != 0:
            raise NetError(f"{shown} failed: {first_line(done.stderr)}")
        return done

    def json(self, *argv: str) -> list:
        """Run a command that prints JSON (``ip -j``, ``nft -j``) and parse it."""
        out = self.run(*argv).stdout.strip()
        return json.loads(out) if out else []


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"
