"""Grading: run a lab's checks against a folder, keep the last result per lab."""
from __future__ import annotations

import json
import os
import time
from typing import Callable, Dict, Optional, Sequence

from netlab._i18n import _
from netlab.errors import NetlabError
from netlab.labs._registry import Check, CheckFailed, Lab
from netlab.labs._runner import ProbeFailed, explain, run_probe

__all__ = ["RESULTS_FILE", "grade", "hint_levels", "load_results",
           "locate_lab_dir", "save_result"]

# A hanging submission must give failed checks quickly, not one full probe
# timeout per check: the student's files are imported once first (a hang on
# import fails every check after the lab's ``import_timeout``), and once
# grading has taken the lab's ``budget`` seconds (defs/labNN.toml) the checks
# not yet run are failed without running. Every reference solution grades in
# a few seconds, far below the budget.

# The last result of each lab, kept in the folder the student works in so that
# `netlab lab list` run there shows it (and a temporary folder keeps its own).
RESULTS_FILE = ".netlab-lab-results.json"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def grade(lab: Lab, labdir: str, extra: Sequence[Check] = (), hint_levels: Optional[Dict[str, int]] = None,
          on_test: Optional[Callable[[dict], None]] = None) -> dict:
    """Run every check of ``lab`` (and the hidden ``extra`` checks) on the student files in ``labdir``.

    Returns ``{"lab", "score", "max_score", "tests": [{"name", "passed",
    "points", "hint", "message"}]}``; ``points`` is the check's weight and
    ``score`` the sum of the weights of the checks that passed. A check's
    hint is its ``hint_levels[name]``-th (0: the gentlest). ``on_test`` sees
    each test as soon as it is done.
    """
    tests = []
    if lab.reset:
        lab.reset()
    hint_levels = hint_levels or {}
    started = time.monotonic()
    not_run = _import_problem(lab, labdir)
    checks = list(lab.checks) + list(extra)
    for chk in checks:
        elapsed = time.monotonic() - started
        if not_run is None and elapsed > lab.budget:
            not_run = (f"grading stopped after {elapsed:.0f} s because earlier checks did not "
                       f"finish in time: fix those first, then check again")
        try:
            if not_run is not None:
                raise CheckFailed(f"not run: {not_run}")
            message = chk.run(labdir) or "ok"
            passed = True
        except (CheckFailed, ProbeFailed) as exc:
            passed, message = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - a grader must report, not crash
            passed = False
            message = f"the check itself failed ({type(exc).__name__}: {exc}); please tell your teacher"
        level = min(hint_levels.get(chk.name, 0), max(len(chk.hints) - 1, 0))
        test = {
            "name": chk.name,
            "passed": passed,
            "points": chk.points,
            "hint": chk.hints[level] if chk.hints else "",
            "message": _one_line(message),
        }
        if chk.hidden:
            test["hidden"] = True
        tests.append(test)
        if on_test:
            on_test(test)
    score = sum(t["points"] for t in tests if t["passed"])
    return {"lab": lab.number, "score": score, "max_score": sum(c.points for c in checks), "tests": tests}


def _import_problem(lab: Lab, labdir: str) -> Optional[str]:
    """Import the student's files once in the sandbox; a message if that alone never returns.

    An import that raises is left to the checks, which report the error and
    the student's line; only a hang, a crash or an exit on import stops grading.
    """
    modules = [name[:-3] for name in lab.files
               if name.endswith(".py") and os.path.isfile(os.path.join(labdir, name))]
    if not modules:
        return None
    result = run_probe(labdir, "imports", {"modules": modules},
                       timeout=lab.import_timeout)
    if result.ok or result.error:
        return None
    files = ", ".join(m + ".py" for m in modules)
    return (explain(result, f"importing {files}")
            + " (code at the top level of a file runs on import: put it under "
              "if __name__ == '__main__':)")


def locate_lab_dir(lab: Lab, path: Optional[str], cwd: Optional[str] = None) -> str:
    """The student folder to grade: ``path`` if given, else the lab's folder near ``cwd``.

    Without ``path`` it tries ``./exercises/labNN-topic`` (a course checkout),
    ``./labNN-topic`` (after ``netlab lab init N``) and ``.`` itself when the
    student runs the check inside the lab folder.
    """
    cwd = cwd or os.getcwd()
    how = _("get the starter with 'netlab lab init {number}' (copies it to ./{slug})").format(
        number=lab.number, slug=lab.slug)
    if path is not None:
        if os.path.isfile(path):
            raise NetlabError(f"{path} is a file: --path takes the lab folder that holds "
                              f"{', '.join(lab.files)}")
        if not os.path.isdir(path):
            raise NetlabError(_("lab folder {path} does not exist: {how}, or pass --path DIR")
                              .format(path=path, how=how))
        return os.path.abspath(path)
    candidates = [os.path.join(cwd, "exercises", lab.slug), os.path.join(cwd, lab.slug)]
    if os.path.basename(os.path.abspath(cwd)) == lab.slug:
        candidates.insert(0, cwd)
    for cand in candidates:
        if os.path.isdir(cand):
            return os.path.abspath(cand)
    raise NetlabError(_("lab folder {path} does not exist: {how}, or pass --path DIR")
                      .format(path=candidates[-1], how=how))


def load_results(cwd: Optional[str] = None) -> Dict[str, dict]:
    """The stored last results, by lab number as a string (empty when none or unreadable)."""
    path = os.path.join(cwd or os.getcwd(), RESULTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def hint_levels(number: int, cwd: Optional[str] = None,
                labdir: Optional[str] = None) -> Dict[str, int]:
    """Per check, how many times in a row it failed here before (which hint to show now):
    in the folder ``labdir`` only, when given (another folder's failures are not its own)."""
    last = load_results(cwd).get(str(number), {})
    failures = last.get("failures", {}) if labdir in (None, last.get("path")) else {}
    return {str(k): int(v) for k, v in failures.items() if isinstance(v, int)} if isinstance(failures, dict) else {}


def save_result(result: dict, labdir: str, cwd: Optional[str] = None) -> bool:
    """Remember ``result`` for ``netlab lab list``; False when the folder is not writable."""
    cwd = cwd or os.getcwd()
    data = load_results(cwd)
    last = data.get(str(result["lab"]), {})
    before = last.get("failures", {}) if last.get("path") == labdir else {}
    data[str(result["lab"])] = {
        "score": result["score"],
        "max_score": result["max_score"],
        "path": labdir,
        "checked_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        # How often each check failed in a row: the next hint is a little more specific.
        "failures": {t["name"]: (before.get(t["name"], 0) + 1 if not t["passed"] else 0)
                     for t in result["tests"] if not t.get("hidden")},
    }
    path = os.path.join(cwd, RESULTS_FILE)
    try:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
        return True
    except OSError:
        return False
