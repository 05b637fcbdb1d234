# cython: language_level=3
"""netlab._fastserve: the compiled TCP hot path of the ``selectors`` server model.

:class:`TcpCore` serves the TCP side of RFC 862 echo (and RFC 863 discard) on
a listening socket that Python bound, in an epoll loop that runs with the GIL
released. It does what :mod:`netlab.servers._selectors` does for these two
services, byte for byte and limit for limit, only without a Python object per
event:

* ``accept4`` non-blocking, as many as are queued (64 per event), every
  accepted connection counted; beyond ``max_connections`` a connection is
  accepted and closed at once (``rejected``). When the process runs out of
  descriptors (EMFILE) the listener rests until the next sweep instead of
  waking the loop for ever.
* Per connection an output queue of at most ``out_buffer`` bytes. The loop
  reads only as much as the queue has room for, and stops reading a client
  whose queue is full: its bytes wait in the kernel and TCP flow control slows
  it down. A client that never reads costs one bounded buffer.
* Half-close: at the client's EOF (``shutdown(SHUT_WR)``) what is still owed is
  sent, then the connection is closed.
* Idle timeout: a sweep every 0.25 s closes connections without progress
  either way for ``idle_timeout`` seconds (``timeouts``); ``inf``: never.
* Counters (``connections``, ``bytes_in``, ``bytes_out``, ``active``,
  ``rejected``, ``timeouts``, ``errors``, ``buffered``, ``buffer_peak``) are
  plain C integers that Python reads at any time.

Python keeps the rest: it registers other descriptors with :meth:`TcpCore.watch`
(the stop wake-up pair, the UDP socket) and :meth:`TcpCore.run` returns to it
when one of them is readable, or after ``timeout`` seconds. So the engine
stays one thread: C moves the TCP bytes, Python answers the UDP datagrams
(loop guard, rate limit) and decides when to stop.

Linux only (epoll); elsewhere ``HAVE_EPOLL`` is 0 and netlab serves in Python.
Rebuild after an edit with ``python setup.py build_ext --inplace``.
"""
from libc.stdint cimport int64_t, uint32_t, INT64_MAX
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memmove, memcpy
from libc.errno cimport errno, EAGAIN, EINTR, EMFILE, ENFILE, ENOBUFS, ENOMEM
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

cdef extern from *:
    """
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <netinet/in.h>
    #include <netinet/tcp.h>
    #include <unistd.h>
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif
    #ifdef __linux__
    #include <sys/epoll.h>
    #define NETLAB_HAVE_EPOLL 1
    #else
    /* No epoll or accept4 here: the stand-ins fail, HAVE_EPOLL is 0 and the
       server model keeps to its Python loop. */
    #define NETLAB_HAVE_EPOLL 0
    #define EPOLLIN 1
    #define EPOLLOUT 4
    #define EPOLLERR 8
    #define EPOLLHUP 16
    #define EPOLL_CTL_ADD 1
    #define EPOLL_CTL_DEL 2
    #define EPOLL_CTL_MOD 3
    #define SOCK_NONBLOCK 0
    #define SOCK_CLOEXEC 0
    typedef union epoll_data { void *ptr; int fd; unsigned int u32; unsigned long long u64; } epoll_data_t;
    struct epoll_event { unsigned int events; epoll_data_t data; };
    static int epoll_create1(int f) { (void)f; return -1; }
    static int epoll_ctl(int e, int o, int fd, struct epoll_event *ev) { (void)e; (void)o; (void)fd; (void)ev; return -1; }
    static int epoll_wait(int e, struct epoll_event *ev, int n, int t) { (void)e; (void)ev; (void)n; (void)t; return -1; }
    static int accept4(int fd, void *a, void *l, int f) { (void)fd; (void)a; (void)l; (void)f; return -1; }
    #endif
    #ifndef EPOLL_CLOEXEC
    #define EPOLL_CLOEXEC 0
    #endif
    """
    const int NETLAB_HAVE_EPOLL
    const int MSG_NOSIGNAL
    const unsigned int EPOLLIN
    const unsigned int EPOLLOUT
    const unsigned int EPOLLERR
    const unsigned int EPOLLHUP
    const int EPOLL_CTL_ADD
    const int EPOLL_CTL_DEL
    const int EPOLL_CTL_MOD
    const int SOCK_NONBLOCK
    const int SOCK_CLOEXEC
    const int EPOLL_CLOEXEC
    const int IPPROTO_TCP
    const int TCP_NODELAY
    union epoll_data:
        int fd
    ctypedef epoll_data epoll_data_t
    struct epoll_event:
        unsigned int events
        epoll_data_t data
    int epoll_create1(int flags) nogil
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event) nogil
    int epoll_wait(int epfd, epoll_event *events, int n, int timeout_ms) nogil
    int accept4(int fd, void *addr, void *addrlen, int flags) nogil
    ssize_t send(int fd, const void *buf, size_t n, int flags) nogil
    ssize_t read(int fd, void *buf, size_t n) nogil
    int close(int fd) nogil
    ctypedef unsigned int socklen_t
    int setsockopt(int fd, int level, int name, const void *value, socklen_t length) nogil

#: 1 where the compiled loop can run (Linux: epoll, accept4).
HAVE_EPOLL = NETLAB_HAVE_EPOLL
#: The services this core serves (their TCP side).
SERVICES = ("echo", "discard")

cdef enum:
    RECV_SIZE = 65536       # one read at most, like the Python loop's recv(65536)
    MAX_EVENTS = 256
    ACCEPT_BATCH = 64       # accepts per listener event: take the queue, let others run
    MAX_WATCH = 8           # Python descriptors the loop may watch
    SWEEP_NS = 250000000    # idle sweep period (0.25 s, as in the Python loop)

cdef enum Mode:
    MODE_ECHO = 0
    MODE_DISCARD = 1

cdef struct Conn:
    int fd                  # -1: slot unused
    int read_open           # 0 once the client shut down its sending side
    unsigned int events     # what epoll watches for it now
    char *buf               # queued output (echo), allocated on first need
    size_t off              # queued bytes are buf[off:off + length]
    size_t length
    int64_t last_ns         # last progress either way, for the idle timeout


cdef inline int64_t _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef class TcpCore:
    """The epoll loop of one listening socket; see the module docstring.

    ``TcpCore(listen_fd, service, out_buffer, idle_timeout, max_connections)``.
    The listening descriptor stays Python's (it closes it); the accepted
    connections are the core's, closed by :meth:`close` at the latest.
    """

    cdef int ep, listen_fd, mode, listening, nwatch
    cdef int watch_fds[MAX_WATCH]
    cdef size_t out_buffer
    cdef int64_t idle_ns, next_sweep
    cdef Conn *conns
    cdef int nslots
    cdef char *scratch
    cdef public long long max_connections
    cdef readonly long long connections, bytes_in, bytes_out, active, rejected
    cdef readonly long long timeouts, errors, buffered, buffer_peak

    def __cinit__(self):
        self.ep = -1
        self.conns = NULL
        self.scratch = NULL
        self.nslots = 0

    def __init__(self, int listen_fd, str service, Py_ssize_t out_buffer=65536,
                 double idle_timeout=120.0, long long max_connections=512):
        if not NETLAB_HAVE_EPOLL:
            raise OSError("netlab._fastserve needs epoll (Linux)")
        if service not in SERVICES:
            raise ValueError(f"the compiled core serves {', '.join(SERVICES)}, not {service!r}")
        if out_buffer < 1 or idle_timeout <= 0 or max_connections < 1:
            raise ValueError("out_buffer, idle_timeout and max_connections must be positive")
        self.mode = MODE_ECHO if service == "echo" else MODE_DISCARD
        self.listen_fd = listen_fd
        self.out_buffer = <size_t>out_buffer
        # inf (or anything past 292 years of nanoseconds): no idle limit.
        self.idle_ns = <int64_t>(idle_timeout * 1e9) if idle_timeout < 9.2e9 else INT64_MAX
        self.max_connections = max_connections
        self.scratch = <char *>malloc(RECV_SIZE)
        if self.scratch == NULL:
            raise MemoryError()
        self.ep = epoll_create1(EPOLL_CLOEXEC)
        if self.ep < 0:
            raise OSError(errno, "epoll_create1 failed")
        self._ctl(EPOLL_CTL_ADD, listen_fd, EPOLLIN)
        self.listening = 1
        self.next_sweep = _now() + SWEEP_NS

    cdef int _ctl(self, int op, int fd, unsigned int events) except -1:
        cdef epoll_event ev
        ev.events = events
        ev.data.fd = fd
        if epoll_ctl(self.ep, op, fd, &ev) < 0:
            raise OSError(errno, f"epoll_ctl on descriptor {fd} failed")
        return 0

    def watch(self, int fd) -> int:
        """Also wake for ``fd`` readable; :meth:`run` reports it by its index (a bit)."""
        if self.nwatch >= MAX_WATCH:
            raise ValueError(f"at most {MAX_WATCH} descriptors can be watched")
        self._ctl(EPOLL_CTL_ADD, fd, EPOLLIN)
        self.watch_fds[self.nwatch] = fd
        self.nwatch += 1
        return self.nwatch - 1

    def run(self, double timeout) -> int:
        """Serve TCP for up to ``timeout`` seconds, the GIL released.

        Returns early when a watched descriptor is readable: the result has
        bit ``1 << index`` set for each (0 when the time ran out).
        """
        if self.ep < 0:
            raise ValueError("the core is closed")
        cdef int64_t deadline = _now() + <int64_t>(max(timeout, 0.0) * 1e9)
        cdef unsigned int ready
        with nogil:
            ready = self._loop(deadline)
        return ready

    def close(self):
        """Close every connection and the epoll descriptor (not the listener)."""
        cdef int i
        if self.conns != NULL:
            for i in range(self.nslots):
                if self.conns[i].fd >= 0:
                    self._close_conn(&self.conns[i])
            free(self.conns)
            self.conns = NULL
            self.nslots = 0
        if self.ep >= 0:
            close(self.ep)
            self.ep = -1

    def __dealloc__(self):
        cdef int i
        if self.conns != NULL:
            for i in range(self.nslots):
                if self.conns[i].fd >= 0:
                    close(self.conns[i].fd)
                    free(self.conns[i].buf)
            free(self.conns)
        if self.ep >= 0:
            close(self.ep)
        free(self.scratch)

    # -- the loop (no GIL from here on) ---------------------------------------
    cdef unsigned int _loop(self, int64_t deadline) noexcept nogil:
        cdef epoll_event events[MAX_EVENTS]
        cdef int n, i, k, fd, wait_ms
        cdef unsigned int ready = 0
        cdef int64_t now = _now(), until
        while True:
            if now >= self.next_sweep:
                self._sweep(now)
                self.next_sweep = now + SWEEP_NS
            until = deadline if deadline < self.next_sweep else self.next_sweep
            wait_ms = <int>((until - now + 999999) // 1000000) if until > now else 0
            n = epoll_wait(self.ep, events, MAX_EVENTS, wait_ms)
            now = _now()
            if n < 0:
                if errno != EINTR:
                    self.errors += 1
                    return ready
                n = 0
            for i in range(n):
                fd = events[i].data.fd
                if fd == self.listen_fd:
                    self._accept(now)
                    continue
                if fd < self.nslots and self.conns[fd].fd == fd:
                    self._event(&self.conns[fd], events[i].events, now)
                    continue
                for k in range(self.nwatch):
                    if self.watch_fds[k] == fd:
                        ready |= (<unsigned int>1) << k
            if ready or now >= deadline:
                return ready

    cdef int _slot(self, int fd) noexcept nogil:
        """Make conns[fd] exist; 0 on success, -1 without memory."""
        cdef int size, i
        cdef Conn *grown
        if fd < self.nslots:
            return 0
        size = self.nslots * 2 if self.nslots else 1024
        while size <= fd:
            size *= 2
        grown = <Conn *>realloc(self.conns, size * sizeof(Conn))
        if grown == NULL:
            return -1
        for i in range(self.nslots, size):
            grown[i].fd = -1
            grown[i].buf = NULL
        self.conns = grown
        self.nslots = size
        return 0

    cdef void _accept(self, int64_t now) noexcept nogil:
        cdef int i, fd, one = 1
        cdef Conn *c
        cdef epoll_event ev
        for i in range(ACCEPT_BATCH):
            fd = accept4(self.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)
            if fd < 0:
                if errno == EAGAIN or errno == EINTR:
                    return
                self.errors += 1
                if errno == EMFILE or errno == ENFILE or errno == ENOBUFS or errno == ENOMEM:
                    # Out of descriptors: the queued client would wake us
                    # again at once, for ever. Rest until the next sweep.
                    ev.events = 0
                    ev.data.fd = self.listen_fd
                    epoll_ctl(self.ep, EPOLL_CTL_MOD, self.listen_fd, &ev)
                    self.listening = 0
                    return
                continue  # e.g. ECONNABORTED: that client is gone, take the next
            self.connections += 1
            if self.active >= self.max_connections:
                self.rejected += 1
                close(fd)
                continue
            if self._slot(fd) < 0:
                self.errors += 1
                close(fd)
                continue
            # Small replies go out at once, as in the C yardstick.
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
            ev.events = EPOLLIN
            ev.data.fd = fd
            if epoll_ctl(self.ep, EPOLL_CTL_ADD, fd, &ev) < 0:
                self.errors += 1
                close(fd)
                continue
            c = &self.conns[fd]
            c.fd = fd
            c.read_open = 1
            c.events = EPOLLIN
            c.buf = NULL
            c.off = 0
            c.length = 0
            c.last_ns = now
            self.active += 1

    cdef void _close_conn(self, Conn *c) noexcept nogil:
        # close() also takes it out of the epoll set: nobody else holds it.
        close(c.fd)
        c.fd = -1
        free(c.buf)
        c.buf = NULL
        c.off = 0
        c.length = 0
        self.active -= 1

    cdef int _flush(self, Conn *c, int64_t now) noexcept nogil:
        """Send queued output; 0 ok (maybe partly), -1 the connection broke."""
        cdef ssize_t w
        while c.length:
            w = send(c.fd, c.buf + c.off, c.length, MSG_NOSIGNAL)
            if w < 0:
                if errno == EINTR:
                    continue
                if errno == EAGAIN:
                    return 0
                return -1
            self.bytes_out += w
            c.off += <size_t>w
            c.length -= <size_t>w
            c.last_ns = now
        c.off = 0
        return 0

    cdef int _queue(self, Conn *c, const char *data, size_t n) noexcept nogil:
        """Append ``n`` bytes to the output queue (room was checked); -1 no memory."""
        if c.buf == NULL:
            c.buf = <char *>malloc(self.out_buffer)
            if c.buf == NULL:
                return -1
            c.off = 0
        elif c.off and c.off + c.length + n > self.out_buffer:
            memmove(c.buf, c.buf + c.off, c.length)
            c.off = 0
        memcpy(c.buf + c.off + c.length, data, n)
        c.length += n
        return 0

    cdef void _event(self, Conn *c, unsigned int revents, int64_t now) noexcept nogil:
        cdef size_t room
        cdef ssize_t r, w
        cdef unsigned int want
        if c.read_open and revents & (EPOLLIN | EPOLLHUP | EPOLLERR):
            room = RECV_SIZE
            if self.mode == MODE_ECHO and self.out_buffer - c.length < room:
                room = self.out_buffer - c.length
            if room:
                r = read(c.fd, self.scratch, room)
                if r > 0:
                    self.bytes_in += r
                    c.last_ns = now
                    if self.mode == MODE_ECHO:
                        w = 0
                        if c.length == 0:
                            # The usual case: the reply fits in the socket
                            # buffer and never touches the queue.
                            w = send(c.fd, self.scratch, <size_t>r, MSG_NOSIGNAL)
                            if w < 0:
                                if errno != EAGAIN and errno != EINTR:
                                    self._close_conn(c)
                                    return
                                w = 0
                            self.bytes_out += w
                        if w < r:
                            if self._queue(c, self.scratch + w, <size_t>(r - w)) < 0:
                                self.errors += 1
                                self._close_conn(c)
                                return
                            if c.length > <size_t>self.buffer_peak:
                                self.buffer_peak = c.length
                elif r == 0:
                    c.read_open = 0   # half-close: send what is owed, then close
                elif errno != EAGAIN and errno != EINTR:
                    self._close_conn(c)   # reset, or another fatal error
                    return
        # Write when epoll said so, and also right after a read that queued
        # something, as the Python loop does: the socket may have room by now.
        if c.length:
            if self._flush(c, now) < 0:
                self._close_conn(c)
                return
        if not c.read_open and c.length == 0:
            self._close_conn(c)   # the conversation is over and nothing is owed
            return
        want = 0
        if c.read_open and c.length < self.out_buffer:
            want |= EPOLLIN
        if c.length:
            want |= EPOLLOUT
        if want != c.events:
            c.events = want
            self._mod(c)

    cdef void _mod(self, Conn *c) noexcept nogil:
        cdef epoll_event ev
        ev.events = c.events
        ev.data.fd = c.fd
        epoll_ctl(self.ep, EPOLL_CTL_MOD, c.fd, &ev)

    cdef void _sweep(self, int64_t now) noexcept nogil:
        cdef int i
        cdef long long total = 0
        cdef Conn *c
        cdef epoll_event ev
        for i in range(self.nslots):
            c = &self.conns[i]
            if c.fd < 0:
                continue
            if now - c.last_ns > self.idle_ns:
                self.timeouts += 1
                self._close_conn(c)
            else:
                total += <long long>c.length
        self.buffered = total
        if not self.listening:
            ev.events = EPOLLIN
            ev.data.fd = self.listen_fd
            if epoll_ctl(self.ep, EPOLL_CTL_MOD, self.listen_fd, &ev) == 0:
                self.listening = 1
