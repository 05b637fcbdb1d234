"""Learner-facing output fits an 80-column terminal (COLUMNS=80); pipes keep whole lines."""
import pytest

from netlab import sysinfo

COMMANDS = [
    ["info"],
    ["ports", "7", "19", "80", "8080", "http"],
    ["ports", "--range"],
    ["independence"],
    ["bindcheck", "80"],
    ["bindcheck", "7007", "--udp"],
    ["tour", "--list"],
]
if sysinfo.is_root():
    COMMANDS.append(["bindcheck", "80", "--as-user", "nobody"])


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_fits_80_columns(netlab_cli, argv):
    out = netlab_cli(*argv, env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    wide = [line for line in out.stdout.splitlines() if len(line) > 80]
    assert not wide, wide


def test_a_pipe_without_columns_keeps_lines_whole(netlab_cli):
    """Scripts that grep the output see each note on one line, as before."""
    out = netlab_cli("ports", "7", env={"COLUMNS": ""})
    assert out.returncode == 0, out.stderr
    assert any(line.startswith("7/udp [amplification]") and "CERT CA-1996-01" in line
               for line in out.stdout.splitlines()), out.stdout
