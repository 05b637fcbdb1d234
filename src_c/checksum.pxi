# RFC 1071 Internet checksum, compiled twin of netlab/packet/pure/checksum.py.

cdef inline uint32_t _fold32(uint64_t total) noexcept nogil:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return <uint32_t>total


cdef uint64_t _ones_sum(const uint8_t *p, Py_ssize_t n) noexcept nogil:
    # Sum big-endian 16-bit words into a 64-bit accumulator: it cannot
    # overflow before 2**48 words, far beyond any packet or file buffer.
    cdef uint64_t total = 0
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        total += ((<uint64_t>p[i] << 8) | p[i + 1]) + ((<uint64_t>p[i + 2] << 8) | p[i + 3]) \
               + ((<uint64_t>p[i + 4] << 8) | p[i + 5]) + ((<uint64_t>p[i + 6] << 8) | p[i + 7])
        i += 8
    while i + 2 <= n:
        total += (<uint64_t>p[i] << 8) | p[i + 1]
        i += 2
    if i < n:
        total += <uint64_t>p[i] << 8
    return total


def internet_checksum(data, unsigned long long initial=0):
    """Return the RFC 1071 checksum of ``data`` (any bytes-like object).

    ``initial`` is a partial sum to start from (see :func:`pseudo_header_sum`).
    """
    cdef const uint8_t[::1] view = _as_bytes_view(data)
    cdef uint64_t total = initial
    cdef Py_ssize_t n = view.shape[0]
    if n:
        with nogil:
            total += _ones_sum(&view[0], n)
    return (~_fold32(total)) & 0xFFFF


def pseudo_header_sum(src, dst, int protocol, unsigned long length):
    """Sum of the IPv4 (4-byte addresses) or IPv6 (16-byte) pseudo-header."""
    if len(src) != len(dst) or len(src) not in (4, 16):
        raise ValueError("addresses must both be 4 (IPv4) or 16 (IPv6) bytes")
    cdef const uint8_t[::1] s = _as_bytes_view(src)
    cdef const uint8_t[::1] d = _as_bytes_view(dst)
    cdef uint64_t total = _ones_sum(&s[0], s.shape[0]) + _ones_sum(&d[0], d.shape[0])
    total += <uint64_t>protocol + (length & 0xFFFF) + (length >> 16)
    return _fold32(total)


cdef const uint8_t[::1] _as_bytes_view(data) except *:
    # Accept bytes, bytearray, memoryview (any format, contiguous), mmap...
    cdef const uint8_t[::1] view
    try:
        view = data
    except (ValueError, TypeError):
        view = memoryview(data).cast("B")
    return view
