"""Capture files as a stream of frames: pcap and pcapng, the readable twin.

Two file formats carry almost every packet capture:

* **pcap** (tcpdump's savefile): a 24-byte file header (magic, version,
  snaplen, link type), then records of a 16-byte header (seconds, micro- or
  nanoseconds, captured length, original length) and the frame. The magic
  ``a1b2c3d4`` (microseconds) or ``a1b23c4d`` (nanoseconds) is written in the
  writer's byte order, so reading it tells the byte order too.
* **pcapng** (draft-ietf-opsawg-pcapng, Wireshark's default): a sequence of
  blocks ``type, total length, body, total length``. A section header block
  (SHB) sets the byte order, interface description blocks (IDB) give each
  interface its link type, snaplen, timestamp resolution (``if_tsresol``) and
  offset (``if_tsoffset``), enhanced packet blocks (EPB) carry the frames,
  naming their interface; a section may describe any number of interfaces.

A pcapng timestamp is a 64-bit count of units: 2**64 microseconds are more
nanoseconds than 64 bits hold, so times are exact Python integers here (the
compiled twin computes them in 128 bits) and never wrap into a wrong date.

The walk never reads past the end of the buffer: every length is checked
first. A damaged record raises :class:`CaptureError` naming its byte offset,
after every good frame before it was delivered. The compiled twin
(``src_c/walk.h``) follows these rules line by line, with the same messages.
"""
from __future__ import annotations

import mmap
import struct
from typing import Iterator, Tuple

from netlab.packet import fields as F
from netlab.packet.fields import MAX_CAPLEN, RELEASE_STEP
from netlab.packet.pcap import CaptureError, CaptureMap
from netlab.packet.pure.decode import decode_at

__all__ = ["CaptureError", "CaptureMap", "capture_info", "iter_frames"]


_BE32 = struct.Struct(">I")
_PCAP_HDR = {"<": struct.Struct("<HHiIII"), ">": struct.Struct(">HHiIII")}
_PCAP_REC = {"<": struct.Struct("<IIII"), ">": struct.Struct(">IIII")}
_U32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_U16 = {"<": struct.Struct("<H"), ">": struct.Struct(">H")}
_BLOCK = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}
_EPB = {"<": struct.Struct("<IIIII"), ">": struct.Struct(">IIIII")}
_OPB = {"<": struct.Struct("<HHIIII"), ">": struct.Struct(">HHIIII")}
_OPT = {"<": struct.Struct("<HH"), ">": struct.Struct(">HH")}

_MAGIC = {  # first four bytes read big-endian -> (byte order, fraction multiplier)
    0xD4C3B2A1: ("<", 1000), 0x4D3CB2A1: ("<", 1),
    0xA1B2C3D4: (">", 1000), 0xA1B23C4D: (">", 1),
}
_SHB = 0x0A0D0D0A
_I64 = {"<": struct.Struct("<q"), ">": struct.Struct(">q")}


def _release(buf, done: int, upto: int) -> int:
    """Give back the pages of ``buf[done:upto]`` (page-aligned); returns the new mark."""
    upto -= upto % mmap.PAGESIZE
    if upto > done and hasattr(mmap, "MADV_DONTNEED"):
        buf.madvise(mmap.MADV_DONTNEED, done, upto - done)
    return upto


def _open(buf) -> Tuple[str, str, int, int, int]:
    """Recognise the file: (format, byte order, fraction multiplier, snaplen, linktype)."""
    n = len(buf)
    if n < 4:
        raise CaptureError(f"file too short to be a capture: {n} bytes", 0)
    (magic,) = _BE32.unpack_from(buf, 0)
    if magic == _SHB:
        return "pcapng", ">", 0, 0, -1
    if magic not in _MAGIC:
        raise CaptureError(f"not a pcap or pcapng file: magic 0x{magic:08x}", 0)
    order, mult = _MAGIC[magic]
    if n < 24:
        raise CaptureError(f"truncated pcap file header: got {n} bytes, need 24", 0)
    _major, _minor, _zone, _sig, snaplen, network = _PCAP_HDR[order].unpack_from(buf, 4)
    return "pcap", order, mult, snaplen, network & 0xFFFF


def capture_info(buf) -> dict:
    """What the file says about itself: format, byte order, timestamp unit, link type."""
    fmt, order, mult, snaplen, linktype = _open(buf)
    if fmt == "pcapng":
        return {"format": "pcapng", "byte_order": None, "ts_unit": None,
                "snaplen": None, "linktype": None}
    return {"format": "pcap", "byte_order": "little" if order == "<" else "big",
            "ts_unit": "us" if mult == 1000 else "ns", "snaplen": snaplen, "linktype": linktype}


def _ts_to_ns(t: int, res: int, offset: int) -> int:
    # if_tsresol: top bit clear = units of 10**-x s, set = units of 2**-x s;
    # if_tsoffset: seconds to add. Python integers never overflow.
    if res & 0x80:
        ns = (t * 1_000_000_000) >> (res & 0x7F)
    elif res <= 9:
        ns = t * 10 ** (9 - res)
    else:
        ns = t // 10 ** (res - 9)
    return ns + offset * 1_000_000_000


def _tsres_ok(res: int) -> bool:
    return (res & 0x7F) <= 63 if res & 0x80 else res <= 18


def iter_frames(buf) -> Iterator[tuple]:
    """Iterate ``(offset, ts_ns, caplen, wirelen, ifid, linktype)``, one per frame.

    A file that is not a capture raises :class:`CaptureError` at once; a
    damaged record raises it when the walk reaches it.

    ``offset`` is where the frame's bytes start in ``buf``; slice it yourself
    (``buf[offset:offset + caplen]``) only when you need the bytes.
    """
    return walk(buf, None)


def walk(buf, checks):
    """Frames (``checks=None``) or whole records (``checks`` True/False) of ``buf``.

    Decoding inside the framing loop saves the records path one generator
    level per packet; :func:`netlab.packet.pure.aggregate.iter_records` uses it.
    """
    fmt, order, mult, _snaplen, linktype = _open(buf)  # a bad file header raises now
    release = isinstance(buf, CaptureMap)
    if fmt == "pcap":
        return _pcap_frames(buf, order, mult, linktype, checks, release)
    return _pcapng_frames(buf, checks, release)


def _pcap_frames(buf, order, mult, linktype, checks, release):
    decode = decode_at
    rec = _PCAP_REC[order].unpack_from
    n = len(buf)
    pos = 24
    done = 0  # pages before this offset were given back (CaptureMap only)
    while pos < n:
        left = n - pos
        if left < 16:
            raise CaptureError(f"truncated record header: got {left} bytes, need 16", pos)
        sec, frac, caplen, wirelen = rec(buf, pos)
        if caplen > MAX_CAPLEN:
            raise CaptureError(f"bad record length {caplen} (more than {MAX_CAPLEN})", pos)
        if caplen > left - 16:
            raise CaptureError(
                f"truncated record: header says {caplen} bytes, only {left - 16} left", pos)
        off = pos + 16
        pos = off + caplen
        if release and off - done >= RELEASE_STEP:
            done = _release(buf, done, off)
        if checks is None:
            yield off, sec * 1_000_000_000 + frac * mult, caplen, wirelen, 0, linktype
        else:
            yield (off, sec * 1_000_000_000 + frac * mult, caplen, wirelen, 0, linktype) + \
                decode(buf, off, caplen, linktype, checks)


def _pcapng_frames(buf, checks, release):
    n = len(buf)
    pos = 0
    done = 0  # pages before this offset were given back (CaptureMap only)
    order = ">"
    links: list = []  # per interface of the current section: (linktype, tsresol, snaplen, tsoffset)
    while pos < n:
        left = n - pos
        if left < 12:
            raise CaptureError(f"truncated block header: got {left} bytes, need 12", pos)
        (btype,) = _BE32.unpack_from(buf, pos)
        if btype == _SHB:
            # The section header's type reads the same both ways; its
            # byte-order magic decides how everything after it is read.
            (bom,) = _BE32.unpack_from(buf, pos + 8)
            if bom == 0x1A2B3C4D:
                order = ">"
            elif bom == 0x4D3C2B1A:
                order = "<"
            else:
                raise CaptureError(f"bad byte-order magic 0x{bom:08x}", pos)
        btype, total = _BLOCK[order].unpack_from(buf, pos)
        if total < 12 or total & 3:
            raise CaptureError(f"bad block length {total}", pos)
        if total > left:
            raise CaptureError(f"truncated block: length {total}, only {left} left", pos)
        (trailer,) = _U32[order].unpack_from(buf, pos + total - 4)
        if trailer != total:
            raise CaptureError(f"block trailer length {trailer} does not match {total}", pos)
        if btype == _SHB:
            if total < 28:
                raise CaptureError(f"bad section header length {total}", pos)
            (major,) = _U16[order].unpack_from(buf, pos + 12)
            if major != 1:
                (minor,) = _U16[order].unpack_from(buf, pos + 14)
                raise CaptureError(f"unsupported pcapng version {major}.{minor}", pos)
            links = []  # interfaces are numbered per section
        elif btype == 1:
            links.append(_read_idb(buf, pos, total, order))
        elif btype in (6, 2):
            if total < 32:
                raise CaptureError(f"bad packet block length {total}", pos)
            if btype == 6:
                ifid, hi, lo, caplen, wirelen = _EPB[order].unpack_from(buf, pos + 8)
            else:
                ifid, _drops, hi, lo, caplen, wirelen = _OPB[order].unpack_from(buf, pos + 8)
            if ifid >= len(links):
                raise CaptureError(
                    f"packet block names interface {ifid}, only {len(links)} defined", pos)
            if caplen > total - 32 or caplen > MAX_CAPLEN:
                raise CaptureError(
                    f"packet block says {caplen} bytes, its block holds {total - 32}", pos)
            linktype, res, _snap, tsoffset = links[ifid]
            frame = (pos + 28, _ts_to_ns((hi << 32) | lo, res, tsoffset), caplen, wirelen, ifid,
                     linktype)
            pos += total
            if release and frame[F.OFFSET] - done >= RELEASE_STEP:
                done = _release(buf, done, frame[F.OFFSET])
            yield frame if checks is None else frame + decode_at(buf, frame[F.OFFSET], caplen, linktype, checks)
            continue
        elif btype == 3:
            # Simple packet block: interface 0, no timestamp, caplen implied:
            # the original length, cut to the block and the interface's snaplen.
            if total < 16:
                raise CaptureError(f"bad packet block length {total}", pos)
            if not links:
                raise CaptureError("simple packet block before any interface", pos)
            (wirelen,) = _U32[order].unpack_from(buf, pos + 8)
            caplen = min(wirelen, total - 16, MAX_CAPLEN)
            snaplen = links[0][2]
            if snaplen:
                caplen = min(caplen, snaplen)
            frame = (pos + 12, 0, caplen, wirelen, 0, links[0][0])
            pos += total
            if release and frame[F.OFFSET] - done >= RELEASE_STEP:
                done = _release(buf, done, frame[F.OFFSET])
            yield frame if checks is None else frame + decode_at(buf, frame[F.OFFSET], caplen, frame[F.LINKTYPE], checks)
            continue
        # other blocks (statistics, name resolution, custom): skipped
        pos += total


def _read_idb(buf, pos, total, order):
    """(link type, if_tsresol, snaplen, if_tsoffset) of an interface description block."""
    if total < 20:
        raise CaptureError(f"bad interface block length {total}", pos)
    res = 6  # microseconds unless if_tsresol (option 9) says otherwise
    tsoffset = 0  # seconds, if_tsoffset (option 14)
    opt = _OPT[order].unpack_from
    o, end = 16, total - 4
    while o + 4 <= end:
        code, olen = opt(buf, pos + o)
        if code == 0 or o + 4 + olen > end:
            break  # end of options, or a damaged list: keep the defaults
        if code == 9 and olen >= 1:
            res = buf[pos + o + 4]
        if code == 14 and olen == 8:
            (tsoffset,) = _I64[order].unpack_from(buf, pos + o + 4)
        o += 4 + ((olen + 3) & ~3)
    if not _tsres_ok(res):
        raise CaptureError(f"unsupported timestamp resolution 0x{res:02x}", pos)
    (linktype,) = _U16[order].unpack_from(buf, pos + 8)
    (snaplen,) = _U32[order].unpack_from(buf, pos + 12)
    return linktype, res, snaplen, tsoffset
