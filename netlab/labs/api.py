"""The check API: what a check function (a lab's own or a teacher's hidden one) may use.

A check is a function ``check(labdir) -> str``: it returns a short message
when the submission passes and raises :class:`CheckFailed` with a message for
the student when it does not. It runs in the grader (trusted); the student's
code runs only in the sandbox, through these helpers:

* :func:`call_all` ``(labdir, module, [[func, args], ...])``: call student
  functions in the sandbox; one outcome dict per call, read with
  :func:`student_value` (raises CheckFailed with the student's error) and
  :func:`bytes_of` (bytes come back as ``{"bytes": hex}``).
* :func:`server` ``(labdir, module, func, args)``: start a student server in
  the sandbox (a context manager); :func:`wait_for_tcp` / :func:`wait_for_udp`
  until it answers; :meth:`Sandbox.processes` lists its processes.
* :func:`run_probe` ``(labdir, "/path/probes.py:func", args)``: run your own
  child-side probe (standard library only) in the sandbox; :func:`value_of`
  gives its value or ProbeFailed.
* Grader-side peers on 127.0.0.1 of the private network: :class:`TcpPeer`,
  :class:`UdpPeer`, :func:`exchange`, :func:`udp_ask`, :func:`read_to_eof`,
  and :func:`free_port`; :func:`bound_sockets` and :func:`wait_for_udp_bound` look at
  what the student's code bound, from the grader's side (``/proc/net``).

Judge in the check, never in a probe: what comes back from the sandbox is
data the student's process could have written itself.
"""
from netlab.labs._peers import (HOST, TcpPeer, UdpPeer, bound_sockets, exchange, read_to_eof, udp_ask,
                                wait_for_udp, wait_for_udp_bound)
from netlab.labs._probes import bytes_of, call_all, server, student_value
from netlab.labs._registry import CheckFailed
from netlab.labs._runner import ProbeFailed, Sandbox, free_port, run_probe, value_of, wait_for_tcp

__all__ = ["HOST", "CheckFailed", "ProbeFailed", "Sandbox", "TcpPeer", "UdpPeer", "bound_sockets", "bytes_of",
           "call_all", "exchange", "free_port", "read_to_eof", "run_probe", "server", "student_value",
           "udp_ask", "value_of", "wait_for_tcp", "wait_for_udp", "wait_for_udp_bound"]
