"""The asyncio model: one event loop in a background thread, one task per client.

The same non-blocking idea as the selectors model, written with coroutines:
``await reader.read()`` and ``await writer.drain()`` instead of hand-written
readiness bookkeeping. Flow control comes from the transport's write-buffer
limits: ``drain()`` waits while more than ``out_buffer`` bytes are queued, so
a chargen client that never reads holds one buffer, not a growing heap.
"""
from __future__ import annotations

import asyncio
import select
import threading
from typing import Dict

from netlab import services
from netlab.servers._common import (LINGER_SECONDS, RECV_SIZE, REST_SECONDS, handle_datagram,
                                    listener_must_rest)
from netlab.servers._engine import Engine

__all__ = ["AsyncioEngine"]

# chargen writes this much per event-loop turn: large enough that a lone
# client loses nothing to the extra turns, small enough that 200 readers
# still leave a fresh client a turn soon.
_CHUNK = 65536
# Streaming writes (all connections together) between two looks at the
# listener: a fresh client waits for at most this many chunks, not a whole
# loop turn with a chunk for every reader.
_PEEK_EVERY = 16
_SWEEP = 0.25  # seconds between idle sweeps


class AsyncioEngine(Engine):
    model = "asyncio"

    def run(self) -> None:
        try:
            self._run_loop()
        finally:
            self._ready.set()  # never leave start() waiting, even after a failure

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        # asyncio would log e.g. "socket.send() raised exception" to stderr;
        # a server that a learner watches counts such events instead.
        loop.set_exception_handler(lambda _loop, _ctx: self.stats.add("errors"))
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._done = asyncio.Event()
        self._watches: Dict[asyncio.Task, _Watch] = {}
        self._arriving = 0
        self._writes = 0
        self._resting = False
        loop = asyncio.get_running_loop()
        listener = self.socks.get("tcp")
        self._peek = select.poll()
        if listener is not None:
            self._peek.register(listener, select.POLLIN)
        udp = self.socks.get("udp")
        if listener is not None:
            # accept() by hand rather than asyncio.start_server(): the engine
            # knows when clients are arriving (chargen then lets them in first)
            # and rests the listener when out of descriptors, like every model.
            loop.add_reader(listener, self._accept, listener)
        if udp is not None:
            # The same datagram handler as every other model, on the loop's
            # readiness callback: asyncio's datagram transport would queue what
            # the kernel refuses (and count it as sent), cannot send an empty
            # datagram and cannot choose the reply's source address.
            udp_service = services.udp_service(self.service)
            loop.add_reader(udp, self._datagrams, udp, udp_service)
        loop.add_reader(self._wake_r, self._woken)
        sweeper = asyncio.ensure_future(self._sweep())
        self._ready.set()
        if self.stopping.is_set():
            self._done.set()
        await self._done.wait()
        loop.remove_reader(self._wake_r)
        if listener is not None:
            loop.remove_reader(listener)
        sweeper.cancel()
        tasks = [sweeper, *self._watches]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if udp is not None:
            loop.remove_reader(udp)
        # Connections accepted in the last turns have tasks that have not run
        # yet; let them start, see the stop and close their transports.
        for _ in range(10):
            others = asyncio.all_tasks() - {asyncio.current_task()}
            if not others:
                break
            await asyncio.wait(others, timeout=0.5)
        await asyncio.sleep(0)  # let transports run their close callbacks

    def _woken(self) -> None:
        self.drain_wake()  # a signal (see Engine.wakeup_fd) or stop()
        self._done.set()

    def _accept(self, listener) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(64):  # what is queued, but let the connected clients run too
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if listener_must_rest(exc, self.stats):
                    self._resting = True
                    loop.remove_reader(listener)
                    loop.call_later(REST_SECONDS, self._listen_again, listener)
                    return
                continue
            conn.setblocking(False)
            self._arriving += 1
            asyncio.ensure_future(self._arrive(conn))

    def _listen_again(self, listener) -> None:
        self._resting = False
        if not self._done.is_set():
            asyncio.get_running_loop().add_reader(listener, self._accept, listener)

    def _peek_listener(self) -> None:
        """Take waiting clients now, in the middle of a busy loop turn."""
        if not self._resting and not self._done.is_set() and self._peek.poll(0):
            self._accept(self.socks["tcp"])

    async def _arrive(self, conn) -> None:
        """Wrap an accepted socket in asyncio streams, then serve it."""
        try:
            reader, writer = await asyncio.open_connection(sock=conn, limit=RECV_SIZE)
        except (OSError, asyncio.CancelledError):
            conn.close()
            return
        finally:
            self._arriving -= 1
        await self._client(reader, writer)

    def _datagrams(self, udp, udp_service) -> None:
        for _ in range(64):  # what is queued, but let the TCP clients run too
            if not handle_datagram(udp, udp_service, self.guard, self.stats):
                return

    def start(self) -> None:
        self._ready = threading.Event()
        super().start()
        self._ready.wait(5.0)

    def interrupt(self) -> None:
        loop = getattr(self, "_loop", None)
        done = getattr(self, "_done", None)
        if loop is not None and done is not None:
            try:
                loop.call_soon_threadsafe(done.set)
            except RuntimeError:  # loop already closed
                pass

    # -- one client -----------------------------------------------------------
    # Idle limit: rather than wrapping every read in asyncio.wait_for (a new
    # task per read, which halves the round-trip rate), each connection notes
    # when it last made progress and one sweeper aborts the silent ones.
    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_SWEEP)
            now = loop.time()
            for watch in list(self._watches.values()):
                if not watch.timed_out and now - watch.last > self.limits.idle_timeout:
                    watch.timed_out = True
                    self.stats.add("timeouts")
                    watch.transport.abort()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats, limits = self.stats, self.limits
        transport = writer.transport
        stats.add("connections")
        if self._done.is_set():  # accepted while stopping: not a limit's doing
            transport.abort()
            return
        if len(self._watches) >= limits.max_connections:
            stats.add("rejected")
            transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        watch = _Watch(loop.time(), transport)
        self._watches[task] = watch
        stats.add("active")
        transport.set_write_buffer_limits(high=limits.out_buffer)
        session = services.tcp_session(self.service)
        read_open = True
        graceful = False
        try:
            await self._write(writer, watch, session.connected())
            if session.streaming:
                await self._stream(reader, writer, watch, session)
            while not session.finished and not watch.timed_out:
                data = await reader.read(RECV_SIZE)
                watch.last = loop.time()
                if data:
                    stats.add("bytes_in", len(data))
                    await self._write(writer, watch, session.received(data))
                else:
                    read_open = False
                    await self._write(writer, watch, session.eof_received())
            graceful = not watch.timed_out
            if graceful and read_open and writer.can_write_eof():
                # Half-close and drop what the client still sends, briefly: see
                # LINGER_SECONDS for why closing at once could lose the reply.
                writer.write_eof()
                try:
                    await asyncio.wait_for(self._discard(reader), LINGER_SECONDS)
                except asyncio.TimeoutError:
                    pass
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): fall through to abort the connection
        except Exception:  # noqa: BLE001 - one client never stops the server
            stats.add("errors")
        finally:
            if graceful:
                transport.close()
            else:
                transport.abort()
            stats.add("active", -1)
            self._watches.pop(task, None)

    async def _write(self, writer: asyncio.StreamWriter, watch: "_Watch", data: bytes) -> None:
        if data:
            writer.write(data)
            self.stats.add("bytes_out", len(data))
            # drain() returns at once below the high-water mark, and waits while
            # more than out_buffer bytes are queued: the flow control.
            await writer.drain()
            watch.last = asyncio.get_running_loop().time()

    async def _discard(self, reader: asyncio.StreamReader) -> None:
        """Read and drop until EOF; return quietly when the connection breaks."""
        try:
            while True:
                data = await reader.read(RECV_SIZE)
                if not data:
                    return
                self.stats.add("bytes_in", len(data))
        except (ConnectionError, OSError):
            return

    async def _stream(self, reader, writer, watch: "_Watch",
                      session: services.TcpSession) -> None:
        """chargen: write while the client reads; its input is dropped alongside."""
        sink = asyncio.ensure_future(self._discard(reader))
        try:
            while not session.finished:
                if writer.transport.is_closing():
                    raise ConnectionResetError("client closed")
                # drain() only waits when the buffer is over its high-water
                # mark. A client that reads flat out never lets it fill, so
                # without a yield the loop would never get control back: no
                # new client, no other reader, no stop. One chunk per loop
                # turn, and none while new clients are being set up (that
                # takes a few turns, each of which would carry a chunk for
                # every streaming client).
                if not self._arriving:
                    await self._write(writer, watch, session.pull(_CHUNK))
                    self._writes += 1
                    if self._writes % _PEEK_EVERY == 0:
                        self._peek_listener()
                await asyncio.sleep(0)
        finally:
            sink.cancel()
            await asyncio.gather(sink, return_exceptions=True)


class _Watch:
    """When a connection last made progress, for the idle sweeper."""

    __slots__ = ("last", "transport", "timed_out")

    def __init__(self, last: float, transport: asyncio.BaseTransport) -> None:
        self.last = last
        self.transport = transport
        self.timed_out = False
