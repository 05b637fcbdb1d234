"""The pure-Python packet core: the readable reference a learner studies.

Every name here has a twin of the same name in the compiled core
``netlab.packet._core`` (built from ``src_c/``), giving the same results and
raising the same errors. Read these modules to learn how the bytes are laid
out, in the order a frame is walked: :mod:`~netlab.packet.pure.capture`
(the file), :mod:`~netlab.packet.pure.links` (the link layer),
:mod:`~netlab.packet.pure.decode` (IP and transport), then
:mod:`~netlab.packet.pure.aggregate` and :mod:`~netlab.packet.pure.format`
(what ``dissect`` shows). Run the compiled twin when you need speed;
``netlab.packet`` picks one at import. What both cores share without a twin
(the record layout, the stats tables, TCP options, the capture buffer) lives
one level up, in :mod:`netlab.packet`.
"""
from netlab.packet.fields import RECORD_FIELDS, TCP_FLAG_NAMES
from netlab.packet.options import tcp_options
from netlab.packet.pcap import CaptureError
from netlab.packet.pure.aggregate import (
    aggregate,
    aggregate_records,
    finish_stats,
    iter_batches,
    iter_records,
    proto_name,
    tcp_state_name,
)
from netlab.packet.pure.capture import capture_info
from netlab.packet.pure.checksum import internet_checksum, pseudo_header_sum
from netlab.packet.pure.decode import decode_frame
from netlab.packet.pure.format import format_capture
from netlab.packet.pure.headers import (
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
