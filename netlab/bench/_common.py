"""What the ``netlab bench`` experiments share: backends, progress, output, plots.

* :func:`netio` picks the socket loops: the compiled ``netlab._netio`` or its
  readable twin ``netlab._pynetio`` (same names, same results).
* :class:`Progress` draws one live line (rate so far, loss so far) on a
  terminal, and nothing otherwise, so pipes and ``--json`` stay clean.
* :func:`emit` prints the final table or the JSON document; :func:`plot`
  draws a PNG with matplotlib (the optional extra ``plot``).
* :func:`add_common_flags` gives every experiment ``--seconds``, ``--json``
  and ``--plot FILE.png`` with the same meaning.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import struct
import sys
import textwrap
import threading
import time
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence, Tuple

from netlab._cliutil import (add_json_flag, checked_number, print_json, print_table, print_wrapped,
                             status_width)
from netlab.errors import NetlabError, UsageError
from netlab.services.table import facts as service_facts

__all__ = [
    "BACKENDS",
    "Progress",
    "StopFlag",
    "add_common_flags",
    "byte_count",
    "check_target_port",
    "emit",
    "host_port",
    "name_list",
    "netio",
    "percentile",
    "plot",
    "positive_float",
    "positive_int",
    "timeval",
]

BACKENDS = ("cython", "python")
MAX_SECONDS = 3600.0
#: The port of the example in error messages, netlab echo's default.
_ECHO_PORT = service_facts("echo").default_port


def netio(backend: Optional[str] = None) -> ModuleType:
    """The socket-loop module for ``backend`` (``"cython"``, ``"python"`` or None = best).

    ``NETLAB_PURE_PYTHON=1`` makes the default the Python twin. Asking for
    ``cython`` when the compiled module is not built is a runtime error that
    names the rebuild command.
    """
    if backend is None:
        from netlab._twins import pure_python_requested

        backend = "python" if pure_python_requested() else "cython"
    if backend == "python":
        from netlab import _pynetio

        return _pynetio
    if backend == "cython":
        try:
            from netlab import _netio
        except ImportError:
            raise NetlabError(
                "the compiled socket loops netlab._netio are not built; rebuild with "
                "'python setup.py build_ext --inplace' or use --backend python") from None
        return _netio
    raise UsageError(f"unknown backend {backend!r}: choose cython or python")


def timeval(seconds: float) -> bytes:
    """``seconds`` as a C ``struct timeval``, the value of SO_SNDTIMEO / SO_RCVTIMEO."""
    whole = int(seconds)
    return struct.pack("@ll", whole, int((seconds - whole) * 1e6))


# --- argparse types ----------------------------------------------------------

def positive_int(text: str) -> int:
    return checked_number(text, lambda t: int(t, 10), lambda v: v > 0,
                          "invalid number {text!r}: expected a whole number",
                          "invalid number {value}: must be at least 1")


_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def byte_count(text: str) -> int:
    """A size in bytes: ``65536``, or with a binary suffix as iperf3 takes it: ``64K``, ``8M``, ``1G``."""
    raw = text.strip()
    mult = 1
    if raw[-1:].lower() in _UNITS:
        mult = _UNITS[raw[-1].lower()]
        raw = raw[:-1]
    try:
        value = int(raw, 10) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: bytes as a whole number, e.g. 65536, 64K or 8M") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be at least 1 byte")
    return value


def positive_float(text: str) -> float:
    return checked_number(text, float, lambda v: math.isfinite(v) and v > 0,
                          "invalid number {text!r}: expected e.g. 2 or 0.5",
                          "invalid value {text!r}: must be a positive number")


def seconds_value(text: str) -> float:
    value = positive_float(text)
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: at most {MAX_SECONDS:.0f} seconds per run")
    return value


def name_list(text: str, allowed: Sequence[str], flag: str, example: str) -> List[str]:
    """A comma-separated list of names, each one of ``allowed`` (when known): ``a,b``."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"empty {flag}: name one, e.g. {example}")
    for name in names:
        if allowed and name not in allowed:
            raise argparse.ArgumentTypeError(
                f"unknown {flag.lstrip('-')} {name!r}: choose from {', '.join(allowed)} "
                "(several: join them with commas)")
    return names


def host_port(text: str) -> Tuple[str, int]:
    """argparse type for ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(
            f"invalid target {text!r}: expected HOST:PORT, e.g. 127.0.0.1:{_ECHO_PORT}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        value = int(port, 10)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"invalid port in target {text!r}: a port is a whole number from 1 to 65535")
    return host, value


def add_common_flags(p: argparse.ArgumentParser, seconds: float) -> None:
    p.add_argument("--seconds", type=seconds_value, default=seconds, metavar="S",
                   help=f"how long to measure (default {seconds:g}; every run stops by itself)")
    add_json_flag(p)
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw the result as a PNG (needs matplotlib: pip install 'netlab[plot]')")


def check_target_port(args: argparse.Namespace, proto: str) -> None:
    """--target forwards to the receiver, so the receiver's --port must be fixed."""
    if args.target and not args.port:
        raise UsageError("--target needs --port: the forwarder at the target must know "
                         "where the receiver listens (e.g. --port 9000 with "
                         f"'netlab redirect 9001 127.0.0.1:9000 --{proto}')")


def check_plot_path(path: Optional[str]) -> None:
    """Fail early (usage error) on a --plot path we could not write, before measuring."""
    if path is None:
        return
    if not path.lower().endswith(".png"):
        raise UsageError(f"--plot {path!r}: the plot is a PNG file, name it FILE.png")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--plot {path!r}: folder {folder} does not exist; create it first")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise NetlabError("--plot needs matplotlib, which is not installed; "
                          "install it with: pip install 'netlab[plot]'") from None


# --- Ctrl-C -------------------------------------------------------------------

class StopFlag:
    """Turns the first Ctrl-C into a flag the measuring loops look at.

    A KeyboardInterrupt raised between a fast loop's return and the line that
    stores its count would lose that count; a flag loses nothing. The loops
    return to Python every few tens of milliseconds, so the run stops at
    once and reports what it measured. A second Ctrl-C interrupts for real.
    Outside the main thread (library use) signals are left alone.
    """

    def __init__(self) -> None:
        self.set = False
        self._old: Any = None

    def _handler(self, signum, frame) -> None:
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


def stop_context(stop: Optional[StopFlag]):
    """``stop`` as is when the caller owns one, else a fresh StopFlag."""
    return contextlib.nullcontext(stop) if stop is not None else StopFlag()


# --- live progress -----------------------------------------------------------

class Progress:
    """One status line redrawn in place on a terminal (stderr); silent otherwise."""

    def __init__(self, enabled: Optional[bool] = None, stream=None) -> None:
        self.stream = stream or sys.stderr
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = bool(enabled)
        self._last = 0.0
        self._width = 0

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        text = text[:status_width()]
        pad = max(self._width - len(text), 0)
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def si(value: float, unit: str = "") -> str:
    """12345678 -> '12.35 M' (for progress lines)."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def percentile(sorted_values: Sequence[float], p: float) -> Optional[float]:
    """Nearest-rank percentile ``p`` (0-100) of an already sorted sequence."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --- output ------------------------------------------------------------------

def emit(args: argparse.Namespace, results: List[Dict[str, Any]], columns: Sequence[Tuple[str, str]],
         notes: Sequence[str] = (), single: bool = True) -> None:
    """Print ``results`` as JSON (one object, or a list) or as a table with notes."""
    if getattr(args, "json", False):
        print_json(results[0] if single and len(results) == 1 else results)
        return
    print_table([[_cell(r.get(key), key) for key, _ in columns] for r in results],
                [title for _, title in columns])
    for note in notes:
        print_wrapped(note, hang=2)
    sys.stdout.flush()


_PLAIN = ("size", "clients", "buffer", "rcvbuf")


def _cell(value: Any, key: str = "") -> Any:
    if key in _PLAIN:
        return value
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def plot(path: str, title: str, xlabel: str, labels: Sequence[str],
         series: Sequence[Tuple[str, Sequence[float]]], ylabel2: Optional[Tuple[str, Sequence[float]]] = None,
         command: str = "") -> str:
    """Draw grouped bars: one group per label, one bar per series; return the path.

    ``ylabel2`` optionally adds a line on a second axis (e.g. loss in % over
    sizes). The command that produced the figure is written under it.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise NetlabError("--plot needs matplotlib, which is not installed; "
                          "install it with: pip install 'netlab[plot]'") from None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    n = max(len(series), 1)
    width = 0.8 / n
    xs = list(range(len(labels)))
    for k, (name, values) in enumerate(series):
        ax.bar([x - 0.4 + width * (k + 0.5) for x in xs], values, width, label=name)
    ax.set_xticks(xs)
    ax.set_xticklabels(labels)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(loc="upper left")
    if len(series) == 1:
        ax.set_ylabel(series[0][0])
    if ylabel2:
        ax2 = ax.twinx()
        ax2.plot(xs, ylabel2[1], "o-", color="tab:red")
        ax2.set_ylabel(ylabel2[0], color="tab:red")
        ax2.set_ylim(bottom=0)
    lines = textwrap.wrap(command, 100) if command else []
    if lines:
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, family="monospace", color="0.35")
    fig.tight_layout(rect=(0, 0.02 + 0.035 * len(lines), 1, 1))
    try:
        fig.savefig(path)
    except OSError as exc:
        raise NetlabError(f"cannot write the plot {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


def command_line(argv: Optional[Sequence[str]] = None) -> str:
    """The command as typed, for plot captions: ``netlab bench udp --sweep ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return "netlab " + " ".join(argv)


def listening_printer(args: argparse.Namespace):
    """Where a ``--server`` says it listens: stdout, or stderr under --json (stdout stays JSON)."""
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout

    def show(line: str) -> None:
        print_wrapped(line, file=stream, hang=2)

    return show
