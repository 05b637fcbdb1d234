"""Step: a short parse benchmark of the compiled packet core and its pure-Python twin."""
from __future__ import annotations

from typing import Dict, Optional

from netlab import packet
from netlab.packet import pcap
from netlab.bench import parse as bench
from netlab.tour._step import SAMPLE_CAPTURE, Step, TourContext

_BENCH_PACKETS = 50_000


def _rate(pps: Optional[float]) -> str:
    if pps is None:
        return "-"
    return f"{pps / 1e6:.2f} M/s" if pps >= 1e6 else f"{pps / 1e3:.0f} k/s"


def run(ctx: TourContext) -> Dict:
    ctx.say(f"timing both packet backends on a generated capture of {_BENCH_PACKETS:,} packets "
            "(best of 3 for the compiled core) ...")
    data = bench.parse_bench(path=None, packets=_BENCH_PACKETS, repeats=3, dpkt=False)
    stats, records = data["stats_pps"], data["records_pps"]
    names = [n for n in ("cython", "python", "c") if n in stats or n in records]
    labels = {"cython": "cython (compiled core)", "python": "python (the twin)",
              "c": "plain C loop (baseline)"}
    ctx.say()
    ctx.table([(labels[n], _rate(stats.get(n)), _rate(records.get(n))) for n in names],
              ["backend", "stats path", "records path"])
    ctx.say()
    ctx.say("stats path: the core walks the file and only counts (packets and bytes per "
            "protocol, port and flow), with no Python object per packet: what "
            "'netlab dissect --stats' uses.", hang=2)
    ctx.say("records path: one Python record per packet (addresses, ports, flags, payload) "
            "that your code can read: what 'netlab dissect' prints. Making those objects is "
            "the price of the second column.", hang=2)
    ctx.say()
    facts = {"packets": data["packets"], "backends": sorted(k for k in stats if k != "c")}
    # Same answers, not just different speeds: both backends count the sample capture.
    with pcap.open_capture(SAMPLE_CAPTURE) as buf:
        counts = {name: impl.aggregate(buf, False) for name, impl in packet.backends().items()}
    first = next(iter(counts.values()))
    same = all(c == first for c in counts.values())
    facts["same_results"] = same
    if "cython" in stats and "python" in stats and stats["python"]:
        factor = stats["cython"] / stats["python"]
        facts["stats_speedup"] = round(factor, 1)
        ctx.say(f"The compiled core counted the file {factor:.0f} times faster than its "
                "pure-Python twin.")
    if len(counts) > 1:
        ctx.say("Same answers, not only different speeds: both backends' counts of the")
        ctx.say(f"sample capture are identical: {'yes' if same else 'NO'} "
                f"({', '.join(sorted(counts))}).")
    else:
        ctx.say(f"Only the {', '.join(counts)} backend is available here "
                f"({packet.BACKEND_REASON}).")
    for note in data.get("notes", []):
        ctx.say(f"note: {note}")
    ctx.say("Full run with dpkt and more packets: netlab bench parse")
    return facts


STEP = Step("Parsing packets: the compiled core and its twin",
            "a short parse benchmark of both packet backends: the Cython core and the "
            "readable pure-Python twin give the same answers at very different speeds",
            "lessons/packets", "lab08-packets", run)
