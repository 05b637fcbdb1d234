"""The sandbox student code runs in: namespaces from bubblewrap, a private network.

Graded mode (``lab check`` where the isolation is available, ``lab grade``,
the Gradescope bundle) grades each submission in a *grading worker*: a
process forked from netlab that first moves into a network namespace of its
own, with only ``lo`` up (:func:`enter_private_network`). The checks and the
grader's peers (servers, clients, sinks) run in that worker, so they share the
namespace with the student's code, and nothing in it can reach another host:
an off-host ``connect()`` fails with ENETUNREACH before any packet is sent.

Every run of student code then starts through ``bwrap`` (:func:`bwrap_argv`):

* an unprivileged uid: as root, bwrap sets up the namespaces and ``setpriv``
  becomes uid/gid 65534 with no capabilities before the student's Python
  starts; otherwise a user namespace maps the grader's own uid;
* its own pid namespace: whatever it starts, with ``setsid`` or a double fork,
  dies with it, and it cannot see or signal the grader;
* a read-only view of the system (``--ro-bind / /``) with the grader's files
  hidden under empty tmpfs mounts: netlab's package, the checkout with the
  reference solutions, the course folder, the submissions folder, the hidden
  checks, home folders and the host's /tmp;
* a private writable copy of the submission and a private /tmp;
* ``python -I -S``: no site-packages, the standard library only.

Where bubblewrap or user namespaces are missing (a student's laptop), practice
mode runs the same checks in a plain child process and says so in one line;
``lab grade`` and the Gradescope bundle refuse to run.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

__all__ = [
    "NOBODY",
    "SandboxConfig",
    "bwrap_argv",
    "config",
    "clear_ambient_capabilities",
    "die_with_parent",
    "drop_privileges_argv",
    "enter_netns",
    "enter_private_network",
    "isolation_status",
    "netns",
    "private_netns_folder",
    "raise_ambient_capabilities",
    "require_isolation",
    "set_child_subreaper",
]

NOBODY = 65534
HOME = "/tmp"  # the private /tmp; the submission's copy is /tmp/labNN-topic
INPUTS = "/tmp/grader-input"  # read-only files the grader hands in (lab 8's captures)

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_PR_SET_PDEATHSIG = 1
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 2, 4
_CAPABILITY_VERSION_3 = 0x20080522
_PR_SET_CHILD_SUBREAPER = 36
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../netlab
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class SandboxConfig:
    """How this process runs student code (set once by the grading worker)."""

    isolated: bool = False
    hidden: List[str] = field(default_factory=list)  # extra folders to hide (submissions, checks)
    # In a private topology (netlab.labs._topology): student code may send to its
    # routers, which the network namespaces alone keep from any other host.
    private_topology: bool = False


config = SandboxConfig()


def _hidden_paths() -> List[str]:
    """Folders the sandbox must not see, the grader's first."""
    from netlab.labs._registry import course_dir

    paths = [_PACKAGE_DIR, os.path.dirname(_PACKAGE_DIR)]
    # A checkout (pyproject.toml beside netlab/) holds exercises/solutions.
    try:
        paths.append(course_dir())
    except Exception:  # noqa: BLE001 - no course folder: nothing to hide
        pass
    # /run holds the host's Unix sockets (D-Bus, container engines): a read-only
    # mount does not stop connect() to a socket file.
    paths += ["/home", "/root", "/srv", "/mnt", "/media", "/var/tmp", "/run", "/var/run",
              os.path.expanduser("~"), os.getcwd()]
    paths += config.hidden
    out = []
    for path in paths:
        real = os.path.realpath(path)
        if real != "/" and os.path.isdir(real) and real not in out:
            out.append(real)
    # One tmpfs over the outermost folder: a mount point inside it would show up as an empty folder.
    return [p for p in out if not any(o != p and _under(p, o) for o in out)]


def _python_roots() -> List[str]:
    """The folders the interpreter and its standard library live in."""
    roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    import sysconfig
    roots.add(os.path.realpath(sysconfig.get_paths()["stdlib"]))
    # The outermost folders only: one bind each.
    return [r for r in sorted(roots) if not any(o != r and _under(r, o) for o in roots)]


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def bwrap_argv(work: str, inside: str, inputs: Optional[str] = None) -> List[str]:
    """The ``bwrap`` command line around a student process.

    ``work`` (the private copy of the submission) appears read-write at
    ``inside``; ``inputs`` (grader files) read-only at :data:`INPUTS`.
    """
    hidden = _hidden_paths()
    as_root = os.geteuid() == 0
    argv = [shutil.which("bwrap") or "bwrap"] + ([] if as_root else ["--unshare-user"]) + [
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            # not --unshare-net: the grading worker already made a private network and
            # its peers are in it.
            "--die-with-parent", "--new-session",
            "--ro-bind", "/", "/",
            "--proc", "/proc", "--dev", "/dev",
            # a private /tmp, writable by the sandbox user, 256 MiB at most
            "--perms", "1777", "--size", str(256 << 20), "--tmpfs", "/tmp"]
    for path in hidden:
        argv += ["--tmpfs", path]
    # The interpreter may live under a hidden folder (a venv in a home folder): bind it back,
    # then hide netlab once more in case it is installed in there.
    rebound = []
    for python_root in _python_roots():
        above = [h for h in hidden if _under(python_root, h)]
        if above:
            argv += ["--ro-bind", python_root, python_root]
            rebound.append(python_root)
            # bwrap made the folders between the tmpfs and the bind with their host modes
            # (a home folder is often 0700): let the sandbox user through.
            folder = os.path.dirname(python_root)
            while _under(folder, min(above, key=len)) and folder != "/":
                argv += ["--chmod", "0755", folder]
                folder = os.path.dirname(folder)
    if any(_under(_PACKAGE_DIR, r) for r in rebound):
        argv += ["--tmpfs", _PACKAGE_DIR]
    argv += ["--bind", work, inside]
    if inputs:
        argv += ["--ro-bind", inputs, INPUTS]
    argv += ["--chdir", inside, "--setenv", "HOME", HOME]
    argv.append("--")
    if as_root:
        argv += drop_privileges_argv()
    return argv


def drop_privileges_argv() -> List[str]:
    """``setpriv`` to uid/gid 65534, no groups, no capabilities, no way back (as root)."""
    return [shutil.which("setpriv") or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def die_with_parent() -> None:
    """In a child about to exec: SIGKILL when the process that started it goes away."""
    _libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)


def set_child_subreaper() -> None:
    """Orphans of our children become ours (not init's), so the grader can find and stop them."""
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def enter_private_network() -> None:
    """Move this process into a new network namespace with only ``lo``, and bring ``lo`` up.

    As root that is one ``unshare(CLONE_NEWNET)``; otherwise a user namespace
    comes first (mapping our own uid), which gives the rights over the new
    network namespace and nothing outside it.
    """
    if os.geteuid() == 0:
        _unshare(_CLONE_NEWNET)
    else:
        uid, gid = os.geteuid(), os.getegid()
        _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as f:
                f.write(text)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def private_netns_folder() -> None:
    """A mount namespace of our own with an empty ``/run/netns`` (single-threaded callers only).

    The namespaces ``ip netns add`` makes from here on are bound under it,
    seen by no other process, and released by the kernel when this process
    and its children are gone.
    """
    _unshare(_CLONE_NEWNS)
    if _libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount --make-rprivate /: {os.strerror(err)}")
    # Without root, /run/netns may be missing and /run not ours: a tmpfs over
    # all of /run then (the sandbox hides /run anyway).
    if os.geteuid() == 0:
        os.makedirs("/run/netns", exist_ok=True)
    target = b"/run/netns" if os.path.isdir("/run/netns") else b"/run"
    if _libc.mount(b"netlab", target, b"tmpfs", 0, b"mode=0755") != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs {target.decode()}: {os.strerror(err)}")
    os.makedirs("/run/netns", exist_ok=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def raise_ambient_capabilities(caps: List[int]) -> None:
    """Keep ``caps`` (numbers, ``man 7 capabilities``) across exec for the programs we start.

    In a user namespace we made, this process holds every capability, but a
    program it execs as a user other than (namespace) root loses them: an
    ``ip`` that must add namespaces and veth pairs keeps them only as
    *ambient* capabilities, which must first be inheritable.
    """
    _set_inheritable(caps)
    for cap in caps:
        if _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAP_AMBIENT_RAISE, {cap})")


def clear_ambient_capabilities() -> None:
    """Programs started from now on get no capabilities from us (bwrap refuses to start with some)."""
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    _set_inheritable([])


def _set_inheritable(caps: List[int]) -> None:
    """Make exactly ``caps`` inheritable (what ambient capabilities need first)."""
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if _libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].inheritable = data[1].inheritable = 0
    for cap in caps:
        data[cap // 32].inheritable |= 1 << (cap % 32)
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def enter_netns(path: str) -> None:
    """Move this process (thread) into the network namespace bound at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, path)
    finally:
        os.close(fd)


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns {what}: {os.strerror(err)}")


@contextlib.contextmanager
def netns(path: str) -> Iterator[None]:
    """``with netns(path):`` this thread is in that network namespace, and back after.

    A socket stays in the namespace it was made in: the grader opens sockets
    in a host of its network this way, and uses them from anywhere.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        enter_netns(path)
        yield
    finally:
        _setns(own, "back")
        os.close(own)


def set_netns_sysctl(name: str, value: str) -> bool:
    """Set a per-namespace sysctl (``net/ipv4/tcp_wmem``) in the private network; False if refused."""
    if name == "net/ipv4/ping_group_range" and os.geteuid() != 0:
        # Only groups mapped into our user namespace can be named: ours alone,
        # which is also the group of the student's code there.
        value = f"{os.getegid()} {os.getegid()}"
    try:
        with open(f"/proc/sys/{name}", "w", encoding="ascii") as f:
            f.write(value)
        return True
    except OSError:
        return False


_STATUS: Optional[Tuple[bool, str]] = None


def isolation_status() -> Tuple[bool, str]:
    """``(True, "")`` when student code can be isolated here, else ``(False, why)``.

    Tried for real once per process: a throw-away ``bwrap`` run as the
    sandbox will run it.
    """
    global _STATUS
    if _STATUS is not None:
        return _STATUS
    if not sys.platform.startswith("linux"):
        _STATUS = (False, "namespaces need Linux")
        return _STATUS
    if not shutil.which("bwrap"):
        _STATUS = (False, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        return _STATUS
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        _STATUS = (False, "setpriv is not installed: apt-get install util-linux")
        return _STATUS
    root = os.geteuid() == 0
    argv = ([shutil.which("bwrap")] + ([] if root else ["--unshare-user"])
            + ["--unshare-pid", "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/",
               "--proc", "/proc", "--"] + (drop_privileges_argv() if root else []) + ["/bin/true"])
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=10)
        ok = proc.returncode == 0
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if not ok else []
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, why = False, [str(exc)]
    if ok and os.geteuid() != 0:
        ok, why = _try_private_network()
    _STATUS = (ok, "" if ok else "user namespaces are not available here"
               + (f" ({why[0]})" if why else "") + ": ask for kernel.unprivileged_userns_clone=1 "
               "or grade as root")
    return _STATUS


def _try_private_network() -> Tuple[bool, list]:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only reports by exit status
        try:
            enter_private_network()
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0, ["no private network namespace"]


def require_isolation(what: str) -> None:
    """NetlabError unless the sandbox is available: graded runs never fall back."""
    from netlab.errors import NetlabError

    ok, why = isolation_status()
    if not ok:
        raise NetlabError(f"{what} needs the sandbox, which is not available: {why} "
                          f"(practice with 'netlab lab check N', which runs without it)")
