"""Step: binding a port below 1024 (root, CAP_NET_BIND_SERVICE, an ordinary user)."""
from __future__ import annotations

from typing import Dict

from netlab import bindcheck, sysinfo
from netlab.tour._step import Step, TourContext

#: Ports below 1024 tried in turn, so a web server already on 80 does not spoil the step.
_LOW_PORTS = (80, 81, 88, 100, 700, 999, 1000, 1023)


def _outcome(r: Dict) -> str:
    return "bound" if r["ok"] else f"{r['error']} ({r['errno']})"


def run(ctx: TourContext) -> Dict:
    start = sysinfo.unprivileged_port_start()
    mine = None
    for port in _LOW_PORTS:
        mine = bindcheck.check_bind(port, "tcp", ctx.host)
        if mine["error"] != "EADDRINUSE":
            break
    assert mine is not None
    rows = [(f"{mine['user']} (this process)", mine)]
    facts = {"unprivileged_port_start": start, "port": mine["port"], "user": mine["user"],
             "ok": mine["ok"], "error": mine["error"]}
    if sysinfo.is_root():
        other = bindcheck.check_bind_as_user(mine["port"], "tcp", ctx.host, "nobody")
        rows.append((f"{other['user']} (child process)", other))
        facts.update(as_user=other["user"], as_user_ok=other["ok"], as_user_error=other["error"])
    ctx.say(f"net.ipv4.ip_unprivileged_port_start on this machine: {start}")
    ctx.say()
    for who, r in rows:
        ctx.say(f"as {who}: bind tcp://{ctx.host}:{r['port']} -> {_outcome(r)}")
        ctx.say(f"    {r['reason']}", hang=4)
    ctx.say()
    if not sysinfo.is_root():
        ctx.say("Run the tour as root to also see the same bind as root succeed, "
                "or give a program CAP_NET_BIND_SERVICE.")
    ctx.say("The usual way out: serve on 8080 unprivileged and redirect 80 to it "
            "(lesson: docs/lessons/redirect.rst).")
    return facts


STEP = Step("Binding a port below 1024",
            "ports below ip_unprivileged_port_start need root or CAP_NET_BIND_SERVICE; "
            "what this user gets, and (as root) what an ordinary user gets",
            "lessons/binding", "lab02-binding", run)
