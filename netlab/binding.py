"""Binding a port, and explaining in plain words why it failed.

Every server, relay and demo in netlab binds through :func:`bind_socket`, so a
learner always gets the same clear answer: the port in use (and how to find the
owner), a port below ``ip_unprivileged_port_start`` without privilege (and what
to use instead), an address that is not on this machine.
"""
from __future__ import annotations

import errno
import ipaddress
import socket

from netlab import sysinfo
from netlab.errors import NetlabError, UsageError

__all__ = ["OFF_BOX_RULE", "bind_socket", "check_own_host", "explain_bind_error", "family_for",
           "format_address", "format_url", "is_own_address", "parse_host"]

# One rule for every netlab tool that sends packets to a host you name
# (``scan`` probes it, ``redirect`` forwards strangers' traffic to it): this
# machine is always fine; any other host needs --authorized.
OFF_BOX_RULE = ("netlab sends traffic to a host that is not this machine only with "
                "--authorized: add it if you own that host or have permission to use it")


def parse_host(text: str, option: str = "--host") -> str:
    """The address a user typed for ``option``: ``127.0.0.1``, ``::1``, ``[::1]`` or a name.

    Brackets are accepted around an IPv6 literal because that is how netlab
    prints one (``tcp://[::1]:7007``); they are removed. An empty address is
    refused: the socket API reads ``""`` as "every interface", which must
    never happen by accident (say ``0.0.0.0`` or ``::`` to mean it).
    """
    host = text.strip()
    if host.startswith("[") or host.endswith("]"):
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else None
        try:
            ipaddress.IPv6Address((inner or "").split("%")[0])
        except ValueError:
            raise UsageError(f"invalid {option} {text!r}: brackets go around an IPv6 address "
                             "only, e.g. [::1]") from None
        host = inner or ""
    if not host:
        raise UsageError(f"invalid {option} {text!r}: give an address such as 127.0.0.1 or ::1 "
                         "(0.0.0.0 or :: to mean every interface)")
    return host


def family_for(host: str) -> int:
    """AF_INET6 for an IPv6 literal such as ``::1``, AF_INET otherwise."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around IPv6 literals (``[::1]:7``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_url(proto: str, host: str, port: int) -> str:
    """``tcp://127.0.0.1:7007``; IPv6 literals in brackets: ``tcp://[::1]:7007``."""
    return f"{proto}://{format_address(host, port)}"


def is_own_address(ip: str) -> bool:
    """True for loopback addresses and addresses of this machine's interfaces
    (``::ffff:127.0.0.1`` included: it is 127.0.0.1 written in IPv6)."""
    addr = ipaddress.ip_address(ip.split("%")[0])
    addr = getattr(addr, "ipv4_mapped", None) or addr
    if addr.is_loopback:
        return True
    try:
        import psutil

        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.address.split("%")[0] == str(addr):
                    return True
    except Exception:  # noqa: BLE001 - when in doubt, treat the host as someone else's
        pass
    return False


def check_own_host(host: str, ip: str, authorized: bool, action: str) -> None:
    """Refuse to ``action`` (``"scan"``, ``"forward to"``) ``host`` (resolved to
    ``ip``) unless it is this machine or the user said ``authorized``."""
    if not authorized and not is_own_address(ip):
        shown = host if host == ip else f"{host} ({ip})"
        raise UsageError(f"refusing to {action} {shown}: it is not this machine; {OFF_BOX_RULE}")


def explain_bind_error(exc: OSError, proto: str, host: str, port: int) -> str:
    """One line naming why binding ``proto`` ``host``:``port`` failed and the way out."""
    where = format_url(proto, host, port)
    start = sysinfo.unprivileged_port_start()
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot bind {where}: port {port}/{proto} is already in use "
                f"(find the owner with 'netlab netstat --listening' or 'ss -lnp'; "
                f"or choose another port, 0 lets the OS pick)")
    if exc.errno in (errno.EACCES, errno.EPERM):
        if port < start:
            alt = 7000 + port if 7000 + port <= 65535 else 0
            return (f"cannot bind {where}: ports below {start} "
                    f"(net.ipv4.ip_unprivileged_port_start on this machine) need root or "
                    f"CAP_NET_BIND_SERVICE; run as root or use port {alt} instead")
        return f"cannot bind {where}: permission denied ({exc.strerror})"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"cannot bind {where}: {host} is not an address of this machine "
                f"(use 127.0.0.1 or ::1 for loopback)")
    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"cannot bind {where}: {exc.strerror or exc} ({name})"


def bind_socket(proto: str, host: str, port: int, *, backlog: int = 128,
                reuse_address: bool = True) -> socket.socket:
    """Create a TCP (listening) or UDP socket bound to ``host``:``port``.

    ``proto`` is ``"tcp"`` or ``"udp"``. TCP sockets get SO_REUSEADDR (so a
    restarted server is not blocked by old TIME_WAIT connections) and are put
    in listening state. Failures raise :class:`NetlabError` with an explanation.
    """
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    try:
        sock = socket.socket(family_for(host), kind)
    except OSError as exc:
        raise NetlabError(f"cannot create a {proto} socket for {host}: {exc.strerror}") from None
    try:
        if proto == "tcp" and reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family_for(host) == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        if proto == "tcp":
            sock.listen(backlog)
    except socket.gaierror as exc:
        sock.close()
        raise NetlabError(f"cannot bind {format_url(proto, host, port)}: unknown host "
                          f"({exc.strerror}); use an IP address such as 127.0.0.1") from None
    except OSError as exc:
        sock.close()
        raise NetlabError(explain_bind_error(exc, proto, host, port)) from None
    return sock
