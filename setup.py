"""Build script for netlab's compiled core, ``netlab.packet._core``.

Everything declarative lives in pyproject.toml; this file exists only because the
Cython extension needs code to describe it.

* ``pip install .`` / ``pip install -e .`` compile ``src_c/_core.pyx`` (which
  ``include``s the other ``.pxi`` files) into ``netlab.packet._core``, and
  every other ``src_c/_NAME.pyx`` into its module (see :data:`MODULES`).
* The numbers the C walk shares with Python (record status bits, flow states,
  protocol numbers) are named once, in ``netlab/packet/fields.py``: the build
  writes them into ``src_c/fields.h`` first.
* A failed compile is an error, never a silent slow install: the message names
  the opt-out.
* ``NETLAB_PURE_PYTHON=1`` skips the extension; netlab then runs on its
  pure-Python twin ``netlab.packet.pure``.
* After editing a ``.pyx``/``.pxi`` file, rebuild in place with
  ``python setup.py build_ext --inplace``.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPT_OUT = "NETLAB_PURE_PYTHON"
HINT = (
    f"netlab: building the compiled core netlab.packet._core failed. Install a C compiler "
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


# src_c/_NAME.pyx -> the module it becomes: the packet core's two live in the
# netlab.packet package, the socket fast paths at the top (netlab._NAME).
MODULES = {"_core": "netlab.packet._core", "_arrow": "netlab.packet._arrow"}


def write_fields_header(here: str) -> None:
    """src_c/fields.h: every number of netlab/packet/fields.py the C walk needs, as NL_<NAME>."""
    import runpy

    fields = runpy.run_path(os.path.join(here, "netlab", "packet", "fields.py"))
    lines = ["/* Written by setup.py from netlab/packet/fields.py: edit that file, not this one. */",
             "#ifndef NETLAB_FIELDS_H", "#define NETLAB_FIELDS_H"]
    for name, value in fields.items():
        if name.startswith(fields["C_NAMES"]) and type(value) is int:
            unsigned = not name.startswith(("ETH_", "IPPROTO_", "LINKTYPE_"))
            number = f"{value:#x}" if name.startswith(("S_", "T_", "TCP_", "ETH_")) else str(value)
            lines.append(f"#define NL_{name} {number}{'u' if unsigned else ''}")
    text = "\n".join(lines + ["#endif", ""])
    path = os.path.join(here, "src_c", "fields.h")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return  # unchanged: no rebuild of what includes it
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def extensions():
    if pure_python():
        print(f"netlab: {OPT_OUT} is set, installing the pure-Python core only", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        raise SystemExit(f"{HINT}\n  cause: Cython is not installed ({exc})") from exc
    here = os.path.dirname(os.path.abspath(__file__))
    write_fields_header(here)
    exts = [
        Extension(
            MODULES.get(name[:-4], f"netlab.{name[:-4]}"),
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
