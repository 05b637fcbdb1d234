"""Step: UDP loss through a lossy relay; TCP through a slow one still delivers."""
from __future__ import annotations

import socket
import time
from typing import Dict, List

from netlab import clients, redirect, servers
from netlab.tour._step import Step, TourContext

_LOSS = 0.2
_DATAGRAMS = 50


def run(ctx: TourContext) -> Dict:
    echo = servers.start_server("echo", ctx.host, 0, protocols=("udp",))
    ctx.stack.callback(echo.stop)
    relay = redirect.start_redirect(0, ctx.host, echo.port, host=ctx.host, protocols=("udp",),
                                    loss=_LOSS, seed=ctx.seed)
    ctx.stack.callback(relay.stop)
    relay_port = relay.ports["udp"]
    ctx.say(f"echo server on udp://{ctx.host}:{echo.port}; lossy relay on "
            f"udp://{ctx.host}:{relay_port} dropping {_LOSS:.0%} of datagrams each way "
            f"(seed {ctx.seed})")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctx.stack.callback(sock.close)
    sock.connect((ctx.host, relay_port))
    for seq in range(_DATAGRAMS):
        sock.send(b"letter %03d" % seq)
    # Read the echoes until the line stays quiet; UDP never says what is missing.
    got: List[int] = []
    sock.settimeout(0.5)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            data = sock.recv(2048)
        except (socket.timeout, ConnectionRefusedError):
            break
        if data.startswith(b"letter "):
            got.append(int(data[7:]))
    missing = sorted(set(range(_DATAGRAMS)) - set(got))
    stats = relay.stop()["udp"]
    ctx.say(f"sent {_DATAGRAMS} datagrams, {len(got)} echoes came back, "
            f"{len(missing)} never did")
    ctx.say(f"relay: dropped {stats['to_target']['dropped']} on the way to the server and "
            f"{stats['to_client']['dropped']} on the way back")
    if missing:
        ctx.say("lost letters: " + " ".join(str(m) for m in missing[:20])
                + (" ..." if len(missing) > 20 else ""))
    keep = 1 - _LOSS
    ctx.say(f"Why about {1 - keep * keep:.0%} and not {_LOSS:.0%}: a letter must survive the "
            f"way there ({keep:.0%}) and its echo the way back ({keep:.0%}), so "
            f"{keep:.1f} x {keep:.1f} = {keep * keep:.0%} of round trips come back and "
            f"{1 - keep * keep:.0%} fail.")
    ctx.say("Nobody told the sender: only the sequence numbers it wrote itself show the gaps.")
    ctx.say()
    # The phone call on a slow line: TCP through a relay that delays every chunk.
    tcp_echo = servers.start_server("echo", ctx.host, 0, protocols=("tcp",))
    ctx.stack.callback(tcp_echo.stop)
    tcp_relay = redirect.start_redirect(0, ctx.host, tcp_echo.port, host=ctx.host,
                                        protocols=("tcp",), delay_ms=20)
    ctx.stack.callback(tcp_relay.stop)
    payload = b"".join(b"letter %03d\n" % seq for seq in range(_DATAGRAMS))
    back = clients.tcp_echo(ctx.host, tcp_relay.ports["tcp"], payload, timeout=5.0)
    intact = back == payload
    ctx.say(f"TCP through a relay adding 20 ms: sent {len(payload)} bytes ({_DATAGRAMS} lines),")
    ctx.say(f"got {len(back)} back, {'every byte, in order' if intact else 'NOT intact'}")
    return {"sent": _DATAGRAMS, "received": len(got), "lost": len(missing),
            "dropped": stats["dropped"], "tcp_intact": intact}


STEP = Step("UDP loss through a lossy relay",
            "UDP is a letter: datagrams through a relay that drops 20% of them are lost "
            "without anyone being told; TCP through a slow relay still delivers every byte",
            "lessons/tcp-udp", "lab03-udp-echo", run)
