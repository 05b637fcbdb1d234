# The stats path in the compiled core: the walk (walk.h, in C without the
# GIL) and its tail, the compiled twin of netlab/packet/pure/aggregate.py's
# finish_stats: the protocol, port and flow tables are sorted and shaped in C
# here, and the port and flow rows stay C structs until they are read, so that
# a capture with thousands of flows does not spend its time after the walk in
# a per-flow loop making dicts.

from collections.abc import Sequence as _Sequence

from netlab.packet.stats import Rows as _PyRows, rows_equal as _rows_equal


cdef extern from "walk.h":
    enum:
        NL_T_SYN, NL_T_SYNACK, NL_T_ACK, NL_T_FIN_A, NL_T_FIN_B, NL_T_RST


cdef str _state_word(uint32_t st):
    # tcp_state_name of netlab/packet/pure/aggregate.py, without a Python call per flow
    if st & NL_T_RST:
        return "reset"
    if st & NL_T_FIN_A and st & NL_T_FIN_B:
        return "closed"
    if st & (NL_T_FIN_A | NL_T_FIN_B):
        return "closing"
    if st & NL_T_ACK:
        return "established"
    if st & NL_T_SYNACK:
        return "syn-ack"
    if st & NL_T_SYN:
        return "syn-sent"
    return "mid-stream"


cdef struct _port_row:
    uint64_t packets
    uint64_t bytes
    int proto
    int port


cdef inline bint _port_before(const _port_row *a, const _port_row *b) noexcept nogil:
    # (-packets, -bytes, proto name, port): "tcp" sorts before "udp", as 6 before 17
    if a.packets != b.packets:
        return a.packets > b.packets
    if a.bytes != b.bytes:
        return a.bytes > b.bytes
    if a.proto != b.proto:
        return a.proto < b.proto
    return a.port < b.port


cdef int _sort_ports(_port_row *rows, size_t n) noexcept nogil:
    # A bottom-up merge sort with the comparison inlined: qsort's call per
    # comparison was half the time left after the walk. -1 without memory.
    cdef _port_row *tmp
    cdef _port_row *src = rows
    cdef _port_row *dst
    cdef _port_row *swap
    cdef size_t width = 1, lo, mid, hi, i, j, k
    if n < 2:
        return 0
    tmp = <_port_row *>malloc(n * sizeof(_port_row))
    if not tmp:
        return -1
    dst = tmp
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if _port_before(&src[j], &src[i]):
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
            lo = hi
        swap = src
        src = dst
        dst = swap
        width *= 2
    if src != rows:
        memcpy(rows, src, n * sizeof(_port_row))
    free(tmp)
    return 0


# --- the ports and flows tables: rows kept in C, each dict made when read ----
#
# A capture with thousands of flows would otherwise spend most of the time
# after its walk making thousands of dicts nobody may read (``dissect --stats``
# shows 20 of each). They behave as netlab.packet.stats.Rows, the pure twin's
# tables, and compare equal to them.

cdef class _Rows:
    """A read-only table of the stats dict whose row dicts are made when read."""
    cdef Py_ssize_t n

    cdef dict _row(self, Py_ssize_t i):
        raise NotImplementedError

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        cdef Py_ssize_t i
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(self.n))]
        try:
            i = index
        except OverflowError:
            i = -1 - self.n  # past either end, as a list says for a huge index
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError("table row index out of range")
        return self._row(i)

    def __iter__(self):
        cdef Py_ssize_t i
        for i in range(self.n):
            yield self._row(i)

    def __reversed__(self):
        cdef Py_ssize_t i
        for i in range(self.n - 1, -1, -1):
            yield self._row(i)

    # a registered ABC lends no methods: these are Sequence's own, over __getitem__
    __contains__ = _Sequence.__contains__
    index = _Sequence.index
    count = _Sequence.count

    def __eq__(self, other):  # != is its inverse, as for a Python class
        return _rows_equal(self, other)

    __hash__ = None

    def __repr__(self):
        return repr(list(self))

    def __reduce__(self):
        return _PyRows, (list(self),)


cdef class PortRows(_Rows):
    """The ``ports`` table of the compiled stats path (see ``netlab.packet.stats.Rows``)."""
    cdef _port_row *rows

    def __dealloc__(self):
        free(self.rows)

    cdef dict _row(self, Py_ssize_t i):
        cdef _port_row *r = &self.rows[i]
        return {"proto": "tcp" if r.proto == 6 else "udp", "port": r.port,
                "packets": r.packets, "bytes": r.bytes}


cdef class FlowRows(_Rows):
    """The ``flows`` table of the compiled stats path (see ``netlab.packet.stats.Rows``)."""
    cdef nl_flow *flows  # in first-seen order

    def __dealloc__(self):
        free(self.flows)

    cdef dict _row(self, Py_ssize_t i):
        cdef nl_flow *fl = &self.flows[i]
        cdef object a, b
        if fl.key.family == 4:
            a, b = _name4(fl.key.a), _name4(fl.key.b)
        else:
            a, b = _name6(fl.key.a), _name6(fl.key.b)
        cdef int ka = fl.key.first_is_a
        return {"proto": "tcp" if fl.key.proto == 6 else "udp",
                "src": a if ka else b, "sport": fl.key.pa if ka else fl.key.pb,
                "dst": b if ka else a, "dport": fl.key.pb if ka else fl.key.pa,
                "packets": fl.packets, "bytes": fl.bytes,
                "state": _state_word(fl.state) if fl.key.proto == 6 else None}


# isinstance(table, netlab.packet.stats.Rows) holds for both cores' tables
# (Rows is a collections.abc.Sequence, so that holds too).
_PyRows.register(_Rows)


cdef PortRows _port_rows(nl_agg *g, FlowRows flows):
    # Every TCP/UDP packet counted at its ports also joined a flow (walk.h's
    # nl_agg_add), so the flows name every port there is: look those up
    # rather than scan both 65,536-port tables, and clear each counter read
    # so that a port shared by many flows makes one row.
    cdef size_t count = 0, i
    cdef int side, port
    cdef uint64_t *t
    cdef nl_flow *fl
    cdef PortRows out = PortRows.__new__(PortRows)
    out.rows = <_port_row *>malloc((2 * flows.n or 1) * sizeof(_port_row))
    if not out.rows:
        raise MemoryError("no memory for the port table")
    for i in range(<size_t>flows.n):
        fl = &flows.flows[i]
        t = g.ports + (0 if fl.key.proto == 6 else 65536 * 2)
        for side in range(2):
            port = fl.key.pa if side == 0 else fl.key.pb
            if not t[port * 2]:
                continue
            out.rows[count].packets = t[port * 2]
            out.rows[count].bytes = t[port * 2 + 1]
            out.rows[count].proto = fl.key.proto
            out.rows[count].port = port
            t[port * 2] = 0
            count += 1
    if _sort_ports(out.rows, count) < 0:
        raise MemoryError("no memory for the port table")
    out.n = count
    return out


cdef list _protocol_rows(nl_agg *g):
    cdef int p
    rows = [{"proto": proto_name(p), "number": p, "packets": g.proto_pk[p],
             "bytes": g.proto_by[p]} for p in range(256) if g.proto_pk[p]]
    if g.arp_pk:
        rows.append({"proto": "arp", "number": None, "packets": g.arp_pk, "bytes": g.arp_by})
    if g.other_pk:
        rows.append({"proto": "other", "number": None, "packets": g.other_pk, "bytes": g.other_by})
    rows.sort(key=lambda r: (-r["packets"], -r["bytes"], r["proto"]))
    return rows


cdef tuple _flow_rows(nl_agg *g):
    """The flows in first-seen order, and the TCP summary counters."""
    cdef size_t i
    cdef nl_flow *fl
    cdef uint32_t st
    cdef uint64_t handshakes = 0, syn_only = 0, fin = 0, closed = 0, rst = 0, tcp_flows = 0
    cdef FlowRows rows = FlowRows.__new__(FlowRows)
    rows.flows = <nl_flow *>malloc((g.n or 1) * sizeof(nl_flow))
    if not rows.flows:
        raise MemoryError("no memory for the flow table")
    for i in range(g.cap):
        fl = &g.flows[i]
        if not fl.key.used:
            continue
        rows.flows[fl.order] = fl[0]
        if fl.key.proto == 6:
            st = fl.state
            tcp_flows += 1
            handshakes += (st & NL_T_ACK) != 0
            syn_only += (st & NL_T_SYN) != 0 and (st & NL_T_SYNACK) == 0
            fin += (st & (NL_T_FIN_A | NL_T_FIN_B)) != 0
            closed += (st & NL_T_FIN_A) != 0 and (st & NL_T_FIN_B) != 0
            rst += (st & NL_T_RST) != 0
    rows.n = g.n
    tcp = {"flows": tcp_flows, "handshakes": handshakes, "syn_without_synack": syn_only,
           "fin": fin, "closed": closed, "rst": rst}
    return rows, tcp


def aggregate(buf, checks=False, program=None):
    """Stats over a whole pcap/pcapng buffer; a damaged record ends the walk.

    The loop runs in C without the GIL and makes no Python object per packet;
    ``program`` (a ``netlab.packet.pfilter`` program) keeps only the matching packets,
    evaluated in the same C loop.
    """
    cdef const uint8_t[::1] view = _capture_view(buf)
    cdef nl_reader r
    cdef nl_agg g
    cdef int rc
    cdef int c = 1 if checks else 0
    cdef _Program prog = _program(program)
    _open_reader(&r, view, buf)
    if nl_agg_init(&g) < 0:
        raise MemoryError("no memory for the stats tables")
    try:
        if prog is None:
            with nogil:
                rc = nl_agg_run(&g, &r, c)
        else:
            with nogil:
                rc = nl_agg_run_filtered(&g, &r, c, prog.ops, prog.n, prog.stack)
        if g.oom:
            raise MemoryError("no memory for the flow table")
        error = None
        if rc < 0:
            exc = CaptureError(r.err.decode("ascii"), r.err_off)
            error = {"offset": exc.offset, "message": str(exc)}
        return _stats_dict(&g, error)
    finally:
        nl_agg_free(&g)
        nl_reader_free(&r)


cdef dict _stats_dict(nl_agg *g, error):
    flows, tcp = _flow_rows(g)
    ports = _port_rows(g, flows)  # after the flows: it clears the port counters
    return {
        "packets": g.packets, "bytes": g.bytes, "captured_bytes": g.captured,
        "ipv4": g.ip4, "ipv6": g.ip6, "non_ip": g.non_ip, "vlan": g.vlan,
        "fragments": g.fragments, "truncated": g.truncated, "malformed": g.malformed,
        "checksums": {"checked": g.checked, "ip_bad": g.ipcsum_bad, "l4_bad": g.l4csum_bad},
        "protocols": _protocol_rows(g), "ports": ports, "flows": flows,
        "tcp": tcp, "error": error,
    }


def walk_baseline(buf, checks=False):
    """The stats walk alone, plain C from start to end: the baseline of ``netlab bench parse``.

    The very loop of :func:`aggregate` (walk.h's ``nl_agg_run``: framing,
    decoding, the counters and the flow table), with no Python object made
    and no tables shaped afterwards. Returns ``{"packets", "flows", "error"}``.
    Compiled core only: the pure twin has no C to compare with.
    """
    cdef const uint8_t[::1] view = _capture_view(buf)
    cdef nl_reader r
    cdef nl_agg g
    cdef int rc
    cdef int c = 1 if checks else 0
    _open_reader(&r, view, buf)
    if nl_agg_init(&g) < 0:
        raise MemoryError("no memory for the stats tables")
    with nogil:
        rc = nl_agg_run(&g, &r, c)
    packets, flows, oom = g.packets, g.n, g.oom
    nl_agg_free(&g)
    nl_reader_free(&r)
    if oom:
        raise MemoryError("no memory for the flow table")
    return {"packets": packets, "flows": flows,
            "error": r.err.decode("ascii") if rc < 0 else None}
