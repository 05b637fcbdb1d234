# The stats path in the compiled core: the walk (walk.h, in C without the
# GIL) and its tail, the compiled twin of netlab/packet/pure/aggregate.py's
# finish_stats: the protocol, port and flow tables are sorted and shaped in C
# here, so that a capture with thousands of flows does not spend a third of
# its time in a per-flow Python loop.

from libc.stdlib cimport qsort, realloc


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


cdef int _port_order(const void *x, const void *y) noexcept nogil:
    # (-packets, -bytes, proto name, port): "tcp" sorts before "udp", as 6 before 17
    cdef const _port_row *a = <const _port_row *>x
    cdef const _port_row *b = <const _port_row *>y
    if a.packets != b.packets:
        return -1 if a.packets > b.packets else 1
    if a.bytes != b.bytes:
        return -1 if a.bytes > b.bytes else 1
    if a.proto != b.proto:
        return -1 if a.proto < b.proto else 1
    return -1 if a.port < b.port else (1 if a.port > b.port else 0)


cdef list _port_rows(nl_agg *g):
    cdef size_t count = 0, cap = 4096, i
    cdef int p, port
    cdef uint64_t *t
    cdef _port_row *rows = <_port_row *>malloc(cap * sizeof(_port_row))
    cdef _port_row *more
    if not rows:
        raise MemoryError("no memory for the port table")
    try:
        for p in range(2):
            t = g.ports + p * 65536 * 2
            for port in range(65536):
                if not t[port * 2]:
                    continue
                if count == cap:
                    cap *= 2
                    more = <_port_row *>realloc(rows, cap * sizeof(_port_row))
                    if not more:
                        raise MemoryError("no memory for the port table")
                    rows = more
                rows[count].packets = t[port * 2]
                rows[count].bytes = t[port * 2 + 1]
                rows[count].proto = 6 if p == 0 else 17
                rows[count].port = port
                count += 1
        qsort(rows, count, sizeof(_port_row), _port_order)
        out = [None] * count
        tcp, udp = "tcp", "udp"
        for i in range(count):
            out[i] = {"proto": tcp if rows[i].proto == 6 else udp, "port": rows[i].port,
                      "packets": rows[i].packets, "bytes": rows[i].bytes}
        return out
    finally:
        free(rows)


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
    cdef list rows = [None] * g.n
    cdef size_t i
    cdef nl_flow *fl
    cdef uint32_t st
    cdef uint64_t handshakes = 0, syn_only = 0, fin = 0, closed = 0, rst = 0, tcp_flows = 0
    cdef object a, b, state
    cdef int ka
    for i in range(g.cap):
        fl = &g.flows[i]
        if not fl.key.used:
            continue
        if fl.key.family == 4:
            a, b = _name4(fl.key.a), _name4(fl.key.b)
        else:
            a, b = _name6(fl.key.a), _name6(fl.key.b)
        state = None
        if fl.key.proto == 6:
            st = fl.state
            state = _state_word(st)
            tcp_flows += 1
            handshakes += (st & NL_T_ACK) != 0
            syn_only += (st & NL_T_SYN) != 0 and (st & NL_T_SYNACK) == 0
            fin += (st & (NL_T_FIN_A | NL_T_FIN_B)) != 0
            closed += (st & NL_T_FIN_A) != 0 and (st & NL_T_FIN_B) != 0
            rst += (st & NL_T_RST) != 0
        ka = fl.key.first_is_a
        rows[fl.order] = {"proto": "tcp" if fl.key.proto == 6 else "udp",
                          "src": a if ka else b, "sport": fl.key.pa if ka else fl.key.pb,
                          "dst": b if ka else a, "dport": fl.key.pb if ka else fl.key.pa,
                          "packets": fl.packets, "bytes": fl.bytes, "state": state}
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
        # Thousands of row dicts, none of them garbage: no collector passes
        # over them while they are made (it runs again right after).
        gc_was_on = PyGC_Disable()
        try:
            return _stats_dict(&g, error)
        finally:
            if gc_was_on:
                PyGC_Enable()
    finally:
        nl_agg_free(&g)
        nl_reader_free(&r)


cdef dict _stats_dict(nl_agg *g, error):
    flows, tcp = _flow_rows(g)
    return {
        "packets": g.packets, "bytes": g.bytes, "captured_bytes": g.captured,
        "ipv4": g.ip4, "ipv6": g.ip6, "non_ip": g.non_ip, "vlan": g.vlan,
        "fragments": g.fragments, "truncated": g.truncated, "malformed": g.malformed,
        "checksums": {"checked": g.checked, "ip_bad": g.ipcsum_bad, "l4_bad": g.l4csum_bad},
        "protocols": _protocol_rows(g), "ports": _port_rows(g), "flows": flows,
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
