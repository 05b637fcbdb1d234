"""Grading: run a lab's checks against a folder, keep the last result per lab."""
from __future__ import annotations

import json
import os
import time
from typing import Dict, Optional

from netlab.errors import NetlabError
from netlab.labs._registry import CheckFailed, Lab
from netlab.labs._runner import ProbeFailed

__all__ = ["RESULTS_FILE", "grade", "load_results", "locate_lab_dir", "save_result"]

# The last result of each lab, kept in the folder the student works in so that
# `netlab lab list` run there shows it (and a temporary folder keeps its own).
RESULTS_FILE = ".netlab-lab-results.json"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def grade(lab: Lab, labdir: str) -> dict:
    """Run every check of ``lab`` on the student files in ``labdir``.

    Returns ``{"lab", "score", "max_score", "tests": [{"name", "passed",
    "points", "hint", "message"}]}``; ``points`` is the check's weight and
    ``score`` the sum of the weights of the checks that passed.
    """
    tests = []
    if lab.reset:
        lab.reset()
    for chk in lab.checks:
        try:
            message = chk.run(labdir) or "ok"
            passed = True
        except (CheckFailed, ProbeFailed) as exc:
            passed, message = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - a grader must report, not crash
            passed = False
            message = f"the check itself failed ({type(exc).__name__}: {exc}); please tell your teacher"
        tests.append({
            "name": chk.name,
            "passed": passed,
            "points": chk.points,
            "hint": chk.hint,
            "message": _one_line(message),
        })
    score = sum(t["points"] for t in tests if t["passed"])
    return {"lab": lab.number, "score": score, "max_score": lab.max_score, "tests": tests}


def locate_lab_dir(lab: Lab, path: Optional[str], cwd: Optional[str] = None) -> str:
    """The student folder to grade: ``path`` if given, else the lab's folder near ``cwd``.

    Without ``path`` it tries ``./exercises/labNN-topic`` (a course checkout),
    ``./labNN-topic`` (after ``netlab lab init N``) and ``.`` itself when the
    student runs the check inside the lab folder.
    """
    cwd = cwd or os.getcwd()
    how = f"get the starter with 'netlab lab init {lab.number}' (copies it to ./{lab.slug})"
    if path is not None:
        if os.path.isfile(path):
            raise NetlabError(f"{path} is a file: --path takes the lab folder that holds "
                              f"{', '.join(lab.files)}")
        if not os.path.isdir(path):
            raise NetlabError(f"lab folder {path} does not exist: {how}, or pass --path DIR")
        return os.path.abspath(path)
    candidates = [os.path.join(cwd, "exercises", lab.slug), os.path.join(cwd, lab.slug)]
    if os.path.basename(os.path.abspath(cwd)) == lab.slug:
        candidates.insert(0, cwd)
    for cand in candidates:
        if os.path.isdir(cand):
            return os.path.abspath(cand)
    raise NetlabError(f"lab folder {candidates[-1]} does not exist: {how}, or pass --path DIR")


def load_results(cwd: Optional[str] = None) -> Dict[str, dict]:
    """The stored last results, by lab number as a string (empty when none or unreadable)."""
    path = os.path.join(cwd or os.getcwd(), RESULTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_result(result: dict, labdir: str, cwd: Optional[str] = None) -> bool:
    """Remember ``result`` for ``netlab lab list``; False when the folder is not writable."""
    cwd = cwd or os.getcwd()
    data = load_results(cwd)
    data[str(result["lab"])] = {
        "score": result["score"],
        "max_score": result["max_score"],
        "path": labdir,
        "checked_at": time.strftime("%Y-%m-%d %H:%M:%S"),
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
