"""Labs 14-16 (chat, DNS, ping): through the real CLI in the sandbox, the
reference solution scores full marks and the untouched starter 0; and the
checks measure the concept: a solution with one idea taken out loses exactly
the check about that idea.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from netlab.labs import LABS
from tests.test_labs import EXERCISES, finish, parse, start_check

NEW = [14, 15, 16]


@pytest.mark.parametrize("number", NEW)
def test_new_lab_solution_full_marks_and_starter_zero(number, tmp_path):
    lab = LABS[number]
    assert os.path.isfile(os.path.join(EXERCISES, lab.slug, "README.md"))
    solution = start_check(number, os.path.join(EXERCISES, "solutions", lab.slug), str(tmp_path))
    starter = start_check(number, os.path.join(EXERCISES, lab.slug), str(tmp_path))
    sol_code, sol_out, sol_err = finish(solution, timeout=60)
    st_code, st_out, st_err = finish(starter, timeout=60)
    result = parse(sol_out, sol_err)
    assert result["isolated"] is True, "these tests grade in the sandbox (bubblewrap, as root)"
    assert result["score"] == result["max_score"], [(t["name"], t["message"]) for t in result["tests"]]
    assert sol_code == 0
    result = parse(st_out, st_err)
    assert result["score"] == 0 and st_code == 1
    assert all("TODO" in t["message"] for t in result["tests"]), result["tests"]


def _mutant(tmp_path, number: int, edits: list, file: str = "") -> str:
    """A copy of the reference solution with ``(old, new)`` text replacements applied (in ``file``)."""
    lab = LABS[number]
    folder = tmp_path / lab.slug
    shutil.copytree(os.path.join(EXERCISES, "solutions", lab.slug), folder)
    path = folder / (file or lab.files[0])
    text = path.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return str(folder)


def _failed(tmp_path, number: int, edits: list, file: str = "") -> dict:
    code, out, err = finish(start_check(number, _mutant(tmp_path, number, edits, file), str(tmp_path)),
                            timeout=90)
    result = parse(out, err)
    assert code == 1
    return {t["name"]: t["message"] for t in result["tests"] if not t["passed"]}


def test_lab15_dns_checks_measure_the_concept(tmp_path):
    # No loop guard: only the malformed-answers check fails, within its time limit.
    failed = _failed(tmp_path / "a", 15, [("if jumps > MAX_JUMPS:", "if False:")])
    assert set(failed) == {"malformed answers raise ValueError"}, failed
    assert "pointer" in failed["malformed answers raise ValueError"]
    # Trusting the first reply, whatever its id: the lookup takes the forged answer.
    failed = _failed(tmp_path / "b", 15, [('if reply["id"] == ident:', "if True:")])
    assert set(failed) == {"lookup against a DNS server"}, failed
    assert "id" in failed["lookup against a DNS server"]
    # Little-endian header: the grader's own decoder reads the id wrong.
    failed = _failed(tmp_path / "c", 15, [('struct.pack(">HHHHHH", ident', 'struct.pack("<HHHHHH", ident')])
    assert "build a query" in failed
    # The offset after a compressed name taken from where the pointer led.
    failed = _failed(tmp_path / "d", 15, [("return \".\".join(labels), (end if end is not None else offset + 1)",
                                           "return \".\".join(labels), offset + 1")])
    assert "read names with compression pointers" in failed


def test_lab14_chat_checks_measure_the_concept(tmp_path):
    # Sending every line back to its sender too.
    failed = _failed(tmp_path / "a", 14, [('broadcast(client, "<%s> %s" % (client.nick, text))',
                                           'broadcast(client, "<%s> %s" % (client.nick, text))\n'
                                           '            send(client, "<%s> %s" % (client.nick, text))')])
    assert "broadcast to the others" in failed and "own line" in failed["broadcast to the others"]
    # Treating what a vanished client left unfinished as a last message.
    failed = _failed(tmp_path / "b", 14, [("drop(client)  # an unfinished line dies with its client",
                                           "handle(client, client.inbuf) if client.nick and client.inbuf "
                                           "else None\n                        drop(client)")])
    assert set(failed) == {"a client leaves mid-line"}, failed
    assert "unfinished line" in failed["a client leaves mid-line"]
    # A thread per client instead of the selector: every line arrives, but on 20 threads.
    failed = _failed(tmp_path / "c", 14, [("def serve(host, port):", "def serve(host, port):\n"
                                           "    import threading\n"
                                           "    for _ in range(3):\n"
                                           "        threading.Thread(target=__import__('time').sleep, args=(60,), "
                                           "daemon=True).start()\n")])
    assert set(failed) == {"20 clients at once on one thread"}, failed
    assert "threads" in failed["20 clients at once on one thread"]


def test_lab16_ping_checks_measure_the_concept(tmp_path):
    # Taking any echo reply as the answer: the grader's stray (wrong sequence) reply is taken.
    failed = _failed(tmp_path / "a", 16, [('reply["type"] == ECHO_REPLY and reply["seq"] == seq and '
                                           'reply["payload"] == payload',
                                           'reply["type"] == ECHO_REPLY')])
    assert "ping on loopback" in failed and "lost replies time out" in failed, failed
    assert "stray" in failed["ping on loopback"]
    # One timeout for the whole run instead of one per request.
    failed = _failed(tmp_path / "b", 16, [("deadline = start + timeout", "deadline = start + timeout\n"
                                           "            if seq > 1 and rtts[-1] is None:\n"
                                           "                break")])
    assert set(failed) == {"lost replies time out"}, failed
    # An IPv4 header taken to be always 20 bytes.
    failed = _failed(tmp_path / "c", 16, [("packet[(packet[0] & 0x0F) * 4:]", "packet[20:]")])
    assert set(failed) == {"parse ICMP replies"}, failed
    # Raw sockets only: refused to the sandbox's unprivileged user.
    failed = _failed(tmp_path / "d", 16, [("socket.SOCK_DGRAM, socket.IPPROTO_ICMP), \"dgram\"",
                                           "socket.SOCK_RAW, socket.IPPROTO_ICMP), \"raw\"")])
    assert "an ICMP socket without privilege" in failed and "ping on loopback" in failed, failed


@pytest.mark.skipif(os.geteuid() != 0, reason="the traceroute checks build their routers as network "
                    "namespaces, which needs root (CI runs as root)")
def test_lab16_traceroute_checks_measure_the_concept(tmp_path):
    # The TTL never set: every probe reaches the destination at once.
    failed = _failed(tmp_path / "a", 16, [("    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)\n", "")],
                     "traceroute.py")
    assert set(failed) == {"traceroute through the routers", "round-trip times per probe",
                           "a silent router shows as *", "stop after max_hops"}, failed
    assert "198.19.1.2" in failed["traceroute through the routers"]  # the path the grader knows
    # Giving up at the first probe without an answer.
    failed = _failed(tmp_path / "b", 16, [("                rtts.append(rtt)\n",
                                           "                if who is None:\n"
                                           "                    return hops\n"
                                           "                rtts.append(rtt)\n")], "traceroute.py")
    assert set(failed) == {"round-trip times per probe", "a silent router shows as *", "stop after max_hops"}, failed
    # Not stopping at the destination.
    failed = _failed(tmp_path / "c", 16, [("            if arrived:\n", "            if False:\n")], "traceroute.py")
    assert "traceroute through the routers" in failed and "stop there" in failed["traceroute through the routers"]
    assert "stop after max_hops" not in failed, failed
    # A timeout printed as nothing instead of *.
    failed = _failed(tmp_path / "d", 16, [('if rtt is not None else "*"', 'if rtt is not None else ""')],
                     "traceroute.py")
    assert set(failed) == {"one line per hop"}, failed
    # One probe per hop whatever was asked for: the grader counts the TTLs on the wire.
    failed = _failed(tmp_path / "e", 16, [("            for _ in range(probes):\n",
                                           "            for _ in range(1):\n")], "traceroute.py")
    assert "traceroute through the routers" in failed and "probes" in failed["traceroute through the routers"]
    # Any answer taken for the probe being waited for: the late answer to the one before is taken.
    failed = _failed(tmp_path / "g", 16, [("SO_EE_ORIGIN_ICMP and original[1] == port", "SO_EE_ORIGIN_ICMP")],
                     "traceroute.py")
    assert set(failed) == {"round-trip times per probe"}, failed
    assert "came late" in failed["round-trip times per probe"]
    # Waiting for an answer without a timeout: the grader stops it, and says why, in bounded time.
    start = time.monotonic()
    failed = _failed(tmp_path / "f", 16, [("not poller.poll(left * 1000)", "not poller.poll(None)")],
                     "traceroute.py")
    assert set(failed) == {"round-trip times per probe", "a silent router shows as *", "stop after max_hops"}, failed
    assert "did not finish within" in failed["a silent router shows as *"], failed
    assert "did not finish within" in failed["stop after max_hops"], failed
    assert time.monotonic() - start < 60


def test_new_handouts_are_translated(tmp_path):
    """Every message of the handout pages of labs 14-16 has a Chinese translation, none fuzzy."""
    babel_pofile = pytest.importorskip("babel.messages.pofile")
    from tests.test_docs import DOCS, _sphinx
    result = _sphinx("gettext", tmp_path / "pot")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for number in NEW:
        with open(tmp_path / "pot" / "labs" / f"lab{number}.pot", "rb") as f:
            wanted = [m.id for m in babel_pofile.read_po(f) if m.id]
        with open(os.path.join(DOCS, "locale", "zh_CN", "LC_MESSAGES", "labs", f"lab{number}.po"), "rb") as f:
            catalog = babel_pofile.read_po(f)
        assert len(wanted) > 20, number
        for msgid in wanted:
            message = catalog.get(msgid)
            assert message is not None and message.string and not message.fuzzy, (number, msgid[:70])
