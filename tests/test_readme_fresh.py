"""The README's two quick-start commands, run as written in a fresh clone and a fresh venv.

A clean ``git clone`` of this checkout (committed work only, no built files)
runs the main job command as the README writes it (virtual environment,
``pip install -e .`` compiling the Cython core, ``netlab tour``); then the
setup part of the test command (its ``pip install -e '.[test,...]'``) and a
``pytest --collect-only`` of the suite, not the suite itself (that is what
this test is part of).

Offline: the ``apt-get`` steps are left out (they reach the Debian archive;
what they install is checked instead) and pip reads only the package sources
on this machine's disk that its configuration names (``file://`` indexes and
find-links folders). A pure-Python package that no such source carries is
lent from this interpreter, repacked as a wheel into a temporary folder; a
compiled one that is missing skips the test, naming it.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as metadata
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_readme import _quick_start_commands

# Two compiles of the core and a few hundred MB of wheels on a loaded 2-core
# machine: their own limit, above the subprocess timeouts below.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

EXTRAS = ("test", "docs", "plot", "data")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _local_sources():
    """(file:// indexes, find-links folders) that pip's configuration and environment name."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                            text=True, timeout=60).stdout
    values = {"index-url": [], "extra-index-url": [], "find-links": []}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        option = key.rsplit(".", 1)[-1]
        if option in values:
            values[option] += value.strip("'\"").split()
    for option in values:
        values[option] += os.environ.get("PIP_" + option.upper().replace("-", "_"), "").split()
    indexes = [u for u in values["index-url"] + values["extra-index-url"]
               if u.startswith("file://") and os.path.isdir(u[len("file://"):])]
    links = [p[len("file://"):] if p.startswith("file://") else p for p in values["find-links"]]
    return list(dict.fromkeys(indexes)), [p for p in dict.fromkeys(links) if os.path.isdir(p)]


def _local_versions(name: str, indexes, links) -> set:
    """The versions of ``name`` that the local indexes and find-links folders carry."""
    key = _canonical(name)
    files = [f for d in links for f in os.listdir(d)]
    for url in indexes:
        page = os.path.join(url[len("file://"):], key, "index.html")
        if os.path.isfile(page):
            with open(page, encoding="utf-8", errors="replace") as f:
                files += [h.split("#")[0].rsplit("/", 1)[-1]
                          for h in re.findall(r'href="([^"]+)"', f.read())]
    versions = set()
    for filename in files:
        if filename.endswith(".whl"):
            project, version = filename.split("-")[:2]
        elif filename.endswith((".tar.gz", ".zip")):
            project, _, version = filename.rsplit(".tar.gz" if filename.endswith(".tar.gz")
                                                  else ".zip", 1)[0].rpartition("-")
        else:
            continue
        if _canonical(project) == key:
            versions.add(version)
    return versions


def _needed():
    """Every distribution netlab's dependencies and EXTRAS bring, by name, with this
    interpreter's installed copy where there is one."""
    requirements = pytest.importorskip("packaging.requirements")
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads(Path(ROOT, "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [(r, "") for r in project["dependencies"]]
    todo += [(r, "") for extra in EXTRAS for r in project["optional-dependencies"][extra]]
    found = {}
    while todo:
        text, extra = todo.pop()
        req = requirements.Requirement(text)
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        key = _canonical(req.name)
        if key in found and not req.extras:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            found[key] = None
            continue
        found[key] = dist
        for wanted in [""] + sorted(req.extras):
            todo += [(r, wanted) for r in dist.requires or ()]
    return found


def _repack(dist, folder: Path) -> bool:
    """A wheel of an installed pure-Python distribution, from the files its RECORD lists
    (False, and no wheel, for a compiled one)."""
    wheel_meta = dist.read_text("WHEEL") or ""
    tag = re.search(r"^Tag: (\S+)", wheel_meta, re.M)
    name = dist.metadata["Name"]
    if "Root-Is-Purelib: true" not in wheel_meta or not tag or not tag.group(1).endswith("none-any"):
        return False  # compiled: no wheel to make from what is installed
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{dist.version}"
    info = f"{stem}.dist-info"
    record = io.StringIO()
    rows = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(folder / f"{stem}-{tag.group(1)}.whl", "w", zipfile.ZIP_DEFLATED) as whl:
        for path in dist.files or ():
            parts = path.parts
            if parts[0] == ".." or "__pycache__" in parts or path.suffix == ".pyc":
                continue  # scripts outside site-packages: pip makes them anew
            if parts[0].endswith(".dist-info"):
                if path.name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
                    continue
                parts = (info,) + parts[1:]
            data = Path(dist.locate_file(path)).read_bytes()
            arcname = "/".join(parts)
            whl.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.writerow([arcname, "sha256=" + digest.decode(), len(data)])
        rows.writerow([f"{info}/RECORD", "", ""])
        whl.writestr(f"{info}/RECORD", record.getvalue())
    return True


def _offline_pip_env(tmp: Path) -> dict:
    indexes, links = _local_sources()
    lent = tmp / "lent-wheels"
    lent.mkdir()
    # This interpreter's version of each package is known to fit the others: lend it
    # where no local source has it (a local index may carry only older releases).
    for key, dist in sorted(_needed().items()):
        carried = _local_versions(key, indexes, links)
        if dist is None or dist.version in carried:
            if not carried:
                pytest.skip(f"{key} is neither installed here nor in a package source on "
                            f"this machine: this test installs offline only")
            continue
        if not _repack(dist, lent) and not carried:
            pytest.skip(f"{key} is compiled and no package source on this machine carries "
                        f"it: this test installs offline only")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "NETLAB_"))
           and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    # Only the sources on this disk: no configuration file (it may name a registry).
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PIP_NO_INPUT": "1", "PIP_FIND_LINKS": " ".join(links + [str(lent)]),
                "PIP_ROOT_USER_ACTION": "ignore"})
    if indexes:
        env["PIP_INDEX_URL"] = indexes[0]
        env["PIP_EXTRA_INDEX_URL"] = " ".join(indexes[1:])
    else:
        env["PIP_NO_INDEX"] = "1"
    if sys.prefix != sys.base_prefix:  # the suite runs in a venv (CI): a fresh shell has none
        here = os.path.join(sys.prefix, "bin")
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != here)
    return env


def _steps(command: str):
    """The command's steps, the apt-get ones apart."""
    steps = command.split(" && ")
    return [s for s in steps if s.startswith("apt-get")], [s for s in steps if not s.startswith("apt-get")]


def _run(steps, cwd: Path, env: dict, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", " && ".join(steps)], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """A clone with the main job command run in it: (clone, env, its output)."""
    if subprocess.run([sys.executable, "-c", "import venv, ensurepip"],
                      capture_output=True, timeout=60).returncode:
        pytest.skip("the venv module (with ensurepip) is missing: Debian package python3-venv")
    if not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(os.path.join(ROOT, ".git")):
        pytest.skip("this checkout is not a git repository: there is nothing to clone")
    main_job, _ = _quick_start_commands()
    apt, _ = _steps(main_job)
    # What the apt-get step installs, checked instead of installed (no network here).
    assert any("python3-venv python3-dev gcc" in s for s in apt), apt
    if not shutil.which("gcc") or not os.path.isfile(
            os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        pytest.skip("needs gcc and the Python headers (Debian packages gcc and python3-dev)")
    tmp = tmp_path_factory.mktemp("fresh")
    env = _offline_pip_env(tmp)
    clone = tmp / "netlab"
    subprocess.run(["git", "clone", "-q", ROOT, str(clone)], check=True, timeout=300,
                   capture_output=True)
    assert not list(clone.glob("netlab/_core*.so"))  # nothing built comes along
    out = _run(_steps(main_job)[1], clone, env)
    return clone, env, out


def test_main_job_command_sets_up_and_runs_the_tour(fresh_clone):
    clone, env, out = fresh_clone
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "Successfully installed" in out.stdout and "tour done: 8 of 8 step(s)" in out.stdout
    assert "failed" not in out.stdout.split("Successfully installed")[-1], out.stdout[-3000:]
    which = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c",
         "import netlab, netlab.packet; print(netlab.__file__, netlab.packet.BACKEND)"],
        cwd="/", env=env, capture_output=True, text=True, timeout=60)
    path, backend = which.stdout.split()
    assert path.startswith(str(clone)) and backend == "cython", which.stdout + which.stderr


def test_test_command_setup_installs_the_extras_and_collects_the_suite(fresh_clone):
    clone, env, first = fresh_clone
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    _, tests = _quick_start_commands()
    steps = _steps(tests)[1]
    install = next(i for i, s in enumerate(steps) if s.startswith("pip install -e "))
    assert steps[install] == "pip install -e '.[" + ",".join(EXTRAS) + "]'", steps[install]
    out = _run(steps[:install + 1] + ["python -m pytest --collect-only -q -p no:cacheprovider"],
               clone, env)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    collected = re.search(r"^(\d+) tests collected", out.stdout, re.M)
    assert collected and int(collected.group(1)) > 500, out.stdout[-2000:]
    for module in ("pytest_benchmark", "dpkt", "pyarrow", "duckdb", "sphinx", "furo",
                   "sphinx_intl", "myst_parser", "matplotlib"):
        found = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", f"import {module}"],
                               env=env, capture_output=True, text=True, timeout=120)
        assert found.returncode == 0, f"{module}: {found.stderr[-500:]}"
