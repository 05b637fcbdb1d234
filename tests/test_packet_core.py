"""The packet core on both backends: RFC 1071 checksum and IPv4/TCP/UDP decoding.

dpkt (a test dependency) builds the packets, so the expected values come from
an independent implementation, not from netlab itself.
"""
import socket
import struct

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netlab.errors import DecodeError


def reference_checksum(data: bytes) -> int:
    """The RFC 1071 algorithm written out word by word, as slowly as possible."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_tcp(flags=dpkt.tcp.TH_SYN, payload=b"", opts=b"", ip_opts=b""):
    tcp = dpkt.tcp.TCP(sport=40000, dport=7007, seq=1000, ack=0, flags=flags,
                       win=65495, opts=opts, data=payload, off=(20 + len(opts)) // 4)
    ip = dpkt.ip.IP(src=socket.inet_aton("127.0.0.1"), dst=socket.inet_aton("127.0.0.2"),
                    p=dpkt.ip.IP_PROTO_TCP, ttl=64, id=4242, data=tcp, opts=ip_opts, hl=(20 + len(ip_opts)) // 4)
    ip.df = 1
    return bytes(ip)


def ip_udp(payload=b"hello", sport=5353, dport=7007):
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload, ulen=8 + len(payload))
    ip = dpkt.ip.IP(src=socket.inet_aton("10.0.0.1"), dst=socket.inet_aton("10.0.0.2"),
                    p=dpkt.ip.IP_PROTO_UDP, ttl=17, data=udp)
    return bytes(ip)


# --- checksum -------------------------------------------------------------

def test_rfc1071_worked_example(core):
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert core.internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == (~0xDDF2 & 0xFFFF)


@pytest.mark.parametrize("data, expected", [(b"", 0xFFFF), (b"\x01", 0xFEFF), (b"\xff\xff", 0x0000)])
def test_checksum_edges(core, data, expected):
    assert core.internet_checksum(data) == expected


def test_checksum_accepts_any_buffer(core):
    data = bytes(range(256)) * 3 + b"\x07"
    want = reference_checksum(data)
    assert core.internet_checksum(data) == want
    assert core.internet_checksum(bytearray(data)) == want
    assert core.internet_checksum(memoryview(data)) == want


def test_header_with_its_checksum_sums_to_zero(core):
    packet = ip_tcp()
    assert core.internet_checksum(packet[:20]) == 0
    broken = bytearray(packet)
    broken[8] ^= 0x01  # flip a TTL bit
    assert core.internet_checksum(broken[:20]) != 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 0xFFFF))
def test_checksum_matches_reference(both_cores, data, initial):
    c, py = both_cores
    want = reference_checksum(data) if initial == 0 else None
    got = {core.internet_checksum(data, initial) for core in (c, py)}
    assert len(got) == 1
    if want is not None:
        assert got == {want}


def test_pseudo_header_sum_verifies_udp(core):
    packet = ip_udp(b"the quick brown fox")
    initial = core.pseudo_header_sum(packet[12:16], packet[16:20], 17, len(packet) - 20)
    assert core.internet_checksum(packet[20:], initial) == 0


def test_pseudo_header_rejects_mixed_families(core):
    with pytest.raises(ValueError, match="4 .IPv4. or 16"):
        core.pseudo_header_sum(b"\0" * 4, b"\0" * 16, 6, 20)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([4, 16]), st.binary(min_size=32, max_size=32), st.integers(0, 255),
       st.integers(0, 0xFFFFFFFF))
def test_pseudo_header_sum_twins_agree(both_cores, size, raw, protocol, length):
    c, py = both_cores
    src, dst = raw[:size], raw[16:16 + size]
    assert c.pseudo_header_sum(src, dst, protocol, length) == \
        py.pseudo_header_sum(src, dst, protocol, length)


# --- decoding --------------------------------------------------------------

def test_decode_tcp_syn(core):
    pkt = ip_tcp(opts=b"\x02\x04\xff\xd7\x01\x01\x04\x02")  # MSS 65495, NOP NOP, SACK-permitted
    out = core.decode_packet(pkt)
    ip, tcp = out["ip"], out["tcp"]
    assert (ip["src"], ip["dst"], ip["ttl"], ip["id"]) == ("127.0.0.1", "127.0.0.2", 64, 4242)
    assert ip["flags"] == 0b010 and ip["checksum_ok"] is True
    assert out["proto"] == "tcp" and out["checksum_ok"] is True
    assert (tcp["sport"], tcp["dport"], tcp["seq"], tcp["window"]) == (40000, 7007, 1000, 65495)
    assert tcp["header_length"] == 28 and tcp["options"].startswith(b"\x02\x04")
    assert core.tcp_flag_names(tcp["flags"]) == ["SYN"]
    assert out["payload"] == b""


def test_decode_tcp_payload_and_flags(core):
    pkt = ip_tcp(flags=dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK, payload=b"hello\r\n")
    out = core.decode_packet(pkt)
    assert out["payload"] == b"hello\r\n"
    assert core.tcp_flag_names(out["tcp"]["flags"]) == ["PSH", "ACK"]
    assert out["checksum_ok"] is True


def test_decode_udp(core):
    out = core.decode_packet(ip_udp(b"ping"))
    assert out["proto"] == "udp"
    assert out["udp"] == {"sport": 5353, "dport": 7007, "length": 12,
                          "checksum": out["udp"]["checksum"]}
    assert out["payload"] == b"ping" and out["checksum_ok"] is True


def test_bad_transport_checksum_is_reported(core):
    pkt = bytearray(ip_udp(b"ping"))
    pkt[-1] ^= 0xFF
    assert core.decode_packet(bytes(pkt))["checksum_ok"] is False


def test_ip_options_are_kept(core):
    pkt = ip_tcp(ip_opts=b"\x01\x01\x01\x00")  # NOP NOP NOP EOL
    ip = core.decode_ipv4(pkt)
    assert ip["header_length"] == 24 and ip["options"] == b"\x01\x01\x01\x00"
    assert ip["checksum_ok"] is True


def test_other_protocols_keep_payload(core):
    icmp = bytes(dpkt.ip.IP(src=b"\x7f\0\0\1", dst=b"\x7f\0\0\1", p=1,
                            data=dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=1, seq=1))))
    out = core.decode_packet(icmp)
    assert out["proto"] == 1 and out["checksum_ok"] is None and len(out["payload"]) == 8


def test_fragment_is_not_checksummed(core):
    pkt = bytearray(ip_udp(b"x" * 40))
    struct.pack_into(">H", pkt, 6, 0x2000)  # MF set: the first of several fragments
    out = core.decode_packet(bytes(pkt))
    assert out["ip"]["flags"] & 1 and out["checksum_ok"] is None


@pytest.mark.parametrize("data, message", [
    (b"\x45\x00", "truncated IPv4 header: got 2 bytes, need 20"),
    (b"\x60" + b"\0" * 39, "not an IPv4 header: version field is 6"),
    (b"\x44" + b"\0" * 19, "bad IPv4 header length: 16 bytes, the minimum is 20"),
    (b"\x46" + b"\0" * 19, "truncated IPv4 header with options: got 20 bytes, need 24"),
    (b"\x45\x00\x00\x10" + b"\0" * 16, "bad IPv4 total length: 16 is less than the header's 20"),
])
def test_malformed_ipv4(core, data, message):
    with pytest.raises(DecodeError) as info:
        core.decode_ipv4(data)
    assert str(info.value) == message


def test_truncated_transport(core):
    pkt = ip_tcp()[:30]
    with pytest.raises(DecodeError, match="truncated TCP header: got 10 bytes, need 20"):
        core.decode_packet(pkt)
    with pytest.raises(DecodeError, match="truncated UDP header: got 3 bytes, need 8"):
        core.decode_udp(b"abc")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_never_crashes_and_twins_agree(both_cores, data):
    results = []
    for core in both_cores:
        try:
            results.append(("ok", core.decode_packet(data)))
        except DecodeError as exc:
            results.append(("error", str(exc)))
    assert results[0] == results[1]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 60))
def test_mutated_real_packets_twins_agree(both_cores, payload, cut):
    pkt = ip_tcp(flags=dpkt.tcp.TH_ACK, payload=payload)
    data = pkt[: max(0, len(pkt) - cut)]
    results = []
    for core in both_cores:
        try:
            results.append(core.decode_packet(data))
        except DecodeError as exc:
            results.append(str(exc))
    assert results[0] == results[1]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([b"", b"\x45", b"\x46\x00", b"\x4f"]), st.binary(max_size=80),
       st.integers(0, 0x1FF))
def test_header_decoders_and_flag_names_twins_agree(both_cores, prefix, rest, flags):
    """decode_ipv4/tcp/udp and tcp_flag_names called directly, not only through decode_packet."""
    data = prefix + rest
    for name in ("decode_ipv4", "decode_tcp", "decode_udp"):
        results = []
        for core in both_cores:
            try:
                results.append(getattr(core, name)(data))
            except DecodeError as exc:
                results.append(str(exc))
        assert results[0] == results[1], name
    c, py = both_cores
    assert c.tcp_flag_names(flags) == py.tcp_flag_names(flags)
    assert c.TCP_FLAG_NAMES == py.TCP_FLAG_NAMES
