# cython: language_level=3
"""netlab.packet._arrow: a capture as columns, filled by the compiled walk.

The compiled twin of :mod:`netlab.packet.pure.arrow` (read that one first: it is
the specification, this is the same thing without a Python object per
packet). :func:`iter_columns` walks a pcap/pcapng buffer with the C walk of
``walk.h`` and fills one plain C buffer per column, a batch of frames at a
time, with the GIL released. Each batch comes back as ``bytes`` objects laid
out the way Arrow lays out its arrays (little-endian fixed-width values,
``int32`` offsets plus text for the addresses), so :mod:`netlab.arrow` wraps
them into Arrow arrays without touching a single packet. This module does not
import pyarrow.
"""
from libc.stdint cimport (INT64_MAX, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t)
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize

import array

from netlab.packet.columns import COLUMNS, MAX_BATCH, TS_RANGE_MESSAGE
from netlab.packet.pcap import CaptureError, CaptureMap

# _fill's answer for a frame whose time Arrow cannot hold (the reader's own are 1, 0, -1).
cdef enum:
    TS_RANGE = -100

BACKEND = "cython"

include "walk.pxi"

cdef extern from "arpa/inet.h" nogil:
    const char *inet_ntop(int af, const void *src, char *dst, unsigned int size)

cdef extern from "sys/socket.h" nogil:
    enum: AF_INET6


# One growable byte buffer per column; every column of a batch lives in one array of these.
cdef struct _Buf:
    uint8_t *p
    size_t len
    size_t cap


cdef int _reserve(_Buf *b, size_t extra) noexcept nogil:
    """Room for ``extra`` more bytes; -1 when the memory runs out."""
    cdef size_t cap = b.cap if b.cap else 4096
    cdef uint8_t *p
    if b.len + extra <= b.cap:
        return 0
    while cap < b.len + extra:
        cap *= 2
    p = <uint8_t *>realloc(b.p, cap)
    if p == NULL:
        return -1
    b.p = p
    b.cap = cap
    return 0


# Column positions in the _Buf array: the order of netlab.packet.columns.COLUMNS,
# then the addresses (int32 offsets, n + 1 of them, and their text), then the
# payload (int64 offsets and bytes, only when it is asked for).
cdef enum:
    C_OFFSET, C_TS, C_CAPLEN, C_WIRELEN, C_IFID, C_LINKTYPE, C_ETHERTYPE, C_FAMILY,
    C_PROTO, C_SPORT, C_DPORT, C_FLAGS, C_SEQ, C_ACK, C_PAYLOAD_LEN, C_STATUS,
    N_FIXED, C_SRC = N_FIXED, C_DST, C_SRC_TEXT, C_DST_TEXT, C_PAYLOAD, C_PAYLOAD_DATA, N_BUFS
    # The widest address text, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", and its NUL.
    ADDR_TEXT_MAX = 46


cdef inline uint32_t _put_ip4(const uint8_t *a, char *out) noexcept nogil:
    """Dotted quad of four bytes into ``out``; returns its length (at most 15)."""
    cdef uint32_t n = 0, i, v
    for i in range(4):
        v = a[i]
        if v >= 100:
            out[n] = <char>(48 + v // 100)
            n += 1
        if v >= 10:
            out[n] = <char>(48 + v // 10 % 10)
            n += 1
        out[n] = <char>(48 + v % 10)
        n += 1
        if i < 3:
            out[n] = 46  # "."
            n += 1
    return n


# The last two addresses written, with their text: the packets of a capture go
# back and forth between few hosts, so most rows copy text instead of making it.
cdef struct _Seen:
    int family
    uint8_t addr[16]
    uint32_t len
    char text[ADDR_TEXT_MAX]


cdef inline int _put_addr(_Buf *offsets, _Buf *text, size_t row, int family,
                          const uint8_t *a, _Seen *seen) noexcept nogil:
    """Append one address as text (nothing when not IP) and its end offset."""
    cdef char *out = <char *>(text.p + text.len)
    cdef uint32_t n = 0
    cdef size_t alen = 4 if family == 4 else 16
    cdef int i
    if family == 4 or family == 6:
        for i in range(2):
            if seen[i].family == family and memcmp(seen[i].addr, a, alen) == 0:
                n = seen[i].len
                memcpy(out, seen[i].text, n)
                break
        else:
            if family == 4:
                n = _put_ip4(a, out)
            # The C library's spelling: the one Python's socket.inet_ntop gives too.
            elif inet_ntop(AF_INET6, a, out, ADDR_TEXT_MAX) != NULL:
                while out[n]:
                    n += 1
            seen[1] = seen[0]
            seen[0].family = family
            memcpy(seen[0].addr, a, alen)
            seen[0].len = n
            memcpy(seen[0].text, out, n)
    text.len += n
    (<int32_t *>offsets.p)[row + 1] = <int32_t>text.len
    return 0


cdef class ColumnIterator:
    """Batches of columns over a capture buffer (see :func:`iter_columns`)."""

    cdef const uint8_t[::1] _view
    cdef nl_reader _r
    cdef int _checks
    cdef bint _payload
    cdef size_t _batch
    cdef bint _done
    cdef object _error

    def __dealloc__(self):
        nl_reader_free(&self._r)

    def __iter__(self):
        return self

    def __next__(self):
        cdef _Buf b[N_BUFS]
        cdef size_t n = 0
        cdef int rc = 1
        cdef int oom = 0
        cdef uint64_t bad_ts = 0
        cdef int i
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._done:
            raise StopIteration
        for i in range(N_BUFS):
            b[i].p = NULL
            b[i].len = b[i].cap = 0
        try:
            oom = _start(b, self._batch, self._payload)
            if not oom:
                with nogil:
                    rc = _fill(&self._r, b, self._batch, self._checks, self._payload, &n, &oom,
                               &bad_ts)
            if oom:
                raise MemoryError("no memory for a batch of capture columns")
            if rc != 1:  # the end of the walk: clean, or damage after the good frames
                self._done = True
                self._view = None  # let the caller close its mmap
                if rc == TS_RANGE:
                    self._error = CaptureError(TS_RANGE_MESSAGE, bad_ts)
                elif rc < 0:
                    self._error = CaptureError(self._r.err.decode("ascii"), self._r.err_off)
            if n == 0:
                return next(self)
            return n, _as_bytes(b, n, self._payload)
        finally:
            for i in range(N_BUFS):
                free(b[i].p)


# Bytes per value of each fixed-width column, from the typecodes of COLUMNS;
# _fill below writes exactly these C types.
cdef size_t _WIDTH[N_FIXED]
for _i, (_name, _code) in enumerate(COLUMNS):
    _WIDTH[_i] = array.array(_code).itemsize
assert len(COLUMNS) == N_FIXED and list(_WIDTH) == [8, 8, 4, 4, 4, 4, 4, 1, 2, 2, 2, 2, 4, 4, 4, 4]


cdef int _start(_Buf *b, size_t batch, bint payload) noexcept:
    """Reserve every buffer for a full batch; 1 when the memory runs out."""
    cdef int bad = 0
    cdef int i
    for i in range(N_FIXED):
        bad |= _reserve(&b[i], batch * _WIDTH[i])
    for i in range(C_SRC, C_DST + 1):
        bad |= _reserve(&b[i], (batch + 1) * 4)
    for i in range(C_SRC_TEXT, C_DST_TEXT + 1):
        bad |= _reserve(&b[i], batch * ADDR_TEXT_MAX)
    if payload:
        bad |= _reserve(&b[C_PAYLOAD], (batch + 1) * 8)
    if bad:
        return 1
    (<int32_t *>b[C_SRC].p)[0] = 0
    (<int32_t *>b[C_DST].p)[0] = 0
    if payload:
        (<int64_t *>b[C_PAYLOAD].p)[0] = 0
    return 0


cdef int _fill(nl_reader *r, _Buf *b, size_t batch, int checks, bint payload,
               size_t *rows, int *oom, uint64_t *bad_ts) noexcept nogil:
    """Walk up to ``batch`` frames into the buffers; the reader's result (1: more
    to come), or TS_RANGE (offset in ``bad_ts``) for a time Arrow cannot hold."""
    cdef nl_frame f
    cdef nl_pkt k
    cdef int rc = 1
    cdef size_t i = 0
    cdef _Seen seen[2]
    seen[0].family = seen[1].family = 0
    while i < batch:
        rc = nl_reader_next(r, &f)
        if rc != 1:
            break
        if f.ts_hi != 0 or f.ts_ns > <uint64_t>INT64_MAX:
            bad_ts[0] = f.offset  # no silent wrap: the batch so far, then an error
            rc = TS_RANGE
            break
        nl_decode(r.buf + f.offset, f.caplen, f.linktype, checks, &k)
        (<uint64_t *>b[C_OFFSET].p)[i] = f.offset
        (<uint64_t *>b[C_TS].p)[i] = f.ts_ns
        (<uint32_t *>b[C_CAPLEN].p)[i] = f.caplen
        (<uint32_t *>b[C_WIRELEN].p)[i] = f.wirelen
        (<uint32_t *>b[C_IFID].p)[i] = f.ifid
        (<int32_t *>b[C_LINKTYPE].p)[i] = f.linktype
        (<int32_t *>b[C_ETHERTYPE].p)[i] = k.ethertype
        (<uint8_t *>b[C_FAMILY].p)[i] = <uint8_t>k.family
        (<int16_t *>b[C_PROTO].p)[i] = <int16_t>k.proto
        (<uint16_t *>b[C_SPORT].p)[i] = <uint16_t>k.sport
        (<uint16_t *>b[C_DPORT].p)[i] = <uint16_t>k.dport
        (<uint16_t *>b[C_FLAGS].p)[i] = <uint16_t>k.flags
        (<uint32_t *>b[C_SEQ].p)[i] = k.seq
        (<uint32_t *>b[C_ACK].p)[i] = k.ack
        (<uint32_t *>b[C_PAYLOAD_LEN].p)[i] = k.payload_len
        (<uint32_t *>b[C_STATUS].p)[i] = k.status
        _put_addr(&b[C_SRC], &b[C_SRC_TEXT], i, k.family, k.src, seen)
        _put_addr(&b[C_DST], &b[C_DST_TEXT], i, k.family, k.dst, seen)
        if payload:
            if _reserve(&b[C_PAYLOAD_DATA], k.payload_len) < 0:
                oom[0] = 1
                break
            memcpy(b[C_PAYLOAD_DATA].p + b[C_PAYLOAD_DATA].len,
                   r.buf + f.offset + k.payload_off, k.payload_len)
            b[C_PAYLOAD_DATA].len += k.payload_len
            (<int64_t *>b[C_PAYLOAD].p)[i + 1] = <int64_t>b[C_PAYLOAD_DATA].len
        i += 1
    rows[0] = i
    return rc


cdef dict _as_bytes(_Buf *b, size_t n, bint payload):
    """The filled buffers as the dict :func:`netlab.packet.pure.arrow.iter_columns` yields."""
    cdef dict out = {}
    cdef int i
    for i, (name, _code) in enumerate(COLUMNS):
        out[name] = PyBytes_FromStringAndSize(<char *>b[i].p, n * _WIDTH[i])
    out["src"] = (PyBytes_FromStringAndSize(<char *>b[C_SRC].p, (n + 1) * 4),
                  PyBytes_FromStringAndSize(<char *>b[C_SRC_TEXT].p, b[C_SRC_TEXT].len))
    out["dst"] = (PyBytes_FromStringAndSize(<char *>b[C_DST].p, (n + 1) * 4),
                  PyBytes_FromStringAndSize(<char *>b[C_DST_TEXT].p, b[C_DST_TEXT].len))
    if payload:
        out["payload"] = (PyBytes_FromStringAndSize(<char *>b[C_PAYLOAD].p, (n + 1) * 8),
                          PyBytes_FromStringAndSize(<char *>b[C_PAYLOAD_DATA].p,
                                                    b[C_PAYLOAD_DATA].len))
    return out


def iter_columns(buf, batch_size=65536, checks=False, payload=False):
    """Iterate ``(rows, columns)`` batches of a pcap/pcapng buffer (e.g. an mmap).

    Same contract as the Python twin: at most ``batch_size`` frames a batch;
    a damaged record raises :class:`CaptureError` after the batch holding the
    good frames before it.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be from 1 to {MAX_BATCH}, not {batch_size}")
    cdef ColumnIterator it = ColumnIterator.__new__(ColumnIterator)
    it._view = buf  # netlab.arrow hands over an mmap, bytes or a byte memoryview
    cdef const uint8_t *p = &it._view[0] if it._view.shape[0] else NULL
    if nl_reader_init(&it._r, p, it._view.shape[0]) < 0:
        raise CaptureError(it._r.err.decode("ascii"), it._r.err_off)
    # netlab's own read-only file mapping: walked pages may be given back (RSS)
    it._r.release = 1 if isinstance(buf, CaptureMap) else 0
    it._checks = 1 if checks else 0
    it._payload = bool(payload)
    it._batch = batch_size
    return it
