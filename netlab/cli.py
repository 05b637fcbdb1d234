"""The ``netlab`` command line: parse, call the library, format, exit.

``python -m netlab`` and the ``netlab`` console script both land in
:func:`main`. Each command lives in ``netlab/commands/<name>.py`` and offers
``register(subparsers)``, which adds its parser(s) with ``set_defaults(func=...)``;
the function takes the parsed arguments and returns the exit status.

Exit statuses: 0 success, 1 a runtime problem (port in use, no privilege,
corrupt file...), 2 a usage error. Every error is one line on stderr that names
the problem and the way out; no command ever shows a traceback (set
``NETLAB_DEBUG=1`` to see one anyway).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

import netlab
from netlab.errors import NetlabError

__all__ = ["COMMAND_MODULES", "build_parser", "console_main", "main"]

# One module per command (or family of commands), in the order --help lists them.
# Each issue's owner uncomments its line when the module lands.
COMMAND_MODULES = (
    "netlab.commands.info",
    "netlab.commands.serve",          # echo discard chargen daytime time qotd (issue 3)
    "netlab.commands.ports",          # ports (issue 4)
    "netlab.commands.bindcheck",      # bindcheck (issue 4)
    "netlab.commands.independence",   # independence (issue 4)
    "netlab.commands.netstat",        # netstat (issue 4)
    "netlab.commands.scan",           # scan (issue 4)
    "netlab.commands.redirect",       # redirect (issue 4, impairments issue 6)
    "netlab.commands.dissect",        # dissect and sniff (issue 5)
    "netlab.commands.bench",          # bench udp|tcp|echo|parse (issues 5, 6)
    "netlab.commands.lab",            # lab list|show|check (issue 7)
    "netlab.commands.tour",           # tour (issue 8)
    "netlab.commands.net",            # net up|ls|run|down|firewall|redirect|rules|link (issue 14)
)


class NetlabArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: problem + way out."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
        message = " ".join(message.split())
        if "(see '" not in message:  # a type check may already name the way out
            message += f" (see '{self.prog} --help')"
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = NetlabArgumentParser(
        prog="netlab",
        description="netlab: learn ports and sockets by running them, on loopback.",
        epilog="Run 'netlab COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"netlab {netlab.__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(code: int, message: str) -> int:
    print(f"netlab: error: {_one_line(message)}", file=sys.stderr, flush=True)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    from netlab import sysinfo

    sysinfo.CLI_ACTIVE = True  # fallbacks to the slow twin may now say so on stderr
    try:
        # Building the parser imports every command module: a Ctrl-C that
        # lands here must not show a traceback either.
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except KeyboardInterrupt:
        print("netlab: interrupted", file=sys.stderr)
        return 130
    func = getattr(args, "func", None)
    if func is None:
        return _fail(2, "no command given (see 'netlab --help' for the list)")
    try:
        return int(func(args) or 0)
    except NetlabError as exc:
        return _fail(exc.exit_code, str(exc))
    except KeyboardInterrupt:
        print("netlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush stays quiet.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except OSError as exc:
        if os.environ.get("NETLAB_DEBUG"):
            raise
        detail = exc.strerror or str(exc)
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(1, f"{detail}{where}")
    except Exception as exc:  # noqa: BLE001 - the last guard against a traceback
        if os.environ.get("NETLAB_DEBUG"):
            raise
        return _fail(1, f"internal error: {type(exc).__name__}: {exc} "
                        "(please report it; NETLAB_DEBUG=1 shows the traceback)")


def console_main() -> None:
    """Entry point of the ``netlab`` console script and ``python -m netlab``."""
    sys.exit(main())
