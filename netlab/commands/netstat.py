"""``netlab netstat [--tcp|--udp] [--listening]``: sockets like ``netstat -a -n``."""
from __future__ import annotations

import argparse

from netlab import netstat
from netlab._cliutil import add_json_flag, print_json, print_table


def register(sub) -> None:
    p = sub.add_parser(
        "netstat",
        help="list TCP/UDP sockets like 'netstat -a -n', with owning process and service name",
        description="List this machine's TCP and UDP sockets like 'netstat -a -n': protocol, "
        "local and remote address, state, owning PID and program (all of them as root, your "
        "own otherwise), and the IANA service name of the port.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--tcp", action="store_true", help="TCP sockets only")
    which.add_argument("--udp", action="store_true", help="UDP sockets only")
    p.add_argument("-l", "--listening", action="store_true",
                   help="only listening TCP sockets and unconnected (bound) UDP sockets")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    protocols = ("tcp",) if args.tcp else ("udp",) if args.udp else ("tcp", "udp")
    rows = netstat.connections(protocols, listening=args.listening)
    if args.json:
        print_json([{k: r[k] for k in ("proto", "local", "remote", "state", "pid", "program",
                                       "service", "family")} for r in rows])
        return 0
    print_table([(r["proto"] + ("6" if r["family"] == "ipv6" else ""), r["local"],
                  r["remote"] or "*:*", r["state"],
                  f"{r['pid']}/{r['program']}" if r["pid"] else None, r["service"])
                 for r in rows],
                ["proto", "local address", "remote address", "state", "pid/program", "service"])
    return 0
