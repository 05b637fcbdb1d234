"""Step: echo, daytime and chargen over TCP (a phone call) and UDP (a letter)."""
from __future__ import annotations

from typing import Dict

from netlab import clients, servers
from netlab.services.table import facts as service_facts
from netlab.errors import NetlabError
from netlab.tour._step import Step, TourContext


#: The services this step runs, and the RFCs that define them (from the service table).
_SHOWN = ("echo", "daytime", "chargen")
_RFCS = sorted(service_facts(name).rfc for name in _SHOWN)


def run(ctx: TourContext) -> Dict:
    started = {}
    for name in _SHOWN:
        srv = servers.start_server(name, ctx.host, 0, protocols=("tcp", "udp"))
        ctx.stack.callback(srv.stop)
        started[name] = srv
        ctx.say(f"started {name:8} on {' and '.join(srv.urls)}")
    ctx.say()
    facts: Dict = {"ports": {n: s.port for n, s in started.items()}}
    echo_port = started["echo"].port
    for proto in ("tcp", "udp"):
        sent = f"hello over {proto}\n".encode()
        back = clients.echo(proto, ctx.host, echo_port, sent, timeout=2.0)
        ctx.say(f"echo    {proto}: sent {sent!r}, got back {back!r}")
        facts[f"echo_{proto}_ok"] = back == sent
    for proto in ("tcp", "udp"):
        line = clients.daytime(proto, ctx.host, started["daytime"].port, timeout=2.0)
        ctx.say(f"daytime {proto}: {line}")
        facts[f"daytime_{proto}"] = line
    lines = clients.chargen("tcp", ctx.host, started["chargen"].port, lines=3, timeout=2.0)
    ctx.say("chargen tcp: the first 3 lines of an endless stream (72 characters each):")
    for text in lines:
        ctx.verbatim(f"    {text}")
    reply = clients.chargen("udp", ctx.host, started["chargen"].port, lines=1, timeout=2.0)[0]
    ctx.say(f"chargen udp: one 1-byte request got a {len(reply)}-character datagram back "
            "(the amplification of docs/lessons/amplification.rst)")
    facts["chargen_tcp_lines"] = len(lines)
    facts["chargen_udp_bytes"] = len(reply)
    ctx.say()
    # The phone call and the letter when nobody answers: stop echo, try again.
    started["echo"].stop()
    for proto in ("tcp", "udp"):
        try:
            clients.echo(proto, ctx.host, echo_port, b"anyone there?\n", timeout=0.5, retries=0)
            outcome = "unexpectedly answered"
        except NetlabError as exc:
            outcome = str(exc)
        ctx.say(f"echo stopped, {proto} client:")
        ctx.say(f"    {outcome}", hang=4)
        facts[f"stopped_{proto}"] = outcome
    ctx.say()
    for name, srv in started.items():
        st = srv.stop()
        ctx.say(f"{name:8} served {st.get('connections', 0)} TCP connection(s) and "
                f"{st.get('datagrams', 0)} UDP datagram(s); stopped")
    return facts


STEP = Step("Services over TCP and UDP: echo, daytime, chargen",
            f"the small services of RFC {', '.join(map(str, _RFCS[:-1]))} and {_RFCS[-1]} "
            "served over TCP (a phone call) "
            "and UDP (a letter) on one port number each, talked to by the paired clients",
            "lessons/services", "lab04-tcp-echo", run)
