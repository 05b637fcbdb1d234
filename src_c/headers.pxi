# IPv4 / TCP / UDP header decoders, compiled twin of netlab/packet/pure/headers.py.
# Every bound is checked before a byte is read; messages match the twin's.

from netlab.packet.fields import TCP_FLAG_NAMES


cdef inline uint16_t _be16(const uint8_t *p) noexcept nogil:
    return <uint16_t>((p[0] << 8) | p[1])


cdef inline uint32_t _be32(const uint8_t *p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline _need(str what, Py_ssize_t got, Py_ssize_t need):
    if got < need:
        raise DecodeError(f"truncated {what}: got {got} bytes, need {need}")


cdef inline str _ip_str(const uint8_t *p):
    return "%d.%d.%d.%d" % (p[0], p[1], p[2], p[3])


def tcp_flag_names(unsigned int flags):
    """Names of the TCP flags set in ``flags``, e.g. ``0x12 -> ['SYN', 'ACK']``."""
    cdef int bit
    return [TCP_FLAG_NAMES[bit] for bit in range(8) if flags >> bit & 1]


cdef dict _decode_ipv4(const uint8_t[::1] v):
    cdef Py_ssize_t n = v.shape[0]
    _need("IPv4 header", n, 20)
    cdef const uint8_t *p = &v[0]
    cdef int version = p[0] >> 4
    cdef int ihl = (p[0] & 0x0F) * 4
    if version != 4:
        raise DecodeError(f"not an IPv4 header: version field is {version}")
    if ihl < 20:
        raise DecodeError(f"bad IPv4 header length: {ihl} bytes, the minimum is 20")
    _need("IPv4 header with options", n, ihl)
    cdef int total_length = _be16(p + 2)
    if total_length < ihl:
        raise DecodeError(f"bad IPv4 total length: {total_length} is less than the header's {ihl}")
    cdef uint16_t frag = _be16(p + 6)
    return {
        "version": version,
        "header_length": ihl,
        "tos": p[1],
        "total_length": total_length,
        "id": _be16(p + 4),
        "flags": frag >> 13,
        "fragment_offset": (frag & 0x1FFF) * 8,
        "ttl": p[8],
        "protocol": p[9],
        "checksum": _be16(p + 10),
        "checksum_ok": ((~_fold32(_ones_sum(p, ihl))) & 0xFFFF) == 0,
        "src": _ip_str(p + 12),
        "dst": _ip_str(p + 16),
        "options": bytes(v[20:ihl]),
    }


cdef dict _decode_tcp(const uint8_t[::1] v):
    cdef Py_ssize_t n = v.shape[0]
    _need("TCP header", n, 20)
    cdef const uint8_t *p = &v[0]
    cdef int header_length = (p[12] >> 4) * 4
    if header_length < 20:
        raise DecodeError(f"bad TCP data offset: {header_length} bytes, the minimum is 20")
    _need("TCP header with options", n, header_length)
    return {
        "sport": _be16(p),
        "dport": _be16(p + 2),
        "seq": _be32(p + 4),
        "ack": _be32(p + 8),
        "header_length": header_length,
        "flags": p[13] | ((p[12] & 0x01) << 8),
        "window": _be16(p + 14),
        "checksum": _be16(p + 16),
        "urgent": _be16(p + 18),
        "options": bytes(v[20:header_length]),
    }


cdef dict _decode_udp(const uint8_t[::1] v):
    _need("UDP header", v.shape[0], 8)
    cdef const uint8_t *p = &v[0]
    return {"sport": _be16(p), "dport": _be16(p + 2), "length": _be16(p + 4), "checksum": _be16(p + 6)}


def decode_ipv4(data):
    """Decode an IPv4 header at the start of ``data``."""
    return _decode_ipv4(_as_bytes_view(data))


def decode_tcp(data):
    """Decode a TCP header at the start of ``data``."""
    return _decode_tcp(_as_bytes_view(data))


def decode_udp(data):
    """Decode a UDP header at the start of ``data``."""
    return _decode_udp(_as_bytes_view(data))


def decode_packet(data):
    """Decode an IPv4 packet and its TCP or UDP header (see the Python twin)."""
    cdef const uint8_t[::1] v = _as_bytes_view(data)
    cdef dict ip = _decode_ipv4(v)
    cdef Py_ssize_t n = v.shape[0]
    cdef Py_ssize_t ihl = ip["header_length"]
    cdef Py_ssize_t total = ip["total_length"]
    cdef Py_ssize_t end = total if total < n else n
    cdef int fragoff = ip["fragment_offset"]
    cdef bint whole = end == total and fragoff == 0 and not (ip["flags"] & 1)
    cdef const uint8_t[::1] seg = v[ihl:end]
    cdef dict out = {"ip": ip, "proto": ip["protocol"], "payload": b"", "checksum_ok": None}
    cdef int kind
    cdef dict hdr
    if fragoff:
        out["payload"] = bytes(seg)
        return out
    kind = ip["protocol"]
    if kind == 6:
        hdr = _decode_tcp(seg)
        out["proto"] = "tcp"
        out["tcp"] = hdr
        out["payload"] = bytes(seg[hdr["header_length"]:])
    elif kind == 17:
        hdr = _decode_udp(seg)
        out["proto"] = "udp"
        out["udp"] = hdr
        out["payload"] = bytes(seg[8:])
        if hdr["checksum"] == 0:
            out["checksum_ok"] = True if whole else None
            return out
    else:
        out["payload"] = bytes(seg)
        return out
    cdef uint64_t total_sum
    cdef Py_ssize_t seglen = seg.shape[0]
    if whole:
        total_sum = _ones_sum(&v[12], 8) + <uint64_t>kind + <uint64_t>seglen
        if seglen:
            total_sum += _ones_sum(&seg[0], seglen)
        out["checksum_ok"] = ((~_fold32(total_sum)) & 0xFFFF) == 0
    return out
