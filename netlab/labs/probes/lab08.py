"""Lab 8 probe (child side, standard library only): run dissect.py on the grader's captures.

The captures are the grader's read-only inputs, never the files in the
student's folder; the grader computed its answers from them before this ran.
"""
import struct

from .runtime import describe_exception, student_module

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


def read_pcap(path):
    """(linktype, frames) of a classic pcap file, either byte order."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    frames, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack_from(order + "I", data, off + 8)[0]
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return linktype, frames


def ip_of(frame, linktype):
    """The IP packet in a frame of this link type."""
    return frame[14:] if linktype == LINKTYPE_ETHERNET else frame



def probe_dissect(labdir, inputs, captures, blobs):
    """Call every function of dissect.py on the grader's captures (read-only inputs) and blobs."""
    mod = student_module(labdir, "dissect")
    out = {"captures": [], "checksums": []}

    def attempt(func, *args):
        try:
            value = func(*args)
            if isinstance(value, (bytes, bytearray)):
                value = {"bytes": bytes(value).hex()}
            elif isinstance(value, dict):
                value = {k: v for k, v in value.items() if isinstance(v, (int, str, bool, type(None)))}
            return {"ok": True, "value": value}
        except Exception as exc:  # noqa: BLE001 - reported to the parent as data
            return describe_exception(exc, labdir)

    for name in captures:
        path = inputs[name]
        read = attempt(mod.read_pcap, path)
        if read["ok"]:
            try:
                linktype, frames = read["value"]
                read["value"] = [linktype, [bytes(f).hex() for f in frames]]
            except (TypeError, ValueError):
                read = {"ok": True, "value": repr(read["value"])[:100]}
        # The other functions get the grader's own frames, so that a mistake in
        # read_pcap costs its own points only.
        linktype, frames = read_pcap(path)
        cap = {"read": read, "packets": []}
        ips = []
        for frame in frames:
            entry = {"ip_payload": attempt(mod.ip_payload, frame, linktype)}
            data = ip_of(frame, linktype)
            ips.append(data)
            entry["ipv4"] = attempt(mod.parse_ipv4, data)
            ihl = (data[0] & 0x0F) * 4
            if data[9] == 6:
                entry["tcp"] = attempt(mod.parse_tcp, data[ihl:])
            elif data[9] == 17:
                entry["udp"] = attempt(mod.parse_udp, data[ihl:])
            entry["transport_ok"] = attempt(mod.transport_checksum_ok, data)
            cap["packets"].append(entry)
        cap["handshake"] = attempt(mod.find_handshake, ips)
        out["captures"].append(cap)
    for blob in blobs:
        out["checksums"].append(attempt(mod.checksum, bytes.fromhex(blob)))
    return out
