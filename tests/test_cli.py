"""The command-line skeleton through the real program."""
import json
import os
import shutil
import subprocess

import pytest

import netlab
from netlab import cli, sysinfo


def test_version(netlab_cli):
    out = netlab_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"netlab {netlab.__version__}"


def test_help_lists_every_command_with_a_description(netlab_cli):
    out = netlab_cli("--help")
    assert out.returncode == 0
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices, "no commands registered"
    for action in sub._choices_actions:
        assert action.dest in out.stdout
        assert action.help and len(action.help) > 10, action.dest


@pytest.mark.parametrize("argv", [["no-such-command"], [], ["info", "--bogus"]])
def test_usage_errors_are_one_line_exit_2(netlab_cli, argv):
    out = netlab_cli(*argv)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "error" in lines[0] and "--help" in lines[0]
    assert "Traceback" not in out.stderr


def test_main_returns_an_int():
    assert cli.main(["info", "--json"]) == 0
    assert cli.main(["--version"]) == 0
    assert cli.main(["nope"]) == 2


def test_info_text(netlab_cli):
    out = netlab_cli("info")
    assert out.returncode == 0, out.stderr
    for key in ("backend", "python", "platform", "bind below 1024",
                "ip_unprivileged_port_start", "ephemeral port range"):
        assert key in out.stdout


def test_info_json_reads_this_machine(netlab_cli):
    out = netlab_cli("info", "--json")
    data = json.loads(out.stdout)
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        assert data["ip_unprivileged_port_start"] == int(f.read())
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        assert data["ephemeral_port_range"] == [int(x) for x in f.read().split()]
    assert data["root"] == (os.geteuid() == 0)
    assert data["can_bind_below_1024"] == sysinfo.can_bind_privileged()
    assert data["version"] == netlab.__version__


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_info_as_ordinary_user_cannot_bind_low_ports():
    import sys

    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-m", "netlab", "info", "--json"],
        capture_output=True, text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["root"] is False
    if data["ip_unprivileged_port_start"] > 0:
        assert data["can_bind_below_1024"] is False


def test_console_script_is_the_same_program():
    exe = shutil.which("netlab")
    if exe is None:
        pytest.skip("the netlab console script is not on PATH (pip install -e . puts it there)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == f"netlab {netlab.__version__}"


@pytest.mark.parametrize("argv", [
    ["redirect", "0", "127.0.0.1:9", "--seconds", "nan"],
    ["redirect", "0", "127.0.0.1:9", "--udp", "--loss", "nan"],
    ["bench", "udp", "--seconds", "inf"],
])
def test_nan_and_inf_are_usage_errors(netlab_cli, argv):
    out = netlab_cli(*argv, timeout=30)
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize("argv", [["lab", "show", "abc"], ["tour", "--step", "x"]])
def test_a_usage_error_names_one_way_out(netlab_cli, argv):
    """An argument check that already says where to look gets no second '(see ...)'."""
    out = netlab_cli(*argv)
    assert out.returncode == 2
    assert out.stderr.count("(see '") == 1, out.stderr
