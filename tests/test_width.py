"""Learner-facing output fits an 80-column terminal (COLUMNS=80); pipes keep whole lines.

Every command with text output is run for real here with COLUMNS=80 and each
line of its stdout and stderr must be at most 80 characters. What is exempt,
and why:

* the packet lines of ``dissect`` and ``sniff``: one packet per line, like
  ``tcpdump -n``, so that grep, sort and diff work on them; a wrapped packet
  would be two records. Their ``--stats`` tables and notes do fit.
* what a client prints that the server sent (a UDP chargen datagram is up to
  512 characters of one line by RFC 864): it is the service's bytes as
  received, as ``nc -u`` shows them. TCP chargen's 72-character lines fit.
* error lines (``netlab: error: ...``): one line each by the project's rule,
  so a script can read the problem and the way out from one line; they are
  not wrapped.
* ``--json``: for machines.

(The tour's 80 columns are tested in tests/test_tour.py, step by step.)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from netlab import sysinfo
from netlab.labs import LABS, RESULTS_FILE, sandbox
from tests.conftest import ROOT, netlab_env, run_netlab

EXERCISES = os.path.join(ROOT, "exercises")
SAMPLES = os.path.join(ROOT, "netlab", "data", "samples")
# LINES cleared: a $LINES from the environment would make netlab ignore COLUMNS in a pipe.
COLUMNS = {"COLUMNS": "80", "LINES": ""}
ISOLATED, WHY = sandbox.isolation_status()


def too_wide(*texts: str) -> list:
    return [line for text in texts for line in text.splitlines() if len(line) > 80]


def run80(*argv, cwd=ROOT, timeout=120):
    return run_netlab(*argv, env=COLUMNS, cwd=cwd, timeout=timeout)


COMMANDS = [
    ["info"],
    ["ports", "7", "19", "80", "8080", "http"],
    ["ports", "--range"],
    ["independence"],
    ["bindcheck", "80"],
    ["bindcheck", "7007", "--udp"],
    ["tour", "--list"],
    ["netstat"],
    ["netstat", "--tcp", "--listening"],
    ["scan", "127.0.0.1", "1-100"],
    ["scan", "127.0.0.1", "1-30", "--udp", "--all"],
    ["dissect", os.path.join(SAMPLES, "handshake.pcap"), "--stats"],
    ["dissect", os.path.join(SAMPLES, "flows.pcap"), "--stats"],
    ["dissect", os.path.join(ROOT, "tests", "data", "mixed_lo_ns.pcapng"), "--stats"],
    ["lab", "list"],
    ["bench", "parse", "--packets", "2000"],
    ["bench", "dissect", "--packets", "200", "--no-tshark"],
    ["bench", "udp", "--seconds", "0.3"],
    ["bench", "udp", "--seconds", "0.3", "--sweep", "64,1400"],
    ["bench", "tcp", "--seconds", "0.3"],
    ["bench", "echo", "--seconds", "0.3", "--clients", "2", "--model", "selectors,threaded"],
    ["bench", "latency", "--seconds", "0.3", "--udp"],
    ["bench", "latency", "--seconds", "0.3", "--tcp"],
]
if sysinfo.is_root():
    COMMANDS += [["bindcheck", "80", "--as-user", "nobody"], ["net", "ls"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_fits_80_columns(argv):
    out = run80(*argv)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert not too_wide(out.stdout, out.stderr)


def _parsers(parser: argparse.ArgumentParser, prog: str = "netlab"):
    """Every parser and subparser of the CLI, with its command words."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def test_every_help_fits_80_columns(monkeypatch):
    """argparse wraps --help to $COLUMNS; our texts must let it (no long unbreakable words)."""
    from netlab.cli import ALL, build_parser

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("LINES", raising=False)
    seen = set()
    for prog, parser in _parsers(build_parser(ALL)):
        assert not too_wide(parser.format_help()), prog
        seen.add(prog)
    # every command and every action of lab, bench and net
    assert {"netlab tour", "netlab lab grade", "netlab bench dissect", "netlab net link"} <= seen
    assert len(seen) >= 40
    # and the real thing, through a pipe, for one command with long help texts
    out = run80("redirect", "--help")
    assert out.returncode == 0 and not too_wide(out.stdout)


# -- the labs ------------------------------------------------------------------------
@pytest.mark.parametrize("number", [1, 8])
def test_lab_check_of_starter_and_solution_fits(tmp_path, number):
    lab = LABS[number]
    starter = run80("lab", "check", number, "--path", os.path.join(EXERCISES, lab.slug),
                    cwd=tmp_path)
    assert starter.returncode == 1 and "FAIL" in starter.stdout and "hints:" in starter.stdout
    solution = run80("lab", "check", number, "--path",
                     os.path.join(EXERCISES, "solutions", lab.slug), cwd=tmp_path)
    assert solution.returncode == 0 and "PASS" in solution.stdout, solution.stdout
    assert not too_wide(starter.stdout, starter.stderr, solution.stdout, solution.stderr)


def test_every_hint_and_check_name_of_every_lab_fits(monkeypatch, capsys):
    """The check table and the hints of all labs, each hint level, as `lab check` prints them."""
    from netlab.commands.lab import _print_result

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("LINES", raising=False)
    for lab in LABS.values():
        levels = max(len(c.hints) for c in lab.checks)
        for level in range(levels):
            tests = [{"name": c.name, "passed": False, "points": c.points,
                      "hint": c.hints[min(level, len(c.hints) - 1)] if c.hints else "",
                      "message": f"{c.name}: not done yet (solution.py:12): TODO: "
                                 f"{c.name.replace(' ', '_')}(arguments)"}
                     for c in lab.checks]
            _print_result(lab, os.path.join(EXERCISES, lab.slug),
                          {"score": 0, "max_score": lab.max_score, "status": "graded",
                           "tests": tests})
            out = capsys.readouterr().out
            assert "hints:" in out and not too_wide(out), (lab.number, level)


def test_lab_list_names_the_folder_a_score_came_from(tmp_path):
    """A score checked from here in another folder than the lab's says which one,
    in a pipe on the lab's one line, at 80 columns on a line of its own."""
    solution = os.path.join(EXERCISES, "solutions", LABS[1].slug)
    assert run_netlab("lab", "init", 1, cwd=tmp_path).returncode == 0  # ./lab01-ports, a starter
    assert run_netlab("lab", "check", 1, "--path", solution, cwd=tmp_path).returncode == 0
    full = f"{LABS[1].max_score}/{LABS[1].max_score} passed"
    where = f"in {os.path.relpath(solution, tmp_path)}"
    piped = run_netlab("lab", "list", cwd=tmp_path).stdout.splitlines()
    assert len(piped) == len(LABS)
    assert piped[0].startswith(" 1  ") and piped[0].endswith(f"{full} {where}"), piped[0]
    narrow = run80("lab", "list", cwd=tmp_path).stdout.splitlines()
    assert full in narrow[0] and narrow[1].strip() == where and not too_wide(*narrow)
    rows = json.loads(run_netlab("lab", "list", "--json", cwd=tmp_path).stdout)
    assert rows[0]["last_result"]["path"] == solution
    assert rows[0]["folder"] == str(tmp_path / LABS[1].slug)

    # The lab's own folder, checked from here: no "in ...", the score is the folder's.
    assert run_netlab("lab", "check", 1, cwd=tmp_path).returncode == 1
    line = run_netlab("lab", "list", cwd=tmp_path).stdout.splitlines()[0]
    assert re.search(rf"checked: \d+/{LABS[1].max_score}$", line) and " in " not in line, line
    # Another folder has its own results file: nothing of this one shows there.
    other = tmp_path / "other"
    other.mkdir()
    assert "checked" not in run_netlab("lab", "list", cwd=other).stdout
    assert (tmp_path / RESULTS_FILE).exists() and not (other / RESULTS_FILE).exists()


@pytest.mark.skipif(not ISOLATED, reason=f"lab grade needs the sandbox: bubblewrap (Debian "
                                         f"package bubblewrap) and user namespaces: {WHY}")
def test_lab_grade_table_fits(tmp_path):
    import shutil

    slug = LABS[1].slug
    shutil.copytree(os.path.join(EXERCISES, slug), tmp_path / "class" / "a-student-with-a-long-name")
    shutil.copytree(os.path.join(EXERCISES, "solutions", slug), tmp_path / "class" / "bo")
    out = run80("lab", "grade", 1, tmp_path / "class", "--jobs", "2", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "a-student-with-a-long-name" in out.stdout and "2 graded" in out.stdout
    assert not too_wide(out.stdout, out.stderr)


# -- servers, clients, redirect --------------------------------------------------------
class Background:
    """``netlab ARGS`` at COLUMNS=80 in the background: its first lines, then Ctrl-C."""

    def __init__(self, *argv: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "netlab", *argv], cwd=ROOT,
                                     env=netlab_env(COLUMNS), text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.head = []

    def port(self, proto: str) -> int:
        """Read lines until the one that says where ``proto`` listens."""
        while True:
            line = self.proc.stdout.readline()
            assert line, "exited: " + self.proc.stderr.read()
            self.head.append(line)
            found = re.fullmatch(rf"listening on {proto}://127\.0\.0\.1:(\d+)", line.strip())
            if found:
                return int(found.group(1))

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)  # the outputs are a few lines: no pipe fills up
        out, err = self.proc.stdout.read(), self.proc.stderr.read()  # also what readline buffered
        assert self.proc.returncode == 0, err
        return "".join(self.head) + out, err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def background():
    started = []

    def start(*argv):
        started.append(Background(*argv))
        return started[-1]
    yield start
    for proc in started:
        proc.close()


@pytest.mark.parametrize("service", ["echo", "discard", "chargen", "daytime", "time", "qotd"])
def test_server_and_clients_fit(background, service):
    server = background(service, "0")
    port = server.port("tcp")
    server.port("udp")
    clients = [[service, "--client", port], [service, "--client", "--udp", port]]
    if service in ("echo", "discard"):
        clients = [argv + ["-m", "hello"] for argv in clients]
    if service == "chargen":
        clients = [clients[0] + ["--lines", "20"]]  # UDP datagrams: see the module docstring
    outputs = []
    for argv in clients:
        out = run80(*argv)
        assert out.returncode == 0 and out.stdout, out.stderr
        outputs += [out.stdout, out.stderr]
    stdout, stderr = server.stop()
    assert f"stopped {service} " in stdout
    assert not too_wide(stdout, stderr, *outputs)


def test_scan_table_of_open_ports_fits(background):
    server = background("echo", "0")
    port = server.port("tcp")
    server.port("udp")
    for proto in ([], ["--udp"]):
        out = run80("scan", "127.0.0.1", f"{port - 2}-{port + 2}", "--all", *proto)
        assert out.returncode == 0, out.stderr
        assert f"{port}/{'udp' if proto else 'tcp'}" in out.stdout and "open" in out.stdout
        assert not too_wide(out.stdout, out.stderr)
    server.stop()


def test_server_warning_fits(background):
    server = background("echo", "0", "--udp", "--udp-rate", "0")
    server.port("udp")
    stdout, stderr = server.stop()
    assert "warning: --udp-rate 0" in stderr and not too_wide(stdout, stderr)


@pytest.mark.parametrize("link", [[], ["--udp", "--loss", "0.2", "--duplicate", "0.1",
                                       "--reorder", "0.1", "--delay", "1", "--seed", "7"]],
                         ids=["plain", "lossy"])
def test_redirect_start_and_summary_fit(background, link):
    target = background("echo", "0")
    port = target.port("tcp")
    relay = background("redirect", "0", f"127.0.0.1:{port}", *link)
    listen = relay.port("udp")
    for _ in range(3):
        run80("echo", "--client", "--udp", listen, "-m", "hi", "--timeout", "0.5",
              "--retries", "1")
    stdout, stderr = relay.stop()
    assert "forwarding to" in stdout and "redirect stopped" in stdout
    assert not too_wide(stdout, stderr)
    target.stop()


@pytest.mark.parametrize("test", ["udp", "tcp"])
def test_bench_two_hosts_server_and_client_fit(background, test):
    from tests.conftest import free_port

    port = free_port()
    server = background("bench", test, "--server", "--port", str(port), "--once")
    line = server.proc.stdout.readline()
    server.head.append(line)
    assert line.startswith("listening on tcp://")
    client = run80("bench", test, "--client", "127.0.0.1", "--port", port, "--seconds", "0.3")
    assert client.returncode == 0, client.stderr
    server.proc.wait(timeout=30)
    rest = server.proc.stdout.read()
    assert "two hosts" in rest and "two hosts" in client.stdout
    assert not too_wide(line, rest, server.proc.stderr.read(), client.stdout, client.stderr)


def test_a_pipe_without_columns_keeps_lines_whole(netlab_cli):
    """Scripts that grep the output see each note on one line, as before,
    also when COLUMNS and LINES come from GNU readline in a parent process."""
    inherited = subprocess.run(
        [sys.executable, "-c", "import readline, subprocess, sys; "
         "sys.exit(subprocess.run([sys.executable, '-m', 'netlab', 'ports', '7']).returncode)"],
        capture_output=True, text=True, env=netlab_env({"COLUMNS": ""}), cwd=ROOT, timeout=60,
        stdin=subprocess.DEVNULL)
    assert inherited.returncode == 0, inherited.stderr
    assert any(line.startswith("7/udp [amplification]") and "CERT CA-1996-01" in line
               for line in inherited.stdout.splitlines()), inherited.stdout
    out = netlab_cli("ports", "7", env={"COLUMNS": ""})
    assert out.returncode == 0, out.stderr
    assert any(line.startswith("7/udp [amplification]") and "CERT CA-1996-01" in line
               for line in out.stdout.splitlines()), out.stdout
    out = netlab_cli("bench", "latency", "--seconds", "0.2", env={"COLUMNS": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == [
        "server", "proto", "size", "round", "trips", "lost", "p50", "us", "p99", "us",
        "p99.9", "us", "max", "us", "client"], out.stdout  # one table, every column


def test_a_progress_line_never_wraps(monkeypatch):
    """A line rewritten with \\r must fit the terminal: a wrapped one cannot be rewritten."""
    import io

    from netlab.bench._common import Progress

    monkeypatch.setenv("COLUMNS", "50")
    stream = io.StringIO()
    progress = Progress(enabled=True, stream=stream)
    progress.update("echo: 12 clients, 1,234,567 round trips, 98,765 round trips/s, p99 "
                    "123 us", force=True)
    progress.done()
    drawn = stream.getvalue().split("\r")
    assert drawn[1].startswith("echo: 12 clients") and max(len(d) for d in drawn) == 49


@pytest.mark.parametrize("number", sorted(LABS))
def test_every_handout_fits(number):
    """`lab show N` prints the handout as written: its lines are kept within 80."""
    out = run80("lab", "show", number)
    assert out.returncode == 0 and out.stdout.startswith(f"# Lab {number}")
    assert not too_wide(out.stdout)


def test_a_table_too_wide_splits_into_tables_that_keep_the_first_column():
    import io

    from netlab._cliutil import display_width, print_table, wrap

    rows = [("netlab selectors", 2, "30,213", "30,208", 53.2, 177, 0, 0, "通过")]
    headers = ["server", "clients", "round trips", "round trips/s", "p50 us", "p99 us",
               "stalled", "errors", "结果"]
    out = io.StringIO()
    print_table(rows, headers, file=out, width=50)
    tables = out.getvalue().split("\n\n")
    assert len(tables) >= 2 and all(t.startswith("server") for t in tables)
    assert all(display_width(line) <= 50 for line in out.getvalue().splitlines())
    cells = " ".join(out.getvalue().split())
    assert all(str(c) in cells for c in rows[0]) and all(h in out.getvalue() for h in headers)
    whole = io.StringIO()
    print_table(rows, headers, file=whole, width=None)  # into a pipe: one table as before
    assert len(whole.getvalue().splitlines()) == 3
    pieces = wrap("端口选出主机上的程序；IANA 的知名、注册和动态范围；内核在本机分配的临时端口",
                  30, hang=4)
    assert len(pieces) > 2 and all(display_width(p) <= 30 for p in pieces)
    assert "".join(p.strip() for p in pieces).replace(" ", "") == \
        "端口选出主机上的程序；IANA的知名、注册和动态范围；内核在本机分配的临时端口"
