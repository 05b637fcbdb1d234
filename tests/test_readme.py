"""The README's two quick-start commands stay true: CI runs the second verbatim."""
import re
from pathlib import Path

from tests.conftest import ROOT


def _quick_start_commands():

    text = Path(ROOT, "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_two_commands_each_set_up_a_venv_on_stock_debian():
    main_job, tests = _quick_start_commands()
    for command in (main_job, tests):
        # Stock Debian's Python refuses pip outside a venv; apt must not stop to ask.
        assert "apt-get install -y python3-venv python3-dev gcc" in command
        assert "python3 -m venv .venv && . .venv/bin/activate && pip install -e " in command
    assert main_job.endswith("netlab tour")
    assert "python -m pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = _quick_start_commands()
    ci = Path(ROOT, ".ci", "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci
