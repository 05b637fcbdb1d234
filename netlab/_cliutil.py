"""Small helpers shared by the command modules: argument types and output."""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable, Iterable, Sequence, TypeVar

__all__ = ["add_json_flag", "checked_number", "port_number", "print_json", "print_table"]

N = TypeVar("N", int, float)


def port_number(text: str) -> int:
    """argparse type for a TCP/UDP port: a whole number from 0 to 65535."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid port {text!r}: a port is a whole number from 0 to 65535"
        ) from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"invalid port {value}: ports run from 0 to 65535 (16 bits)"
        )
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
    print(json.dumps(value, indent=2, sort_keys=False, default=str), flush=True)


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str], file=None) -> None:
    """Print rows as aligned columns under a header line (None shows as '-')."""
    file = file or sys.stdout
    text = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line.rstrip(), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for row in text:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=file)
    file.flush()
