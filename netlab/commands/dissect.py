"""``netlab dissect FILE`` and ``netlab sniff``: decode captures, capture live."""
from __future__ import annotations

import argparse
import sys

from netlab import dissect as lib
from netlab._cliutil import (add_json_flag, checked_number, port_number, print_json, print_table,
                             print_wrapped)
from netlab.errors import NetlabError, UsageError
from netlab.packet import CaptureError
from netlab.packet.pcap import PcapWriter, open_capture
from netlab.packet.pfilter import FilterError, compile_filter

__all__ = ["register", "run_dissect", "run_sniff"]


def _positive(text: str) -> int:
    return checked_number(text, lambda t: int(t, 10), lambda v: v >= 1,
                          "invalid count {text!r}: a whole number above 0",
                          "invalid count {value}: a whole number above 0")


def _seconds(text: str) -> float:
    return checked_number(text, float, lambda v: v > 0,  # checked_number already refuses nan and inf
                          "invalid timeout {text!r}: seconds, e.g. 5 or 0.5",
                          "invalid timeout {text!r}: seconds above 0")


def register(sub) -> None:
    p = sub.add_parser(
        "dissect",
        help="decode a pcap or pcapng file, one line per packet (or --stats)",
        description="Decode a capture file (pcap or pcapng, as tcpdump or Wireshark write "
        "them) one line per packet, with TCP handshakes and teardowns named. --json prints "
        "one JSON object per line (payload as hex). --stats prints packets and bytes per "
        "protocol, port and flow, and TCP flow states, counted by the compiled core.",
    )
    p.add_argument("file", metavar="FILE", help="the capture file (pcap or pcapng)")
    p.add_argument("more_files", metavar="FILE", nargs="*",
                   help="more capture files (with --parquet: one dataset of them all)")
    add_json_flag(p)
    p.add_argument("--stats", action="store_true", help="print aggregate tables instead of packets")
    p.add_argument("--filter", metavar="EXPR", help="keep matching packets: tcp, udp, icmp, "
                   "port N, host ADDR, joined by and/or/not and parentheses")
    p.add_argument("--checksums", action="store_true",
                   help="verify IPv4/TCP/UDP/ICMP checksums (loopback captures usually show "
                   "them unfilled: the kernel skips them on lo)")
    p.add_argument("--parquet", metavar="OUT",
                   help="write the packets as columns (the --json keys) to Parquet: OUT.parquet "
                   "for one file, else a dataset folder with one NAME.parquet per capture, which "
                   "DuckDB, Polars or Spark read as one table (needs pyarrow: "
                   "pip install 'netlab[data]')")
    p.add_argument("--jobs", type=_positive, default=1, metavar="N",
                   help="with --parquet: convert N capture files at a time (default 1)")
    p.set_defaults(func=run_dissect, late_positionals="more_files")

    s = sub.add_parser(
        "sniff",
        help="capture live on loopback and show TCP handshakes (root or CAP_NET_RAW)",
        description="Capture packets on the loopback interface with a packet socket, show "
        "each once, and name the TCP handshake (SYN, SYN-ACK, ACK) and teardown (FIN, RST). "
        "Needs root or CAP_NET_RAW.",
    )
    s.add_argument("--port", type=port_number, help="only TCP/UDP packets with this port")
    s.add_argument("--count", type=_positive, metavar="N", help="stop after N packets")
    s.add_argument("-w", "--write", metavar="FILE", dest="write",
                   help="also write the packets to a pcap file (tcpdump -r reads it)")
    s.add_argument("--timeout", type=_seconds, metavar="S", help="stop after S seconds")
    s.add_argument("--filter", metavar="EXPR", help="the same filter language as dissect")
    s.add_argument("--interface", default="lo", help=argparse.SUPPRESS)
    add_json_flag(s)
    s.set_defaults(func=run_sniff)


def _compile(text):
    if text is None:
        return None
    try:
        return compile_filter(text)
    except FilterError as exc:
        raise UsageError(str(exc)) from None


def _emit(n, rec, frame, note, as_json):
    print((lib.json_line if as_json else lib.packet_line)(n, rec, frame, note))


def run_dissect(args: argparse.Namespace) -> int:
    if args.parquet is not None or args.more_files or args.jobs != 1:
        return _run_parquet(args)
    predicate = _compile(args.filter)
    try:
        with open_capture(args.file) as buf:
            if args.stats:
                return _print_stats(args, lib.capture_stats(buf, predicate, args.checksums))
            # Bytes straight to the binary stream (every line is ASCII); a text
            # stream without one (an io.StringIO in a caller's test) gets text.
            out = getattr(sys.stdout, "buffer", None)
            write = out.write if out is not None else (lambda b: sys.stdout.write(b.decode("ascii")))
            sys.stdout.flush()
            try:
                for chunk in lib.format_capture(buf, args.json, args.checksums, predicate):
                    write(chunk)
            finally:
                (out or sys.stdout).flush()
    except CaptureError as exc:
        if exc.offset == 0:
            hint = "give a pcap or pcapng file, e.g. one written by tcpdump -w"
        else:
            hint = "the file is cut short or damaged; the packets before it were shown"
        raise NetlabError(f"{args.file}: {exc} ({hint})") from None
    except IsADirectoryError:
        raise NetlabError(f"{args.file} is a directory, not a capture file") from None
    except FileNotFoundError:
        raise NetlabError(f"no such file: {args.file} (check the path)") from None
    return 0


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _print_stats(args, stats: dict) -> int:
    if args.json:
        print_json(stats)
    else:
        print(f"{stats['packets']} packets, {stats['bytes']} bytes "
              f"(IPv4 {stats['ipv4']}, IPv6 {stats['ipv6']}, other {stats['non_ip']})")
        print()
        print_table([(p["proto"], p["packets"], p["bytes"]) for p in stats["protocols"]],
                    ["protocol", "packets", "bytes"])
        if stats["ports"]:
            print()
            print_table([(p["proto"], p["port"], p["packets"], p["bytes"])
                         for p in stats["ports"][:20]], ["proto", "port", "packets", "bytes"])
        if stats["flows"]:
            print()
            flows = sorted(stats["flows"], key=lambda f: -f["packets"])[:20]
            print_table([(f["proto"], f"{f['src']} {f['sport']}", f"{f['dst']} {f['dport']}",
                          f["packets"], f["bytes"], f["state"]) for f in flows],
                        ["proto", "from", "to", "packets", "bytes", "state"])
        tcp = stats["tcp"]
        if tcp["flows"]:
            print()
            print_wrapped(f"TCP: {_n(tcp['flows'], 'flow')}, {_n(tcp['handshakes'], 'handshake')} "
                          f"completed, {tcp['syn_without_synack']} SYN without SYN-ACK, "
                          f"{tcp['fin']} with FIN ({tcp['closed']} closed both ways), "
                          f"{tcp['rst']} reset", hang=5)
    sys.stdout.flush()
    if stats["error"]:
        raise NetlabError(f"{args.file}: {stats['error']['message']} (the counts cover the "
                          "packets before it; the file is cut short or damaged)")
    return 0


def run_sniff(args: argparse.Namespace) -> int:
    from netlab.sniff import iter_sniff

    predicate = _compile(args.filter)
    writer = None
    if args.write:
        try:
            writer = PcapWriter(args.write)
        except OSError as exc:
            raise NetlabError(f"cannot write {args.write}: {exc.strerror or exc} "
                              "(choose a file in a folder that exists and you may write to)") from None
    annotator = lib.Annotator()
    n = 0
    try:
        banner = (f"capturing on {args.interface}"
                  + (f", port {args.port}" if args.port is not None else "") + " (Ctrl-C stops)")
        for rec, frame in iter_sniff(port=args.port, count=args.count, timeout=args.timeout,
                                     interface=args.interface, predicate=predicate,
                                     ready=lambda: print(banner, file=sys.stderr, flush=True)):
            n += 1
            if writer is not None:
                writer.write(frame, rec.ts_ns)
                writer.flush()
            _emit(n, rec, frame, annotator.note(rec), args.json)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        if writer is not None:
            writer.close()
    if not args.json:
        where = f", written to {args.write}" if args.write else ""
        print(f"{n} packets captured{where}", file=sys.stderr, flush=True)
    return 0


def _run_parquet(args: argparse.Namespace) -> int:
    """``dissect FILE... --parquet OUT [--jobs N]``: captures to a Parquet file or dataset."""
    import os
    import time

    from netlab import arrow

    if args.parquet is None:
        raise UsageError("several files or --jobs go with --parquet OUT (or run dissect once "
                         "per file)")
    if args.stats:
        raise UsageError("--parquet writes the packets, --stats counts them: choose one "
                         "(DuckDB answers --stats questions from the Parquet files)")
    _compile(args.filter)  # a bad filter is a usage error before any work
    files = [args.file, *args.more_files]
    for name in files:
        if not os.path.isfile(name):
            what = "a directory, not a capture file" if os.path.isdir(name) else "no such file"
            raise NetlabError(f"{name}: {what} (check the path)")
    try:
        arrow.parquet_targets(files, args.parquet)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    live = sys.stderr.isatty()
    started = last = time.monotonic()

    def progress(done: int, total: int, packets: int) -> None:
        nonlocal last
        now = time.monotonic()
        if live and (now - last >= 0.2 or done == total):
            last = now
            rate = packets / max(now - started, 1e-9)
            print(f"\r{done}/{total} files, {packets} packets, {rate / 1e6:.2f} M packets/s ",
                  end="", file=sys.stderr, flush=True)

    try:
        results = arrow.write_parquet(files, args.parquet, jobs=args.jobs, filter=args.filter,
                                      checks=args.checksums, progress=progress)
    except OSError as exc:
        raise NetlabError(f"cannot write {args.parquet}: {exc.strerror or exc} (choose a "
                          "place that exists and you may write to)") from None
    finally:
        if live:
            print(file=sys.stderr, flush=True)
    total = sum(r["packets"] for r in results)
    if args.json:
        print_json({"out": args.parquet, "packets": total, "files": results})
    else:
        print(f"{total} packets from {len(results)} capture file(s) written to {args.parquet}",
              flush=True)
    failed = [r for r in results if r["error"]]
    for r in failed:
        if r["parquet"] is None:
            hint = "not converted: give a pcap or pcapng file, e.g. one written by tcpdump -w"
        else:
            hint = (f"the file is cut short or damaged; the {r['packets']} packets before it "
                    f"are in {r['parquet']}")
        print(f"netlab: {r['capture']}: {r['error']['message']} ({hint})", file=sys.stderr)
    return 1 if failed else 0
