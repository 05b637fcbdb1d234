"""TCP options (RFC 9293 section 3.1, RFC 7323, RFC 2018) as names and values.

Shared by both cores as it is: ``dissect`` reads a handful of options per
handshake packet, so they need no compiled twin.
"""
from __future__ import annotations

import struct

__all__ = ["OPTION_NAMES", "tcp_options"]

OPTION_NAMES = {0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 8: "ts"}


def tcp_options(data) -> list:
    """Parse TCP option bytes into ``[(name, value), ...]``.

    ``mss`` -> int, ``wscale`` -> shift count, ``sackOK`` -> None, ``sack`` ->
    list of (left, right) edges, ``ts`` -> (value, echo reply); ``nop`` -> None;
    unknown kinds -> (``"opt-KIND"``, raw bytes). A damaged list ends with
    ``("bad", remaining bytes)``; parsing stops at ``eol``.
    """
    raw = bytes(data)
    out = []
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == 0:
            out.append(("eol", None))
            break
        if kind == 1:
            out.append(("nop", None))
            i += 1
            continue
        if i + 1 >= n or raw[i + 1] < 2 or i + raw[i + 1] > n:
            out.append(("bad", raw[i:]))
            break
        length = raw[i + 1]
        body = raw[i + 2:i + length]
        if kind == 2 and length == 4:
            out.append(("mss", (body[0] << 8) | body[1]))
        elif kind == 3 and length == 3:
            out.append(("wscale", body[0]))
        elif kind == 4 and length == 2:
            out.append(("sackOK", None))
        elif kind == 5 and length >= 2 and (length - 2) % 8 == 0:
            out.append(("sack", [struct.unpack_from(">II", body, j) for j in range(0, length - 2, 8)]))
        elif kind == 8 and length == 10:
            out.append(("ts", struct.unpack(">II", body)))
        else:
            out.append((f"opt-{kind}", body))
        i += length
    return out
