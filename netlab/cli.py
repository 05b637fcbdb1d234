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
from netlab._i18n import _
from netlab.errors import NetlabError

__all__ = ["ALL", "COMMANDS", "COMMAND_MODULES", "build_parser", "console_main", "main"]

# Every command: its name -> (the module that registers it, its one-line help),
# in the order --help lists them. Adding a command is one line here. A module
# is imported only when its command runs (start-up stays small: `dissect`
# never pays for the servers), while --help lists every command from this
# table; tests/test_dissect_startup.py checks that each summary is the help
# its module registers.
COMMANDS = {
    "info": ("netlab.commands.info",
             "show version, packet backend, Python, platform and port privileges"),
    "echo": ("netlab.commands.serve", "echo server or client (RFC 862): sends back every "
             "byte (TCP until you close; UDP per datagram)"),
    "discard": ("netlab.commands.serve", "discard server or client (RFC 863): reads and "
                "drops everything, answers nothing"),
    "chargen": ("netlab.commands.serve", "chargen server or client (RFC 864): streams "
                "72-character lines of printable ASCII (UDP: 0-512 characters)"),
    "daytime": ("netlab.commands.serve", "daytime server or client (RFC 867): sends the "
                "date and time as one ASCII line, then closes"),
    "time": ("netlab.commands.serve", "time server or client (RFC 868): sends 4 bytes: "
             "seconds since 1900-01-01 UTC, big-endian, then closes"),
    "qotd": ("netlab.commands.serve", "qotd server or client (RFC 865): sends one quote "
             "of the day, then closes"),
    "ports": ("netlab.commands.ports",
              "look up ports or service names: range, TCP/UDP names, teaching notes"),
    "bindcheck": ("netlab.commands.bindcheck",
                  "try to bind a port and explain the result (privileges, port in use)"),
    "independence": ("netlab.commands.independence", "bind TCP and UDP on one port (both "
                     "succeed), then a second TCP socket (fails)"),
    "netstat": ("netlab.commands.netstat", "list TCP/UDP sockets like 'netstat -a -n', "
                "with owning process and service name"),
    "scan": ("netlab.commands.scan",
             "scan ports of this machine: TCP connect scan, UDP probe (own hosts only)"),
    "redirect": ("netlab.commands.redirect", "forward a port to another (TCP and UDP), "
                 "e.g. 80 to 8080; optionally a lossy link"),
    "dissect": ("netlab.commands.dissect",
                "decode a pcap or pcapng file, one line per packet (or --stats)"),
    "sniff": ("netlab.commands.dissect",
              "capture live on loopback and show TCP handshakes (root or CAP_NET_RAW)"),
    "bench": ("netlab.commands.bench", "throughput experiments: UDP loss, TCP bulk rate, "
              "echo round trips, latency, parse speed"),
    "lab": ("netlab.commands.lab",
            "the course labs: list, show a handout, check your code, get a starter, grade a class"),
    "tour": ("netlab.commands.tour", "the whole port lesson, live on loopback, in under a minute"),
    "net": ("netlab.commands.net",
            "a network of hosts on one machine: namespaces, firewall, kernel redirect (root)"),
}

# The command modules, each once, in --help order.
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))

ALL = object()  # build_parser(ALL): every command module registers its full parser


class NetlabArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: problem + way out."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
        message = " ".join(message.split())
        if "(see '" not in message and "（见 '" not in message:  # a type check may name the way out
            message += _(" (see '{prog} --help')").format(prog=self.prog)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(command=ALL) -> argparse.ArgumentParser:
    """The whole parser (default), or one that imports only ``command``'s module.

    With ``command`` a name from :data:`COMMANDS`, that command's module adds
    its real parser(s) and every other command gets a placeholder with its
    one-line help (enough for --help and for "invalid choice" errors); with
    ``command=None`` every command is a placeholder (plain ``netlab --help``).
    """
    parser = NetlabArgumentParser(
        prog="netlab",
        description="netlab: learn ports and sockets by running them, on loopback.",
        epilog="Run 'netlab COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"netlab {netlab.__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    if command is ALL:
        wanted = set(COMMAND_MODULES)
    else:
        wanted = {COMMANDS[command][0]} if command in COMMANDS else set()
    registered = set()
    for name, (module, summary) in COMMANDS.items():
        if module not in wanted:
            sub.add_parser(name, help=summary, add_help=False)
        elif module not in registered:
            registered.add(module)
            importlib.import_module(module).register(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list) -> argparse.Namespace:
    """Parse ``argv``; file names after options join a command's list of files.

    argparse takes a command's positionals in one run, so in
    ``dissect a.pcap --parquet out b.pcap`` the ``b.pcap`` would be refused.
    A command that sets the default ``late_positionals`` to the name of its
    list argument gets such words appended to that list instead.
    """
    args, extra = parser.parse_known_args(argv)
    late = getattr(args, "late_positionals", None)
    if extra and late and not any(word.startswith("-") and word != "-" for word in extra):
        getattr(args, late).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _chosen(argv: Sequence[str]) -> Optional[str]:
    """The command word of ``argv``: the first argument that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(code: int, message: str) -> int:
    print(f"netlab: error: {_one_line(message)}", file=sys.stderr, flush=True)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    from netlab import _twins

    _twins.CLI_ACTIVE = True  # fallbacks to the slow twin may now say so on stderr
    try:
        # Building the parser imports the chosen command's module: a Ctrl-C
        # that lands here must not show a traceback either.
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(_chosen(argv))
        args = _parse(parser, argv)
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
