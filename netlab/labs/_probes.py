"""Grader-side helpers around the shared probes of :mod:`netlab.labs.probes.runtime`.

A probe (child side, in the sandbox) imports the student's module, exercises
it and returns plain JSON data; the grader judges that data. Keeping the
judging in the grader means a submission cannot change what counts as right.
"""
from __future__ import annotations

from typing import Any, List, Optional

from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeResult, Sandbox, explain, run_probe, value_of

__all__ = ["bytes_of", "call_all", "outcome_text", "server", "student_value"]


def outcome_text(outcome: dict, call: str) -> str:
    """One line describing a failed call outcome, for a check message."""
    result = ProbeResult(ok=False, error=outcome.get("error", ""), message=outcome.get("message", ""),
                         where=outcome.get("where", ""))
    return f"{call}: " + explain(result, "it")


def call_all(labdir: str, module: str, call_list: List[list], timeout: float = 5.0) -> list:
    """Run :func:`calls` in a sandbox; the list of outcomes or ProbeFailed."""
    result = run_probe(labdir, "calls",
                       {"module": module, "calls": call_list}, timeout=timeout)
    return value_of(result, f"{module}.py")


def student_value(outcome: dict, call: str) -> Any:
    """The value of a call outcome; CheckFailed (with the student's error) when it raised."""
    if not outcome.get("ok"):
        raise CheckFailed(outcome_text(outcome, call))
    return outcome["value"]


def bytes_of(value: Any) -> Optional[bytes]:
    """Back from the runtime's ``plain``: the bytes a student function returned, or None."""
    if isinstance(value, dict) and "bytes" in value:
        return bytes.fromhex(value["bytes"])
    return None


def server(labdir: str, module: str, func: str, args: list, tick: float = 0.0) -> Sandbox:
    """Start the student's server ``module.func(*args)`` in a sandbox (use as a context manager).

    ``tick``: interrupt it with a signal that often (forces short ``send()`` calls).
    """
    return Sandbox(labdir, "serve", {"module": module, "func": func, "args": args, "tick": tick})
