"""Run student code in a child process with time and resource limits.

Student code never runs inside the grader's own process: a submission may loop
forever, eat memory, open sockets without closing them or call ``os._exit``.
Each probe runs in a fresh child process (:func:`netlab.labs._child.main`) that

* is the leader of its own session, so the grader can stop it *and* anything it
  started with one ``killpg`` of the group it created;
* has ``setrlimit`` limits set before Python starts: CPU seconds, address
  space, open files, file size, and no core dumps;
* gets a wall-clock timeout from the parent, on top of the CPU limit (a
  blocked ``recv`` uses no CPU at all).

Whatever happens (an exception, a timeout, a signal) comes back as a
:class:`ProbeResult`, which :func:`explain` turns into one helpful line.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = [
    "Limits",
    "ProbeFailed",
    "ProbeResult",
    "Sandbox",
    "explain",
    "free_port",
    "run_probe",
    "value_of",
    "wait_for_tcp",
]

# The child's entry point. Not ``python -m netlab.labs._child``: the labs
# package imports _child itself (describe_exception), and runpy then warns
# about the module being imported twice; that warning would end up as the
# "last output" in the message a student reads when a submission crashes.
_CHILD_MAIN = "import sys; from netlab.labs._child import main; sys.exit(main(sys.argv[1:]))"

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Limits:
    """Resource limits of one child process (see ``man setrlimit``)."""

    cpu_seconds: int = 20
    # Address space, not resident memory: every thread reserves its stack in
    # it, so a threaded server with 50 clients needs some head room.
    memory_bytes: int = 2 << 30
    open_files: int = 512
    file_size_bytes: int = 64 << 20


DEFAULT_LIMITS = Limits()


def _preexec(limits: Limits):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


class ProbeFailed(Exception):
    """A probe did not return a value; the message is fit for the student."""


@dataclass
class ProbeResult:
    """What one child process did."""

    ok: bool = False
    value: Any = None
    error: str = ""          # exception class name raised by the probe / student code
    message: str = ""        # its message
    where: str = ""          # student file:line, when the error came from there
    timed_out: bool = False
    timeout: float = 0.0
    returncode: Optional[int] = None
    output: str = ""         # the tail of what the child printed
    extra: dict = field(default_factory=dict)


def _child_env() -> dict:
    env = dict(os.environ)
    # The child must import *this* netlab, and must not litter the student's
    # folder with __pycache__ directories.
    env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("NETLAB_DEBUG", None)
    return env


class Sandbox:
    """One running child: ``with Sandbox(labdir, spec, args) as box: ...``.

    For servers: the probe calls the student's ``serve`` function, which runs
    until :meth:`stop`. For plain probes use :func:`run_probe`.
    """

    def __init__(self, labdir: str, spec: str, args: Optional[dict] = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="netlab-lab-")
        self.result_file = os.path.join(self._tmp.name, "result.json")
        self._out_path = os.path.join(self._tmp.name, "output.txt")
        self._out = open(self._out_path, "w+b")
        self.labdir = labdir
        self.started = time.monotonic()
        # The arguments go through a file: they may be larger than a command line.
        args_file = os.path.join(self._tmp.name, "args.json")
        with open(args_file, "w", encoding="utf-8") as f:
            json.dump(args or {}, f)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_MAIN, self.result_file,
             os.path.abspath(labdir), spec, args_file],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            cwd=os.path.abspath(labdir), env=_child_env(),
            start_new_session=True, preexec_fn=_preexec(limits),
        )
        self._result: Optional[ProbeResult] = None

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> ProbeResult:
        """Wait up to ``timeout`` seconds for the child to finish, then stop it."""
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        result = self.stop()
        result.timed_out = timed_out
        result.timeout = timeout
        return result

    def _kill_group(self) -> None:
        # The child leads its own session, so its pid is also its process
        # group id: this reaches any process the student's code forked too,
        # and nothing that the grader did not start.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            pass

    def stop(self) -> ProbeResult:
        """Stop the child (and its process group) and return what it did."""
        if self._result is not None:
            return self._result
        if self.proc.poll() is None:
            self._kill_group()
        else:
            # It exited by itself; still reap anything it left in its group.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        result = ProbeResult(returncode=self.proc.returncode)
        try:
            with open(self.result_file, encoding="utf-8") as f:
                data = json.load(f)
            result.ok = bool(data.get("ok"))
            result.value = data.get("value")
            result.error = data.get("error", "")
            result.message = data.get("message", "")
            result.where = data.get("where", "")
        except (OSError, ValueError):
            pass
        self._out.seek(0)
        result.output = self._out.read()[-2000:].decode("utf-8", "replace")
        self._out.close()
        self._tmp.cleanup()
        self._result = result
        return result


def run_probe(labdir: str, spec: str, args: Optional[dict] = None, *,
              timeout: float = 10.0, limits: Limits = DEFAULT_LIMITS) -> ProbeResult:
    """Run probe ``spec`` (``"netlab.labs.labNN:probe"``) in a child; wait at most ``timeout`` s."""
    return Sandbox(labdir, spec, args, limits).wait(timeout)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def explain(result: ProbeResult, what: str = "your code") -> str:
    """One line telling a student what went wrong in a probe, and where to look."""
    at = f" ({result.where})" if result.where else ""
    if result.error == "NotImplementedError":
        todo = result.message or "this function is still a TODO"
        return f"not done yet{at}: {todo}"
    if result.error in ("SyntaxError", "IndentationError"):
        return f"{what} does not compile{at}: {result.message}"
    if result.error in ("ModuleNotFoundError", "FileNotFoundError") and not result.where:
        return f"{result.message}"
    if result.error == "MemoryError":
        return f"{what} ran out of memory{at} (the limit is {DEFAULT_LIMITS.memory_bytes >> 20} MiB)"
    if result.error:
        return f"{what} raised {result.error}{at}: {result.message}"[:400]
    if result.timed_out:
        return (f"{what} did not finish within {result.timeout:g} s: an endless loop, "
                f"or a blocking call (accept/recv/connect) without a timeout?")
    code = result.returncode
    if code is not None and code < 0:
        sig = -code
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        why = {
            signal.SIGXCPU: f"it used more than {DEFAULT_LIMITS.cpu_seconds} s of CPU time: an endless loop?",
            signal.SIGXFSZ: "it wrote a file larger than the limit",
            signal.SIGSEGV: "a crash in native code",
            signal.SIGKILL: "killed: over a limit, or stopped by the grader",
        }.get(sig, "")
        return f"{what} was killed by {name}" + (f" ({why})" if why else "")
    tail = _last_line(result.output)
    if code not in (None, 0):
        return f"{what} exited with status {code}" + (f": {tail}" if tail else "")
    return f"{what} stopped without giving a result" + (f" (last output: {tail})" if tail else
                                                         " (did it call os._exit or sys.exit?)")


def value_of(result: ProbeResult, what: str = "your code") -> Any:
    """The probe's value, or :class:`ProbeFailed` with :func:`explain`'s line."""
    if not result.ok:
        raise ProbeFailed(explain(result, what))
    return result.value


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port the OS just handed out as free for ``kind`` on ``host``."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_tcp(box: Sandbox, port: int, timeout: float = 5.0, host: str = "127.0.0.1") -> None:
    """Wait until the student's server accepts on ``port``; :class:`ProbeFailed` if never."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not box.alive():
            res = box.stop()
            raise ProbeFailed(explain(res, "your server")
                              + ("" if res.error else " before it accepted a connection"))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.03)
    raise ProbeFailed(f"your server was not listening on {host}:{port} after {timeout:g} s "
                      f"(does it bind the host and port it was given, and call listen()?)")
