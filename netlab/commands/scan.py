"""``netlab scan [HOST] [PORTS] [--udp]``: TCP connect scan and UDP probe."""
from __future__ import annotations

import argparse
import re
import sys

from netlab import scan
from netlab._cliutil import add_json_flag, checked_number, print_json, print_table, print_wrapped

# A lone argument made only of digits, commas and dashes is a port list, not a
# host: 'netlab scan 7,13,19' scans this machine (a bare number such as 7007
# would otherwise be read as the IPv4 address 0.0.27.95).
_PORT_LIST = re.compile(r"[0-9][0-9,\- ]*")


def _number(kind: str, what: str, minimum: float, strict: bool):
    """argparse type: a finite number >= minimum (> minimum when ``strict``)."""
    convert = int if kind == "int" else float
    bound = f"more than {minimum:g}" if strict else f"at least {minimum:g}"

    def parse(text: str):
        return checked_number(text, convert,
                              (lambda v: v > minimum) if strict else (lambda v: v >= minimum),
                              f"invalid {what} {{text!r}}: give a number",
                              f"invalid {what} {{text!r}}: must be {bound}")
    return parse


# Up to this many ports the table lists every port; above it only the
# interesting ones (not closed), as nmap does.
_SHOW_ALL_UP_TO = 30


def register(sub) -> None:
    p = sub.add_parser(
        "scan",
        help="scan ports of this machine: TCP connect scan, UDP probe (own hosts only)",
        description="Scan PORTS of HOST (default 127.0.0.1, ports 1-1024): a TCP connect scan, "
        "or with --udp a UDP probe that reads ICMP port unreachable as closed and silence as "
        "open|filtered. Concurrency and rate are bounded. " + scan.ETHICS_NOTE
        + " Hosts other than this machine are refused unless you pass --authorized.",
    )
    p.add_argument("host", nargs="?", default="127.0.0.1", metavar="HOST",
                   help="the host to scan (default 127.0.0.1)")
    p.add_argument("ports", nargs="?", default=None, metavar="PORTS",
                   help="ports like 1-1024, 7,13,19 or 7,10-20 (default 1-1024)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--tcp", action="store_true", help="TCP connect scan (the default)")
    which.add_argument("--udp", action="store_true", help="UDP probe scan")
    p.add_argument("--concurrency", type=_number("int", "count", 1, False), metavar="N",
                   help="probes in flight at once (default 500 on this machine; another "
                   "host: 100 TCP, 20 UDP)")
    p.add_argument("--rate", type=_number("float", "rate", 0, True), metavar="PPS",
                   help="new probes per second at most (default: no limit on this machine; "
                   "another host: 500 TCP, 100 UDP)")
    p.add_argument("--timeout", type=_number("float", "timeout", 0, True), metavar="S",
                   help="seconds to wait for an answer per probe (default 1)")
    p.add_argument("--retries", type=_number("int", "count", 0, False), default=1, metavar="N",
                   help="UDP: probe silent ports N more times (default 1)")
    p.add_argument("--payload", default="", metavar="TEXT",
                   help="UDP: send TEXT in each probe (default: an empty datagram)")
    p.add_argument("--all", action="store_true", dest="show_all",
                   help="list closed ports too (they are hidden above 30 ports)")
    p.add_argument("--authorized", action="store_true",
                   help="I own HOST or have permission to scan it (needed for other hosts)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.ports is None:
        if _PORT_LIST.fullmatch(args.host) and args.host != "127.0.0.1":
            args.host, args.ports = "127.0.0.1", args.host
        else:
            args.ports = "1-1024"
    ports = scan.parse_ports(args.ports)
    proto = "udp" if args.udp else "tcp"
    # Refuse before saying anything else; scan the address resolved here, so
    # the name is not looked up (and checked) a second time.
    ip = scan.check_target(args.host, args.authorized)
    if not args.json:
        print_wrapped(f"note: {scan.ETHICS_NOTE}", file=sys.stderr, hang=2)
    results = scan.scan(ip, ports, proto, concurrency=args.concurrency, rate=args.rate,
                        timeout=args.timeout, retries=args.retries, allow_remote=args.authorized,
                        payload=args.payload.encode())
    if args.json:
        print_json([{k: r[k] for k in ("port", "proto", "state", "service")} for r in results])
        return 0
    show_all = args.show_all or len(results) <= _SHOW_ALL_UP_TO
    shown = [r for r in results if show_all or r["state"] != "closed"]
    counts = {}
    for r in results:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    shown_host = args.host if ip == args.host else f"{args.host} ({ip})"
    print(f"scan of {shown_host} ({proto}, {len(ports)} ports)")
    if shown:
        print_table([(f"{r['port']}/{r['proto']}", r["state"], r["service"], r["detail"]) for r in shown],
                    ["port", "state", "service", "why"])
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    hidden = len(results) - len(shown)
    print(f"\n{summary}" + (f" ({hidden} closed not listed; --all lists them)" if hidden else ""))
    return 0
