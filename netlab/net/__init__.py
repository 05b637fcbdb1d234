"""A network of hosts on one machine: namespaces, a firewall, kernel redirection.

``netlab net up`` makes each host a Linux network namespace (its own
interfaces, sockets and firewall) and joins them with veth pairs to one bridge,
all with the kernel alone (no Open vSwitch). Root is needed for every part.

* :mod:`netlab.net.topology`: up, down, describe the hosts (198.18.0.0/15).
* :mod:`netlab.net.firewall`: allow / drop / reject a port and redirect one
  port to another in a host's kernel, with nftables.
* :mod:`netlab.net.link`: rate (tbf) and delay (netem, where the kernel has it).
* :mod:`netlab.net.run`: run any program, netlab included, inside a host.
* :mod:`netlab.net.chain`: a line of routers between two hosts, for
  traceroute (lab 16's grader builds one for each run).
"""
from netlab.net._shell import NetError, Shell, need_root, need_tool
from netlab.net.firewall import ACTIONS, flush, list_rules, redirect, ruleset_text, set_port
from netlab.net.link import parse_rate
from netlab.net.run import exec_in_host, host_argv, start_in_host, stop, wait_ready
from netlab.net.topology import (DEFAULT_NAME, MAX_HOSTS, PREFIX, TEST_RANGE, describe, down,
                                 find_host, host_address, namespace, networks, up)

__all__ = [
    "ACTIONS", "DEFAULT_NAME", "MAX_HOSTS", "NetError", "PREFIX", "Shell", "TEST_RANGE",
    "describe", "down", "exec_in_host", "find_host", "flush", "host_address", "host_argv",
    "list_rules", "namespace", "need_root", "need_tool", "networks", "parse_rate", "redirect",
    "ruleset_text", "set_port", "start_in_host", "stop", "up", "wait_ready",
]
