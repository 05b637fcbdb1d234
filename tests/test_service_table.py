"""Issue 12: every place that states a service's facts agrees with netlab.services.table.

The table (name, RFC, well-known port, netlab's 70xx default) is read by the
code; the places that must state the facts in words (the lesson pages and
their zh_CN translations, the teaching notes, lab 1's sample service file)
are checked against it here, so none of them can drift.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from netlab import cli, ports
from netlab.labs import lab01
from netlab.services.table import SERVICE_TABLE, facts
from netlab.tour import services as tour_services
from tests.conftest import ROOT, run_netlab

NAMES = [row.name for row in SERVICE_TABLE]
LESSONS = Path(ROOT, "docs", "lessons")
PO = Path(ROOT, "docs", "locale", "zh_CN", "LC_MESSAGES", "lessons")
# The lesson pages that speak of the services' ports and RFCs.
PAGES = ("services", "ports", "scanning", "tcp-udp")


def _list_table_rows(text: str, first_line: str) -> list:
    """The rows of the ``list-table`` whose header row starts with ``first_line``,
    each as a list of its cells' text (continuation lines joined)."""
    start = text.index(f"   * - {first_line}")
    rows = []
    for line in text[start:].splitlines():
        if line.startswith("   * - "):
            rows.append([line[7:].strip()])
        elif line.startswith("     - "):
            rows[-1].append(line[7:].strip())
        elif line.startswith("       ") and rows:
            rows[-1][-1] += " " + line.strip()
        elif line.strip():
            break
    return rows[1:]  # without the header


def test_the_services_lesson_table_is_the_service_table():
    rows = _list_table_rows((LESSONS / "services.rst").read_text(), "service")
    page = {name: (int(port), int(rfc)) for name, port, rfc, _ in rows}
    assert page == {row.name: (row.well_known_port, row.rfc) for row in SERVICE_TABLE}


def test_the_services_lesson_names_every_default_port():
    text = " ".join((LESSONS / "services.rst").read_text().split())
    listed = re.search(r"7000 plus the well-known port \(([^)]*)\)", text).group(1)
    pairs = dict(re.findall(r"(\w+) (\d+)", listed))
    assert {name: int(port) for name, port in pairs.items()} == \
        {row.name: row.default_port for row in SERVICE_TABLE}
    for row in SERVICE_TABLE:  # and 7000 + the well-known port is what the table says
        assert row.default_port == 7000 + row.well_known_port


def test_the_ports_lesson_gives_each_service_its_port_and_rfc():
    rows = _list_table_rows((LESSONS / "ports.rst").read_text(), "port")
    by_service = {service: (port, what) for port, _, service, what in rows}
    for row in SERVICE_TABLE:
        port, what = by_service[row.name]
        assert int(port) == row.well_known_port, row.name
        assert re.search(rf"\(RFC {row.rfc}\)", what), (row.name, what)


@pytest.mark.parametrize("page", PAGES)
def test_commands_in_the_lessons_use_the_default_ports(page):
    # "netlab echo 7007", "netlab daytime --client 7013 ...": a port in netlab's
    # 70xx block is the one the server takes when started without PORT (other
    # ports, 8001 on a namespace host, are the page's own choice).
    text = (LESSONS / f"{page}.rst").read_text()
    names = "|".join(NAMES)
    found = re.findall(rf"netlab ({names})((?: --?[a-z]+)*) (\d+)\b", text)
    for name, _, port in found:
        if 7000 <= int(port) < 7100:
            assert int(port) == facts(name).default_port, (page, name, port)
    if page in ("services", "tcp-udp", "scanning"):
        assert found, f"{page} shows no service command with a port"


@pytest.mark.parametrize("page", PAGES)
def test_zh_cn_translations_state_the_same_ports_and_rfcs(page):
    # Every number a message holds (a port, an RFC) is in its translation too.
    numbers = {str(n) for row in SERVICE_TABLE
               for n in (row.rfc, row.well_known_port, row.default_port)}
    with open(PO / f"{page}.po", "rb") as f:
        catalog = read_po(f)
    checked = 0
    for message in catalog:
        if not message.id or not message.string:
            continue
        said = [n for n in re.findall(r"\d+", message.id) if n in numbers]
        if said and any(len(n) > 2 for n in said):  # skip bare small numbers
            checked += 1
            assert sorted(said) == sorted(n for n in re.findall(r"\d+", message.string)
                                          if n in numbers), message.id
    if page == "services":
        assert checked >= 3


def test_the_teaching_notes_agree_with_the_table():
    with open(Path(ROOT, "netlab", "data", "port-notes.csv"), newline="") as f:
        notes = [r for r in csv.reader(line for line in f if not line.startswith("#"))][1:]
    lessons = {int(port): note for port, _, topic, note in notes if topic == "lesson"}
    for row in SERVICE_TABLE:
        note = lessons[row.well_known_port]
        assert note.startswith(f"RFC {row.rfc}: "), note
        assert row.name in note, note
        runs_on = re.search(r"runs it on (\d+)", note)
        if runs_on:
            assert int(runs_on.group(1)) == row.default_port, note


def test_the_cli_help_states_each_services_rfc_and_default_port():
    for row in SERVICE_TABLE:
        text = " ".join(_subparser(cli.build_parser(), row.name).format_help().split())
        assert f"RFC {row.rfc}" in text, row.name
        assert f"port {row.default_port}" in text, row.name


def _subparser(parser, name):
    for action in parser._actions:  # argparse keeps no public list of its subparsers
        if isinstance(getattr(action, "choices", None), dict) and name in action.choices:
            return action.choices[name]
    raise AssertionError(f"no subcommand {name}")


def test_the_port_registry_names_the_well_known_ports_as_the_table_does():
    # scan, netstat, ports and the tour name ports through the registry.
    for row in SERVICE_TABLE:
        for proto in ("tcp", "udp"):
            assert ports.service_name(row.well_known_port, proto) == row.name


def test_the_tour_takes_its_service_facts_from_the_table():
    rfcs = sorted(facts(name).rfc for name in tour_services._SHOWN)
    assert f"RFC {rfcs[0]}, {rfcs[1]} and {rfcs[2]} " in tour_services.STEP.shows
    out = run_netlab("tour", "--step", "1", "--step", "3", "--no-pause", check=True).stdout
    for name in ("echo", "daytime", "chargen"):  # the ranges step's sample of ports
        port = facts(name).well_known_port
        assert re.search(rf"^ +{port} +well-known +{name} +{name}$", out, re.M), name
    echo = facts("echo").well_known_port
    assert f"TCP {echo} and UDP {echo} are two different doors" in out


def test_lab1_sample_service_file_uses_the_well_known_ports():
    lines = [line.split() for line in lab01.SAMPLE_TABLE.splitlines()
             if line.strip() and not line.startswith("#")]
    listed = {(fields[0], fields[1]) for fields in lines}
    for name in ("echo", "discard", "chargen", "time"):
        port = facts(name).well_known_port
        assert {(name, f"{port}/tcp"), (name, f"{port}/udp")} <= listed, name
