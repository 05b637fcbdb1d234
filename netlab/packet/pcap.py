"""Capture files: open one without loading it, write pcap and pcapng.

Reading maps the file into memory (``mmap``): the kernel pages bytes in as the
walk reaches them, and both packet backends read it in place, zero-copy. The
walk gives the pages it has passed back every few megabytes (see
:class:`CaptureMap`), so a multi-gigabyte capture costs
a few megabytes of memory, not its size. A gzip-compressed capture (``.gz``,
recognised by its magic bytes, as Wireshark does) is unpacked into an unnamed
temporary file first and read the same way. The walk itself (pcap and pcapng,
both byte orders, micro- and nanoseconds) lives in the packet core, see
:mod:`netlab.packet.pure.capture`
(its compiled twin: ``src_c/walk.h``). :class:`CaptureMap` and
:class:`CaptureError` are shared by both cores, so they live here.

Writing is not a hot path, so both writers are plain Python:

* :class:`PcapWriter` - tcpdump's classic format (what ``tcpdump -r`` and every
  tool reads);
* :class:`PcapngWriter` - Wireshark's default: one section, any number of
  interfaces (each with its link type and timestamp resolution), enhanced
  packet blocks (draft-ietf-opsawg-pcapng).
"""
from __future__ import annotations

import contextlib
import mmap
import os
import struct
import time
from typing import BinaryIO, Iterator, Optional, TypeVar, Union

from netlab.errors import DecodeError
from netlab.packet.fields import (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
                                  LINKTYPE_RAW)

__all__ = [
    "LINKTYPE_ETHERNET", "LINKTYPE_LINUX_SLL", "LINKTYPE_LINUX_SLL2", "LINKTYPE_RAW",
    "CaptureError", "CaptureMap", "PcapWriter", "PcapngWriter", "convert_to_pcapng",
    "open_capture",
]

PathLike = Union[str, "os.PathLike[str]"]
_W = TypeVar("_W", bound="_CaptureWriter")


_GZIP_MAGIC = b"\x1f\x8b"


class CaptureError(DecodeError):
    """A damaged capture file; ``offset`` is the byte offset of the bad record."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte offset {offset}")
        self.reason = message
        self.offset = offset

    def __reduce__(self):  # picklable (multiprocessing, pytest-xdist)
        return (type(self), (self.reason, self.offset))


class CaptureMap(mmap.mmap):
    """A capture file mapped read-only and shared (what :func:`open_capture` makes).

    A mapped file's pages stay in the process's memory (RSS) once touched, so
    a walk over a ``CaptureMap`` gives the pages it has passed back to the
    kernel every :data:`netlab.packet.fields.RELEASE_STEP` bytes
    (``madvise(MADV_DONTNEED)``); they stay readable, the kernel pages them in
    again from the file. Both cores do this only for this class: on any other
    buffer the advice could drop data that exists nowhere else.
    """


@contextlib.contextmanager
def open_capture(path: PathLike) -> Iterator[Union[mmap.mmap, bytes]]:
    """Map a capture file read-only; yields a buffer both backends walk in place.

    A gzip-compressed file is unpacked into an unnamed temporary file (removed
    on close) and mapped the same way; a damaged gzip stream raises
    :class:`netlab.packet.CaptureError`. An empty file yields ``b""`` (which
    the core then reports as too short). Drop every iterator over the buffer
    before the ``with`` block ends.
    """
    with open(path, "rb") as f:
        if f.read(2) == _GZIP_MAGIC:
            with _gunzip(f) as plain:
                with _mapped(plain) as m:
                    yield m
            return
        with _mapped(f) as m:
            yield m


@contextlib.contextmanager
def _mapped(f: BinaryIO) -> Iterator[Union[mmap.mmap, bytes]]:
    if os.fstat(f.fileno()).st_size == 0:
        yield b""
        return
    m = CaptureMap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        yield m
    finally:
        try:
            m.close()
        except BufferError:
            pass  # a live iterator still holds it; the GC closes it later


@contextlib.contextmanager
def _gunzip(f: BinaryIO) -> Iterator[BinaryIO]:
    import gzip  # only a compressed capture needs these: dissect starts faster without
    import shutil
    import tempfile
    import zlib

    f.seek(0)
    with tempfile.TemporaryFile(prefix="netlab-gunzip-") as plain:
        try:
            with gzip.GzipFile(fileobj=f) as z:
                shutil.copyfileobj(z, plain, 1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            if not isinstance(exc, (gzip.BadGzipFile, EOFError, zlib.error)):
                raise  # the disk, not the file: full, or gone
            why = str(exc).rstrip(".") or type(exc).__name__
            raise CaptureError(f"damaged gzip-compressed capture: {why[:1].lower()}{why[1:]}",
                               0) from None
        plain.flush()
        yield plain


def _now_ns() -> int:
    return time.time_ns()


class _CaptureWriter:
    """What both writers share: the output file (opened here, or the caller's),
    flushing, closing and the ``with`` protocol."""

    def __init__(self, file: Union[PathLike, BinaryIO], byteorder: str) -> None:
        if byteorder not in "<>" or len(byteorder) != 1:
            raise ValueError("byteorder must be '<' or '>'")
        # A path is ours to close; a file object the caller passed stays open
        # (we only flush it), so it can be a pipe or a BytesIO.
        self._own = not hasattr(file, "write")
        self._f: BinaryIO = open(file, "wb") if self._own else file  # type: ignore[arg-type]

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PcapWriter(_CaptureWriter):
    """Write frames to a pcap file (tcpdump.org savefile format).

    ``nanoseconds=True`` writes the nanosecond magic (``a1b23c4d``);
    ``byteorder`` is ``"<"`` (little-endian, what x86 tcpdump writes) or ``">"``.
    """

    def __init__(self, file: Union[PathLike, BinaryIO], linktype: int = LINKTYPE_ETHERNET,
                 snaplen: int = 262144, nanoseconds: bool = False, byteorder: str = "<") -> None:
        super().__init__(file, byteorder)
        self._order = byteorder
        self._ns = nanoseconds
        self.snaplen = snaplen
        self.linktype = linktype
        self.count = 0
        magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
        self._f.write(struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, frame: bytes, ts_ns: Optional[int] = None, wirelen: Optional[int] = None) -> None:
        """Append one frame (cut to the snaplen), stamped ``ts_ns`` (default: now)."""
        ts = _now_ns() if ts_ns is None else ts_ns
        data = bytes(frame[: self.snaplen])
        sec, frac = divmod(ts, 1_000_000_000)
        if not self._ns:
            frac //= 1000
        wire = len(frame) if wirelen is None else wirelen
        self._f.write(struct.pack(self._order + "IIII", sec & 0xFFFFFFFF, frac, len(data), wire))
        self._f.write(data)
        self.count += 1


class PcapngWriter(_CaptureWriter):
    """Write a pcapng file: one section, interfaces added as needed.

    ``add_interface`` returns the interface number to pass to ``write``.
    ``tsresol`` is the if_tsresol option byte: 6 = microseconds (the
    default, no option written), 9 = nanoseconds, ``0x80 | n`` = 2**-n s.
    """

    def __init__(self, file: Union[PathLike, BinaryIO], byteorder: str = "<",
                 application: str = "netlab") -> None:
        super().__init__(file, byteorder)
        self._o = byteorder
        self._res: list = []
        self._snap: list = []
        self.count = 0
        options = self._option(4, application.encode()) + self._option(0, b"")  # shb_userappl
        body = struct.pack(self._o + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options
        self._block(0x0A0D0D0A, body)

    def _option(self, code: int, value: bytes) -> bytes:
        pad = (-len(value)) % 4
        return struct.pack(self._o + "HH", code, len(value)) + value + b"\0" * pad

    def _block(self, btype: int, body: bytes) -> None:
        total = 12 + len(body)
        self._f.write(struct.pack(self._o + "II", btype, total) + body + struct.pack(self._o + "I", total))

    def add_interface(self, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144,
                      tsresol: int = 6, name: Optional[str] = None) -> int:
        options = b""
        if name:
            options += self._option(2, name.encode())  # if_name
        if tsresol != 6:
            options += self._option(9, bytes([tsresol]))  # if_tsresol
        if options:
            options += self._option(0, b"")
        self._block(1, struct.pack(self._o + "HHI", linktype, 0, snaplen) + options)
        self._res.append(tsresol)
        self._snap.append(snaplen)
        return len(self._res) - 1

    def write(self, frame: bytes, ifid: int = 0, ts_ns: Optional[int] = None,
              wirelen: Optional[int] = None) -> None:
        """Append one enhanced packet block for interface ``ifid``."""
        if not 0 <= ifid < len(self._res):
            raise ValueError(f"interface {ifid} was not added (call add_interface first)")
        ts = _now_ns() if ts_ns is None else ts_ns
        res = self._res[ifid]
        if res & 0x80:
            units = (ts << (res & 0x7F)) // 1_000_000_000
        elif res <= 9:
            units = ts // 10 ** (9 - res)
        else:
            units = ts * 10 ** (res - 9)
        data = bytes(frame[: self._snap[ifid]])
        wire = len(frame) if wirelen is None else wirelen
        pad = b"\0" * ((-len(data)) % 4)
        head = struct.pack(self._o + "IIIII", ifid, (units >> 32) & 0xFFFFFFFF, units & 0xFFFFFFFF,
                           len(data), wire)
        self._block(6, head + data + pad)
        self.count += 1


def convert_to_pcapng(src: PathLike, dst: PathLike, tsresol: int = 9) -> int:
    """Rewrite a pcap (or pcapng) file as pcapng, one interface per link type; returns frames."""
    from netlab.packet import iter_records

    with open_capture(src) as buf, PcapngWriter(dst) as out:
        interfaces: dict = {}
        for rec in iter_records(buf):
            offset, ts_ns, caplen, wirelen, _ifid, linktype = rec[:6]
            if linktype not in interfaces:
                interfaces[linktype] = out.add_interface(linktype, tsresol=tsresol)
            out.write(buf[offset:offset + caplen], interfaces[linktype], ts_ns, wirelen)
        return out.count
