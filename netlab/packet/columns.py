"""The column layout of a capture as Arrow-ready buffers, shared by both cores.

:func:`netlab.packet.pure.arrow.iter_columns` (and its compiled twin,
``netlab.packet._arrow``) fill one buffer per column; :mod:`netlab.arrow`
wraps them into Arrow arrays. This module names what they agree on.
"""

__all__ = ["COLUMNS", "MAX_BATCH", "TS_RANGE_MESSAGE"]

# The fixed-width columns of a batch: (record field, array typecode), in the
# order the compiled twin keeps them. Widths: Q 8 bytes, I and i 4, H and h 2, B 1.
COLUMNS = (
    ("offset", "Q"), ("ts_ns", "Q"), ("caplen", "I"), ("wirelen", "I"), ("ifid", "I"),
    ("linktype", "i"), ("ethertype", "i"), ("family", "B"), ("proto", "h"),
    ("sport", "H"), ("dport", "H"), ("flags", "H"), ("seq", "I"), ("ack", "I"),
    ("payload_len", "I"), ("status", "I"),
)

# Arrow's ts is timestamp[ns] (int64): a capture time outside 1970..2262 cannot
# be held. Rather than wrap it silently, the batch before it, then this error.
TS_RANGE_MESSAGE = ("a packet's time lies outside 1970-2262, which Arrow's nanosecond "
                    "timestamps cannot hold (netlab dissect shows it)")

# At most this many frames a batch: the address offsets are int32, and 46
# bytes of text (the widest IPv6 address) times this stays below 2**31.
MAX_BATCH = 1 << 24
