"""The grader's side of the sandbox: runs inside the child process.

The parent (:mod:`netlab.labs._runner`) starts a Python child that calls
:func:`main` with ``RESULT_FILE LABDIR SPEC ARGS_FILE``, under resource limits. This module imports
the probe named by ``SPEC`` (``module:function``, always a netlab module), calls
it with the lab folder and the arguments (JSON in ``ARGS_FILE``), and writes what happened to
``RESULT_FILE`` as JSON: ``{"ok": true, "value": ...}`` or ``{"ok": false,
"error": ..., "message": ..., "where": ...}``.

Why a result *file* and not stdout: student code may print whatever it likes
(debug output is welcome), and that must never be mistaken for the result.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any

__all__ = ["describe_exception", "main"]


def describe_exception(exc: BaseException, labdir: str) -> dict:
    """A short account of ``exc``: its type, message and the student line that raised it."""
    where = ""
    labdir = os.path.realpath(labdir)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.realpath(frame.filename).startswith(labdir + os.sep):
            where = f"{os.path.basename(frame.filename)}:{frame.lineno}"
            break
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.basename(exc.filename)}:{exc.lineno}"
    return {"ok": False, "error": type(exc).__name__, "message": str(exc), "where": where}


def _write(f, payload: Any) -> None:
    f.seek(0)
    f.truncate()
    json.dump(payload, f, default=repr)
    f.flush()


def main(argv: list) -> int:
    result_file, labdir, spec, args_file = argv
    with open(args_file, encoding="utf-8") as f:
        args = json.load(f)
    # Opened now, while this process still has the grader's privileges: a
    # probe may drop root (lab 2) before the result is written.
    out = open(result_file, "w", encoding="utf-8")
    module_name, _, func_name = spec.partition(":")
    probe = getattr(importlib.import_module(module_name), func_name)
    # Student output goes to stderr so stdout stays free; both are captured by the parent.
    sys.stdout = sys.stderr
    try:
        value = probe(labdir, **args)
    except BaseException as exc:  # noqa: BLE001 - everything the student code raises is a result
        _write(out, describe_exception(exc, labdir))
        return 0
    _write(out, {"ok": True, "value": value})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
