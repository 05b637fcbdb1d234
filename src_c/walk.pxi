# The C walk's declarations (src_c/walk.h), in one place for every module
# that walks captures in C: _core.pyx (through capture.pxi) and _arrow.pyx.
# Include it once per module, after cimporting the libc.stdint types.

cdef extern from "walk.h" nogil:
    ctypedef struct nl_frame:
        size_t offset
        uint64_t ts_ns
        int64_t ts_hi
        uint32_t caplen
        uint32_t wirelen
        uint32_t ifid
        int linktype

    ctypedef struct nl_reader:
        const uint8_t *buf
        size_t len
        size_t pos
        int format
        int le
        uint32_t frac_mult
        int linktype
        uint32_t snaplen
        int release
        size_t err_off
        char err[160]

    ctypedef struct nl_pkt:
        int ethertype
        int family
        int proto
        uint8_t src[16]
        uint8_t dst[16]
        uint32_t sport
        uint32_t dport
        uint32_t flags
        uint32_t seq
        uint32_t ack
        uint32_t l4_off
        uint32_t payload_off
        uint32_t payload_len
        uint32_t status

    ctypedef struct nl_fkey:
        uint8_t a[16]
        uint8_t b[16]
        uint16_t pa
        uint16_t pb
        uint8_t proto
        uint8_t family
        uint8_t used
        uint8_t first_is_a

    ctypedef struct nl_flow:
        nl_fkey key
        uint64_t order
        uint64_t packets
        uint64_t bytes
        uint32_t state

    ctypedef struct nl_agg:
        uint64_t packets, bytes, captured
        uint64_t ip4, ip6, non_ip, vlan, fragments, truncated, malformed
        uint64_t checked, ipcsum_bad, l4csum_bad
        uint64_t proto_pk[256]
        uint64_t proto_by[256]
        uint64_t arp_pk, arp_by, other_pk, other_by
        uint64_t *ports
        nl_flow *flows
        size_t cap, n
        int oom

    enum: NL_PCAP
    int nl_reader_init(nl_reader *r, const uint8_t *buf, size_t len)
    int nl_reader_next(nl_reader *r, nl_frame *f)
    void nl_reader_free(nl_reader *r)
    void nl_decode(const uint8_t *p, uint32_t n, int linktype, int checks, nl_pkt *k)
    int nl_agg_init(nl_agg *g)
    void nl_agg_free(nl_agg *g)
    int nl_agg_run(nl_agg *g, nl_reader *r, int checks)
