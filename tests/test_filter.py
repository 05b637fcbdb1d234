"""The filter language over records: tcpdump's small subset, and its errors."""
import pytest

from netlab.packet.pfilter import FilterError, compile_filter

# (ethertype, src, dst, proto, sport, dport, status) placed in a record tuple
def rec(proto=6, sport=40000, dport=7007, src="127.0.0.1", dst="127.0.0.2", et=0x0800, l4=True):
    return (0, 0, 60, 60, 0, 1, et, src, dst, proto, sport, dport, 0, 0, 0, 34, 54, 0, 1 if l4 else 0)


TCP, UDP = rec(), rec(17, 5353, 53)
ICMP = rec(1, 8, 0)
V6 = rec(6, 1, 7007, "::1", "::1", 0x86DD)
ARP = rec(-1, 0, 0, None, None, 0x0806, False)


@pytest.mark.parametrize("expr, matches", [
    ("tcp", [TCP, V6]),
    ("udp", [UDP]),
    ("icmp", [ICMP]),
    ("arp", [ARP]),
    ("ip6", [V6]),
    ("port 7007", [TCP, V6]),
    ("src port 5353", [UDP]),
    ("dst port 53 or icmp", [UDP, ICMP]),
    ("tcp port 7007 and host ::1", [V6]),
    ("host 0:0:0:0:0:0:0:1", [V6]),
    ("not tcp and not arp", [UDP, ICMP]),
    ("! (tcp || udp)", [ICMP, ARP]),
    ("src host 127.0.0.1 && dst host 127.0.0.2", [TCP, UDP, ICMP]),
    ("TCP AND PORT 7007", [TCP, V6]),
])
def test_matches(expr, matches):
    pred = compile_filter(expr)
    assert [r for r in (TCP, UDP, ICMP, V6, ARP) if pred(r)] == matches


def test_port_needs_a_decoded_transport_header():
    assert not compile_filter("port 7007")(rec(l4=False))


@pytest.mark.parametrize("expr, words", [
    ("", "empty"), ("tcp and", "after 'and'"), ("port", "port number"), ("port x", "not a port"),
    ("port 65536", "not a port"), ("host", "address"), ("host 1.2.3", "not an IPv4 or IPv6"),
    ("(tcp", "missing ')'"), ("tcp)", "unexpected ')'"), ("or tcp", "needs something before"),
    ("src tcp", "expected 'port' or 'host'"), ("ftp", "unknown word 'ftp'"), ("not", "after 'not'"),
])
def test_errors_name_the_problem(expr, words):
    with pytest.raises(FilterError) as info:
        compile_filter(expr)
    assert words in str(info.value) and "use tcp, udp" in str(info.value)
