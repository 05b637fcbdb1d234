"""``netlab bench parse [FILE]``: packet-parsing speed, every backend on one file.

Two paths through a capture, each timed on every backend, side by side on the
same file in one run:

* **stats path** - counters over the whole file (per protocol, port, flow,
  TCP states), no Python object per packet: the compiled core's loop runs in
  C without the GIL;
* **records path** - one decoded record (a tuple) per packet handed to a
  Python ``for`` loop, what ``netlab dissect`` iterates.

Backends: ``cython`` (netlab.packet._core), ``python`` (the pure-Python twin over
an mmap), ``dpkt`` (the classic pure-Python library, doing the same walk and
the same counting with its objects) and ``c``: the very walk of the stats
path (``src_c/walk.h``) alone, plain C from start to end, called in this same
process on the same mapped file (``netlab.packet._core.walk_baseline``) - the
ceiling the stats path is measured against. The stats path then shapes
its tables in C too and leaves each port and flow row a C struct until it is
read (``netlab.packet.stats.Rows``). The two take turns, who goes first
changing every round, so a busy machine slows both alike; short calls take
more turns (about a second's worth, up to four times ``repeats``). The first
call and the best call of each are reported; their ratio is the median over
the rounds of each round's pair. ``cython-batch`` is the
records path through ``iter_batches`` (a list of records per call).
Figures are packets per CPU second of the timing thread (every backend runs
in it, the C loops too), best of ``repeats`` runs: on a busy machine, time
spent waiting for a core is not counted against anyone.

Without FILE, the bench writes a realistic file to a temporary directory: the
real loopback capture shipped in ``netlab/data/samples/flows.pcap`` (2,000
TCP connections and 1,000 UDP exchanges on 127.0.0.1, recorded by tcpdump
with :func:`netlab.bench.flows.record_flows`, about 3,000 flows) repeated
with fresh timestamps: a stats path over thousands of flows, as real
captures have.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from typing import Callable, Dict, Optional

from netlab import packet
from netlab._cliutil import checked_number
from netlab.errors import NetlabError
from netlab.packet import fields as F
from netlab.packet.pcap import open_capture

__all__ = ["DEFAULT_PACKETS", "c_baseline", "make_bench_file", "parse_bench", "register", "run"]

DEFAULT_PACKETS = 200_000
SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "data", "samples", "flows.pcap")


def make_bench_file(path: str, packets: int = DEFAULT_PACKETS, sample: str = SAMPLE) -> int:
    """Write ``packets`` frames of ``sample`` (a pcap), repeated, 10 us apart; returns bytes."""
    frames = []
    with open_capture(sample) as buf:
        info = packet.capture_info(buf)
        if info["format"] != "pcap":
            raise NetlabError(f"{sample}: the bench sample must be a pcap file")
        for rec in packet.iter_records(buf):
            start = rec[F.OFFSET]
            frames.append((bytes(buf[start:start + rec[F.CAPLEN]]), rec[F.WIRELEN]))
    if not frames:
        raise NetlabError(f"{sample} holds no packets")
    rec_head = struct.Struct("<IIII")
    ts = int(time.time()) * 1_000_000
    chunks = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, info["linktype"])]
    for i in range(packets):
        frame, wire = frames[i % len(frames)]
        ts += 10
        chunks.append(rec_head.pack(ts // 1_000_000, ts % 1_000_000, len(frame), wire))
        chunks.append(frame)
    data = b"".join(chunks)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def _best(fn: Callable[[], object], repeats: int) -> tuple:
    """``(packets, best seconds)``; ``fn`` returns a packet count or a stats dict.

    The clock stops before the result is thrown away: freeing it is the
    caller's business, done after the timing (the same for every backend).
    """
    best, n = float("inf"), 0
    for _ in range(repeats):
        t0 = time.thread_time()
        result = fn()
        best = min(best, time.thread_time() - t0)
        n = result if isinstance(result, int) else result["packets"]
        del result
    return n, best


def _records_loop(impl, buf) -> Callable[[], int]:
    def walk() -> int:
        n = 0
        try:
            for _rec in impl.iter_records(buf):
                n += 1
        except impl.CaptureError:
            pass  # a damaged file: the packets before the damage count
        return n
    return walk


def _batch_loop(impl, buf) -> Callable[[], int]:
    def walk() -> int:
        n = 0
        try:
            for batch in impl.iter_batches(buf):
                for _rec in batch:
                    n += 1
        except impl.CaptureError:
            pass
        return n
    return walk


def _stats_call(impl, buf) -> Callable[[], dict]:
    return lambda: impl.aggregate(buf)


def _until_damage(reader, dpkt):
    """dpkt's reader, stopping quietly at a damaged record like the other backends."""
    it = iter(reader)
    while True:
        try:
            yield next(it)
        except StopIteration:
            return
        except (dpkt.UnpackError, ValueError, struct.error):  # NeedData is an UnpackError
            return


def _dpkt_walk(path: str, records: bool) -> Callable[[], int]:
    """dpkt doing the same work: decode every packet, then count it or make a record."""
    import dpkt

    def l3_of(link, buf):
        if link == 1:
            return dpkt.ethernet.Ethernet(buf).data
        if link == 113:
            return dpkt.sll.SLL(buf).data
        if link == 276:
            return dpkt.sll2.SLL2(buf).data
        if link in (12, 14, 101, 228, 229):
            return dpkt.ip6.IP6(buf) if buf and buf[0] >> 4 == 6 else dpkt.ip.IP(buf)
        return None

    def walk() -> int:
        n = 0
        protos: dict = {}
        ports: dict = {}
        flows: dict = {}
        out = []
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(0)
            reader = dpkt.pcapng.Reader(f) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
            link = reader.datalink()
            for ts, buf in _until_damage(reader, dpkt):
                n += 1
                try:
                    ip = l3_of(link, buf)
                except (dpkt.UnpackError, struct.error, IndexError):
                    continue
                if isinstance(ip, dpkt.ip.IP):
                    src, dst = socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst)
                elif isinstance(ip, dpkt.ip6.IP6):
                    src = socket.inet_ntop(socket.AF_INET6, ip.src)
                    dst = socket.inet_ntop(socket.AF_INET6, ip.dst)
                else:
                    continue
                proto, l4 = ip.p, ip.data
                sport = dport = flags = seq = ack = 0
                if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                    sport, dport = l4.sport, l4.dport
                    if isinstance(l4, dpkt.tcp.TCP):
                        flags, seq, ack = l4.flags, l4.seq, l4.ack
                    plen = len(l4.data)
                else:
                    plen = len(l4) if isinstance(l4, bytes) else len(l4.data)
                if records:
                    out.append((ts, len(buf), src, dst, proto, sport, dport, flags, seq, ack, plen))
                    continue
                protos[proto] = protos.get(proto, 0) + 1
                if proto in (6, 17):
                    ports[sport] = ports.get(sport, 0) + 1
                    ports[dport] = ports.get(dport, 0) + 1
                    key = (proto, src, sport, dst, dport) if (src, sport) <= (dst, dport) \
                        else (proto, dst, dport, src, sport)
                    flows[key] = flows.get(key, 0) | flags
        return n
    return walk


def c_baseline(path: str, repeats: int = 5) -> Optional[dict]:
    """The plain C walk over a file, in this process: ``{"packets", "seconds" (best), "flows", "error"}``.

    None when the compiled core is not built (the walk is its C).
    """
    core = packet.backends().get("cython")
    if core is None:
        return None
    with open_capture(path) as buf:
        best, result = float("inf"), None
        for _ in range(repeats):
            t0 = time.thread_time()
            result = core.walk_baseline(buf)
            best = min(best, time.thread_time() - t0)
    return dict(result, seconds=best)


PAIR_SECONDS = 1.0  # the C walk and the stats path take turns for about this long
MIN_TIMED_PACKETS = 50_000  # below this, per-call setup would dominate the figures


def _repeat_small_file(path: str, tmpdir: str) -> tuple:
    """``(packets in the file, repeat factor, path to time, damage or None)``.

    A small capture is repeated into one temporary file: pcap as its header
    then the records again and again, pcapng as whole sections one after
    another (a valid pcapng file; dpkt reads it too). A damaged file is cut
    at the damage first, so only its good packets are repeated. Every backend
    then times the same bytes, large enough that table setup is noise.
    """
    with open_capture(path) as buf:
        info = packet.capture_info(buf)
        stats = packet.aggregate(buf)
        count, error = stats["packets"], stats["error"]
        if not 0 < count < MIN_TIMED_PACKETS:
            return count, 1, path, error
        data = bytes(buf[:error["offset"]] if error else buf)
    repeat = -(-MIN_TIMED_PACKETS // count)
    out = os.path.join(tmpdir, "repeated" + (".pcapng" if info["format"] == "pcapng" else ".pcap"))
    with open(out, "wb") as f:
        if info["format"] == "pcap":
            f.write(data[:24])
            body = data[24:]
        else:
            body = data
        for _ in range(repeat):
            f.write(body)
    return count, repeat, out, error


def parse_bench(path: Optional[str] = None, packets: int = DEFAULT_PACKETS, repeats: int = 5,
                dpkt: bool = True, progress: Optional[Callable[[str], None]] = None) -> dict:
    """Time every backend on one capture file; returns the dict ``--json`` prints.

    ``path=None`` generates a file of ``packets`` frames in a temporary
    directory (removed afterwards).
    """
    say = progress or (lambda text: None)
    tmpdir = None
    generated = path is None
    try:
        if generated:
            tmpdir = tempfile.mkdtemp(prefix="netlab-bench-parse-")
            path = os.path.join(tmpdir, "bench.pcap")
            say(f"writing {packets} packets to {path}")
            make_bench_file(path, packets)
        stats: Dict[str, float] = {}
        records: Dict[str, float] = {}
        notes = []
        file_path, file_packets, repeat, damage = path, None, 1, None
        if not generated:
            if tmpdir is None:
                tmpdir = tempfile.mkdtemp(prefix="netlab-bench-parse-")
            file_packets, repeat, path, damage = _repeat_small_file(path, tmpdir)
            if repeat > 1:
                say(f"{file_packets} packets: timing the file repeated {repeat} times")
                notes.append(
                    f"the file holds only {file_packets} packets: every backend timed it "
                    f"repeated {repeat} times in one temporary file ({file_packets * repeat} "
                    "packets), so that fixed per-call costs do not hide the per-packet speed")
        first: Dict[str, float] = {}
        rounds, paired = 0, None  # turns the C walk and the stats path took, their median ratio
        with open_capture(path) as buf:
            packet.capture_info(buf)  # not a capture: CaptureError before any timing
            count = None
            impls = packet.backends()
            if "cython" in impls:
                core = impls["cython"]
                # One untimed walk maps every page of the file, so that neither
                # side's first call pays for the page faults of the other.
                core.walk_baseline(buf)
                # The C walk and the stats path take turns in this one process:
                # a busy machine slows both alike. First and best call of each.
                times: Dict[str, list] = {"c": [], "cython": []}
                calls = {"c": lambda: core.walk_baseline(buf)["packets"],
                         "cython": _stats_call(core, buf)}
                # Who goes first changes every round, so neither always finds
                # the caches warm. Short calls take more turns (up to 4x
                # repeats, while the pair has run under PAIR_SECONDS): on a
                # shared machine a few ms of noise is several per cent of a
                # 20 ms call, and the best of more calls comes nearer the true cost.
                say(f"c and cython: stats path, taking turns ({repeats} to {4 * repeats} rounds)")
                spent = 0.0
                while rounds < repeats or (rounds < 4 * repeats and spent < PAIR_SECONDS):
                    for name in (("c", "cython") if rounds % 2 == 0 else ("cython", "c")):
                        count, dt = _best(calls[name], 1)
                        times[name].append(dt)
                        spent += dt
                    rounds += 1
                # The headline ratio: the median over rounds of C time / stats
                # time, each pair run back to back. A busy moment slows both
                # calls of its round alike, where the best call of each side
                # may come from different moments (reported too).
                pairs = [c / s for c, s in zip(times["c"], times["cython"]) if s > 0]
                paired = statistics.median(pairs) if pairs else None
                for name, dts in times.items():
                    stats[name] = count / min(dts) if min(dts) > 0 else float("inf")
                    first[name] = dts[0]
                say("cython: records path")
                n, dt = _best(_records_loop(core, buf), repeats)
                records["cython"] = n / dt if dt > 0 else float("inf")
                say("cython: records path, in batches")
                n, dt = _best(_batch_loop(core, buf), repeats)
                records["cython-batch"] = n / dt if dt > 0 else float("inf")
            if "python" in impls:
                say("python: stats path")
                count, dt = _best(_stats_call(impls["python"], buf), repeats)
                stats["python"] = count / dt if dt > 0 else float("inf")
                say("python: records path")
                n, dt = _best(_records_loop(impls["python"], buf), repeats)
                records["python"] = n / dt if dt > 0 else float("inf")
            error = damage or packet.aggregate(buf)["error"]
        if error:
            notes.append(f"the file is damaged: {error['message']}; every figure covers "
                         "the packets before it")
        if "cython" not in stats:
            notes.append("the compiled core is not built (no cython and no plain C figures); "
                         "rebuild with: python setup.py build_ext --inplace")
        if dpkt:
            try:
                import dpkt as _dpkt  # noqa: F401
            except ImportError:
                notes.append("dpkt is not installed (pip install dpkt): no dpkt figures")
            else:
                say("dpkt: stats path")
                n, dt = _best(_dpkt_walk(path, False), 1)
                stats["dpkt"] = n / dt
                say("dpkt: records path")
                n, dt = _best(_dpkt_walk(path, True), 1)
                records["dpkt"] = n / dt
        result = {
            "file": None if generated else file_path,
            "generated": generated,
            "packets": count if file_packets is None else file_packets,
            "timed_packets": count,
            "bytes": os.path.getsize(file_path),
            "repeats": repeats,
            "stats_rounds": rounds,
            "stats_pps": {k: round(v) for k, v in stats.items()},
            "records_pps": {k: round(v) for k, v in records.items()},
            "stats_first_call_s": {k: round(v, 6) for k, v in first.items()},
            "stats_best_call_s": {k: round(count / v, 6) for k, v in stats.items()
                                  if k in first and v},
            "ratios": _ratios(stats, records, first, paired),
            "notes": notes,
        }
        return result
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _ratios(stats: dict, records: dict, first: dict, paired: Optional[float] = None) -> dict:
    def ratio(a, b):
        return round(a / b, 2) if a and b else None

    return {
        "stats_cython_vs_dpkt": ratio(stats.get("cython"), stats.get("dpkt")),
        # median over the rounds of (C time / stats path time), each round's pair back to back
        "stats_cython_vs_c": round(paired, 2) if paired else None,
        "stats_cython_vs_c_best_calls": ratio(stats.get("cython"), stats.get("c")),
        # first calls: time of C over time of cython (>1: the stats path was faster)
        "stats_cython_vs_c_first_call": ratio(first.get("c"), first.get("cython")),
        "records_batch_vs_records": ratio(records.get("cython-batch"), records.get("cython")),
        "records_cython_vs_dpkt": ratio(records.get("cython"), records.get("dpkt")),
        "stats_python_vs_dpkt": ratio(stats.get("python"), stats.get("dpkt")),
        "records_python_vs_dpkt": ratio(records.get("python"), records.get("dpkt")),
    }


# --- command line --------------------------------------------------------------

def packet_count(text: str) -> int:
    """``--packets N`` of the parse and dissect benches: 1 to 50,000,000."""
    return checked_number(text, lambda t: int(t, 10), lambda v: 1 <= v <= 50_000_000,
                          "invalid packet count {text!r}: a whole number",
                          "invalid packet count {value}: 1 to 50000000")


def check_capture_arg(path: Optional[str]) -> None:
    """FILE of a bench: a file that exists, or none (a generated one)."""
    if path is not None and not os.path.isfile(path):
        raise NetlabError(f"no such file: {path} (give a pcap/pcapng file, or none "
                          "to generate one)")


def stderr_progress(quiet: bool):
    """Progress lines on stderr (None with --json: stdout stays one document)."""
    return None if quiet else (lambda text: print(f"  {text}", file=sys.stderr, flush=True))


def run_on_capture(args: argparse.Namespace, bench, *options):
    """Run ``bench(FILE, --packets, --repeats, *options, progress)`` for a capture bench's CLI.

    FILE is checked first, and a damaged capture becomes one error line.
    """
    check_capture_arg(args.file)
    try:
        return bench(args.file, args.packets, args.repeats, *options, stderr_progress(args.json))
    except packet.CaptureError as exc:
        raise NetlabError(f"{args.file}: {exc} (is it a pcap or pcapng file?)") from None


def _repeats(text: str) -> int:
    return checked_number(text, lambda t: int(t, 10), lambda v: 1 <= v <= 100,
                          "invalid repeat count {text!r}",
                          "invalid repeat count {value}: 1 to 100")


def register(bench_sub) -> None:
    p = bench_sub.add_parser(
        "parse",
        help="packet-parsing speed: compiled core, Python twin, dpkt and plain C, one file",
        description="Time the stats path (counters, no Python object per packet) and the "
        "records path (one record per packet) of every packet backend, dpkt and a plain C "
        "loop, side by side on the same capture file. Without FILE a realistic file is "
        "generated from a real loopback capture.",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="a pcap or pcapng file")
    p.add_argument("--packets", type=packet_count, default=DEFAULT_PACKETS,
                   help=f"packets in the generated file (default {DEFAULT_PACKETS})")
    p.add_argument("--repeats", type=_repeats, default=5,
                   help="runs of the fast paths; the best counts (default 5)")
    p.add_argument("--no-dpkt", action="store_true", help="skip the dpkt reference")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = run_on_capture(args, parse_bench, not args.no_dpkt)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['packets']} packets, {result['bytes']} bytes"
          + (" (generated)" if result["generated"] else f" ({result['file']})"))
    dpkt_stats = result["stats_pps"].get("dpkt")
    dpkt_records = result["records_pps"].get("dpkt")
    rows = []
    for name in ("c", "cython", "cython-batch", "python", "dpkt"):
        s, r = result["stats_pps"].get(name), result["records_pps"].get(name)
        if s is None and r is None:
            continue
        rows.append((name, f"{s:,}" if s else "-", f"{s / dpkt_stats:.1f}x" if s and dpkt_stats else "-",
                     f"{r:,}" if r else "-", f"{r / dpkt_records:.1f}x" if r and dpkt_records else "-"))
    from netlab._cliutil import print_table, print_wrapped

    print_table(rows, ["backend", "stats pkt/s", "vs dpkt", "records pkt/s", "vs dpkt"])
    ratio = result["ratios"]["stats_cython_vs_c"]
    if ratio:
        first, best = result["stats_first_call_s"], result["stats_best_call_s"]
        print_wrapped(f"cython stats path at {ratio:.0%} of the plain C walk in this process "
                      f"(median of {result['stats_rounds']} rounds side by side; best calls "
                      f"{best['cython'] * 1e3:.1f} ms vs {best['c'] * 1e3:.1f} ms, first calls "
                      f"{first['cython'] * 1e3:.1f} ms vs {first['c'] * 1e3:.1f} ms)")
    for note in result["notes"]:
        print_wrapped(f"note: {note}", hang=2)
    return 0
