"""``netlab SERVICE``: run a server, or with ``--client`` the paired client.

Six subcommands, one per service: echo, discard, chargen, daytime, time,
qotd. The work is done by :mod:`netlab.servers` and :mod:`netlab.clients`;
this module parses, prints and maps errors to exit statuses.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time as _time
from typing import List, Optional

from netlab import clients, servers, services
from netlab._cliutil import checked_number, counted, port_number, print_json, print_wrapped
from netlab.binding import parse_host
from netlab.errors import UsageError
from netlab.servers import DEFAULT_MODEL, DEFAULT_PORTS, MODELS, Limits

__all__ = ["register", "run"]

_POLL = 0.1  # s between checks of the stop flag: the longest a signal waits to be seen

def _positive_float(text: str) -> float:
    return checked_number(text, float, lambda v: v > 0,
                          "invalid number {text!r}: give seconds, e.g. 2.5",
                          "invalid value {text!r}: must be more than 0")


def _idle_timeout(text: str) -> float:
    """Seconds, or ``inf`` for no limit."""
    if text.strip().lower() in ("inf", "infinity"):
        return math.inf
    return checked_number(text, float, lambda v: v > 0,
                          "invalid number {text!r}: give seconds, e.g. 30, or inf for no limit",
                          "invalid value {text!r}: more than 0 seconds, or inf for no limit")


def _count(minimum: int):
    def parse(text: str) -> int:
        return checked_number(text, lambda t: int(t, 10), lambda v: v >= minimum,
                              "invalid count {text!r}: a whole number",
                              f"invalid count {{value}}: at least {minimum}")
    return parse


def _rate(text: str) -> float:
    return checked_number(text, float, lambda v: v >= 0,
                          "invalid rate {text!r}: replies per second, 0 for no limit",
                          "invalid rate {text!r}: 0 (no limit) or more")


def register(sub) -> None:
    defaults = Limits()
    for row in services.SERVICE_TABLE:
        name, rfc, port = row.name, row.rfc, row.default_port
        p = sub.add_parser(
            name,
            help=f"{name} server or client (RFC {rfc}): {row.summary}",
            description=f"The {name} service of RFC {rfc}: {row.summary}. Without --client "
            f"it runs a server on TCP and UDP (port {port} unless PORT is given; 0 lets "
            "the OS choose); with --client it talks to one.",
        )
        kind = p.add_mutually_exclusive_group()
        kind.add_argument("--tcp", action="store_true", help="TCP only")
        kind.add_argument("--udp", action="store_true", help="UDP only")
        p.add_argument("port", nargs="?", type=port_number, metavar="PORT",
                       help=f"port number (default {port}; 0: the OS picks, server only)")
        p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                       help="address to bind or connect to (default 127.0.0.1; ::1 for IPv6)")
        server = p.add_argument_group("server options")
        server.add_argument("--model", choices=MODELS, default=None,
                            help=f"concurrency model (default {DEFAULT_MODEL}); threaded starts "
                            "a thread per connection, so a burst of thousands of connects "
                            "overflows the kernel's accept queue (1024, capped by "
                            "net.core.somaxconn) and late clients are dropped")
        server.add_argument("--idle-timeout", type=_idle_timeout, default=None,
                            metavar="SECONDS", help="close a TCP connection idle this long "
                            f"(default {defaults.idle_timeout:g}; inf: no limit)")
        server.add_argument("--max-connections", type=_count(1), default=None, metavar="N",
                            help="TCP connections served at once; more are closed at once "
                            f"(default {defaults.max_connections})")
        server.add_argument("--udp-rate", type=_rate, default=None, metavar="N",
                            help="UDP replies per second to one source address, 0 for no "
                            f"limit (default {defaults.udp_rate:g})")
        client = p.add_argument_group("client options")
        client.add_argument("--client", action="store_true",
                            help="run the client instead of a server (TCP unless --udp)")
        if name in ("echo", "discard"):
            client.add_argument("-m", "--message", metavar="TEXT", default=None,
                                help="send TEXT plus a newline instead of reading stdin")
        if name == "chargen":
            client.add_argument("--lines", type=_count(0), default=10, metavar="N",
                                help="lines to print, then close (UDP: replies; default 10)")
        client.add_argument("--timeout", type=_positive_float, default=None, metavar="SECONDS",
                            help=f"wait this long for an answer (default: TCP "
                            f"{clients.DEFAULT_TIMEOUT:g}, UDP {clients.DEFAULT_UDP_TIMEOUT:g})")
        client.add_argument("--retries", type=_count(0), default=clients.DEFAULT_RETRIES,
                            metavar="N", help="UDP: send again N times when no reply comes "
                            f"(default {clients.DEFAULT_RETRIES})")
        if name in ("daytime", "time", "qotd", "chargen"):
            client.add_argument("--json", action="store_true",
                                help="client: print the answer as JSON")
        p.set_defaults(func=run, service=name)


def run(args: argparse.Namespace) -> int:
    args.host = parse_host(args.host)   # "" is a usage error, [::1] means ::1
    if args.client:
        return _run_client(args)
    return _run_server(args)


# -- server ---------------------------------------------------------------------
def _run_server(args: argparse.Namespace) -> int:
    misused = [flag for flag, value in (("-m/--message", getattr(args, "message", None)),
                                        ("--timeout", args.timeout),
                                        ("--json", getattr(args, "json", False)))
               if value]
    if misused:
        raise UsageError(f"{misused[0]} is a client option: add --client, or drop it "
                         "to run a server")
    protocols = ("tcp",) if args.tcp else ("udp",) if args.udp else ("tcp", "udp")
    port = DEFAULT_PORTS[args.service] if args.port is None else args.port
    if args.udp_rate == 0 and "udp" in protocols:
        print_wrapped("netlab: warning: --udp-rate 0 switches off the UDP rate limits: a loop "
                      "with another UDP server (started by one forged datagram) can then run "
                      "for ever", file=sys.stderr, hang=2)
    stop = _StopFlag()
    previous = _install_signal_handlers(stop)
    try:
        handle = servers.start_server(
            args.service, host=args.host, port=port, protocols=protocols,
            model=args.model or DEFAULT_MODEL, idle_timeout=args.idle_timeout,
            max_connections=args.max_connections, udp_rate=args.udp_rate)
        started = _time.monotonic()
        wakeup = _point_signals_at(handle)
        try:
            for url in handle.urls:
                print(f"listening on {url}", flush=True)
            # A plain sleep, not Event.wait(): a signal handler that calls
            # Event.set() can deadlock when the signal lands while this very
            # thread holds the Event's internal lock inside wait().
            while not stop.requested and handle.error is None:
                _time.sleep(_POLL)
        finally:
            _point_signals_at(None, wakeup)
            totals = handle.stop()
    finally:
        _restore_signal_handlers(previous)
    seconds = _time.monotonic() - started
    print_wrapped(f"stopped {args.service} ({handle.model}) after {seconds:.1f} s: "
                  f"{counted(totals['connections'], 'connection')}, "
                  f"{counted(totals['datagrams'], 'datagram')}, "
                  f"{counted(totals['bytes_in'], 'byte')} in, "
                  f"{counted(totals['bytes_out'], 'byte')} out" + _withheld(totals), hang=2)
    if handle.error is not None:
        print(f"netlab: error: the server stopped on an internal error: "
              f"{type(handle.error).__name__}: {handle.error}", file=sys.stderr, flush=True)
        return 1
    return 0


def _withheld(totals: dict) -> str:
    """Say why UDP replies were not sent, so a lossy-looking run is explained."""
    parts = []
    if totals.get("udp_looped"):
        parts.append(f"{counted(totals['udp_looped'], 'UDP reply', 'UDP replies')} to service "
                     "or privileged ports or to a looping endpoint (loop guard)")
    if totals.get("udp_limited"):
        parts.append(f"{counted(totals['udp_limited'], 'UDP reply', 'UDP replies')} over --udp-rate")
    if totals.get("rejected"):
        parts.append(f"{counted(totals['rejected'], 'connection')} over --max-connections")
    return f"; withheld: {', '.join(parts)}" if parts else ""


class _StopFlag:
    """Set by SIGINT/SIGTERM. The handler only stores a value: it takes no lock,
    so it cannot deadlock whatever the main thread was doing when it ran."""

    def __init__(self) -> None:
        self.requested: Optional[int] = None

    def __call__(self, signum: int, frame) -> None:
        self.requested = signum


def _install_signal_handlers(stop: _StopFlag) -> dict:
    """SIGINT and SIGTERM set ``stop``: the server closes cleanly, exit 0."""
    previous = {}
    if threading.current_thread() is not threading.main_thread():
        return previous  # signals only reach the main thread; called from a test thread
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, stop)
    return previous


def _point_signals_at(handle, previous: int = -1) -> int:
    """Let a signal wake the server's loops directly (``signal.set_wakeup_fd``).

    The handler above runs only when the main thread holds the GIL, which a
    threaded server starting thousands of threads can delay by seconds; the
    wake-up byte stops the serving loops at once. ``handle`` None restores
    ``previous``. Returns the descriptor that was set before.
    """
    if threading.current_thread() is not threading.main_thread():
        return -1
    try:
        return signal.set_wakeup_fd(handle.wakeup_fd if handle is not None else previous)
    except (ValueError, OSError):
        return -1


def _restore_signal_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


# -- client ---------------------------------------------------------------------
def _run_client(args: argparse.Namespace) -> int:
    misused = [flag for flag, value in (("--model", args.model),
                                        ("--idle-timeout", args.idle_timeout),
                                        ("--max-connections", args.max_connections),
                                        ("--udp-rate", args.udp_rate)) if value is not None]
    if misused:
        raise UsageError(f"{misused[0]} is a server option: drop it, or drop --client")
    if args.port == 0:
        raise UsageError("port 0 means 'any port' to a server; a client needs the server's "
                         "port (see its 'listening on' line)")
    proto = "udp" if args.udp else "tcp"
    port = DEFAULT_PORTS[args.service] if args.port is None else args.port
    common = dict(host=args.host, port=port, timeout=args.timeout)
    service = args.service
    as_json = getattr(args, "json", False)
    if service == "echo":
        return _echo_client(args, proto, port)
    if service == "discard":
        return _discard_client(args, proto, port)
    if service == "time":
        when, raw = clients.time(proto, retries=args.retries, **common)
        if as_json:
            print_json({"utc": when.isoformat(), "raw": raw})
        else:
            print_wrapped(f"{when:%Y-%m-%d %H:%M:%S} UTC  (raw {raw} = 0x{raw:08x} "
                          "seconds since 1900-01-01 00:00 UTC)", hang=2)
        return 0
    if service in ("daytime", "qotd"):
        fetch = clients.daytime if service == "daytime" else clients.qotd
        text = fetch(proto, retries=args.retries, **common)
        if as_json:
            print_json({service: text})
        else:
            print(text, flush=True)
        return 0
    lines = clients.chargen(proto, lines=args.lines, retries=args.retries, **common)
    if proto == "udp":
        lines = _reply_lines(lines)[:args.lines]
    if as_json:
        print_json({"lines": lines})
    else:
        for line in lines:
            print(line)
        sys.stdout.flush()
    return 0


def _reply_lines(replies: List[str]) -> List[str]:
    """The lines of UDP chargen replies, so ``--lines N`` prints exactly N lines.

    A netlab reply is one run of 0-512 characters (one line, maybe empty); other
    servers (xinetd) put several CR LF-ended lines in one datagram.
    """
    out: List[str] = []
    for reply in replies:
        parts = reply.replace("\r\n", "\n").split("\n")
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()  # the line end of the last line, not an extra empty line
        out.extend(parts)
    return out


def _message_or_stdin(args: argparse.Namespace) -> Optional[bytes]:
    if args.message is None:
        return None
    return args.message.encode("utf-8") + b"\n"


def _stdin_lines() -> List[bytes]:
    return list(iter(sys.stdin.buffer.readline, b""))


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _echo_client(args: argparse.Namespace, proto: str, port: int) -> int:
    message = _message_or_stdin(args)
    timeout = args.timeout
    lines = [message] if message is not None else iter(sys.stdin.buffer.readline, b"")
    if proto == "tcp":
        wait = clients.DEFAULT_TIMEOUT if timeout is None else timeout
        for reply in clients.tcp_echo_lines(args.host, port, lines, wait):
            _write(reply)  # each echo as it comes, so a wrong answer is seen before the error
        return 0
    wait = clients.DEFAULT_UDP_TIMEOUT if timeout is None else timeout
    for datagram in lines:
        _write(clients.udp_echo(args.host, port, datagram, wait, args.retries))
    return 0


def _discard_client(args: argparse.Namespace, proto: str, port: int) -> int:
    message = _message_or_stdin(args)
    data = message if message is not None else b"".join(_stdin_lines())
    sent = clients.discard(proto, args.host, port, data, args.timeout)
    print(f"sent {counted(sent, 'byte')} to {servers.format_url(proto, args.host, port)} "
          "(discard answers nothing)", flush=True)
    return 0
