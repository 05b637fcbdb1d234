"""``netlab bench dissect [FILE]``: what a user of ``netlab dissect`` waits for, side by side.

Each run is a real child process writing to /dev/null; the figure is its CPU
time (user + system, from ``wait4``), best of ``--repeats``, so that a busy
machine disturbs it less than wall time. In one run, on the same file:

* ``tcpdump -nr FILE`` and ``netlab dissect FILE`` (text);
* ``netlab dissect FILE --json`` and ``tshark -r FILE -T json``;
* with ``--pure``, both ``netlab dissect`` runs again on the pure-Python twin;
* start-up: ``netlab dissect`` on a one-packet file, next to a bare
  ``python -c pass`` (what the interpreter itself costs here); the two take
  turns, best of 9 each.

The goals of the packet core: text at least as fast as tcpdump (ratio >= 1),
``--json`` within 2x of tcpdump's text and at least 3x faster than tshark's
JSON, start-up under 0.1 s of CPU. Without FILE the bench writes a file of
``--packets`` frames from the shipped many-flow loopback capture.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from netlab import packet
from netlab._cliutil import checked_number, print_table, print_wrapped
from netlab.bench.parse import DEFAULT_PACKETS, packet_count, run_on_capture
from netlab.errors import NetlabError
from netlab.packet import fields as F
from netlab.packet.pcap import PcapWriter, open_capture

__all__ = ["DEFAULT_PACKETS", "cpu_seconds", "dissect_bench", "register", "run"]

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_seconds(cmd: List[str], env: Optional[dict] = None, timeout: float = 900.0) -> float:
    """CPU seconds (user + system) of one run of ``cmd``, its output thrown away."""
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + timeout
    while True:  # wait4, not Popen.wait: it gives the child's own CPU time
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise NetlabError(f"{' '.join(cmd[:4])} ran longer than {timeout:.0f} s")
        time.sleep(0.01)
    if os.waitstatus_to_exitcode(status) != 0:
        raise NetlabError(f"{' '.join(cmd[:4])} failed (exit {os.waitstatus_to_exitcode(status)})")
    return usage.ru_utime + usage.ru_stime


def _best(cmd: List[str], repeats: int, env: Optional[dict] = None) -> float:
    return min(cpu_seconds(cmd, env) for _ in range(repeats))


def _netlab_env(pure: bool = False) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = _CHECKOUT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("NETLAB_PURE_PYTHON", None)
    if pure:
        env["NETLAB_PURE_PYTHON"] = "1"
    return env


def _one_packet_file(src: str, dst: str) -> None:
    with open_capture(src) as buf:
        rec = next(iter(packet.iter_records(buf)), None)
        if rec is None:
            raise NetlabError(f"{src} holds no packets")
        linktype = rec[F.LINKTYPE]
        frame = bytes(buf[rec[F.OFFSET]:rec[F.OFFSET] + rec[F.CAPLEN]])
    with PcapWriter(dst, linktype=linktype) as w:
        w.write(frame, rec[F.TS_NS])


def dissect_bench(path: Optional[str] = None, packets: int = DEFAULT_PACKETS, repeats: int = 3,
                  tshark: bool = True, pure: bool = False, progress=None) -> dict:
    """Time tcpdump, tshark and ``netlab dissect`` on one file; the dict ``--json`` prints."""
    from netlab.bench.parse import make_bench_file

    say = progress or (lambda text: None)
    tmpdir = tempfile.mkdtemp(prefix="netlab-bench-dissect-")
    try:
        generated = path is None
        if generated:
            path = os.path.join(tmpdir, "bench.pcap")
            say(f"writing {packets} packets to {path}")
            make_bench_file(path, packets)
        with open_capture(path) as buf:
            count = packet.aggregate(buf)["packets"]
        netlab = [sys.executable, "-m", "netlab", "dissect", path]
        env = _netlab_env()
        cpu: Dict[str, float] = {}
        notes = []
        runs = [("netlab_text", netlab, env), ("netlab_json", netlab + ["--json"], env)]
        if pure:
            runs += [("pure_text", netlab, _netlab_env(True)),
                     ("pure_json", netlab + ["--json"], _netlab_env(True))]
        tcpdump_exe = shutil.which("tcpdump")
        if tcpdump_exe:
            runs.insert(0, ("tcpdump_text", [tcpdump_exe, "-nr", path], None))
        else:
            notes.append("tcpdump is not installed (apt-get install tcpdump): no tcpdump figure")
        tshark_exe = shutil.which("tshark") if tshark else None
        if tshark_exe:
            runs.append(("tshark_json", [tshark_exe, "-r", path, "-T", "json"], None))
        elif tshark:
            notes.append("tshark is not installed (apt-get install tshark): no tshark figure")
        for name, cmd, run_env in runs:
            say(f"{name}: {repeats} run(s)")
            # tshark's JSON is slow: one run says enough
            cpu[name] = _best(cmd, 1 if name == "tshark_json" else repeats, run_env)
        one = os.path.join(tmpdir, "one.pcap")
        _one_packet_file(path, one)
        say("start-up: netlab dissect on a one-packet file")
        # As a user runs it: with the bytecode an install (or any earlier run)
        # leaves in __pycache__. PYTHONDONTWRITEBYTECODE would make every run
        # compile netlab's modules from source, which no installed copy does;
        # one untimed run writes the caches where the folder is writable.
        warm = dict(env)
        warm.pop("PYTHONDONTWRITEBYTECODE", None)
        startup = [sys.executable, "-m", "netlab", "dissect", one]
        bare = [sys.executable, "-c", "pass"]
        cpu_seconds(startup, warm)
        # The two take turns, best of 9 each: a run is ~0.1 s, and a busy
        # moment of the machine then slows both alike.
        netlab_runs, bare_runs = zip(*[(cpu_seconds(startup, warm), cpu_seconds(bare, warm))
                                       for _ in range(9)])
        cpu["startup"] = min(netlab_runs)
        cpu["python_startup"] = min(bare_runs)

        def ratio(a, b):
            return round(cpu[a] / cpu[b], 2) if a in cpu and b in cpu and cpu[b] else None

        return {
            "file": None if generated else path,
            "generated": generated,
            "packets": count,
            "bytes": os.path.getsize(path),
            "repeats": repeats,
            "backend": packet.BACKEND,
            "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
            "ratios": {
                # >= 1: netlab's text costs no more CPU than tcpdump's
                "tcpdump_text_vs_netlab_text": ratio("tcpdump_text", "netlab_text"),
                # <= 2: JSON within twice tcpdump's text
                "netlab_json_vs_tcpdump_text": ratio("netlab_json", "tcpdump_text"),
                # >= 3: tshark's JSON costs at least 3x netlab's
                "tshark_json_vs_netlab_json": ratio("tshark_json", "netlab_json"),
                "pure_text_vs_netlab_text": ratio("pure_text", "netlab_text"),
                "pure_json_vs_netlab_json": ratio("pure_json", "netlab_json"),
            },
            "notes": notes,
        }
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# --- command line --------------------------------------------------------------

def _repeats(text: str) -> int:
    return checked_number(text, lambda t: int(t, 10), lambda v: 1 <= v <= 20,
                          "invalid repeat count {text!r}", "invalid repeat count {value}: 1 to 20")


def register(bench_sub) -> None:
    p = bench_sub.add_parser(
        "dissect",
        help="netlab dissect (text, --json) against tcpdump -nr and tshark -T json, CPU time",
        description="Run tcpdump -nr, netlab dissect (text and --json) and tshark -T json "
        "on the same capture, each a child process writing to /dev/null, and compare their "
        "CPU time; also the start-up CPU of netlab dissect on a one-packet file. Without "
        "FILE a file is generated from the shipped many-flow loopback capture.",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="a pcap or pcapng file")
    p.add_argument("--packets", type=packet_count, default=DEFAULT_PACKETS,
                   help=f"packets in the generated file (default {DEFAULT_PACKETS})")
    p.add_argument("--repeats", type=_repeats, default=3,
                   help="runs of each command; the least CPU counts (default 3)")
    p.add_argument("--no-tshark", action="store_true", help="skip tshark (slow on big files)")
    p.add_argument("--pure", action="store_true", help="also time the pure-Python twin")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = run_on_capture(args, dissect_bench, not args.no_tshark, args.pure)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['packets']} packets, {result['bytes']} bytes"
          + (" (generated)" if result["generated"] else f" ({result['file']})"))
    print_table([(name, f"{sec:.3f}") for name, sec in result["cpu_s"].items()],
                ["run", "CPU s"])
    r = result["ratios"]
    for key, goal in (("tcpdump_text_vs_netlab_text", "goal >= 1"),
                      ("netlab_json_vs_tcpdump_text", "goal <= 2"),
                      ("tshark_json_vs_netlab_json", "goal >= 3")):
        if r[key] is not None:
            print(f"{key}: {r[key]:.2f} ({goal})")
    print(f"start-up: {result['cpu_s']['startup']:.3f} s CPU (python -c pass alone: "
          f"{result['cpu_s']['python_startup']:.3f} s; goal < 0.1 s)")
    for note in result["notes"]:
        print_wrapped(f"note: {note}", hang=2)
    return 0
