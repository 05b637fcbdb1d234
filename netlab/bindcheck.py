"""Try to bind a port and explain the outcome, as this process or as another user.

Binding fails for a handful of reasons a learner meets again and again:

* ``EACCES`` (13): the port is below ``net.ipv4.ip_unprivileged_port_start``
  (1024 unless changed) and the process is neither root nor holds
  ``CAP_NET_BIND_SERVICE``;
* ``EADDRINUSE`` (98 on Linux): another socket of the same protocol holds the
  port (psutil names the process);
* ``EADDRNOTAVAIL`` (99): the address is not one of this machine's.

:func:`check_bind` tries it here; :func:`check_bind_as_user` (root only) forks
a child that becomes an ordinary user (clears supplementary groups, sets the
group and user id; the kernel then drops every capability) and tries the very
same bind, so a teacher logged in as root can show what a student would get.
"""
from __future__ import annotations

import errno
import json
import os
import pwd
import socket
import warnings

from netlab import sysinfo
from netlab.binding import explain_bind_error, family_for
from netlab.errors import NetlabError, UsageError

__all__ = ["check_bind", "check_bind_as_user", "current_user"]


def current_user() -> str:
    """The name of this process's effective user (the uid as text when unnamed)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _holders(port: int, proto: str, host: str) -> list:
    try:
        from netlab.netstat import holders

        return holders(port, proto, host)
    except Exception:  # noqa: BLE001 - naming the owner is a bonus, never a failure
        return []


def check_bind(port: int, proto: str = "tcp", host: str = "127.0.0.1") -> dict:
    """Try to bind ``proto`` ``host``:``port`` in this process and explain the result.

    TCP sockets get SO_REUSEADDR as netlab's servers do, so only a real owner
    (not a connection in TIME_WAIT) blocks the port. Returns a dict with
    ``port``, ``protocol``, ``host``, ``user``, ``uid``, ``ok``, ``errno`` (None on
    success), ``error`` (the errno's name), ``reason`` (one sentence),
    ``unprivileged_port_start``, ``privileged_port`` (port below it), ``root``,
    ``cap_net_bind_service`` and ``holders`` (who holds the port, when in use).
    """
    if proto not in ("tcp", "udp"):
        raise UsageError(f"unknown protocol {proto!r}: use tcp or udp")
    start = sysinfo.unprivileged_port_start()
    privileged = 0 < port < start   # port 0 is no port: the OS picks a free one
    root = sysinfo.is_root()
    cap = sysinfo.has_capability(sysinfo.CAP_NET_BIND_SERVICE)
    result = {
        "port": port,
        "protocol": proto,
        "host": host,
        "user": current_user(),
        "uid": os.geteuid(),
        "ok": False,
        "errno": None,
        "error": None,
        "reason": "",
        "unprivileged_port_start": start,
        "privileged_port": privileged,
        "root": root,
        "cap_net_bind_service": cap,
        "holders": [],
    }
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    try:
        sock = socket.socket(family_for(host), kind)
    except OSError as exc:
        raise NetlabError(f"cannot create a {proto} socket for {host}: {exc.strerror}") from None
    try:
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound = sock.getsockname()[1]
    except socket.gaierror as exc:
        raise UsageError(f"unknown host {host!r} ({exc.strerror}); "
                         "use an IP address such as 127.0.0.1") from None
    except OSError as exc:
        result["errno"] = exc.errno
        result["error"] = errno.errorcode.get(exc.errno or 0)
        result["reason"] = explain_bind_error(exc, proto, host, port)
        if exc.errno in (errno.EACCES, errno.EPERM) and privileged and root and not cap:
            # uid 0 is not enough: the kernel checks the capability, and a
            # container or 'setpriv --bounding-set' may have taken it away.
            result["reason"] += ("; this process is root but lacks CAP_NET_BIND_SERVICE "
                                 "(dropped from its capability bounding set)")
        if exc.errno == errno.EADDRINUSE:
            result["holders"] = _holders(port, proto, host)
            if result["holders"]:
                who = ", ".join(f"{h['program'] or '?'} (pid {h['pid']})" if h["pid"] else "a process "
                                "this user may not see" for h in result["holders"][:3])
                result["reason"] += f"; held by {who}"
        return result
    finally:
        sock.close()
    result["ok"] = True
    if port == 0:
        result["reason"] = f"bound: port 0 asks the OS to choose, it chose {bound}"
    elif privileged:
        why = "root" if root else ("CAP_NET_BIND_SERVICE" if cap else "privilege")
        result["reason"] = (f"bound: port {port} is below ip_unprivileged_port_start ({start}), "
                            f"allowed because this process has {why}")
    else:
        result["reason"] = (f"bound: port {port} is at or above ip_unprivileged_port_start "
                            f"({start}), so any user may bind it while it is free")
    return result


def _child_check(fd: int, user: pwd.struct_passwd, port: int, proto: str, host: str) -> None:
    """In the forked child: become ``user``, try the bind, write JSON to ``fd``, exit."""
    code = 0
    try:
        try:
            os.setgroups([])
            os.setgid(user.pw_gid)
            # setuid from root to a non-zero uid clears the permitted, effective
            # and ambient capability sets (no SECBIT_KEEP_CAPS is set), so the
            # child is an ordinary user without CAP_NET_BIND_SERVICE.
            os.setuid(user.pw_uid)
        except OSError as exc:
            data = {"fatal": f"cannot switch to user {user.pw_name}: {exc.strerror}"}
        else:
            try:
                data = check_bind(port, proto, host)
            except NetlabError as exc:
                data = {"fatal": str(exc)}
        payload = json.dumps(data).encode()
        while payload:
            payload = payload[os.write(fd, payload):]
    except BaseException:  # noqa: BLE001 - a forked child must never return into the parent's code
        code = 1
    finally:
        os._exit(code)


def check_bind_as_user(port: int, proto: str = "tcp", host: str = "127.0.0.1",
                       user: str = "nobody") -> dict:
    """Repeat :func:`check_bind` in a child process running as ``user`` (needs root).

    The result has the same keys as :func:`check_bind`, describing the child.
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise UsageError(f"no user named {user!r} on this machine "
                         "(see 'getent passwd'; 'nobody' usually exists)") from None
    if entry.pw_uid == os.geteuid():
        return check_bind(port, proto, host)
    if not sysinfo.is_root():
        raise NetlabError(f"--as-user {user} needs root to switch users "
                          f"(run with sudo, or drop --as-user to check as {current_user()})")
    import netlab.netstat  # noqa: F401 - imported here, not in the forked child

    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that fork() in a threaded process (e.g. the tour,
        # which runs servers in threads) may deadlock the child. This child
        # only binds one socket and writes to a pipe, then _exit()s, taking
        # no lock another thread could hold; exec'ing a fresh interpreter
        # instead would need the interpreter to be readable by USER.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        _child_check(write_fd, entry, port, proto, host)
    os.close(write_fd)
    chunks = []
    try:
        while True:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    try:
        data = json.loads(b"".join(chunks) or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise NetlabError(f"the child process running as {user} gave no answer "
                          "(run with NETLAB_DEBUG=1 and report it)")
    if "fatal" in data:
        raise NetlabError(data["fatal"])
    return data
