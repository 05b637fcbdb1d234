"""What every tour step shares: its description, its result, and the context
it runs in (an output stream that fits the terminal, the host, a cleanup stack)."""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Sequence, TextIO

from netlab._cliutil import print_table, terminal_width, wrap

HOST = "127.0.0.1"

#: Where the sample capture of a real loopback handshake ships with the package.
SAMPLE_CAPTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "data", "samples", "handshake.pcap")

_INDENT = "   "


@dataclass
class Step:
    """One stop of the tour: what it shows and where to read more."""

    title: str
    shows: str
    lesson: str          # page under docs/, without suffix, e.g. "lessons/ports"
    lab: str             # folder under exercises/, e.g. "lab01-ports"
    func: Callable[["TourContext"], Dict]
    number: int = 0      # its place in STEPS, set by netlab.tour

    @property
    def lab_number(self) -> int:
        return int(self.lab[3:5])


@dataclass
class StepResult:
    number: int
    title: str
    status: str          # "ok" or "failed"
    facts: Dict = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0


class TourContext:
    """What a step gets: an output stream, the host and a cleanup stack."""

    def __init__(self, out: TextIO, seed: int = 1, live: bool = True) -> None:
        self.out = out
        self.host = HOST
        self.seed = seed
        #: False to decode the shipped sample capture even when a live capture is possible.
        self.live = live
        self.stack = contextlib.ExitStack()
        #: Room for a line after the step's indent ($COLUMNS or the terminal's
        #: width); None into a pipe or a file, where lines stay whole.
        columns = terminal_width()
        self.width = columns - len(_INDENT) if columns else None

    def say(self, text: str = "", hang: int = 0) -> None:
        """Prose, wrapped to the terminal; ``hang`` indents continuation lines."""
        for line in (text.splitlines() or [""]):
            pieces = [line] if self.width is None else wrap(line, self.width, hang)
            for piece in pieces:
                print(f"{_INDENT}{piece}".rstrip(), file=self.out)
        self.out.flush()

    def verbatim(self, text: str) -> None:
        """Lines shown as they are (a packet line, a command), never wrapped."""
        for line in text.splitlines():
            print(f"{_INDENT}{line}".rstrip(), file=self.out)
        self.out.flush()

    def parts(self, parts: Sequence[str], hang: int = 6) -> None:
        """Join ``parts`` with two spaces, starting a continuation line (indented
        by ``hang``) only between parts, so a packet line's fields stay whole."""
        line = ""
        for part in parts:
            if line and self.width is not None and len(line) + 2 + len(part) > self.width:
                self.verbatim(line)
                line = " " * hang + part
            else:
                line = f"{line}  {part}" if line else part
        self.verbatim(line)

    def table(self, rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
        buf = io.StringIO()
        print_table(rows, headers, file=buf, width=self.width)
        self.verbatim(buf.getvalue().rstrip("\n"))
