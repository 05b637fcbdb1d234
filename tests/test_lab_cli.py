"""`netlab lab list|show|init|check` through the real command line, in temporary folders."""
from __future__ import annotations

import json
import os

import pytest

from netlab.labs import LABS, RESULTS_FILE
from tests.conftest import ROOT, run_netlab

EXERCISES = os.path.join(ROOT, "exercises")


def netlab(*args, cwd, timeout=60):
    return run_netlab(*args, cwd=cwd, timeout=timeout)


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netlab: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_list_shows_every_lab_unchecked(tmp_path):
    proc = netlab("lab", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()  # one line per lab, nothing else
    assert len(lines) == len(LABS) and set(range(1, 17)) <= set(LABS)
    for number, line in zip(sorted(LABS), lines):
        assert line.split()[0] == str(number)
        assert LABS[number].title in line and "checked" not in line
    rows = json.loads(netlab("lab", "list", "--json", cwd=tmp_path).stdout)
    assert [r["number"] for r in rows] == sorted(LABS)
    assert all(r["last_result"] is None for r in rows)


def test_show_prints_the_handout(tmp_path):
    proc = netlab("lab", "show", 5, cwd=tmp_path)
    assert proc.returncode == 0
    with open(os.path.join(EXERCISES, "lab05-daytime-time", "README.md"), encoding="utf-8") as f:
        assert proc.stdout == f.read()
    assert proc.stdout.startswith("# Lab 5: ")


@pytest.mark.parametrize("action", ["show", "check", "init"])
def test_unknown_lab_is_a_usage_error_listing_the_numbers(tmp_path, action):
    proc = netlab("lab", action, 42, cwd=tmp_path)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "42" in line and "1, 2, 3, 4, 5, 6, 7, 8, 9, 10" in line


def test_bad_lab_number_and_missing_action(tmp_path):
    proc = netlab("lab", "check", "one", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid lab number" in proc.stderr
    proc = netlab("lab", cwd=tmp_path)
    assert proc.returncode == 2 and "netlab lab list" in one_error_line(proc)


def test_missing_folder_names_the_path_and_the_way_out(tmp_path):
    proc = netlab("lab", "check", 3, cwd=tmp_path)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert str(tmp_path / "lab03-udp-echo") in line and "netlab lab init 3" in line
    proc = netlab("lab", "check", 3, "--path", tmp_path / "nowhere", cwd=tmp_path)
    assert proc.returncode == 1 and str(tmp_path / "nowhere") in one_error_line(proc)


def test_init_copies_the_starter_and_never_overwrites(tmp_path):
    proc = netlab("lab", "init", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "lab01-ports"
    for name in ("README.md", "ports.py"):
        with open(os.path.join(EXERCISES, "lab01-ports", name), "rb") as f:
            assert (folder / name).read_bytes() == f.read()
    (folder / "ports.py").write_text("# my work\n")
    proc = netlab("lab", "init", 1, cwd=tmp_path)
    assert proc.returncode == 1 and "will not overwrite" in one_error_line(proc)
    assert (folder / "ports.py").read_text() == "# my work\n"


def test_check_finds_the_folder_and_list_remembers_the_score(tmp_path):
    assert netlab("lab", "init", 1, "--solution", cwd=tmp_path).returncode == 0
    proc = netlab("lab", "check", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    max_score = LABS[1].max_score
    assert f"score: {max_score}/{max_score}" in proc.stdout
    for check in LABS[1].checks:
        assert check.name in proc.stdout
    listing = netlab("lab", "list", cwd=tmp_path).stdout
    assert f"{max_score}/{max_score} passed" in listing.splitlines()[0]
    assert (tmp_path / RESULTS_FILE).exists()

    # Inside the lab folder, a starter this time: the status follows the folder you work in.
    inside = tmp_path / "lab02-binding"
    assert netlab("lab", "init", 2, cwd=tmp_path).returncode == 0
    proc = netlab("lab", "check", 2, cwd=inside)
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and "hints:" in proc.stdout and "score: 0/" in proc.stdout
    line2 = netlab("lab", "list", cwd=inside).stdout.splitlines()[1]
    assert line2.split()[0] == "2" and f"0/{LABS[2].max_score}" in line2


def test_check_in_a_course_checkout_uses_exercises(tmp_path):
    """From a folder holding exercises/ (a course checkout), the lab's folder there is graded."""
    os.symlink(EXERCISES, tmp_path / "exercises")
    proc = netlab("lab", "check", 1, "--json", cwd=tmp_path)
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and result["lab"] == 1 and result["score"] < result["max_score"]
