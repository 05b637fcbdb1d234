"""Command-line messages in the learner's language: ``_(message)``.

Under a Chinese locale (the first of ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``
and ``LANG`` that is set names ``zh_CN``, ``zh_Hans``/``zh_SG`` or plain ``zh``)
``_`` returns the translation from ``netlab/locale/zh_CN/LC_MESSAGES/netlab.po``;
anywhere else, and for a message the catalog lacks, the message itself, so
the default output stays byte for byte the same.

The catalog is read as text the first time a message is looked up: no
compile step and no dependency. A message with fields is translated before it
is filled in: ``_("score: {score}/{max_score}").format(...)``.
"""
from __future__ import annotations

import os
from typing import Dict, Optional

__all__ = ["CATALOG", "catalog", "chinese", "read_po", "_"]

#: Where the Chinese catalog ships, inside the package.
CATALOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale", "zh_CN",
                       "LC_MESSAGES", "netlab.po")

_loaded: Optional[Dict[str, str]] = None


def chinese(environ=os.environ) -> bool:
    """Whether the locale asks for Simplified Chinese (gettext's order of variables)."""
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            first = value.split(":")[0].split(".")[0].replace("-", "_")
            return first in ("zh", "zh_CN", "zh_SG", "zh_Hans") or first.startswith("zh_Hans_")
    return False


def read_po(path: str) -> Dict[str, str]:
    """msgid -> msgstr of a .po file, leaving out fuzzy and untranslated entries."""
    import ast  # only here: a command in the default locale never reads a catalog
    entries: Dict[str, str] = {}
    msgid = msgstr = None
    fuzzy = False
    field = None

    def keep() -> None:
        if msgid and msgstr and not fuzzy:
            entries[msgid] = msgstr

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif line.startswith("msgid "):
                keep()
                msgid, msgstr, field = ast.literal_eval(line[6:]), None, "id"
            elif line.startswith("msgstr "):
                msgstr, field = ast.literal_eval(line[7:]), "str"
            elif line.startswith('"') and field == "id":
                msgid += ast.literal_eval(line)
            elif line.startswith('"') and field == "str":
                msgstr += ast.literal_eval(line)
            elif not line:
                keep()
                msgid = msgstr = field = None
                fuzzy = False
    keep()
    return entries


def catalog() -> Dict[str, str]:
    """The translations for this process's locale (empty when it is not Chinese)."""
    global _loaded
    if _loaded is None:
        try:
            _loaded = read_po(CATALOG) if chinese() else {}
        except OSError:  # an install without the catalog still speaks English
            _loaded = {}
    return _loaded


def _(message: str) -> str:
    """``message`` in the locale's language (itself when there is no translation)."""
    return catalog().get(message, message)
