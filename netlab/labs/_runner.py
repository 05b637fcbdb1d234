"""Run student code in a child process: sandboxed, limited, timed by the grader.

Student code never runs inside the grader's own process: a submission may loop
forever, eat memory, open sockets without closing them, fork, or call
``os._exit``. Each probe runs in a fresh child (:mod:`netlab.labs.probes.runtime`,
standard library only) that

* runs in the sandbox of :mod:`netlab.labs.sandbox` (bubblewrap: own user,
  pid and mount namespaces, in the grading worker's private network), on a
  private copy of the submission, or in practice mode in a plain child;
* has ``setrlimit`` limits set before it starts: CPU seconds, address space,
  processes, open files, file size, and no core dumps;
* gets a wall-clock timeout from the grader's own clock, on top of the CPU
  limit (a blocked ``recv`` uses no CPU at all), after which the grader kills
  it and everything it started.

Whatever happens (an exception, a timeout, a signal) comes back as a
:class:`ProbeResult`, which :func:`explain` turns into one helpful line.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from netlab.labs import sandbox

__all__ = [
    "Limits",
    "ProbeFailed",
    "ProbeResult",
    "Sandbox",
    "explain",
    "free_port",
    "probe_sources",
    "run_probe",
    "value_of",
    "wait_for_tcp",
]

_PROBES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probes")
# The biggest result a probe may return (lab 8 sends whole captures back as hex).
MAX_RESULT_BYTES = 32 << 20


@dataclass(frozen=True)
class Limits:
    """Resource limits of one child process (see ``man setrlimit``)."""

    cpu_seconds: int = 20
    # Address space, not resident memory: every thread reserves its stack in
    # it, so a threaded server with 50 clients needs some head room.
    memory_bytes: int = 2 << 30
    open_files: int = 512
    file_size_bytes: int = 64 << 20
    # Processes and threads of the sandbox user (all sandboxes of one grader together).
    processes: int = 2048


DEFAULT_LIMITS = Limits()


def _preexec(limits: Limits, isolated: bool):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_bytes, limits.file_size_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if isolated:
            # Counted per real uid: the sandbox user's processes and threads.
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        sandbox.die_with_parent()
    return apply


def probe_sources(spec: str) -> Dict[str, str]:
    """The source texts a probe needs in the child: ``{"lab08": "..."}`` for ``lab08:func``.

    ``spec`` is ``func`` (a probe of the runtime itself), ``labNN:func`` (a
    file in ``netlab/labs/probes/``) or ``/path/to/file.py:func`` (a teacher's
    own probe file, for hidden checks).
    """
    where, _, _ = spec.rpartition(":")
    if not where:
        return {}
    path = where if where.endswith(".py") else os.path.join(_PROBES_DIR, where + ".py")
    with open(path, encoding="utf-8") as f:
        return {os.path.basename(path)[:-3] if where.endswith(".py") else where: f.read()}


def _runtime_source() -> str:
    with open(os.path.join(_PROBES_DIR, "runtime.py"), encoding="utf-8") as f:
        return f.read()


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


def _spec_name(spec: str) -> str:
    where, _, func = spec.rpartition(":")
    if where.endswith(".py"):
        return os.path.basename(where)[:-3] + ":" + func
    return spec


class Sandbox:
    """One running child: ``with Sandbox(labdir, spec, args) as box: ...``.

    ``labdir`` is copied to a private folder first, so the student's own
    folder never changes. ``inputs`` (name -> path) are grader files the probe
    may read (read-only in the sandbox); the probe finds their paths in the
    ``inputs`` argument. For servers: the probe calls the student's ``serve``
    function, which runs until :meth:`stop`. For plain probes use :func:`run_probe`.
    """

    def __init__(self, labdir: str, spec: str, args: Optional[dict] = None,
                 limits: Limits = DEFAULT_LIMITS, inputs: Optional[Dict[str, str]] = None) -> None:
        self.isolated = sandbox.config.isolated
        self._tmp = tempfile.mkdtemp(prefix="netlab-box-")
        os.chmod(self._tmp, 0o711)  # the sandbox user must reach its copy, and list nothing
        slug = os.path.basename(os.path.abspath(labdir)) or "submission"
        work = os.path.join(self._tmp, "work")
        shutil.copytree(labdir, work, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", ".netlab-*"))
        args = dict(args or {})
        inputs_dir = None
        if inputs:
            inputs_dir = os.path.join(self._tmp, "inputs")
            os.mkdir(inputs_dir)
            for name, path in inputs.items():
                shutil.copyfile(path, os.path.join(inputs_dir, name))
            os.chmod(inputs_dir, 0o755)
        if self.isolated:
            inside = f"/tmp/{slug}"
            if os.geteuid() == 0:
                for root, dirs, files in os.walk(work):
                    for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                        os.lchown(name, sandbox.NOBODY, sandbox.NOBODY)
            if inputs:
                args["inputs"] = {name: f"{sandbox.INPUTS}/{name}" for name in inputs}
            prefix = sandbox.bwrap_argv(work, inside, inputs_dir)
        else:
            inside = work
            if inputs:
                args["inputs"] = {name: os.path.join(inputs_dir, name) for name in inputs}
            prefix = []
        self.labdir = inside
        request = {"sources": probe_sources(spec), "probe": _spec_name(spec), "labdir": inside,
                   "args": args,
                   "loopback_only": not (self.isolated or sandbox.config.private_topology)}
        files = {}
        for name in ("request", "result", "output"):
            files[name] = open(os.path.join(self._tmp, name), "w+b")
        files["request"].write(json.dumps(request).encode("utf-8"))
        files["request"].seek(0)
        self._result_file, self._out = files["result"], files["output"]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": sandbox.HOME if self.isolated else work,
               "LANG": "C.UTF-8"}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            prefix + [os.path.realpath(sys.executable), "-I", "-S", "-B", "-u", "-c", _runtime_source()],
            stdin=files["request"], stdout=self._result_file, stderr=self._out,
            cwd=work, env=env, close_fds=True,
            start_new_session=True, preexec_fn=_preexec(limits, self.isolated),
        )
        files["request"].close()
        self._result: Optional[ProbeResult] = None

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> ProbeResult:
        """Wait up to ``timeout`` seconds (the grader's clock) for the child, then stop it."""
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        result = self.stop()
        result.timed_out = timed_out
        result.timeout = timeout
        return result

    def processes(self) -> List[int]:
        """The pids of the student's processes (not bwrap's own), children first found first."""
        return [pid for pid in descendants(self.proc.pid) if _comm(pid) != "bwrap"]

    def _kill_all(self) -> None:
        # Everything the child started is a descendant: in the sandbox its pid
        # namespace keeps them (and dies with bwrap); in practice mode the
        # grader is their subreaper. SIGKILL works on stopped processes too.
        family = descendants(self.proc.pid)
        for pid in [self.proc.pid] + family:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not self.isolated:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            pass
        _reap(family)

    def stop(self) -> ProbeResult:
        """Stop the child (and all it started) and return what it did."""
        if self._result is not None:
            return self._result
        self._kill_all()
        result = ProbeResult(returncode=self.proc.returncode)
        self._result_file.seek(0)
        raw = self._result_file.read(MAX_RESULT_BYTES)
        try:
            data = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            result.ok = data.get("ok") is True
            result.value = data.get("value")
            result.error = str(data.get("error", ""))[:200]
            result.message = str(data.get("message", ""))[:2000]
            result.where = str(data.get("where", ""))[:200]
        self._out.seek(0, os.SEEK_END)
        size = self._out.tell()
        self._out.seek(max(0, size - 2000))
        result.output = self._out.read().decode("utf-8", "replace")
        self._out.close()
        self._result_file.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._result = result
        return result


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def descendants(pid: int) -> List[int]:
    """Every living descendant of ``pid`` (from ``/proc/PID/task/TID/children``)."""
    out: List[int] = []
    todo = [pid]
    while todo and len(out) < 10000:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", encoding="ascii") as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                continue
            for kid in kids:
                if kid not in out:
                    out.append(kid)
                    todo.append(kid)
    return out


def _reap(pids: List[int]) -> None:
    """Reap those of ``pids`` that were re-parented to us (the grader is a subreaper)."""
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # not our child: bwrap's pid namespace or init reaps it


def run_probe(labdir: str, spec: str, args: Optional[dict] = None, *,
              timeout: float = 10.0, limits: Limits = DEFAULT_LIMITS,
              inputs: Optional[Dict[str, str]] = None) -> ProbeResult:
    """Run probe ``spec`` (``"labNN:probe"``, see :func:`probe_sources`) in a child; at most ``timeout`` s."""
    return Sandbox(labdir, spec, args, limits, inputs).wait(timeout)


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
