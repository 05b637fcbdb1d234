"""A line of routers between two hosts, for traceroute: h1 - r1 - ... - rN - h2.

The picture, for two routers (namespaces ``PREFIX-h1``, ``PREFIX-r1``...)::

    h1 eth0 ------- left r1 right ------- left r2 right ------- eth0 h2
      198.19.1.1   198.19.1.2  198.19.2.1   198.19.2.2  198.19.3.1   198.19.3.2

Every link is a veth pair with a /24 of its own (198.19.K.0/24 for link K,
inside the test range 198.18.0.0/15 of :mod:`netlab.net.topology`), the left
end .1 and the right end .2. The routers forward (``ip_forward``) and know a
route to every link; the hosts route everything through their one neighbour.
A packet whose TTL runs out in router K makes it send ICMP "time exceeded"
from the address it was received on, 198.19.K.2, so a traceroute from h1 to
h2 sees :attr:`Chain.path`. As in :mod:`netlab.net.topology`, nothing joins
the chain to this machine's own network.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Dict, List, Optional

from netlab.errors import UsageError
from netlab.net._shell import Shell
from netlab.net.topology import add_namespace, add_route, add_veth, set_address, set_sysctl

__all__ = ["Chain", "MAX_ROUTERS", "chain_down", "chain_up", "link_network"]

MAX_ROUTERS = 8


def link_network(link: int) -> ipaddress.IPv4Network:
    """The /24 of link ``link`` (1 = h1's): 198.19.LINK.0/24."""
    return ipaddress.ip_network(f"198.19.{link}.0/24")


@dataclass
class Chain:
    """A chain that is up: its namespaces by host name (h1, r1, ..., h2)."""

    prefix: str
    routers: int
    namespaces: Dict[str, str]

    @staticmethod
    def link_address(link: int, end: int) -> str:
        """The address of the left (``end`` 1) or right (2) end of link ``link``."""
        return str(link_network(link)[end])

    @property
    def source(self) -> str:
        return self.link_address(1, 1)

    @property
    def target(self) -> str:
        return self.link_address(self.routers + 1, 2)

    @property
    def path(self) -> List[str]:
        """The hops a traceroute from h1 to h2 sees: each router's left address, then h2."""
        return [self.link_address(k, 2) for k in range(1, self.routers + 2)]


def chain_up(prefix: str, routers: int = 2, sh: Optional[Shell] = None) -> Chain:
    """Make the chain h1 - r1 - ... - r``routers`` - h2 (namespaces ``PREFIX-NAME``).

    Half-made chains are removed again on failure.
    """
    sh = sh or Shell()
    if not 1 <= routers <= MAX_ROUTERS:
        raise UsageError(f"invalid router count {routers}: give 1 to {MAX_ROUTERS}")
    names = ["h1"] + [f"r{k}" for k in range(1, routers + 1)] + ["h2"]
    chain = Chain(prefix, routers, {n: f"{prefix}-{n}" for n in names})
    try:
        for name in names:
            add_namespace(sh, chain.namespaces[name])
        for link in range(1, routers + 2):  # link K joins names[K-1] (left) and names[K] (right)
            left, right = chain.namespaces[names[link - 1]], chain.namespaces[names[link]]
            left_dev = "eth0" if link == 1 else "right"
            right_dev = "eth0" if link == routers + 1 else "left"
            add_veth(sh, left, left_dev, right, right_dev)
            set_address(sh, left, left_dev, f"{chain.link_address(link, 1)}/24")
            set_address(sh, right, right_dev, f"{chain.link_address(link, 2)}/24")
        add_route(sh, chain.namespaces["h1"], "default", chain.link_address(1, 2))
        add_route(sh, chain.namespaces["h2"], "default", chain.link_address(routers + 1, 1))
        for k in range(1, routers + 1):
            ns = chain.namespaces[f"r{k}"]
            set_sysctl(sh, ns, "net.ipv4.ip_forward", "1")
            # Router k sits on links k and k+1; the others are reached through a neighbour.
            for link in range(1, routers + 2):
                if link < k:
                    add_route(sh, ns, str(link_network(link)), chain.link_address(k, 1))
                elif link > k + 1:
                    add_route(sh, ns, str(link_network(link)), chain.link_address(k + 1, 2))
    except BaseException:
        chain_down(chain, sh)
        raise
    return chain


def chain_down(chain: Chain, sh: Optional[Shell] = None) -> None:
    """Remove the chain's namespaces (their veth ends go with them)."""
    sh = sh or Shell()
    for ns in chain.namespaces.values():
        sh.run("ip", "netns", "delete", ns, check=False)
