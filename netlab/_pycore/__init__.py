"""The pure-Python packet core: the readable reference a learner studies.

Every name here has a twin of the same name in the compiled core
``netlab._core`` (built from ``src_c/``), giving the same results and raising
the same errors. Read these modules to learn how the bytes are laid out; run
the compiled twin when you need speed. ``netlab.packet`` picks one at import.
"""
from netlab._pycore.aggregate import (
    aggregate,
    aggregate_records,
    finish_stats,
    iter_batches,
    iter_records,
    proto_name,
    tcp_state_name,
)
from netlab._pycore.capture import CaptureError, capture_info
from netlab._pycore.checksum import internet_checksum, pseudo_header_sum
from netlab._pycore.decode import RECORD_FIELDS, decode_frame, tcp_options
from netlab._pycore.format import format_capture
from netlab._pycore.headers import (
    TCP_FLAG_NAMES,
    decode_ipv4,
    decode_packet,
    decode_tcp,
    decode_udp,
    tcp_flag_names,
)

BACKEND = "python"

__all__ = [
    "BACKEND",
    "CaptureError",
    "RECORD_FIELDS",
    "TCP_FLAG_NAMES",
    "aggregate",
    "aggregate_records",
    "capture_info",
    "decode_frame",
    "decode_ipv4",
    "decode_packet",
    "decode_tcp",
    "decode_udp",
    "finish_stats",
    "format_capture",
    "internet_checksum",
    "iter_batches",
    "iter_records",
    "proto_name",
    "pseudo_header_sum",
    "tcp_flag_names",
    "tcp_options",
    "tcp_state_name",
]
