"""Records and statistics over a whole capture: the readable twin.

Two ways through a capture, both offered by each backend:

* :func:`iter_records` - the *records path*: one compact tuple per frame
  (fields in :mod:`netlab.packet.fields`), what ``dissect`` iterates;
* :func:`aggregate` - the *stats path*: counters only (packets and bytes per
  protocol, per port, per flow, TCP flow states). Here it is the records path
  feeding the counters of :mod:`netlab.packet.stats`; the compiled core runs
  the same loop in C with the GIL released and makes no Python object per
  packet.
"""
from __future__ import annotations

from typing import Iterator

from netlab.packet.pcap import CaptureError
from netlab.packet.pfilter import predicate
from netlab.packet.pure.capture import walk
from netlab.packet.stats import aggregate_records, finish_stats, proto_name, tcp_state_name

__all__ = ["aggregate", "aggregate_records", "finish_stats", "iter_batches", "iter_records",
           "proto_name", "tcp_state_name"]


def iter_records(buf, checks: bool = False) -> Iterator[tuple]:
    """Iterate one record tuple per frame of a pcap/pcapng buffer (e.g. an mmap).

    A file that is not a capture raises :class:`CaptureError` at once; a
    damaged record raises it (with ``.offset``) after every good record
    before it was yielded.
    """
    return walk(buf, bool(checks))


def aggregate(buf, checks: bool = False, program=None) -> dict:
    """Stats over a whole pcap/pcapng buffer; a damaged record ends the walk.

    The counts cover every frame before the damage; ``error`` is then
    ``{"offset": ..., "message": ...}`` (``None`` for a clean file). A file
    that is not a capture at all raises :class:`CaptureError` instead.
    ``program`` (a :mod:`netlab.packet.pfilter` program) counts the matching packets only.
    """
    records = iter_records(buf, checks)
    if program is not None:
        records = filter(predicate(program), records)
    return aggregate_records(records)


def iter_batches(buf, checks: bool = False, size: int = 64,
                 program=None) -> Iterator[list]:
    """Iterate lists of up to ``size`` record tuples; ``program`` keeps matching ones only.

    The records of :func:`iter_records` a list at a time: the compiled twin
    makes each list in one call (and runs the filter program in C), so a
    Python loop over a batch pays no call per packet.
    """
    if size < 1:
        raise ValueError(f"batch size {size}: give 1 or more")
    records = iter_records(buf, checks)  # not a capture: CaptureError now
    if program is not None:
        records = filter(predicate(program), records)
    return _batches(records, size)


def _batches(records, size: int) -> Iterator[list]:
    batch: list = []
    try:
        for rec in records:
            batch.append(rec)
            if len(batch) == size:
                yield batch
                batch = []
    except CaptureError:
        if batch:  # the good records before the damage come first
            yield batch
        raise
    if batch:
        yield batch
