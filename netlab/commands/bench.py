"""``netlab bench udp|tcp|echo|latency|parse``: throughput, latency and parsing experiments.

Each experiment lives in ``netlab/bench/<name>.py`` and offers
``register(bench_subparsers)``; this module only gathers them under ``bench``.
"""
from __future__ import annotations

import importlib

# Each experiment's owner adds its module when it lands.
BENCH_MODULES: tuple = (
    "netlab.bench.udp",
    "netlab.bench.tcp",
    "netlab.bench.echo",
    "netlab.bench.latency",
    "netlab.bench.parse",
    "netlab.bench.dissect",
)


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="throughput experiments: UDP loss, TCP bulk rate, echo round trips, latency, "
        "parse speed",
        description="Measure on loopback (or between two hosts with --server/--client): UDP "
        "datagram rate and loss, TCP bulk throughput, echo round trips under many clients, "
        "ping-pong latency, and packet-parsing speed of both backends.",
    )
    bench_sub = p.add_subparsers(title="experiments", metavar="EXPERIMENT", dest="experiment")
    for name in BENCH_MODULES:
        importlib.import_module(name).register(bench_sub)
    p.set_defaults(func=lambda args: p.error("choose an experiment: "
                                             + ", ".join(sorted(bench_sub.choices))))
