"""``netlab tour``: the whole lesson, live, on loopback, in one command."""
from __future__ import annotations

import argparse
import sys
import time

from netlab._i18n import _
from netlab.errors import UsageError


def _step_number(text: str) -> int:
    # netlab.tour is imported only when the tour runs, not for every netlab command.
    from netlab import tour

    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("invalid step {text!r}: give a step number (see 'netlab tour --list')")
            .format(text=text)) from None
    if not 1 <= value <= len(tour.STEPS):
        raise argparse.ArgumentTypeError(
            _("invalid step {value}: steps run from 1 to {last} (see 'netlab tour --list')")
            .format(value=value, last=len(tour.STEPS)))
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "tour",
        help="the whole port lesson, live on loopback, in under a minute",
        description="Run the port lesson live on free ports of 127.0.0.1: port ranges, "
        "echo/daytime/chargen over TCP and UDP with their clients, TCP and UDP sharing "
        "one port number, binding below 1024, the three-way handshake, UDP loss through "
        "a lossy relay and a parse benchmark of both packet backends. No root needed. "
        "Each step names its lesson page and lab.",
    )
    p.add_argument("--step", type=_step_number, metavar="N", action="append",
                   help="run only step N (repeat for several; see --list)")
    p.add_argument("--list", action="store_true", help="list the steps and exit")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the lossy relay, so a run can be repeated (default 1)")
    p.add_argument("--no-live", action="store_true",
                   help="decode the shipped sample capture even when a live capture is possible")
    p.add_argument("--no-pause", action="store_true",
                   help="on a terminal, run straight through instead of waiting for Enter "
                   "between steps (scripts and pipes never wait)")
    p.set_defaults(func=run)


def _pause_on_terminal(step) -> bool:
    """Wait for Enter before ``step``; False (end the tour) on q, Ctrl-D or Ctrl-C."""
    try:
        answer = input(_("-- Enter: step {number}, {title}; q: quit -- ").format(
            number=step.number, title=_(step.title)))
    except (EOFError, KeyboardInterrupt):
        print()
        return False
    return answer.strip().lower() not in ("q", "quit")


def run(args: argparse.Namespace) -> int:
    from netlab import tour

    if args.list:
        for line in tour.iter_list():
            print(line)
        return 0
    if args.step and len(set(args.step)) != len(args.step):
        raise UsageError("a step was given twice: give each --step N once")
    start = time.monotonic()
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.no_pause
    results = tour.run_tour(args.step, out=sys.stdout, seed=args.seed, live=not args.no_live,
                            pause=_pause_on_terminal if interactive else None)
    failed = [r for r in results if r.status == "failed"]
    total = time.monotonic() - start
    took = f"{total:.1f}" if total >= 1 else f"{total:.2f}"
    summary = _("tour done: {ran} of {total} step(s) ran in {seconds} s").format(
        ran=len(results) - len(failed), total=len(results), seconds=took)
    if failed:
        summary += _(", {failed} failed (see above)").format(failed=len(failed))
    print(summary, flush=True)
    return 1 if failed else 0
