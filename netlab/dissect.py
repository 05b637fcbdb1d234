"""Decode a capture file packet by packet, or as statistics: the ``dissect`` library.

:func:`dissect` yields one :class:`Record` per packet (the packet core's
record tuple with names), :func:`format_capture` the output of ``netlab
dissect`` over a whole capture (built in C on the compiled core), and
:func:`capture_stats` runs the stats path (C speed on the compiled core).
For one record at a time (``sniff``), :func:`packet_json` gives the JSON
object ``netlab dissect --json`` prints, :func:`packet_line` the one-line
text form, and :class:`Annotator` names the steps of TCP handshakes and
teardowns (all from :mod:`netlab.packet.lines`, shared by both cores).

JSON payload encoding: ``payload`` is the transport payload as a **hex
string** (exact, byte for byte: ``bytes.fromhex(obj["payload"])`` gives the
bytes back); ``payload_text`` is the same bytes decoded as UTF-8 with
undecodable bytes written as ``\\xNN``, for reading.
"""
from __future__ import annotations

import collections
from typing import Callable, Iterator, Optional

from netlab import packet
from netlab.packet.lines import (Annotator, flag_names, json_line, packet_json, packet_line,
                                 proto_label)
from netlab.packet.pcap import open_capture
from netlab.packet.pfilter import Filter

__all__ = ["Annotator", "Record", "capture_stats", "dissect", "flag_names", "format_capture",
           "json_line", "open_and_stats", "packet_json", "packet_line", "proto_label"]

Record = collections.namedtuple("Record", packet.RECORD_FIELDS)


def dissect(buf, predicate: Optional[Callable[[tuple], bool]] = None,
            checks: bool = False) -> Iterator[Record]:
    """Records of a capture buffer (see :func:`netlab.packet.pcap.open_capture`), filtered.

    A :class:`netlab.packet.pfilter.Filter` is evaluated inside the packet core (in
    C on the compiled core), any other predicate in Python. A damaged record
    raises :class:`netlab.packet.CaptureError` after every good record before
    it was yielded.
    """
    if predicate is None or isinstance(predicate, Filter):
        program = None if predicate is None else predicate.program
        for batch in packet.iter_batches(buf, checks, program=program):
            yield from map(Record._make, batch)
        return
    for rec in packet.iter_records(buf, checks):
        if predicate(rec):
            yield Record._make(rec)


def format_capture(buf, as_json: bool = False, checks: bool = False,
                   predicate: Optional[Filter] = None) -> Iterator[bytes]:
    """``netlab dissect`` output of a capture buffer: bytes, whole lines, a chunk at a time.

    Built by the live packet core (in C on the compiled core); packets keep
    their numbers in the capture when ``predicate`` keeps only some.
    """
    program = None if predicate is None else predicate.program
    return packet.format_capture(buf, as_json, checks, program)


def capture_stats(buf, predicate: Optional[Callable[[tuple], bool]] = None,
                  checks: bool = False) -> dict:
    """The stats dict of a capture buffer; with a predicate, over the matching packets only.

    Without a predicate, or with a :class:`netlab.packet.pfilter.Filter`, this is the
    stats path of the packet core (C speed on the compiled core, the filter
    evaluated in the same loop); with any other predicate, the records path
    feeds the same counters.
    """
    if predicate is None or isinstance(predicate, Filter):
        program = None if predicate is None else predicate.program
        return packet.aggregate(buf, checks, program)
    return packet.aggregate_records(
        rec for rec in packet.iter_records(buf, checks) if predicate(rec))


def open_and_stats(path, predicate=None, checks: bool = False) -> dict:
    """:func:`capture_stats` of a file by name."""
    with open_capture(path) as buf:
        return capture_stats(buf, predicate, checks)
