# cython: language_level=3
"""netlab.packet._core: the compiled twin of :mod:`netlab.packet.pure`.

Same names, same results, same errors as the pure-Python core; only faster.
Each topic lives in its own ``.pxi`` file, pulled in with ``include`` so the
whole core is one extension module (one import, one shared set of helpers).
Rebuild after an edit with ``python setup.py build_ext --inplace``.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from netlab.errors import DecodeError

BACKEND = "cython"

include "checksum.pxi"
include "headers.pxi"
include "capture.pxi"
include "format.pxi"
include "stats.pxi"
