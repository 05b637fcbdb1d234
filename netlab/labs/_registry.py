"""The lab registry: what each lab is called, where its files are, which checks grade it."""
from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from netlab.errors import NetlabError

__all__ = ["Check", "CheckFailed", "Lab", "check", "course_dir", "student_module"]


class CheckFailed(Exception):
    """Raised by a check with a message for the student (what was expected, what came)."""


@dataclass
class Check:
    """One graded check: a name, its weight in points, a hint, and the test itself.

    ``run(labdir)`` returns a short message on success or raises
    :class:`CheckFailed` (or :class:`netlab.labs._runner.ProbeFailed`).
    """

    name: str
    points: int
    hint: str
    run: Callable[[str], Optional[str]]


@dataclass
class Lab:
    number: int
    slug: str          # folder name, e.g. "lab03-udp-echo"
    title: str
    lessons: List[str]  # lesson pages under docs/lessons/
    files: List[str]    # the files a student edits
    checks: List[Check] = field(default_factory=list)
    # Called before each grading run: labs that share one probe run between
    # their checks clear their cache here.
    reset: Optional[Callable[[], None]] = None

    @property
    def max_score(self) -> int:
        return sum(c.points for c in self.checks)


def check(checks: List[Check], name: str, points: int, hint: str):
    """Decorator: append the decorated function to ``checks`` as a :class:`Check`."""
    def add(func: Callable[[str], Optional[str]]):
        checks.append(Check(name, points, hint, func))
        return func
    return add


def course_dir() -> str:
    """The folder holding the course (``exercises/``): handouts, starters, solutions.

    ``NETLAB_EXERCISES`` wins; otherwise the checkout this netlab runs from, then
    ``<prefix>/share/netlab/exercises`` for an installed copy.
    """
    candidates = []
    if os.environ.get("NETLAB_EXERCISES"):
        candidates.append(os.environ["NETLAB_EXERCISES"])
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # A checkout has its pyproject.toml beside exercises/; an installed netlab
    # sits in site-packages, where an "exercises" folder would be someone else's.
    if os.path.isfile(os.path.join(here, "pyproject.toml")):
        candidates.append(os.path.join(here, "exercises"))
    # pip puts data files under the scheme's data path: the prefix of the
    # interpreter (or venv), or the user base for `pip install --user`.
    candidates.append(os.path.join(sys.prefix, "share", "netlab", "exercises"))
    for scheme in (None, "posix_user"):
        try:
            data = sysconfig.get_path("data", scheme) if scheme else sysconfig.get_path("data")
        except KeyError:
            continue
        candidates.append(os.path.join(data, "share", "netlab", "exercises"))
    for path in candidates:
        if os.path.isdir(path):
            return path
    raise NetlabError("the course folder 'exercises/' was not found "
                      "(run netlab from a netlab checkout, or set NETLAB_EXERCISES to its path)")


def student_module(labdir: str, name: str):
    """Import the student's ``name``.py from ``labdir`` (in the child process only)."""
    import importlib.util

    path = os.path.join(labdir, name + ".py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name}.py is missing from {labdir} "
                                f"(start from the starter: netlab lab init N)")
    if labdir not in sys.path:
        sys.path.insert(0, labdir)  # so the student's files can import each other
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
