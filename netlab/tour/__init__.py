"""``netlab tour``: the whole port lesson, live, on loopback, in one command.

Each step is one small module of this package (``ranges``, ``services``, ...)
that offers ``STEP``: a :class:`Step` naming what it shows, its lesson page and
lab, and the function that runs a real experiment on free ports of 127.0.0.1
with netlab's own library. Nothing needs root; when the tour *is* root it also
shows what an ordinary user would get and captures a live handshake.

Every step is bounded in time and cleans up after itself (servers stopped,
sockets closed) even when it fails, so the whole tour takes well under a
minute and leaves nothing running.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Callable, Iterator, List, Optional, Sequence, TextIO

from netlab import sysinfo
from netlab._cliutil import display_width, terminal_width
from netlab._i18n import _
from netlab.errors import NetlabError, UsageError
from netlab.tour._step import HOST, SAMPLE_CAPTURE, Step, StepResult, TourContext

__all__ = [
    "HOST",
    "SAMPLE_CAPTURE",
    "STEPS",
    "Step",
    "StepResult",
    "TourContext",
    "get_step",
    "iter_list",
    "run_step",
    "run_tour",
]

#: The step modules, in the order of the lesson.
_STEP_MODULES = ("ranges", "services", "independence", "privileged", "handshake", "loss",
                 "parsing")

if sysinfo.is_root():  # namespaces and nftables are root-only: the step exists for root
    _STEP_MODULES += ("network",)

STEPS: List[Step] = [importlib.import_module(f"netlab.tour.{name}").STEP
                     for name in _STEP_MODULES]
for _number, _step in enumerate(STEPS, 1):
    _step.number = _number


def get_step(number: int) -> Step:
    """The step numbered ``number``, or a :class:`UsageError` naming the valid ones."""
    for step in STEPS:
        if step.number == number:
            return step
    raise UsageError(_("no tour step {number}: choose 1-{last} (see 'netlab tour --list')")
                     .format(number=number, last=len(STEPS)))


def _header(step: Step, ctx: TourContext) -> None:
    print(_("== Step {number}/{total}: {title}").format(
        number=step.number, total=len(STEPS), title=_(step.title)), file=ctx.out)
    ctx.say(_("shows:  {shows}").format(shows=_(step.shows)), hang=8)
    ctx.say(_("lesson: docs/{lesson}.rst").format(lesson=step.lesson))
    ctx.say(_("lab: exercises/{lab}/ (netlab lab show {number})").format(
        lab=step.lab, number=step.lab_number))
    print(file=ctx.out)
    ctx.out.flush()


def run_step(step: Step, out: TextIO = sys.stdout, seed: int = 1,
             live: bool = True) -> StepResult:
    """Run one step with its header; never raises for the step's own failures."""
    ctx = TourContext(out, seed=seed, live=live)
    _header(step, ctx)
    start = time.monotonic()
    try:
        with ctx.stack:
            facts = step.func(ctx) or {}
        result = StepResult(step.number, step.title, "ok", facts)
    except (NetlabError, OSError) as exc:
        ctx.say(_("step failed: {message}").format(message=exc))
        result = StepResult(step.number, step.title, "failed", message=str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken step must not end the tour
        if os.environ.get("NETLAB_DEBUG"):
            raise
        message = f"internal error: {type(exc).__name__}: {exc} (NETLAB_DEBUG=1 shows the traceback)"
        ctx.say(_("step failed: {message}").format(message=message))
        result = StepResult(step.number, step.title, "failed", message=message)
    result.seconds = round(time.monotonic() - start, 3)
    print(file=out)
    out.flush()
    return result


def run_tour(numbers: Optional[Sequence[int]] = None, out: TextIO = sys.stdout,
             seed: int = 1, live: bool = True,
             pause: Optional[Callable[[Step], bool]] = None) -> List[StepResult]:
    """Run the steps numbered ``numbers`` (default: all, in order) and return their results.

    ``seed`` makes the lossy relay repeatable; ``live=False`` decodes the shipped
    sample capture instead of capturing the handshake live. ``pause``, when
    given, is called before every step after the first with that step; it
    returns False to end the tour there.
    """
    steps = [get_step(n) for n in numbers] if numbers else list(STEPS)
    results = []
    for n, step in enumerate(steps):
        if n and pause is not None and not pause(step):
            break
        results.append(run_step(step, out, seed, live))
    return results


def iter_list(width: Optional[int] = None) -> Iterator[str]:
    """One line per step; past ``width`` (default: the terminal's, none into a
    pipe) its lesson and lab go on an indented second line."""
    width = width or terminal_width()
    for step in STEPS:
        head = f"{step.number}. {_(step.title)}"
        where = f"(docs/{step.lesson}.rst, exercises/{step.lab}/)"
        if width is None or display_width(head) + 2 + len(where) <= width:
            yield f"{head}  {where}"
        else:
            yield head
            yield f"   {where}"
