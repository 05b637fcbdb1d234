"""Lab 8: packet parsing — pcap files, IPv4/TCP/UDP headers, checksums, the handshake.

Expectations come from netlab's own packet core (:mod:`netlab.packet`), run
in the grader, on two captures: the real loopback capture shipped with the
lab (made with tcpdump) and a fresh one the grader builds for every run, with
random ports and sequence numbers, big-endian byte order, raw-IP link type and
one corrupted checksum, so no answer can be copied from the handout.
"""
from __future__ import annotations

import os
import random
import struct
import tempfile
from typing import List

from netlab import packet
from netlab.packet.pcap import LINKTYPE_RAW, PcapWriter
from netlab.labs._probes import student_value
from netlab.labs._registry import CheckFailed, course_dir
from netlab.labs.probes.lab08 import ip_of, read_pcap
from netlab.labs._runner import run_probe, value_of

__all__ = ["build_capture", "read_pcap", "read", "link", "ipv4", "transport", "checksum", "verify", "handshake"]


CAPTURE = "loopback.pcap"


# --- the grader's own reader and builder -------------------------------------

def _ip(proto: int, src: bytes, dst: bytes, payload: bytes, ident: int) -> bytes:
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, src, dst)
    csum = packet.internet_checksum(header)
    return header[:10] + struct.pack(">H", csum) + header[12:] + payload


def _tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
         data: bytes = b"") -> bytes:
    seg = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    csum = packet.internet_checksum(seg, packet.pseudo_header_sum(src, dst, 6, len(seg)))
    return seg[:16] + struct.pack(">H", csum) + seg[18:]


def _udp(src: bytes, dst: bytes, sport: int, dport: int, data: bytes) -> bytes:
    seg = struct.pack(">HHHH", sport, dport, 8 + len(data), 0) + data
    csum = packet.internet_checksum(seg, packet.pseudo_header_sum(src, dst, 17, len(seg))) or 0xFFFF
    return seg[:6] + struct.pack(">H", csum) + seg[8:]


def build_capture(path: str, rng: random.Random) -> None:
    """Write a big-endian, raw-IP pcap: noise, a handshake, data, a bad checksum, UDP."""
    a, b = bytes([127, 0, 0, 1]), bytes([127, 0, 0, rng.randint(2, 254)])
    cport, sport = rng.randint(32768, 60999), rng.randint(1024, 32767)
    iss, irs = rng.getrandbits(32), rng.getrandbits(32)
    ident = rng.randint(1, 60000)
    pkts = [
        _ip(17, a, b, _udp(a, b, rng.randint(32768, 60999), 53, b"\x12\x34 a query"), ident),
        # A lone SYN-ACK of some other conversation: not the start of a handshake.
        _ip(6, b, a, _tcp(b, a, 80, cport + 1, 1000, 2000, 0x12), ident + 1),
        _ip(6, a, b, _tcp(a, b, cport, sport, iss, 0, 0x02), ident + 2),
        _ip(6, b, a, _tcp(b, a, sport, cport, irs, (iss + 1) % 2**32, 0x12), ident + 3),
        _ip(6, a, b, _tcp(a, b, cport, sport, (iss + 1) % 2**32, (irs + 1) % 2**32, 0x10), ident + 4),
        _ip(6, a, b, _tcp(a, b, cport, sport, (iss + 1) % 2**32, (irs + 1) % 2**32, 0x18, b"GET /\r\n"),
            ident + 5),
    ]
    bad = bytearray(_ip(6, b, a, _tcp(b, a, sport, cport, (irs + 1) % 2**32, (iss + 8) % 2**32, 0x10),
                        ident + 6))
    bad[-3] ^= 0x5A  # corrupt the TCP checksum (and only it)
    pkts.append(bytes(bad))
    pkts.append(_ip(17, b, a, _udp(b, a, 53, 40000, b"an answer"), ident + 7))
    with PcapWriter(path, linktype=LINKTYPE_RAW, snaplen=65535, byteorder=">") as out:
        for i, p in enumerate(pkts):
            out.write(p, ts_ns=(1_700_000_000 + i) * 10**9 + i * 1_000_000)


def expected_handshake(packets: List[bytes]) -> list:
    """Indices of SYN, SYN-ACK, ACK of the first complete handshake (grader's answer)."""
    dec = [packet.decode_packet(p) for p in packets]
    for i, d in enumerate(dec):
        t = d.get("tcp")
        if not t or t["flags"] & 0x12 != 0x02:
            continue
        for j in range(i + 1, len(dec)):
            u = dec[j].get("tcp")
            if (u and u["flags"] & 0x12 == 0x12 and u["sport"] == t["dport"] and u["dport"] == t["sport"]
                    and u["ack"] == (t["seq"] + 1) % 2**32):
                for k in range(j + 1, len(dec)):
                    v = dec[k].get("tcp")
                    if (v and v["flags"] & 0x12 == 0x10 and v["sport"] == t["sport"]
                            and v["dport"] == t["dport"] and v["ack"] == (u["seq"] + 1) % 2**32):
                        return [i, j, k]
    return []


# --- checks (parent side) -----------------------------------------------------

SLUG = "lab08-packets"


def _shipped_capture() -> str:
    """The loopback capture of the course folder: never the student's copy, which they may change."""
    return os.path.join(course_dir(), SLUG, CAPTURE)


_CACHE: dict = {}
reset = _CACHE.clear  # called before each grading run (see defs/lab08.toml)


def _run(labdir: str) -> tuple:
    """Run the probe once per grading of a folder; later checks reuse the result."""
    key = os.path.realpath(labdir)
    if key in _CACHE:
        result, expected, blobs = _CACHE[key]
        return value_of(result, "dissect.py"), expected, blobs
    rng = random.Random()
    blobs = [bytes.fromhex("0001f203f4f5f6f7"), b"\x01", b""] + [
        bytes(rng.getrandbits(8) for _ in range(n)) for n in (1, 2, 3, 20, 21, 1001)]
    with tempfile.TemporaryDirectory(prefix="netlab-lab08-") as tmp:
        fresh = os.path.join(tmp, "grader.pcap")
        build_capture(fresh, random.Random())
        caps = [(CAPTURE, _shipped_capture()), ("a capture built by the grader", fresh)]
        # The answers first, from the grader's own files; the probe reads copies of
        # them, read-only in the sandbox.
        expected = [(label, read_pcap(path)) for label, path in caps]
        result = run_probe(labdir, "lab08:probe_dissect",
                           {"captures": ["shipped.pcap", "grader.pcap"], "blobs": [b.hex() for b in blobs]},
                           timeout=15, inputs={"shipped.pcap": caps[0][1], "grader.pcap": fresh})
    # The probe's outcome is cached even when it failed: a dissect.py that hangs
    # must cost one timeout, not one per check.
    _CACHE[key] = (result, expected, blobs)
    return value_of(result, "dissect.py"), expected, blobs


def _packets(value: dict, expected: list):
    """Each packet of both captures: (label, linktype, index, probe entry, grader's IP bytes)."""
    for cap, (label, (linktype, frames)) in zip(value["captures"], expected):
        for i, (entry, frame) in enumerate(zip(cap["packets"], frames)):
            yield label, linktype, i, entry, ip_of(frame, linktype)


def read(labdir: str) -> str:
    value, expected, _ = _run(labdir)
    for cap, (label, (linktype, frames)) in zip(value["captures"], expected):
        got = student_value(cap["read"], f"read_pcap({label})")
        if not isinstance(got, list) or len(got) != 2:
            raise CheckFailed(f"read_pcap({label}) should return (linktype, frames), got {got!r}")
        if got[0] != linktype:
            raise CheckFailed(f"read_pcap({label}) gave link type {got[0]!r}, the header says {linktype}")
        if [bytes.fromhex(f) for f in got[1]] != frames:
            raise CheckFailed(f"read_pcap({label}) gave {len(got[1])} frames; the file has {len(frames)}"
                              + (" (same count, different bytes)" if len(got[1]) == len(frames) else ""))
    return "both captures read: little-endian Ethernet and big-endian raw IP"


def link(labdir: str) -> str:
    value, expected, _ = _run(labdir)
    for label, linktype, i, entry, ip in _packets(value, expected):
        got = student_value(entry["ip_payload"], f"ip_payload(frame {i} of {label}, {linktype})")
        if not isinstance(got, dict) or bytes.fromhex(got.get("bytes", "")) != ip:
            raise CheckFailed(f"ip_payload(frame {i} of {label}, {linktype}) is not the IPv4 packet")
    return "IPv4 packets found behind both link types"


_IP_KEYS = ("version", "header_length", "total_length", "ttl", "protocol", "src", "dst")


def ipv4(labdir: str) -> str:
    value, expected, _ = _run(labdir)
    n = 0
    for label, _, i, entry, ip in _packets(value, expected):
        want = packet.decode_ipv4(ip)
        got = student_value(entry["ipv4"], f"parse_ipv4(packet {i} of {label})")
        for key in _IP_KEYS:
            if not isinstance(got, dict) or got.get(key) != want[key]:
                raise CheckFailed(f"parse_ipv4(packet {i} of {label})[{key!r}] is "
                                  f"{got.get(key) if isinstance(got, dict) else got!r}, expected {want[key]!r}")
        n += 1
    return f"{n} IPv4 headers agree with netlab.packet ({packet.BACKEND} core)"


def transport(labdir: str) -> str:
    value, expected, _ = _run(labdir)
    n = 0
    for label, _, i, entry, ip in _packets(value, expected):
        want = packet.decode_packet(ip)
        proto = want["proto"]
        keys = {"tcp": ("sport", "dport", "seq", "ack", "header_length"),
                "udp": ("sport", "dport", "length")}.get(proto, ())
        if not keys:
            continue
        got = student_value(entry[proto], f"parse_{proto}(packet {i} of {label})")
        if not isinstance(got, dict):
            raise CheckFailed(f"parse_{proto} should return a dict, got {got!r}")
        for key in keys:
            if got.get(key) != want[proto][key]:
                raise CheckFailed(f"parse_{proto}(packet {i} of {label})[{key!r}] is {got.get(key)!r}, "
                                  f"expected {want[proto][key]!r}")
        if proto == "tcp" and (got.get("flags") if isinstance(got.get("flags"), int) else -1) & 0xFF \
                != want["tcp"]["flags"] & 0xFF:
            raise CheckFailed(f"parse_tcp(packet {i} of {label})['flags'] is {got.get('flags')!r}, "
                              f"expected {want['tcp']['flags'] & 0xFF} ({'+'.join(packet.tcp_flag_names(want['tcp']['flags']))})")
        n += 1
    return f"{n} TCP/UDP headers agree with netlab.packet"


def checksum(labdir: str) -> str:
    value, _, blobs = _run(labdir)
    for blob, out in zip(blobs, value["checksums"]):
        got = student_value(out, f"checksum({len(blob)} bytes)")
        want = packet.internet_checksum(blob)
        if got != want:
            raise CheckFailed(f"checksum({blob[:8].hex()}{'...' if len(blob) > 8 else ''}, {len(blob)} bytes) "
                              f"gave {got!r}, expected {want:#06x}")
    return f"{len(blobs)} buffers of 0 to 1001 bytes, odd and even, agree with netlab.packet"


def verify(labdir: str) -> str:
    value, expected, _ = _run(labdir)
    bad_on_lo = 0
    for label, _, i, entry, ip in _packets(value, expected):
        want = bool(packet.decode_packet(ip)["checksum_ok"])
        got = student_value(entry["transport_ok"], f"transport_checksum_ok(packet {i} of {label})")
        if got is not want:
            raise CheckFailed(f"transport_checksum_ok(packet {i} of {label}) gave {got!r}, expected {want}")
        bad_on_lo += (not want) and label == CAPTURE
    return (f"every verdict agrees, including the corrupted packet and {bad_on_lo} loopback packets "
            f"whose checksum the kernel never filled in")


def handshake(labdir: str) -> str:
    value, expected, _ = _run(labdir)
    for cap, (label, (linktype, frames)) in zip(value["captures"], expected):
        want = expected_handshake([ip_of(f, linktype) for f in frames])
        got = student_value(cap["handshake"], f"find_handshake(packets of {label})")
        if list(got or []) != want:
            raise CheckFailed(f"find_handshake(packets of {label}) gave {got!r}, expected {want}")
    return "SYN, SYN-ACK and ACK found in both captures"
