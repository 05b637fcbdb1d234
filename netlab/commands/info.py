"""``netlab info``: version, backend and what this process may do with ports."""
from __future__ import annotations

import argparse

from netlab import sysinfo
from netlab._cliutil import add_json_flag, print_json, print_wrapped


def register(sub) -> None:
    p = sub.add_parser(
        "info",
        help="show version, packet backend, Python, platform and port privileges",
        description="Show netlab's version, the live packet backend (cython or python), "
        "the Python and platform, whether this process may bind ports below 1024, "
        "net.ipv4.ip_unprivileged_port_start and the ephemeral port range.",
    )
    add_json_flag(p)
    p.set_defaults(func=run)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def run(args: argparse.Namespace) -> int:
    data = sysinfo.info()
    if args.json:
        print_json(data)
        return 0
    low, high = data["ephemeral_port_range"]
    why = "root" if data["root"] else ("CAP_NET_BIND_SERVICE" if data["cap_net_bind_service"] else "")
    start = data["ip_unprivileged_port_start"]
    lines = [
        ("netlab", data["version"]),
        ("backend", f"{data['backend']} ({data['backend_reason']})"),
        ("python", f"{data['python']} ({data['executable']})"),
        ("platform", data["platform"]),
        ("bind below 1024", _yes(data["can_bind_below_1024"]) + (f" ({why})" if why else "")),
        ("ip_unprivileged_port_start", f"{start} (ports below {start} need root or CAP_NET_BIND_SERVICE)"),
        ("ephemeral port range", f"{low}-{high} (what the kernel picks for port 0 and clients)"),
        ("live capture", _yes(data["can_capture"]) + " (needs root or CAP_NET_RAW)"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print_wrapped(f"{key.ljust(width)}  {value}", hang=width + 2)
    return 0
