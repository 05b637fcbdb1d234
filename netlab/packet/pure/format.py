"""``netlab dissect`` over a whole capture: the readable twin of ``src_c/format.pxi``.

:func:`format_capture` runs the ``dissect`` loop and gives its output as
bytes, a chunk of whole lines at a time; each packet is shaped by
:mod:`netlab.packet.lines` (its line or JSON object, the handshake notes).
The compiled core's ``format_capture`` builds the very same bytes in C.

Packets keep their numbers in the capture and the notes see every packet,
also when a ``--filter`` program keeps only some of them.
"""
from __future__ import annotations

from typing import Iterator

from netlab.packet import fields as F
from netlab.packet.lines import Annotator, json_line, packet_line
from netlab.packet.pcap import CaptureError
from netlab.packet.pfilter import predicate
from netlab.packet.pure.capture import walk

__all__ = ["format_capture"]


def format_capture(buf, as_json: bool = False, checks: bool = False,
                   program=None) -> Iterator[bytes]:
    """Iterate ``netlab dissect`` output (bytes, whole lines) over a capture buffer.

    ``program`` is a :mod:`netlab.packet.pfilter` program: only matching packets are
    shown, with their numbers in the capture, and the handshake notes still
    follow every packet. A damaged record raises :class:`CaptureError` after
    the output of every good record before it.
    """
    records = walk(buf, bool(checks))  # not a capture: CaptureError now
    return _lines(buf, records, json_line if as_json else packet_line,
                  None if program is None else predicate(program))


def _lines(buf, records, shape, keep) -> Iterator[bytes]:
    annotator = Annotator()
    out: list = []
    n = 0
    try:
        for rec in records:
            n += 1
            note = annotator.note(rec)  # every packet, kept or not
            if keep is not None and not keep(rec):
                continue
            start = rec[F.OFFSET]
            out.append(shape(n, rec, bytes(buf[start:start + rec[F.CAPLEN]]), note))
            if len(out) == 1000:
                yield ("\n".join(out) + "\n").encode("ascii")
                out = []
    except CaptureError:
        if out:
            yield ("\n".join(out) + "\n").encode("ascii")
        raise
    if out:
        yield ("\n".join(out) + "\n").encode("ascii")
