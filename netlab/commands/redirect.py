"""``netlab redirect LISTEN_PORT TARGET_HOST:PORT``: port redirection, optionally lossy."""
from __future__ import annotations

import argparse
import json
import signal
import sys

from netlab import redirect
from netlab._cliutil import add_json_flag, checked_number, port_number, print_wrapped
from netlab.binding import parse_host


def probability(text: str) -> float:
    """argparse type: ``0.1`` or ``10%`` -> 0.1."""
    def convert(t: str) -> float:
        raw = t.strip()
        return float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)

    return checked_number(
        text, convert, lambda v: 0.0 <= v <= 1.0,
        "invalid probability {text!r}: give a number from 0 to 1 (or a percentage like 10%)",
        "invalid probability {text!r}: it must lie between 0 and 1")


def milliseconds(text: str) -> float:
    return checked_number(text, float, lambda v: 0 <= v <= 60000,
                          "invalid delay {text!r}: give milliseconds, e.g. 50",
                          "invalid delay {text!r}: give 0 to 60000 ms")


def seconds_type(text: str) -> float:
    return checked_number(text, float, lambda v: not v <= 0,
                          "invalid duration {text!r}: give seconds, e.g. 30",
                          "invalid duration {text!r}: it must be positive")


def target_type(text: str):
    try:
        return redirect.parse_target(text)
    except redirect.UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub) -> None:
    p = sub.add_parser(
        "redirect",
        help="forward a port to another (TCP and UDP), e.g. 80 to 8080; optionally a lossy link",
        description="Listen on LISTEN_PORT and forward to TARGET_HOST:PORT: TCP connections both "
        "ways with half-close respected, UDP datagrams with replies routed back to the right "
        "client. With --udp, --loss/--duplicate/--reorder/--delay/--seed turn the relay into an "
        "impaired link (reproducible with a seed); --delay also slows TCP, which still delivers "
        "every byte in order. Ctrl-C or SIGTERM stops it with a one-line summary. A target that "
        "is not this machine needs --authorized, as for 'netlab scan'.",
    )
    p.add_argument("listen_port", type=port_number, metavar="LISTEN_PORT",
                   help="the port to listen on (0: the OS chooses)")
    p.add_argument("target", type=target_type, metavar="TARGET_HOST:PORT",
                   help="where to forward, e.g. 127.0.0.1:8080 (a bare PORT means 127.0.0.1)")
    p.add_argument("--tcp", action="store_true", help="forward TCP (default: TCP and UDP)")
    p.add_argument("--udp", action="store_true", help="forward UDP (default: TCP and UDP)")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="address to listen on (default 127.0.0.1; ::1 or [::1] for IPv6, "
                   "0.0.0.0 for every address)")
    p.add_argument("--authorized", action="store_true",
                   help="the target is another machine that I own or may use (needed for a "
                   "target that is not this machine)")
    link = p.add_argument_group("lossy link (UDP; --delay also applies to TCP)")
    link.add_argument("--loss", type=probability, default=0.0, metavar="P",
                      help="drop each datagram with probability P (0-1 or N%%)")
    link.add_argument("--duplicate", type=probability, default=0.0, metavar="P",
                      help="send a datagram twice with probability P")
    link.add_argument("--reorder", type=probability, default=0.0, metavar="P",
                      help="hold a datagram back so the next one overtakes it, probability P")
    link.add_argument("--delay", type=milliseconds, default=0.0, metavar="MS",
                      help="delay everything by MS milliseconds")
    link.add_argument("--seed", type=int, metavar="N",
                      help="seed the random choices: the same traffic meets the same fate")
    p.add_argument("--udp-idle", type=seconds_type, default=30.0, metavar="S",
                   help="forget a UDP client after S idle seconds (default 30)")
    p.add_argument("--seconds", type=seconds_type, metavar="S",
                   help="stop by itself after S seconds")
    add_json_flag(p)
    p.epilog = "--json prints the final counters as one JSON line instead of the summary."
    p.set_defaults(func=run)


def _link(args: argparse.Namespace, protocols) -> str:
    impaired = args.loss or args.duplicate or args.reorder
    if not (impaired or args.delay):
        return ""
    link = (f" over a {'lossy' if impaired else 'slow'} link: loss {args.loss:g}, duplicate "
            f"{args.duplicate:g}, reorder {args.reorder:g}, delay {args.delay:g} ms"
            + (f", seed {args.seed}" if args.seed is not None else ""))
    if impaired and "tcp" in protocols:
        link += " (loss/duplicate/reorder on UDP only)"
    return link


def run(args: argparse.Namespace) -> int:
    protocols = tuple(proto for proto, on in (("tcp", args.tcp), ("udp", args.udp)) if on) \
        or ("tcp", "udp")
    host, port = args.target
    relay = redirect.Redirector(args.listen_port, host, port, host=parse_host(args.host),
                                protocols=protocols, loss=args.loss, duplicate=args.duplicate,
                                reorder=args.reorder, delay_ms=args.delay, seed=args.seed,
                                udp_idle=args.udp_idle, authorized=args.authorized)

    def stop(signum, frame):  # runs in this (the loop's) thread, between selector calls
        relay.stop()

    # Handlers go in before the "listening" lines: whoever reads them may
    # signal us at once, and must get the clean stop.
    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for url in relay.listen_urls():
            print(f"listening on {url}", flush=True)
        print_wrapped(f"forwarding to {relay.stats()['target']}{_link(args, protocols)}; "
                      "Ctrl-C stops", hang=2)
        relay.run(args.seconds)
    finally:
        relay.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if args.json:
        print(json.dumps(relay.stats()), flush=True)
    else:
        print_wrapped(relay.summary(), hang=2)
    sys.stdout.flush()
    return 0
