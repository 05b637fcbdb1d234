"""Lab 1: ports and services.

Fill in every function marked TODO, then check your work with:

    netlab lab check 1

Run this file to try your functions on this machine's own service table:

    python ports.py
"""


def classify(port):
    """Return the range of ``port``: "well-known", "registered" or "dynamic".

    Raise ValueError when ``port`` is not a valid port number.
    """
    # TODO: which numbers can a 16-bit port field hold at all?
    # TODO: where does each range start and end? (see the lesson, RFC 6335)
    raise NotImplementedError("TODO: classify(port)")


def needs_privilege(port, start=1024):
    """True when binding ``port`` needs root (or CAP_NET_BIND_SERVICE).

    ``start`` is the first unprivileged port (net.ipv4.ip_unprivileged_port_start).
    """
    # TODO: compare with start. Careful: what does binding port 0 mean?
    raise NotImplementedError("TODO: needs_privilege(port, start)")


def parse_services(text):
    """Parse a service table in /etc/services format.

    Return a list with one dict per entry, in file order:
    {"name": str, "port": int, "proto": "tcp" or "udp", "aliases": [str, ...]}
    """
    entries = []
    for line in text.splitlines():
        # TODO: drop comments, skip empty lines, split the fields,
        # TODO: split "port/proto", keep the aliases.
        raise NotImplementedError("TODO: parse_services(text)")
    return entries


def lookup(entries, name, proto):
    """The port of service ``name`` (or one of its aliases) over ``proto``, or None."""
    # TODO: search the entries; remember that TCP and UDP are separate.
    raise NotImplementedError("TODO: lookup(entries, name, proto)")


def services_on(entries, port):
    """Which services use ``port``, per protocol, e.g. {"tcp": "echo", "udp": "echo"}."""
    # TODO: build the dict; leave out a protocol with no service on that port.
    raise NotImplementedError("TODO: services_on(entries, port)")


if __name__ == "__main__":
    try:
        with open("/etc/services") as f:
            table = parse_services(f.read())
    except NotImplementedError as exc:
        print(exc)
    else:
        for port in (7, 22, 80, 443, 8080, 50000):
            print(port, classify(port), needs_privilege(port), services_on(table, port))
