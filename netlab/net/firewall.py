"""A host's firewall and kernel port redirection, with nftables.

Each host gets one nftables table, ``inet netlab``, with three chains:

* ``input`` (filter hook): one rule per port that netlab was told about.
  ``drop`` throws the packet away: the sender hears nothing and a scanner says
  *filtered*. ``reject`` answers as a closed port would (a TCP RST, or ICMP
  port unreachable for UDP): the scanner says *closed* although a server may be
  listening behind it. ``allow`` accepts (the chain's policy is accept anyway,
  so this mostly undoes a drop or reject).
* ``prerouting`` and ``output`` (nat hooks): ``redirect to :8080`` rewrites the
  destination port of connections arriving from other hosts (prerouting) and
  of the host's own (output). The kernel keeps the rewrite for the whole
  connection, so the client believes it talks to port 80 while a server on
  8080 answers: no process relays anything, unlike ``netlab redirect``.

Redirection happens before the input chain, so a rule for port 80 in ``input``
never sees redirected packets: they arrive there already as port 8080.

The rules netlab made are read back from the kernel (each carries a comment
such as ``netlab drop tcp/8001``) and the whole table is replaced in one
``nft -f`` transaction, so there is no state file to lose in a crash.
"""
from __future__ import annotations

import json
import re
from typing import List, Optional, Tuple

from netlab.errors import UsageError
from netlab.net._shell import NetError, Shell, first_line, need_tool

__all__ = ["ACTIONS", "flush", "list_rules", "redirect", "ruleset_text", "set_port", "silence_icmp"]

ACTIONS = ("allow", "drop", "reject")
TABLE = "netlab"
QUIET_TABLE = "netlabquiet"  # silence_icmp's table, apart from the port rules
_COMMENT = re.compile(r"netlab (allow|drop|reject|redirect) (tcp|udp)/(\d+)(?: (\d+))?")

# What each action becomes in nft's language, per protocol.
_VERDICT = {
    ("allow", "tcp"): "accept", ("allow", "udp"): "accept",
    ("drop", "tcp"): "drop", ("drop", "udp"): "drop",
    ("reject", "tcp"): "reject with tcp reset",
    ("reject", "udp"): "reject with icmpx type port-unreachable",
}

Key = Tuple[str, str, int]  # (chain kind "filter" or "nat", proto, port)


def _nft(sh: Shell, ns: str, *args: str, input: Optional[str] = None):
    need_tool("nft")
    done = sh.run("ip", "netns", "exec", ns, "nft", *args, input=input, check=False)
    if done.returncode != 0:
        message = first_line(done.stderr)
        if "not supported" in message.lower():
            raise NetError("this kernel has no nf_tables (nft says: "
                           f"{message}): the firewall and kernel redirect need it; "
                           "'netlab redirect' forwards ports in user space without it")
        raise NetError(f"nft failed in {ns}: {message}")
    return done


def list_rules(sh: Shell, ns: str) -> List[dict]:
    """netlab's rules in host ``ns``: ``action``, ``proto``, ``port``, ``to_port`` (redirects)."""
    tables = json.loads(_nft(sh, ns, "-j", "list", "tables").stdout)["nftables"]
    if not any(t.get("table", {}).get("name") == TABLE for t in tables):
        return []
    rules, seen = [], set()
    for item in json.loads(_nft(sh, ns, "-j", "list", "table", "inet", TABLE).stdout)["nftables"]:
        match = _COMMENT.fullmatch(item.get("rule", {}).get("comment", ""))
        if not match:
            continue
        action, proto, port, to_port = match.groups()
        rule = {"action": action, "proto": proto, "port": int(port),
                "to_port": int(to_port) if to_port else None}
        key = (action, proto, int(port))
        if key not in seen:  # a redirect sits in two chains: list it once
            seen.add(key)
            rules.append(rule)
    return sorted(rules, key=lambda r: (r["action"] == "redirect", r["proto"], r["port"]))


def _key(rule: dict) -> Key:
    return ("nat" if rule["action"] == "redirect" else "filter", rule["proto"], rule["port"])


def _script(rules: List[dict]) -> str:
    filt, nat = [], []
    for r in rules:
        match = f"{r['proto']} dport {r['port']}"
        if r["action"] == "redirect":
            comment = f"netlab redirect {r['proto']}/{r['port']} {r['to_port']}"
            nat.append(f"        {match} redirect to :{r['to_port']} comment \"{comment}\"")
        else:
            comment = f"netlab {r['action']} {r['proto']}/{r['port']}"
            filt.append(f"        {match} {_VERDICT[r['action'], r['proto']]} comment \"{comment}\"")
    lines = [
        # Create-then-delete makes the delete safe when the table is not there
        # yet; the whole script is one transaction: all of it applies or none.
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "    chain input {",
        "        type filter hook input priority filter; policy accept;",
        *filt,
        "    }",
        "    chain prerouting {",
        "        type nat hook prerouting priority dstnat; policy accept;",
        *nat,
        "    }",
        "    chain output {",
        "        type nat hook output priority -100; policy accept;",
        *nat,
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _replace(sh: Shell, ns: str, new: dict) -> List[dict]:
    rules = [r for r in list_rules(sh, ns) if _key(r) != _key(new)] + [new]
    _nft(sh, ns, "-f", "-", input=_script(rules))
    return list_rules(sh, ns)


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise UsageError(f"invalid port {port}: give 1 to 65535")


def set_port(sh: Shell, ns: str, action: str, port: int, proto: str = "tcp") -> List[dict]:
    """``allow``, ``drop`` or ``reject`` ``proto`` ``port`` in host ``ns``; return its rules.

    A new rule for a port replaces the old one for that port and protocol.
    """
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}: use allow, drop or reject")
    _check_port(port)
    return _replace(sh, ns, {"action": action, "proto": proto, "port": port, "to_port": None})


def redirect(sh: Shell, ns: str, port: int, to_port: int, proto: str = "tcp") -> List[dict]:
    """Redirect ``proto`` ``port`` to ``to_port`` in host ``ns``'s kernel; return its rules."""
    _check_port(port)
    _check_port(to_port)
    if port == to_port:
        raise UsageError(f"redirecting port {port} to itself does nothing: give two ports")
    return _replace(sh, ns, {"action": "redirect", "proto": proto, "port": port,
                             "to_port": to_port})


def flush(sh: Shell, ns: str) -> None:
    """Remove every netlab rule from host ``ns`` (its table goes away)."""
    _nft(sh, ns, "-f", "-", input=f"table inet {TABLE}\ndelete table inet {TABLE}\n")


def ruleset_text(sh: Shell, ns: str) -> str:
    """The kernel's own view: ``nft list ruleset`` inside host ``ns``."""
    return _nft(sh, ns, "list", "ruleset").stdout


def silence_icmp(sh: Shell, ns: str, kinds: Tuple[str, ...] = ("time-exceeded",)) -> None:
    """Host ``ns`` sends no ICMP messages of ``kinds`` (nft names) any more: a silent router.

    Its kernel still makes them (a router still drops a packet whose TTL ran
    out), the output hook throws them away, as a firewall that filters ICMP would.
    """
    rule = f"icmp type {{ {', '.join(kinds)} }} drop comment \"netlab silent\""
    _nft(sh, ns, "-f", "-", input=(
        f"table inet {QUIET_TABLE}\ndelete table inet {QUIET_TABLE}\n"
        f"table inet {QUIET_TABLE} {{\n    chain output {{\n"
        f"        type filter hook output priority filter; policy accept;\n"
        f"        {rule}\n    }}\n}}\n"))
