"""Start-up of ``netlab dissect``: only the chosen command's module is imported.

(The CPU figure itself is measured by ``netlab bench dissect``, not here.)
"""
import subprocess
import sys

from netlab import cli

from tests.conftest import ROOT, netlab_env

_PROBE = """
import sys
before = set(sys.modules)
from netlab.cli import main
code = main(sys.argv[1:])
print(' '.join(sorted(m for m in sys.modules if m.startswith('netlab'))), file=sys.stderr)
# standard modules netlab itself imported (not those the interpreter's start-up had)
print(' '.join('std:' + m for m in sorted(set(sys.modules) - before)
               if not m.startswith('netlab')), file=sys.stderr)
"""


def _modules_after(*argv):
    out = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True,
                         env=netlab_env(), cwd=ROOT, timeout=60)
    return out, set(out.stderr.split())


def test_dissect_imports_no_server_client_or_other_command():
    out, mods = _modules_after("dissect", f"{ROOT}/tests/data/handshake.pcap")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 15
    assert "netlab.commands.dissect" in mods
    for unwanted in ("netlab.servers", "netlab.clients", "netlab.redirect", "netlab.services",
                     "netlab.commands.serve", "netlab.commands.bench", "netlab.commands.lab",
                     "netlab.tour", "netlab.netstat", "netlab.scan"):
        assert unwanted not in mods, unwanted
    # socket.py (and its selectors), json, textwrap and unicodedata cost start-up time
    # dissect does not need: the packet core uses socket's C half _socket; JSON is
    # imported for --json only, the wrapping helpers when a line is wrapped
    for unwanted in ("socket", "selectors", "json", "textwrap", "unicodedata"):
        assert f"std:{unwanted}" not in mods, unwanted


def test_help_lists_every_command_without_importing_them():
    out, mods = _modules_after("--help")
    for name, (_module, summary) in cli.COMMANDS.items():
        assert name in out.stdout
    assert not any(m.startswith("netlab.commands.") for m in mods)


def test_summaries_are_the_help_each_module_registers():
    parser = cli.build_parser()  # every module, for real
    sub = next(a for a in parser._actions if a.dest == "command")
    registered = {a.dest: a.help for a in sub._choices_actions}
    assert registered == {name: summary for name, (_m, summary) in cli.COMMANDS.items()}
    for name, (module, _summary) in cli.COMMANDS.items():
        assert type(sub.choices[name]).__module__ == "netlab.cli", name
        assert module in cli.COMMAND_MODULES


def test_a_chosen_command_still_reports_usage_errors(netlab_cli):
    out = netlab_cli("dissect")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    assert "FILE" in out.stderr or "file" in out.stderr
    out = netlab_cli("dissectx")
    assert out.returncode == 2 and "invalid choice" in out.stderr and "dissect" in out.stderr
