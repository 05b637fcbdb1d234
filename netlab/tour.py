"""``netlab tour``: the whole port lesson, live, on loopback, in one command.

The tour is a list of :class:`Step` objects. Each one runs a real experiment on
free ports of 127.0.0.1 with netlab's own library (servers, clients, the port
tools, the packet core, the lossy relay, the parse benchmark), prints what it
found, and names the lesson page and the lab that explain it. Nothing needs
root; when the tour *is* root it also shows what an ordinary user would get
and captures a live handshake.

Every step is bounded in time and cleans up after itself (servers stopped,
sockets closed) even when it fails, so the whole tour takes well under a
minute and leaves nothing running.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, TextIO

from netlab import sysinfo
from netlab._cliutil import print_table
from netlab.errors import NetlabError, UsageError

__all__ = [
    "HOST",
    "SAMPLE_CAPTURE",
    "STEPS",
    "Step",
    "StepResult",
    "StepUnavailable",
    "TourContext",
    "get_step",
    "iter_list",
    "run_step",
    "run_tour",
]

HOST = "127.0.0.1"

#: Where the sample capture of a real loopback handshake ships with the package.
SAMPLE_CAPTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "data", "samples", "handshake.pcap")


class StepUnavailable(Exception):
    """A library piece the step needs is not part of this build (yet)."""


@dataclass
class Step:
    """One stop of the tour: what it shows and where to read more."""

    title: str
    shows: str
    lesson: str          # page under docs/, without suffix, e.g. "lessons/ports"
    lab: str             # folder under exercises/, e.g. "lab01-ports"
    func: Callable[["TourContext"], Dict]
    number: int = 0      # its place in STEPS, set below
    @property
    def lab_number(self) -> int:
        return int(self.lab[3:5])


@dataclass
class StepResult:
    number: int
    title: str
    status: str          # "ok", "unavailable" or "failed"
    facts: Dict = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0


class TourContext:
    """What a step gets: an output stream, the host and a cleanup stack."""

    def __init__(self, out: TextIO, seed: int = 1, live: bool = True) -> None:
        self.out = out
        self.host = HOST
        self.seed = seed
        #: False: decode the shipped sample capture even when a live capture is possible.
        self.live = live
        self.stack = contextlib.ExitStack()

    def say(self, text: str = "") -> None:
        for line in (text.splitlines() or [""]):
            print(f"   {line}".rstrip(), file=self.out)
        self.out.flush()

    def table(self, rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
        buf = io.StringIO()
        print_table(rows, headers, file=buf)
        self.say(buf.getvalue().rstrip("\n"))


def _need(module: str, *names: str):
    """Import ``module`` and check it offers ``names``, or explain what is missing."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise StepUnavailable(f"{module} is not part of this build ({exc})") from None
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise StepUnavailable(f"{module} does not offer {', '.join(missing)} in this build")
    return mod


# --------------------------------------------------------------------------- steps

def _step_ports(ctx: TourContext) -> Dict:
    ports = _need("netlab.ports", "describe_port", "RANGES")
    rows = []
    for name, first, last in ports.RANGES:
        rows.append((name, f"{first}-{last}", last - first + 1))
    ctx.table(rows, ["range", "ports", "count"])
    ctx.say()
    sample = [7, 13, 19, 22, 80, 443, 8080, 50000]
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
    kind = ports.port_range(picked)
    ctx.say(f"Binding port 0 just now got port {picked} ({kind} range).")
    if low < 49152:
        ctx.say("Linux's ephemeral range starts below IANA's dynamic range (49152), so a "
                "local port can carry a registered number: assigned globally, used locally.")
    return {"ranges": [r[0] for r in ports.RANGES], "ephemeral": [low, high],
            "port0_got": picked, "sample": {d["port"]: d["range"] for d in described}}


def _step_independence(ctx: TourContext) -> Dict:
    independence = _need("netlab.independence", "demonstrate")
    data = independence.demonstrate(0, ctx.host)
    ctx.table([(st["step"], st["socket"], "bound" if st["ok"] else f"{st['error']} ({st['errno']})",
                st["meaning"]) for st in data["steps"]],
              ["#", "socket", "result", "meaning"])
    ctx.say()
    ctx.say(f"Port {data['port']}: one TCP and one UDP socket bound the same number at once; "
            f"a second TCP socket got {data['second_tcp_error']}.")
    ctx.say("The kernel keys sockets by (protocol, address, port): TCP 7 and UDP 7 are "
            "two different doors.")
    return {"port": data["port"], "tcp_bound": data["tcp_bound"],
            "udp_bound": data["udp_bound"], "second_tcp_error": data["second_tcp_error"]}


def _step_services(ctx: TourContext) -> Dict:
    servers = _need("netlab.servers", "start_server")
    clients = _need("netlab.clients", "echo", "daytime", "chargen")
    started = {}
    for name in ("echo", "daytime", "chargen"):
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
        ctx.say(f"    {text}")
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
        ctx.say(f"echo stopped, {proto} client: {outcome}")
        facts[f"stopped_{proto}"] = outcome
    ctx.say()
    for name, srv in started.items():
        st = srv.stop()
        ctx.say(f"{name:8} served {st.get('connections', 0)} TCP connection(s) and "
                f"{st.get('datagrams', 0)} UDP datagram(s); stopped")
    return facts


def _tcp_line(n: int, rec, note: Optional[str], flag_names) -> str:
    """One TCP packet, compact: who sends what, and which step of the handshake it is."""
    flags = ",".join(flag_names(rec.flags))
    text = (f"{n:>2}  {rec.src}:{rec.sport} > {rec.dst}:{rec.dport}  [{flags}]  "
            f"seq={rec.seq} ack={rec.ack} len={rec.payload_len}")
    return text + (f"  <- {note}" if note else "")


def _live_handshake(ctx: TourContext) -> List:
    """Capture one echo connection on loopback (root or CAP_NET_RAW)."""
    sniff = _need("netlab.sniff", "iter_sniff")
    servers = _need("netlab.servers", "start_server")
    clients = _need("netlab.clients", "tcp_echo")
    srv = servers.start_server("echo", ctx.host, 0, protocols=("tcp",))
    ctx.stack.callback(srv.stop)
    ctx.say(f"capturing on lo while a client talks to the echo server on "
            f"tcp://{ctx.host}:{srv.port} ...")

    def talk() -> None:
        # The packet socket is open: whatever the connection sends now is queued for us.
        clients.tcp_echo(ctx.host, srv.port, b"hello netlab\r\n", timeout=2.0)

    dissect = _need("netlab.dissect", "Annotator")
    annotator = dissect.Annotator()
    records = []
    packets = sniff.iter_sniff(port=srv.port, count=32, timeout=3.0, ready=talk)
    try:
        for rec, _frame in packets:
            if rec.proto == 6:
                records.append(rec)
                if "teardown done" in (annotator.note(rec) or ""):
                    break  # the connection is over: no need to wait for the timeout
    finally:
        packets.close()
    return records


def _sample_handshake(ctx: TourContext) -> List:
    pcap = _need("netlab.pcap", "open_capture")
    dissect = _need("netlab.dissect", "dissect")
    if not os.path.exists(SAMPLE_CAPTURE):
        raise StepUnavailable(f"the sample capture {SAMPLE_CAPTURE} is missing from this install")
    ctx.say("decoding the sample capture netlab/data/samples/handshake.pcap "
            "(a real loopback echo connection, recorded with tcpdump)")
    with pcap.open_capture(SAMPLE_CAPTURE) as buf:
        return [rec for rec in dissect.dissect(buf) if rec.proto == 6]


def _step_handshake(ctx: TourContext) -> Dict:
    dissect = _need("netlab.dissect", "Annotator", "flag_names")
    live = ctx.live and sysinfo.can_capture()
    records = []
    if live:
        try:
            records = _live_handshake(ctx)
        except (NetlabError, OSError) as exc:
            ctx.say(f"live capture failed ({exc}); decoding the sample capture instead")
        live = bool(records)
    if not live:
        records = _sample_handshake(ctx)
        if not ctx.live:
            ctx.say("(--no-live: the sample capture, not a live one)")
        elif not sysinfo.can_capture():
            ctx.say("(no root or CAP_NET_RAW here, so no live capture: run the tour as root "
                    "to watch your own connection)")
    ctx.say()
    annotator = dissect.Annotator()
    notes = []
    for n, rec in enumerate(records, 1):
        note = annotator.note(rec)
        notes.append(note or "")
        ctx.say(_tcp_line(n, rec, note, dissect.flag_names))
    ctx.say()
    ctx.say("SYN, SYN-ACK, ACK: each side learns the other's starting sequence number; "
            "FIN from each side closes one direction each.")
    steps = [n.split(":")[0] for n in notes if n]
    return {"source": "live" if live else "sample", "packets": len(records), "steps": steps}


_LOSS = 0.2
_DATAGRAMS = 50


def _step_loss(ctx: TourContext) -> Dict:
    servers = _need("netlab.servers", "start_server")
    redirect = _need("netlab.redirect", "start_redirect")
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
    ctx.say("Nobody told the sender: only the sequence numbers it wrote itself show the gaps.")
    ctx.say()
    # The phone call on a slow line: TCP through a relay that delays every chunk.
    clients = _need("netlab.clients", "tcp_echo")
    tcp_echo = servers.start_server("echo", ctx.host, 0, protocols=("tcp",))
    ctx.stack.callback(tcp_echo.stop)
    tcp_relay = redirect.start_redirect(0, ctx.host, tcp_echo.port, host=ctx.host,
                                        protocols=("tcp",), delay_ms=20)
    ctx.stack.callback(tcp_relay.stop)
    payload = b"".join(b"letter %03d\n" % seq for seq in range(_DATAGRAMS))
    back = clients.tcp_echo(ctx.host, tcp_relay.ports["tcp"], payload, timeout=5.0)
    intact = back == payload
    ctx.say(f"TCP through a relay adding 20 ms: sent {len(payload)} bytes ({_DATAGRAMS} lines), "
            f"got {len(back)} back, {'every byte, in order' if intact else 'NOT intact'}")
    return {"sent": _DATAGRAMS, "received": len(got), "lost": len(missing),
            "dropped": stats["dropped"], "tcp_intact": intact}


_BENCH_PACKETS = 50_000


def _rate(pps: Optional[float]) -> str:
    if pps is None:
        return "-"
    return f"{pps / 1e6:.2f} M/s" if pps >= 1e6 else f"{pps / 1e3:.0f} k/s"


def _step_parse_bench(ctx: TourContext) -> Dict:
    bench = _need("netlab.bench.parse", "parse_bench")
    ctx.say(f"timing both packet backends on a generated capture of {_BENCH_PACKETS:,} packets "
            "(best of 3 for the compiled core) ...")
    data = bench.parse_bench(path=None, packets=_BENCH_PACKETS, repeats=3, dpkt=False)
    stats, records = data["stats_pps"], data["records_pps"]
    names = [n for n in ("cython", "python", "c") if n in stats or n in records]
    labels = {"cython": "cython (compiled core)", "python": "python (the twin)",
              "c": "plain C loop (baseline)"}
    ctx.say()
    ctx.table([(labels[n], _rate(stats.get(n)), _rate(records.get(n))) for n in names],
              ["backend", "stats path", "records path"])
    ctx.say()
    facts = {"packets": data["packets"], "backends": sorted(k for k in stats if k != "c")}
    # Same answers, not just different speeds: both backends count the sample capture.
    from netlab import packet

    pcap = _need("netlab.pcap", "open_capture")
    with pcap.open_capture(SAMPLE_CAPTURE) as buf:
        counts = {name: impl.aggregate(buf, False) for name, impl in packet.backends().items()}
    same = len({repr(sorted(c.items())) for c in counts.values()}) == 1
    facts["same_results"] = same
    if "cython" in stats and "python" in stats and stats["python"]:
        factor = stats["cython"] / stats["python"]
        facts["stats_speedup"] = round(factor, 1)
        ctx.say(f"The compiled core counted the file {factor:.0f} times faster than its "
                "pure-Python twin.")
    if len(counts) > 1:
        ctx.say(f"Both backends' counts of the sample capture are identical: "
                f"{'yes' if same else 'NO'} ({', '.join(sorted(counts))}).")
    else:
        ctx.say(f"Only the {', '.join(counts)} backend is available here "
                f"({packet.BACKEND_REASON}).")
    for note in data.get("notes", []):
        ctx.say(f"note: {note}")
    ctx.say("Full run with dpkt and more packets: netlab bench parse")
    return facts


#: Ports below 1024 tried in turn, so a web server already on 80 does not spoil the step.
_LOW_PORTS = (80, 81, 88, 100, 700, 999, 1000, 1023)


def _bind_row(who: str, r: Dict) -> tuple:
    return (who, r["port"], "bound" if r["ok"] else f"{r['error']} ({r['errno']})", r["reason"])


def _step_bindcheck(ctx: TourContext) -> Dict:
    bindcheck = _need("netlab.bindcheck", "check_bind", "check_bind_as_user")
    start = sysinfo.unprivileged_port_start()
    mine = None
    for port in _LOW_PORTS:
        mine = bindcheck.check_bind(port, "tcp", ctx.host)
        if mine["error"] != "EADDRINUSE":
            break
    assert mine is not None
    rows = [_bind_row(f"{mine['user']} (this process)", mine)]
    facts = {"unprivileged_port_start": start, "port": mine["port"], "user": mine["user"],
             "ok": mine["ok"], "error": mine["error"]}
    if sysinfo.is_root():
        other = bindcheck.check_bind_as_user(mine["port"], "tcp", ctx.host, "nobody")
        rows.append(_bind_row(f"{other['user']} (child process)", other))
        facts.update(as_user=other["user"], as_user_ok=other["ok"], as_user_error=other["error"])
    ctx.say(f"net.ipv4.ip_unprivileged_port_start on this machine: {start}")
    ctx.say()
    for who, port, result, reason in rows:
        ctx.say(f"as {who}: bind tcp://{ctx.host}:{port} -> {result}")
        ctx.say(f"    {reason}")
    ctx.say()
    if not sysinfo.is_root():
        ctx.say("Run the tour as root to also see the same bind as root succeed, "
                "or give a program CAP_NET_BIND_SERVICE.")
    ctx.say("The usual way out: serve on 8080 unprivileged and redirect 80 to it "
            "(lesson: docs/lessons/redirect.rst).")
    return facts


def _step_network(ctx: TourContext) -> Dict:
    """Two hosts (network namespaces): binding, then drop vs reject, seen from the other host."""
    net = _need("netlab.net", "up", "down", "start_in_host", "wait_ready", "set_port")
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
    why = {7001: "bound to 0.0.0.0: reachable from h1", 7002: "bound to 127.0.0.1: h2's own "
           "loopback, out of h1's reach", 7003: "firewall drop: no answer at all",
           7004: "firewall reject: a RST, as if no server", 7005: "no server: the kernel's RST"}
    ctx.say()
    ctx.table([(f"{p}/tcp", states[p], why[p]) for p in sorted(states)],
              ["port", "h1 scans h2", "why"])
    ctx.say()
    ctx.say("Try it yourself: sudo netlab net up, then netlab net run h1 -- COMMAND "
            "(lesson: docs/lessons/network.rst).")
    return {"network": name, "states": states}


STEPS: List[Step] = [
    Step("Port numbers and their three ranges",
         "a port picks the program on a host; IANA's well-known, registered and "
         "dynamic ranges; the ephemeral ports the kernel hands out locally",
         "lessons/ports", "lab01-ports", _step_ports),
    Step("Services over TCP and UDP: echo, daytime, chargen",
         "the small services of RFC 862, 864 and 867 served over TCP (a phone call) "
         "and UDP (a letter) on one port number each, talked to by the paired clients",
         "lessons/services", "lab04-tcp-echo", _step_services),
    Step("TCP and UDP share one port number",
         "TCP and UDP are separate port spaces: both bind the same number, "
         "a second TCP socket on it is refused",
         "lessons/binding", "lab02-binding", _step_independence),
    Step("Binding a port below 1024",
         "ports below ip_unprivileged_port_start need root or CAP_NET_BIND_SERVICE; "
         "what this user gets, and (as root) what an ordinary user gets",
         "lessons/binding", "lab02-binding", _step_bindcheck),
    Step("The three-way handshake",
         "SYN, SYN-ACK, ACK open a TCP connection and FINs close it: a live capture on "
         "loopback when privileged, the decoded sample capture otherwise",
         "lessons/handshake", "lab08-packets", _step_handshake),
    Step("UDP loss through a lossy relay",
         "UDP is a letter: datagrams through a relay that drops 20% of them are lost "
         "without anyone being told; TCP through a slow relay still delivers every byte",
         "lessons/tcp-udp", "lab03-udp-echo", _step_loss),
    Step("Parsing packets: the compiled core and its twin",
         "a short parse benchmark of both packet backends: the Cython core and the "
         "readable pure-Python twin give the same answers at very different speeds",
         "lessons/packets", "lab08-packets", _step_parse_bench),
]
if sysinfo.is_root():  # namespaces and nftables are root-only: the step exists for root
    STEPS.append(Step("A network of hosts: binding and a firewall seen from another host",
                      "two hosts as network namespaces: 0.0.0.0 vs 127.0.0.1 seen from the other "
                      "host, and a firewall's drop (filtered) vs reject (closed) in a scan",
                      "lessons/network", "lab10-scan-redirect", _step_network))

for _number, _step in enumerate(STEPS, 1):
    _step.number = _number


def get_step(number: int) -> Step:
    """The step numbered ``number``, or a :class:`UsageError` naming the valid ones."""
    for step in STEPS:
        if step.number == number:
            return step
    raise UsageError(f"no tour step {number}: choose 1-{len(STEPS)} "
                     "(see 'netlab tour --list')")


def _header(step: Step, out: TextIO) -> None:
    print(f"== Step {step.number}/{len(STEPS)}: {step.title}", file=out)
    print(f"   shows:  {step.shows}", file=out)
    print(f"   lesson: docs/{step.lesson}.rst    lab: exercises/{step.lab}/ "
          f"(netlab lab show {step.lab_number})", file=out)
    print(file=out)
    out.flush()


def run_step(step: Step, out: TextIO = sys.stdout, seed: int = 1,
             live: bool = True) -> StepResult:
    """Run one step with its header; never raises for the step's own failures."""
    _header(step, out)
    ctx = TourContext(out, seed=seed, live=live)
    start = time.monotonic()
    try:
        with ctx.stack:
            facts = step.func(ctx) or {}
        result = StepResult(step.number, step.title, "ok", facts)
    except StepUnavailable as exc:
        ctx.say(f"(not available: {exc}; the lesson page explains this step)")
        result = StepResult(step.number, step.title, "unavailable", message=str(exc))
    except (NetlabError, OSError) as exc:
        ctx.say(f"step failed: {exc}")
        result = StepResult(step.number, step.title, "failed", message=str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken step must not end the tour
        if os.environ.get("NETLAB_DEBUG"):
            raise
        message = f"internal error: {type(exc).__name__}: {exc} (NETLAB_DEBUG=1 shows the traceback)"
        ctx.say(f"step failed: {message}")
        result = StepResult(step.number, step.title, "failed", message=message)
    result.seconds = round(time.monotonic() - start, 3)
    print(file=out)
    out.flush()
    return result


def run_tour(numbers: Optional[Sequence[int]] = None, out: TextIO = sys.stdout,
             seed: int = 1, live: bool = True) -> List[StepResult]:
    """Run the steps numbered ``numbers`` (default: all, in order) and return their results.

    ``seed`` makes the lossy relay repeatable; ``live=False`` decodes the shipped
    sample capture instead of capturing the handshake live.
    """
    steps = [get_step(n) for n in numbers] if numbers else list(STEPS)
    return [run_step(step, out, seed, live) for step in steps]


def iter_list() -> Iterator[str]:
    for step in STEPS:
        yield (f"{step.number}. {step.title}  (docs/{step.lesson}.rst, "
               f"exercises/{step.lab}/)")
