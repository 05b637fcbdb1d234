"""Frame decoding on both backends: link layers, IPv4/IPv6, TCP/UDP/ICMP, checksums.

dpkt (a test dependency) builds the frames, so the expected values come from an
independent implementation. Every test runs on the compiled core ``[c]`` and
its twin ``[py]``.
"""
import socket
import struct

import dpkt
import pytest

from netlab.packet.fields import (RECORD_FIELDS, S_EXTHDR, S_FRAG, S_IPCSUM_BAD, S_IPOPT, S_L4,
                                  S_L4CSUM_BAD, S_L4CSUM_OK, S_MALFORMED, S_TRUNC, S_VLAN)

F = {name: i for i, name in enumerate(RECORD_FIELDS)}
A4, B4 = socket.inet_aton("127.0.0.1"), socket.inet_aton("10.1.2.3")
A6, B6 = socket.inet_pton(socket.AF_INET6, "::1"), socket.inet_pton(socket.AF_INET6, "fe80::1")


def field(rec, name):
    return rec[F[name]]


def tcp4(payload=b"", flags=dpkt.tcp.TH_SYN, opts=b"", ip_opts=b"", sport=40000, dport=7007):
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=1000, ack=77, flags=flags, win=65495,
                       opts=opts, off=(20 + len(opts)) // 4, data=payload)
    ip = dpkt.ip.IP(src=A4, dst=B4, p=6, ttl=64, opts=ip_opts, hl=(20 + len(ip_opts)) // 4, data=tcp)
    return bytes(ip)


def udp6(payload=b"ping", ext=b"", nxt=17):
    udp = dpkt.udp.UDP(sport=5353, dport=7007, data=payload, ulen=8 + len(payload))
    udp_bytes = bytes(udp)
    # checksum over the IPv6 pseudo-header, computed by hand (RFC 8200 section 8.1)
    pseudo = A6 + B6 + struct.pack(">IxxxB", len(udp_bytes), 17)
    total = sum(struct.unpack(">%dH" % ((len(pseudo + udp_bytes) + 1) // 2),
                              (pseudo + udp_bytes + b"\0")[: (len(pseudo + udp_bytes) + 1) // 2 * 2]))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    udp_bytes = udp_bytes[:6] + struct.pack(">H", ~total & 0xFFFF) + udp_bytes[8:]
    body = ext + udp_bytes
    head = struct.pack(">IHBB", 0x60000000, len(body), nxt, 64) + A6 + B6
    return head + body


def eth(l3, ethertype=0x0800, vlans=()):
    tags = b"".join(struct.pack(">HH", tpid, vid) for tpid, vid in vlans)
    inner = struct.pack(">H", ethertype)
    if vlans:
        return b"\x00" * 12 + struct.pack(">H", vlans[0][0]) + struct.pack(">H", vlans[0][1]) + \
            b"".join(struct.pack(">HH", tpid, vid) for tpid, vid in vlans[1:]) + inner + l3
    return b"\x00" * 12 + tags + inner + l3


def test_ethernet_ipv4_tcp_syn(core):
    opts = b"\x02\x04\xff\xd7\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x03\x07"
    rec = core.decode_frame(eth(tcp4(opts=opts)), 1, True)
    assert len(rec) == len(RECORD_FIELDS)
    assert (field(rec, "src"), field(rec, "dst"), field(rec, "proto")) == ("127.0.0.1", "10.1.2.3", 6)
    assert (field(rec, "sport"), field(rec, "dport"), field(rec, "flags")) == (40000, 7007, 0x02)
    assert (field(rec, "seq"), field(rec, "ack")) == (1000, 77)
    assert field(rec, "l4_off") == 34 and field(rec, "payload_off") == 34 + 20 + len(opts)
    assert field(rec, "status") & S_L4 and field(rec, "status") & S_L4CSUM_OK
    assert not field(rec, "status") & (S_TRUNC | S_MALFORMED | S_IPCSUM_BAD | S_L4CSUM_BAD)
    names = core.tcp_options(opts)
    assert names == [("mss", 65495), ("sackOK", None), ("ts", (1, 0)), ("nop", None), ("wscale", 7)]


def test_payload_offsets_give_the_bytes(core):
    frame = eth(tcp4(b"hello netlab\r\n", flags=dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK))
    rec = core.decode_frame(frame)
    off, n = field(rec, "payload_off"), field(rec, "payload_len")
    assert frame[off:off + n] == b"hello netlab\r\n"
    assert field(rec, "flags") == 0x18


def test_vlan_tags_are_walked(core):
    frame = eth(tcp4(), vlans=((0x88A8, 100), (0x8100, 200)))
    rec = core.decode_frame(frame)
    assert field(rec, "status") & S_VLAN and field(rec, "ethertype") == 0x0800
    assert field(rec, "dport") == 7007 and field(rec, "l4_off") == 14 + 8 + 20


def test_linux_cooked_v1_v2_and_raw(core):
    l3 = tcp4()
    sll = struct.pack(">HHH8sH", 0, 772, 6, b"\0" * 8, 0x0800) + l3
    sll2 = struct.pack(">HHIHBB8s", 0x0800, 0, 1, 772, 0, 6, b"\0" * 8) + l3
    null = struct.pack("<I", 2) + l3
    for frame, link in ((sll, 113), (sll2, 276), (l3, 101), (l3, 228), (null, 0)):
        rec = core.decode_frame(frame, link)
        assert (field(rec, "src"), field(rec, "dport")) == ("127.0.0.1", 7007), link
        assert field(rec, "linktype") == link


def test_unknown_link_and_arp(core):
    assert field(core.decode_frame(b"\x01\x02", 9999), "ethertype") == -1
    arp = eth(b"\x00" * 28, 0x0806)
    rec = core.decode_frame(arp)
    assert field(rec, "ethertype") == 0x0806 and field(rec, "src") is None and field(rec, "proto") == -1


def test_ipv4_options_and_bad_header_checksum(core):
    frame = bytearray(eth(tcp4(ip_opts=b"\x01\x01\x01\x00")))
    rec = core.decode_frame(bytes(frame), 1, True)
    assert field(rec, "status") & S_IPOPT and field(rec, "l4_off") == 14 + 24
    frame[14 + 8] ^= 1  # TTL changed, checksum not updated
    assert field(core.decode_frame(bytes(frame), 1, True), "status") & S_IPCSUM_BAD


def test_bad_transport_checksum(core):
    frame = bytearray(eth(tcp4(b"data")))
    frame[-1] ^= 0xFF
    status = field(core.decode_frame(bytes(frame), 1, True), "status")
    assert status & S_L4CSUM_BAD and not status & S_L4CSUM_OK
    assert not field(core.decode_frame(bytes(frame), 1, False), "status") & S_L4CSUM_BAD


def test_ipv4_fragments(core):
    first = bytearray(tcp4(b"x" * 40))
    struct.pack_into(">H", first, 6, 0x2000)  # MF
    rec = core.decode_frame(bytes(first), 101, True)
    assert field(rec, "status") & S_FRAG and field(rec, "status") & S_L4
    assert not field(rec, "status") & (S_L4CSUM_OK | S_L4CSUM_BAD)  # not checkable
    later = bytearray(first)
    struct.pack_into(">H", later, 6, 0x0005)  # offset 40 bytes: no TCP header here
    rec = core.decode_frame(bytes(later), 101)
    assert field(rec, "status") & S_FRAG and not field(rec, "status") & S_L4
    assert field(rec, "sport") == 0 and field(rec, "payload_off") == 20


def test_ipv6_udp_with_extension_headers(core):
    hop = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"  # hop-by-hop -> dest opts, PadN
    dst = bytes([17, 0]) + b"\x01\x04\x00\x00\x00\x00"  # dest opts -> UDP
    rec = core.decode_frame(eth(udp6(ext=hop + dst, nxt=0), 0x86DD), 1, True)
    assert (field(rec, "src"), field(rec, "dst")) == ("::1", "fe80::1")
    assert field(rec, "proto") == 17 and field(rec, "dport") == 7007
    assert field(rec, "status") & S_EXTHDR and field(rec, "status") & S_L4CSUM_OK
    plain = core.decode_frame(eth(udp6(), 0x86DD), 1, True)
    assert field(plain, "status") & S_L4CSUM_OK and not field(plain, "status") & S_EXTHDR


def test_ipv6_fragment_header(core):
    frag_first = bytes([17, 0]) + struct.pack(">HI", 0x0001, 42)  # offset 0, M=1
    rec = core.decode_frame(udp6(ext=frag_first, nxt=44), 229)
    assert field(rec, "status") & S_FRAG and field(rec, "dport") == 7007
    frag_later = bytes([17, 0]) + struct.pack(">HI", 0x0008, 42)  # offset 8 bytes
    rec = core.decode_frame(udp6(ext=frag_later, nxt=44), 229)
    assert field(rec, "status") & S_FRAG and not field(rec, "status") & S_L4
    assert field(rec, "proto") == 17


def test_icmp_and_icmp6(core):
    echo = dpkt.icmp.ICMP(type=8, code=0, data=dpkt.icmp.ICMP.Echo(id=7, seq=1, data=b"abcd"))
    ip = bytes(dpkt.ip.IP(src=A4, dst=A4, p=1, data=echo))
    rec = core.decode_frame(ip, 101, True)
    assert (field(rec, "proto"), field(rec, "sport"), field(rec, "dport")) == (1, 8, 0)
    assert field(rec, "status") & S_L4CSUM_OK and field(rec, "payload_len") == 4
    body = struct.pack(">BBHHH", 128, 0, 0, 1, 1) + b"ping"
    ip6 = struct.pack(">IHBB", 0x60000000, len(body), 58, 64) + A6 + A6 + body
    rec = core.decode_frame(ip6, 229, True)
    assert (field(rec, "proto"), field(rec, "sport")) == (58, 128)
    assert field(rec, "status") & S_L4CSUM_BAD  # checksum field left at 0


@pytest.mark.parametrize("cut", [1, 13, 14, 20, 33, 34, 40, 53])
def test_truncated_frames_are_flagged_not_raised(core, cut):
    frame = eth(tcp4(b"payload"))[:cut]
    rec = core.decode_frame(frame, 1, True)
    assert field(rec, "status") & S_TRUNC
    assert field(rec, "caplen") == cut


def test_malformed_headers(core):
    bad_version = eth(b"\x55" + tcp4()[1:])
    assert field(core.decode_frame(bad_version), "status") & S_MALFORMED
    bad_ihl = eth(b"\x44" + tcp4()[1:])
    assert field(core.decode_frame(bad_ihl), "status") & S_MALFORMED
    bad_doff = bytearray(eth(tcp4()))
    bad_doff[14 + 20 + 12] = 0x30  # data offset 12 bytes
    rec = core.decode_frame(bytes(bad_doff))
    assert field(rec, "status") & S_MALFORMED and not field(rec, "status") & S_L4


def test_bad_tcp_options_end_the_list(core):
    assert core.tcp_options(b"\x02\x04\x05") == [("bad", b"\x02\x04\x05")]
    assert core.tcp_options(b"\x01\x00\x02\x04\x00\x01") == [("nop", None), ("eol", None)]
    assert core.tcp_options(b"\x05\x0a" + struct.pack(">II", 1, 9)) == [("sack", [(1, 9)])]
    assert core.tcp_options(b"\xfe\x03\x07") == [("opt-254", b"\x07")]


def test_tcp_options_cut_by_snaplen_keep_ports_and_flags(core):
    # tcpdump -s 60 on lo cuts a SYN inside its options: the fixed header is
    # whole, so ports, numbers and flags are known (tcpdump and dpkt show
    # them); the payload is empty, not the header bytes.
    opts = b"\x02\x04\xff\xd7\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x03\x07"
    frame = eth(tcp4(opts=opts, flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK))[:60]
    rec = core.decode_frame(frame, 1, True)
    status = field(rec, "status")
    assert status & S_TRUNC and status & S_L4
    assert not status & (S_L4CSUM_OK | S_L4CSUM_BAD)  # a cut segment is not verified
    assert (field(rec, "sport"), field(rec, "dport")) == (40000, 7007)
    assert (field(rec, "seq"), field(rec, "ack"), field(rec, "flags")) == (1000, 77, 0x12)
    assert (field(rec, "payload_off"), field(rec, "payload_len")) == (60, 0)
