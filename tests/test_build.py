"""The build contract: a failed compile names the opt-out; the opt-out installs.

These build real wheels from this checkout into a temporary folder (no network:
``--no-build-isolation`` uses the setuptools and Cython already installed).
"""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _wheel(tmp_path, env_extra):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.so", "*.c", "*.egg-info", "__pycache__", ".pytest_cache",
        ".hypothesis", ".benchmarks", "_build"))
    env = dict(os.environ, **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=600, env=env,
    )


def test_compile_failure_names_the_opt_out(tmp_path):
    out = _wheel(tmp_path, {"CC": "false", "NETLAB_PURE_PYTHON": ""})
    assert out.returncode != 0
    assert "NETLAB_PURE_PYTHON=1" in out.stdout + out.stderr


def test_opt_out_builds_a_pure_python_wheel(tmp_path):
    out = _wheel(tmp_path, {"NETLAB_PURE_PYTHON": "1", "CC": "false"})
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("netlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "netlab/_pycore/__init__.py" in names
    assert not [n for n in names if n.endswith(".so")]


def test_default_build_compiles_the_core(tmp_path):
    out = _wheel(tmp_path, {"NETLAB_PURE_PYTHON": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("netlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if n.startswith("netlab/_core") and n.endswith(".so")]
    assert not [n for n in names if n.endswith((".c", ".pyx"))]
    # The course ships beside the package, for `netlab lab` in a regular install.
    assert any(n.endswith("data/share/netlab/exercises/lab01-ports/README.md") for n in names)
    assert any("data/share/netlab/exercises/solutions/" in n for n in names)
