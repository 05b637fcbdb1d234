"""Hosts as network namespaces, joined by veth pairs to one bridge.

The picture, for ``netlab net up --hosts 3`` (network name ``lab``)::

    netlab-lab-h1        netlab-lab-switch           netlab-lab-h2
    eth0 198.18.1.1 ---- h1 [br0] h2 ---- eth0 198.18.1.2
                                 h3 ---- eth0 198.18.1.3  netlab-lab-h3

Each host is a namespace with its own interfaces, routes, sockets, port spaces
and firewall: a server bound to 127.0.0.1 in h1 is out of h2's reach, as it
would be on two machines. The bridge lives in a namespace of its own (the
"switch"), so nothing is added to this machine's own network: no interface,
no route, no firewall rule. A packet can only travel between the namespaces of
one network, and deleting the namespaces deletes everything (the veth pairs
and the bridge die with them). That is also why ``down`` works after a crash:
everything it must remove is found by the namespace name prefix alone.

With ``subnets=2`` the middle namespace is a router instead: two bridges
(``br1`` 198.18.1.254/24 and ``br2`` 198.18.2.254/24) with IP forwarding on;
the first half of the hosts sits on subnet 1, the rest on subnet 2, each with
a default route through the router.

Addresses come from 198.18.0.0/15, the range RFC 2544 reserves for testing
network devices (never routed on the internet); host hN is always 198.18.S.N.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Dict, List, Optional

from netlab.errors import UsageError
from netlab.net._shell import NetError, Shell
from netlab.net import link

__all__ = ["DEFAULT_NAME", "MAX_HOSTS", "PREFIX", "TEST_RANGE", "add_namespace", "add_route",
           "add_veth", "check_name", "describe", "down", "find_host", "host_address", "link_ends",
           "split", "namespace", "networks", "set_address", "set_sysctl", "up"]

PREFIX = "netlab-"
DEFAULT_NAME = "lab"
MAX_HOSTS = 32
#: RFC 2544's benchmarking range, private and reserved for test networks.
TEST_RANGE = ipaddress.ip_network("198.18.0.0/15")
_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")
_HUBS = ("switch", "router")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise UsageError(f"invalid network name {name!r}: use 1-12 lowercase letters and "
                         "digits, starting with a letter (e.g. lab, class2)")
    return name


def namespace(name: str, host: str) -> str:
    """The namespace of ``host`` in network ``name``: ``netlab-NAME-HOST``."""
    return f"{PREFIX}{name}-{host}"


def split(ns: str) -> tuple:
    """``netlab-lab-h1`` -> ``("lab", "h1")`` (network names have no dash)."""
    name, _, host = ns[len(PREFIX):].partition("-")
    return name, host


def subnet(number: int) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(f"198.18.{number}.0/24")


def host_address(number: int, subnet_number: int = 1) -> str:
    """The address of host h``number``: 198.18.SUBNET.NUMBER."""
    return str(subnet(subnet_number)[number])


def _router_address(subnet_number: int) -> str:
    return str(subnet(subnet_number)[254])


def networks(sh: Optional[Shell] = None) -> Dict[str, List[str]]:
    """Every netlab network up now: name -> its namespaces, from ``ip netns list`` alone."""
    sh = sh or Shell()
    found: Dict[str, List[str]] = {}
    for entry in sh.json("ip", "-j", "netns", "list"):
        ns = entry.get("name", "")
        if ns.startswith(PREFIX):
            # A namespace left half-made by a crash still belongs to its network.
            found.setdefault(split(ns)[0], []).append(ns)
    for names in found.values():
        names.sort(key=_host_order)
    return found


def _host_order(ns: str):
    host = ns.rsplit("-", 1)[-1]
    return (0, int(host[1:]), "") if re.fullmatch(r"h\d+", host) else (1, 0, host)


def up(name: str = DEFAULT_NAME, hosts: int = 2, subnets: int = 1, rate: Optional[int] = None,
       delay_ms: Optional[float] = None, sh: Optional[Shell] = None) -> List[dict]:
    """Create network ``name`` with ``hosts`` hosts; return :func:`describe` of it.

    ``rate`` (bits/s) and ``delay_ms`` shape every host's link (see
    :mod:`netlab.net.link`). Half-made networks are removed again on failure.
    """
    sh = sh or Shell()
    check_name(name)
    if not 1 <= hosts <= MAX_HOSTS:
        raise UsageError(f"invalid host count {hosts}: give 1 to {MAX_HOSTS}")
    if subnets not in (1, 2):
        raise UsageError(f"invalid subnet count {subnets}: give 1 or 2")
    if subnets == 2 and hosts < 2:
        raise UsageError("two subnets need at least 2 hosts (one on each side)")
    if name in networks(sh):
        raise NetError(f"network {name} is already up (see 'netlab net ls'; "
                       f"remove it with 'netlab net down --name {name}')")
    try:
        hub = _make_hub(sh, name, subnets)
        first_half = (hosts + 1) // 2
        for number in range(1, hosts + 1):
            side = 1 if subnets == 1 or number <= first_half else 2
            _make_host(sh, name, hub, number, side, routed=subnets == 2)
            if rate or delay_ms:
                link.shape(sh, namespace(name, f"h{number}"), "eth0", hub, f"h{number}",
                           rate=rate, delay_ms=delay_ms)
    except BaseException:
        down(name, sh)
        raise
    return describe(name, sh)


def add_namespace(sh: Shell, ns: str) -> None:
    """A new network namespace ``ns`` with its loopback up."""
    sh.run("ip", "netns", "add", ns)
    sh.run("ip", "-n", ns, "link", "set", "dev", "lo", "up")


def add_veth(sh: Shell, ns: str, dev: str, peer_ns: str, peer_dev: str) -> None:
    """A veth pair ``ns:dev`` <-> ``peer_ns:peer_dev``.

    The pair is made inside ``ns`` and one end moved straight into
    ``peer_ns``: it never exists in this machine's own namespace.
    """
    sh.run("ip", "-n", ns, "link", "add", "name", dev, "type", "veth",
           "peer", "name", peer_dev, "netns", peer_ns)


def set_address(sh: Shell, ns: str, dev: str, address: str) -> None:
    """Give ``ns:dev`` the address ``address`` (``addr/prefix``) and bring it up."""
    sh.run("ip", "-n", ns, "addr", "add", address, "dev", dev)
    sh.run("ip", "-n", ns, "link", "set", "dev", dev, "up")


def add_route(sh: Shell, ns: str, destination: str, via: str) -> None:
    """A route in ``ns``: ``destination`` (``default`` or ``net/prefix``) through ``via``."""
    sh.run("ip", "-n", ns, "route", "add", destination, "via", via)


def set_sysctl(sh: Shell, ns: str, name: str, value: str) -> None:
    """Set the per-namespace sysctl ``name`` (``net.ipv4.ip_forward``) inside ``ns``."""
    sh.run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{name}={value}")


def _make_hub(sh: Shell, name: str, subnets: int) -> str:
    hub = namespace(name, _HUBS[subnets - 1])
    add_namespace(sh, hub)
    for side in range(subnets):
        bridge = "br0" if subnets == 1 else f"br{side + 1}"
        sh.run("ip", "-n", hub, "link", "add", "name", bridge, "type", "bridge")
        sh.run("ip", "-n", hub, "link", "set", "dev", bridge, "up")
        if subnets == 2:
            sh.run("ip", "-n", hub, "addr", "add", f"{_router_address(side + 1)}/24",
                   "dev", bridge)
    if subnets == 2:
        set_sysctl(sh, hub, "net.ipv4.ip_forward", "1")
    return hub


def _make_host(sh: Shell, name: str, hub: str, number: int, side: int, routed: bool) -> None:
    host = f"h{number}"
    ns = namespace(name, host)
    bridge = f"br{side}" if routed else "br0"
    add_namespace(sh, ns)
    add_veth(sh, hub, host, ns, "eth0")
    sh.run("ip", "-n", hub, "link", "set", "dev", host, "master", bridge)
    sh.run("ip", "-n", hub, "link", "set", "dev", host, "up")
    set_address(sh, ns, "eth0", f"{host_address(number, side)}/24")
    if routed:
        add_route(sh, ns, "default", _router_address(side))


def down(name: Optional[str] = None, sh: Optional[Shell] = None) -> List[str]:
    """Remove network ``name`` (default: every netlab network); return the namespaces removed.

    Deleting a namespace deletes its interfaces, so the veth pairs and bridges
    go with them; nothing else was ever made.
    """
    sh = sh or Shell()
    found = networks(sh)
    if name is not None:
        check_name(name)
        found = {name: found[name]} if name in found else {}
    removed = []
    for names in found.values():
        for ns in names:
            done = sh.run("ip", "netns", "delete", ns, check=False)
            if done.returncode == 0:
                removed.append(ns)
    left = [ns for net in networks(sh).items() if name in (None, net[0]) for ns in net[1]]
    if left:
        raise NetError(f"could not remove namespace(s) {', '.join(left)}: a process may still "
                       "hold them (see 'ip netns pids NAME'); stop it and run net down again")
    return removed


def _addresses(sh: Shell, ns: str) -> List[str]:
    out = []
    for dev in sh.json("ip", "-n", ns, "-j", "-4", "addr", "show"):
        if dev.get("ifname") == "lo":
            continue
        out += [f"{a['local']}/{a['prefixlen']}" for a in dev.get("addr_info", [])]
    return out


def describe(name: Optional[str] = None, sh: Optional[Shell] = None) -> List[dict]:
    """One dict per namespace of network ``name`` (default: all), hosts first.

    Keys: ``network``, ``host``, ``namespace``, ``role`` (host, switch or
    router), ``addresses`` (``addr/prefix``), ``link`` (the host side's shaping,
    e.g. ``{"qdisc": "tbf", "rate_bit": 8000000}``, or None).
    """
    sh = sh or Shell()
    rows = []
    for net, names in sorted(networks(sh).items()):
        if name is not None and net != name:
            continue
        for ns in names:
            host = split(ns)[1]
            role = host if host in _HUBS else "host"
            rows.append({"network": net, "host": host, "namespace": ns, "role": role,
                         "addresses": _addresses(sh, ns),
                         "link": link.describe(sh, ns, "eth0") if role == "host" else None})
    return rows


def link_ends(ns: str, sh: Optional[Shell] = None) -> tuple:
    """Both ends of host ``ns``'s link: ``(ns, "eth0", hub_ns, "hN")``."""
    name, host = split(ns)
    if not re.fullmatch(r"h\d+", host):
        raise UsageError(f"{host} has no link of its own: shape a host's link (h1, h2, ...)")
    hubs = [n for n in networks(sh).get(name, []) if split(n)[1] in _HUBS]
    if not hubs:
        raise NetError(f"network {name} has no switch or router (left half-made?): "
                       f"run 'netlab net down --name {name}' and up again")
    return ns, "eth0", hubs[0], host


def find_host(host: str, name: Optional[str] = None, sh: Optional[Shell] = None) -> str:
    """The namespace of ``host`` (h1, switch, router...); ``name`` picks the network.

    Without ``name`` the host is looked up in the only network that is up, or
    in the default network ``lab`` when several are.
    """
    sh = sh or Shell()
    found = networks(sh)
    if name is None:
        if not found:
            raise NetError("no netlab network is up: start one with 'netlab net up'")
        name = next(iter(found)) if len(found) == 1 else DEFAULT_NAME
        if name not in found:
            raise UsageError(f"several networks are up ({', '.join(sorted(found))}): "
                             "say which with --name NAME")
    else:
        check_name(name)
    if name not in found:
        raise NetError(f"network {name} is not up: start it with 'netlab net up --name {name}'")
    ns = namespace(name, host)
    if ns not in found[name]:
        hosts = [split(n)[1] for n in found[name]]
        raise NetError(f"no host {host!r} in network {name}: its hosts are {', '.join(hosts)}")
    return ns
