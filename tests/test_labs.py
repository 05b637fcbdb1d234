"""The grader is honest: every reference solution scores full marks, every
untouched starter less than full, and broken submissions (hanging, crashing,
not compiling, eating memory) fail their checks with a message, never a
traceback and never a hung grader. Everything goes through the real CLI.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from netlab.labs import LABS, Limits, course_dir
from netlab.labs._probes import server
from netlab.labs._runner import explain, run_probe
from tests.conftest import ROOT, netlab_env

EXERCISES = os.path.join(ROOT, "exercises")


def _env() -> dict:
    return netlab_env()


def start_check(number: int, path: str, cwd: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "netlab", "lab", "check", str(number), "--path", path, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=_env())


def finish(proc: subprocess.Popen, timeout: float = 90) -> tuple:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the grader hung for more than {timeout} s: {err[-2000:]}")
    return proc.returncode, out, err


def parse(out: str, err: str) -> dict:
    assert "Traceback" not in err, err
    result = json.loads(out)
    assert {"lab", "score", "max_score", "tests", "status", "submission", "isolated"} <= set(result)
    for test in result["tests"]:
        assert set(test) == {"name", "passed", "points", "hint", "message"}
        assert isinstance(test["passed"], bool) and test["points"] > 0 and test["hint"]
        assert "Traceback" not in test["message"]
    assert result["score"] == sum(t["points"] for t in result["tests"] if t["passed"])
    assert result["max_score"] == sum(t["points"] for t in result["tests"])
    return result


def test_every_lab_has_its_folder_and_solution():
    assert set(range(1, 17)) <= set(LABS)
    assert os.path.realpath(course_dir()) == os.path.realpath(EXERCISES)
    for lab in LABS.values():
        folder = os.path.join(EXERCISES, lab.slug)
        assert os.path.isfile(os.path.join(folder, "README.md")), lab.slug
        for name in lab.files:
            assert os.path.isfile(os.path.join(folder, name)), (lab.slug, name)
            assert os.path.isfile(os.path.join(EXERCISES, "solutions", lab.slug, name)), (lab.slug, name)
        assert len(lab.checks) >= 3 and all(c.points > 0 and c.hint for c in lab.checks)


@pytest.mark.parametrize("number", sorted(LABS))
def test_solution_full_marks_and_starter_less(number, tmp_path):
    lab = LABS[number]
    # Grade both at once: the runs are independent (their own free ports).
    solution = start_check(number, os.path.join(EXERCISES, "solutions", lab.slug), str(tmp_path))
    starter = start_check(number, os.path.join(EXERCISES, lab.slug), str(tmp_path))
    try:
        sol_code, sol_out, sol_err = finish(solution)
        st_code, st_out, st_err = finish(starter)
    finally:
        for proc in (solution, starter):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    result = parse(sol_out, sol_err)
    failed = [(t["name"], t["message"]) for t in result["tests"] if not t["passed"]]
    assert result["lab"] == number
    assert result["score"] == result["max_score"], failed
    assert sol_code == 0
    result = parse(st_out, st_err)
    assert result["score"] == 0, [t for t in result["tests"] if t["passed"]]
    assert st_code == 1
    # The starter fails with the TODO messages of its functions, pointing at the file.
    assert any("TODO" in t["message"] for t in result["tests"] if not t["passed"])


def test_starters_hold_no_solutions():
    """A starter defines the functions but raises NotImplementedError in each TODO."""
    for lab in LABS.values():
        for name in lab.files:
            with open(os.path.join(EXERCISES, lab.slug, name), encoding="utf-8") as f:
                text = f.read()
            assert "NotImplementedError(\"TODO" in text, (lab.slug, name)
            with open(os.path.join(EXERCISES, "solutions", lab.slug, name), encoding="utf-8") as f:
                assert "NotImplementedError" not in f.read(), (lab.slug, name)


def _broken(tmp_path, name: str, source: str) -> str:
    folder = tmp_path / "submission"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(textwrap.dedent(source))
    return str(folder)


def test_hanging_submission_fails_in_bounded_time(tmp_path):
    path = _broken(tmp_path, "ports.py", """
        def classify(port):
            while True:
                pass
        def needs_privilege(port, start=1024):
            import time
            time.sleep(3600)
        def parse_services(text):
            return []
    """)
    code, out, err = finish(start_check(1, path, str(tmp_path)), timeout=60)
    result = parse(out, err)
    by_name = {t["name"]: t for t in result["tests"]}
    assert code == 1 and result["score"] == 0
    assert "did not finish within" in by_name["classify ranges"]["message"]
    assert "did not finish within" in by_name["privileged ports"]["message"]
    assert "lookup" in by_name["look services up"]["message"]  # missing function: AttributeError


def test_crashing_and_uncompilable_submissions(tmp_path):
    path = _broken(tmp_path, "udp_echo.py", """
        import os
        def serve(host, port):
            os._exit(3)
        def echo(host, port, data, timeout=1.0, retries=3):
            raise RuntimeError("boom")
    """)
    code, out, err = finish(start_check(3, path, str(tmp_path)), timeout=60)
    result = parse(out, err)
    messages = {t["name"]: t["message"] for t in result["tests"]}
    assert code == 1 and result["score"] == 0
    assert "exited with status 3" in messages["server echoes a datagram"]
    # Regression: the child once started as `python -m netlab.labs._child`, and runpy's
    # "found in sys.modules" RuntimeWarning became the "last output" shown to the student.
    assert "Warning" not in messages["server echoes a datagram"], messages
    assert "RuntimeError" in messages["client gets the echo"] and "udp_echo.py:6" in messages["client gets the echo"]

    path = _broken(tmp_path, "udp_echo.py", "def serve(host, port)\n    pass\n")
    code, out, err = finish(start_check(3, path, str(tmp_path)), timeout=60)
    result = parse(out, err)
    assert result["score"] == 0
    assert all("does not compile" in t["message"] for t in result["tests"]), result


def test_memory_and_cpu_limits(tmp_path):
    path = _broken(tmp_path, "ports.py", """
        def classify(port):
            return len(bytearray(8 << 30))
        def needs_privilege(port, start=1024):
            while True:
                pass
    """)
    result = run_probe(path, "calls",
                       {"module": "ports", "calls": [["classify", [1]]]}, timeout=20)
    outcome = result.value[0]
    assert result.ok and outcome["error"] == "MemoryError"
    # A CPU-bound loop is stopped by RLIMIT_CPU even with a generous wall clock.
    result = run_probe(path, "calls",
                       {"module": "ports", "calls": [["needs_privilege", [1]]]},
                       timeout=30, limits=Limits(cpu_seconds=1))
    assert not result.ok and not result.timed_out
    assert "SIGXCPU" in explain(result) or "SIGKILL" in explain(result)


def test_student_output_does_not_confuse_the_grader(tmp_path):
    path = _broken(tmp_path, "ports.py", """
        import sys
        print('{"lab": 99}')
        print("noise " * 10000)
        sys.stderr.write("more noise\\n")
        def classify(port):
            print("classifying", port)
            if not 0 <= port <= 65535:
                raise ValueError(port)
            return "well-known" if port < 1024 else "registered" if port < 49152 else "dynamic"
    """)
    code, out, err = finish(start_check(1, path, str(tmp_path)), timeout=60)
    result = parse(out, err)
    passed = {t["name"] for t in result["tests"] if t["passed"]}
    assert passed == {"classify ranges", "reject bad port numbers"}
    assert result["lab"] == 1 and code == 1


def test_processes_forked_by_a_submission_are_stopped(tmp_path):
    # Practice mode (this process is no sandbox): the submission may write where it likes.
    pid_file = tmp_path / "forked.pid"
    path = _broken(tmp_path, "udp_echo.py", f"""
        import os, time
        def serve(host, port):
            pid = os.fork()
            if pid == 0:
                time.sleep(600)
                os._exit(0)
            with open({str(pid_file)!r}, "w") as f:
                f.write(str(pid))
            time.sleep(600)
    """)
    box = server(path, "udp_echo", "serve", ["127.0.0.1", 0])
    try:
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        result = box.stop()
    assert not result.ok and result.returncode == -signal.SIGKILL
    pid = int(pid_file.read_text())
    # SIGKILL is delivered asynchronously: on a loaded machine the process may
    # still be scheduled for a moment, so poll (bounded) until it is dead.
    state = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                state = next(line for line in f if line.startswith("State:"))
        except FileNotFoundError:
            return  # gone and reaped
        if "Z" in state:  # a zombie is dead, only not yet reaped
            return
        time.sleep(0.05)
    raise AssertionError(f"the forked process {pid} still runs: {state}")


def test_a_submission_hanging_on_import_fails_every_check_at_once(tmp_path):
    # Before the import pre-flight this cost one 15 s probe timeout per check of lab 8.
    path = _broken(tmp_path, "dissect.py", """
        import time
        while True:
            time.sleep(0.1)
    """)
    code, out, err = finish(start_check(8, path, str(tmp_path)), timeout=60)
    result = parse(out, err)
    assert code == 1 and result["score"] == 0
    for test in result["tests"]:
        assert test["message"].startswith("not run: importing dissect.py did not finish"), test
        assert "__main__" in test["message"]  # the way out


def test_a_failed_shared_probe_is_run_once(tmp_path):
    # Lab 8 shares one probe run between its checks; a failed run used to be
    # repeated by every check (seven times the timeout for a hanging dissect.py).
    # The submission counts its own imports: one pre-flight plus one probe.
    # In practice mode (this process), so that the submission can count its imports in a file.
    from netlab.labs import _grade

    names = ["read_pcap", "ip_payload", "parse_ipv4", "parse_tcp", "parse_udp", "checksum",
             "transport_checksum_ok", "find_handshake"]
    body = "".join(f"def {name}(*args):\n    os._exit(3)\n" for name in names)
    log = tmp_path / "imports.log"
    path = _broken(tmp_path, "dissect.py", "import os\n"
                   f"with open({str(log)!r}, 'a') as f:\n    f.write('import\\n')\n" + body)
    result = _grade.grade(LABS[8], path)
    assert result["score"] == 0
    assert all("exited with status 3" in t["message"] for t in result["tests"]), result
    assert log.read_text().count("import") == 2


def test_grading_stops_when_the_time_budget_is_used_up(tmp_path):
    import dataclasses

    from netlab.labs import _grade

    path = _broken(tmp_path, "ports.py", """
        def classify(port):
            while True:
                pass
        def needs_privilege(port, start=1024):
            return port < start
    """)
    result = _grade.grade(dataclasses.replace(LABS[1], budget=1.0), path)
    first, *rest = result["tests"]
    assert not first["passed"] and "did not finish within" in first["message"]
    assert rest and all(t["message"].startswith("not run: grading stopped after")
                        and not t["passed"] for t in rest), rest
    assert result["score"] == 0
