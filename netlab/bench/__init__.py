"""Throughput and parsing experiments behind ``netlab bench``.

One module per experiment (``udp``, ``tcp``, ``echo``, ``parse``); each offers
the measurement as a library function returning a dict (what ``--json``
prints) and ``register(bench_subparsers)`` for the command line.
"""
