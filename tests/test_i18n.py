"""CLI messages in Chinese under a zh_CN locale; the default locale stays English."""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from netlab import _i18n
from netlab._cliutil import display_width
from tests.conftest import ROOT, run_netlab

LAB1 = os.path.join(ROOT, "exercises", "lab01-ports")
# Every variable gettext reads, so the machine's own locale cannot leak in.
ENGLISH = {"LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8"}
CHINESE = dict(ENGLISH, LANG="zh_CN.UTF-8")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _strings_in_code() -> set:
    """Every string constant of netlab's code (adjacent literals joined, as Python does)."""
    found = set()
    for path in Path(ROOT, "netlab").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found |= {node.value for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    return found


def _looked_up_in_code() -> set:
    """The literal messages code passes to ``_()``."""
    found = set()
    for path in Path(ROOT, "netlab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_" \
                    and node.args and isinstance(node.args[0], ast.Constant):
                found.add(node.args[0].value)
    return found


def test_every_catalog_message_is_in_the_code_and_every_lookup_in_the_catalog():
    catalog = _i18n.read_po(_i18n.CATALOG)
    assert len(catalog) > 30
    from netlab.tour import STEPS

    # A step's title and description may be built from the service table at import.
    said = _strings_in_code() | {text for step in STEPS for text in (step.title, step.shows)}
    assert not set(catalog) - said, "catalog messages no code says"
    assert not _looked_up_in_code() - set(catalog), "messages looked up but not translated"
    for msgid, msgstr in catalog.items():
        # the fields a message fills in are the same in both languages
        assert sorted(re.findall(r"{\w*}", msgid)) == sorted(re.findall(r"{\w*}", msgstr)), msgid
        assert CJK.search(msgstr), msgid


@pytest.mark.parametrize("environ,expected", [
    ({"LANG": "zh_CN.UTF-8"}, True), ({"LC_ALL": "zh_CN.UTF-8", "LANG": "C"}, True),
    ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, True), ({"LANGUAGE": "zh"}, True),
    ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, False), ({"LANG": "en_US.UTF-8"}, False),
    ({"LANG": "zh_TW.UTF-8"}, False), ({}, False)])
def test_which_locales_speak_chinese(environ, expected):
    assert _i18n.chinese(environ) is expected


def test_lab_check_in_chinese_and_unchanged_in_the_default_locale(tmp_path):
    english = run_netlab("lab", "check", 1, "--path", LAB1, env=ENGLISH, cwd=tmp_path)
    chinese = run_netlab("lab", "check", 1, "--path", LAB1, env=CHINESE, cwd=tmp_path)
    assert english.returncode == chinese.returncode == 1
    assert not CJK.search(english.stdout + english.stderr)
    assert "\nhints:\n" in english.stdout and "\nscore: 0/16\n" in english.stdout
    assert "FAIL" in english.stdout
    assert "\n提示：\n" in chinese.stdout and "\n得分：0/16\n" in chinese.stdout
    assert chinese.stdout.startswith("实验 1：") and "未通过" in chinese.stdout
    # The lab's own words (check names, hints) are the same in both.
    assert "classify ranges" in chinese.stdout and "RFC 6335" in chinese.stdout
    narrow = run_netlab("lab", "check", 1, "--path", LAB1, env=dict(CHINESE, COLUMNS="80"),
                        cwd=tmp_path)
    assert "未通过" in narrow.stdout
    assert not [line for line in narrow.stdout.splitlines() if display_width(line) > 80]
    listing = run_netlab("lab", "list", env=CHINESE, cwd=tmp_path).stdout.splitlines()[0]
    assert "已检查：0/16" in listing and f"位于 {os.path.relpath(LAB1, tmp_path)}" in listing


def test_tour_in_chinese_fits_80_columns():
    env = dict(CHINESE, COLUMNS="80")
    out = run_netlab("tour", "--step", "1", "--step", "3", "--no-pause", env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "== 第 1/" in out.stdout and "端口号及其三个范围" in out.stdout
    assert "导览结束：2 步中运行了 2 步" in out.stdout
    listing = run_netlab("tour", "--list", env=env)
    for text in (out.stdout, listing.stdout):
        wide = [line for line in text.splitlines() if display_width(line) > 80]
        assert not wide, wide
    english = run_netlab("tour", "--list", env=ENGLISH)
    assert english.stdout.startswith("1. Port numbers and their three ranges")
    assert not CJK.search(english.stdout)


@pytest.mark.parametrize("argv,chinese", [
    (["echo", "--client", "70000"], "无效的端口 70000"),
    (["lab", "check", "42"], "没有实验 42"),
    (["lab", "check", "x"], "无效的实验编号 'x'"),
    (["tour", "--step", "9"], "无效的步骤 9"),
])
def test_errors_in_chinese_stay_one_line_with_one_way_out(tmp_path, argv, chinese):
    english = run_netlab(*argv, env=ENGLISH, cwd=tmp_path)
    zh = run_netlab(*argv, env=CHINESE, cwd=tmp_path)
    assert english.returncode == zh.returncode == 2
    for out in (english, zh):
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert not CJK.search(english.stderr) and "(see '" in english.stderr
    assert chinese in zh.stderr and "see '" not in zh.stderr and zh.stderr.count("（见 '") == 1
