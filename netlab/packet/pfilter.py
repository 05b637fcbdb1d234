"""A small subset of tcpdump's filter language, over decoded records.

Grammar (``pcap-filter(7)`` style, case-insensitive)::

    expr      := term ( ("or" | "||") term )*
    term      := factor ( ["and" | "&&"] factor )*     # juxtaposition means "and"
    factor    := ("not" | "!") factor | "(" expr ")" | primitive
    primitive := "tcp" | "udp" | "icmp" | "icmp6" | "ip" | "ip6" | "arp"
               | ["src" | "dst"] "port" N
               | ["src" | "dst"] "host" ADDR

So ``tcp port 7007`` means ``tcp and port 7007`` as in tcpdump. ``port N``
matches TCP or UDP packets with N at either end. :func:`compile_filter`
returns a :class:`Filter`: a predicate over record tuples that also carries
the expression as a small postfix *program*, which the compiled core
evaluates in C (``format_capture``, ``iter_batches``, ``aggregate``) and the
pure twin through :func:`predicate`. A bad expression raises
:class:`FilterError` naming the problem.
"""
from __future__ import annotations

import re
from typing import Callable, List

# socket's C half: the same calls, without importing socket.py (start-up counts)
from _socket import AF_INET6, inet_ntop

# Record fields read by name (netlab.packet.fields): rec[SPORT], not rec[10].
from netlab.packet.fields import (DPORT, DST, ETH_ARP, ETH_IPV4, ETH_IPV6, ETHERTYPE,
                                  IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, PROTO,
                                  S_L4, SPORT, SRC, STATUS)

__all__ = ["Filter", "FilterError", "compile_filter", "predicate"]

_TOKEN = re.compile(r"\s*(\(|\)|&&|\|\||!|[^\s()!]+)")
_PROTOS = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "icmp": IPPROTO_ICMP, "icmp6": IPPROTO_ICMPV6}
_HELP = "use tcp, udp, icmp, icmp6, ip, ip6, arp, port N, host ADDR, and, or, not, parentheses"



class FilterError(ValueError):
    """A filter expression that does not parse; the message says where and why."""


def _tokens(text: str) -> List[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:  # pragma: no cover - the pattern matches any non-space
            raise FilterError(f"cannot read {text[pos:]!r}")
        out.append(m.group(1).lower() if m.group(1).isalpha() else m.group(1))
        pos = m.end()
    return out


def _norm_addr(text: str) -> str:
    import ipaddress  # only a filter with "host" needs it: dissect starts faster without

    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise FilterError(f"'{text}' is not an IPv4 or IPv6 address") from None
    if addr.version == 4:
        return str(addr)
    # The same spelling the packet core uses for IPv6 addresses.
    return inet_ntop(AF_INET6, addr.packed)


class _Parser:
    """Recursive descent over the tokens, writing the program in postfix order."""

    def __init__(self, tokens: List[str]) -> None:
        self.t = tokens
        self.i = 0
        self.out: list = []

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expr(self) -> None:
        self.term()
        while self.peek() in ("or", "||"):
            op = self.take()
            if self.peek() is None:
                raise FilterError(f"expected a primitive after '{op}'")
            self.term()
            self.out.append(("or",))

    def term(self) -> None:
        self.factor()
        while True:
            tok = self.peek()
            if tok in ("and", "&&"):
                self.take()
                if self.peek() is None:
                    raise FilterError(f"expected a primitive after '{tok}'")
            elif tok is None or tok in ("or", "||", ")"):
                return
            self.factor()
            self.out.append(("and",))

    def factor(self) -> None:
        tok = self.take()
        if tok is None:
            raise FilterError("the expression ends too early")
        if tok in ("not", "!"):
            if self.peek() is None:
                raise FilterError(f"expected a primitive after '{tok}'")
            self.factor()
            self.out.append(("not",))
            return
        if tok == "(":
            self.expr()
            if self.take() != ")":
                raise FilterError("missing ')'")
            return
        if tok == ")":
            raise FilterError("unexpected ')'")
        self.out.append(self.primitive(tok))

    def primitive(self, tok) -> tuple:
        if tok in _PROTOS:
            return ("proto", _PROTOS[tok])
        if tok in ("ip", "ip6", "arp"):
            return (tok,)
        direction = None
        if tok in ("src", "dst"):
            direction = tok
            tok = self.take()
            if tok not in ("port", "host"):
                raise FilterError(f"expected 'port' or 'host' after '{direction}'")
        if tok == "port":
            value = self.take()
            if value is None:
                raise FilterError("expected a port number after 'port'")
            if not value.isdigit() or int(value) > 65535:
                raise FilterError(f"'{value}' is not a port number (0-65535)")
            return ("port", direction, int(value))
        if tok == "host":
            value = self.take()
            if value is None:
                raise FilterError("expected an address after 'host'")
            return ("host", direction, _norm_addr(value))
        if tok in ("and", "or", "&&", "||"):
            raise FilterError(f"'{tok}' needs something before it")
        raise FilterError(f"unknown word '{tok}'")


def _test(step: tuple) -> Callable[[tuple], bool]:
    """The predicate of one primitive step, over a record tuple."""
    op = step[0]
    if op == "proto":
        number = step[1]
        return lambda r: r[PROTO] == number
    if op == "ip":
        return lambda r: r[ETHERTYPE] == ETH_IPV4 and r[SRC] is not None
    if op == "ip6":
        return lambda r: r[ETHERTYPE] == ETH_IPV6 and r[SRC] is not None
    if op == "arp":
        return lambda r: r[ETHERTYPE] == ETH_ARP
    direction, value = step[1], step[2]
    if op == "port":
        def port_ok(r):
            return bool(r[STATUS] & S_L4) and r[PROTO] in (IPPROTO_TCP, IPPROTO_UDP)
        if direction == "src":
            return lambda r: port_ok(r) and r[SPORT] == value
        if direction == "dst":
            return lambda r: port_ok(r) and r[DPORT] == value
        return lambda r: port_ok(r) and (r[SPORT] == value or r[DPORT] == value)
    if direction == "src":  # host
        return lambda r: r[SRC] == value
    if direction == "dst":
        return lambda r: r[DST] == value
    return lambda r: r[SRC] == value or r[DST] == value


def predicate(program) -> Callable[[tuple], bool]:
    """``predicate(record) -> bool`` of a postfix program (the compiled core runs it in C)."""
    stack: list = []
    for step in program:
        if step[0] == "not":
            inner = stack.pop()
            stack.append(lambda r, a=inner: not a(r))
        elif step[0] in ("and", "or"):
            right, left = stack.pop(), stack.pop()
            if step[0] == "and":
                stack.append(lambda r, a=left, b=right: a(r) and b(r))
            else:
                stack.append(lambda r, a=left, b=right: a(r) or b(r))
        else:
            stack.append(_test(step))
    test = stack[0]
    return lambda r: bool(test(r))


class Filter:
    """A compiled filter: call it on a record; ``program`` is what the packet core runs.

    ``program`` is a tuple of steps in postfix order, e.g. ``tcp and not port
    22`` -> ``(("proto", 6), ("port", None, 22), ("not",), ("and",))``. Steps:
    ``("proto", N)``, ``("ip",)``, ``("ip6",)``, ``("arp",)``, ``("port", DIR,
    N)``, ``("host", DIR, ADDR)`` with DIR ``None``, ``"src"`` or ``"dst"``,
    then ``("not",)``, ``("and",)``, ``("or",)``.
    """

    def __init__(self, text: str, program) -> None:
        self.text = text
        self.program = tuple(program)
        self._test = predicate(self.program)

    def __call__(self, rec: tuple) -> bool:
        return self._test(rec)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


def compile_filter(text: str) -> Filter:
    """Compile ``text`` into a :class:`Filter` (``filter(record) -> bool``); raises :class:`FilterError`."""
    tokens = _tokens(text)
    if not tokens:
        raise FilterError(f"the filter is empty ({_HELP})")
    parser = _Parser(tokens)
    try:
        parser.expr()
        if parser.i < len(tokens):
            raise FilterError(f"unexpected '{tokens[parser.i]}'")
    except FilterError as exc:
        raise FilterError(f"bad filter {text!r}: {exc} ({_HELP})") from None
    return Filter(text, parser.out)
