"""Probes shared by the labs (they run in the child, see :mod:`netlab.labs._child`).

A probe is a netlab function ``probe(labdir, **args)`` that imports the
student's module, exercises it and returns plain JSON data; the parent judges
that data. Keeping the judging in the parent means a submission cannot change
what counts as right.
"""
from __future__ import annotations

from typing import Any, List, Optional

from netlab.labs._child import describe_exception
from netlab.labs._registry import CheckFailed, student_module
from netlab.labs._runner import ProbeResult, Sandbox, explain, run_probe, value_of

__all__ = ["bytes_of", "call_all", "calls", "imports", "outcome_text", "serve", "server",
           "student_value"]


def _plain(value: Any) -> Any:
    """Tuples to lists, bytes to {"bytes": hex}: JSON that keeps what matters."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, (list, tuple)) else repr(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return {"repr": repr(value)[:200], "type": type(value).__name__}


def calls(labdir: str, module: str, calls: List[list]) -> list:
    """Call ``module.func(*args)`` for each ``[func, args]``; one outcome dict per call."""
    mod = student_module(labdir, module)
    out = []
    for func, args in calls:
        args = [bytes.fromhex(a["bytes"]) if isinstance(a, dict) and "bytes" in a else a for a in args]
        try:
            out.append({"ok": True, "value": _plain(getattr(mod, func)(*args))})
        except Exception as exc:  # noqa: BLE001 - the outcome is data for the parent
            out.append(describe_exception(exc, labdir))
    return out


def imports(labdir: str, modules: List[str]) -> list:
    """Import each student module once; one outcome dict per module.

    The grader runs this before the checks: a file that hangs (or kills its
    process) on import then costs one short timeout instead of one per check.
    """
    out = []
    for name in modules:
        try:
            student_module(labdir, name)
            out.append({"ok": True, "value": name})
        except Exception as exc:  # noqa: BLE001 - the checks report the details
            out.append(describe_exception(exc, labdir))
    return out


def serve(labdir: str, module: str, func: str, args: list) -> Any:
    """Run the student's server function ``module.func(*args)`` until the grader stops it."""
    mod = student_module(labdir, module)
    value = getattr(mod, func)(*args)
    return {"returned": _plain(value)}


def outcome_text(outcome: dict, call: str) -> str:
    """One line describing a failed call outcome, for a check message."""
    result = ProbeResult(ok=False, error=outcome.get("error", ""), message=outcome.get("message", ""),
                         where=outcome.get("where", ""))
    return f"{call}: " + explain(result, "it")


def call_all(labdir: str, module: str, call_list: List[list], timeout: float = 5.0) -> list:
    """Run :func:`calls` in a sandbox; the list of outcomes or ProbeFailed."""
    result = run_probe(labdir, "netlab.labs._probes:calls",
                       {"module": module, "calls": call_list}, timeout=timeout)
    return value_of(result, f"{module}.py")


def student_value(outcome: dict, call: str) -> Any:
    """The value of a call outcome; CheckFailed (with the student's error) when it raised."""
    if not outcome.get("ok"):
        raise CheckFailed(outcome_text(outcome, call))
    return outcome["value"]


def bytes_of(value: Any) -> Optional[bytes]:
    """Back from :func:`_plain`: the bytes a student function returned, or None."""
    if isinstance(value, dict) and "bytes" in value:
        return bytes.fromhex(value["bytes"])
    return None


def server(labdir: str, module: str, func: str, args: list) -> Sandbox:
    """Start the student's server ``module.func(*args)`` in a sandbox (use as a context manager)."""
    return Sandbox(labdir, "netlab.labs._probes:serve", {"module": module, "func": func, "args": args})
