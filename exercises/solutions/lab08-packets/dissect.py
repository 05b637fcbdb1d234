"""Lab 8: packet parsing (instructor's reference solution)."""
import struct
import sys

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101

# Magic numbers as read little-endian: microsecond and nanosecond timestamps.
_MAGIC = {0xA1B2C3D4: "<", 0xA1B23C4D: "<", 0xD4C3B2A1: ">", 0x4D3CB2A1: ">"}

SYN, ACK = 0x02, 0x10


def read_pcap(path):
    """Read a classic pcap file: (linktype, frames)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a pcap header (24)")
    order = _MAGIC.get(struct.unpack_from("<I", data)[0])
    if order is None:
        raise ValueError(f"{path}: not a pcap file (magic {data[:4].hex()})")
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    frames, offset = [], 24
    while offset + 16 <= len(data):
        _sec, _frac, incl_len, _orig_len = struct.unpack_from(order + "IIII", data, offset)
        offset += 16
        if offset + incl_len > len(data):
            raise ValueError(f"{path}: the last packet is cut short")
        frames.append(data[offset:offset + incl_len])
        offset += incl_len
    return linktype, frames


def ip_payload(frame, linktype):
    """The IPv4 packet inside a link-layer frame."""
    if linktype == LINKTYPE_ETHERNET:
        return frame[14:]  # destination MAC, source MAC, EtherType
    if linktype == LINKTYPE_RAW:
        return frame
    raise ValueError(f"link type {linktype} is not supported")


def _dotted(raw):
    return ".".join(str(b) for b in raw)


def parse_ipv4(data):
    """Decode an IPv4 header."""
    vihl, _tos, total, _ident, _frag, ttl, proto, _csum, src, dst = struct.unpack(
        ">BBHHHBBH4s4s", data[:20])
    return {"version": vihl >> 4, "header_length": (vihl & 0x0F) * 4, "total_length": total,
            "ttl": ttl, "protocol": proto, "src": _dotted(src), "dst": _dotted(dst)}


def parse_tcp(segment):
    """Decode a TCP header."""
    sport, dport, seq, ack, offset, flags, _win, _csum, _urg = struct.unpack(">HHIIBBHHH", segment[:20])
    return {"sport": sport, "dport": dport, "seq": seq, "ack": ack, "flags": flags,
            "header_length": (offset >> 4) * 4}


def parse_udp(segment):
    """Decode a UDP header."""
    sport, dport, length, _csum = struct.unpack(">HHHH", segment[:8])
    return {"sport": sport, "dport": dport, "length": length}


def _sum16(data):
    if len(data) % 2:
        data = bytes(data) + b"\0"
    return sum(struct.unpack(">%dH" % (len(data) // 2), data))


def checksum(data):
    """RFC 1071: one's complement of the one's complement sum of 16-bit words."""
    total = _sum16(data)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def transport_checksum_ok(packet):
    """Verify the TCP/UDP checksum with the IPv4 pseudo-header."""
    head = parse_ipv4(packet)
    segment = packet[head["header_length"]:head["total_length"]]
    if head["protocol"] == 17 and struct.unpack(">H", segment[6:8])[0] == 0:
        return True
    pseudo = packet[12:20] + struct.pack(">BBH", 0, head["protocol"], len(segment))
    return checksum(pseudo + segment) == 0


def find_handshake(packets):
    """Indices of SYN, SYN-ACK, ACK of the first complete handshake."""
    tcp = []
    for ip in packets:
        head = parse_ipv4(ip)
        tcp.append(parse_tcp(ip[head["header_length"]:]) if head["protocol"] == 6 else None)
    for i, syn in enumerate(tcp):
        if not syn or syn["flags"] & (SYN | ACK) != SYN:
            continue
        for j in range(i + 1, len(tcp)):
            sa = tcp[j]
            if (sa and sa["flags"] & (SYN | ACK) == SYN | ACK and (sa["sport"], sa["dport"])
                    == (syn["dport"], syn["sport"]) and sa["ack"] == (syn["seq"] + 1) % 2**32):
                for k in range(j + 1, len(tcp)):
                    a = tcp[k]
                    if (a and a["flags"] & (SYN | ACK) == ACK and (a["sport"], a["dport"])
                            == (syn["sport"], syn["dport"]) and a["ack"] == (sa["seq"] + 1) % 2**32):
                        return [i, j, k]
    return []


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    link, frames = read_pcap(sys.argv[1])
    ips = [ip_payload(f, link) for f in frames]
    for number, ip in enumerate(ips):
        head = parse_ipv4(ip)
        print(number, head["src"], "->", head["dst"], "proto", head["protocol"],
              "checksum ok" if transport_checksum_ok(ip) else "checksum not ok")
    print("handshake:", find_handshake(ips))
