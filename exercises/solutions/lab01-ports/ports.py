"""Lab 1: ports and services (instructor's reference solution)."""

WELL_KNOWN_END = 1023   # RFC 6335: system ports 0-1023
REGISTERED_END = 49151  # user ports 1024-49151; dynamic/private 49152-65535


def classify(port):
    """Return the range of ``port``: "well-known", "registered" or "dynamic"."""
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port}: ports are 16-bit numbers, 0-65535")
    if port <= WELL_KNOWN_END:
        return "well-known"
    if port <= REGISTERED_END:
        return "registered"
    return "dynamic"


def needs_privilege(port, start=1024):
    """True when binding ``port`` needs root (or CAP_NET_BIND_SERVICE)."""
    # Port 0 asks the kernel for any free ephemeral port: never privileged.
    return 0 < port < start


def parse_services(text):
    """Parse a service table in /etc/services format."""
    entries = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or "/" not in fields[1]:
            continue
        port, proto = fields[1].split("/", 1)
        entries.append({"name": fields[0], "port": int(port), "proto": proto.lower(),
                        "aliases": fields[2:]})
    return entries


def lookup(entries, name, proto):
    """The port of service ``name`` (or one of its aliases) over ``proto``, or None."""
    for entry in entries:
        if entry["proto"] == proto and (entry["name"] == name or name in entry["aliases"]):
            return entry["port"]
    return None


def services_on(entries, port):
    """Which services use ``port``, per protocol."""
    found = {}
    for entry in entries:
        if entry["port"] == port:
            found.setdefault(entry["proto"], entry["name"])
    return found


if __name__ == "__main__":
    with open("/etc/services") as f:
        table = parse_services(f.read())
    for port in (7, 22, 80, 443, 8080, 50000):
        print(port, classify(port), needs_privilege(port), services_on(table, port))
