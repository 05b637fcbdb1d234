"""The Internet checksum of RFC 1071, as IPv4, ICMP, UDP and TCP use it.

The checksum is the 16-bit one's complement of the one's complement sum of the
data taken as big-endian 16-bit words. Three properties make it cheap:

* the sum can be taken in any order and with wider words, as long as the
  carries out of bit 15 are folded back in at the end ("end-around carry");
* an odd final byte counts as if a zero byte followed it;
* a receiver that sums a header *including* its checksum field gets 0xFFFF,
  so the complement is 0 when the header is intact.
"""
from __future__ import annotations

import struct

__all__ = ["internet_checksum", "pseudo_header_sum"]


def _fold(total: int) -> int:
    # Fold every carry above bit 15 back into the low 16 bits.
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data, initial: int = 0) -> int:
    """Return the RFC 1071 checksum of ``data`` (any bytes-like object).

    ``initial`` is a partial sum to start from, e.g. the sum of a TCP/UDP
    pseudo-header from :func:`pseudo_header_sum`. Computing the checksum of a
    header whose checksum field is already filled in returns 0 when it is right.
    """
    view = memoryview(data).cast("B")
    n = len(view)
    # Unpack every whole big-endian 16-bit word at once and add them up; the
    # Python integer never overflows, so folding once at the end is enough.
    total = initial + sum(struct.unpack_from(">%dH" % (n // 2), view))
    if n & 1:
        total += view[n - 1] << 8  # the odd byte, padded with a zero byte
    return (~_fold(total)) & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, protocol: int, length: int) -> int:
    """Sum of the IPv4 (4-byte addresses) or IPv6 (16-byte) pseudo-header.

    Pass the result as ``initial`` to :func:`internet_checksum` together with
    the TCP or UDP segment to compute or verify its checksum.
    """
    if len(src) != len(dst) or len(src) not in (4, 16):
        raise ValueError("addresses must both be 4 (IPv4) or 16 (IPv6) bytes")
    total = 0
    for addr in (src, dst):
        for i in range(0, len(addr), 2):
            total += (addr[i] << 8) | addr[i + 1]
    total += protocol + (length & 0xFFFF) + (length >> 16)
    return _fold(total)
