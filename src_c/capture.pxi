# Captures: records path and stats path, the compiled twin of
# netlab/packet/pure/capture.py, decode.py and aggregate.py.
#
# The walk itself is plain C in walk.h (shared with the C baseline of
# `netlab bench parse`); this file turns its results into Python objects:
# one tuple per frame on the records path, one dict per file on the stats
# path (whose loop runs entirely in C with the GIL released).

from libc.stdint cimport int64_t
from libc.string cimport memcmp, memcpy
import _socket  # socket's C half: inet_ntop/inet_pton without importing socket.py

# Shared with the pure twin through neutral modules, never imported from the twin:
# the record layout and its numbers (fields.py), the capture buffer and its
# error (pcap.py), the stats over records (stats.py) and TCP options (options.py).
from netlab.packet.fields import RECORD_FIELDS
from netlab.packet.options import tcp_options
from netlab.packet.pcap import CaptureError, CaptureMap
from netlab.packet.stats import aggregate_records, finish_stats, proto_name, tcp_state_name
# aggregate (the stats path and its tail) lives in stats.pxi, dissect output in format.pxi.


include "walk.pxi"


# --- address text, cached: a direct-mapped cache, one slot per hash ---------

cdef list _c4_names = [None] * 1024
cdef uint32_t _c4_keys[1024]
cdef list _c6_names = [None] * 256
cdef uint8_t _c6_keys[256][16]


cdef inline object _name4(const uint8_t *a):
    cdef uint32_t v = _be32(a)
    cdef uint32_t h = (v * <uint32_t>2654435761u) >> 22
    cdef object s = _c4_names[h]
    if s is not None and _c4_keys[h] == v:
        return s
    s = "%d.%d.%d.%d" % (a[0], a[1], a[2], a[3])
    _c4_names[h] = s
    _c4_keys[h] = v
    return s


cdef inline object _name6(const uint8_t *a):
    cdef uint32_t h = (_be32(a) ^ _be32(a + 4) ^ _be32(a + 8) ^ _be32(a + 12)) * <uint32_t>2654435761u
    h >>= 24
    cdef object s = _c6_names[h]
    if s is not None and memcmp(_c6_keys[h], a, 16) == 0:
        return s
    s = _socket.inet_ntop(_socket.AF_INET6, (<const char *>a)[:16])
    _c6_names[h] = s
    memcpy(_c6_keys[h], a, 16)
    return s


cdef inline tuple _record(const nl_frame *f, const nl_pkt *k):
    cdef object src = None
    cdef object dst = None
    if k.family == 4:
        src = _name4(k.src)
        dst = _name4(k.dst)
    elif k.family == 6:
        src = _name6(k.src)
        dst = _name6(k.dst)
    # a time past 2554 (or before 1970) needs more than 64 bits: a plain Python int then
    cdef object ts = f.ts_ns
    if f.ts_hi:
        ts = ((<object>f.ts_hi) << 64) + ts
    return (f.offset, ts, f.caplen, f.wirelen, f.ifid, f.linktype, k.ethertype, src, dst,
            k.proto, k.sport, k.dport, k.flags, k.seq, k.ack, k.l4_off, k.payload_off,
            k.payload_len, k.status)


cdef const uint8_t[::1] _capture_view(data) except *:
    # mmap, bytes, bytearray, memoryview... (read-only is fine: we never write)
    return _as_bytes_view(data)


cdef int _open_reader(nl_reader *r, const uint8_t[::1] view, buf) except -1:
    cdef const uint8_t *p = &view[0] if view.shape[0] else NULL
    if nl_reader_init(r, p, view.shape[0]) < 0:
        raise CaptureError(r.err.decode("ascii"), r.err_off)
    # netlab's own read-only file mapping: walked pages may be given back (RSS)
    r.release = 1 if isinstance(buf, CaptureMap) else 0
    return 0


cdef class RecordIterator:
    """Iterator of record tuples over a capture buffer (see ``iter_records``)."""

    cdef const uint8_t[::1] _view
    cdef nl_reader _r
    cdef int _checks
    cdef bint _done

    def __iter__(self):
        return self

    def __dealloc__(self):
        nl_reader_free(&self._r)

    def __next__(self):
        cdef nl_frame f
        cdef nl_pkt k
        cdef int rc
        if self._done:
            raise StopIteration
        rc = nl_reader_next(&self._r, &f)
        if rc == 1:
            nl_decode(self._r.buf + f.offset, f.caplen, f.linktype, self._checks, &k)
            return _record(&f, &k)
        self._done = True
        nl_reader_free(&self._r)
        self._view = None  # let the caller close its mmap
        if rc == 0:
            raise StopIteration
        raise CaptureError(self._r.err.decode("ascii"), self._r.err_off)


def iter_records(buf, checks=False):
    """Iterate one record tuple per frame of a pcap/pcapng buffer (e.g. an mmap)."""
    cdef RecordIterator it = RecordIterator.__new__(RecordIterator)
    it._view = _capture_view(buf)
    _open_reader(&it._r, it._view, buf)
    it._checks = 1 if checks else 0
    return it


def capture_info(buf):
    """What the file says about itself: format, byte order, timestamp unit, link type."""
    cdef const uint8_t[::1] view = _capture_view(buf)
    cdef nl_reader r
    _open_reader(&r, view, None)
    if r.format != NL_PCAP:
        return {"format": "pcapng", "byte_order": None, "ts_unit": None,
                "snaplen": None, "linktype": None}
    return {"format": "pcap", "byte_order": "little" if r.le else "big",
            "ts_unit": "us" if r.frac_mult == 1000 else "ns", "snaplen": r.snaplen,
            "linktype": r.linktype}


def decode_frame(data, int linktype=1, checks=False, ts_ns=0, long long wirelen=-1):
    """Decode one frame (e.g. from a packet socket) into a record tuple."""
    cdef const uint8_t[::1] view = _capture_view(data)
    cdef nl_frame f
    cdef nl_pkt k
    cdef size_t n = view.shape[0]
    f.offset = 0
    f.ts_ns = ts_ns
    f.ts_hi = 0
    f.caplen = <uint32_t>n
    f.wirelen = <uint32_t>(n if wirelen < 0 else wirelen)
    f.ifid = 0
    f.linktype = linktype
    nl_decode(&view[0] if n else NULL, <uint32_t>n, linktype, 1 if checks else 0, &k)
    return _record(&f, &k)
