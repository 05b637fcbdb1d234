"""Shared fixtures: both packet backends, the real CLI, free ports."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from netlab.packet import backends, pure_python_requested

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_BACKENDS = backends()
_IDS = {"cython": "c", "python": "py"}


@pytest.fixture(params=["cython", "python"], ids=lambda n: _IDS[n])
def core(request):
    """Each packet backend in turn: the compiled core ``[c]`` and its twin ``[py]``.

    The compiled core is skipped only when NETLAB_PURE_PYTHON=1 asked for it;
    otherwise its absence is a failure (test_backend makes it loud).
    """
    name = request.param
    if name not in _BACKENDS:
        if pure_python_requested():
            pytest.skip("NETLAB_PURE_PYTHON=1: compiled core not built")
        pytest.fail("the compiled core netlab.packet._core did not import; "
                    "rebuild with: python setup.py build_ext --inplace")
    return _BACKENDS[name]


@pytest.fixture(scope="session")
def both_cores():
    """Both backends at once, for differential tests (skips under the opt-out)."""
    if "cython" not in _BACKENDS:
        if pure_python_requested():
            pytest.skip("NETLAB_PURE_PYTHON=1: compiled core not built")
        pytest.fail("the compiled core netlab.packet._core did not import")
    return _BACKENDS["cython"], _BACKENDS["python"]


def netlab_env(extra=None) -> dict:
    """The environment for running this checkout's CLI from any folder."""
    env = dict(os.environ)
    env.pop("NETLAB_DEBUG", None)
    # Tests may run in temporary folders: make sure `python -m netlab` is this checkout.
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if extra:
        env.update(extra)
    return env


def run_netlab(*args, input=None, timeout=60, env=None, check=False, cwd=ROOT):
    """Run the real CLI (``python -m netlab ARGS``) in ``cwd`` and return the CompletedProcess."""
    full_env = netlab_env(env)
    return subprocess.run(
        [sys.executable, "-m", "netlab", *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=check,
        cwd=str(cwd),
    )


def interrupt_netlab(*args, after: float = 3.0, timeout: float = 20) -> subprocess.CompletedProcess:
    """Start ``python -m netlab ARGS``, press Ctrl-C (SIGINT) ``after`` seconds
    in, and return the CompletedProcess (text stdout and stderr).

    The process is killed (by its PID) if it outlives ``timeout`` seconds
    after the signal, so a command that ignores Ctrl-C fails the test instead
    of hanging it.
    """
    argv = [sys.executable, "-m", "netlab", *map(str, args)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        time.sleep(after)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.fixture
def netlab_cli():
    """The real command line as a function: ``netlab_cli("info", "--json")``."""
    return run_netlab


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port the OS just handed out as free for ``kind`` on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_both(host: str = "127.0.0.1") -> int:
    """A port number free for TCP *and* UDP on ``host`` (tried a few times)."""
    for _ in range(50):
        port = free_port(socket.SOCK_STREAM, host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            try:
                u.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both TCP and UDP after 50 tries")
