"""Attribute docs (``#:`` comments) render as prose in the API reference.

Napoleon (docs/conf.py) reads the first line of an attribute's doc as
``TYPE: DESCRIPTION`` when it holds a colon: "The model that scales best: one
thread" became a *type* "The model that scales best" above the rest, and that
half was never offered for translation as a sentence. Each ``#:`` comment is
run through napoleon here, as Sphinx does, and must come out unchanged.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

napoleon = pytest.importorskip("sphinx.ext.napoleon")
docstring = pytest.importorskip("sphinx.ext.napoleon.docstring")


def _attribute_comments():
    """(file:line, the comment's lines) for every block of ``#:`` lines in netlab."""
    for path in sorted(Path(ROOT, "netlab").rglob("*.py")):
        block, start = [], 0
        lines = path.read_text(encoding="utf-8").splitlines() + [""]
        for number, line in enumerate(lines, 1):
            found = re.match(r"\s*#:(?: (.*)|$)", line)
            if found:
                start = start or number
                block.append(found.group(1) or "")
            elif block:
                yield f"{path.relative_to(ROOT)}:{start}", block
                block, start = [], 0


COMMENTS = list(_attribute_comments())


def test_there_are_attribute_comments_to_check():
    assert len(COMMENTS) > 30


@pytest.mark.parametrize("where,lines", COMMENTS, ids=[w for w, _ in COMMENTS])
def test_napoleon_keeps_the_comment_whole(where, lines):
    rendered = str(docstring.GoogleDocstring(lines, napoleon.Config(), what="data", name="X"))
    assert ":type:" not in rendered, f"{where}: a colon in the first line makes napoleon " \
        f"read {lines[0]!r} as 'TYPE: text'; say it without the colon"
