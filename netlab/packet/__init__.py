"""The packet core: one import, the fastest backend available.

The backend is chosen once, at import (by :mod:`netlab._twins`, the switch of
every compiled/pure pair):

* ``netlab.packet._core``, compiled from ``src_c/`` by Cython, when it is built;
* ``netlab.packet.pure``, the pure-Python twin, when ``NETLAB_PURE_PYTHON=1``
  is set or the compiled core is missing.

Both expose the same names with the same results, so code written against
``netlab.packet`` runs unchanged on either. ``BACKEND`` says which is live
(``"cython"`` or ``"python"``) and ``BACKEND_REASON`` why.

The package shows the architecture:

* :mod:`~netlab.packet.fields` - the record layout and every number in it
  (status bits, TCP flags, protocol / ethertype / link-type numbers), named once;
* :mod:`~netlab.packet.pcap` - capture files: open (mapped), write, and the
  buffer and error both cores share;
* :mod:`~netlab.packet.pfilter` - the ``--filter`` language;
* :mod:`~netlab.packet.stats`, :mod:`~netlab.packet.options`,
  :mod:`~netlab.packet.columns` - shared pieces that need no twin;
* :mod:`~netlab.packet.pure` - the readable twin; ``_core`` and ``_arrow``
  its compiled counterparts.
"""
from __future__ import annotations

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

from netlab._twins import choose, in_checkout, note_twin_fallback  # noqa: E402
from netlab._twins import OPT_OUT, pure_python_requested  # noqa: E402,F401 - public here too


def load_backend(name: str) -> ModuleType:
    """Import one backend by name: ``"cython"`` or ``"python"``."""
    if name == "cython":
        from netlab.packet import _core

        return _core
    if name == "python":
        from netlab.packet import pure

        return pure
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
    impl, backend, reason = choose("packet")
    if backend == "python" and not pure_python_requested() and in_checkout():
        # Not an install made with the opt-out: a source folder shadowing the
        # installed copy, or an unbuilt checkout. Say so where it is used.
        note_twin_fallback(reason)
    return impl, reason


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
