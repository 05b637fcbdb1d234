"""Compare netlab's packet core with tshark, packet by packet, on real captures.

    python3 tools/fidelity.py [--json] [--verbose] PATH...

PATH is a capture file or a folder (searched recursively for .pcap, .pcapng,
.cap and their .gz forms). For every frame, tshark (``-T fields``) and both
netlab backends give the outermost IP layer and the transport header after
it; the report counts:

* ``ip_packets``: frames in which tshark decodes IPv4 or IPv6;
* ``missed``: those of them in which netlab finds no IP header;
* ``extra``: frames in which netlab finds IP and tshark does not;
* ``diffs``: per field (``ts_ns``, ``caplen``, ``wirelen``, ``src``, ``dst``,
  ``proto``, ``sport``, ``dport``, ``ports_missed``, ``payload_len``), how many
  frames disagree, with the first few examples;
* ``twins``: files on which the compiled core and the pure twin differ
  (must be none).

Exit status 0, or 1 when tshark is missing or a file cannot be read.
The counting lives in :func:`compare_file`, which tests/test_fidelity.py runs.
"""
from __future__ import annotations

import argparse
import decimal
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from netlab.packet import backends  # noqa: E402
from netlab.packet import fields as F  # noqa: E402
from netlab.packet.fields import S_L4, S_L4_PART, S_MALFORMED, S_TRUNC  # noqa: E402
from netlab.packet.pcap import open_capture  # noqa: E402

FIELDS = ("frame.time_epoch", "frame.cap_len", "frame.len", "frame.protocols",
          "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "udp.srcport", "udp.dstport", "tcp.len", "udp.length")
TRANSPORTS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")
EXAMPLES = 3  # examples kept per differing field


def tshark_rows(path: str) -> list:
    """One dict per frame: the FIELDS above, first occurrence of each (the outermost)."""
    # Reassembly off: netlab decodes each packet on its own, so tshark must too
    # (with reassembly it shows a fragmented datagram's ports on its last fragment).
    cmd = ["tshark", "-n", "-r", path, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-T", "fields", "-E", "occurrence=f", "-E", "separator=\t"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    return [dict(zip(FIELDS, line.split("\t"))) for line in out.splitlines()]


def netlab_records(path: str) -> dict:
    """Records of every backend; a damaged file gives the records before the damage."""
    result = {}
    with open_capture(path) as buf:
        for name, core in backends().items():
            recs = []
            try:
                for rec in core.iter_records(buf):
                    recs.append(rec)
                error = None
            except core.CaptureError as exc:
                error = str(exc)
            result[name] = (recs, error)
    return result


def _first_ip(protocols: str):
    """(IP layer name, the transport name after it) from tshark's frame.protocols."""
    layers = protocols.split(":")
    for i, name in enumerate(layers):
        if name in ("ip", "ipv6"):
            rest = [n for n in layers[i + 1:] if not n.startswith("ipv6.")]
            return name, rest[0] if rest else None
    return None, None


def _ns(epoch: str) -> int:
    return int(decimal.Decimal(epoch) * 1_000_000_000) if epoch else 0


def compare_file(path: str) -> dict:
    """The counts described in the module docstring, for one capture file."""
    theirs = tshark_rows(path)
    ours = netlab_records(path)
    names = sorted(ours)
    recs, error = ours[names[0]]
    report = {"file": path, "frames": len(theirs), "netlab_frames": len(recs), "error": error,
              "ip_packets": 0, "missed": 0, "extra": 0, "diffs": {},
              "twins": [n for n in names[1:] if ours[n] != ours[names[0]]]}

    def differ(field, n, tshark_value, netlab_value):
        d = report["diffs"].setdefault(field, {"count": 0, "examples": []})
        d["count"] += 1
        if len(d["examples"]) < EXAMPLES:
            d["examples"].append({"frame": n, "tshark": tshark_value, "netlab": netlab_value})

    for n, (t, r) in enumerate(zip(theirs, recs), 1):
        status = r[F.STATUS]
        for field, mine, their in (("ts_ns", r[F.TS_NS], _ns(t["frame.time_epoch"])),
                                   ("caplen", r[F.CAPLEN], int(t["frame.cap_len"] or 0)),
                                   ("wirelen", r[F.WIRELEN], int(t["frame.len"] or 0))):
            if mine != their:
                differ(field, n, their, mine)
        layer, transport = _first_ip(t["frame.protocols"])
        if layer is None:
            if r[F.SRC] is not None:
                report["extra"] += 1
            continue
        report["ip_packets"] += 1
        if r[F.SRC] is None:
            report["missed"] += 1
            differ("ip", n, layer, None)
            continue
        prefix = "ip." if layer == "ip" else "ipv6."
        if r[F.SRC] != t[prefix + "src"]:
            differ("src", n, t[prefix + "src"], r[F.SRC])
        if r[F.DST] != t[prefix + "dst"]:
            differ("dst", n, t[prefix + "dst"], r[F.DST])
        if transport not in TRANSPORTS:
            continue
        if r[F.PROTO] != TRANSPORTS[transport]:
            differ("proto", n, transport, r[F.PROTO])
            continue
        if transport not in ("tcp", "udp"):
            continue
        if not status & (S_L4 | S_L4_PART):
            differ("ports_missed", n, t[transport + ".srcport"], None)
            continue
        for field, mine, key in (("sport", r[F.SPORT], ".srcport"),
                                 ("dport", r[F.DPORT], ".dstport")):
            if str(mine) != t[transport + key]:
                differ(field, n, t[transport + key], mine)
        if status & (S_TRUNC | S_MALFORMED) or not status & S_L4:
            continue
        if transport == "tcp" and t["tcp.len"]:
            expected = int(t["tcp.len"])
        elif transport == "udp" and t["udp.length"] and int(t["udp.length"]) >= 8:
            expected = int(t["udp.length"]) - 8
        else:
            continue
        if r[F.PAYLOAD_LEN] != expected:
            differ("payload_len", n, expected, r[F.PAYLOAD_LEN])
    return report


def find_captures(paths) -> list:
    found = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                found += [os.path.join(root, f) for f in sorted(files) if f.endswith(SUFFIXES)]
        else:
            found.append(p)
    return sorted(found)


def summarise(reports: list) -> dict:
    total = {"files": len(reports), "ip_packets": 0, "missed": 0, "extra": 0, "diffs": {},
             "twins_differ": [r["file"] for r in reports if r["twins"]]}
    for r in reports:
        for key in ("ip_packets", "missed", "extra"):
            total[key] += r[key]
        for field, d in r["diffs"].items():
            total["diffs"][field] = total["diffs"].get(field, 0) + d["count"]
    total["missed_percent"] = round(100 * total["missed"] / total["ip_packets"], 3) \
        if total["ip_packets"] else 0.0
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="netlab's packet core against tshark")
    ap.add_argument("paths", nargs="+", metavar="PATH")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--verbose", "-v", action="store_true", help="every file, with examples")
    args = ap.parse_args(argv)
    if not shutil.which("tshark"):
        print("fidelity: tshark not found (apt-get install tshark)", file=sys.stderr)
        return 1
    reports = []
    for path in find_captures(args.paths):
        try:
            reports.append(compare_file(path))
        except OSError as exc:
            print(f"fidelity: {path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    total = summarise(reports)
    if args.json:
        json.dump({"total": total, "files": reports}, sys.stdout, indent=1)
        print()
        return 0
    for r in reports:
        if args.verbose or r["missed"] or r["diffs"] or r["twins"]:
            print(f"{r['file']}: {r['ip_packets']} IP packets, {r['missed']} missed, "
                  f"diffs {json.dumps(r['diffs']) if args.verbose else sorted(r['diffs'])}"
                  + (f", TWINS DIFFER {r['twins']}" if r["twins"] else ""))
    print(f"{total['files']} files, {total['ip_packets']} IP packets tshark decodes, "
          f"{total['missed']} missed by netlab ({total['missed_percent']}%), "
          f"{total['extra']} extra; field differences {total['diffs']}; "
          f"twins differ on {len(total['twins_differ'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
