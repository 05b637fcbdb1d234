"""Step: port numbers and their three ranges."""
from __future__ import annotations

import socket
from typing import Dict

from netlab import ports, sysinfo
from netlab.services.table import facts as service_facts
from netlab.tour._step import Step, TourContext


def run(ctx: TourContext) -> Dict:
    ctx.table([(name, f"{first}-{last}", last - first + 1) for name, first, last in ports.RANGES],
              ["range", "ports", "count"])
    ctx.say()
    # echo, daytime and chargen (from the service table), then ssh, web, a high port.
    sample = [service_facts(n).well_known_port for n in ("echo", "daytime", "chargen")]
    sample += [22, 80, 443, 8080, 50000]
    described = [ports.describe_port(p) for p in sample]
    ctx.table([(d["port"], d["range"], d["tcp"], d["udp"]) for d in described],
              ["port", "range", "tcp", "udp"])
    low, high = sysinfo.ephemeral_port_range()
    ctx.say()
    ctx.say(f"This kernel hands out ephemeral (local) ports from {low}-{high} "
            "(net.ipv4.ip_local_port_range).")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ctx.host, 0))
        picked = s.getsockname()[1]
    ctx.say(f"Binding port 0 just now got port {picked} ({ports.port_range(picked)} range).")
    if low < 49152:
        ctx.say("Linux's ephemeral range starts below IANA's dynamic range (49152), so a "
                "local port can carry a registered number: assigned globally, used locally.")
    return {"ranges": [r[0] for r in ports.RANGES], "ephemeral": [low, high],
            "port0_got": picked, "sample": {d["port"]: d["range"] for d in described}}


STEP = Step("Port numbers and their three ranges",
            "a port picks the program on a host; IANA's well-known, registered and "
            "dynamic ranges; the ephemeral ports the kernel hands out locally",
            "lessons/ports", "lab01-ports", run)
