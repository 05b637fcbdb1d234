"""A command that falls back to the slow twin without being asked says so, once."""
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def _source_copy(tmp_path):
    """This checkout's package without any compiled module, beside a setup.py:
    what `pip install .` users run when they start netlab inside the checkout."""
    src = tmp_path / "checkout"
    shutil.copytree(f"{ROOT}/netlab", src / "netlab",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(f"{ROOT}/setup.py", src / "setup.py")
    return src


def _dissect(src, extra_env=None):
    # -S: no site-packages, so no installed or editable copy can lend a compiled core.
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", **(extra_env or {})}
    sample = src / "netlab" / "data" / "samples" / "handshake.pcap"
    return subprocess.run([sys.executable, "-S", "-m", "netlab", "dissect", str(sample)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=str(src))


def test_unrequested_fallback_warns_once_with_the_fix(tmp_path):
    out = _dissect(_source_copy(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("netlab: warning: running the pure-Python twin")
    assert "build_ext --inplace" in lines[0] and "another folder" in lines[0]
    assert "handshake 1/3" in out.stdout  # the command still did its job


def test_requested_twin_stays_quiet(tmp_path):
    out = _dissect(_source_copy(tmp_path), {"NETLAB_PURE_PYTHON": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
