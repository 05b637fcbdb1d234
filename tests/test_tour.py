"""``netlab tour`` through the real command line: every step runs, says what it shows, exits 0."""
from __future__ import annotations

import importlib
import re
import select
import time

import pytest

from netlab import sysinfo
from netlab.tour import STEPS

TITLES = [step.title for step in STEPS]


def _header(number: int) -> str:
    return f"== Step {number}/{len(STEPS)}: {TITLES[number - 1]}"


def test_the_tour_has_the_lesson_in_order():
    assert TITLES == [
        "Port numbers and their three ranges",
        "Services over TCP and UDP: echo, daytime, chargen",
        "TCP and UDP share one port number",
        "Binding a port below 1024",
        "The three-way handshake",
        "UDP loss through a lossy relay",
        "Parsing packets: the compiled core and its twin",
    ] + (["A network of hosts: binding and a firewall seen from another host"]
         if sysinfo.is_root() else [])


@pytest.fixture(scope="module")
def whole_tour():
    from tests.conftest import run_netlab

    return run_netlab("tour", timeout=90)


def test_whole_tour_runs_every_step_and_exits_0(whole_tour):
    result = whole_tour
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    positions = [out.find(_header(n)) for n in range(1, len(STEPS) + 1)]
    assert all(p >= 0 for p in positions), out[:2000]
    assert positions == sorted(positions)
    assert f"tour done: {len(STEPS)} of {len(STEPS)} step(s) ran" in out
    # Each step names its lesson page and its lab, and the files exist.
    for step in STEPS:
        assert f"lesson: docs/{step.lesson}.rst" in out
        assert f"lab: exercises/{step.lab}/" in out


def _step_text(out: str, number: int) -> str:
    start = out.index(_header(number))
    nxt = out.find("== Step ", start + 1)
    return out[start:nxt if nxt >= 0 else len(out)]


def test_ranges_step(whole_tour):
    text = _step_text(whole_tour.stdout, 1)
    assert re.search(r"well-known\s+0-1023\s+1024", text)
    assert re.search(r"registered\s+1024-49151\s+48128", text)
    assert re.search(r"dynamic\s+49152-65535\s+16384", text)
    low, high = sysinfo.ephemeral_port_range()
    assert f"ephemeral (local) ports from {low}-{high}" in text
    got = int(re.search(r"Binding port 0 just now got port (\d+)", text).group(1))
    assert low <= got <= high


def test_services_step(whole_tour):
    text = _step_text(whole_tour.stdout, 2)
    for name in ("echo", "daytime", "chargen"):
        m = re.search(rf"started {name}\s+on tcp://127\.0\.0\.1:(\d+) and udp://127\.0\.0\.1:(\d+)", text)
        assert m and m.group(1) == m.group(2), f"{name}: TCP and UDP on one port"
    for proto in ("tcp", "udp"):
        assert f"echo    {proto}: sent b'hello over {proto}\\n', got back b'hello over {proto}\\n'" in text
        assert re.search(rf"daytime {proto}: \w+day, \w+ \d+, \d{{4}} \d\d:\d\d:\d\d", text)
    assert " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg" in text
    assert re.search(r"chargen udp: one 1-byte request got a \d+-character datagram back", text)
    flowing = " ".join(text.split())  # prose wraps to the terminal's width
    assert "echo stopped, tcp client: cannot connect" in flowing
    assert "connection refused" in flowing
    assert "echo stopped, udp client: no reply" in flowing
    for name in ("echo", "daytime", "chargen"):
        assert re.search(rf"{name}\s+served 1 TCP connection\(s\) and \d+ UDP datagram\(s\); stopped", text)


def test_independence_step(whole_tour):
    text = _step_text(whole_tour.stdout, 3)
    assert re.search(r"first TCP socket\s+bound", text)
    assert re.search(r"UDP socket\s+bound", text)
    assert re.search(r"second TCP socket\s+EADDRINUSE", text)
    assert "a second TCP socket got EADDRINUSE" in text


def test_binding_step(whole_tour):
    text = _step_text(whole_tour.stdout, 4)
    start = sysinfo.unprivileged_port_start()
    assert f"ip_unprivileged_port_start on this machine: {start}" in text
    port = int(re.search(r"bind tcp://127\.0\.0\.1:(\d+) ->", text).group(1))
    if port >= start:
        pytest.skip(f"this machine lets everyone bind from port {start}: nothing privileged to show")
    if sysinfo.can_bind_privileged():
        assert re.search(r"\(this process\): bind tcp://127\.0\.0\.1:\d+ -> bound", text)
    else:
        assert re.search(r"\(this process\): bind tcp://127\.0\.0\.1:\d+ -> EACCES", text)
    if sysinfo.is_root():
        assert re.search(r"as nobody \(child process\): bind tcp://127\.0\.0\.1:\d+ -> EACCES", text)


def test_handshake_step(whole_tour):
    text = _step_text(whole_tour.stdout, 5)
    order = [text.find("SYN: handshake 1/3"), text.find("SYN-ACK: handshake 2/3"),
             text.find("ACK: handshake 3/3"), text.find("FIN: teardown"),
             text.find("ACK: teardown done")]
    assert all(p >= 0 for p in order) and order == sorted(order), text
    if sysinfo.can_capture():
        assert "capturing on lo" in text
    else:
        assert "decoding the sample capture" in text


def test_loss_step(whole_tour):
    text = _step_text(whole_tour.stdout, 6)
    m = re.search(r"sent 50 datagrams, (\d+) echoes came back, (\d+) never did", text)
    assert m, text
    back, lost = int(m.group(1)), int(m.group(2))
    assert back + lost == 50
    # 20% each way: about a third lost; 0 or 50 would mean the relay did nothing (or all).
    assert 3 <= lost <= 35
    dropped = re.search(r"dropped (\d+) on the way to the server and (\d+) on the way back", text)
    # Why a round trip loses about 36%, not 20%: two chances to be dropped.
    assert "0.8 x 0.8 = 64% of round trips come back and 36%" in text
    assert int(dropped.group(1)) + int(dropped.group(2)) == lost
    assert "got 550 back, every byte, in order" in text


def test_parse_bench_step(whole_tour):
    text = _step_text(whole_tour.stdout, 7)
    assert re.search(r"cython \(compiled core\)\s+[\d.]+ [Mk]/s\s+[\d.]+ [Mk]/s", text)
    assert re.search(r"python \(the twin\)\s+[\d.]+ [Mk]/s\s+[\d.]+ [Mk]/s", text)
    assert "sample capture are identical: yes (cython, python)" in text
    # The two columns are explained, not just shown.
    assert "stats path: the core walks the file" in text and "records path: one Python" in text


@pytest.mark.parametrize("number", range(1, len(STEPS) + 1))
def test_each_step_alone(netlab_cli, number):
    result = netlab_cli("tour", "--step", number, timeout=60)
    assert result.returncode == 0, result.stderr
    assert _header(number) in result.stdout
    assert result.stdout.count("== Step ") == 1
    assert "tour done: 1 of 1 step(s) ran" in result.stdout


def test_sample_capture_without_live(netlab_cli):
    result = netlab_cli("tour", "--step", 5, "--no-live", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "decoding the sample capture netlab/data/samples/handshake.pcap" in result.stdout
    # The shipped capture: client port 40808 to netlab's echo on 7107, 14 TCP packets.
    assert "1  127.0.0.1:40808 > 127.0.0.1:7107  [SYN]  seq=3454300916" in result.stdout
    assert "14  127.0.0.1:40808 > 127.0.0.1:7107  [ACK]" in result.stdout
    assert "ACK: teardown done, connection closed" in result.stdout


def test_seed_makes_the_loss_repeatable(netlab_cli):
    runs = [netlab_cli("tour", "--step", 6, "--seed", 7, timeout=60) for _ in range(2)]
    lost = []
    for result in runs:
        assert result.returncode == 0, result.stderr
        lost.append(re.search(r"lost letters: ([\d .]+)", result.stdout).group(1))
    assert lost[0] == lost[1]


def test_list(netlab_cli):
    result = netlab_cli("tour", "--list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(STEPS)
    for n, (line, step) in enumerate(zip(lines, STEPS), 1):
        assert line.startswith(f"{n}. {step.title}")
        assert f"docs/{step.lesson}.rst" in line and f"exercises/{step.lab}/" in line


@pytest.mark.parametrize("bad", ["0", str(len(STEPS) + 1), "abc", "-1"])
def test_bad_step_is_a_usage_error(netlab_cli, bad):
    result = netlab_cli("tour", "--step", bad)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "step" in lines[0] and "Traceback" not in result.stderr


def test_steps_point_at_real_files():
    import os

    from tests.conftest import ROOT

    for step in STEPS:
        assert os.path.exists(os.path.join(ROOT, "docs", step.lesson + ".rst")), step.lesson
        assert os.path.isdir(os.path.join(ROOT, "exercises", step.lab)), step.lab


def test_lessons_cite_the_right_tour_steps():
    """Where a lesson says 'tour --step N' or 'Step N of ... tour', step N belongs to that lesson."""
    import os

    from tests.conftest import ROOT

    folder = os.path.join(ROOT, "docs", "lessons")
    cited = 0
    for name in os.listdir(folder):
        if not name.endswith(".rst") or name == "setup.rst":
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"tour --step (\d+)|Step (\d+) of", text):
            number = int(m.group(1) or m.group(2))
            assert STEPS[number - 1].lesson == "lessons/" + name[:-4], (name, number)
            cited += 1
    assert cited >= 2


def test_a_broken_step_is_reported_and_cleaned_up():
    """A step that fails reports one line, still runs its cleanups, and the tour goes on."""
    import io

    from netlab.tour import Step, run_step

    cleaned = []

    def broken(ctx):
        ctx.stack.callback(cleaned.append, "closed")
        raise ValueError("bad value")

    out = io.StringIO()
    failed = run_step(Step("broken", "x", "lessons/ports", "lab01-ports", broken, 1), out)
    assert failed.status == "failed" and "ValueError: bad value" in failed.message
    assert cleaned == ["closed"]
    assert "step failed: internal error: ValueError: bad value" in out.getvalue()


def test_every_line_fits_80_columns(netlab_cli):
    for argv in (["tour", "--no-live"], ["tour", "--list"]):
        result = netlab_cli(*argv, env={"COLUMNS": "80"}, timeout=90)
        assert result.returncode == 0, result.stderr
        wide = [line for line in result.stdout.splitlines() if len(line) > 80]
        assert not wide, wide


def test_each_step_is_its_own_module():
    import netlab.tour

    for step in STEPS:
        module = step.func.__module__
        assert module.startswith("netlab.tour.") and module != "netlab.tour", module
        assert getattr(importlib.import_module(module), "STEP") is step


def _tour_on_a_terminal(answers, *argv):
    """Run the tour with a pseudo-terminal as stdin and stdout, answer its pauses."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import ROOT, netlab_env

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "netlab", "tour", "--no-live", *argv],
                            stdin=follower, stdout=follower, stderr=follower,
                            env=netlab_env({"COLUMNS": "80"}), cwd=ROOT)
    os.close(follower)
    output = b""
    pending = list(answers)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if pending and output.rstrip().endswith(b"q: quit --"):
                os.write(leader, pending.pop(0) + b"\n")
        return proc.wait(timeout=30), output.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)


def test_on_a_terminal_it_waits_between_steps_and_q_quits():
    code, out = _tour_on_a_terminal([b"", b"q"], "--step", "1", "--step", "3", "--step", "6")
    # Enter (an empty answer) went on to step 3; q ended the tour before step 6.
    assert code == 0, out
    assert "-- Enter: step 3, TCP and UDP share one port number; q: quit --" in out
    assert "== Step 3/" in out and "== Step 6/" not in out
    assert "tour done: 2 of 2 step(s) ran" in out


def test_no_pause_runs_straight_through_on_a_terminal():
    code, out = _tour_on_a_terminal([], "--step", "1", "--step", "3", "--no-pause")
    assert code == 0, out
    assert "q: quit" not in out and "tour done: 2 of 2 step(s) ran" in out
