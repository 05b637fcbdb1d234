"""Labs 11-13 (web server, UDP pinger, reliable transfer): their checks catch
the classic mistakes, and their handouts are translated.

Every lab's solution scores full marks and its starter 0 in tests/test_labs.py;
here a solution with one classic bug (a web server that serves files outside
its folder, a pinger that takes any reply for the current ping, a
stop-and-wait sender with two packets in flight) must lose exactly the check
that measures that concept, through the real CLI, in the sandbox.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from netlab.labs import LABS
from tests.conftest import ROOT, netlab_env

EXERCISES = os.path.join(ROOT, "exercises")

BUGS = {
    11: ("webserver.py", "if not full.startswith(root + os.sep) or not os.path.isfile(full):",
         "if not os.path.isfile(full):", "nothing outside the folder"),
    12: ("pinger.py", 'if len(fields) >= 2 and fields[0] == b"Ping" and fields[1] == str(seq).encode():',
         "if fields:", "a late or duplicated reply"),
    13: ("rdt.py", "return send_window(host, port, data, 1, timeout)",
         "return send_window(host, port, data, 2, timeout)", "stop-and-wait over a lossy link"),
}


@pytest.mark.parametrize("number", sorted(BUGS))
def test_a_classic_bug_loses_its_check(number, tmp_path):
    name, right, wrong, check = BUGS[number]
    lab = LABS[number]
    with open(os.path.join(EXERCISES, "solutions", lab.slug, name), encoding="utf-8") as f:
        source = f.read()
    assert source.count(right) == 1
    folder = tmp_path / lab.slug
    folder.mkdir()
    (folder / name).write_text(source.replace(right, wrong), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "netlab", "lab", "check", str(number), "--path", str(folder),
                           "--json"], capture_output=True, text=True, cwd=tmp_path, env=netlab_env(),
                          timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    failed = [t["name"] for t in result["tests"] if not t["passed"]]
    assert failed == [check], [(t["name"], t["message"]) for t in result["tests"]]
    assert 0 < result["score"] < result["max_score"]


def test_the_new_lab_handouts_are_translated(tmp_path):
    """Every message of the lab 11-13 pages has a Chinese translation, none fuzzy."""
    babel_pofile = pytest.importorskip("babel.messages.pofile")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "gettext", "docs", str(tmp_path / "pot")],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    for number in (11, 12, 13):
        with open(tmp_path / "pot" / "labs" / f"lab{number}.pot", "rb") as f:
            wanted = [m.id for m in babel_pofile.read_po(f) if m.id]
        path = os.path.join(ROOT, "docs", "locale", "zh_CN", "LC_MESSAGES", "labs", f"lab{number}.po")
        with open(path, "rb") as f:
            catalog = babel_pofile.read_po(f)
        assert len(wanted) > 20
        for msgid in wanted:
            message = catalog.get(msgid)
            assert message is not None and message.string, f"lab{number}: no translation for {msgid[:70]!r}"
            assert not message.fuzzy
