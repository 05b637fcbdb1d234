"""The sandbox holds: every isolation property tried for real by a malicious submission.

No mocked sandbox: each test writes a submission that attacks, runs it in the
real bubblewrap sandbox inside a private network namespace (through the
library's grading worker, or through the real CLI), and looks at what
happened from outside. Needs bubblewrap and namespaces (CI runs as root with
the Debian package bubblewrap installed).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from netlab.labs import LABS, sandbox
from netlab.labs.batch import in_worker
from netlab.labs._runner import run_probe
from tests.conftest import ROOT, netlab_env

ISOLATED, WHY = sandbox.isolation_status()
needs_sandbox = pytest.mark.skipif(not ISOLATED, reason=f"needs bubblewrap (Debian package bubblewrap) "
                                                        f"and user namespaces, or root: {WHY}")
EXERCISES = os.path.join(ROOT, "exercises")
PACKAGE = os.path.join(ROOT, "netlab")


def _submission(folder, name: str, source: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(source))
    return str(folder)


def _call_in_sandbox(path: str, module: str, func: str, hidden=()) -> object:
    def go():
        result = run_probe(path, "calls", {"module": module, "calls": [[func, []]]}, timeout=20)
        return {"ok": result.ok, "value": result.value, "output": result.output}
    out = in_worker(go, hidden=hidden, timeout=60)
    assert out["ok"], out
    outcome = out["value"][0]
    assert outcome["ok"], outcome
    return outcome["value"]


def _tree_digest(folder: str) -> str:
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(path.encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


@needs_sandbox
def test_what_student_code_can_see_and_do(tmp_path):
    other = tmp_path / "class" / "other-student"
    _submission(other, "ports.py", "SECRET = 'the answers of another student'\n")
    checks = tmp_path / "hidden-checks"
    checks.mkdir()
    (checks / "lab01.toml").write_text("# hidden\n")
    outside = tmp_path / "outside.txt"
    me = tmp_path / "class" / "me"
    path = _submission(me, "evil.py", f"""
        import errno, os, socket

        def attempt(func):
            try:
                func()
                return "ok"
            except OSError as exc:
                return errno.errorcode.get(exc.errno, str(exc.errno))
            except Exception as exc:
                return type(exc).__name__

        def connect_off_host():
            with socket.socket() as s:
                s.settimeout(2)
                s.connect(("192.0.2.1", 80))

        def write(path):
            with open(path, "w") as f:
                f.write("owned")

        def read_any(path):
            if os.path.isdir(path):
                if not os.listdir(path):
                    raise FileNotFoundError(errno.ENOENT, "empty")
            else:
                open(path).read()

        def imports_netlab():
            import netlab  # noqa: F401

        def observe():
            return {{
                "uid": os.getuid(), "gid": os.getgid(),
                "interfaces": [name for _, name in socket.if_nameindex()],
                "connect": attempt(connect_off_host),
                "import": attempt(imports_netlab),
                "read_solutions": attempt(lambda: read_any({os.path.join(EXERCISES, "solutions")!r})),
                "read_grader": attempt(lambda: read_any({os.path.join(PACKAGE, "labs", "lab01.py")!r})),
                "read_package": attempt(lambda: read_any({PACKAGE!r})),
                "read_other": attempt(lambda: read_any({str(other / "ports.py")!r})),
                "read_checks": attempt(lambda: read_any({str(checks / "lab01.toml")!r})),
                "read_shadow": attempt(lambda: read_any("/etc/shadow")),
                "write_grader": attempt(lambda: write({os.path.join(PACKAGE, "labs", "lab01.py")!r})),
                "write_outside": attempt(lambda: write({str(outside)!r})),
                "write_original": attempt(lambda: write({str(me / "mark.txt")!r})),
                "write_usr": attempt(lambda: write("/usr/owned")),
                "write_copy": attempt(lambda: write("mine.txt")),
                "write_tmp": attempt(lambda: write("/tmp/mine.txt")),
                "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                "run": os.listdir("/run"),
            }}
    """)
    before = _tree_digest(PACKAGE)
    seen = _call_in_sandbox(path, "evil", "observe", hidden=[str(tmp_path / "class"), str(checks)])
    assert seen["uid"] != os.getuid() or os.getuid() != 0
    if os.geteuid() == 0:
        assert (seen["uid"], seen["gid"]) == (65534, 65534)
    assert seen["interfaces"] == ["lo"]
    assert seen["connect"] == "ENETUNREACH"  # no route: nothing was sent
    assert seen["import"] == "ModuleNotFoundError"
    for key in ("read_solutions", "read_grader", "read_package", "read_other", "read_checks", "read_shadow"):
        assert seen[key] in ("ENOENT", "EACCES"), (key, seen[key])
    for key in ("write_grader", "write_outside", "write_original", "write_usr"):
        assert seen[key] in ("ENOENT", "EACCES", "EROFS", "EPERM"), (key, seen[key])
    assert seen["write_copy"] == "ok" and seen["write_tmp"] == "ok"
    assert len(seen["pids"]) <= 3  # bwrap's init, the child, nothing of the grader's
    assert seen["run"] == []  # no host Unix sockets to connect to
    # ... and from outside: nothing changed.
    assert not outside.exists() and not (me / "mark.txt").exists() and not (me / "mine.txt").exists()
    assert _tree_digest(PACKAGE) == before


def _processes_with(token: str) -> list:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if token.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


@needs_sandbox
def test_nothing_started_by_a_submission_survives(tmp_path):
    token = f"netlab-survivor-{uuid.uuid4().hex}"
    path = _submission(tmp_path / "sub", "evil.py", f"""
        import os, subprocess, sys, time

        def escape():
            # setsid and a double fork: the classic way to outlive a process group.
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {token!r}],
                                     start_new_session=True)
                    time.sleep(600)
                os._exit(0)
            time.sleep(1.0)
            return "escaped?"
    """)
    assert _call_in_sandbox(str(path), "evil", "escape") == "escaped?"
    deadline = time.monotonic() + 10
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(token) == []


def _cli(*args, cwd, timeout=120, env=None):
    return subprocess.run([sys.executable, "-m", "netlab", *map(str, args)], capture_output=True, text=True,
                          cwd=str(cwd), env=netlab_env(env), timeout=timeout)


FORGED = {"lab": 1, "score": 16, "max_score": 16, "tests": []}


@needs_sandbox
def test_forged_results_stdout_writes_and_sigstop_get_nothing(tmp_path):
    # The starter's functions (no work done), plus every trick to fake a result:
    # a forged result document on every open descriptor and on the grader's stdout
    # through /proc, SIGSTOP to the parent and to everything it can reach.
    with open(os.path.join(EXERCISES, "lab01-ports", "ports.py"), encoding="utf-8") as f:
        starter = f.read()
    forged = json.dumps(FORGED)
    ok = json.dumps({"ok": True, "value": [{"ok": True, "value": "well-known"}] * 10})
    evil = textwrap.dedent(f"""
        import os, signal
        for fd in range(0, 64):
            for text in ({ok!r}, {forged!r}):
                try:
                    os.write(fd, text.encode())
                except OSError:
                    pass
        for pid in (os.getppid(), 1, 2):
            for fd in (1, 2):
                try:
                    with open(f"/proc/{{pid}}/fd/{{fd}}", "w") as f:
                        f.write({forged!r})
                except OSError:
                    pass
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                pass
        try:
            os.kill(-1, signal.SIGSTOP)
        except OSError:
            pass
        os._exit(0)
    """)
    folder = tmp_path / "lab01-ports"
    folder.mkdir()
    (folder / "ports.py").write_text(evil + "\n" + starter)
    start = time.monotonic()
    proc = _cli("lab", "check", 1, "--path", folder, "--json", cwd=tmp_path, timeout=150)
    elapsed = time.monotonic() - start
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)  # exactly one document: the grader's
    assert result["isolated"] is True
    assert result["score"] < result["max_score"] and result["score"] == 0, result
    assert proc.returncode == 1
    assert elapsed < 120  # SIGSTOP did not stall the grader


@needs_sandbox
def test_rewriting_the_grader_changes_nothing_for_the_next_run(tmp_path):
    before = _tree_digest(PACKAGE)
    evil = tmp_path / "lab01-ports"
    evil.mkdir()
    targets = [os.path.join(PACKAGE, "labs", "lab01.py"), os.path.join(PACKAGE, "labs", "defs", "lab01.toml"),
               os.path.join(PACKAGE, "labs", "_grade.py")]
    (evil / "ports.py").write_text(textwrap.dedent(f"""
        for path in {targets!r}:
            try:
                with open(path, "w") as f:
                    f.write("def grade(*a):\\n    return {{'score': 16}}\\n")
            except OSError:
                pass
        def classify(port):
            raise NotImplementedError("TODO")
    """))
    first = _cli("lab", "check", 1, "--path", evil, "--json", cwd=tmp_path)
    assert json.loads(first.stdout)["score"] == 0
    starter = _cli("lab", "check", 1, "--path", os.path.join(EXERCISES, "lab01-ports"), "--json", cwd=tmp_path)
    assert json.loads(starter.stdout)["score"] == 0
    assert _tree_digest(PACKAGE) == before


@needs_sandbox
def test_a_students_own_capture_never_changes_the_grader_input(tmp_path):
    # The reference solution with its loopback.pcap overwritten: the grader reads
    # the course's capture, so the answers still come out right (full marks).
    folder = tmp_path / "lab08-packets"
    folder.mkdir()
    solution = os.path.join(EXERCISES, "solutions", "lab08-packets", "dissect.py")
    with open(solution, "rb") as f:
        (folder / "dissect.py").write_bytes(f.read())
    (folder / "loopback.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 20)
    proc = _cli("lab", "check", 8, "--path", folder, "--json", cwd=tmp_path)
    result = json.loads(proc.stdout)
    assert result["score"] == result["max_score"], [t for t in result["tests"] if not t["passed"]]
    assert (folder / "loopback.pcap").read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"


@needs_sandbox
def test_a_scanner_that_does_not_refuse_sends_nothing_off_host(tmp_path):
    # Lab 10's scanner without its ethics check: in the private network the SYN to
    # 192.0.2.1 has no route (ENETUNREACH), and the check still fails.
    folder = tmp_path / "lab10-scan-redirect"
    folder.mkdir()
    (folder / "scanner.py").write_text(textwrap.dedent("""
        import socket
        def scan(host, ports, timeout=0.5):
            found = []
            for port in ports:
                with socket.socket() as s:
                    s.settimeout(timeout)
                    if s.connect_ex((host, port)) == 0:
                        found.append(port)
            return sorted(found)
    """))
    redirector = os.path.join(EXERCISES, "solutions", "lab10-scan-redirect", "redirector.py")
    with open(redirector, "rb") as f:
        (folder / "redirector.py").write_bytes(f.read())
    proc = _cli("lab", "check", 10, "--path", folder, "--json", cwd=tmp_path)
    result = json.loads(proc.stdout)
    tests = {t["name"]: t for t in result["tests"]}
    assert tests["scanner finds the open ports"]["passed"]
    assert not tests["scanner refuses other hosts"]["passed"]
    assert result["score"] < result["max_score"]


def test_without_bwrap_practice_runs_and_says_so_grading_refuses(tmp_path):
    # A real missing tool: a PATH without bwrap.
    env = {"PATH": str(tmp_path / "empty-bin")}
    proc = _cli("lab", "check", 1, "--path", os.path.join(EXERCISES, "solutions", "lab01-ports"), "--json",
                cwd=tmp_path, env=env)
    notes = proc.stderr.strip().splitlines()
    assert len(notes) == 1 and "not isolated" in notes[0], proc.stderr
    result = json.loads(proc.stdout)
    assert result["isolated"] is False and result["score"] == result["max_score"]
    (tmp_path / "class" / "a").mkdir(parents=True)
    proc = _cli("lab", "grade", 1, tmp_path / "class", cwd=tmp_path, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "needs the sandbox" in lines[0], proc.stderr
    assert proc.stdout == ""


def test_every_lab_is_defined_in_toml_and_ships_stdlib_probes():
    for lab in LABS.values():
        assert os.path.isfile(os.path.join(PACKAGE, "labs", "defs", f"lab{lab.number:02d}.toml"))
    probes = os.path.join(PACKAGE, "labs", "probes")
    for name in os.listdir(probes):
        if name.endswith(".py"):
            with open(os.path.join(probes, name), encoding="utf-8") as f:
                text = f.read()
            assert "import netlab" not in text and "from netlab" not in text, name


def test_practice_mode_still_sends_nothing_off_host(tmp_path):
    # No sandbox here (this test process grades in practice mode): the child refuses
    # non-loopback destinations itself.
    path = _submission(tmp_path / "sub", "net.py", """
        import errno, socket
        def attempts():
            out = []
            with socket.socket() as s:
                out.append(errno.errorcode.get(s.connect_ex(("192.0.2.1", 80)), "ok"))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.sendto(b"x", ("10.1.2.3", 53))
                    out.append("sent")
                except OSError as exc:
                    out.append(errno.errorcode[exc.errno])
                u.sendto(b"x", ("127.0.0.1", 9))
                out.append("loopback ok")
            return out
    """)
    result = run_probe(path, "calls", {"module": "net", "calls": [["attempts", []]]}, timeout=20)
    assert result.ok and result.value[0]["value"] == ["ENETUNREACH", "ENETUNREACH", "loopback ok"]


@needs_sandbox
def test_a_submission_built_on_netlab_itself_scores_nothing(tmp_path):
    # The cheat: lab 6 answered with netlab's own chargen service (and the installed
    # grader's pattern). Outside the sandbox it would pass the pattern check; inside,
    # netlab does not exist.
    folder = tmp_path / "lab06-chargen-discard"
    folder.mkdir()
    (folder / "chargen.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from netlab.services.chargen import line

        def chargen_line(n):
            return line(n)
    """))
    outside = subprocess.run([sys.executable, "-c", "import chargen; print(chargen.chargen_line(0)[:5])"],
                             cwd=str(folder), capture_output=True, text=True, env=netlab_env(), timeout=60)
    assert outside.returncode == 0 and outside.stdout.strip() == "b' !\"#$'"  # the cheat works unsandboxed
    proc = _cli("lab", "check", 6, "--path", folder, "--json", cwd=tmp_path)
    result = json.loads(proc.stdout)
    assert result["score"] == 0, [t for t in result["tests"] if t["passed"]]
    assert "No module named 'netlab'" in result["tests"][0]["message"], result["tests"][0]
