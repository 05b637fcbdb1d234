"""Step (root only): two hosts as network namespaces; binding and a firewall
seen from the other host."""
from __future__ import annotations

import json
import os
import subprocess
from typing import Dict

from netlab import net
from netlab.errors import NetlabError
from netlab.tour._step import Step, TourContext

_WHY = {7001: "bound to 0.0.0.0: reachable from h1",
        7002: "bound to 127.0.0.1: h2's own loopback, out of h1's reach",
        7003: "firewall drop: no answer at all",
        7004: "firewall reject: a RST, as if no server",
        7005: "no server: the kernel's RST"}


def run(ctx: TourContext) -> Dict:
    name = f"tour{os.getpid() % 100000}"
    sh = net.Shell()
    net.up(name, hosts=2, sh=sh)
    ctx.stack.callback(net.down, name, sh)
    h1, h2 = net.namespace(name, "h1"), net.namespace(name, "h2")
    server = net.host_address(2)
    ctx.say(f"network {name}: h1 {net.host_address(1)}, h2 {server} (namespaces on one bridge)")
    servers = []
    for port, bind in ((7001, "0.0.0.0"), (7002, "127.0.0.1"), (7003, "0.0.0.0"),
                       (7004, "0.0.0.0")):
        servers.append(net.start_in_host(h2, ["netlab", "echo", "--tcp", str(port),
                                              "--host", bind]))
        ctx.stack.callback(net.stop, servers[-1])
    for proc in servers:  # started side by side, then waited for
        net.wait_ready(proc)
    ctx.say("h2 runs echo on 0.0.0.0:7001, 127.0.0.1:7002, 0.0.0.0:7003 and 0.0.0.0:7004; "
            "h2's firewall drops 7003 and rejects 7004")
    net.set_port(sh, h2, "drop", 7003)
    net.set_port(sh, h2, "reject", 7004)
    scan = subprocess.run(net.host_argv(h1, ["netlab", "scan", server, "7001-7005", "--authorized",
                                             "--json", "--timeout", "1"]),
                          capture_output=True, text=True, timeout=60)
    if scan.returncode != 0:
        raise NetlabError(f"scan from h1 failed: {scan.stderr.strip()}")
    states = {r["port"]: r["state"] for r in json.loads(scan.stdout)}
    ctx.say()
    ctx.table([(f"{p}/tcp", states[p], _WHY[p]) for p in sorted(states)],
              ["port", "h1 scans h2", "why"])
    ctx.say()
    ctx.say("Try it yourself: sudo netlab net up, then netlab net run h1 -- COMMAND "
            "(lesson: docs/lessons/network.rst).")
    return {"network": name, "states": states}


STEP = Step("A network of hosts: binding and a firewall seen from another host",
            "two hosts as network namespaces: 0.0.0.0 vs 127.0.0.1 seen from the other "
            "host, and a firewall's drop (filtered) vs reject (closed) in a scan",
            "lessons/network", "lab10-scan-redirect", run)
