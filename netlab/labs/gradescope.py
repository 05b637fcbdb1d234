"""A Gradescope autograder bundle for one lab (``netlab lab gradescope N -o FILE.zip``).

The zip holds ``setup.sh`` (installs Python, bubblewrap and setpriv on the
grading image), ``run_autograder`` (grades ``$AUTOGRADER_DIR/submission/``,
default ``/autograder``, and writes ``$AUTOGRADER_DIR/results/results.json``),
a copy of netlab's pure-Python package (no compiled core, no solutions), the
lab's course folder (handout, starter, data files) and the teacher's hidden
checks if any. Grading runs in the sandbox exactly as ``netlab lab grade``;
without isolation the autograder refuses and says why in ``results.json``.
"""
from __future__ import annotations

import json
import os
import sys
import zipfile
from typing import List, Optional

from netlab.errors import NetlabError

__all__ = ["build_bundle", "results_json", "run_autograder"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# iproute2 and nftables: lab 16's traceroute checks build their routers with ip and nft.
apt-get install -y -qq --no-install-recommends python3 python3-psutil bubblewrap util-linux iproute2 nftables >/dev/null
python3 -c 'import tomllib' 2>/dev/null || apt-get install -y -qq --no-install-recommends python3-tomli >/dev/null
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade it, write results/results.json.
set -u
AUTOGRADER_DIR="${{AUTOGRADER_DIR:-/autograder}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$AUTOGRADER_DIR/results"
cd "$HERE"
export PYTHONPATH="$HERE" NETLAB_PURE_PYTHON=1 NETLAB_EXERCISES="$HERE/exercises"
exec python3 -c 'import sys; from netlab.labs.gradescope import run_autograder; sys.exit(run_autograder(sys.argv[1:]))' \\
    {number} "$AUTOGRADER_DIR/submission" "$AUTOGRADER_DIR/results/results.json" {checks}
"""


def results_json(result: dict) -> dict:
    """A netlab result in Gradescope's schema: ``score``, ``tests`` (name, score, max_score, output)."""
    tests = []
    for t in result.get("tests", []):
        entry = {"name": t["name"], "score": t["points"] if t["passed"] else 0, "max_score": t["points"],
                 "output": t["message"] + ("" if t["passed"] else f"\nhint: {t['hint']}")}
        if t.get("hidden"):
            entry["visibility"] = "hidden"  # counted, never shown to the student
        tests.append(entry)
    out = {"score": result.get("score", 0), "tests": tests}
    if result.get("status") not in (None, "graded"):
        out["output"] = result.get("message", result.get("status", ""))
    return out


def run_autograder(argv: List[str]) -> int:
    """``N SUBMISSION RESULTS_JSON [CHECKS_DIR]``: grade one submission the Gradescope way."""
    from netlab import labs
    from netlab.labs import batch

    number, submission, results = int(argv[0]), argv[1], argv[2]
    checks_dir = argv[3] if len(argv) > 3 else None
    try:
        lab = labs.get_lab(number)
        extra = labs.load_hidden_checks(number, checks_dir) if checks_dir else []
        result = batch.grade_many(lab, [submission], extra=extra, isolated=True,
                                  hidden=[checks_dir] if checks_dir else [])[0]
        doc = results_json(result)
        code = 0
    except NetlabError as exc:
        doc = {"score": 0, "output": f"the autograder could not run: {exc}", "tests": []}
        code = 1
    with open(results, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    if code:
        print(doc["output"], file=sys.stderr)
    return code


def _add_tree(zf: zipfile.ZipFile, src: str, arc: str, skip_solutions: bool = False) -> None:
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (skip_solutions and d == "solutions"))
        for name in sorted(files):
            if name.endswith((".pyc", ".so", ".c", ".html")):
                continue
            path = os.path.join(root, name)
            zf.write(path, os.path.join(arc, os.path.relpath(path, src)))


def _add_text(zf: zipfile.ZipFile, name: str, text: str, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, text)


def build_bundle(number: int, output: str, checks_dir: Optional[str] = None) -> str:
    """Write the autograder zip for lab ``number`` to ``output``; returns its path."""
    from netlab import labs

    lab = labs.get_lab(number)
    if checks_dir:
        labs.load_hidden_checks(number, checks_dir)  # refuse a broken folder now, not on the cluster
    if not output.endswith(".zip"):
        raise NetlabError(f"{output}: the bundle is a zip file, name it FILE.zip")
    course = os.path.join(labs.course_dir(), lab.slug)
    checks = '"$HERE/checks"' if checks_dir else ""
    tmp = output + ".tmp"
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            _add_text(zf, "setup.sh", SETUP_SH, 0o755)
            _add_text(zf, "run_autograder", RUN_AUTOGRADER.format(number=lab.number, checks=checks), 0o755)
            _add_tree(zf, _PACKAGE_DIR, "netlab")
            _add_tree(zf, course, os.path.join("exercises", lab.slug), skip_solutions=True)
            if checks_dir:
                _add_tree(zf, checks_dir, "checks")
        os.replace(tmp, output)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise NetlabError(f"cannot write {output}: {exc.strerror or exc}") from None
    return os.path.abspath(output)
