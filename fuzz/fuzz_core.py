"""libFuzzer (atheris) harness for the compiled packet core, netlab.packet._core.

Every input is walked as a capture file on both paths (records and stats)
and as a lone frame of several link types; the compiled core must never
crash, and it must agree with the pure-Python twin on every input (any
disagreement raises, which atheris reports as a finding with the input).

    pip install atheris          # or: pip install -e '.[fuzz]'
    python fuzz/fuzz_core.py tests/data/fuzz tests/data -max_total_time=60

New corpus entries land in the first directory given; keep interesting ones
there (they are replayed by tests/test_decode_differential.py).
"""
import os
import sys

import atheris

# Fuzz the checkout this file sits in (built in place), not another install.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports():
    from netlab.packet import _core
    from netlab.packet import pure


def outcome(core, data, checks):
    recs, err = [], None
    try:
        for rec in core.iter_records(data, checks):
            recs.append(rec)
    except core.CaptureError as exc:
        err = (exc.offset, str(exc))
    try:
        stats = core.aggregate(data, checks)
    except core.CaptureError as exc:
        stats = ("error", exc.offset, str(exc))
    return recs, err, stats


def test_one_input(data: bytes) -> None:
    checks = bool(data[:1]) and data[0] & 1 == 1
    c, py = outcome(_core, data, checks), outcome(pure, data, checks)
    if c != py:
        raise AssertionError(f"backends disagree on {data!r}")
    for link in (0, 1, 6, 7, 9, 10, 11, 50, 51, 101, 104, 105, 107, 108, 109, 113, 117, 123, 127,
                 129, 163, 192, 204, 205, 219, 226, 239, 242, 258, 276):
        if _core.decode_frame(data, link, True) != pure.decode_frame(data, link, True):
            raise AssertionError(f"decode_frame({link}) disagrees on {data!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
