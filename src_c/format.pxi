# dissect output and --filter in the compiled core: the compiled twin of
# netlab/packet/pure/format.py and netlab/packet/lines.py (and of the filter predicates of
# netlab/packet/pfilter.py).
#
# The C in format.h builds each text line or JSON object straight into one
# byte buffer; this file only walks the capture, hands each packet to it and
# gives the buffer to Python a chunk (about 256 kB) at a time. No Python
# object is made per packet or per field.

from libc.stdlib cimport free, malloc

cdef extern from "Python.h":
    int PyGC_Enable()
    int PyGC_Disable()


cdef extern from "format.h":
    ctypedef struct nl_buf:
        char *p
        size_t len
        size_t cap

    ctypedef struct nl_clock:
        long long sec
        int ok

    ctypedef struct nl_notes:
        size_t n

    ctypedef struct nl_fop:
        int op
        int dir
        int proto
        uint32_t port
        int family
        uint8_t addr[16]

    enum:
        NL_F_PROTO, NL_F_IP, NL_F_IP6, NL_F_ARP, NL_F_PORT, NL_F_HOST, NL_F_NOT, NL_F_AND, NL_F_OR

    int nl_reserve(nl_buf *b, size_t more)
    size_t nl_room(uint32_t caplen)
    void nl_line(nl_buf *b, nl_clock *c, uint64_t n, const nl_frame *f, const uint8_t *fr,
                 const nl_pkt *k, const char *note)
    int nl_json(nl_buf *b, uint64_t n, const nl_frame *f, const uint8_t *fr, const nl_pkt *k,
                const char *note)
    int nl_notes_init(nl_notes *s)
    void nl_notes_free(nl_notes *s)
    const char *nl_note(nl_notes *s, const nl_pkt *k, char *tmp, size_t tmplen, int *oom)
    int nl_match(const nl_fop *prog, size_t n, const nl_pkt *k, uint8_t *stack)
    int nl_agg_run_filtered(nl_agg *g, nl_reader *r, int checks, const nl_fop *prog, size_t n,
                            uint8_t *stack) nogil

cdef extern from "time.h":
    void tzset()

tzset()  # localtime_r then reads TZ as time.localtime does

cdef size_t CHUNK = 262144  # bytes of output handed to Python at a time

cdef dict _OPS = {"proto": NL_F_PROTO, "ip": NL_F_IP, "ip6": NL_F_IP6, "arp": NL_F_ARP,
                  "port": NL_F_PORT, "host": NL_F_HOST, "not": NL_F_NOT, "and": NL_F_AND,
                  "or": NL_F_OR}
cdef dict _DIRS = {None: 0, "src": 1, "dst": 2}


cdef class _Program:
    """A --filter program (postfix steps from netlab.packet.pfilter) as C structs."""

    cdef nl_fop *ops
    cdef uint8_t *stack
    cdef size_t n

    def __cinit__(self, program):
        steps = list(program)
        self.n = len(steps)
        self.ops = <nl_fop *>malloc(max(self.n, 1) * sizeof(nl_fop))
        self.stack = <uint8_t *>malloc(max(self.n, 1))
        if not self.ops or not self.stack:
            raise MemoryError("no memory for the filter")
        cdef size_t i
        cdef bytes packed
        for i in range(self.n):
            step = steps[i]
            self.ops[i].op = _OPS[step[0]]
            self.ops[i].dir = 0
            if step[0] == "proto":
                self.ops[i].proto = step[1]
            elif step[0] == "port":
                self.ops[i].dir = _DIRS[step[1]]
                self.ops[i].port = step[2]
            elif step[0] == "host":
                self.ops[i].dir = _DIRS[step[1]]
                v6 = ":" in step[2]
                self.ops[i].family = 6 if v6 else 4
                packed = _socket.inet_pton(_socket.AF_INET6 if v6 else _socket.AF_INET, step[2])
                memcpy(self.ops[i].addr, <const char *>packed, len(packed))

    def __dealloc__(self):
        free(self.ops)
        free(self.stack)

    cdef inline bint match(self, const nl_pkt *k):
        return nl_match(self.ops, self.n, k, self.stack)


cdef _Program _program(program):
    return None if program is None else _Program(program)


cdef class CaptureFormatter:
    """Chunks of ``netlab dissect`` output over a capture (see ``format_capture``)."""

    cdef const uint8_t[::1] _view
    cdef nl_reader _r
    cdef nl_notes _notes
    cdef nl_buf _out
    cdef nl_clock _clock
    cdef _Program _prog
    cdef int _checks
    cdef bint _json
    cdef uint64_t _n
    cdef int _rc
    cdef bint _done

    def __cinit__(self):
        self._out.p = NULL
        self._out.len = self._out.cap = 0
        self._clock.sec = -1
        self._rc = 1
        if nl_notes_init(&self._notes) < 0:
            raise MemoryError("no memory for the connection table")

    def __dealloc__(self):
        nl_notes_free(&self._notes)
        free(self._out.p)
        nl_reader_free(&self._r)

    def __iter__(self):
        return self

    def __next__(self):
        cdef nl_frame f
        cdef nl_pkt k
        cdef char tmp[128]
        cdef const char *note
        cdef int oom = 0
        cdef int rc = 1
        if self._done:
            self._view = None  # let the caller close its mmap
            if self._rc < 0:
                self._rc = 0
                raise CaptureError(self._r.err.decode("ascii"), self._r.err_off)
            raise StopIteration
        self._out.len = 0
        while self._out.len < CHUNK:
            rc = nl_reader_next(&self._r, &f)
            if rc != 1:
                break
            self._n += 1  # the capture's numbers, filter or not
            nl_decode(self._r.buf + f.offset, f.caplen, f.linktype, self._checks, &k)
            note = nl_note(&self._notes, &k, tmp, sizeof(tmp), &oom)  # every packet: notes stay
            if oom:
                raise MemoryError("no memory for the connection table")
            if self._prog is not None and not self._prog.match(&k):
                continue
            if nl_reserve(&self._out, nl_room(f.caplen)) < 0:
                raise MemoryError("no memory for the output")
            if self._json:
                if nl_json(&self._out, self._n, &f, self._r.buf + f.offset, &k, note) < 0:
                    raise MemoryError("no memory for the output")
            else:
                nl_line(&self._out, &self._clock, self._n, &f, self._r.buf + f.offset, &k, note)
        if rc != 1:
            self._done = True
            self._rc = rc
        if self._out.len:
            return self._out.p[:self._out.len]
        return self.__next__()  # nothing kept: the end, or the damage


def format_capture(buf, as_json=False, checks=False, program=None):
    """Iterate ``netlab dissect`` output (bytes, whole lines) over a capture buffer.

    Packets keep their numbers in the capture, and the handshake notes see
    every packet, when ``program`` (a ``netlab.packet.pfilter`` program) keeps only
    some. A damaged record raises :class:`CaptureError` after the output of
    every good record before it.
    """
    cdef CaptureFormatter it = CaptureFormatter.__new__(CaptureFormatter)
    it._view = _capture_view(buf)
    _open_reader(&it._r, it._view, buf)
    it._checks = 1 if checks else 0
    it._json = bool(as_json)
    it._prog = _program(program)
    return it


cdef class BatchIterator:
    """Lists of record tuples over a capture buffer (see ``iter_batches``)."""

    cdef const uint8_t[::1] _view
    cdef nl_reader _r
    cdef int _checks
    cdef Py_ssize_t _size
    cdef _Program _prog
    cdef bint _done
    cdef int _rc

    def __dealloc__(self):
        nl_reader_free(&self._r)

    def __iter__(self):
        return self

    def __next__(self):
        cdef nl_frame f
        cdef nl_pkt k
        cdef int rc = 1
        cdef list batch = []
        if self._done:
            if self._rc < 0:
                self._rc = 0
                self._view = None
                raise CaptureError(self._r.err.decode("ascii"), self._r.err_off)
            raise StopIteration
        cdef Py_ssize_t n = 0
        # The batch's tuples live on together: a collector pass over them (they
        # are all new) would cost more than making them, so none runs meanwhile.
        gc_was_on = PyGC_Disable()
        try:
            while n < self._size:
                rc = nl_reader_next(&self._r, &f)
                if rc != 1:
                    self._done = True
                    self._rc = rc
                    break
                nl_decode(self._r.buf + f.offset, f.caplen, f.linktype, self._checks, &k)
                if self._prog is None or self._prog.match(&k):
                    batch.append(_record(&f, &k))
                    n += 1
        finally:
            if gc_was_on:
                PyGC_Enable()
        if batch:
            return batch
        return self.__next__()


def iter_batches(buf, checks=False, size=64, program=None):
    """Iterate lists of up to ``size`` record tuples; ``program`` keeps matching ones only.

    The records of :func:`iter_records`, a list at a time (one Python call per
    batch, not per packet), filtered in C by a ``netlab.packet.pfilter`` program. A
    damaged record raises :class:`CaptureError` after every good batch. Small
    batches (the default 64) stay in the CPU cache while Python reads them.
    """
    if size < 1:
        raise ValueError(f"batch size {size}: give 1 or more")
    cdef BatchIterator it = BatchIterator.__new__(BatchIterator)
    it._view = _capture_view(buf)
    _open_reader(&it._r, it._view, buf)
    it._checks = 1 if checks else 0
    it._size = size
    it._prog = _program(program)
    return it
