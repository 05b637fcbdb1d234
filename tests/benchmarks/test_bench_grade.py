"""Grading speed: seconds to grade a class of 30 submissions of each lab with ``--jobs 2``.

The class is 15 copies of the reference solution and 15 untouched starters
(a solution runs every check to the end; a starter fails fast), graded
through the real CLI in the sandbox. The default test run (timing disabled)
grades 2 submissions per lab as a plain test; measure with::

    python -m pytest tests/benchmarks/test_bench_grade.py --benchmark-enable \\
        --benchmark-columns=min,rounds --benchmark-group-by=group

Target: all ten labs for 30 students in under 10 minutes on a 2-core machine.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from netlab.labs import LABS, sandbox
from tests.conftest import ROOT, netlab_env

ISOLATED, WHY = sandbox.isolation_status()
EXERCISES = os.path.join(ROOT, "exercises")


def _class(folder, lab, size: int) -> None:
    for i in range(size):
        source = os.path.join(EXERCISES, "solutions", lab.slug) if i % 2 == 0 else os.path.join(EXERCISES, lab.slug)
        shutil.copytree(source, folder / f"student{i:02d}")


@pytest.mark.skipif(not ISOLATED, reason=f"needs bubblewrap (Debian package bubblewrap) and user "
                                         f"namespaces, or root: {WHY}")
@pytest.mark.parametrize("number", sorted(LABS))
@pytest.mark.benchmark(group="grade-30-jobs-2")
@pytest.mark.timeout(60 * 30 + 60)  # a class of 30 outlasts the global 120 s; grade() has its own bound
def test_grade_a_class(benchmark, tmp_path, number):
    lab = LABS[number]
    size = 2 if benchmark.disabled else 30
    folder = tmp_path / "class"
    _class(folder, lab, size)

    def grade():
        proc = subprocess.run([sys.executable, "-m", "netlab", "lab", "grade", str(number), str(folder),
                               "--jobs", "2", "--json"], capture_output=True, text=True,
                              env=netlab_env(), cwd=str(tmp_path), timeout=60 * size)
        return json.loads(proc.stdout)

    results = benchmark.pedantic(grade, rounds=1, iterations=1)
    benchmark.extra_info["submissions"] = size
    assert len(results) == size and all(r["status"] == "graded" for r in results)
    assert [r["score"] == r["max_score"] for r in results] == [i % 2 == 0 for i in range(size)]
