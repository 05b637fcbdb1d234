"""Small helpers shared by the command modules: argument types and output."""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar

from netlab._i18n import _

__all__ = ["add_json_flag", "checked_number", "counted", "display_width", "port_number",
           "print_json", "print_table", "print_wrapped", "status_width", "terminal_width", "wrap"]

N = TypeVar("N", int, float)


def counted(n: int, word: str, plural: Optional[str] = None) -> str:
    """``1 connection``, ``2 connections``: a count that reads as English.

    ``plural`` for words that do not just take an s (``UDP reply``, ``UDP replies``).
    """
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def port_number(text: str) -> int:
    """argparse type for a TCP/UDP port: a whole number from 0 to 65535."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("invalid port {text!r}: a port is a whole number from 0 to 65535").format(text=text)
        ) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            _("invalid port {value}: ports run from 0 to 65535 (16 bits)").format(value=value))
    return value


def checked_number(text: str, convert: Callable[[str], N], ok: Callable[[N], bool],
                   not_a_number: str, out_of_range: str) -> N:
    """The body of a numeric argparse type: ``convert(text)``, then ``ok(value)``.

    ``not_a_number`` and ``out_of_range`` are ``str.format`` templates for the
    one-line errors; they may use ``{text!r}`` (what the user typed) and, the
    second one, ``{value}`` (the converted number).
    """
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(not_a_number.format(text=text)) from None
    # nan and inf pass many range checks (nan compares false to everything);
    # no netlab option means them, so they are out of range everywhere.
    if isinstance(value, float) and not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(out_of_range.format(text=text, value=value))
    return value


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def print_json(value: Any) -> None:
    import json  # here, not at the top: most commands print no JSON, and start-up counts

    print(json.dumps(value, indent=2, sort_keys=False, default=_json_default), flush=True)


def _json_default(value: Any) -> Any:
    """What JSON cannot print itself: a table of rows (the stats dict's ports and
    flows, ``netlab.packet.stats.Rows``) as an array, anything else as its text."""
    from collections.abc import Sequence

    if isinstance(value, Sequence):
        return list(value)
    return str(value)


def terminal_width() -> Optional[int]:
    """Columns to fit output into: $COLUMNS, else the terminal's; None when
    output goes to a pipe or file (no terminal to fit: lines stay whole for grep).

    $COLUMNS beside a $LINES counts only on a terminal: GNU readline, which
    many programs load (Python's pdb and pytest among them), exports both
    into the environment of every child, so a child writing into a pipe with
    both set was not asked for a width by anyone.
    """
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0 and not os.environ.get("LINES"):
        return max(40, int(columns))
    try:
        if sys.stdout.isatty():
            return max(40, shutil.get_terminal_size().columns)
    except (AttributeError, ValueError, OSError):
        pass
    return None


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: a wide (Chinese) character takes two."""
    if text.isascii():
        return len(text)
    import unicodedata  # here, not at the top: start-up counts, and most text is ASCII

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(line: str, width: int, hang: int = 0) -> list:
    """``line`` cut into pieces of at most ``width`` columns, continuation pieces
    indented by ``hang``: at spaces, and between the characters of Chinese text,
    which has no spaces to break at."""
    if line.isascii():
        import textwrap  # here, not at the top: most commands never wrap a line (start-up counts)

        return textwrap.wrap(line, width, subsequent_indent=" " * hang,
                             break_on_hyphens=False) or [""]
    pieces, current = [], ""
    for char in line:
        if display_width(current + char) <= width:
            current += char
            continue
        cut = current.rfind(" ")
        if cut <= hang or not current[cut + 1:].isascii():
            cut = len(current)  # no space, or wide text after it: break right here
        pieces.append(current[:cut].rstrip())
        current = " " * hang + current[cut:].lstrip() + char
    return pieces + [current.rstrip()]


def status_width() -> int:
    """Room for a progress line rewritten in place with \\r: one column less than
    the terminal's, so it never wraps (a wrapped line cannot be rewritten)."""
    return max(20, shutil.get_terminal_size().columns - 1)


def print_wrapped(text: str, file=None, hang: int = 0) -> None:
    """Print prose wrapped to the terminal's width (whole lines into a pipe)."""
    file = file or sys.stdout
    width = terminal_width()
    for line in text.splitlines() or [""]:
        pieces = [line] if width is None else wrap(line, width, hang)
        for piece in pieces:
            print(piece, file=file)
    file.flush()


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str], file=None,
                width: Optional[int] = None) -> None:
    """Print rows as aligned columns under a header line (None shows as '-').

    A table wider than ``width`` (default: the terminal's, see
    :func:`terminal_width`; none into a pipe) wraps its last column onto
    continuation lines that start under the column; when even that cannot
    fit, the columns are split into tables printed one below the other, each
    starting with the first column (the row's name), so every line fits.
    """
    file = file or sys.stdout
    if width is None:
        width = terminal_width()
    text = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in text:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    for n, columns in enumerate(_column_groups(widths, width)):
        if n:
            print(file=file)
        _print_columns([[row[i] for i in columns] for row in text], [headers[i] for i in columns],
                       [widths[i] for i in columns], width, file)
    file.flush()


def _column_groups(widths: Sequence[int], width: Optional[int]) -> list:
    """Indexes of the columns of each table to print: all in one when the
    table fits ``width`` (its last column may wrap to 12 or more), else the
    first column followed by as many of the others as fit, group by group."""
    def fits(group):
        return sum(widths[i] + 2 for i in group[:-1]) + min(widths[group[-1]], 12) <= width

    everything = list(range(len(widths)))
    if width is None or len(widths) < 3 or fits(everything):
        return [everything]
    groups = [[0, 1]]
    for i in everything[2:]:
        if fits(groups[-1] + [i]):
            groups[-1].append(i)
        else:
            groups.append([0, i])
    return groups


def _print_columns(text: list, headers: Sequence[str], widths: list, width: Optional[int],
                   file) -> None:
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    last = widths[-1]
    if width is not None and indent + last > width and width - indent >= 12:
        last = width - indent
    line = "  ".join(_pad(h, w) for h, w in zip(headers, widths[:-1] + [last]))
    print(line.rstrip(), file=file)
    print("  ".join("-" * w for w in widths[:-1] + [last]), file=file)
    for row in text:
        head = "  ".join(_pad(c, w) for c, w in zip(row[:-1], widths[:-1]))
        pieces = wrap(row[-1], last) if display_width(row[-1]) > last else [row[-1]]
        for n, piece in enumerate(pieces or [""]):
            lead = head if n == 0 else " " * display_width(head)
            print(f"{lead}  {piece}".rstrip() if row[:-1] else piece.rstrip(), file=file)


def _pad(cell: str, width: int) -> str:
    return cell + " " * (width - display_width(cell))
