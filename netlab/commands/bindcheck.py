"""``netlab bindcheck PORT``: try to bind and explain why it worked or not."""
from __future__ import annotations

import argparse

from netlab import bindcheck
from netlab._cliutil import add_json_flag, port_number, print_json, print_table, print_wrapped
from netlab.binding import format_url


def register(sub) -> None:
    p = sub.add_parser(
        "bindcheck",
        help="try to bind a port and explain the result (privileges, port in use)",
        description="Try to bind PORT and explain the result: the errno and its name, whether "
        "the port is below net.ipv4.ip_unprivileged_port_start on this machine, whether this "
        "process is root or has CAP_NET_BIND_SERVICE, or who holds the port when it is in use. "
        "As root, --as-user USER repeats the attempt in a child process running as USER. "
        "The exit status is 0 whenever the check ran; the outcome is in 'ok'.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--tcp", action="store_true", help="bind a TCP socket (the default)")
    which.add_argument("--udp", action="store_true", help="bind a UDP socket")
    p.add_argument("port", type=port_number, metavar="PORT", help="the port to try, 0-65535")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--as-user", metavar="USER",
                   help="(root) also try as USER, e.g. nobody, to see what an ordinary user gets")
    add_json_flag(p)
    p.set_defaults(func=run)


def _row(r: dict):
    result = "bound" if r["ok"] else f"{r['error']} ({r['errno']})"
    privilege = "root" if r["root"] else ("CAP_NET_BIND_SERVICE" if r["cap_net_bind_service"] else "none")
    return (f"{r['user']} (uid {r['uid']})", result, privilege, r["reason"])


def run(args: argparse.Namespace) -> int:
    proto = "udp" if args.udp else "tcp"
    mine = bindcheck.check_bind(args.port, proto, args.host)
    if args.as_user:
        theirs = bindcheck.check_bind_as_user(args.port, proto, args.host, args.as_user)
        # The top-level keys describe the --as-user attempt (what the learner
        # asked about); this process's own attempt rides along under "current".
        data = dict(theirs, current=mine)
        attempts = [mine, theirs] if theirs is not mine else [mine]
    else:
        data = mine
        attempts = [mine]
    if args.json:
        print_json(data)
        return 0
    start = mine["unprivileged_port_start"]
    where = format_url(proto, args.host, args.port)
    if args.port == 0:
        print_wrapped(f"{where}: port 0 asks the OS for any free port")
    else:
        side = "below" if mine["privileged_port"] else "at or above"
        print_wrapped(f"{where}: port {args.port} is {side} ip_unprivileged_port_start "
                      f"({start}) on this machine")
    print()
    print_table([_row(r) for r in attempts], ["user", "result", "privilege", "reason"])
    return 0
