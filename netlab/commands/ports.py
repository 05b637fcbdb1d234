"""``netlab ports PORT|NAME ...``: range, IANA names over TCP and UDP, notes."""
from __future__ import annotations

import argparse

from netlab import ports
from netlab._cliutil import add_json_flag, print_json, print_table, print_wrapped
from netlab.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "ports",
        help="look up ports or service names: range, TCP/UDP names, teaching notes",
        description="For each PORT or service NAME: its range (well-known 0-1023, "
        "registered 1024-49151, dynamic 49152-65535), its IANA service name over TCP and "
        "over UDP, and notes (amplification, unprivileged alternatives, ports seen in "
        "attacks). Names come from the IANA registry shipped with netlab, not /etc/services.",
    )
    p.add_argument("items", nargs="*", metavar="PORT|NAME",
                   help="a port number 0-65535 or an IANA service name such as http or domain")
    p.add_argument("--range", action="store_true", dest="ranges",
                   help="show the three port ranges with how many names IANA assigned in each")
    add_json_flag(p)
    p.set_defaults(func=run)


def _run_ranges(args: argparse.Namespace) -> int:
    rows = ports.range_summary()
    if args.json:
        print_json(rows)
        return 0
    print_table([(r["range"], f"{r['first']}-{r['last']}", r["ports"], r["assigned"], r["tcp"], r["udp"])
                 for r in rows],
                ["range", "ports", "count", "assigned", "tcp names", "udp names"])
    print()
    print_wrapped(f"source: IANA service names and port numbers, {ports.registry_source()}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.ranges:
        if args.items:
            raise UsageError("give either PORT|NAME arguments or --range, not both")
        return _run_ranges(args)
    if not args.items:
        raise UsageError("give at least one PORT or NAME, e.g. 'netlab ports 80 domain' "
                         "(or --range for the three ranges)")
    found = []
    for item in args.items:
        found.extend(ports.lookup(item))
    if args.json:
        print_json(found)
        return 0
    print_table([(e["port"], e["range"], e["tcp"], e["udp"], e["description"]) for e in found],
                ["port", "range", "tcp", "udp", "description"])
    notes = [(e["port"], n) for e in found for n in e["notes"]]
    if notes:
        print()
        for port, note in notes:
            print_wrapped(f"{port}/{note['protocols']} [{note['topic']}] {note['note']}", hang=4)
    return 0
