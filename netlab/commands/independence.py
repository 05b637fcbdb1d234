"""``netlab independence [PORT]``: TCP and UDP own separate port spaces, live."""
from __future__ import annotations

import argparse

from netlab import independence
from netlab._cliutil import add_json_flag, port_number, print_json, print_table, print_wrapped


def register(sub) -> None:
    p = sub.add_parser(
        "independence",
        help="bind TCP and UDP on one port (both succeed), then a second TCP socket (fails)",
        description="Show that TCP and UDP have separate port spaces: bind a TCP and a UDP "
        "socket on the same PORT (both succeed), then a second TCP and a second UDP socket "
        "on it (both fail with EADDRINUSE). Without PORT a port free for both is chosen.",
    )
    p.add_argument("port", nargs="?", type=port_number, metavar="PORT",
                   help="the port to use (default: one free for TCP and UDP)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = independence.demonstrate(args.port, args.host)
    if args.json:
        print_json(data)
        return 0
    port = data["port"]
    print_table([(s["step"], s["socket"], f"{args.host}:{port}",
                  "bound" if s["ok"] else f"{s['error']} ({s['errno']})", s["meaning"])
                 for s in data["steps"]],
                ["step", "socket", "address", "result", "meaning"])
    print()
    print_wrapped(f"port {port}: TCP and UDP both bound at once; the kernel keys sockets by "
                  "(protocol, address, port), so the same number in the other protocol is "
                  "another port.")
    return 0
