"""Lab 15: DNS by hand (RFC 1035), reference solution."""
import random
import socket
import struct
import sys

A, CNAME, AAAA = 1, 5, 28
CLASS_IN = 1
MAX_JUMPS = 64  # more pointers than any honest name needs: a loop


def build_query(name, qtype, ident):
    """A DNS query for ``name`` and record type ``qtype`` with transaction id ``ident``."""
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # RD: please recurse
    qname = b""
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("ascii")
            if len(raw) > 63:
                raise ValueError("label longer than 63 bytes: %r" % label)
            qname += bytes([len(raw)]) + raw
    return header + qname + b"\x00" + struct.pack(">HH", qtype, CLASS_IN)


def read_name(message, offset):
    """The name at ``offset`` and the offset just after it (after the first pointer, if any)."""
    labels = []
    end = None
    jumps = 0
    while True:
        if offset >= len(message):
            raise ValueError("name runs past the end of the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise ValueError("pointer cut short")
            if end is None:
                end = offset + 2
            jumps += 1
            if jumps > MAX_JUMPS:
                raise ValueError("compression pointers loop")
            offset = struct.unpack_from(">H", message, offset)[0] & 0x3FFF
        elif length & 0xC0:
            raise ValueError("bad label type 0x%02x" % length)
        elif length == 0:
            return ".".join(labels), (end if end is not None else offset + 1)
        else:
            if offset + 1 + length > len(message):
                raise ValueError("label runs past the end of the message")
            labels.append(message[offset + 1:offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length


def parse_response(message):
    """``{"id", "rcode", "answers": [{"name", "type", "ttl", "data"}]}`` of a DNS response."""
    if len(message) < 12:
        raise ValueError("message shorter than a DNS header (%d bytes)" % len(message))
    ident, flags, qdcount, ancount, _, _ = struct.unpack_from(">HHHHHH", message)
    offset = 12
    for _ in range(qdcount):
        _, offset = read_name(message, offset)
        offset += 4  # QTYPE, QCLASS
    answers = []
    for _ in range(ancount):
        name, offset = read_name(message, offset)
        if offset + 10 > len(message):
            raise ValueError("answer record cut short")
        rtype, _, ttl, rdlength = struct.unpack_from(">HHIH", message, offset)
        offset += 10
        rdata = message[offset:offset + rdlength]
        if len(rdata) != rdlength:
            raise ValueError("record data cut short")
        if rtype == A and rdlength == 4:
            data = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == AAAA and rdlength == 16:
            data = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == CNAME:
            data = read_name(message, offset)[0]  # may point anywhere in the message
        else:
            data = bytes(rdata)
        answers.append({"name": name, "type": rtype, "ttl": ttl, "data": data})
        offset += rdlength
    return {"id": ident, "rcode": flags & 0xF, "answers": answers}


def lookup(server, port, name, qtype=A, timeout=2.0):
    """Ask the DNS server at ``(server, port)``; the addresses of ``name``, following CNAMEs."""
    ident = random.randrange(1 << 16)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((server, port))
        sock.send(build_query(name, qtype, ident))
        while True:  # bounded by the timeout: socket.timeout ends it
            try:
                reply = parse_response(sock.recv(65535))
            except ValueError:
                continue  # garbage is not an answer
            if reply["id"] == ident:
                break  # anything else answers someone else's question
    if reply["rcode"] != 0:
        raise LookupError("server answered rcode %d" % reply["rcode"])
    wanted = name.strip(".").lower()
    for _ in range(len(reply["answers"]) + 1):
        aliases = [r["data"] for r in reply["answers"]
                   if r["type"] == CNAME and r["name"].lower() == wanted]
        if not aliases:
            break
        wanted = aliases[0].lower()
    return [r["data"] for r in reply["answers"] if r["type"] == qtype and r["name"].lower() == wanted]


if __name__ == "__main__":
    if len(sys.argv) >= 3:
        kind = AAAA if len(sys.argv) > 3 and sys.argv[3] == "AAAA" else A
        print(lookup("127.0.0.1", int(sys.argv[1]), sys.argv[2], kind))
    else:
        print(__doc__)
