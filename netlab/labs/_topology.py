"""A private network of routers for one run of student code (lab 16's traceroute).

:func:`in_chain` forks a *keeper* from the grading worker. The keeper

1. moves into a mount namespace of its own and puts an empty tmpfs on
   ``/run/netns``: the named namespaces it makes there are seen by nobody
   else (``ip netns list`` on this machine stays empty), and when the keeper
   and its children are gone, so are their mounts and with them every
   namespace, even if the keeper was killed (a timeout, a crash);
2. builds the chain h1 - r1 - ... - h2 of :mod:`netlab.net.chain` (veth pairs
   between fresh namespaces only: no link to this machine's interfaces);
3. moves itself into h1's network namespace and runs the check there, so
   every sandbox the check starts runs the student's code in h1, with the
   usual restrictions of :mod:`netlab.labs.sandbox`;
4. removes the chain and sends the check's outcome back on a pipe.

Building namespaces and veth pairs needs CAP_NET_ADMIN and CAP_SYS_ADMIN for
the ``ip`` and ``nft`` tools. As root they have them. As another user the
grading worker is in a user namespace of its own (the sandbox's graded mode),
where the keeper holds every capability; it hands the few the tools need on
as *ambient* capabilities while it builds, and drops them before any student
code starts. In practice mode without root there is no such namespace:
:func:`unavailable` says so in one line, and the checks report it as a
failed check (no points without a measurement).
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from netlab.labs import sandbox
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeFailed, descendants

__all__ = ["PREFIX", "Wire", "in_chain", "unavailable"]

PREFIX = "nltr"  # the namespaces' names: nltr-h1, nltr-r1, ... (private to the keeper anyway)
# What ip and nft need, handed to them across exec without root (man 7 capabilities).
_CAP_NET_ADMIN, _CAP_NET_RAW, _CAP_SYS_ADMIN = 12, 13, 21
_ETH_P_ALL = 0x0003  # a packet socket sees what the host sends only with ETH_P_ALL
_ETH_P_IP = 0x0800
_PACKET_OUTGOING = 4


def unavailable() -> Optional[str]:
    """Why a private topology cannot be built here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0 and not sandbox.config.isolated:
        return ("the routers of this check are network namespaces, which need root "
                "or the sandbox's user namespace")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")):
            return f"{tool} is not installed (apt-get install {package})"
    return None


def in_chain(func: Callable, routers: int = 2, silent: Optional[Dict[str, Sequence[str]]] = None,
             timeout: float = 20.0):
    """``func(chain)`` run in h1 of a fresh chain with ``routers`` routers; its JSON-able value.

    ``silent`` maps a host of the chain (``"r1"``, ``"h2"``) to the ICMP
    messages it must not send (nft names: ``time-exceeded``,
    ``destination-unreachable``). CheckFailed and ProbeFailed raised by
    ``func`` come back as themselves. After ``timeout`` seconds the keeper is
    killed, and the chain with it.
    """
    why = unavailable()
    if why:
        raise CheckFailed(f"not run: {why} (grade as root: sudo netlab lab check 16 --path DIR)")
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the keeper reports through the pipe
        os.close(rfd)
        _keeper(func, routers, dict(silent or {}), wfd)
    os.close(wfd)
    data, deadline = b"", time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise CheckFailed(f"the run in the network of routers did not finish within "
                                  f"{timeout:g} s: does every wait have a timeout?")
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(rfd)
        for child in [pid] + descendants(pid):
            try:
                os.kill(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        os.waitpid(pid, 0)
    try:
        outcome = json.loads(data)
    except ValueError:
        raise CheckFailed("the private network of this check stopped without a result; "
                          "please tell your teacher") from None
    if "failed" in outcome:
        raise CheckFailed(outcome["failed"])
    if "probe" in outcome:
        raise ProbeFailed(outcome["probe"])
    if "error" in outcome:
        raise RuntimeError(outcome["error"])
    return outcome["value"]


def _keeper(func: Callable, routers: int, silent: Dict[str, Sequence[str]], wfd: int) -> None:
    from netlab.net import Shell, firewall
    from netlab.net.chain import chain_down, chain_up

    sandbox.die_with_parent()
    sandbox.set_child_subreaper()
    sandbox.config.private_topology = True
    sh, chain = Shell(), None
    try:
        sandbox.private_netns_folder()
        _lend_capabilities()
        chain = chain_up(PREFIX, routers, sh)
        for host, kinds in silent.items():
            firewall.silence_icmp(sh, chain.namespaces[host], tuple(kinds))
        sandbox.clear_ambient_capabilities()
        sandbox.enter_netns(f"/run/netns/{chain.namespaces['h1']}")
        # As in the grading network: an ICMP echo traceroute needs no privilege either.
        sandbox.set_netns_sysctl("net/ipv4/ping_group_range", "0 2147483647")
        outcome = {"value": func(chain)}
    except CheckFailed as exc:
        outcome = {"failed": str(exc)}
    except ProbeFailed as exc:
        outcome = {"probe": str(exc)}
    except BaseException as exc:  # noqa: BLE001 - the grader reports it
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    if chain is not None:
        _lend_capabilities()
        chain_down(chain, sh)  # politeness: the kernel frees it all when we are gone anyway
    try:
        os.write(wfd, json.dumps(outcome, default=repr).encode("utf-8"))
    finally:
        os._exit(0)


def _lend_capabilities() -> None:
    """Without root: let the ip and nft the keeper starts keep the capabilities they need."""
    if os.geteuid() != 0:
        sandbox.raise_ambient_capabilities([_CAP_NET_ADMIN, _CAP_NET_RAW, _CAP_SYS_ADMIN])


class Wire:
    """IPv4 packets on a link, seen from the grader: ``(ttl, protocol, destination)`` of each.

    An AF_PACKET socket on ``device`` of the host whose network namespace is
    bound at ``netns`` (default: the keeper's own, h1), read by a thread until
    :meth:`close`. ``outgoing``: what the host sends, else what it receives.
    ``on_packet(packet)`` sees each one's bytes, in the thread. Use as a
    context manager.
    """

    def __init__(self, device: str = "eth0", lifetime: float = 20.0, netns: Optional[str] = None,
                 outgoing: bool = True, on_packet: Optional[Callable[[bytes], None]] = None) -> None:
        self.packets: List[Tuple[int, int, str]] = []
        self.outgoing, self.on_packet = outgoing, on_packet
        with sandbox.netns(netns) if netns else contextlib.nullcontext():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
        self.sock.bind((device, _ETH_P_ALL))
        self.sock.settimeout(0.02)
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while time.monotonic() < self._deadline:
            try:
                packet, address = self.sock.recvfrom(65535)
            except socket.timeout:
                if self._stop.is_set():
                    return  # stopped, and nothing left in the socket's queue
                continue
            except OSError:
                return
            if address[1] != _ETH_P_IP or (address[2] == _PACKET_OUTGOING) != self.outgoing or len(packet) < 20:
                continue
            ttl, proto = struct.unpack_from("!BB", packet, 8)
            self.packets.append((ttl, proto, socket.inet_ntoa(packet[16:20])))
            if self.on_packet:
                self.on_packet(packet)

    def __enter__(self) -> "Wire":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
