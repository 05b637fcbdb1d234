"""Teacher workflow through the real CLI: `lab grade` (CSV, JSON, --jobs, --timeout),
hidden checks (`--checks`), the Gradescope bundle, and their bad input."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

from netlab.labs import LABS, sandbox
from tests.conftest import ROOT, netlab_env

ISOLATED, WHY = sandbox.isolation_status()
needs_sandbox = pytest.mark.skipif(not ISOLATED, reason=f"needs bubblewrap (Debian package bubblewrap) "
                                                        f"and user namespaces, or root: {WHY}")
EXERCISES = os.path.join(ROOT, "exercises")
LAB1 = LABS[1]


def netlab(*args, cwd, timeout=180, env=None):
    return subprocess.run([sys.executable, "-m", "netlab", *map(str, args)], capture_output=True, text=True,
                          cwd=str(cwd), env=netlab_env(env), timeout=timeout)


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netlab: error: "), proc.stderr
    return lines[0]


def _class(tmp_path):
    folder = tmp_path / "class"
    shutil.copytree(os.path.join(EXERCISES, "solutions", LAB1.slug), folder / "alice")
    shutil.copytree(os.path.join(EXERCISES, LAB1.slug), folder / "bob")
    (folder / "notes.txt").write_text("not a submission\n")
    return folder


HIDDEN_TOML = """
# A teacher's hidden checks for lab 1.
[[check]]
name = "https is well-known"
points = 2
run = "extra.py:https"
hints = ["look at port 443 again"]
"""

HIDDEN_PY = """
from netlab.labs.api import CheckFailed, call_all, student_value

def https(labdir):
    out = call_all(labdir, "ports", [["classify", [443]]])[0]
    got = student_value(out, "classify(443)")
    if got != "well-known":
        raise CheckFailed(f"classify(443) gave {got!r}")
    return "443 is well-known"
"""


def _hidden(tmp_path):
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "lab01.toml").write_text(HIDDEN_TOML)
    (folder / "extra.py").write_text(textwrap.dedent(HIDDEN_PY))
    return folder


@needs_sandbox
def test_grade_a_class_csv_json_and_the_same_score_as_check(tmp_path):
    folder = _class(tmp_path)
    out_csv = tmp_path / "grades.csv"
    proc = netlab("lab", "grade", 1, folder, "--jobs", 2, "--csv", out_csv, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert [r["submission"] for r in results] == ["alice", "bob"]
    for r in results:
        assert {"submission", "score", "max_score", "status", "tests"} <= set(r)
        assert r["status"] == "graded" and r["max_score"] == LAB1.max_score
    assert results[0]["score"] == LAB1.max_score and results[1]["score"] == 0
    with open(out_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["submission", "score", "max_score", "status", "seconds"]
    assert [r[:4] for r in rows[1:]] == [["alice", str(LAB1.max_score), str(LAB1.max_score), "graded"],
                                         ["bob", "0", str(LAB1.max_score), "graded"]]
    assert all(float(r[4]) > 0 for r in rows[1:])
    for r in results:
        check = netlab("lab", "check", 1, "--path", folder / r["submission"], "--json", cwd=tmp_path)
        assert json.loads(check.stdout)["score"] == r["score"]
    # Without --json: a table and a summary line; the CSV is written all the same.
    proc = netlab("lab", "grade", 1, folder, cwd=tmp_path)
    assert proc.returncode == 0 and "alice" in proc.stdout and "bob" in proc.stdout
    assert "2 submissions, 2 graded, 1 with full marks" in proc.stdout


@needs_sandbox
def test_a_submission_over_the_time_limit_is_a_timeout(tmp_path):
    folder = tmp_path / "class"
    (folder / "slow").mkdir(parents=True)
    (folder / "slow" / "ports.py").write_text("import time\nwhile True:\n    time.sleep(0.1)\n")
    proc = netlab("lab", "grade", 1, folder, "--timeout", 2, "--json", cwd=tmp_path)
    (result,) = json.loads(proc.stdout)
    assert result["status"] == "timeout" and result["score"] == 0 and result["seconds"] < 10
    assert proc.returncode == 1


@needs_sandbox
def test_hidden_checks_count_and_stay_hidden(tmp_path):
    checks = _hidden(tmp_path)
    solution = os.path.join(EXERCISES, "solutions", LAB1.slug)
    proc = netlab("lab", "check", 1, "--path", solution, "--checks", checks, "--json", cwd=tmp_path)
    result = json.loads(proc.stdout)
    assert result["max_score"] == LAB1.max_score + 2 and result["score"] == result["max_score"], result
    assert [t["name"] for t in result["tests"] if t.get("hidden")] == ["https is well-known"]
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "ports.py").write_text("def classify(port):\n    return 'registered'\n")
    proc = netlab("lab", "check", 1, "--path", wrong, "--checks", checks, "--json", cwd=tmp_path)
    hidden = [t for t in json.loads(proc.stdout)["tests"] if t.get("hidden")]
    assert hidden and not hidden[0]["passed"] and "classify(443)" in hidden[0]["message"]


@needs_sandbox
def test_gradescope_bundle_grades_a_submission(tmp_path):
    checks = _hidden(tmp_path)
    bundle = tmp_path / "lab01.zip"
    proc = netlab("lab", "gradescope", 1, "-o", bundle, "--checks", checks, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        for name in ("setup.sh", "run_autograder"):
            assert name in names and (zf.getinfo(name).external_attr >> 16) & 0o111
        assert not [n for n in names if "/solutions/" in n or n.endswith(".so")]
        assert "checks/lab01.toml" in names and "netlab/labs/defs/lab01.toml" in names
        zf.extractall(tmp_path / "source")
    source = tmp_path / "source"
    for name in ("setup.sh", "run_autograder"):
        os.chmod(source / name, 0o755)
    ag = tmp_path / "autograder"
    shutil.copytree(os.path.join(EXERCISES, "solutions", LAB1.slug), ag / "submission")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NETLAB_EXERCISES")}
    env["AUTOGRADER_DIR"] = str(ag)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    run = subprocess.run([str(source / "run_autograder")], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), timeout=180)
    assert run.returncode == 0, run.stderr
    with open(ag / "results" / "results.json", encoding="utf-8") as f:
        results = json.load(f)
    assert results["score"] == LAB1.max_score + 2
    assert len(results["tests"]) == len(LAB1.checks) + 1
    for test in results["tests"]:
        assert {"name", "score", "max_score", "output"} <= set(test) and test["score"] == test["max_score"]
    assert results["tests"][-1]["visibility"] == "hidden"


def test_bad_input_is_one_line(tmp_path):
    proc = netlab("lab", "grade", 1, tmp_path / "nowhere", cwd=tmp_path)
    assert proc.returncode == 1 and "nowhere" in one_error_line(proc)
    proc = netlab("lab", "grade", 1, tmp_path, "--jobs", 0, cwd=tmp_path)
    assert proc.returncode == 2 and "invalid count" in proc.stderr
    proc = netlab("lab", "grade", 1, tmp_path, "--timeout", "nan", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid seconds" in proc.stderr
    proc = netlab("lab", "gradescope", 1, "-o", tmp_path / "x.tar", cwd=tmp_path)
    assert proc.returncode == 1 and "zip" in one_error_line(proc)
    bad = tmp_path / "badchecks"
    bad.mkdir()
    (bad / "lab01.toml").write_text("[[check]\nname = 1\n")
    solution = os.path.join(EXERCISES, "solutions", LAB1.slug)
    proc = netlab("lab", "check", 1, "--path", solution, "--checks", bad, cwd=tmp_path)
    assert proc.returncode == 1 and "not valid TOML" in one_error_line(proc)
    (bad / "lab01.toml").write_text('[[check]]\nname = "x"\npoints = 1\nrun = "nofile.py:f"\n')
    proc = netlab("lab", "check", 1, "--path", solution, "--checks", bad, cwd=tmp_path)
    assert proc.returncode == 1 and "not found" in one_error_line(proc)
    proc = netlab("lab", "check", 2, "--path", solution, "--checks", bad, cwd=tmp_path)
    assert proc.returncode == 1 and "lab02.toml" in one_error_line(proc)


@needs_sandbox
def test_empty_class_folder(tmp_path):
    proc = netlab("lab", "grade", 1, tmp_path, cwd=tmp_path)
    assert proc.returncode == 1 and "no subfolders" in one_error_line(proc)


def test_hints_get_more_specific_when_a_check_fails_again(tmp_path):
    lab = LABS[8]
    hints = {c.name: c.hints for c in lab.checks}
    assert len(hints["IPv4 header"]) == 2
    assert ">BBHHHBBH4s4s" not in hints["IPv4 header"][0]  # no struct format on the first failure
    starter = os.path.join(EXERCISES, lab.slug)
    shown = []
    for _ in range(3):
        proc = netlab("lab", "check", 8, "--path", starter, "--json", cwd=tmp_path)
        tests = {t["name"]: t for t in json.loads(proc.stdout)["tests"]}
        shown.append(tests["IPv4 header"]["hint"])
    assert shown == [hints["IPv4 header"][0], hints["IPv4 header"][1], hints["IPv4 header"][1]]


@needs_sandbox
def test_ctrl_c_leaves_no_worker_and_no_sandbox_behind(tmp_path):
    import time
    import uuid

    from tests.conftest import interrupt_netlab

    token = f"netlab-ctrl-c-{uuid.uuid4().hex}"
    folder = tmp_path / "class"
    (folder / "stuck").mkdir(parents=True)
    (folder / "stuck" / "ports.py").write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {token!r}])
        time.sleep(600)
    """))
    proc = interrupt_netlab("lab", "grade", 1, folder, after=3)
    assert proc.returncode == 130 and "interrupted" in proc.stderr

    def left() -> list:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if token.encode() in cmdline or str(folder).encode() in cmdline:
                found.append(int(pid))
        return found
    deadline = time.monotonic() + 10
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left() == []


@needs_sandbox
def test_an_oversized_submission_is_an_error_not_a_copy(tmp_path):
    folder = tmp_path / "class"
    shutil.copytree(os.path.join(EXERCISES, "solutions", LAB1.slug), folder / "big")
    with open(folder / "big" / "video.bin", "wb") as f:
        f.truncate(64 << 20)  # sparse: big on paper, cheap on disk
    proc = netlab("lab", "grade", 1, folder, "--json", cwd=tmp_path)
    (result,) = json.loads(proc.stdout)
    assert result["status"] == "error" and result["score"] == 0 and "MiB" in result["message"]
    assert proc.returncode == 1
