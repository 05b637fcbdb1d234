"""The backend switch: compiled core loaded, twin forced by NETLAB_PURE_PYTHON."""
import json

import pytest

from netlab import packet
from netlab.packet import pure
from netlab.packet import pure_python_requested


@pytest.mark.skipif(pure_python_requested(), reason="NETLAB_PURE_PYTHON=1 asks for the twin")
def test_compiled_core_is_loaded():
    # If this fails, the tests below ran the pure-Python twin twice.
    assert packet.BACKEND == "cython", packet.BACKEND_REASON
    from netlab.packet import _core

    assert _core.__file__.endswith((".so", ".pyd"))


def test_opt_out_forces_the_twin(netlab_cli):
    out = netlab_cli("info", "--json", env={"NETLAB_PURE_PYTHON": "1"})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["backend"] == "python"
    assert "NETLAB_PURE_PYTHON" in data["backend_reason"]


def test_twins_export_the_same_names(both_cores):
    c, py = both_cores
    assert set(py.__all__) <= set(dir(c)), set(py.__all__) - set(dir(c))
    assert c.BACKEND == "cython" and py.BACKEND == "python"
    assert c.TCP_FLAG_NAMES == py.TCP_FLAG_NAMES


def test_packet_face_matches_live_backend():
    impl = packet.load_backend(packet.BACKEND)
    for name in pure.__all__:
        assert getattr(packet, name) is getattr(impl, name)


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="unknown backend"):
        packet.load_backend("fortran")
