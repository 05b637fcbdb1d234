"""Sphinx extension: the CLI reference, generated from netlab's own argparse parser.

``.. netlab-cli::`` walks :func:`netlab.cli.build_parser` and every subparser
below it (``bench udp`` included) and emits one section per command with its
usage line, description and options. Because the page is built from the very
parser the program runs, the reference cannot drift from the command line.

Options of the directive:

``:prog:``   start below the top, e.g. ``:prog: netlab bench`` (default: the whole tree)
``:depth:``  the heading level of the first section, from 0 (``=``); default 1 (``-``)
"""
from __future__ import annotations

import argparse
import os
from typing import Iterator, List, Tuple

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

__all__ = ["NetlabCliDirective", "iter_parsers", "setup"]

_UNDERLINES = "=-~^\"'`"


def _subparsers_action(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse keeps no public list of its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def iter_parsers(parser: argparse.ArgumentParser, depth: int = 0
                 ) -> Iterator[Tuple[int, str, argparse.ArgumentParser]]:
    """Yield ``(depth, help, parser)`` for ``parser`` and every subparser below it.

    Aliases (several names for one parser) are listed once.
    """
    yield depth, "", parser
    action = _subparsers_action(parser)
    if action is None:
        return
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    seen = set()
    for name, sub in action.choices.items():
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        for d, h, p in iter_parsers(sub, depth + 1):
            yield d, (h or helps.get(name, "")), p


def _usage(parser: argparse.ArgumentParser) -> str:
    # argparse wraps usage to the terminal width; pin it so every build is identical.
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        text = parser.format_usage()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return text.strip()


def _escape(text: str) -> str:
    """Make argparse help text safe as reStructuredText inline text."""
    text = " ".join(str(text).split())
    for ch in ("\\", "*", "`", "|", "_"):
        text = text.replace(ch, "\\" + ch)
    return text


def _option_signature(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    formatter = parser._get_formatter()
    if action.option_strings:
        if action.nargs == 0:
            return ", ".join(action.option_strings)
        metavar = formatter._format_args(action, action.dest.upper())
        return ", ".join(f"{s} {metavar}" for s in action.option_strings)
    return formatter._format_args(action, action.dest)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    if "%(" in text:
        params = dict(vars(action), prog="netlab")
        params = {k: (getattr(v, "__name__", v)) for k, v in params.items()}
        try:
            text = text % params
        except (KeyError, TypeError, ValueError):
            pass
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        choices = ", ".join(str(c) for c in action.choices)
        if choices not in text:
            text = f"{text} (choices: {choices})" if text else f"choices: {choices}"
    return text


def parser_rst(parser: argparse.ArgumentParser, help_text: str, level: int) -> List[str]:
    """The reStructuredText of one command's section (without its subcommands)."""
    title = parser.prog
    lines = [f"``{title}``", _UNDERLINES[level] * (len(title) + 4), ""]
    if help_text:
        lines += [f"*{_escape(help_text)}*", ""]
    lines += [".. code-block:: text", ""]
    lines += ["   " + line for line in _usage(parser).splitlines()]
    lines += [""]
    if parser.description:
        lines += [_escape(parser.description), ""]
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        rows.append((_option_signature(action, parser), _help(action)))
    sub = _subparsers_action(parser)
    if rows:
        lines += [".. list-table::", "   :header-rows: 1", "   :widths: 35 65", "",
                  "   * - argument", "     - meaning"]
        for sig, help_ in rows:
            lines += [f"   * - ``{sig}``", f"     - {_escape(help_) or '..'}"]
        lines += [""]
    if sub is not None:
        names = ", ".join(f"``{n}``" for n in sub.choices)
        lines += [f"Subcommands: {names}.", ""]
    if parser.epilog:
        lines += [_escape(parser.epilog), ""]
    return lines


class NetlabCliDirective(SphinxDirective):
    """``.. netlab-cli::`` — the whole command-line reference from the live parser."""

    has_content = False
    option_spec = {"prog": directives.unchanged, "depth": directives.nonnegative_int}

    def run(self) -> List[nodes.Node]:
        from netlab.cli import build_parser

        root = build_parser()
        want = self.options.get("prog", "").strip()
        first_level = int(self.options.get("depth", 1))
        lines: List[str] = []
        for depth, help_text, parser in iter_parsers(root):
            if want and not (parser.prog == want or parser.prog.startswith(want + " ")):
                continue
            level = min(first_level + depth, len(_UNDERLINES) - 1)
            lines += parser_rst(parser, help_text, level)
        content = StringList(lines, source="<netlab-cli>")
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, content, container)
        return container.children


def setup(app):
    app.add_directive("netlab-cli", NetlabCliDirective)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
