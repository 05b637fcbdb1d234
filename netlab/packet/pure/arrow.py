"""A capture as columns: the readable twin of ``src_c/_arrow.pyx``.

Arrow keeps a table column by column: a column of numbers is one flat
buffer of fixed-width values, a column of text is two buffers, the bytes of
every value one after the other and the ``n + 1`` offsets where each value
starts. :func:`iter_columns` turns the records of a capture (one tuple per
frame, :data:`netlab.packet.fields.RECORD_FIELDS`) into exactly those
buffers, a batch of frames at a time: a batch is a dict

* ``name -> array.array`` for every fixed-width column of :data:`COLUMNS`
  (the record fields of the same name, in machine byte order);
* ``"src"`` and ``"dst"`` -> ``(offsets, text)``: ``int32`` offsets and the
  ASCII address text, an empty string where the frame is not IP;
* ``"payload"`` -> ``(offsets, bytes)`` with ``int64`` offsets, when asked.

:mod:`netlab.arrow` wraps these buffers into Arrow arrays without looking at
a single packet, and shapes them into the columns ``dissect --json`` names.
The compiled twin fills the very same buffers in C, without a Python object
per packet; neither twin imports pyarrow.
"""
from __future__ import annotations

import array
import itertools
from typing import Iterator, Tuple

from netlab.packet.columns import COLUMNS, MAX_BATCH, TS_RANGE_MESSAGE
from netlab.packet import fields as F
from netlab.packet.pcap import CaptureError
from netlab.packet.pure.aggregate import iter_records

__all__ = ["BACKEND", "COLUMNS", "MAX_BATCH", "iter_columns"]

BACKEND = "python"

_TS_LIMIT = 1 << 63  # Arrow's int64 nanoseconds (see TS_RANGE_MESSAGE)



def _family(src) -> int:
    return 0 if src is None else 6 if ":" in src else 4


def _text(values) -> Tuple[array.array, bytes]:
    """Arrow's layout of a text column: (int32 start offsets, one run of ASCII)."""
    offsets = array.array("i", [0])
    offsets.extend(itertools.accumulate(len(v) for v in values))
    return offsets, "".join(values).encode("ascii")


def _columns(batch: list, buf, payload: bool) -> dict:
    fields = list(zip(*batch))  # one tuple per record field
    src, dst = fields[F.SRC], fields[F.DST]
    out = {}
    for name, code in COLUMNS:
        if name == "family":  # the records say it in the address text
            out[name] = array.array(code, map(_family, src))
        else:
            out[name] = array.array(code, fields[getattr(F, name.upper())])
    out["src"] = _text([s or "" for s in src])
    out["dst"] = _text([d or "" for d in dst])
    if payload:
        starts = [r[F.OFFSET] + r[F.PAYLOAD_OFF] for r in batch]
        chunks = [bytes(buf[start:start + r[F.PAYLOAD_LEN]]) for start, r in zip(starts, batch)]
        offsets = array.array("q", [0])
        offsets.extend(itertools.accumulate(map(len, chunks)))
        out["payload"] = (offsets, b"".join(chunks))
    return out


def iter_columns(buf, batch_size: int = 65536, checks: bool = False,
                 payload: bool = False) -> Iterator[Tuple[int, dict]]:
    """Iterate ``(rows, columns)``: at most ``batch_size`` frames of ``buf`` a batch.

    A file that is not a capture raises :class:`CaptureError` at once; a
    damaged record raises it after the batch that holds every good frame
    before it.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be from 1 to {MAX_BATCH}, not {batch_size}")
    records = iter_records(buf, checks)  # a bad file header raises here, at once
    return _batches(records, buf, batch_size, payload)


def _batches(records, buf, batch_size, payload):
    while True:
        batch = []
        error = None
        try:
            for rec in itertools.islice(records, batch_size):
                if not 0 <= rec[F.TS_NS] < _TS_LIMIT:
                    error = CaptureError(TS_RANGE_MESSAGE, rec[F.OFFSET])
                    break
                batch.append(rec)
        except CaptureError as exc:  # the frames before the damage are in batch
            error = exc
        if batch:
            yield len(batch), _columns(batch, buf, payload)
        if error is not None:
            raise error
        if len(batch) < batch_size:
            return
