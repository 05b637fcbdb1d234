# cython: language_level=3
"""netlab._netio: the compiled twin of :mod:`netlab._pynetio` (socket fast paths).

Same names, same counter results as the readable Python reference; the
difference is *how* the bytes move:

* UDP sends and receives are batched, up to ``BATCH`` datagrams per system
  call, with ``sendmmsg``/``recvmmsg`` where the OS has them (Linux); elsewhere
  a loop of ``sendmsg``/``recvmsg`` stands in, so the module builds on any POSIX.
* Every loop (stamping, counting, pacing, the TCP pattern check, the echo
  clients' poll loop) runs with the GIL released, so a sender and a receiver in
  two threads of one process use two cores.
* Loops stop at a deadline on the monotonic clock and return to Python, which
  prints progress and turns a pending Ctrl-C into KeyboardInterrupt.

Rebuild after an edit with ``python setup.py build_ext --inplace``.
"""
from libc.stdint cimport uint8_t, uint64_t, int64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memset, memcmp
from libc.errno cimport errno, EAGAIN, EINTR, ECONNREFUSED, ECONNRESET, ETIMEDOUT
from posix.time cimport clock_gettime, nanosleep, timespec, CLOCK_MONOTONIC

import os

cdef extern from *:
    """
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <sys/uio.h>
    #include <poll.h>
    #ifdef __linux__
    #define NETLAB_HAVE_MMSG 1
    #else
    /* No sendmmsg/recvmmsg here: one sendmsg/recvmsg per datagram, same results. */
    #define NETLAB_HAVE_MMSG 0
    struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
    static int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags) {
        unsigned int i;
        for (i = 0; i < n; i++) {
            ssize_t r = sendmsg(fd, &v[i].msg_hdr, flags);
            if (r < 0) return i ? (int)i : -1;
            v[i].msg_len = (unsigned int)r;
        }
        return (int)n;
    }
    static int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, void *t) {
        unsigned int i;
        (void)t;
        for (i = 0; i < n; i++) {
            ssize_t r = recvmsg(fd, &v[i].msg_hdr, flags | (i ? MSG_DONTWAIT : 0));
            if (r < 0) return i ? (int)i : -1;
            v[i].msg_len = (unsigned int)r;
        }
        return (int)n;
    }
    #endif
    #include <sys/time.h>
    #ifndef MSG_WAITFORONE
    #define MSG_WAITFORONE 0
    #endif
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif
    #ifdef __linux__
    #include <sys/epoll.h>
    #define NETLAB_HAVE_EPOLL 1
    #else
    /* No epoll here: EchoLoad falls back to poll(); these stand-ins are never called. */
    #define NETLAB_HAVE_EPOLL 0
    #define EPOLLIN 1
    #define EPOLL_CTL_ADD 1
    #define EPOLL_CTL_DEL 2
    typedef union epoll_data { void *ptr; int fd; unsigned int u32; unsigned long long u64; } epoll_data_t;
    struct epoll_event { unsigned int events; epoll_data_t data; };
    static int epoll_create1(int f) { (void)f; return -1; }
    static int epoll_ctl(int e, int o, int fd, struct epoll_event *ev) { (void)e; (void)o; (void)fd; (void)ev; return -1; }
    static int epoll_wait(int e, struct epoll_event *ev, int n, int t) { (void)e; (void)ev; (void)n; (void)t; return -1; }
    #endif
    #include <unistd.h>
    """
    const int NETLAB_HAVE_MMSG
    const int MSG_DONTWAIT
    const int EWOULDBLOCK
    const int MSG_NOSIGNAL
    const short POLLIN
    const short POLLERR
    const short POLLHUP

    struct iovec:
        void *iov_base
        size_t iov_len

    struct msghdr:
        void *msg_name
        unsigned int msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags

    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len

    struct pollfd:
        int fd
        short events
        short revents

    int sendmmsg(int fd, mmsghdr *vec, unsigned int n, int flags) nogil
    int recvmmsg(int fd, mmsghdr *vec, unsigned int n, int flags, void *timeout) nogil
    ssize_t send(int fd, const void *buf, size_t n, int flags) nogil
    ssize_t recv(int fd, void *buf, size_t n, int flags) nogil
    int poll(pollfd *fds, unsigned long n, int timeout_ms) nogil
    const int NETLAB_HAVE_EPOLL
    const unsigned int EPOLLIN
    const int EPOLL_CTL_ADD
    const int EPOLL_CTL_DEL
    union epoll_data:
        unsigned int u32
    ctypedef epoll_data epoll_data_t
    struct epoll_event:
        unsigned int events
        epoll_data_t data
    int epoll_create1(int flags) nogil
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event) nogil
    int epoll_wait(int epfd, epoll_event *events, int n, int timeout_ms) nogil
    int close(int fd) nogil
    const int SOL_SOCKET
    const int SO_ERROR
    ctypedef unsigned int socklen_t
    int getsockopt(int fd, int level, int name, void *value, socklen_t *length) nogil
    int setsockopt(int fd, int level, int name, const void *value, socklen_t length) nogil
    const int SO_RCVTIMEO
    const int MSG_WAITFORONE
    const int MSG_TRUNC
    struct sockaddr_storage:
        pass
    struct timeval:
        long tv_sec
        long tv_usec

__all__ = [
    "BACKEND",
    "BATCH",
    "EchoLoad",
    "HAVE_MMSG",
    "MAGIC",
    "MAX_GSO_SEGMENTS",
    "MAX_SEQ",
    "NAP_NS",
    "PATTERN_PERIOD",
    "SMALL_WAKE",
    "STAMP_SIZE",
    "UdpCounters",
    "encode_stamp",
    "monotonic_ns",
    "parse_stamp",
    "pattern",
    "ping_pong",
    "tcp_discard",
    "tcp_recv",
    "tcp_send",
    "udp_echo",
    "udp_recv",
    "udp_send",
]

BACKEND = "cython"
HAVE_MMSG = bool(NETLAB_HAVE_MMSG)
cdef enum:
    _BATCH = 64
BATCH = _BATCH
MAGIC = b"NLB1"
STAMP_SIZE = 20
MAX_SEQ = (1 << 28) - 1
PATTERN_PERIOD = 251
# Drain-then-nap receiver (see udp_recv): the nap, and the fewest datagrams
# a wake-up must bring to be worth it. The values are the twin's.
NAP_NS = 100_000
SMALL_WAKE = 16
MAX_GSO_SEGMENTS = 64      # the kernel's UDP_MAX_SEGMENTS
cdef long long _SMALL_WAKE = SMALL_WAKE

cdef uint64_t _MAX_SEQ = (1 << 28) - 1
cdef int _PERIOD = 251


# --- clock and stamps -------------------------------------------------------

cdef inline int64_t _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline void _sleep_ns(int64_t ns) noexcept nogil:
    cdef timespec ts
    if ns <= 0:
        return
    ts.tv_sec = ns // 1000000000
    ts.tv_nsec = ns % 1000000000
    nanosleep(&ts, NULL)


cdef inline void _put_u64(uint8_t *p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(7, -1, -1):
        p[i] = v & 0xFF
        v >>= 8


cdef inline uint64_t _get_u64(const uint8_t *p) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(8):
        v = (v << 8) | p[i]
    return v


cdef inline void _stamp(uint8_t *p, uint64_t seq, int64_t send_ns) noexcept nogil:
    p[0] = 78; p[1] = 76; p[2] = 66; p[3] = 49   # b"NLB1"
    _put_u64(p + 4, seq)
    _put_u64(p + 12, <uint64_t>send_ns)


cdef inline bint _is_stamp(const uint8_t *p, Py_ssize_t n) noexcept nogil:
    return n >= 20 and p[0] == 78 and p[1] == 76 and p[2] == 66 and p[3] == 49


cdef inline void _put_seq(uint8_t *p, Py_ssize_t size, uint64_t seq) noexcept nogil:
    # The ping-pong request number in its first (up to) 8 bytes, big-endian.
    cdef Py_ssize_t i, k = size if size < 8 else 8
    for i in range(k - 1, -1, -1):
        p[i] = seq & 0xFF
        seq >>= 8


def monotonic_ns():
    """The monotonic clock in ns (the clock of ``time.monotonic_ns``)."""
    return _now()


def encode_stamp(unsigned long long seq, long long send_ns, Py_ssize_t size=20):
    """A datagram of ``size`` bytes (at least STAMP_SIZE) stamped with seq and time."""
    if size < 20:
        raise ValueError(f"a stamped datagram needs at least 20 bytes, got {size}")
    out = bytearray(size)
    cdef uint8_t[::1] view = out
    _stamp(&view[0], seq, send_ns)
    return bytes(out)


def parse_stamp(data):
    """``(seq, send_ns)`` of a stamped datagram, or None when it carries no stamp."""
    cdef const uint8_t[::1] view = memoryview(data).cast("B")
    if not _is_stamp(&view[0] if view.shape[0] else NULL, view.shape[0]):
        return None
    return _get_u64(&view[4]), _get_u64(&view[12])


# --- the receiver's counters ------------------------------------------------

cdef class UdpCounters:
    """What the receiver of stamped datagrams saw (see :class:`netlab._pynetio.UdpCounters`).

    ``received`` distinct datagrams, ``duplicated`` extra copies, ``reordered``
    (arrived after a higher sequence number, RFC 4737), ``foreign`` (no stamp),
    and the RFC 3550 interarrival jitter ``jitter_ns``.
    """
    cdef readonly unsigned long long received, duplicated, reordered, foreign, bytes
    cdef readonly long long highest_seq
    cdef readonly double jitter_ns
    cdef int64_t _last_transit
    cdef uint8_t *_seen
    cdef size_t _seen_len
    cdef bint _nomem

    def __cinit__(self):
        self.highest_seq = -1
        self._seen = NULL
        self._seen_len = 0

    def __dealloc__(self):
        free(self._seen)

    cdef void _feed(self, const uint8_t *p, Py_ssize_t n, int64_t arrival_ns) noexcept nogil:
        cdef uint64_t seq
        cdef int64_t send_ns, transit, d
        cdef size_t byte, want
        cdef uint8_t bit
        cdef uint8_t *grown
        if not _is_stamp(p, n):
            self.foreign += 1
            return
        seq = _get_u64(p + 4)
        if seq > _MAX_SEQ:
            self.foreign += 1
            return
        send_ns = <int64_t>_get_u64(p + 12)
        byte = seq >> 3
        bit = 1 << (seq & 7)
        if byte >= self._seen_len:
            # Grow by doubling (as the twin does), zero-filling the new part.
            want = max(byte + 1, 2 * self._seen_len, <size_t>4096)
            grown = <uint8_t *>realloc(self._seen, want)
            if grown == NULL:
                self._nomem = True
                self.foreign += 1
                return
            memset(grown + self._seen_len, 0, want - self._seen_len)
            self._seen = grown
            self._seen_len = want
        if self._seen[byte] & bit:
            self.duplicated += 1
            return
        self._seen[byte] |= bit
        self.received += 1
        self.bytes += n
        if <long long>seq < self.highest_seq:
            self.reordered += 1
        else:
            self.highest_seq = <long long>seq
        transit = arrival_ns - send_ns
        if self.received > 1:
            d = transit - self._last_transit
            if d < 0:
                d = -d
            self.jitter_ns += (<double>d - self.jitter_ns) / 16.0
        self._last_transit = transit

    def feed(self, data, long long arrival_ns):
        """Count one datagram that arrived at ``arrival_ns`` (monotonic clock)."""
        cdef const uint8_t[::1] view = memoryview(data).cast("B")
        cdef Py_ssize_t n = view.shape[0]
        self._feed(&view[0] if n else NULL, n, arrival_ns)
        self._check()

    cdef _check(self):
        if self._nomem:
            raise MemoryError("no memory for the duplicate detector of UdpCounters")

    def result(self):
        """The counters as a dict (jitter in microseconds)."""
        return {
            "received": self.received,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "foreign": self.foreign,
            "bytes": self.bytes,
            "highest_seq": self.highest_seq,
            "jitter_us": round(self.jitter_ns / 1000.0, 3),
        }


# --- UDP sender and receiver ------------------------------------------------

def udp_send(sock, Py_ssize_t size, unsigned long long seq, long long t0_ns, double rate,
             long long deadline_ns, int gso=0):
    """Send stamped datagrams numbered ``seq, seq+1, ...`` until ``deadline_ns``.

    Up to BATCH datagrams per ``sendmmsg``, all stamped with the time of the
    call. With ``rate`` > 0 datagram ``k`` is due at ``t0_ns + k / rate`` s.
    With ``gso`` > 0 (the socket has UDP_SEGMENT set to ``size``) every
    message carries ``gso`` datagrams back to back, which the kernel cuts
    apart: BATCH x gso datagrams per call. Returns ``(sent, errors, last_errno)``.
    """
    if size < 20:
        raise ValueError(f"a stamped datagram needs at least 20 bytes, got {size}")
    if gso < 0 or gso > MAX_GSO_SEGMENTS or (gso and rate > 0):
        raise ValueError("gso: 0 or 1-64 segments per message, and not with a paced rate")
    cdef int seg = gso if gso > 0 else 1
    cdef int fd = sock.fileno()
    cdef uint8_t *bufs = <uint8_t *>calloc(_BATCH * seg, size)
    cdef iovec iov[_BATCH]
    cdef mmsghdr msgs[_BATCH]
    cdef unsigned long long sent = 0, errors = 0
    cdef int last_errno = 0, i, r, n, pending_error, calls = 0
    cdef bint probe = False
    cdef socklen_t elen
    cdef int64_t now, due, count
    cdef double interval = 1e9 / rate if rate > 0 else 0.0
    if bufs == NULL:
        raise MemoryError()
    memset(msgs, 0, sizeof(msgs))
    for i in range(_BATCH):
        iov[i].iov_base = bufs + i * seg * size
        iov[i].iov_len = seg * size
        msgs[i].msg_hdr.msg_iov = &iov[i]
        msgs[i].msg_hdr.msg_iovlen = 1
    with nogil:
        now = _now()
        while now < deadline_ns:
            n = 1 if probe else _BATCH
            if interval > 0:
                # How many datagrams are due by now on the schedule t0 + k*interval?
                count = <int64_t>((now - t0_ns) / interval) + 1 - <int64_t>seq
                if count <= 0:
                    due = t0_ns + <int64_t>(seq * interval)
                    _sleep_ns((due if due < deadline_ns else deadline_ns) - now)
                    now = _now()
                    continue
                if count < n:
                    n = <int>count
            for i in range(n * seg):
                _stamp(bufs + i * size, seq + i, now)
            r = sendmmsg(fd, msgs, n, 0)
            if r < 0:
                errors += 1
                last_errno = errno
                if last_errno == ECONNREFUSED:
                    _sleep_ns(1000000)   # nobody listens yet: do not spin
            else:
                sent += r * seg
                seq += r * seg
                calls += 1
                if probe or calls % 64 == 0:
                    # sendmmsg loses an error met after the first datagram of a
                    # batch (e.g. ECONNREFUSED, from the ICMP port unreachable
                    # the first one caused), and a short batch is all we see.
                    # So after a short batch send one datagram alone and ask
                    # the socket for its pending error, as the twin would see it.
                    pending_error = 0
                    elen = sizeof(pending_error)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending_error, &elen)
                    if pending_error:
                        errors += 1
                        last_errno = pending_error
                        if pending_error == ECONNREFUSED:
                            _sleep_ns(1000000)
                probe = r < n
            now = _now()
        pending_error = 0
        elen = sizeof(pending_error)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending_error, &elen)
        if pending_error:
            errors += 1
            last_errno = pending_error
    free(bufs)
    return sent, errors, last_errno


def udp_recv(sock, UdpCounters counters, long long deadline_ns, Py_ssize_t bufsize=65536,
             long long nap_ns=NAP_NS):
    """Receive datagrams into ``counters`` until ``deadline_ns``; return how many.

    Drain, then nap *when napping pays* (the twin's algorithm, see
    :func:`netlab._pynetio.udp_recv`): each wake-up drains the queue, up to
    BATCH datagrams per ``recvmmsg``. A blocking wake-up that brought fewer
    than SMALL_WAKE datagrams was not worth it, so the next wait is a nap of
    ``nap_ns``; a nap that brought fewer than SMALL_WAKE means the rate is
    low, so the next wait blocks (10 ms kernel timeout, SO_RCVTIMEO).
    ``nap_ns=0`` always blocks (the old design).
    """
    cdef int fd = sock.fileno()
    cdef uint8_t *bufs = <uint8_t *>malloc(_BATCH * bufsize)
    cdef iovec iov[_BATCH]
    cdef mmsghdr msgs[_BATCH]
    cdef timeval tv
    cdef long long got = 0, wake = 0
    cdef int i, r, err = 0
    cdef bint napping = False
    cdef int64_t now
    if bufs == NULL:
        raise MemoryError()
    memset(msgs, 0, sizeof(msgs))
    for i in range(_BATCH):
        iov[i].iov_base = bufs + i * bufsize
        iov[i].iov_len = bufsize
        msgs[i].msg_hdr.msg_iov = &iov[i]
        msgs[i].msg_hdr.msg_iovlen = 1
    tv.tv_sec = 0
    tv.tv_usec = 10000
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))
    with nogil:
        while True:
            # Napping: take what is queued without blocking. Blocking: wait for
            # the first datagram (MSG_WAITFORONE returns with whatever else came).
            r = recvmmsg(fd, msgs, _BATCH, MSG_DONTWAIT if napping else MSG_WAITFORONE, NULL)
            if r < 0:
                if errno == EAGAIN or errno == EWOULDBLOCK or errno == EINTR:
                    if _now() >= deadline_ns:
                        break
                    napping = False   # a nap found nothing (or a block timed out): block
                    wake = 0
                    continue
                if errno == ECONNREFUSED:
                    continue     # an ICMP error queued on the socket, not a datagram
                err = errno
                break
            now = _now()
            for i in range(r):
                counters._feed(bufs + i * bufsize, msgs[i].msg_len, now)
            got += r
            wake += r
            if now >= deadline_ns:
                break
            if r < _BATCH:
                # Drained: this wake-up is over. Was it worth it?
                if nap_ns > 0:
                    napping = wake >= _SMALL_WAKE if napping else wake < _SMALL_WAKE
                wake = 0
                if napping:
                    _sleep_ns(nap_ns)   # let the next batch fill up
    free(bufs)
    counters._check()
    if err:
        raise OSError(err, os.strerror(err))
    return got


# --- UDP echo and ping-pong (bench latency) ----------------------------------

def udp_echo(sock, long long deadline_ns):
    """Echo every datagram on ``sock`` back to its sender until ``deadline_ns``.

    A batch per ``recvmmsg`` (blocking for the first datagram, 10 ms kernel
    timeout) answered by one ``sendmmsg`` to the senders' addresses. Returns
    the datagrams echoed; a reply that cannot be sent is dropped, as UDP may.
    """
    cdef int fd = sock.fileno()
    cdef Py_ssize_t bufsize = 65536
    cdef uint8_t *bufs = <uint8_t *>malloc(_BATCH * bufsize)
    cdef sockaddr_storage *names = <sockaddr_storage *>calloc(_BATCH, sizeof(sockaddr_storage))
    cdef iovec iov[_BATCH]
    cdef mmsghdr msgs[_BATCH]
    cdef timeval tv
    cdef long long echoed = 0
    cdef int i, r, s, off, err = 0
    if bufs == NULL or names == NULL:
        free(bufs); free(names)
        raise MemoryError()
    memset(msgs, 0, sizeof(msgs))
    for i in range(_BATCH):
        iov[i].iov_base = bufs + i * bufsize
        msgs[i].msg_hdr.msg_iov = &iov[i]
        msgs[i].msg_hdr.msg_iovlen = 1
        msgs[i].msg_hdr.msg_name = &names[i]
    tv.tv_sec = 0
    tv.tv_usec = 10000
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))
    with nogil:
        while _now() < deadline_ns:
            for i in range(_BATCH):
                iov[i].iov_len = bufsize
                msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            r = recvmmsg(fd, msgs, _BATCH, MSG_WAITFORONE, NULL)
            if r < 0:
                if errno == EAGAIN or errno == EWOULDBLOCK or errno == EINTR or errno == ECONNREFUSED:
                    continue
                err = errno
                break
            for i in range(r):
                iov[i].iov_len = msgs[i].msg_len   # send back exactly what came
            off = 0
            while off < r:
                s = sendmmsg(fd, msgs + off, r - off, 0)
                if s <= 0:
                    off += 1          # skip the datagram that could not go out
                else:
                    echoed += s
                    off += s
    free(bufs)
    free(names)
    if err:
        raise OSError(err, os.strerror(err))
    return echoed


def ping_pong(sock, Py_ssize_t size, unsigned long long seq, long long deadline_ns,
              bint udp, long long timeout_ns=200000000):
    """Round trips of ``size`` bytes on a connected ``sock`` until ``deadline_ns``.

    See :func:`netlab._pynetio.ping_pong`: returns ``(samples_ns, lost)``;
    requests carry ``seq`` onwards in their first bytes, and a UDP reply that
    is not the request just sent (a late answer to an earlier one) is ignored.
    """
    cdef int fd = sock.fileno()
    cdef uint8_t *req = <uint8_t *>calloc(max(size, 1), 1)
    cdef uint8_t *buf = <uint8_t *>malloc(max(size, 1) + 1)
    cdef int64_t *samples = <int64_t *>malloc(4096 * sizeof(int64_t))
    cdef int64_t *grown
    cdef size_t n = 0, cap = 4096
    cdef Py_ssize_t off, want
    cdef ssize_t r
    cdef int64_t t0, wait_end
    cdef long long lost = 0
    cdef int err = 0, i
    cdef size_t j
    cdef bint nomem = False, answered
    cdef timeval tv
    if req == NULL or buf == NULL or samples == NULL:
        free(req); free(buf); free(samples)
        raise MemoryError()
    for i in range(size):
        req[i] = i % 251
    tv.tv_sec = 0
    tv.tv_usec = 10000
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))
    with nogil:
        while _now() < deadline_ns and err == 0:
            _put_seq(req, size, seq)
            t0 = _now()
            off = 0
            while off < size:
                r = send(fd, req + off, size - off, MSG_NOSIGNAL)
                if r < 0:
                    if errno == EINTR or errno == EAGAIN:
                        continue
                    err = errno
                    break
                off += r
                if udp:
                    break
            if err:
                if udp and err == ECONNREFUSED:
                    err = 0       # no echo there (yet): count it lost, go on
                    lost += 1
                    seq += 1
                    _sleep_ns(1000000)
                    continue
                break
            answered = False
            wait_end = t0 + timeout_ns
            off = 0
            while _now() < wait_end:
                want = size + 1 if udp else size - off
                r = recv(fd, buf + (0 if udp else off), want, 0)
                if r < 0:
                    if errno == EAGAIN or errno == EWOULDBLOCK or errno == EINTR:
                        continue
                    if udp and errno == ECONNREFUSED:
                        break
                    err = errno
                    break
                if udp:
                    if r == size and memcmp(buf, req, size) == 0:
                        answered = True
                        break
                    continue       # a late or foreign reply
                if r == 0:
                    err = ECONNRESET
                    break
                off += r
                if off == size:
                    answered = True
                    break
            if answered:
                if n == cap:
                    grown = <int64_t *>realloc(samples, 2 * cap * sizeof(int64_t))
                    if grown == NULL:
                        nomem = True
                        break
                    samples = grown
                    cap *= 2
                samples[n] = _now() - t0
                n += 1
            elif err == 0:
                if not udp:
                    err = ETIMEDOUT   # a stream that stops answering is broken
                    break
                lost += 1
            seq += 1
    out = [samples[j] for j in range(n)]
    free(req); free(buf); free(samples)
    if nomem:
        raise MemoryError("no memory for more round-trip samples")
    if err:
        raise OSError(err, os.strerror(err))
    return out, lost


# --- TCP bulk transfer ------------------------------------------------------

def pattern(Py_ssize_t length):
    """``length + PATTERN_PERIOD`` bytes of the TCP test stream from offset 0."""
    out = bytearray(length + 251)
    cdef uint8_t[::1] view = out
    cdef Py_ssize_t i
    for i in range(length + 251):
        view[i] = i % 251
    return bytes(out)


def tcp_send(sock, const uint8_t[::1] pat, Py_ssize_t bufsize, unsigned long long offset,
             long long deadline_ns):
    """Write the test stream from ``offset`` in blocks of ``bufsize`` until the deadline."""
    if pat.shape[0] < bufsize + 251:
        raise ValueError("pattern too short for bufsize")
    cdef int fd = sock.fileno()
    cdef unsigned long long total = 0
    cdef ssize_t r
    cdef int err = 0
    with nogil:
        while _now() < deadline_ns:
            r = send(fd, &pat[(offset + total) % 251], bufsize, MSG_NOSIGNAL)
            if r < 0:
                if errno == EAGAIN or errno == EWOULDBLOCK or errno == EINTR:
                    continue
                err = errno
                break
            total += r
    if err:
        raise OSError(err, os.strerror(err))
    return total


def tcp_recv(sock, const uint8_t[::1] pat, uint8_t[::1] buf, unsigned long long offset,
             long long deadline_ns):
    """Read and check the test stream until the deadline or end of stream.

    Returns ``(received, mismatched, eof)`` like the twin.
    """
    cdef Py_ssize_t bufsize = buf.shape[0]
    if pat.shape[0] < bufsize + 251:
        raise ValueError("pattern too short for the receive buffer")
    cdef int fd = sock.fileno()
    cdef unsigned long long got = 0, bad = 0
    cdef ssize_t r
    cdef int err = 0
    cdef bint eof = False
    with nogil:
        while _now() < deadline_ns:
            r = recv(fd, &buf[0], bufsize, 0)
            if r < 0:
                if errno == EAGAIN or errno == EWOULDBLOCK or errno == EINTR:
                    continue
                err = errno
                break
            if r == 0:
                eof = True
                break
            if memcmp(&buf[0], &pat[(offset + got) % 251], r) != 0:
                bad += r
            got += r
    if err:
        raise OSError(err, os.strerror(err))
    return got, bad, eof


def tcp_discard(sock, Py_ssize_t bufsize, long long deadline_ns):
    """Read the stream without copying it (``MSG_TRUNC``) until the deadline or end.

    Linux drops up to ``bufsize`` bytes from the receive queue per call and
    says how many: the receiver touches no byte. Returns ``(received, eof)``.
    """
    cdef int fd = sock.fileno()
    cdef unsigned long long got = 0
    cdef ssize_t r
    cdef int err = 0
    cdef bint eof = False
    # Never written for TCP; there in case a caller hands us another socket.
    cdef uint8_t *sink = <uint8_t *>malloc(max(bufsize, 1))
    if sink == NULL:
        raise MemoryError()
    with nogil:
        while _now() < deadline_ns:
            r = recv(fd, sink, bufsize, MSG_TRUNC)
            if r < 0:
                if errno == EAGAIN or errno == EWOULDBLOCK or errno == EINTR:
                    continue
                err = errno
                break
            if r == 0:
                eof = True
                break
            got += r
    free(sink)
    if err:
        raise OSError(err, os.strerror(err))
    return got, eof


# --- echo clients -----------------------------------------------------------

cdef class EchoLoad:
    """N echo connections in a closed loop, epoll (or poll) with the GIL released.

    See :class:`netlab._pynetio.EchoLoad`; the sockets must stay open while
    the load runs (this object keeps a reference to them).
    """
    cdef object socks
    cdef readonly Py_ssize_t size
    cdef readonly unsigned long long round_trips, errors
    cdef int n, live
    cdef bint started
    cdef pollfd *pfds
    cdef Py_ssize_t *pending
    cdef int64_t *sent_at
    cdef unsigned long long *done
    cdef int64_t *samples
    cdef size_t nsamples, cap
    cdef uint8_t *request
    cdef uint8_t *buf
    cdef int ep                       # epoll instance (Linux), -1: use poll()
    cdef epoll_event *events

    def __cinit__(self, socks, Py_ssize_t size):
        self.ep = -1
        self.socks = list(socks)
        self.n = len(self.socks)
        self.live = self.n
        self.size = size
        self.pfds = <pollfd *>calloc(max(self.n, 1), sizeof(pollfd))
        self.pending = <Py_ssize_t *>calloc(max(self.n, 1), sizeof(Py_ssize_t))
        self.sent_at = <int64_t *>calloc(max(self.n, 1), sizeof(int64_t))
        self.done = <unsigned long long *>calloc(max(self.n, 1), sizeof(unsigned long long))
        self.cap = 65536
        self.samples = <int64_t *>malloc(self.cap * sizeof(int64_t))
        self.request = <uint8_t *>malloc(max(size, 1))
        self.buf = <uint8_t *>malloc(max(size, 4096))
        if (self.pfds == NULL or self.pending == NULL or self.sent_at == NULL or self.done == NULL
                or self.samples == NULL or self.request == NULL or self.buf == NULL):
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(size):
            self.request[i] = i % 251
        for i in range(self.n):
            self.pfds[i].fd = self.socks[i].fileno()
            self.pfds[i].events = POLLIN
        # epoll costs O(ready connections) per wake-up where poll() costs
        # O(all of them): with 50 clients that is most of the client's CPU.
        cdef epoll_event ev
        if NETLAB_HAVE_EPOLL:
            self.events = <epoll_event *>calloc(max(self.n, 1), sizeof(epoll_event))
            if self.events == NULL:
                raise MemoryError()
            self.ep = epoll_create1(0)
            for i in range(self.n):
                if self.ep < 0:
                    break
                ev.events = EPOLLIN
                ev.data.u32 = <unsigned int>i
                if epoll_ctl(self.ep, EPOLL_CTL_ADD, self.pfds[i].fd, &ev) < 0:
                    close(self.ep)
                    self.ep = -1

    def __dealloc__(self):
        if self.ep >= 0:
            close(self.ep)
        free(self.events)
        free(self.pfds); free(self.pending); free(self.sent_at); free(self.done)
        free(self.samples); free(self.request); free(self.buf)

    cdef void _drop(self, int i) noexcept nogil:
        if self.pfds[i].fd >= 0:
            if self.ep >= 0:
                epoll_ctl(self.ep, EPOLL_CTL_DEL, self.pfds[i].fd, NULL)
            self.pfds[i].fd = -1       # poll() skips negative descriptors
            self.errors += 1
            self.live -= 1

    cdef void _fire(self, int i) noexcept nogil:
        cdef Py_ssize_t off = 0
        cdef ssize_t r
        self.sent_at[i] = _now()
        while off < self.size:
            r = send(self.pfds[i].fd, self.request + off, self.size - off, MSG_NOSIGNAL)
            if r < 0:
                if errno == EINTR or errno == EAGAIN:
                    continue
                self._drop(i)
                return
            off += r
        self.pending[i] = self.size

    cdef bint _record(self, int64_t rtt) noexcept nogil:
        cdef int64_t *grown
        if self.nsamples == self.cap:
            grown = <int64_t *>realloc(self.samples, 2 * self.cap * sizeof(int64_t))
            if grown == NULL:
                return False
            self.samples = grown
            self.cap *= 2
        self.samples[self.nsamples] = rtt
        self.nsamples += 1
        return True

    cdef bint _ready(self, int i, unsigned long long *done) noexcept nogil:
        # Connection i can be read: take what came back; when the whole
        # request is back, record the round trip and send the next one.
        # Returns False only when there was no memory to record the sample.
        cdef ssize_t k
        cdef bint ok = True
        if self.pfds[i].fd < 0:
            return True
        k = recv(self.pfds[i].fd, self.buf, self.pending[i], MSG_DONTWAIT)
        if k < 0:
            if errno != EAGAIN and errno != EWOULDBLOCK and errno != EINTR:
                self._drop(i)
            return True
        if k == 0:
            self._drop(i)
            return True
        self.pending[i] -= k
        if self.pending[i] == 0:
            ok = self._record(_now() - self.sent_at[i])
            self.done[i] += 1
            done[0] += 1
            self._fire(i)
        return ok

    def run(self, long long deadline_ns):
        """Keep the loop going until ``deadline_ns``; return round trips in this call."""
        cdef unsigned long long done = 0
        cdef int i, j, r
        cdef int64_t left
        cdef bint nomem = False
        with nogil:
            if not self.started:
                self.started = True
                for i in range(self.n):
                    self._fire(i)
            while self.live > 0:
                left = deadline_ns - _now()
                if left <= 0:
                    break
                if self.ep >= 0:
                    r = epoll_wait(self.ep, self.events, self.n, <int>((left + 999999) // 1000000))
                    for j in range(r):
                        if not self._ready(<int>self.events[j].data.u32, &done):
                            nomem = True
                    continue
                r = poll(self.pfds, self.n, <int>((left + 999999) // 1000000))
                if r <= 0:
                    continue
                for i in range(self.n):
                    if self.pfds[i].fd >= 0 and (self.pfds[i].revents & (POLLIN | POLLERR | POLLHUP)):
                        if not self._ready(i, &done):
                            nomem = True
        self.round_trips += done
        if nomem:
            raise MemoryError("no memory for more round-trip samples")
        return done

    def latencies(self):
        """Every round-trip time measured so far, in ns, in completion order."""
        cdef size_t i
        return [self.samples[i] for i in range(self.nsamples)]

    def per_client(self):
        """Round trips completed by each connection (0: it never got an answer)."""
        cdef int i
        return [self.done[i] for i in range(self.n)]

    def close(self):
        """Release the epoll instance now (like the twin closing its selector)."""
        if self.ep >= 0:
            close(self.ep)
            self.ep = -1
