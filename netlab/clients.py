"""Clients of the six classic services, for Python callers and the CLI.

TCP clients connect, talk, and read until the server closes. UDP clients send
a datagram and wait ``timeout`` seconds for the reply; UDP promises nothing,
so they send again, ``retries`` more times, and then raise
:class:`~netlab.errors.NetlabError` saying the reply never came. A UDP socket
is *connected* to the server, so only the server's replies are accepted and an
ICMP "port unreachable" is reported at once instead of waiting in vain.

Every function takes ``host`` and ``port`` (default 127.0.0.1 and netlab's
70xx default port of the service) and works with IPv6 literals such as ``::1``.
"""
from __future__ import annotations

import collections
import datetime as _dt
import socket
import threading
from typing import Deque, Iterable, Iterator, List, Optional, Tuple

from netlab.binding import format_url
from netlab.errors import NetlabError
from netlab.services import chargen as _chargen
from netlab.services import table as _table
from netlab.services import time as _time_service

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UDP_TIMEOUT",
    "chargen",
    "daytime",
    "default_port",
    "discard",
    "echo",
    "qotd",
    "tcp_echo",
    "tcp_echo_lines",
    "tcp_request",
    "time",
    "udp_echo",
    "udp_request",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 5.0       # TCP: connect and each read
DEFAULT_UDP_TIMEOUT = 1.0   # UDP: wait for one reply
DEFAULT_RETRIES = 2         # UDP: tries = 1 + retries
_MAX_READ = 1 << 20         # never buffer more than this from a server


def default_port(service: str) -> int:
    """netlab's default port of ``service`` (7000 + the well-known port)."""
    return _table.facts(service).default_port


def _check_proto(proto: str) -> str:
    if proto not in ("tcp", "udp"):
        raise NetlabError(f"protocol must be 'tcp' or 'udp', not {proto!r}")
    return proto


# -- TCP ----------------------------------------------------------------------
def _connect(host: str, port: int, timeout: float) -> socket.socket:
    url = format_url("tcp", host, port)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise NetlabError(f"cannot connect to {url}: connection refused (nothing listens "
                          "there; is the server running, over TCP, on that port?)") from None
    except socket.timeout:
        raise NetlabError(f"cannot connect to {url}: no answer within {timeout:g} s "
                          "(check the host and port, or raise --timeout)") from None
    except socket.gaierror as exc:
        raise NetlabError(f"cannot connect to {url}: unknown host ({exc.strerror}); "
                          "use an address such as 127.0.0.1 or ::1") from None
    except OSError as exc:
        raise NetlabError(f"cannot connect to {url}: {exc.strerror or exc}") from None
    sock.settimeout(timeout)
    return sock


def _read_to_eof(sock: socket.socket, url: str, timeout: float, limit: int = _MAX_READ) -> bytes:
    chunks: List[bytes] = []
    total = 0
    try:
        while total < limit:
            data = sock.recv(min(65536, limit - total))
            if not data:
                break
            chunks.append(data)
            total += len(data)
    except socket.timeout:
        raise NetlabError(f"{url} sent nothing for {timeout:g} s and did not close "
                          "(raise --timeout, or is this the right service?)") from None
    except ConnectionResetError:
        pass  # a reset after the data is still an end; what came is the answer
    return b"".join(chunks)


def tcp_request(host: str, port: int, payload: bytes = b"", timeout: float = DEFAULT_TIMEOUT,
                limit: int = _MAX_READ) -> bytes:
    """Connect, send ``payload``, half-close, return everything until the server closes."""
    url = format_url("tcp", host, port)
    with _connect(host, port, timeout) as sock:
        try:
            if payload:
                sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise NetlabError(f"{url}: sending failed: {exc.strerror or exc}") from None
        return _read_to_eof(sock, url, timeout, limit)


def tcp_echo(host: str, port: int, data: bytes, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """RFC 862 over TCP: send ``data``, half-close, return what came back.

    Sending and receiving run together (see :func:`tcp_echo_lines`), so any
    size works. A server that closes before echoing every byte raises
    :class:`NetlabError` saying how much came back.
    """
    return b"".join(tcp_echo_lines(host, port, [bytes(data)], timeout))


def tcp_echo_lines(host: str, port: int, lines: Iterable[bytes],
                   timeout: float = DEFAULT_TIMEOUT) -> Iterator[bytes]:
    """Send each of ``lines`` and yield its echo, one item per line.

    A thread sends while this generator receives. Sending everything first
    and reading afterwards deadlocks on a big message: the server echoes
    into our receive buffer, that fills, the server stops reading, our send
    buffer fills and both wait for ever. After the last line the client
    half-closes (``shutdown(SHUT_WR)``) and reads until the server closes.

    ``timeout`` applies while an echo is owed; waiting for the next line (a
    person typing) has no limit. Raises :class:`NetlabError` when the server
    closes before echoing everything, or when it goes silent.
    """
    url = format_url("tcp", host, port)
    owed: Deque[bytes] = collections.deque()  # lines sent, not yet echoed in full
    failure: List[BaseException] = []
    finished = threading.Event()
    with _connect(host, port, timeout) as sock:
        def send_all() -> None:
            try:
                for line in lines:
                    if line:
                        owed.append(line)  # before sending: the echo may be quick
                        sock.sendall(line)
                sock.shutdown(socket.SHUT_WR)
            except BaseException as exc:  # noqa: BLE001 - reported by the reader
                failure.append(exc)
            finally:
                finished.set()

        sender = threading.Thread(target=send_all, name="netlab-echo-send", daemon=True)
        sender.start()
        buf = bytearray()
        sent = echoed = 0
        while True:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                if not owed and not finished.is_set():
                    continue  # nothing owed: the next line is still being typed
                if owed:
                    raise NetlabError(f"{url} echoed nothing for {timeout:g} s, "
                                      f"{sum(map(len, owed)) - len(buf)} bytes still owed (a busy "
                                      "server, or not an echo server? raise --timeout)"
                                      ) from None
                raise NetlabError(f"{url} echoed everything but did not close within "
                                  f"{timeout:g} s (raise --timeout)") from None
            except ConnectionResetError:
                data = b""
            except OSError as exc:
                raise NetlabError(f"{url}: {exc.strerror or exc}") from None
            if not data:
                break
            buf += data
            while owed and len(buf) >= len(owed[0]):
                line = owed.popleft()
                size = len(line)
                sent += size
                echoed += size
                reply = bytes(buf[:size])
                del buf[:size]
                yield reply
                if reply != line:
                    raise NetlabError(f"{url} answered {size} bytes that are not the ones "
                                      "sent: not an echo server? (check the port)")
            if not owed and buf and finished.is_set():
                extra = len(buf)
                yield bytes(buf)  # show what came, then say it is not an echo
                raise NetlabError(f"{url} sent {extra} bytes more than it was sent: "
                                  "not an echo server? (check the port)")
        sender.join(timeout)
        if owed or buf:
            total = sent + sum(map(len, owed))
            raise NetlabError(f"{url} closed the connection after echoing "
                              f"{echoed + len(buf)} of {total} bytes")
        if failure and not isinstance(failure[0], (BrokenPipeError, ConnectionResetError)):
            exc = failure[0]
            raise NetlabError(f"{url}: sending failed: "
                              f"{getattr(exc, 'strerror', None) or exc}")


# -- UDP ----------------------------------------------------------------------
def udp_request(host: str, port: int, payload: bytes = b"", timeout: float = DEFAULT_UDP_TIMEOUT,
                retries: int = DEFAULT_RETRIES, bufsize: int = 65535) -> bytes:
    """Send ``payload`` as one datagram and return the reply datagram.

    Sends again after each ``timeout`` without a reply, ``retries`` times, then
    raises NetlabError naming the number of tries.
    """
    url = format_url("udp", host, port)
    tries = 1 + max(0, int(retries))
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise NetlabError(f"cannot reach {url}: unknown host ({exc.strerror}); "
                          "use an address such as 127.0.0.1 or ::1") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            raise NetlabError(f"cannot reach {url}: {exc.strerror or exc}") from None
        for _ in range(tries):
            try:
                sock.send(payload)
                return sock.recv(bufsize)
            except socket.timeout:
                continue
            except ConnectionRefusedError:
                raise NetlabError(
                    f"no reply from {url}: the host answered 'port unreachable' "
                    "(nothing listens on that UDP port; is the server running with UDP?)"
                ) from None
            except OSError as exc:
                raise NetlabError(f"{url}: {exc.strerror or exc}") from None
    raise NetlabError(
        f"no reply from {url} after {tries} tr{'y' if tries == 1 else 'ies'} "
        f"({timeout:g} s each): the datagram or its reply was lost, or no server "
        "answers there (UDP is a letter: nobody tells the sender)")


def udp_echo(host: str, port: int, data: bytes, timeout: float = DEFAULT_UDP_TIMEOUT,
             retries: int = DEFAULT_RETRIES) -> bytes:
    """RFC 862 over UDP: the reply datagram should equal ``data``."""
    return udp_request(host, port, bytes(data), timeout, retries)


# -- by service -----------------------------------------------------------------
def _fetch(service: str, proto: str, host: str, port: Optional[int],
           timeout: Optional[float], retries: int) -> bytes:
    _check_proto(proto)
    port = default_port(service) if port is None else port
    if proto == "tcp":
        return tcp_request(host, port, b"", DEFAULT_TIMEOUT if timeout is None else timeout)
    return udp_request(host, port, b"", DEFAULT_UDP_TIMEOUT if timeout is None else timeout,
                       retries)


def echo(proto: str = "tcp", host: str = DEFAULT_HOST, port: Optional[int] = None,
         data: bytes = b"hello\n", timeout: Optional[float] = None,
         retries: int = DEFAULT_RETRIES) -> bytes:
    """RFC 862 over ``proto``: what came back for ``data``."""
    _check_proto(proto)
    port = default_port("echo") if port is None else port
    if proto == "tcp":
        return tcp_echo(host, port, data, DEFAULT_TIMEOUT if timeout is None else timeout)
    return udp_echo(host, port, data, DEFAULT_UDP_TIMEOUT if timeout is None else timeout,
                    retries)


def discard(proto: str = "tcp", host: str = DEFAULT_HOST, port: Optional[int] = None,
            data: bytes = b"hello\n", timeout: Optional[float] = None) -> int:
    """RFC 863: send ``data`` (nothing comes back); return the bytes sent.

    Over TCP it also waits for the server to close after the half-close, so
    every byte is known to have been read.
    """
    _check_proto(proto)
    port = default_port("discard") if port is None else port
    if proto == "tcp":
        tcp_request(host, port, data, DEFAULT_TIMEOUT if timeout is None else timeout, limit=1)
        return len(data)
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    family, kind, proto_num, _, address = infos[0]
    with socket.socket(family, kind, proto_num) as sock:
        return sock.sendto(data, address)


def _check_not_empty(raw: bytes, service: str, proto: str, host: str,
                     port: Optional[int]) -> None:
    # An empty answer is no answer: RFC 865 and 867 always send text. An echo
    # or discard server reached by mistake closes (or replies) with nothing.
    if not raw:
        url = format_url(proto, host, default_port(service) if port is None else port)
        raise NetlabError(f"{url} answered with nothing (is it a {service} server, "
                          "on that port?)")


def daytime(proto: str = "tcp", host: str = DEFAULT_HOST, port: Optional[int] = None,
            timeout: Optional[float] = None, retries: int = DEFAULT_RETRIES) -> str:
    """RFC 867: the server's date and time line (CR LF stripped)."""
    raw = _fetch("daytime", proto, host, port, timeout, retries)
    _check_not_empty(raw, "daytime", proto, host, port)
    return raw.decode("ascii", errors="replace").rstrip("\r\n")


def qotd(proto: str = "tcp", host: str = DEFAULT_HOST, port: Optional[int] = None,
         timeout: Optional[float] = None, retries: int = DEFAULT_RETRIES) -> str:
    """RFC 865: one quote, lines joined with ``\\n``."""
    raw = _fetch("qotd", proto, host, port, timeout, retries)
    _check_not_empty(raw, "qotd", proto, host, port)
    text = raw.decode("ascii", errors="replace").replace("\r\n", "\n")
    return text.rstrip("\n")


def time(proto: str = "tcp", host: str = DEFAULT_HOST, port: Optional[int] = None,
         timeout: Optional[float] = None,
         retries: int = DEFAULT_RETRIES) -> Tuple[_dt.datetime, int]:
    """RFC 868: ``(UTC datetime, raw 32-bit seconds since 1900)``."""
    raw = _fetch("time", proto, host, port, timeout, retries)
    try:
        return _time_service.decode(raw)
    except ValueError as exc:
        raise NetlabError(f"{format_url(proto, host, port or default_port('time'))}: {exc} "
                          "(is this a time server?)") from None


def chargen(proto: str = "tcp", host: str = DEFAULT_HOST, port: Optional[int] = None,
            lines: int = 10, timeout: Optional[float] = None,
            retries: int = DEFAULT_RETRIES) -> List[str]:
    """RFC 864: over TCP the first ``lines`` lines (CR LF stripped), then close.

    Over UDP each of ``lines`` requests gets one reply datagram (0 to 512
    characters); the list holds one string per reply.
    """
    _check_proto(proto)
    port = default_port("chargen") if port is None else port
    url = format_url(proto, host, port)
    lines = max(0, int(lines))
    if proto == "udp":
        wait = DEFAULT_UDP_TIMEOUT if timeout is None else timeout
        return [udp_request(host, port, b"\n", wait, retries).decode("ascii", "replace")
                for _ in range(lines)]
    wait = DEFAULT_TIMEOUT if timeout is None else timeout
    out: List[str] = []
    buf = b""
    with _connect(host, port, wait) as sock:
        try:
            while len(out) < lines:
                data = sock.recv(65536)
                if not data:
                    break
                buf += data
                while len(out) < lines and b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    out.append(line.rstrip(b"\r").decode("ascii", "replace"))
                if len(buf) > 4 * _chargen.LINE_WIDTH * 1024:
                    raise NetlabError(f"{url} sends no line ends (is it a chargen server?)")
        except socket.timeout:
            raise NetlabError(f"{url} sent no line for {wait:g} s "
                              "(raise --timeout, or is this a chargen server?)") from None
        except ConnectionResetError:
            pass
    return out
