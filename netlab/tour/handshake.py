"""Step: the three-way handshake, captured live (root) or from the sample capture."""
from __future__ import annotations

import os
from typing import Dict, List, Optional

from netlab import clients, dissect, servers, sysinfo
from netlab.errors import NetlabError
from netlab.packet import pcap
from netlab.tour._step import SAMPLE_CAPTURE, Step, TourContext


def _show(ctx: TourContext, n: int, rec, note: Optional[str]) -> None:
    """One TCP packet, compact: who sends what, and which step of the handshake it is."""
    flags = ",".join(dissect.flag_names(rec.flags))
    parts = [f"{n:>2}  {rec.src}:{rec.sport} > {rec.dst}:{rec.dport}", f"[{flags}]",
             f"seq={rec.seq} ack={rec.ack} len={rec.payload_len}"]
    ctx.parts(parts + ([f"<- {note}"] if note else []))


def _live(ctx: TourContext) -> List:
    """Capture one echo connection on loopback (root or CAP_NET_RAW)."""
    from netlab import sniff  # a packet socket: only imported when capturing

    srv = servers.start_server("echo", ctx.host, 0, protocols=("tcp",))
    ctx.stack.callback(srv.stop)
    ctx.say(f"capturing on lo while a client talks to the echo server on "
            f"tcp://{ctx.host}:{srv.port} ...")

    def talk() -> None:
        # The packet socket is open: whatever the connection sends now is queued for us.
        clients.tcp_echo(ctx.host, srv.port, b"hello netlab\r\n", timeout=2.0)

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


def _sample(ctx: TourContext) -> List:
    if not os.path.exists(SAMPLE_CAPTURE):
        raise NetlabError(f"the sample capture {SAMPLE_CAPTURE} is missing from this install "
                          "(reinstall netlab)")
    ctx.say("decoding the sample capture netlab/data/samples/handshake.pcap "
            "(a real loopback echo connection, recorded with tcpdump)")
    with pcap.open_capture(SAMPLE_CAPTURE) as buf:
        return [rec for rec in dissect.dissect(buf) if rec.proto == 6]


def run(ctx: TourContext) -> Dict:
    live = ctx.live and sysinfo.can_capture()
    records = []
    if live:
        try:
            records = _live(ctx)
        except (NetlabError, OSError) as exc:
            ctx.say(f"live capture failed ({exc}); decoding the sample capture instead")
        live = bool(records)
    if not live:
        records = _sample(ctx)
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
        _show(ctx, n, rec, note)
    ctx.say()
    ctx.say("SYN, SYN-ACK, ACK: each side learns the other's starting sequence number; "
            "FIN from each side closes one direction each.")
    steps = [n.split(":")[0] for n in notes if n]
    return {"source": "live" if live else "sample", "packets": len(records), "steps": steps}


STEP = Step("The three-way handshake",
            "SYN, SYN-ACK, ACK open a TCP connection and FINs close it: a live capture on "
            "loopback when privileged, the decoded sample capture otherwise",
            "lessons/handshake", "lab08-packets", run)
