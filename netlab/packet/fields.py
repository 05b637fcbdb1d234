"""The packet record and the numbers inside it, named once for every part of netlab.

A *record* is one tuple per captured frame, the same on both cores. Its
fields, in order, are :data:`RECORD_FIELDS`; each has an index constant of the
same name in capitals, so code reads ``rec[SPORT]``, never a bare position::

    from netlab.packet import fields as F
    if rec[F.STATUS] & F.S_L4 and rec[F.PROTO] == F.IPPROTO_TCP:
        print(rec[F.SRC], rec[F.SPORT])

The protocol numbers (IP protocols, ethertypes, link types), the status bits
of a record, the TCP flags and the TCP flow states live here too. The
compiled core reads them from this file as well: ``setup.py`` writes them into
``src_c/fields.h`` (``#define NL_<NAME>``) before it compiles, so no number
is written twice. This module imports nothing.
"""

# --- the record ----------------------------------------------------------------

RECORD_FIELDS = (
    "offset",       # where the frame starts in the file (0 for a lone frame)
    "ts_ns",        # capture time, nanoseconds since 1970
    "caplen",       # bytes captured
    "wirelen",      # bytes on the wire
    "ifid",         # pcapng interface number (0 in pcap)
    "linktype",     # LINKTYPE_* of the frame (1 Ethernet, 113 SLL, 276 SLL2, 101 raw...)
    "ethertype",    # ETH_* after VLAN/MPLS/PPPoE...; -1: the link names none
    "src",          # source address as text, None when not IP
    "dst",          # destination address as text
    "proto",        # IPPROTO_* (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6); -1 none
    "sport",        # source port (ICMP: type); also read from a cut header (S_L4_PART)
    "dport",        # destination port (ICMP: code)
    "flags",        # TCP flags, 9 bits (TCP_FIN ... TCP_CWR, TCP_NS)
    "seq",          # TCP sequence number
    "ack",          # TCP acknowledgment number
    "l4_off",       # transport header offset in the frame (0 when none)
    "payload_off",  # transport payload offset in the frame
    "payload_len",  # transport payload length (captured bytes)
    "status",       # S_* bits below
)

# The index of each field: rec[SRC] is the source address.
(OFFSET, TS_NS, CAPLEN, WIRELEN, IFID, LINKTYPE, ETHERTYPE, SRC, DST, PROTO, SPORT, DPORT,
 FLAGS, SEQ, ACK, L4_OFF, PAYLOAD_OFF, PAYLOAD_LEN, STATUS) = range(len(RECORD_FIELDS))

# --- status bits of a record (its ``status`` field) ---------------------------

S_L4 = 0x001          # transport header decoded: ports, flags valid
S_FRAG = 0x002        # an IP fragment
S_TRUNC = 0x004       # captured bytes end before a header or the IP length
S_MALFORMED = 0x008   # an impossible header field
S_VLAN = 0x010        # VLAN tag(s) walked
S_IPOPT = 0x020       # IPv4 options present
S_EXTHDR = 0x040      # IPv6 extension header(s) walked
S_CHECKED = 0x080     # checksums verified
S_IPCSUM_BAD = 0x100  # IPv4 header checksum wrong
S_L4CSUM_BAD = 0x200  # transport checksum wrong
S_L4CSUM_OK = 0x400   # transport checksum right
S_L4_PART = 0x800     # transport header cut short: only its ports were read (S_L4 unset)

# --- TCP flags (RFC 9293; ECE and CWR RFC 3168; NS RFC 3540) ------------------

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
TCP_ECE = 0x40
TCP_CWR = 0x80
TCP_NS = 0x100  # the 9th bit, kept in a record's flags
TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")  # bit 0 first

# --- TCP flow states of the stats path (bits, several may be set) -------------

T_SYN = 0x01     # SYN without ACK seen (the client's opening)
T_SYNACK = 0x02  # SYN+ACK seen (the server's answer)
T_ACK = 0x04     # an ACK after the SYN-ACK: the three-way handshake is complete
T_FIN_A = 0x08   # FIN from the flow's first sender
T_FIN_B = 0x10   # FIN from the other side
T_RST = 0x20     # RST seen

# --- IP protocol numbers (IANA "Assigned Internet Protocol Numbers") ----------

IPPROTO_ICMP = 1
IPPROTO_IGMP = 2
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41    # IPv6 in IP
IPPROTO_GRE = 47
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_OSPF = 89
IPPROTO_PIM = 103
IPPROTO_SCTP = 132
# IPv6 extension headers (RFC 8200) walked before the transport header; AH is one too.
IPPROTO_HOPOPTS = 0
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_DSTOPTS = 60

PROTO_NAMES = {IPPROTO_ICMP: "icmp", IPPROTO_IGMP: "igmp", IPPROTO_TCP: "tcp",
               IPPROTO_UDP: "udp", IPPROTO_IPV6: "ipv6-in-ip", IPPROTO_GRE: "gre",
               IPPROTO_ESP: "esp", IPPROTO_AH: "ah", IPPROTO_ICMPV6: "icmp6",
               IPPROTO_OSPF: "ospf", IPPROTO_PIM: "pim", IPPROTO_SCTP: "sctp"}

# --- ethertypes (IEEE 802 numbers) ---------------------------------------------

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100      # 802.1Q
ETH_QINQ = 0x88A8      # 802.1ad
ETH_MPLS = 0x8847
ETH_PPPOE = 0x8864

# --- link types of capture files (tcpdump.org "LINK-LAYER HEADER TYPES") -------

LINKTYPE_NULL = 0           # BSD loopback
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101          # raw IP, version nibble first
LINKTYPE_LINUX_SLL = 113    # Linux cooked capture v1
LINKTYPE_LINUX_SLL2 = 276   # Linux cooked capture v2

# --- capture files ------------------------------------------------------------

MAX_CAPLEN = 262144     # what libpcap accepts for one record
RELEASE_STEP = 8 << 20  # a walk over a CaptureMap gives back the pages behind it this often

# What setup.py writes into src_c/fields.h for the C walk, as NL_<NAME>.
C_NAMES = ("S_", "T_", "TCP_", "IPPROTO_", "ETH_", "LINKTYPE_", "MAX_CAPLEN", "RELEASE_STEP")
