"""Each lab folder's own record: hints escalate with the failures of the folder checked."""
from __future__ import annotations

import json
import os
import shutil

from netlab.labs import LABS
from tests.conftest import ROOT, run_netlab

EXERCISES = os.path.join(ROOT, "exercises")


def test_hints_follow_the_folder_checked(tmp_path):
    """A folder's failures make its next hint more specific; another folder starts afresh."""
    lab = LABS[8]
    hints = next(c.hints for c in lab.checks if c.name == "IPv4 header")
    starter = os.path.join(EXERCISES, lab.slug)
    other = tmp_path / "mine"
    shutil.copytree(starter, other)

    def hint(path):
        out = run_netlab("lab", "check", 8, "--path", path, "--json", cwd=tmp_path)
        return next(t["hint"] for t in json.loads(out.stdout)["tests"]
                    if t["name"] == "IPv4 header")
    assert [hint(starter), hint(starter)] == [hints[0], hints[1]]
    assert hint(other) == hints[0]  # not the starter's second failure
    assert hint(other) == hints[1]
