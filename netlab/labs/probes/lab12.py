"""Lab 12 probe (child side, standard library only): one ping run and its summary."""
from .runtime import student_module

HOST = "127.0.0.1"


def probe_report(labdir, port, count, timeout):
    """``ping`` the grader's relay, then ``summarize`` what it returned: both, as data."""
    mod = student_module(labdir, "pinger")
    rtts = mod.ping(HOST, port, count, timeout)
    return {"rtts": list(rtts) if isinstance(rtts, (list, tuple)) else repr(rtts),
            "summary": mod.summarize(rtts)}
