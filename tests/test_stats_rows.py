"""The ``ports`` and ``flows`` tables of the stats dict: read-only sequences of row dicts.

The compiled core keeps their rows in C and makes each dict when it is read
(a capture of thousands of flows pays for the rows a program reads); the
pure twin's tables (``netlab.packet.stats.Rows``) behave the same. Both must
act like the lists of dicts they replaced: index, slice, iterate, compare,
print, pickle, and come out of ``--json`` as arrays.
"""
import gc
import json
import os
import pickle
import sys
from collections.abc import Sequence

import pytest

from netlab.packet.pcap import open_capture
from netlab.packet.stats import Rows

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "netlab", "data", "samples", "flows.pcap")


@pytest.fixture
def stats(core):
    with open_capture(SAMPLE) as buf:
        return core.aggregate(buf)


@pytest.mark.parametrize("table", ["flows", "ports"])
def test_a_table_reads_like_a_list_of_dicts(stats, table):
    rows = stats[table]
    as_list = list(rows)
    assert isinstance(rows, Rows) and isinstance(rows, Sequence) and not isinstance(rows, list)
    assert len(rows) == len(as_list) > 1000 and bool(rows)
    assert all(type(r) is dict for r in as_list)
    assert rows[0] == as_list[0] and rows[-1] == as_list[-1] and rows[-len(rows)] == as_list[0]
    assert rows[5:9] == as_list[5:9] and isinstance(rows[5:9], list)
    assert rows[::-500] == as_list[::-500] and rows[10**6:] == []
    assert list(reversed(rows)) == as_list[::-1]
    assert as_list[7] in rows and {"proto": "sctp"} not in rows
    assert rows.index(as_list[3]) == 3 and rows.count(as_list[3]) == 1
    with pytest.raises(IndexError):
        rows[len(rows)]
    with pytest.raises(IndexError):
        rows[-len(rows) - 1]
    with pytest.raises(IndexError):
        rows[10**30]
    with pytest.raises(TypeError):
        rows["src"]
    with pytest.raises(TypeError):
        hash(rows)


@pytest.mark.parametrize("table", ["flows", "ports"])
def test_a_table_compares_prints_and_pickles_as_its_rows(stats, table):
    rows = stats[table]
    as_list = list(rows)
    assert rows == as_list and as_list == rows and not rows != as_list
    changed = as_list[:-1] + [dict(as_list[-1], packets=as_list[-1]["packets"] + 1)]
    assert rows != changed and not rows == changed
    assert rows != as_list[:-1] and rows != "rows" and rows != 7
    assert repr(rows) == repr(as_list)
    back = pickle.loads(pickle.dumps(rows))
    assert back == rows and type(back) is Rows
    # a row read is a copy: changing it leaves the table as it was
    first = rows[0]
    first["packets"] = -1
    assert rows[0]["packets"] != -1


def test_both_backends_give_equal_tables(both_cores):
    with open_capture(SAMPLE) as buf:
        c, py = (core.aggregate(buf) for core in both_cores)
    assert type(c["flows"]) is not type(py["flows"])
    assert c == py and c["flows"] == py["flows"] and py["ports"] == c["ports"]
    assert c["flows"][100] == py["flows"][100] and c["ports"][-3:] == py["ports"][-3:]


def test_json_of_the_stats_dict(stats):
    text = json.dumps(stats, default=list)  # as the Rows docstring says
    back = json.loads(text)
    assert back["flows"] == list(stats["flows"]) and back["ports"] == list(stats["ports"])


def test_dissect_stats_json_prints_the_tables_as_arrays(netlab_cli, both_cores):
    out = netlab_cli("dissect", SAMPLE, "--stats", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    with open_capture(SAMPLE) as buf:
        want = both_cores[1].aggregate(buf)
    assert isinstance(data["flows"], list) and isinstance(data["ports"], list)
    assert data["flows"] == list(want["flows"]) and data["ports"] == list(want["ports"])
    assert len(data["flows"]) > 2000


def test_the_compiled_tables_make_no_row_before_it_is_read(both_cores):
    """Laziness itself: the compiled aggregate of ~3,000 flows makes a few dozen objects."""
    c = both_cores[0]
    with open_capture(SAMPLE) as buf:
        c.aggregate(buf)  # warm: the address cache and interned words
        gc.collect()
        before = sys.getallocatedblocks()
        stats = c.aggregate(buf)
        made = sys.getallocatedblocks() - before
        assert len(stats["flows"]) > 2000 and len(stats["ports"]) > 2000
        assert made < 200, f"{made} blocks for {len(stats['flows'])} flows"
        eager = list(stats["flows"])
        assert sys.getallocatedblocks() - before > len(eager)  # reading them does make them
