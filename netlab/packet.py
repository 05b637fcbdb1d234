"""The public packet API: one import, the fastest backend available.

The backend is chosen once, at import:

* ``netlab._core``, compiled from ``src_c/`` by Cython, when it is built;
* ``netlab._pycore``, the pure-Python twin, when ``NETLAB_PURE_PYTHON=1`` is
  set or the compiled core is missing.

Both expose the same names with the same results, so code written against
``netlab.packet`` runs unchanged on either. ``BACKEND`` says which is live
(``"cython"`` or ``"python"``) and ``BACKEND_REASON`` why.
"""
from __future__ import annotations

import os
from types import ModuleType

from netlab.errors import DecodeError

__all__ = [
    "BACKEND",
    "BACKEND_REASON",
    "CaptureError",
    "DecodeError",
    "RECORD_FIELDS",
    "TCP_FLAG_NAMES",
    "aggregate",
    "aggregate_records",
    "backends",
    "capture_info",
    "decode_frame",
    "decode_ipv4",
    "decode_packet",
    "decode_tcp",
    "decode_udp",
    "finish_stats",
    "format_capture",
    "internet_checksum",
    "iter_arrow_batches",
    "iter_batches",
    "iter_records",
    "load_backend",
    "proto_name",
    "pseudo_header_sum",
    "tcp_flag_names",
    "tcp_options",
    "tcp_state_name",
    "to_arrow",
]

from netlab.sysinfo import OPT_OUT, note_twin_fallback, pure_python_requested  # noqa: E402


def load_backend(name: str) -> ModuleType:
    """Import one backend by name: ``"cython"`` or ``"python"``."""
    if name == "cython":
        from netlab import _core

        return _core
    if name == "python":
        from netlab import _pycore

        return _pycore
    raise ValueError(f"unknown backend {name!r}: choose 'cython' or 'python'")


def backends() -> dict:
    """Every backend that can be imported here, by name (for side-by-side runs)."""
    found = {}
    for name in ("cython", "python"):
        try:
            found[name] = load_backend(name)
        except ImportError:
            pass
    return found


def _choose() -> tuple:
    if pure_python_requested():
        return load_backend("python"), f"{OPT_OUT} is set"
    try:
        return load_backend("cython"), "compiled core loaded"
    except ImportError as exc:
        reason = _why_no_core(exc)
        if _in_checkout():
            # Not an install made with the opt-out: a source folder shadowing the
            # installed copy, or an unbuilt checkout. Say so where it is used.
            note_twin_fallback(reason)
        return load_backend("python"), reason


def _in_checkout() -> bool:
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.isfile(os.path.join(parent, "setup.py"))


def _why_no_core(exc: ImportError) -> str:
    """Why the compiled core did not load, and the way to get it (checkout or install)."""
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if _in_checkout():
        # Usually `pip install .` then a command run inside the checkout: Python
        # imports the source folder, which holds no compiled core.
        return (f"compiled core not built in the source folder {parent} ({exc}); "
                f"run netlab from another folder to use the installed copy, "
                f"or build here with: python setup.py build_ext --inplace")
    # An installed copy: the usual cause is an install with the opt-out set.
    return (f"compiled core not part of this install (installed with {OPT_OUT}=1?); "
            f"reinstall without {OPT_OUT} and with a C compiler to get it")


_impl, BACKEND_REASON = _choose()
BACKEND: str = _impl.BACKEND

internet_checksum = _impl.internet_checksum
pseudo_header_sum = _impl.pseudo_header_sum
decode_ipv4 = _impl.decode_ipv4
decode_tcp = _impl.decode_tcp
decode_udp = _impl.decode_udp
decode_packet = _impl.decode_packet
tcp_flag_names = _impl.tcp_flag_names
TCP_FLAG_NAMES = _impl.TCP_FLAG_NAMES
# Captures (issue 5): records path, stats path, single frames, TCP options.
CaptureError = _impl.CaptureError
RECORD_FIELDS = _impl.RECORD_FIELDS
iter_records = _impl.iter_records
aggregate = _impl.aggregate
aggregate_records = _impl.aggregate_records
finish_stats = _impl.finish_stats
capture_info = _impl.capture_info
decode_frame = _impl.decode_frame
tcp_options = _impl.tcp_options
proto_name = _impl.proto_name
tcp_state_name = _impl.tcp_state_name
# dissect output and records in batches, --filter programs run in the core (issue 13).
format_capture = _impl.format_capture
iter_batches = _impl.iter_batches


# Captures as data (issue 15): Arrow tables built by netlab.arrow from column
# buffers the live backend fills. pyarrow (`pip install 'netlab[data]'`) is
# imported only when one of these is called.
def to_arrow(path, columns=None, filter=None, **options):
    """The packets of a capture as a ``pyarrow.Table``: see :func:`netlab.arrow.to_arrow`."""
    from netlab.arrow import to_arrow as impl

    return impl(path, columns, filter, **options)


def iter_arrow_batches(path, batch_size=65536, columns=None, filter=None, **options):
    """``pyarrow.RecordBatch`` es of a capture: see :func:`netlab.arrow.iter_arrow_batches`."""
    from netlab.arrow import iter_arrow_batches as impl

    return impl(path, batch_size, columns, filter, **options)
