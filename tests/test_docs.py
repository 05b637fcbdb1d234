"""The Sphinx docs build with warnings as errors, in English and Chinese, and match the code.

* ``html`` and ``doctest`` builds with ``-W`` (the doctest builder runs every
  ``.. doctest::`` block of the lessons against the installed package);
* the Simplified Chinese build (``-D language=zh_CN``) with ``-W``, its
  lesson pages really are in Chinese, and every message of every page (labs,
  handouts, teachers' page, reference, benchmarks) has a current translation;
* the CLI reference lists every command and option of the live parser;
* the console examples of the lessons marked as checked are run for real.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Each Sphinx build takes a minute or more on a loaded 2-core machine: its own
# limit instead of the global 120 s (the builds themselves allow 600 s).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DOCS = os.path.join(ROOT, "docs")


def _sphinx(builder, out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
         *extra, "docs", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )


@pytest.fixture(scope="module")
def html_en(tmp_path_factory):
    out = tmp_path_factory.mktemp("html-en")
    result = _sphinx("html", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def html_zh(tmp_path_factory):
    out = tmp_path_factory.mktemp("html-zh")
    result = _sphinx("html", out, "-D", "language=zh_CN")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _text(path) -> str:
    """The visible text of a built HTML page's article, tags stripped."""
    with open(path, encoding="utf-8") as f:
        page = f.read()
    start = page.find("<article")
    page = page[start:page.find("</article>", start)] if start >= 0 else page
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    # Sphinx turns ' and " into typographic quotes; compare with plain ones.
    return text.translate(str.maketrans("\u2018\u2019\u201c\u201d", "''\"\""))


def test_html_builds_cleanly(html_en):
    assert (html_en / "index.html").exists()
    assert (html_en / "searchindex.js").exists()


def test_doctests_pass(tmp_path):
    result = _sphinx("doctest", tmp_path / "doctest")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (tmp_path / "doctest" / "output.txt").read_text(encoding="utf-8")
    assert "0 failures in tests" in report
    # The lessons do carry doctests: an empty run would also say "0 failures".
    assert re.search(r"^\s*[1-9]\d* tests", report, re.M), report[-2000:]


LESSONS = ["ports", "tcp-udp", "binding", "services", "handshake", "netstat", "redirect",
           "scanning", "amplification", "concurrency", "packets", "throughput", "setup", "network",
           "data"]


@pytest.mark.parametrize("page", LESSONS)
def test_every_lesson_built(html_en, page):
    assert (html_en / "lessons" / f"{page}.html").exists()


def _han(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


def test_chinese_build_translates_the_lessons(html_zh, html_en):
    for page in LESSONS:
        zh = _text(html_zh / "lessons" / f"{page}.html")
        en = _text(html_en / "lessons" / f"{page}.html")
        # Most of the prose is Chinese; commands and output stay as they are.
        assert _han(zh) > 100, f"lessons/{page}: only {_han(zh)} Chinese characters"
        assert _han(en) == 0, f"lessons/{page}: the English page has Chinese in it"
    with open(html_zh / "index.html", encoding="utf-8") as f:
        index = f.read()
    assert 'lang="zh-CN"' in index or 'lang="zh_CN"' in index


def test_every_page_links_the_same_page_in_the_other_language(html_en, html_zh):
    """The two builds sit side by side (docs/_build/html, html-zh_CN): a switch
    in the sidebar goes to the same page in the other language."""
    en = (html_en / "lessons" / "handshake.html").read_text(encoding="utf-8")
    zh = (html_zh / "lessons" / "handshake.html").read_text(encoding="utf-8")
    assert 'href="../../html-zh_CN/lessons/handshake.html"' in en
    assert 'href="../../html/lessons/handshake.html"' in zh
    # Long console lines wrap instead of hiding the handshake notes off to the right.
    assert "netlab.css" in en and (html_en / "_static" / "netlab.css").exists()


# Pages whose text is written by hand, so a translation can be kept up to date.
# docs/reference/cli.rst is generated from the argparse parser at every build
# (docs/_ext/netlab_cli.py): its usage lines and help texts change with the code
# and are not held to a translation; the page's own paragraphs are.
GENERATED = {"reference/cli": os.path.join(DOCS, "reference", "cli.rst")}


def _written_by_hand(page: str, msgid: str) -> bool:
    source = GENERATED.get(page)
    if source is None:
        return True
    with open(source, encoding="utf-8") as f:
        text = " ".join(f.read().split())
    return " ".join(msgid.split()) in text


def test_every_page_message_is_translated(tmp_path):
    """Every message of every page has a Chinese translation, none fuzzy.

    The templates are extracted afresh (``-b gettext``), so a page or paragraph
    added or edited without updating its ``.po`` entry is caught here, not
    shipped as silent English in the Chinese build. Lab pages being written in
    parallel are held to it as soon as they exist.
    """
    babel_pofile = pytest.importorskip("babel.messages.pofile")
    result = _sphinx("gettext", tmp_path / "pot")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    templates = tmp_path / "pot"
    catalogs = os.path.join(DOCS, "locale", "zh_CN", "LC_MESSAGES")
    pages = sorted(str(p.relative_to(templates).with_suffix("")).replace(os.sep, "/")
                   for p in templates.rglob("*.pot"))
    # Every page of the docs, not only those that already have a catalog.
    for page in ["index", "teachers", "benchmarks", "labs/index", "labs/lab01",
                 "reference/api", "reference/packet", "reference/cli"] + \
            [f"lessons/{name}" for name in LESSONS + ["index"]]:
        assert page in pages, f"{page}: no template extracted"
    missing = []
    for page in pages:
        with open(templates / f"{page}.pot", "rb") as f:
            wanted = [m.id for m in babel_pofile.read_po(f)
                      if m.id and _written_by_hand(page, m.id)]
        assert wanted, page
        path = os.path.join(catalogs, f"{page}.po")
        if not os.path.exists(path):
            missing.append(f"{page}: no catalog docs/locale/zh_CN/LC_MESSAGES/{page}.po")
            continue
        with open(path, "rb") as f:
            catalog = babel_pofile.read_po(f)
        for msgid in wanted:
            message = catalog.get(msgid)
            if message is None or not message.string:
                missing.append(f"{page}: no translation for {msgid[:70]!r}")
            elif message.fuzzy:
                missing.append(f"{page}: fuzzy translation of {msgid[:70]!r}")
    assert not missing, f"{len(missing)} untranslated messages (refresh with sphinx-intl " \
        "update, see docs/conf.py):\n" + "\n".join(missing[:40])


def test_the_test_command_builds_both_languages():
    """The README's test command (which .ci/run runs verbatim) builds the English
    and the Chinese HTML side by side, so the language switch of every page
    links a page that exists."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    command = next(line for line in readme.splitlines()
                   if line.startswith("apt-get") and "python -m pytest" in line)
    assert "python -m sphinx -W -q -b html docs docs/_build/html" in command
    assert "-D language=zh_CN docs docs/_build/html-zh_CN" in command


def _walk(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _walk(sub)


def test_cli_reference_matches_the_parser(html_en):
    from netlab.cli import build_parser

    text = _text(html_en / "reference" / "cli.html")
    flat = " ".join(text.split())
    parsers = list(_walk(build_parser()))
    assert len(parsers) > 2
    for parser in parsers:
        assert parser.prog in flat, f"{parser.prog} missing from the CLI reference"
        usage = " ".join(parser.format_usage().split())
        assert usage in flat, f"usage of {parser.prog} differs from the parser"
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                continue  # hidden on purpose, as in --help
            for option in action.option_strings:
                if option in ("-h", "--help"):
                    continue
                assert option in flat, f"{parser.prog} {option} missing"
        if parser.description:
            assert " ".join(parser.description.split()) in flat


# Console examples: a ``$ python -m netlab ...`` line right after a
# ``.. code-block:: console`` with ``:class: checked`` is run for real, and its
# output must contain the lines shown that do not vary between runs (lines
# holding a number that changes, such as a port or a rate, are written with
# ``...`` where the number goes).

def _checked_examples():
    found = []
    folder = os.path.join(DOCS, "lessons")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".rst"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            lines = f.read().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == ".. code-block:: console" and i + 1 < len(lines) \
                    and lines[i + 1].strip() == ":class: checked":
                block = []
                i += 2
                while i < len(lines) and (not lines[i].strip() or lines[i].startswith("   ")):
                    block.append(lines[i][3:])
                    i += 1
                while block and not block[-1].strip():
                    block.pop()
                while block and not block[0].strip():
                    block.pop(0)
                command, output = block[0], block[1:]
                found.append(pytest.param(command, output, id=f"{name[:-4]}:{command[2:40]}"))
                continue
            i += 1
    return found


@pytest.mark.parametrize("command,shown", _checked_examples())
def test_console_examples_run(netlab_cli, command, shown):
    assert command.startswith("$ python -m netlab "), command
    args = command[len("$ python -m netlab "):].split()
    # Captures show times in the local zone; the lessons were run in UTC.
    result = netlab_cli(*args, timeout=60, env={"TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    actual = [" ".join(line.split()) for line in result.stdout.splitlines()]
    for line in shown:
        want = " ".join(line.split())
        if not want:
            continue
        pattern = "^" + ".*".join(re.escape(part) for part in want.split("...")) + "$"
        assert any(re.match(pattern, got) for got in actual), \
            f"{command}: shown line not in the output: {want!r}\n" + result.stdout
