"""Issue 12, the servers' TCP side and the clients: starvation, stopping, EMFILE, echo.

Servers run as real ``netlab`` processes; the load (hundreds of readers, a
flood of connects) comes from a helper process, so the server's timing is
not disturbed by the test's own threads.
"""
from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import netlab_env
from tests.test_hardening_serve import NEEDS_NETNS, listening_port, netns  # noqa: F401

READERS = r"""
import selectors, socket, sys, time
port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sel = selectors.DefaultSelector()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    for key, _ in sel.select(0.1):
        try:
            if not key.fileobj.recv(262144):
                sel.unregister(key.fileobj)
        except (BlockingIOError, ConnectionError):
            pass
"""


class Server:
    """``netlab ARGS`` as a process; its port from the first 'listening on' line."""

    def __init__(self, *args: str, env=None, preexec_fn=None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "netlab", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=netlab_env(env), preexec_fn=preexec_fn)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), (line, self.proc.stderr.read())
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self, sig=signal.SIGTERM, timeout: float = 20):
        """Signal it; ``(seconds until it exited, stdout, stderr)``."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return time.monotonic() - start, out, err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def first_byte_after(port: int, timeout: float = 10.0) -> float:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.settimeout(timeout)
        assert c.recv(1)
    return time.monotonic() - start


# -- item 3: asyncio chargen ----------------------------------------------------------------
def test_asyncio_chargen_serves_a_fresh_client_and_stops_promptly_under_200_readers():
    srv = Server("chargen", "--tcp", "0", "--model", "asyncio")
    readers = subprocess.Popen([sys.executable, "-c", READERS, str(srv.port), "200", "30"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert readers.stdout.readline().strip() == "ready"
        time.sleep(1.0)                       # all 200 reading flat out
        waits = [first_byte_after(srv.port) for _ in range(3)]
        # Goal 100 ms (measured 20-60 ms on an idle machine); before: nothing in 4 s.
        # The bound leaves room for a loaded CI machine.
        assert min(waits) < 0.5, waits
        seconds, out, _ = srv.stop()
        assert seconds < 1.5, seconds          # before: up to 4.5 s
        assert srv.proc.returncode == 0
        assert "withheld" not in out, out      # no connection blamed on --max-connections
    finally:
        readers.kill()
        readers.communicate()
        srv.close()


def test_asyncio_connections_accepted_while_stopping_are_not_blamed_on_max_connections():
    # A limit the flood never reaches: only the stop could be blamed on it.
    srv = Server("echo", "--tcp", "0", "--model", "asyncio", "--max-connections", "1000000")
    flood = subprocess.Popen([sys.executable, "-c", (
        "import socket, time\n"
        "end = time.monotonic() + 3\n"
        "while time.monotonic() < end:\n"
        "    try:\n"
        f"        socket.create_connection(('127.0.0.1', {srv.port}), timeout=1).close()\n"
        "    except OSError:\n"
        "        pass\n")])
    try:
        time.sleep(0.7)
        _, out, err = srv.stop()
    finally:
        flood.kill()
        flood.wait()
        srv.close()
    assert srv.proc.returncode == 0, err
    assert " connections" in out and "--max-connections" not in out, out


# -- item 7: out of descriptors, no model spins -------------------------------------------
HOLDER = r"""
import socket, sys
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) for _ in range(40)]
print("ready", flush=True)
sys.stdin.readline()            # hold them until told
for s in held[:30]:
    s.close()
last = held[-1]
last.settimeout(5)
last.sendall(b"still there?\n")
print(last.recv(100).decode().strip(), flush=True)
"""


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("model,compiled", [
    ("selectors", True), ("selectors", False), ("threaded", None), ("asyncio", None),
], ids=["selectors-compiled", "selectors-python", "threaded", "asyncio"])
def test_out_of_descriptors_the_server_rests_instead_of_spinning(model, compiled):
    from netlab.servers import start_server

    if compiled:
        from netlab.servers._fast import core_module
        if core_module()[0] is None:
            pytest.skip(core_module()[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    srv = start_server("echo", protocols=("tcp",), model=model, compiled=compiled)
    # The helper keeps 40 connections; the server may open only a few more descriptors.
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(srv.port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_open_descriptors() + 8, hard))
        assert holder.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        before = srv.stats()["errors"]
        time.sleep(2.0)
        failed_accepts = srv.stats()["errors"] - before
        # Resting 0.25 s between tries: about 8 failed accept() calls in 2 s.
        # Before: thousands (the Python loops spun at 100% of a core).
        assert 1 <= failed_accepts <= 20, failed_accepts
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        holder.stdin.write("go\n")
        holder.stdin.flush()
        # Descriptors come back: the queued clients are served.
        assert holder.stdout.readline().strip() == "still there?"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        holder.kill()
        holder.communicate()
        srv.stop()


# -- item 8: the echo client ---------------------------------------------------------------
def _run_client(*args, input: bytes, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netlab", "echo", "--client", *args],
                          input=input, capture_output=True, timeout=timeout, env=netlab_env())


@NEEDS_NETNS
def test_echo_client_sends_and_receives_together_a_10_mib_line(netns):
    # Socket buffers of at most 64 KiB (per namespace), like a small host: the
    # kernel can no longer hide a client that sends everything before reading.
    for name in ("tcp_rmem", "tcp_wmem"):
        subprocess.run(netns.argv("sysctl", "-q", f"net.ipv4.{name}=4096 16384 65536"),
                       check=True)
    srv = netns.netlab("echo", "--tcp", "0")
    port = listening_port(srv)
    line = (b"0123456789abcdef" * (10 * 65536)) + b"\n"    # 10 MiB and a newline
    out = subprocess.run(netns.argv(sys.executable, "-m", "netlab", "echo", "--client",
                                    str(port)), input=line, capture_output=True, timeout=120,
                         env=netlab_env())
    # Before: the send stalled, then "echoed nothing for 5 s" (blaming the server).
    assert out.returncode == 0, out.stderr[-300:]
    assert out.stdout == line and out.stderr == b""


def test_echo_client_message_of_4_mib():
    from netlab import clients
    from netlab.servers import start_server

    data = os.urandom(4 << 20)
    with start_server("echo", protocols=("tcp",), model="threaded") as srv:
        assert clients.tcp_echo("127.0.0.1", srv.port, data, timeout=10) == data


class ShortEcho:
    """A TCP server that echoes only the first ``keep`` bytes, reads the rest, closes."""

    def __init__(self, keep: int) -> None:
        import threading

        self.keep = keep
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            got = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                got += data
            conn.sendall(got[:self.keep])

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.mark.parametrize("keep", [0, 3])
@pytest.mark.parametrize("how", ["stdin", "message"])
def test_echo_client_exits_1_when_the_server_closes_without_echoing_everything(keep, how):
    srv = ShortEcho(keep)
    try:
        if how == "stdin":
            out = _run_client(str(srv.port), input=b"hello\n")
        else:
            out = _run_client(str(srv.port), "-m", "hello", input=b"")
    finally:
        srv.close()
    err = out.stderr.decode()
    assert out.returncode == 1, (out.returncode, err)       # before: exit 0
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"after echoing {keep} of 6 bytes" in err, err


def test_echo_client_against_discard_names_the_problem():
    from netlab.servers import start_server

    with start_server("discard", protocols=("tcp",)) as srv:
        out = _run_client(str(srv.port), "-m", "hello", input=b"")
    assert out.returncode == 1
    assert "after echoing 0 of 6 bytes" in out.stderr.decode()


@pytest.mark.parametrize("service", ["daytime", "qotd"])
def test_echo_client_against_a_server_that_is_not_an_echo_exits_1(service):
    # A daytime or qotd server answers with its own text: shown, then named as no echo.
    from netlab.servers import start_server

    with start_server(service, protocols=("tcp",)) as srv:
        out = _run_client(str(srv.port), "-m", "hello", input=b"")
    err = out.stderr.decode()
    assert out.returncode == 1, (out.returncode, err)
    assert len(err.splitlines()) == 1 and "not an echo server?" in err, err
    assert out.stdout  # what the server said is still shown


# -- item 11: --idle-timeout inf -----------------------------------------------------------
@pytest.mark.parametrize("model,env", [
    ("selectors", None), ("selectors", {"NETLAB_PURE_PYTHON": "1"}), ("iterative", None),
    ("threaded", None), ("asyncio", None),
], ids=["selectors-compiled", "selectors-python", "iterative", "threaded", "asyncio"])
def test_idle_timeout_inf_means_no_limit(model, env):
    srv = Server("echo", "--tcp", "0", "--model", model, "--idle-timeout", "inf", env=env)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
            time.sleep(0.8)  # a few idle sweeps (every 0.25 s)
            c.sendall(b"still here\n")
            # Before: the compiled loop closed it at the first sweep, threaded and
            # iterative failed on the timeout value itself.
            assert c.recv(100) == b"still here\n"
        seconds, out, err = srv.stop()
        assert srv.proc.returncode == 0 and err == "", err
    finally:
        srv.close()


def test_idle_timeout_limits_in_python():
    import math

    from netlab.servers import Limits

    assert Limits.from_kwargs({"idle_timeout": math.inf}).idle_seconds is None
    assert Limits.from_kwargs({"idle_timeout": 1e300}).idle_timeout == math.inf
    assert Limits.from_kwargs({"idle_timeout": 2.5}).idle_seconds == 2.5
    with pytest.raises(ValueError):
        Limits.from_kwargs({"idle_timeout": math.nan})


# -- item 10: the threaded model under thousands of clients -------------------------------
def _many_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))


def test_threaded_server_takes_3000_clients_and_stops_promptly_on_sigterm():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4500:
        pytest.skip(f"needs 4,500 descriptors (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4500), hard))
    srv = Server("echo", "--tcp", "0", "--model", "threaded", "--max-connections", "5000",
                 preexec_fn=_many_descriptors)
    clients = []
    try:
        deadline = time.monotonic() + 60
        for _ in range(3000):
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            clients.append(c)
        for c in clients:        # every one is served by its own thread
            c.settimeout(max(0.1, deadline - time.monotonic()))
            c.sendall(b"hi\n")
        for c in clients:
            assert c.recv(10) == b"hi\n"
        seconds, out, err = srv.stop()
        # Before: handler threads were pruned with an O(n) scan per accept and
        # joined one by one at stop: 2.5 s here for 3,000, 5.5 s seen for 5,000.
        assert seconds < 2.0, seconds
        assert srv.proc.returncode == 0, err
        assert "3000 connections" in out
    finally:
        for c in clients:
            c.close()
        srv.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


BURST = r"""
import resource, selectors, socket, sys, time
port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 200), hard))
sel = selectors.DefaultSelector()
for _ in range(n):                    # every connect at once: the burst
    s = socket.socket(); s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    sel.register(s, selectors.EVENT_WRITE)
print("sent", flush=True)
# Then a line each; "most" once 80% came back (or at the deadline); the
# connections stay open.
end, echoed, said = time.monotonic() + seconds, 0, False
while sel.get_map() and time.monotonic() < end:
    for key, events in sel.select(0.1):
        try:
            if events & selectors.EVENT_WRITE:
                key.fileobj.send(b"hi\n"); sel.modify(key.fileobj, selectors.EVENT_READ)
                continue
            echoed += key.fileobj.recv(100) == b"hi\n"
        except OSError:
            pass
        sel.unregister(key.fileobj)
    if not said and echoed >= 0.8 * n:
        print("most", flush=True); said = True
print("most", flush=True)
time.sleep(max(0.0, end - time.monotonic()))
"""


def test_threaded_server_stops_promptly_on_sigterm_during_a_5000_connect_burst():
    # stop() used to shut every live connection down from the stopping
    # thread, each shutdown waking a handler that takes the GIL first: its
    # time grew with the connections and with the machine's load (5-9 s
    # reported for 5,000). Now that loop is bounded and a closer thread
    # takes over the rest.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 5500:
        pytest.skip(f"needs 5,500 descriptors per process (hard limit {hard})")
    srv = Server("echo", "--tcp", "0", "--model", "threaded", "--max-connections", "6000",
                 preexec_fn=_many_descriptors)
    burst = subprocess.Popen([sys.executable, "-c", BURST, str(srv.port), "5000", "30"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert burst.stdout.readline().strip() == "sent"
        # 4,000 served, the rest still coming (their SYNs retried: the
        # accept queue overflowed).
        assert burst.stdout.readline().strip() == "most"
        seconds, out, err = srv.stop(timeout=30)
        # A bound on stopping at all, not a speed claim (about 1 s here).
        assert seconds < 3.0, (seconds, out)
        assert srv.proc.returncode == 0 and err == "", err
        accepted = re.match(r"stopped echo \(threaded\) after [0-9.]+ s: (\d+) connections?, ",
                            out)
        # Thousands were being served (4,000 unless the helper's 30 s ran out).
        assert accepted and int(accepted.group(1)) >= 1000, out
    finally:
        burst.kill()
        burst.communicate()
        srv.close()


@pytest.mark.parametrize("model", ["iterative", "threaded", "selectors", "asyncio"])
def test_a_byte_on_the_wakeup_fd_stops_the_serving_loop_by_itself(model):
    # The CLI points signal.set_wakeup_fd() here: the C signal handler's byte ends
    # the serving loop at once, without waiting for the main thread (and the
    # GIL) to run Python's handler, while a threaded server starts threads.
    from netlab.servers import start_server

    srv = start_server("echo", model=model)
    try:
        serving = srv._engine._threads[0]
        os.write(srv.wakeup_fd, b"\x0f")  # what the C handler writes for SIGTERM
        serving.join(2.0)
        assert not serving.is_alive()
    finally:
        srv.stop()
    assert not srv.running
