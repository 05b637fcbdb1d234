"""The course labs and their autograder (``netlab lab list|show|check|init``).

Each lab is a folder under ``exercises/`` (handout ``README.md`` plus starter
code), a definition ``defs/labNN.toml`` (checks, points, hints, time budget)
and a module here (``labNN.py``) holding its check functions. The checks live
with netlab, not in the student's folder; student code runs in the sandbox of
:mod:`netlab.labs.sandbox` and never sees netlab.

>>> from netlab.labs import get_lab
>>> get_lab(3).slug
'lab03-udp-echo'
"""
from __future__ import annotations

import os
import shutil
from typing import Dict, List, Optional

from netlab._i18n import _
from netlab.errors import NetlabError, UsageError
from netlab.labs._grade import (RESULTS_FILE, grade, hint_levels, load_results, locate_lab_dir,
                                save_result)
from netlab.labs._registry import Check, CheckFailed, Lab, course_dir, load_checks, load_labs
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
    "load_hidden_checks",
    "load_results",
    "locate_lab_dir",
    "save_result",
]

LABS: Dict[int, Lab] = load_labs()


def get_lab(number: int) -> Lab:
    """The lab with this number; UsageError naming the valid numbers otherwise."""
    try:
        return LABS[int(number)]
    except (KeyError, ValueError, TypeError):
        valid = ", ".join(str(n) for n in sorted(LABS))
        raise UsageError(_("there is no lab {number}: choose one of {valid} "
                           "(see 'netlab lab list')").format(number=number, valid=valid)) from None


def list_labs(cwd: Optional[str] = None) -> List[dict]:
    """One dict per lab: number, slug, title, lessons, max_score, folder and the last result.

    ``folder`` is the folder ``netlab lab check N`` grades from ``cwd`` (None
    when there is none yet); ``last_result["path"]`` the folder that was
    checked last from ``cwd`` (it may be another one, given by --path).
    """
    results = load_results(cwd)
    rows = []
    for number in sorted(LABS):
        lab = LABS[number]
        try:
            folder: Optional[str] = locate_lab_dir(lab, None, cwd)
        except NetlabError:
            folder = None
        rows.append({
            "number": number,
            "slug": lab.slug,
            "title": lab.title,
            "lessons": [f"docs/lessons/{page}" for page in lab.lessons],
            "max_score": lab.max_score,
            "folder": folder,
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
    sol = os.path.join(root, "solutions", lab.slug)
    if solution and not os.path.isdir(sol):
        raise NetlabError("reference solutions are not installed with netlab (students have the "
                          "same install): they are in the netlab source checkout, "
                          "exercises/solutions/; run 'netlab lab init N --solution' from there")
    if os.path.exists(target):
        raise NetlabError(f"{target} already exists: netlab will not overwrite your work "
                          f"(remove or rename it, or pass another --dest)")
    source = os.path.join(root, lab.slug)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                  RESULTS_FILE))
    if solution:
        for name in os.listdir(sol):
            if not name.startswith(".") and name != "__pycache__":
                shutil.copy2(os.path.join(sol, name), os.path.join(target, name))
    return target


def load_hidden_checks(number: int, checks_dir: str) -> List[Check]:
    """A teacher's hidden checks for lab ``number``: ``checks_dir/labNN.toml`` (see docs/teachers.rst)."""
    lab = get_lab(number)
    if not os.path.isdir(checks_dir):
        raise NetlabError(f"hidden checks folder {checks_dir} does not exist: pass the folder "
                          f"that holds lab{lab.number:02d}.toml")
    path = os.path.join(checks_dir, f"lab{lab.number:02d}.toml")
    if not os.path.isfile(path):
        raise NetlabError(f"{checks_dir} has no lab{lab.number:02d}.toml: write the hidden checks "
                          f"of lab {lab.number} there (see docs/teachers.rst)")
    return load_checks(path, hidden=True)


def check_lab(number: int, path: Optional[str] = None, cwd: Optional[str] = None,
              remember: bool = True, checks_dir: Optional[str] = None,
              isolated: Optional[bool] = None) -> dict:
    """Grade lab ``number`` in ``path`` (default: its folder near ``cwd``) and remember the result.

    ``isolated`` None: in the sandbox when it is available, else in practice
    mode (the result says ``"isolated": false``). The result is the one
    ``netlab lab grade`` gives the same folder, plus ``isolated``.
    """
    from netlab.labs import batch, sandbox

    lab = get_lab(number)
    labdir = locate_lab_dir(lab, path, cwd)
    if isolated is None:
        isolated = sandbox.isolation_status()[0]
    extra = load_hidden_checks(number, checks_dir) if checks_dir else []
    hidden = [checks_dir] if checks_dir else []
    result = batch.grade_many(lab, [labdir], extra=extra, isolated=isolated, hidden=hidden,
                              hint_levels=hint_levels(number, cwd, labdir))[0]
    result["isolated"] = isolated
    if remember:
        save_result(result, labdir, cwd)
    return result
