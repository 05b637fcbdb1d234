"""netlab bindcheck: bind, explain, and show what an ordinary user gets."""
import errno
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys

import pytest

from netlab import sysinfo
from tests.conftest import ROOT, free_port

IS_ROOT = os.geteuid() == 0


def _has_nobody():
    try:
        pwd.getpwnam("nobody")
        return True
    except KeyError:
        return False


needs_root_and_nobody = pytest.mark.skipif(
    not (IS_ROOT and _has_nobody()), reason="needs root and a 'nobody' user to switch to")


def _json(out):
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_free_port_binds(netlab_cli):
    port = free_port()
    data = _json(netlab_cli("bindcheck", port, "--json"))
    assert data["port"] == port and data["protocol"] == "tcp"
    assert data["ok"] is True and data["errno"] is None
    assert data["user"] == pwd.getpwuid(os.geteuid()).pw_name
    assert data["unprivileged_port_start"] == sysinfo.unprivileged_port_start()
    assert data["reason"]


@pytest.mark.parametrize("kind,flag", [(socket.SOCK_STREAM, "--tcp"), (socket.SOCK_DGRAM, "--udp")])
def test_port_in_use_names_the_holder(netlab_cli, kind, flag):
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        port = holder.getsockname()[1]
        data = _json(netlab_cli("bindcheck", port, flag, "--json"))
    assert data["ok"] is False and data["errno"] == errno.EADDRINUSE
    assert data["error"] == "EADDRINUSE" and data["protocol"] == flag[2:]
    assert os.getpid() in [h["pid"] for h in data["holders"]]
    assert f"pid {os.getpid()}" in data["reason"]


def test_text_output(netlab_cli):
    out = netlab_cli("bindcheck", free_port())
    assert out.returncode == 0, out.stderr
    assert "ip_unprivileged_port_start" in out.stdout and "bound" in out.stdout


@needs_root_and_nobody
def test_as_nobody_below_1024_gets_eacces(netlab_cli):
    if sysinfo.unprivileged_port_start() <= 80:
        pytest.skip("ip_unprivileged_port_start is lowered on this machine: anyone may bind 80")
    data = _json(netlab_cli("bindcheck", "80", "--as-user", "nobody", "--json"))
    assert data["user"] == "nobody" and data["uid"] == pwd.getpwnam("nobody").pw_uid
    assert data["ok"] is False and data["errno"] == errno.EACCES
    assert data["cap_net_bind_service"] is False and data["root"] is False
    assert "CAP_NET_BIND_SERVICE" in data["reason"]
    assert data["current"]["user"] == "root"
    # root itself may bind 80 unless something on this machine holds it
    assert data["current"]["ok"] or data["current"]["errno"] == errno.EADDRINUSE


@needs_root_and_nobody
def test_as_nobody_above_the_limit_binds(netlab_cli):
    port = free_port(socket.SOCK_DGRAM)
    data = _json(netlab_cli("bindcheck", port, "--udp", "--as-user", "nobody", "--json"))
    assert data["user"] == "nobody" and data["ok"] is True and data["protocol"] == "udp"


@needs_root_and_nobody
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_really_as_an_ordinary_user():
    """The CLI itself run as nobody: what a student without root sees."""
    if sysinfo.unprivileged_port_start() <= 80:
        pytest.skip("ip_unprivileged_port_start is lowered on this machine")
    drop = ["setpriv", f"--reuid={pwd.getpwnam('nobody').pw_uid}",
            f"--regid={pwd.getpwnam('nobody').pw_gid}", "--clear-groups", "--inh-caps=-all"]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run([*drop, sys.executable, "-m", "netlab", "bindcheck", "80", "--json"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    data = _json(out)
    assert data["user"] == "nobody" and data["errno"] == errno.EACCES and data["root"] is False
    again = subprocess.run([*drop, sys.executable, "-m", "netlab", "bindcheck", "80",
                            "--as-user", "root"],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert again.returncode == 1 and "needs root" in again.stderr


def test_unknown_user_is_a_usage_error(netlab_cli):
    out = netlab_cli("bindcheck", "8080", "--as-user", "no-such-user-xyz")
    assert out.returncode == 2 and "no user named" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["70000"], ["abc"], ["80", "--tcp", "--udp"]])
def test_bad_arguments(netlab_cli, argv):
    out = netlab_cli("bindcheck", *argv)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_address_not_on_this_machine(netlab_cli):
    data = _json(netlab_cli("bindcheck", free_port(), "--host", "192.0.2.1", "--json"))
    assert data["ok"] is False and data["errno"] == errno.EADDRNOTAVAIL


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None,
                    reason="needs root and setpriv (util-linux) to drop the capability")
def test_root_without_the_capability_is_told_so():
    """uid 0 without CAP_NET_BIND_SERVICE (a container, setpriv) cannot bind below the
    limit; the reason must not just say 'run as root' to someone who is root."""
    if sysinfo.unprivileged_port_start() <= 80:
        pytest.skip("ip_unprivileged_port_start is lowered on this machine")
    out = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable,
                          "-m", "netlab", "bindcheck", "80", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    data = _json(out)
    assert data["root"] is True and data["cap_net_bind_service"] is False
    assert data["ok"] is False and data["errno"] == errno.EACCES
    assert "root but lacks CAP_NET_BIND_SERVICE" in data["reason"]
