"""The lab registry: lab definitions are data, one TOML file per lab.

``netlab/labs/defs/labNN.toml`` says what a lab is called, which files the
student edits, which checks grade it (each with its points and hints) and the
time budget; the check functions themselves are Python, in the module the
file names (``module = "netlab.labs.lab03"``, ``run = "server_echo"``). A
teacher changes points, hints, budgets or drops a check by editing the TOML;
a new lab is a new TOML file, a check module and a folder in ``exercises/``
(see docs/teachers.rst). Hidden checks (``--checks DIR``) use the same format.
"""
from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

from netlab.errors import NetlabError

__all__ = ["DEFS_DIR", "Check", "CheckFailed", "Lab", "course_dir", "load_checks", "load_lab",
           "load_labs"]

DEFS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "defs")


class CheckFailed(Exception):
    """Raised by a check with a message for the student (what was expected, what came)."""


@dataclass
class Check:
    """One graded check: a name, its weight in points, hints, and the test itself.

    ``run(labdir)`` returns a short message on success or raises
    :class:`CheckFailed` (or :class:`netlab.labs._runner.ProbeFailed`).
    ``hints`` go from gentle to specific: a student sees the next one each
    time the check fails again. ``hidden`` checks come from a teacher's
    ``--checks`` folder.
    """

    name: str
    points: int
    hints: List[str]
    run: Callable[[str], Optional[str]]
    hidden: bool = False

    @property
    def hint(self) -> str:
        return self.hints[0] if self.hints else ""


@dataclass
class Lab:
    number: int
    slug: str          # folder name, e.g. "lab03-udp-echo"
    title: str
    lessons: List[str]  # lesson pages under docs/lessons/
    files: List[str]    # the files a student edits
    checks: List[Check] = field(default_factory=list)
    # Called before each grading run: labs that share one probe run between
    # their checks clear their cache here (a function ``reset`` in the module).
    reset: Optional[Callable[[], None]] = None
    budget: float = 20.0         # seconds for all checks of one submission
    import_timeout: float = 5.0  # seconds for the import pre-flight
    # Per-namespace sysctls set in the private network while grading (graded mode only).
    sysctls: Dict[str, str] = field(default_factory=dict)

    @property
    def max_score(self) -> int:
        return sum(c.points for c in self.checks)


def _read_toml(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise NetlabError(f"cannot read lab definition {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NetlabError(f"lab definition {path} is not valid TOML: {exc}") from None


def _function(ref: str, module: Optional[str], base: str, path: str) -> Callable:
    """``name`` in ``module``, or ``file.py:name`` relative to the TOML file's folder."""
    try:
        if ":" in ref:
            file, _, name = ref.partition(":")
            file = os.path.join(base, file)
            spec = importlib.util.spec_from_file_location(
                "netlab_checks_" + os.path.basename(file)[:-3], file)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        else:
            name = ref
            mod = importlib.import_module(module or "")
        return getattr(mod, name)
    except (ImportError, AttributeError, OSError, ValueError) as exc:
        raise NetlabError(f"{path}: check function {ref!r} not found ({exc}): fix 'run' or 'module'") from None


def load_checks(path: str, module: Optional[str] = None, hidden: bool = False) -> List[Check]:
    """The ``[[check]]`` entries of a TOML file, their functions resolved."""
    data = _read_toml(path)
    module = data.get("module", module)
    checks = []
    for entry in data.get("check", []):
        try:
            name, points, run = str(entry["name"]), int(entry["points"]), str(entry["run"])
        except (KeyError, TypeError, ValueError):
            raise NetlabError(f"{path}: every [[check]] needs name, points (a number) and run") from None
        hints = entry.get("hints", [entry["hint"]] if "hint" in entry else [])
        checks.append(Check(name, points, [str(h) for h in hints],
                            _function(run, module, os.path.dirname(path), path), hidden))
    return checks


def load_lab(path: str) -> Lab:
    """A :class:`Lab` from its TOML definition."""
    data = _read_toml(path)
    try:
        lab = Lab(int(data["number"]), str(data["slug"]), str(data["title"]),
                  list(data.get("lessons", [])), list(data["files"]),
                  budget=float(data.get("budget", 20)),
                  import_timeout=float(data.get("import_timeout", 5)),
                  sysctls={str(k): str(v) for k, v in data.get("sysctl", {}).items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise NetlabError(f"{path}: missing or wrong field {exc} (number, slug, title, files)") from None
    lab.checks = load_checks(path)
    if data.get("module"):
        lab.reset = getattr(importlib.import_module(data["module"]), "reset", None)
    return lab


def load_labs(folder: str = DEFS_DIR) -> Dict[int, Lab]:
    """Every ``lab*.toml`` in ``folder``, by lab number."""
    labs = {}
    for path in sorted(glob.glob(os.path.join(folder, "lab*.toml"))):
        lab = load_lab(path)
        labs[lab.number] = lab
    return labs


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
