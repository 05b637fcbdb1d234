"""Grading workers: one forked process per submission, in its own network namespace.

:func:`grade_many` is ``netlab lab grade`` (a whole class, ``--jobs`` at a
time) and, with one folder, ``netlab lab check``: the same code path, so a
submission scores the same both ways. Each submission is graded in a worker
process forked from here, which moves into a private network namespace
(graded mode) and then runs the lab's checks; the student's code runs in
bubblewrap sandboxes started by the worker (:mod:`netlab.labs._runner`).

The worker reports each finished test as one JSON line on a pipe only it
holds (the sandboxes get no copy of it). This process keeps the time on its
own clock: a worker over ``timeout`` seconds is killed, with everything it
started, and the submission gets status ``timeout`` with the tests done so
far; a worker that dies without a result gives status ``error``.
"""
from __future__ import annotations

import csv
import json
import os
import select
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from netlab.labs import sandbox
from netlab.labs._grade import grade
from netlab.labs._registry import Check, Lab

__all__ = ["CSV_HEADER", "default_timeout", "grade_many", "in_worker", "submissions", "write_csv"]

CSV_HEADER = ["submission", "score", "max_score", "status", "seconds"]
# Every run of student code gets a fresh copy of the submission: a lab folder
# is a few source files, so anything this big is a mistake (or an attack).
MAX_SUBMISSION_BYTES = 32 << 20


def default_timeout(lab: Lab) -> float:
    """Seconds a submission may take in all: the lab's budget, the import, one slow check on top."""
    return lab.budget + lab.import_timeout + 30.0


def submissions(folder: str) -> List[str]:
    """The submission folders in ``folder`` (one per student), sorted by name."""
    names = sorted(n for n in os.listdir(folder)
                   if not n.startswith(".") and os.path.isdir(os.path.join(folder, n)))
    return [os.path.join(folder, n) for n in names]


def _too_big(path: str) -> Optional[str]:
    """A message when the folder holds more than :data:`MAX_SUBMISSION_BYTES` (or files we cannot read)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            if total > MAX_SUBMISSION_BYTES:
                return (f"the submission holds more than {MAX_SUBMISSION_BYTES >> 20} MiB: hand in the "
                        f"lab's source files only")
    return None


def _worker(lab: Lab, labdir: str, extra: Sequence[Check], hint_levels: Dict[str, int],
            isolated: bool, hidden: List[str], wfd: int) -> None:
    """The forked worker's whole life (never returns)."""
    code = 0
    try:
        out = os.fdopen(wfd, "w", encoding="utf-8")
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        sandbox.set_child_subreaper()
        sandbox.config.isolated = isolated
        sandbox.config.hidden = list(hidden)
        if isolated:
            sandbox.enter_private_network()
            for name, value in lab.sysctls.items():
                sandbox.set_netns_sysctl(name, value)

        def report(test: dict) -> None:
            out.write(json.dumps({"test": test}) + "\n")
            out.flush()
        result = grade(lab, labdir, extra, hint_levels, on_test=report)
        out.write(json.dumps({"result": result}) + "\n")
        out.flush()
    except BaseException as exc:  # noqa: BLE001 - reported as the submission's error
        try:
            os.write(wfd, (json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
        except OSError:
            pass
        code = 1
    os._exit(code)


@dataclass
class _Job:
    path: str
    pid: int
    rfd: int
    started: float
    buffer: bytes = b""
    tests: List[dict] = field(default_factory=list)
    result: Optional[dict] = None
    error: str = ""


def _start(lab: Lab, path: str, extra: Sequence[Check], hint_levels: Dict[str, int],
           isolated: bool, hidden: List[str]) -> _Job:
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the worker reports through the pipe
        os.close(rfd)
        _worker(lab, path, extra, hint_levels, isolated, hidden, wfd)
    os.close(wfd)
    return _Job(path, pid, rfd, time.monotonic())


def _read(job: _Job) -> bool:
    """Read what the worker sent; True at the end of its pipe."""
    chunk = os.read(job.rfd, 1 << 16)
    job.buffer += chunk
    while b"\n" in job.buffer:
        line, job.buffer = job.buffer.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if "test" in msg:
            job.tests.append(msg["test"])
        elif "result" in msg:
            job.result = msg["result"]
        elif "error" in msg:
            job.error = str(msg["error"])
    return not chunk


def _kill_worker(job: _Job) -> None:
    # Its sandboxes die with it (bwrap's parent-death signal, then their pid
    # namespaces); in practice mode its children have a parent-death signal too.
    try:
        os.kill(job.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _finish(lab: Lab, job: _Job, status: str, extra: Sequence[Check]) -> dict:
    os.close(job.rfd)
    try:
        os.waitpid(job.pid, 0)
    except ChildProcessError:
        pass
    seconds = round(time.monotonic() - job.started, 2)
    max_score = lab.max_score + sum(c.points for c in extra)
    if job.result is not None and status == "graded":
        result = dict(job.result)
    else:
        if status == "graded":
            status = "error"
        result = {"lab": lab.number, "score": sum(t["points"] for t in job.tests if t["passed"]),
                  "max_score": max_score, "tests": job.tests}
        result["message"] = (job.error or "the grader stopped without a result") if status == "error" \
            else f"grading took longer than the time limit and was stopped after {seconds:g} s"
    name = os.path.basename(os.path.normpath(job.path))
    return {"submission": name, **result, "status": status, "seconds": seconds}


def grade_many(lab: Lab, paths: Sequence[str], *, jobs: int = 1, timeout: Optional[float] = None,
               extra: Sequence[Check] = (), isolated: bool = True, hidden: Sequence[str] = (),
               hint_levels: Optional[Dict[str, int]] = None,
               progress: Optional[Callable[[int, int, dict], None]] = None) -> List[dict]:
    """Grade each folder of ``paths`` in its own worker, ``jobs`` at a time; results in ``paths`` order.

    Each result is :func:`netlab.labs.grade`'s dict plus ``submission`` (the
    folder's name), ``status`` (``graded``, ``timeout`` or ``error``) and
    ``seconds``. ``isolated`` grades in the sandbox (refused when it is not
    available); ``hidden`` folders are hidden from the sandbox too.
    """
    if isolated:
        sandbox.require_isolation("graded mode")
    timeout = timeout or default_timeout(lab)
    hidden = [os.path.abspath(h) for h in hidden]
    todo = list(enumerate(paths))
    running: Dict[int, tuple] = {}
    results: List[Optional[dict]] = [None] * len(paths)
    done = 0
    try:
        while todo or running:
            while todo and len(running) < max(1, jobs):
                index, path = todo.pop(0)
                problem = _too_big(path)
                if problem:
                    results[index] = {"submission": os.path.basename(os.path.normpath(path)), "lab": lab.number,
                                      "score": 0, "max_score": lab.max_score + sum(c.points for c in extra),
                                      "tests": [], "message": problem, "status": "error", "seconds": 0.0}
                    done += 1
                    if progress:
                        progress(done, len(paths), results[index])
                    continue
                job = _start(lab, path, extra, hint_levels or {}, isolated, hidden)
                running[job.rfd] = (index, job)
            if not running:
                continue
            now = time.monotonic()
            wait = min(job.started + timeout for _, job in running.values()) - now
            ready, _, _ = select.select(list(running), [], [], max(0.0, min(wait, 1.0)))
            finished = []
            for fd in ready:
                index, job = running[fd]
                if _read(job):
                    finished.append((fd, "graded"))
            now = time.monotonic()
            for fd, (index, job) in running.items():
                if now - job.started > timeout and all(fd != f for f, _ in finished):
                    _kill_worker(job)
                    finished.append((fd, "timeout"))
            for fd, status in finished:
                index, job = running.pop(fd)
                results[index] = _finish(lab, job, status, extra)
                done += 1
                if progress:
                    progress(done, len(paths), results[index])
    finally:
        # Interrupted (Ctrl-C) or failed: no worker, and so no sandbox, outlives us.
        for _, job in running.values():
            _kill_worker(job)
            try:
                os.waitpid(job.pid, 0)
            except ChildProcessError:
                pass
    return [r for r in results if r is not None]


def write_csv(results: Sequence[dict], path: str) -> None:
    """``submission,score,max_score,status,seconds``, one row per submission."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for r in results:
            writer.writerow([r["submission"], r["score"], r["max_score"], r["status"], r["seconds"]])


def in_worker(func: Callable[[], object], *, isolated: bool = True, hidden: Sequence[str] = (),
              timeout: float = 60.0) -> object:
    """Run ``func()`` in a grading worker (private network, sandboxed probes); its JSON-able value.

    For Python callers and tests that want the sandbox without a lab:
    ``in_worker(lambda: run_probe(folder, "calls", {...}).value)``.
    """
    if isolated:
        sandbox.require_isolation("the sandbox")
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through the pipe
        os.close(rfd)
        code = 0
        try:
            sandbox.set_child_subreaper()
            sandbox.config.isolated = isolated
            sandbox.config.hidden = [os.path.abspath(h) for h in hidden]
            if isolated:
                sandbox.enter_private_network()
            payload = {"value": func()}
        except BaseException as exc:  # noqa: BLE001
            payload, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
        with os.fdopen(wfd, "w", encoding="utf-8") as out:
            out.write(json.dumps(payload, default=repr))
        os._exit(code)
    os.close(wfd)
    job = _Job("", pid, rfd, time.monotonic())
    deadline = job.started + timeout
    while True:
        ready, _, _ = select.select([rfd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            _kill_worker(job)
            break
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            break
        job.buffer += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    try:
        payload = json.loads(job.buffer)
    except ValueError:
        raise RuntimeError(f"the worker gave no result within {timeout:g} s") from None
    if "error" in payload:
        raise RuntimeError(payload["error"])
    return payload["value"]
