"""Our own corpus: captures of traffic made here, compared with tshark.

tools/make_corpus.py captures real traffic on loopback and between two network
namespaces it creates and removes (tcpdump in pcap micro/nanoseconds, Linux
cooked v2, a 64-byte snaplen; dumpcap pcapng with two interfaces; IPv6 BIG
TCP jumbograms and fragments on a veth; a gzip copy). tools/fidelity.py then
compares every frame with tshark: nothing missed, no field differs.
"""
import importlib.util
import os
import shutil

import pytest

from netlab import packet
from netlab.packet import fields as F
from netlab.packet.fields import S_FRAG
from netlab.packet.pcap import open_capture
from tests.conftest import ROOT

TOOLS = os.path.join(ROOT, "tools")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, tcpdump)")
@pytest.mark.skipif(not all(shutil.which(t) for t in ("tcpdump", "dumpcap", "tshark", "ip")),
                    reason="needs tcpdump, tshark (dumpcap) and iproute2 (apt-get install ...)")
def test_own_corpus_decodes_like_tshark(tmp_path):
    corpus = _load("make_corpus")
    files = corpus.make(str(tmp_path / "corpus"))
    fidelity = _load("fidelity")
    reports = [fidelity.compare_file(f) for f in files]
    total = fidelity.summarise(reports)
    for r in reports:
        assert r["ip_packets"] >= 10, r["file"]  # every capture really caught our traffic
        assert r["frames"] == r["netlab_frames"] and r["twins"] == [], r["file"]
    assert total["missed"] == 0 and total["extra"] == 0
    assert total["diffs"] == {}, [(r["file"], r["diffs"]) for r in reports if r["diffs"]]
    with open_capture(os.path.join(tmp_path, "corpus", "veth-vlan-bigtcp.pcap")) as buf:
        recs = list(packet.iter_records(buf))
    assert any(r[F.STATUS] & S_FRAG for r in recs)  # the large datagrams were fragmented
    if corpus.BIG_TCP:  # IPv6 packets over 64 KB: a hop-by-hop jumbo option gives their length
        assert any(r[F.ETHERTYPE] == 0x86DD and r[F.PROTO] == 6 and r[F.PAYLOAD_LEN] > 65535 for r in recs)
