"""Build script for netlab's compiled core, ``netlab._core``.

Everything declarative lives in pyproject.toml; this file exists only because the
Cython extension needs code to describe it.

* ``pip install .`` / ``pip install -e .`` compile ``src_c/_core.pyx`` (which
  ``include``s the other ``.pxi`` files) into ``netlab._core``.
* A failed compile is an error, never a silent slow install: the message names
  the opt-out.
* ``NETLAB_PURE_PYTHON=1`` skips the extension; netlab then runs on its
  pure-Python twin ``netlab._pycore``.
* After editing a ``.pyx``/``.pxi`` file, rebuild in place with
  ``python setup.py build_ext --inplace``.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPT_OUT = "NETLAB_PURE_PYTHON"
HINT = (
    f"netlab: building the compiled core netlab._core failed. Install a C compiler "
    f"and the Python headers (Debian: apt-get install gcc python3-dev), or set "
    f"{OPT_OUT}=1 to install the pure-Python core instead."
)


def pure_python() -> bool:
    return os.environ.get(OPT_OUT, "").strip() not in ("", "0")


class BuildExt(build_ext):
    """build_ext that turns any compile failure into one clear message."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - re-raised with the way out
            raise SystemExit(f"{HINT}\n  cause: {exc}") from exc

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            raise SystemExit(f"{HINT}\n  cause: {exc}") from exc


def extensions():
    if pure_python():
        print(f"netlab: {OPT_OUT} is set, installing the pure-Python core only", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        raise SystemExit(f"{HINT}\n  cause: Cython is not installed ({exc})") from exc
    here = os.path.dirname(os.path.abspath(__file__))
    # Every src_c/_NAME.pyx becomes the extension module netlab._NAME
    # (netlab._core is the packet core; others hold socket fast paths).
    exts = [
        Extension(
            f"netlab.{name[:-4]}",
            sources=[os.path.join("src_c", name)],
            include_dirs=[os.path.join(here, "src_c")],
            extra_compile_args=["-O3"],
        )
        for name in sorted(os.listdir(os.path.join(here, "src_c")))
        if name.startswith("_") and name.endswith(".pyx")
    ]
    try:
        return cythonize(
            exts,
            compiler_directives={
                "language_level": "3",
                "boundscheck": False,
                "wraparound": False,
                "cdivision": True,
                "initializedcheck": False,
                "embedsignature": True,
            },
            annotate=bool(os.environ.get("NETLAB_ANNOTATE")),
            quiet=True,
        )
    except Exception as exc:  # noqa: BLE001 - Cython compile errors
        raise SystemExit(f"{HINT}\n  cause: {exc}") from exc


def course_files():
    """The labs (handouts, starters, data) for <prefix>/share/netlab/exercises.

    ``netlab lab`` finds them there in a regular (non-editable) install. The
    reference solutions (exercises/solutions) stay in the source checkout:
    an installed netlab is what students have.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    out = {}
    for root, dirs, files in os.walk(os.path.join(here, "exercises")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__"
                         and not (d == "solutions" and os.path.samefile(root, os.path.join(here, "exercises"))))
        rel = os.path.relpath(root, here)
        keep = [os.path.join(rel, f) for f in sorted(files) if not f.endswith((".pyc", ".json"))]
        if keep:
            out[os.path.join("share", "netlab", rel)] = keep
    return sorted(out.items())


setup(ext_modules=extensions(), data_files=course_files(), cmdclass={"build_ext": BuildExt})
