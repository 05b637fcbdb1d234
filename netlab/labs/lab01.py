"""Lab 1: ports and services — classify port numbers, read a service table.

The expectations come from the rules themselves (RFC 6335 ranges, the
``/etc/services`` file format), not from netlab's own port registry, so the
lab grades the same whatever that registry holds.
"""
from __future__ import annotations

from netlab.labs._probes import call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.services.table import facts as service_facts

__all__ = ["classify", "reject", "privileged", "parse", "lookup", "services_on"]


# A service table in /etc/services format with the traps a real one has:
# comments, blank lines, tabs, aliases, the same name over TCP and UDP, and a
# name that exists over one protocol only. Its small services sit on the
# well-known ports of netlab's service table (a test holds them together).
SAMPLE_TABLE = """\
# Network services, Internet style (a sample for lab 1)

echo\t\t7/tcp
echo\t\t7/udp
discard\t\t9/tcp\t\tsink null
discard\t\t9/udp\t\tsink null
chargen\t\t19/tcp\t\tttytst source   # character generator
chargen\t\t19/udp\t\tttytst source
  ftp 21/tcp
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
time\t\t37/tcp\t\ttimserver
time\t\t37/udp\t\ttimserver
domain\t\t53/tcp
domain\t\t53/udp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
netlab-demo\t47007/udp\t# only over UDP
"""

_RANGES = [
    (0, "well-known"), (7, "well-known"), (80, "well-known"), (1023, "well-known"),
    (1024, "registered"), (8080, "registered"), (49151, "registered"),
    (49152, "dynamic"), (60000, "dynamic"), (65535, "dynamic"),
]


def classify(labdir: str) -> str:
    outcomes = call_all(labdir, "ports", [["classify", [p]] for p, _ in _RANGES])
    wrong = []
    for (port, want), out in zip(_RANGES, outcomes):
        got = student_value(out, f"classify({port})")
        if got != want:
            wrong.append(f"classify({port}) gave {got!r}, expected {want!r}")
    if wrong:
        raise CheckFailed("; ".join(wrong[:3]))
    return f"{len(_RANGES)} ports on and around the range boundaries classified right"


def reject(labdir: str) -> str:
    bad = [-1, 65536, 100000]
    outcomes = call_all(labdir, "ports", [["classify", [p]] for p in bad])
    for port, out in zip(bad, outcomes):
        if out.get("ok"):
            raise CheckFailed(f"classify({port}) returned {out['value']!r} instead of raising ValueError")
        if out.get("error") == "NotImplementedError":
            student_value(out, f"classify({port})")
        if out.get("error") != "ValueError":
            raise CheckFailed(f"classify({port}) raised {out.get('error')}, expected ValueError")
    return "ports outside 0-65535 raise ValueError"


def privileged(labdir: str) -> str:
    cases = [([80], True), ([1023], True), ([1024], False), ([8080], False), ([0], False),
             ([80, 80], False), ([443, 1000], True), ([1000, 443], False)]
    outcomes = call_all(labdir, "ports", [["needs_privilege", args] for args, _ in cases])
    for (args, want), out in zip(cases, outcomes):
        call = f"needs_privilege({', '.join(map(str, args))})"
        got = student_value(out, call)
        if got is not want:
            raise CheckFailed(f"{call} gave {got!r}, expected {want!r}")
    return "privilege rule right, including port 0 and a changed start"


def _sample_entries() -> list:
    want = []
    for line in SAMPLE_TABLE.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            port, proto = fields[1].split("/")
            want.append({"name": fields[0], "port": int(port), "proto": proto, "aliases": fields[2:]})
    return want


def _entries(labdir: str) -> list:
    out = call_all(labdir, "ports", [["parse_services", [SAMPLE_TABLE]]])[0]
    entries = student_value(out, "parse_services(sample table)")
    if not isinstance(entries, list):
        raise CheckFailed(f"parse_services returned {type(entries).__name__}, expected a list of dicts")
    return entries


def parse(labdir: str) -> str:
    entries = _entries(labdir)
    want = _sample_entries()
    if len(entries) != len(want):
        raise CheckFailed(f"found {len(entries)} entries, the sample table has {len(want)}")
    for got, exp in zip(entries, want):
        if not isinstance(got, dict) or {k: got.get(k) for k in exp} != exp:
            raise CheckFailed(f"entry for line '{exp['name']} {exp['port']}/{exp['proto']}' "
                              f"is {got!r}, expected {exp!r}")
    return f"{len(want)} entries with names, ports, protocols and aliases"


def lookup(labdir: str) -> str:
    cases = [(["ssh", "tcp"], 22), (["www", "tcp"], 80), (["sink", "udp"], service_facts("discard").well_known_port),
             (["ssh", "udp"], None), (["netlab-demo", "udp"], 47007), (["netlab-demo", "tcp"], None),
             (["nosuch", "tcp"], None)]
    # Hand in the grader's own parse of the sample, so that a mistake in
    # parse_services costs points once, not three times.
    entries = _sample_entries()
    call_list = [["lookup", [entries] + args] for args, _ in cases]
    outcomes = call_all(labdir, "ports", call_list)
    for (args, want), out in zip(cases, outcomes):
        call = f"lookup(entries, {args[0]!r}, {args[1]!r})"
        got = student_value(out, call)
        if got != want:
            raise CheckFailed(f"{call} gave {got!r}, expected {want!r}")
    return "names and aliases found per protocol"


def services_on(labdir: str) -> str:
    entries = _sample_entries()
    echo = service_facts("echo").well_known_port
    cases = [(echo, {"tcp": "echo", "udp": "echo"}), (22, {"tcp": "ssh"}),
             (47007, {"udp": "netlab-demo"}), (8, {})]
    outcomes = call_all(labdir, "ports", [["services_on", [entries, p]] for p, _ in cases])
    for (port, want), out in zip(cases, outcomes):
        got = student_value(out, f"services_on(entries, {port})")
        if got != want:
            raise CheckFailed(f"services_on(entries, {port}) gave {got!r}, expected {want!r}")
    return "one port number, two protocols, answered per protocol"
