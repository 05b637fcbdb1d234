"""The course labs and their autograder (``netlab lab list|show|check|init``).

Each lab is a folder under ``exercises/`` (handout ``README.md`` plus starter
code) and a module here (``labNN.py``) holding its graded checks. The checks
live with netlab, not in the student's folder, so a student cannot edit them;
student code runs in a sandboxed child process (:mod:`netlab.labs._runner`).

>>> from netlab.labs import get_lab
>>> get_lab(3).slug
'lab03-udp-echo'
"""
from __future__ import annotations

import importlib
import os
import shutil
from typing import Dict, List, Optional

from netlab.errors import NetlabError, UsageError
from netlab.labs._grade import RESULTS_FILE, grade, load_results, locate_lab_dir, save_result
from netlab.labs._registry import Check, CheckFailed, Lab, course_dir
from netlab.labs._runner import Limits

__all__ = [
    "LABS",
    "RESULTS_FILE",
    "Check",
    "CheckFailed",
    "Lab",
    "Limits",
    "check_lab",
    "course_dir",
    "get_lab",
    "grade",
    "handout",
    "init_lab",
    "list_labs",
    "load_results",
    "locate_lab_dir",
    "save_result",
]

_MODULES = [f"netlab.labs.lab{n:02d}" for n in range(1, 11)]


def _load() -> Dict[int, Lab]:
    labs = {}
    for name in _MODULES:
        lab = importlib.import_module(name).LAB
        labs[lab.number] = lab
    return labs


LABS: Dict[int, Lab] = _load()


def get_lab(number: int) -> Lab:
    """The lab with this number; UsageError naming the valid numbers otherwise."""
    try:
        return LABS[int(number)]
    except (KeyError, ValueError, TypeError):
        valid = ", ".join(str(n) for n in sorted(LABS))
        raise UsageError(f"there is no lab {number}: choose one of {valid} "
                         f"(see 'netlab lab list')") from None


def list_labs(cwd: Optional[str] = None) -> List[dict]:
    """One dict per lab: number, slug, title, lessons, max_score and the last result if any."""
    results = load_results(cwd)
    rows = []
    for number in sorted(LABS):
        lab = LABS[number]
        rows.append({
            "number": number,
            "slug": lab.slug,
            "title": lab.title,
            "lessons": [f"docs/lessons/{page}" for page in lab.lessons],
            "max_score": lab.max_score,
            "last_result": results.get(str(number)),
        })
    return rows


def handout(number: int) -> str:
    """The text of a lab's handout (its README.md)."""
    lab = get_lab(number)
    path = os.path.join(course_dir(), lab.slug, "README.md")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise NetlabError(f"cannot read the handout {path}: {exc.strerror} "
                          f"(is the netlab checkout complete?)") from None


def init_lab(number: int, dest: Optional[str] = None, solution: bool = False) -> str:
    """Copy a lab's starter (or with ``solution``, the reference solution) to ``dest``.

    ``dest`` defaults to ``./labNN-topic``. Refuses to overwrite an existing
    folder, so a student's work is never lost. Returns the new folder's path.
    """
    lab = get_lab(number)
    root = course_dir()
    target = os.path.abspath(dest or lab.slug)
    if os.path.exists(target):
        raise NetlabError(f"{target} already exists: netlab will not overwrite your work "
                          f"(remove or rename it, or pass another --dest)")
    source = os.path.join(root, lab.slug)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                  RESULTS_FILE))
    if solution:
        sol = os.path.join(root, "solutions", lab.slug)
        for name in os.listdir(sol):
            if not name.startswith(".") and name != "__pycache__":
                shutil.copy2(os.path.join(sol, name), os.path.join(target, name))
    return target


def check_lab(number: int, path: Optional[str] = None, cwd: Optional[str] = None,
              remember: bool = True) -> dict:
    """Grade lab ``number`` in ``path`` (default: its folder near ``cwd``) and remember the result."""
    lab = get_lab(number)
    labdir = locate_lab_dir(lab, path, cwd)
    result = grade(lab, labdir)
    if remember:
        save_result(result, labdir, cwd)
    return result
