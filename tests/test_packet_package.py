"""The shape of netlab.packet: numbers named once, neutral modules, one twin switch."""
import inspect
import os
import re
import subprocess
import sys

import pytest

from netlab import _twins
from netlab.packet import fields as F
from netlab.packet.pure import decode

from tests.conftest import ROOT, netlab_env

SRC_C = os.path.join(ROOT, "src_c")


def test_every_record_field_has_its_index_constant():
    assert len(F.RECORD_FIELDS) == 19
    for i, name in enumerate(F.RECORD_FIELDS):
        assert getattr(F, name.upper()) == i, name


def test_the_record_builder_names_the_decoded_fields_in_record_order():
    params = list(inspect.signature(decode.decoded).parameters)
    assert sorted(params) == sorted(F.RECORD_FIELDS[F.ETHERTYPE:])
    rec = decode.decoded(**{name: name for name in params})
    assert rec == F.RECORD_FIELDS[F.ETHERTYPE:]  # each value lands at its field's index
    empty = (0,) * F.ETHERTYPE + decode.decoded(0x0800, F.S_TRUNC)
    assert (empty[F.SRC], empty[F.PROTO], empty[F.SPORT], empty[F.STATUS]) == (None, -1, 0, F.S_TRUNC)


def _c_sources():
    for name in sorted(os.listdir(SRC_C)):
        if name.endswith((".h", ".pxi", ".pyx")) and name != "fields.h":
            with open(os.path.join(SRC_C, name), encoding="utf-8") as f:
                yield name, f.read()


def test_the_c_sources_define_no_shared_number_themselves():
    for name, text in _c_sources():
        for prefix in ("NL_S_", "NL_T_", "NL_MAX_CAPLEN", "NL_RELEASE_STEP", "NL_ETH_"):
            assert not re.search(rf"#define\s+{prefix}", text), (name, prefix)
        # the pure twin is a peer of the compiled core, never its library
        assert not re.search(r"^\s*(from|cimport|import)\s+netlab\.packet\.pure", text, re.M), name


def test_the_build_writes_fields_h_from_fields_py():
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        source = f.read().split("def extensions():")[0]
    namespace = {"__file__": os.path.join(ROOT, "setup.py")}
    exec(source.replace("from setuptools import Extension, setup", ""), namespace)  # noqa: S102
    namespace["write_fields_header"](ROOT)
    with open(os.path.join(SRC_C, "fields.h"), encoding="utf-8") as f:
        header = f.read()
    defined = dict(re.findall(r"#define NL_(\w+) (0x[0-9a-f]+|\d+)u?", header))
    for name in ("S_L4", "S_L4_PART", "T_RST", "TCP_ACK", "ETH_IPV6", "MAX_CAPLEN", "RELEASE_STEP"):
        assert int(defined[name], 0) == getattr(F, name), name


def _modules_after(code, extra_env=None):
    env = dict(netlab_env(), **(extra_env or {}))
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(' '.join(m for m in sys.modules if m.startswith('netlab')))"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_packet_and_sysinfo_import_each_other_no_more():
    assert "netlab.sysinfo" not in _modules_after("import netlab.packet")
    assert "netlab.packet" not in _modules_after("import netlab.sysinfo")


@pytest.mark.skipif(_twins.pure_python_requested(), reason="NETLAB_PURE_PYTHON=1 asks for the twin")
def test_the_compiled_core_does_not_load_the_pure_twin():
    mods = _modules_after("import netlab.packet as p; assert p.BACKEND == 'cython', p.BACKEND_REASON")
    assert "netlab.packet._core" in mods
    assert not any(m.startswith("netlab.packet.pure") for m in mods), sorted(mods)


def test_one_switch_sends_every_pair_to_its_twin():
    code = ("from netlab import _twins\n"
            "for pair in sorted(_twins.TWINS):\n"
            "    module, backend, reason = _twins.choose(pair)\n"
            "    print(pair, getattr(module, '__name__', None), backend, reason.replace(' ', '_'))\n")
    env = dict(netlab_env(), NETLAB_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=60)
    rows = [line.split() for line in out.stdout.splitlines()]
    assert rows == [["netio", "netlab._pynetio", "python", "NETLAB_PURE_PYTHON_is_set"],
                    ["packet", "netlab.packet.pure", "python", "NETLAB_PURE_PYTHON_is_set"],
                    ["servers", "None", "python", "NETLAB_PURE_PYTHON_is_set"]]


def test_tools_read_records_by_field_name():
    numbered = re.compile(r"\b(rec|r|record|frame)\[\d+\]")
    found = []
    for top in ("netlab", "tools"):
        for root, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8") as f:
                        for n, line in enumerate(f, 1):
                            if numbered.search(line.split("#")[0]):
                                found.append(f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
    # Not records: a port range (tour) and a DNS request list (lab 15/16).
    found = [f for f in found if not f.startswith(("netlab/tour/ranges.py", "netlab/labs/lab1"))]
    assert not found, "\n".join(found)
