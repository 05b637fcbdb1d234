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

# Real builds and a fresh venv take minutes on a loaded 2-core machine: their
# own limit, above the subprocess timeouts below, instead of the global 120 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


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
    assert "netlab/packet/pure/__init__.py" in names
    assert not [n for n in names if n.endswith(".so")]


def test_default_build_compiles_the_core(tmp_path):
    out = _wheel(tmp_path, {"NETLAB_PURE_PYTHON": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("netlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if n.startswith("netlab/packet/_core") and n.endswith(".so")]
    assert not [n for n in names if n.endswith((".c", ".pyx"))]
    # The course ships beside the package, for `netlab lab` in a regular install.
    assert any(n.endswith("data/share/netlab/exercises/lab01-ports/README.md") for n in names)
    # ... but not the reference solutions: an installed netlab is what students have.
    assert not any("/solutions/" in n for n in names)
    # The CLI's Chinese messages (netlab/_i18n.py reads the .po as it is).
    assert "netlab/locale/zh_CN/LC_MESSAGES/netlab.po" in names


def test_an_installed_copy_runs_the_course_outside_the_checkout(tmp_path):
    """A regular (non-editable) install must carry everything the labs and the tour read.

    The wheel goes into a fresh venv, and every command runs from a folder that
    is not the checkout, so data files can only come from the install. No
    network: psutil, the one dependency, is lent from this interpreter through
    a folder holding only it (the system site-packages would bring the
    checkout's editable finder along).
    """
    psutil = pytest.importorskip("psutil")
    out = _wheel(tmp_path, {"NETLAB_PURE_PYTHON": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("netlab-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    deps = tmp_path / "deps"
    deps.mkdir()
    os.symlink(os.path.dirname(psutil.__file__), deps / "psutil")
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, timeout=300, capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NETLAB_EXERCISES", "NETLAB_DEBUG", "NETLAB_PURE_PYTHON")}
    env["PYTHONPATH"] = str(deps)

    def netlab(*args):
        return subprocess.run([str(venv / "bin" / "netlab"), *args], capture_output=True,
                              text=True, timeout=120, cwd=str(work), env=env)

    where = subprocess.run([py, "-c", "import netlab; print(netlab.__file__)"], cwd=str(work),
                           env=env, capture_output=True, text=True, timeout=60, check=True)
    assert where.stdout.startswith(str(venv)), where.stdout
    info = netlab("info")
    backend = info.stdout.splitlines()[1]
    assert info.returncode == 0 and "python" in backend, info.stdout
    # Not "python setup.py build_ext --inplace": an installed copy has no setup.py.
    assert "reinstall without NETLAB_PURE_PYTHON" in backend, backend
    assert netlab("lab", "show", "3").stdout.startswith("# Lab 3")
    assert netlab("lab", "init", "3").returncode == 0
    starter = netlab("lab", "check", "3", "--json")
    assert starter.returncode == 1 and "Traceback" not in starter.stderr, starter.stderr
    nosol = netlab("lab", "init", "3", "--solution", "--dest", "sol")
    assert nosol.returncode == 1 and len(nosol.stderr.strip().splitlines()) == 1, nosol.stderr
    assert "exercises/solutions" in nosol.stderr and not (work / "sol").exists()
    shutil.copytree(os.path.join(ROOT, "exercises", "solutions", "lab03-udp-echo"), work / "sol")
    solution = netlab("lab", "check", "3", "--path", "sol", "--json")
    assert solution.returncode == 0, solution.stdout[-2000:]
    tour = netlab("tour", "--no-live")
    assert tour.returncode == 0, tour.stdout[-2000:] + tour.stderr
    assert "not available" not in tour.stdout and "failed" not in tour.stdout, tour.stdout
    assert "handshake 3/3" in tour.stdout  # the shipped sample capture was decoded
    assert "Only the python backend is available here (compiled core not part" in tour.stdout
    ports = netlab("ports", "7")
    assert ports.returncode == 0 and "echo" in ports.stdout  # the shipped registry
