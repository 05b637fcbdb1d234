"""Per-packet status bits of a record (its ``status`` field), named once.

Both cores set the same bits: src_c/walk.h defines ``NL_S_*`` with these
values, and :mod:`netlab._pycore.decode` re-exports them.
"""
__all__ = ["S_CHECKED", "S_EXTHDR", "S_FRAG", "S_IPCSUM_BAD", "S_IPOPT", "S_L4", "S_L4_PART",
           "S_L4CSUM_BAD", "S_L4CSUM_OK", "S_MALFORMED", "S_TRUNC", "S_VLAN"]

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
