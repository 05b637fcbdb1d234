"""Lab 14: a multi-client chat server — selectors, broadcast, nicknames, clients that vanish.

The student's server runs in the sandbox; the grader's own clients (up to 20
at once) join, talk and leave, and judge what each of them receives. The
server's thread count is sampled from ``/proc`` while 20 clients talk, so a
server that hides a thread per client is caught.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
import time
from typing import List, Optional

from netlab.labs._peers import HOST
from netlab.labs._probes import server
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeFailed, explain, free_port, wait_for_tcp
from netlab.labs.lab07 import _threads_of

__all__ = ["ChatClient", "broadcast", "crowd", "leave_mid_line", "nicknames", "segments"]

CLIENTS = 20


class ChatClient:
    """A grader-side chat client: whole lines in and out, every wait bounded."""

    def __init__(self, port: int, name: str = "") -> None:
        self.name = name
        self.sock = socket.create_connection((HOST, port), timeout=3)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def say(self, text: str) -> None:
        self.send(text.encode() + b"\n")

    def line(self, timeout: float = 2.0) -> Optional[str]:
        """The next whole line (without the newline), or None after ``timeout`` or at the end."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, ConnectionError):
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def lines(self, count: int, timeout: float = 3.0) -> List[str]:
        """Up to ``count`` lines, within ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        got: List[str] = []
        while len(got) < count:
            line = self.line(max(0.0, deadline - time.monotonic()))
            if line is None:
                break
            got.append(line)
        return got

    def quiet(self, wait: float = 0.3) -> List[str]:
        """Whatever lines arrive within ``wait`` seconds (what should *not* have come)."""
        return self.lines(1000, wait)

    def join(self, nick: str) -> str:
        self.say(f"NICK {nick}")
        reply = self.line() or "(nothing)"
        if reply.startswith("OK"):
            self.name = nick
        return reply

    def close(self, reset: bool = False) -> None:
        if reset:  # SO_LINGER 0: close() sends RST instead of FIN
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class _Chat:
    """The student's server in the sandbox, and the grader's clients of one check."""

    def __init__(self, labdir: str) -> None:
        self.port = free_port()
        self.box = server(labdir, "chat", "serve", [HOST, self.port])
        self.clients: List[ChatClient] = []
        self.tag = os.urandom(2).hex()
        try:
            wait_for_tcp(self.box, self.port)
        except ProbeFailed:
            self.box.stop()
            raise

    def client(self) -> ChatClient:
        c = ChatClient(self.port)
        self.clients.append(c)
        return c

    def joined(self, nick: str) -> ChatClient:
        c = self.client()
        reply = c.join(nick)
        if not reply.startswith("OK"):
            raise CheckFailed(f"NICK {nick} (a free, valid nick) was answered {reply!r}, expected 'OK {nick}'")
        return c

    def died(self) -> str:
        return "the server died: " + explain(self.box.stop(), "it") if not self.box.alive() else ""

    def __enter__(self) -> "_Chat":
        return self

    def __exit__(self, *exc) -> None:
        for c in self.clients:
            c.close()
        self.box.stop()


def _expect(client: ChatClient, wanted: List[str], what: str) -> None:
    got = client.lines(len(wanted))
    if got != wanted:
        raise CheckFailed(f"{what}: {client.name or 'a client'} expected {wanted[:3]}, got {got[:3]}")


def nicknames(labdir: str) -> str:
    with _Chat(labdir) as chat:
        nick = f"ann{chat.tag}"
        early = chat.client()
        early.say("hello before any nick")
        reply = early.line() or "(nothing)"
        if not reply.startswith("ERR"):
            raise CheckFailed(f"a line before NICK was answered {reply!r}, expected a line starting with ERR")
        chat.joined(nick)
        again = chat.client()
        reply = again.join(nick)
        if not reply.startswith("ERR"):
            raise CheckFailed(f"a second client asking for the taken nick {nick} got {reply!r}, expected ERR ...")
        bad = again.join("no spaces allowed")
        if not bad.startswith("ERR"):
            raise CheckFailed(f"NICK 'no spaces allowed' got {bad!r}, expected ERR ...")
        other = f"bob{chat.tag}"
        reply = again.join(other)
        if reply != f"OK {other}":
            raise CheckFailed(f"after a refusal, NICK {other} got {reply!r}, expected 'OK {other}'")
    return "OK for a free nick, ERR before NICK, for a taken nick and a bad one, then OK"


def broadcast(labdir: str) -> str:
    with _Chat(labdir) as chat:
        a, b, c = (chat.joined(f"{n}{chat.tag}") for n in ("amy", "ben", "cat"))
        _expect(a, [f"* {b.name} joined", f"* {c.name} joined"], "joins are announced to the others")
        _expect(b, [f"* {c.name} joined"], "joins are announced to the others")
        m1, m2 = f"hello {os.urandom(4).hex()}", f"hi there {os.urandom(4).hex()}"
        a.say(m1)
        _expect(b, [f"<{a.name}> {m1}"], f"{a.name} said {m1!r}")
        b.say(m2)
        _expect(c, [f"<{a.name}> {m1}", f"<{b.name}> {m2}"], "two messages")
        got = a.lines(1)
        if got != [f"<{b.name}> {m2}"]:
            raise CheckFailed(f"{a.name} said {m1!r} and {b.name} {m2!r}; {a.name} then received {got}: "
                              f"the sender should not get its own line back")
        if c.quiet(0.2):
            raise CheckFailed(f"{c.name} received more lines than were sent")
    return "joins announced, each line to every other client as <nick> text, not back to the sender"


def segments(labdir: str) -> str:
    with _Chat(labdir) as chat:
        a, b = chat.joined(f"amy{chat.tag}"), chat.joined(f"ben{chat.tag}")
        a.lines(1)
        # One line in three TCP segments, then two lines in one segment.
        for piece in (b"par", b"tial one\nsecond\nthi", b"rd\n"):
            a.send(piece)
            time.sleep(0.05)
        _expect(b, [f"<{a.name}> partial one", f"<{a.name}> second", f"<{a.name}> third"],
                "a line sent in pieces, and two lines in one segment")
    return "lines rebuilt from pieces, and split when several came in one segment"


def crowd(labdir: str) -> str:
    per = 5
    with _Chat(labdir) as chat:
        users = [chat.joined(f"u{i:02d}{chat.tag}") for i in range(CLIENTS)]
        for i, u in enumerate(users):
            got = u.lines(CLIENTS - 1 - i)
            if len(got) != CLIENTS - 1 - i:
                raise CheckFailed(f"client {i + 1} of {CLIENTS} saw {len(got)} of the "
                                  f"{CLIENTS - 1 - i} joins after its own")
        peak = {"threads": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak["threads"] = max([peak["threads"]] + [_threads_of(p) for p in chat.box.processes()])
                time.sleep(0.005)
        received: dict = {}

        def talk(u: ChatClient) -> None:
            try:
                for k in range(per):
                    u.say(f"msg {k} from {u.name}")
                received[u.name] = u.lines(per * (CLIENTS - 1), timeout=6)
            except OSError as exc:
                received[u.name] = [f"({exc})"]
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        talkers = [threading.Thread(target=talk, args=(u,), daemon=True) for u in users]
        for t in talkers:
            t.start()
        for t in talkers:
            t.join(8)
        elapsed = time.monotonic() - start
        stop.set()
        sampler.join(1)
    for u in users:
        got = received.get(u.name, [])
        mine = [x for x in got if f"from {u.name}" in x]
        if mine:
            raise CheckFailed(f"{u.name} received its own line back: {mine[0]!r}")
        if len(got) != per * (CLIENTS - 1):
            raise CheckFailed(f"{CLIENTS} clients each sent {per} lines; {u.name} received {len(got)} "
                              f"of the {per * (CLIENTS - 1)} from the others")
        for v in users:
            if v is u:
                continue
            order = [x for x in got if x.startswith(f"<{v.name}> ")]
            if order != [f"<{v.name}> msg {k} from {v.name}" for k in range(per)]:
                raise CheckFailed(f"{u.name} received {v.name}'s lines as {order[:per]}: lost, changed or "
                                  f"out of order")
    if peak["threads"] > 1:
        raise CheckFailed(f"every line arrived, but the server ran {peak['threads']} threads: "
                          f"this lab's server is one thread with selectors")
    return (f"{CLIENTS} clients x {per} lines: every line to the 19 others, in order, in {elapsed:.2f} s, "
            f"on one thread")


def leave_mid_line(labdir: str) -> str:
    with _Chat(labdir) as chat:
        stay = chat.joined(f"sue{chat.tag}")
        for how in ("FIN", "RST"):
            nick = f"dan{chat.tag}"
            dan = chat.joined(nick)
            _expect(stay, [f"* {nick} joined"], "a join")
            dan.send(b"this line never ends")
            time.sleep(0.05)
            dan.close(reset=(how == "RST"))
            got = stay.lines(1)
            if got and "never ends" in got[0]:
                raise CheckFailed(f"a client closed ({how}) in the middle of a line and the others got the "
                                  f"unfinished line {got[0]!r}")
            if got != [f"* {nick} left"]:
                raise CheckFailed(f"a client closed ({how}) in the middle of a line; the others then got "
                                  f"{got}, expected ['* {nick} left']" + ("; " + chat.died() if chat.died() else ""))
        back = chat.joined(nick)  # the nick is free again
        _expect(stay, [f"* {nick} joined"], "the nick of a client that left is free again")
        back.say("still here")
        _expect(stay, [f"<{nick}> still here"], "after two clients vanished mid-line")
    return "an unfinished line dies with its client (FIN and RST), '* nick left' is sent, the nick is free again"
