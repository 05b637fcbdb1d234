"""``netlab net ...``: a network of hosts on one machine (namespaces, nftables, tc)."""
from __future__ import annotations

import argparse
from typing import List

from netlab import net
from netlab._cliutil import add_json_flag, checked_number, port_number, print_json, print_table
from netlab.errors import NetlabError, UsageError
from netlab.net import link

_ABOUT = ("Hosts are Linux network namespaces joined by veth pairs to one bridge (in a switch "
          "namespace of its own, or a router namespace with --subnets 2), addresses from "
          "198.18.0.0/15, the range RFC 2544 reserves for test networks. Nothing is added to "
          "this machine's own network. Needs root.")


def _hosts(text: str) -> int:
    return checked_number(text, int, lambda v: 1 <= v <= net.MAX_HOSTS,
                          "invalid host count {text!r}: give a whole number",
                          f"invalid host count {{text!r}}: give 1 to {net.MAX_HOSTS}")


def _argtype(check):
    """A library check (raising NetlabError) as an argparse type (a usage error, exit 2)."""
    def parse(text: str):
        try:
            return check(text)
        except NetlabError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


_name = _argtype(net.topology.check_name)
_rate = _argtype(link.parse_rate)


def _delay(text: str) -> float:
    return checked_number(text, float, lambda v: 0 < v <= 60000,
                          "invalid delay {text!r}: give milliseconds, e.g. 20",
                          "invalid delay {text!r}: give more than 0 and up to 60000 ms")


def _service_port(text: str) -> int:
    port = port_number(text)
    if port == 0:
        raise argparse.ArgumentTypeError("invalid port 0: give 1 to 65535")
    return port


def _add_name(p: argparse.ArgumentParser, default_help: str) -> None:
    p.add_argument("--name", type=_name, metavar="NAME", help=f"the network's name ({default_help})")


def _add_host(p: argparse.ArgumentParser) -> None:
    _add_name(p, "default: the only one up, else lab")
    p.add_argument("host", metavar="HOST", help="a host: h1, h2 and so on, or switch / router")


def _add_link_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=_rate, metavar="RATE",
                   help="limit each host's link to RATE both ways, e.g. 10mbit (tc tbf)")
    p.add_argument("--delay", type=_delay, metavar="MS",
                   help="delay each direction by MS milliseconds (tc netem: needs a kernel "
                        "with sch_netem; otherwise see 'netlab redirect --delay')")


def register(sub) -> None:
    p = sub.add_parser("net", help="a network of hosts on one machine: namespaces, firewall, "
                                   "kernel redirect (root)",
                       description="A network of hosts on one machine, with the kernel alone. "
                       + _ABOUT)
    nsub = p.add_subparsers(title="net commands", metavar="NETCOMMAND", dest="net_command")
    p.set_defaults(func=lambda args: p.error("give a net command: up, ls, run, down, "
                                             "firewall, redirect, rules or link"))

    q = nsub.add_parser("up", help="create N hosts joined by a bridge", description=_ABOUT)
    q.add_argument("--hosts", type=_hosts, default=2, metavar="N", help="how many hosts (default 2)")
    _add_name(q, f"default {net.DEFAULT_NAME}")
    q.add_argument("--subnets", type=int, choices=(1, 2), default=1,
                   help="2: put the hosts on two subnets joined by a router namespace")
    _add_link_flags(q)
    q.add_argument("-v", "--verbose", action="store_true", help="print every ip/tc command run")
    add_json_flag(q)
    q.set_defaults(func=run_up)

    q = nsub.add_parser("ls", help="list the hosts of the networks that are up")
    _add_name(q, "default: every network")
    add_json_flag(q)
    q.set_defaults(func=run_ls)

    q = nsub.add_parser("run", help="run a command inside a host: net run h1 -- netlab echo",
                        description="Run COMMAND inside HOST: any program, and netlab itself "
                        "(netlab COMMAND runs this netlab). Its exit status is the command's.")
    _add_host(q)
    q.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND...",
                   help="the command and its arguments, after --")
    q.set_defaults(func=run_run)

    q = nsub.add_parser("down", help="remove a network (default: every netlab network)",
                        description="Remove the namespaces (and with them every veth pair and "
                        "bridge) of network NAME, or of every netlab network; found by their "
                        f"name prefix {net.PREFIX}, so it also cleans up after a crash.")
    _add_name(q, "default: every netlab network")
    q.add_argument("-v", "--verbose", action="store_true", help="print every ip command run")
    add_json_flag(q)
    q.set_defaults(func=run_down)

    q = nsub.add_parser("firewall", help="allow, drop or reject a port on a host (nftables)",
                        description="drop: silence, a scanner says filtered. reject: a TCP RST "
                        "(UDP: ICMP port unreachable), a scanner says closed. allow: accept "
                        "(undoes a drop or reject). A new rule replaces the port's old one.")
    _add_host(q)
    q.add_argument("action", choices=net.ACTIONS, metavar="allow|drop|reject")
    q.add_argument("port", type=_service_port, metavar="PORT")
    q.add_argument("--udp", action="store_true", help="a UDP port (default TCP)")
    q.set_defaults(func=run_firewall)

    q = nsub.add_parser("redirect", help="redirect a port to another in a host's kernel (nftables)",
                        description="Rewrite the destination port PORT to TO_PORT in HOST's "
                        "kernel (nat redirect), for connections from other hosts and from HOST "
                        "itself: e.g. 80 to 8080, where an unprivileged server listens.")
    _add_host(q)
    q.add_argument("port", type=_service_port, metavar="PORT")
    q.add_argument("to_port", type=_service_port, metavar="TO_PORT")
    q.add_argument("--udp", action="store_true", help="a UDP port (default TCP)")
    q.set_defaults(func=run_redirect)

    q = nsub.add_parser("rules", help="show (or --flush) a host's firewall and redirect rules")
    _add_host(q)
    q.add_argument("--flush", action="store_true", help="remove every netlab rule on HOST")
    add_json_flag(q)
    q.set_defaults(func=run_rules)

    q = nsub.add_parser("link", help="shape a host's link: --rate, --delay, or --clear (tc)")
    _add_host(q)
    _add_link_flags(q)
    q.add_argument("--clear", action="store_true", help="remove the shaping")
    q.set_defaults(func=run_link)


def _ready(args: argparse.Namespace) -> net.Shell:
    """Every net command: root first, then the ip tool."""
    net.need_root()
    net.need_tool("ip")
    return net.Shell(echo=print if getattr(args, "verbose", False) else None)


def _print_hosts(rows: List[dict]) -> None:
    print_table([(r["network"], r["host"], r["namespace"], ", ".join(r["addresses"]) or "-",
                  link.format_link(r["link"])) for r in rows],
                ["network", "host", "namespace", "address", "link"])


def run_up(args: argparse.Namespace) -> int:
    sh = _ready(args)
    if args.rate or args.delay:
        net.need_tool("tc")
    name = args.name or net.DEFAULT_NAME
    rows = net.up(name, args.hosts, args.subnets, rate=args.rate, delay_ms=args.delay, sh=sh)
    if args.json:
        print_json(rows)
        return 0
    hosts = [r for r in rows if r["role"] == "host"]
    print(f"network {name} is up: {len(hosts)} host(s)")
    _print_hosts(rows)
    flag = "" if name == net.DEFAULT_NAME else f" --name {name}"
    if len(hosts) > 1:
        last = hosts[-1]
        server = last["addresses"][0].split("/")[0]
        print(f"\ntry: netlab net run{flag} {last['host']} -- netlab echo --tcp --host 0.0.0.0 &"
              f"\n     netlab net run{flag} h1 -- netlab echo --client --tcp --host {server} -m hi")
    print(f"done: netlab net down{flag}")
    return 0


def run_ls(args: argparse.Namespace) -> int:
    sh = _ready(args)
    rows = net.describe(args.name, sh)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no netlab network is up (start one with: netlab net up)")
        return 0
    _print_hosts(rows)
    return 0


def run_run(args: argparse.Namespace) -> int:
    sh = _ready(args)
    command, name = list(args.command), args.name
    # Everything after HOST belongs to the command, except a --name before the --.
    if command[:1] == ["--name"] and len(command) > 1:
        name, command = _name(command[1]), command[2:]
    if command[:1] == ["--"]:
        command = command[1:]
    ns = net.find_host(args.host, name, sh)
    net.exec_in_host(ns, command)
    return 1  # not reached: exec replaced this process


def run_down(args: argparse.Namespace) -> int:
    sh = _ready(args)
    removed = net.down(args.name, sh)
    if args.json:
        print_json({"removed": removed})
    elif removed:
        print(f"removed {len(removed)} namespace(s): {', '.join(removed)}")
    else:
        which = f"network {args.name}" if args.name else "netlab network"
        print(f"no {which} was up: nothing to remove")
    return 0


def _firewall_host(args: argparse.Namespace):
    sh = _ready(args)
    net.need_tool("nft")
    return sh, net.find_host(args.host, args.name, sh)


def _print_rules(host: str, rules: List[dict]) -> None:
    if not rules:
        print(f"{host}: no netlab rules (every port answers as its socket does)")
        return
    print_table([(f"{r['port']}/{r['proto']}", r["action"],
                  f"to port {r['to_port']}" if r["to_port"] else _meaning(r))
                 for r in rules], ["port", "rule", "effect"])


def _meaning(rule: dict) -> str:
    tcp = rule["proto"] == "tcp"
    if rule["action"] == "allow":
        return "accepted: open if a server listens, else closed"
    if rule["action"] == "drop":
        return "silently dropped: scanners say " + ("filtered" if tcp else "open|filtered")
    return ("answered with a TCP RST" if tcp else "answered with ICMP port unreachable") \
        + ": scanners say closed"


def run_firewall(args: argparse.Namespace) -> int:
    sh, ns = _firewall_host(args)
    proto = "udp" if args.udp else "tcp"
    rules = net.set_port(sh, ns, args.action, args.port, proto)
    print(f"{args.host}: {args.action} {proto} port {args.port}")
    _print_rules(args.host, rules)
    return 0


def run_redirect(args: argparse.Namespace) -> int:
    sh, ns = _firewall_host(args)
    proto = "udp" if args.udp else "tcp"
    rules = net.redirect(sh, ns, args.port, args.to_port, proto)
    print(f"{args.host}: the kernel redirects {proto} port {args.port} to {args.to_port}")
    _print_rules(args.host, rules)
    return 0


def run_rules(args: argparse.Namespace) -> int:
    sh, ns = _firewall_host(args)
    if args.flush:
        net.flush(sh, ns)
        if not args.json:
            print(f"{args.host}: every netlab rule removed")
    rules = net.list_rules(sh, ns)
    if args.json:
        print_json(rules)
        return 0
    _print_rules(args.host, rules)
    if rules:
        print(f"\nthe kernel's view (nft list ruleset in {args.host}):")
        print(net.ruleset_text(sh, ns).rstrip())
    return 0


def run_link(args: argparse.Namespace) -> int:
    sh = _ready(args)
    net.need_tool("tc")
    if args.clear == bool(args.rate or args.delay):
        raise UsageError("give --rate RATE and/or --delay MS, or --clear")
    ends = net.topology.link_ends(net.find_host(args.host, args.name, sh), sh)
    if args.clear:
        link.clear(sh, *ends)
    else:
        link.shape(sh, *ends, rate=args.rate, delay_ms=args.delay)
    print(f"{args.host}: link {link.format_link(link.describe(sh, ends[0], ends[1]))}")
    return 0
