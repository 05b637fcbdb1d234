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
returns a predicate over record tuples; a bad expression raises
:class:`FilterError` naming the problem.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Callable, List

from netlab._pycore.decode import S_L4

__all__ = ["FilterError", "compile_filter"]

_TOKEN = re.compile(r"\s*(\(|\)|&&|\|\||!|[^\s()!]+)")
_PROTOS = {"tcp": (6,), "udp": (17,), "icmp": (1,), "icmp6": (58,)}
_HELP = "use tcp, udp, icmp, icmp6, ip, ip6, arp, port N, host ADDR, and, or, not, parentheses"

# Record field positions (netlab._pycore.decode.RECORD_FIELDS).
_ET, _SRC, _DST, _PROTO, _SPORT, _DPORT, _STATUS = 6, 7, 8, 9, 10, 11, 18


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
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise FilterError(f"'{text}' is not an IPv4 or IPv6 address") from None
    if addr.version == 4:
        return str(addr)
    # The same spelling the packet core uses for IPv6 addresses.
    return socket.inet_ntop(socket.AF_INET6, addr.packed)


class _Parser:
    def __init__(self, tokens: List[str]) -> None:
        self.t = tokens
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expr(self):
        left = self.term()
        while self.peek() in ("or", "||"):
            op = self.take()
            if self.peek() is None:
                raise FilterError(f"expected a primitive after '{op}'")
            right = self.term()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def term(self):
        left = self.factor()
        while True:
            tok = self.peek()
            if tok in ("and", "&&"):
                self.take()
                if self.peek() is None:
                    raise FilterError(f"expected a primitive after '{tok}'")
            elif tok is None or tok in ("or", "||", ")"):
                return left
            right = self.factor()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)

    def factor(self):
        tok = self.take()
        if tok is None:
            raise FilterError("the expression ends too early")
        if tok in ("not", "!"):
            if self.peek() is None:
                raise FilterError(f"expected a primitive after '{tok}'")
            inner = self.factor()
            return lambda r: not inner(r)
        if tok == "(":
            inner = self.expr()
            if self.take() != ")":
                raise FilterError("missing ')'")
            return inner
        if tok == ")":
            raise FilterError("unexpected ')'")
        return self.primitive(tok)

    def primitive(self, tok):
        if tok in _PROTOS:
            numbers = _PROTOS[tok]
            return lambda r: r[_PROTO] in numbers
        if tok == "ip":
            return lambda r: r[_ET] == 0x0800 and r[_SRC] is not None
        if tok == "ip6":
            return lambda r: r[_ET] == 0x86DD and r[_SRC] is not None
        if tok == "arp":
            return lambda r: r[_ET] == 0x0806
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
            port = int(value)
            if direction == "src":
                return lambda r: r[_STATUS] & S_L4 and r[_PROTO] in (6, 17) and r[_SPORT] == port
            if direction == "dst":
                return lambda r: r[_STATUS] & S_L4 and r[_PROTO] in (6, 17) and r[_DPORT] == port
            return lambda r: (r[_STATUS] & S_L4 and r[_PROTO] in (6, 17)
                              and (r[_SPORT] == port or r[_DPORT] == port))
        if tok == "host":
            value = self.take()
            if value is None:
                raise FilterError("expected an address after 'host'")
            addr = _norm_addr(value)
            if direction == "src":
                return lambda r: r[_SRC] == addr
            if direction == "dst":
                return lambda r: r[_DST] == addr
            return lambda r: r[_SRC] == addr or r[_DST] == addr
        if tok in ("and", "or", "&&", "||"):
            raise FilterError(f"'{tok}' needs something before it")
        raise FilterError(f"unknown word '{tok}'")


def compile_filter(text: str) -> Callable[[tuple], bool]:
    """Compile ``text`` into ``predicate(record) -> bool``; raises :class:`FilterError`."""
    tokens = _tokens(text)
    if not tokens:
        raise FilterError(f"the filter is empty ({_HELP})")
    parser = _Parser(tokens)
    try:
        pred = parser.expr()
        if parser.i < len(tokens):
            raise FilterError(f"unexpected '{tokens[parser.i]}'")
    except FilterError as exc:
        raise FilterError(f"bad filter {text!r}: {exc} ({_HELP})") from None
    return lambda r: bool(pred(r))
