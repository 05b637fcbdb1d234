"""Lab 15: DNS by hand — a query built with ``struct``, answers parsed (RFC 1035).

The grader crafts every message itself, with fresh random names, ids, TTLs
and addresses each run, and compresses names the way real servers do (a
pointer to the longest suffix already written). The student's query is read
by the grader's own strict decoder; the lookup check runs a grader-side DNS
server on 127.0.0.1 of the private network that first sends a reply with the
wrong transaction id, as a spoofer would.
"""
from __future__ import annotations

import ipaddress
import os
import random
import struct
from typing import Dict, List, Tuple

from netlab.labs._peers import HOST, UdpService
from netlab.labs._probes import bytes_of, call_all, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeFailed

__all__ = ["DnsServer", "cname", "decode_query", "lookup", "malformed", "query", "read_name", "records",
           "response"]

A, CNAME, TXT, AAAA = 1, 5, 16, 28
MODULE = "dns"


# --- the grader's own encoder and decoder --------------------------------------------

def _label(rng: random.Random, n: int = 6) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def _put_name(buf: bytearray, name: str, seen: Dict[str, int]) -> None:
    """Append ``name``, as a pointer to the longest suffix already in ``buf`` where there is one."""
    labels = [x for x in name.split(".") if x]
    for i in range(len(labels)):
        suffix = ".".join(labels[i:]).lower()
        if suffix in seen:
            buf += struct.pack(">H", 0xC000 | seen[suffix])
            return
        seen[suffix] = len(buf)
        raw = labels[i].encode("ascii")
        buf += bytes([len(raw)]) + raw
    buf += b"\x00"


def response(ident: int, qname: str, qtype: int, answers: List[Tuple[str, int, int, object]],
             rcode: int = 0) -> bytes:
    """A compressed DNS response: ``answers`` are ``(owner, type, ttl, data)``.

    ``data`` is an address text for A/AAAA, a name for CNAME, bytes otherwise.
    """
    buf = bytearray(struct.pack(">HHHHHH", ident, 0x8180 | rcode, 1, len(answers), 0, 0))
    seen: Dict[str, int] = {}
    _put_name(buf, qname, seen)
    buf += struct.pack(">HH", qtype, 1)
    for owner, rtype, ttl, data in answers:
        _put_name(buf, owner, seen)
        buf += struct.pack(">HHI", rtype, 1, ttl)
        start = len(buf)
        buf += b"\x00\x00"  # RDLENGTH, filled in below
        if rtype == CNAME:
            _put_name(buf, str(data), seen)
        elif rtype in (A, AAAA):
            buf += ipaddress.ip_address(str(data)).packed
        else:
            buf += bytes(data)  # type: ignore[arg-type]
        struct.pack_into(">H", buf, start, len(buf) - start - 2)
    return bytes(buf)


def decode_query(data: bytes) -> dict:
    """The grader's strict reading of a query: ValueError naming what is wrong."""
    if len(data) < 12:
        raise ValueError(f"{len(data)} bytes, shorter than the 12-byte header")
    ident, flags, qd, an, ns, ar = struct.unpack_from(">HHHHHH", data)
    if flags & 0x8000:
        raise ValueError("the QR bit says 'response' (a query has it clear)")
    if (flags >> 11) & 0xF:
        raise ValueError(f"opcode {(flags >> 11) & 0xF}, not 0 (a standard query)")
    if (qd, an, ns, ar) != (1, 0, 0, 0):
        raise ValueError(f"counts QD/AN/NS/AR = {qd}/{an}/{ns}/{ar}, a query has 1/0/0/0")
    labels, offset = [], 12
    while True:
        if offset >= len(data):
            raise ValueError("QNAME has no terminating zero byte")
        n = data[offset]
        if n == 0:
            offset += 1
            break
        if n > 63:
            raise ValueError(f"QNAME label length byte {n} (labels are at most 63; no pointers in a query)")
        labels.append(data[offset + 1:offset + 1 + n].decode("ascii", "replace"))
        offset += 1 + n
    if len(data) != offset + 4:
        raise ValueError(f"{len(data) - offset} bytes after QNAME, expected 4 (QTYPE, QCLASS)")
    qtype, qclass = struct.unpack_from(">HH", data, offset)
    if qclass != 1:
        raise ValueError(f"QCLASS {qclass}, expected 1 (IN)")
    return {"id": ident, "name": ".".join(labels), "qtype": qtype}


# --- checks ------------------------------------------------------------------------------

def query(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    cases = [(f"{_label(rng)}.example.test", A), (f"mail.{_label(rng, 9)}.lab.test", AAAA),
             (f"{_label(rng, 63)}.x", CNAME)]
    cases = [(name, qtype, rng.randrange(1, 1 << 16)) for name, qtype in cases]
    outs = call_all(labdir, MODULE, [["build_query", list(c)] for c in cases])
    for (name, qtype, ident), out in zip(cases, outs):
        call = f"build_query({name!r}, {qtype}, {ident})"
        got = bytes_of(student_value(out, call))
        if got is None:
            raise CheckFailed(f"{call} returned {str(out['value'])[:60]}, not bytes")
        try:
            q = decode_query(got)
        except ValueError as exc:
            raise CheckFailed(f"{call}: {exc}") from None
        if q["id"] != ident:
            raise CheckFailed(f"{call}: the header's id reads {q['id']} (0x{q['id']:04x}); "
                              f"expected 0x{ident:04x}: byte order?")
        if q["name"] != name:
            raise CheckFailed(f"{call}: the question's name reads {q['name']!r}")
        if q["qtype"] != qtype:
            raise CheckFailed(f"{call}: QTYPE reads {q['qtype']}")
    return "three queries decoded by the grader: id, counts, labels, type and class right"


def _name_cases(rng: random.Random) -> Tuple[bytes, List[Tuple[int, str, int]]]:
    """A message with names written plain, ending in a pointer, and as pointer to a pointer."""
    zone = f"{_label(rng)}.test"
    first = f"www.{zone}"
    buf = bytearray(struct.pack(">HHHHHH", rng.randrange(1 << 16), 0x8180, 1, 0, 0, 0))
    cases = []
    start = len(buf)
    seen: Dict[str, int] = {}
    _put_name(buf, first, seen)
    cases.append((start, first, len(buf)))
    buf += struct.pack(">HH", A, 1)
    mail = f"{_label(rng, 4)}.{zone}"  # a new label, then a pointer to the zone
    start = len(buf)
    _put_name(buf, mail, seen)
    cases.append((start, mail, len(buf)))
    start = len(buf)
    buf += b"\x03ftp" + struct.pack(">H", 0xC000 | cases[1][0])  # a pointer to a name ending in a pointer
    cases.append((start, "ftp." + mail, len(buf)))
    start = len(buf)
    buf += struct.pack(">H", 0xC000 | cases[2][0])  # only a pointer: the name ends right after it
    cases.append((start, "ftp." + mail, len(buf)))
    start = len(buf)
    buf += b"\x00"  # the root
    cases.append((start, "", len(buf)))
    return bytes(buf), cases


def read_name(labdir: str) -> str:
    message, cases = _name_cases(random.Random(os.urandom(8)))
    outs = call_all(labdir, MODULE, [["read_name", [{"bytes": message.hex()}, off]] for off, _, _ in cases])
    kinds = ["plain labels", "labels then a pointer", "a label, then a pointer to a name with a pointer",
             "a single pointer", "the root name (one zero byte)"]
    for (off, name, end), out, kind in zip(cases, outs, kinds):
        got = student_value(out, f"read_name(message, {off}) ({kind})")
        if not isinstance(got, list) or len(got) != 2:
            raise CheckFailed(f"read_name(message, {off}) returned {str(got)[:60]}, not (name, offset)")
        if str(got[0]).rstrip(".") != name:
            raise CheckFailed(f"read_name(message, {off}) ({kind}): name {got[0]!r}, expected {name!r}")
        if got[1] != end:
            raise CheckFailed(f"read_name(message, {off}) ({kind}): the name is right but the offset after "
                              f"it is {got[1]}, expected {end}")
    return "plain names, pointers, pointers to pointers and the root read right, offsets too"


def _answers_match(got, expected: List[Tuple[str, int, int, object]], what: str) -> None:
    """Compare the student's A/AAAA/CNAME answers (other types are ignored) with the crafted ones."""
    if not isinstance(got, dict) or not isinstance(got.get("answers"), list):
        raise CheckFailed(f"{what} returned {str(got)[:80]}, not a dict with 'answers'")
    mine = [r for r in got["answers"] if isinstance(r, dict) and r.get("type") in (A, AAAA, CNAME)]
    want = [r for r in expected if r[1] in (A, AAAA, CNAME)]
    if len(mine) != len(want):
        raise CheckFailed(f"{what}: {len(mine)} A/AAAA/CNAME answers, the message holds {len(want)}")
    for i, (r, (owner, rtype, ttl, data)) in enumerate(zip(mine, want)):
        where = f"{what}, answer {i + 1}"
        if str(r.get("name", "")).rstrip(".").lower() != owner.lower():
            raise CheckFailed(f"{where}: name {r.get('name')!r}, expected {owner!r}")
        if r.get("ttl") != ttl:
            raise CheckFailed(f"{where}: ttl {r.get('ttl')!r}, expected {ttl} (a 32-bit number)")
        value = r.get("data")
        if rtype == CNAME:
            ok = isinstance(value, str) and value.rstrip(".").lower() == str(data).lower()
        else:
            try:
                ok = ipaddress.ip_address(str(value)) == ipaddress.ip_address(str(data))
            except ValueError:
                ok = False
        if not ok:
            raise CheckFailed(f"{where} (type {rtype}): data {str(value)[:60]!r}, expected {data!r}")


def _addr4(rng: random.Random) -> str:
    return str(ipaddress.IPv4Address(rng.randrange(1 << 24, 0xDF000000)))


def _addr6(rng: random.Random) -> str:
    return str(ipaddress.IPv6Address((0x20010DB8 << 96) | rng.randrange(1 << 64) | (rng.randrange(1 << 16) << 80)))


def records(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    ident = rng.randrange(1 << 16)
    name = f"{_label(rng)}.lab.test"
    answers = [(name, A, rng.randrange(1 << 31, 1 << 32), _addr4(rng)),
               (name, TXT, rng.randrange(1 << 16), b"\x0bhello world" + os.urandom(rng.randrange(1, 30))),
               (name, AAAA, rng.randrange(1 << 20), _addr6(rng)),
               (name, A, rng.randrange(1 << 20), _addr4(rng))]
    message = response(ident, name, A, answers)
    out = call_all(labdir, MODULE, [["parse_response", [{"bytes": message.hex()}]]])[0]
    got = student_value(out, "parse_response(an answer with A, TXT, AAAA, A records)")
    if not isinstance(got, dict):
        raise CheckFailed(f"parse_response returned {str(got)[:60]}, not a dict")
    if (got.get("id"), got.get("rcode")) != (ident, 0):
        raise CheckFailed(f"parse_response: id {got.get('id')!r} and rcode {got.get('rcode')!r}, "
                          f"expected {ident} and 0 (byte order? the rcode is the low 4 bits of the flags)")
    _answers_match(got, answers, "parse_response (A, TXT, AAAA, A)")
    return "A and AAAA records read, a TXT record skipped by its length, TTLs as 32-bit numbers"


def cname(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    name = f"www.{_label(rng)}.test"
    target = f"{_label(rng, 5)}.cdn.{name.split('.', 1)[1]}"
    answers = [(name, CNAME, rng.randrange(1 << 16), target),
               (target, A, rng.randrange(1 << 16), _addr4(rng))]
    ident = rng.randrange(1 << 16)
    outs = call_all(labdir, MODULE, [["parse_response", [{"bytes": response(ident, name, A, answers).hex()}]],
                                     ["parse_response", [{"bytes": response(ident, name, A, [], 3).hex()}]]])
    _answers_match(student_value(outs[0], "parse_response(CNAME then A)"), answers,
                   "parse_response (CNAME then A)")
    nx = student_value(outs[1], "parse_response(an NXDOMAIN answer)")
    if not isinstance(nx, dict) or nx.get("rcode") != 3 or nx.get("answers"):
        raise CheckFailed(f"parse_response(NXDOMAIN, no answers) gave {str(nx)[:80]}: rcode should be 3")
    return "a CNAME whose target is partly a pointer, and an NXDOMAIN rcode, read right"


def malformed(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    good = response(rng.randrange(1 << 16), f"{_label(rng)}.test", A, [(f"{_label(rng)}.test", A, 60, _addr4(rng))])
    cases = [("a 7-byte message", good[:7]),
             ("an answer cut in its record data", good[:-2]),
             ("a message cut inside the question's name", good[:20]),
             ("a pointer past the end", good[:12] + b"\xc0\xff" + good[-16:]),
             ]
    outs = call_all(labdir, MODULE, [["parse_response", [{"bytes": m.hex()}]] for _, m in cases])
    for (what, _), out in zip(cases, outs):
        if out.get("ok"):
            raise CheckFailed(f"parse_response({what}) returned {str(out.get('value'))[:60]}: "
                              f"it should raise ValueError")
        if out.get("error") != "ValueError":
            raise CheckFailed(f"parse_response({what}) raised {out.get('error')}: {out.get('message', '')[:60]}; "
                              f"expected ValueError")
    # A name that points to itself: without a bound, read_name never ends.
    loop = good[:12] + b"\x03abc\xc0\x0c" + good[-16:]
    try:
        out = call_all(labdir, MODULE, [["parse_response", [{"bytes": loop.hex()}]]], timeout=3)[0]
    except ProbeFailed:
        raise CheckFailed("parse_response(a name whose pointer points back at itself) did not finish in 3 s") from None
    if out.get("error") != "ValueError":
        raise CheckFailed(f"parse_response(a pointer loop) gave {out.get('error') or 'a value'}; expected ValueError")
    return "short messages, cut records, bad pointers and a pointer loop all raise ValueError"


# --- lookup against a grader-side server ---------------------------------------------------

class DnsServer(UdpService):
    """A UDP DNS server on 127.0.0.1: answers ``zone[(name, qtype)]``, first with a wrong id."""

    def __init__(self, zone: Dict[Tuple[str, int], list], lifetime: float = 10.0) -> None:
        self.zone = zone
        self.queries: List[dict] = []
        self.errors: List[str] = []
        super().__init__(lifetime)

    def handle(self, data: bytes, addr) -> None:
        try:
            q = decode_query(data)
        except ValueError as exc:
            self.errors.append(str(exc))
            return
        self.queries.append(q)
        answers = self.zone.get((q["name"].lower(), q["qtype"]), [])
        decoy = [(q["name"], q["qtype"], 60, "203.0.113.66" if q["qtype"] == A else "2001:db8::bad")]
        self.send(response(q["id"] ^ 0x5A5A, q["name"], q["qtype"], decoy), addr)
        self.send(response(q["id"], q["name"], q["qtype"], answers, 0 if answers else 3), addr)


def lookup(labdir: str) -> str:
    rng = random.Random(os.urandom(8))
    alias, real, v6 = (f"{_label(rng)}.lab.test", f"{_label(rng)}.srv.lab.test", f"{_label(rng)}.lab.test")
    other = f"{_label(rng)}.lab.test"
    a1, a2, a3 = _addr4(rng), _addr4(rng), _addr4(rng)
    six = _addr6(rng)
    zone = {(alias, A): [(alias, CNAME, 300, real), (real, A, 30, a1), (other, A, 30, a3), (real, A, 30, a2)],
            (v6, AAAA): [(v6, AAAA, 30, six)]}
    with DnsServer(zone) as dns:
        outs = call_all(labdir, MODULE, [["lookup", [HOST, dns.port, alias, A]],
                                         ["lookup", [HOST, dns.port, v6, AAAA]]], timeout=8)
        queries, errors = list(dns.queries), list(dns.errors)
    if errors and not queries:
        raise CheckFailed(f"the grader's DNS server could not read your query: {errors[0]}")
    got_a = student_value(outs[0], f"lookup(server, port, {alias!r}, A)")
    got_6 = student_value(outs[1], f"lookup(server, port, {v6!r}, AAAA)")
    if not isinstance(got_a, list) or not isinstance(got_6, list):
        raise CheckFailed(f"lookup() returned {str(got_a)[:40]} and {str(got_6)[:40]}: lists of addresses expected")
    if "203.0.113.66" in got_a or any("bad" in str(x) for x in got_6):
        raise CheckFailed("lookup() believed the first reply, whose id was not the query's: a spoofed answer")
    if got_a != [a1, a2]:
        raise CheckFailed(f"lookup({alias!r}, A) gave {got_a}; the server answered a CNAME to {real!r} "
                          f"and A records {a1}, {a2} for it (and {a3} for another name)")
    try:
        right6 = len(got_6) == 1 and ipaddress.ip_address(str(got_6[0])) == ipaddress.ip_address(six)
    except ValueError:
        right6 = False
    if not right6:
        raise CheckFailed(f"lookup({v6!r}, AAAA) gave {got_6}, expected [{six!r}]")
    ids = {q["id"] for q in queries}
    if len(queries) >= 2 and len(ids) < 2:
        raise CheckFailed(f"both queries used transaction id {queries[0]['id']}: a fixed id is easy to spoof, "
                          f"pick a random one per query")
    return "followed the CNAME, ignored the reply with the wrong id, read A and AAAA answers"
