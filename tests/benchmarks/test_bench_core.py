"""Benchmarks of the packet core, both backends side by side (and dpkt as a yardstick).

The default test run disables timing (``--benchmark-disable`` in pyproject), so
these run once as plain tests. Measure with::

    python -m pytest tests/benchmarks --benchmark-enable --benchmark-group-by=group
"""
import socket

import dpkt
import pytest

PAYLOAD = bytes(range(256)) * 5 + b"tail"  # 1284 bytes: a typical MTU-sized segment


def _packet() -> bytes:
    tcp = dpkt.tcp.TCP(sport=40000, dport=7007, seq=1, ack=1, flags=dpkt.tcp.TH_ACK,
                       win=512, data=PAYLOAD)
    ip = dpkt.ip.IP(src=socket.inet_aton("127.0.0.1"), dst=socket.inet_aton("127.0.0.1"),
                    p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=tcp)
    return bytes(ip)


PACKET = _packet()


@pytest.mark.benchmark(group="checksum-1284B")
def test_checksum(benchmark, core):
    result = benchmark(core.internet_checksum, PAYLOAD)
    assert result == core.internet_checksum(bytearray(PAYLOAD))


@pytest.mark.benchmark(group="decode-ipv4-tcp")
def test_decode_packet(benchmark, core):
    out = benchmark(core.decode_packet, PACKET)
    assert out["checksum_ok"] is True and out["tcp"]["dport"] == 7007


@pytest.mark.benchmark(group="decode-ipv4-tcp")
def test_decode_packet_dpkt_reference(benchmark):
    def decode():
        ip = dpkt.ip.IP(PACKET)
        return ip.data.dport

    assert benchmark(decode) == 7007
