"""Syslog listeners: UDP (RFC 5426), TCP with RFC 6587 framing, optionally TLS (RFC 5425).

Usage::

    listener = SyslogListener(on_batch, udp="0.0.0.0:5514", tcp="0.0.0.0:5514")
    listener.start()          # binds (raises OSError naming the address), returns when listening
    ...
    listener.stop()           # flushes everything received, then returns

Threading model: a background thread runs an asyncio loop that accepts TCP connections,
frames and batches; another receives UDP in a blocking loop (:mod:`.udp`); a third calls
``on_batch(records)``, always from that one thread, in arrival order per connection (a batch
holds either TCP or UDP records). A batch is handed over when it holds ``batch_size`` records
or its first record is ``batch_delay`` seconds old. ``on_batch`` should not raise; if it does,
the batch is logged and counted as ``dropped["on_batch_error"]``. While ``max_pending_batches`` batches wait for ``on_batch``, TCP
connections stop being read (the senders' TCP windows push back) and UDP datagrams beyond
twice that are dropped and counted (``dropped["backpressure"]``); memory stays bounded.

One record per message: UDP = one datagram (one trailing ``\\n`` or ``\\r\\n`` removed; RFC 5426
allows one message per datagram), TCP = one RFC 6587 frame, octet counting or newline framing
detected per message (:mod:`.framing`). ``event_id = stream_event_id(source_name, boot_id,
sequence, raw)`` with ``boot_id`` random per :meth:`SyslogListener.start` and ``sequence``
counting messages; ``peer`` is the sender's IP, ``origin`` ``"udp|tcp|tls ip:port"``.

Long messages are **not dropped**. Up to ``max_frame_bytes`` (default 256 KiB, the memory
bound per connection) a message is delivered whole, and the pipeline dead-letters what exceeds
its own ``max_message_bytes`` (64 KiB). Beyond that the record keeps the first
``max_frame_bytes`` bytes, its origin is marked truncated (see :mod:`.base`) and
``counters.truncated["too_long"]`` counts it; being still longer than the pipeline's limit, it is
dead-lettered with its sender too. Keep ``max_frame_bytes`` above the pipeline's limit
(:meth:`SyslogListener.from_settings` uses four times it).

Delivery guarantee: **at most once**. Syslog has no acknowledgement: a UDP datagram the kernel
drops, or data in flight when the process dies, is lost (the kernel's UDP drop count is in
``/proc/net/snmp``; ours are in :attr:`SyslogListener.counters`). Ids are unique per message and
listener start, not replay-idempotent: a sender that resends a message creates a new record.
Every message that reached the
listener is passed to ``on_batch`` before :meth:`stop` returns: stop closes the listening
sockets, keeps reading open connections until they have been quiet for a moment (at most
``stop_grace`` seconds), closes them (a pending unterminated line becomes a message), and
delivers the last batch. Connections silent for ``idle_timeout`` seconds are closed the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from soc.ingest import Record
from soc.ingest.sources.base import Batch, MiB, SourceCounters, mark_truncated
from soc.ingest.sources.framing import Frame, SyslogFramer
from soc.ingest.sources.udp import UdpReceiver, peer_of, udp_socket, where
from soc.model import now_utc, stream_event_id

log = logging.getLogger(__name__)

OnBatch = Callable[[list[Record]], None]


@dataclass(slots=True)
class ListenerCounters(SourceCounters):
    """:class:`SourceCounters` plus connection figures."""

    connections_open: int = 0
    connections_total: int = 0
    idle_closed: int = 0
    paused: int = 0
    """Times TCP reading was paused because ``on_batch`` fell behind."""

    def snapshot(self) -> dict[str, Any]:
        snap = SourceCounters.snapshot(self)
        snap.update(
            connections_open=self.connections_open,
            connections_total=self.connections_total,
            idle_closed=self.idle_closed,
            paused=self.paused,
        )
        return snap


def parse_address(text: str, default_port: int = 514) -> tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"``, ``":port"``, ``"host"`` -> ``(host, port)``."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        return host or "0.0.0.0", int(port) if port else default_port
    except ValueError:
        raise ValueError(f"invalid listen address {text!r}: expected host:port") from None


def server_tls_context(certfile: str | Path, keyfile: str | Path | None = None) -> ssl.SSLContext:
    """A TLS server context for RFC 5425 (TLS 1.2 or later) from a PEM certificate and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    return ctx


class SyslogListener:
    """UDP and/or TCP syslog listener that hands batches of records to ``on_batch``."""

    def __init__(
        self,
        on_batch: OnBatch,
        *,
        udp: str | None = None,
        tcp: str | None = None,
        source_name: str = "syslog",
        max_frame_bytes: int = 256 * 1024,
        batch_size: int = 1000,
        batch_delay: float = 0.2,
        idle_timeout: float = 300.0,
        max_connections: int = 1024,
        max_pending_batches: int = 64,
        ssl_context: ssl.SSLContext | None = None,
        udp_rcvbuf: int = 4 * MiB,
        stop_grace: float = 2.0,
    ) -> None:
        if udp is None and tcp is None:
            raise ValueError("a syslog listener needs a udp or a tcp address")
        self.on_batch = on_batch
        self.udp = parse_address(udp) if udp else None
        self.tcp = parse_address(tcp) if tcp else None
        self.source_name = source_name
        self.max_frame_bytes = max_frame_bytes
        self.batch_size = batch_size
        self.batch_delay = batch_delay
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_pending_batches = max_pending_batches
        self.ssl_context = ssl_context
        self.udp_rcvbuf = udp_rcvbuf
        self.stop_grace = stop_grace
        self.counters = ListenerCounters()
        self.boot_id = ""
        self.udp_address: tuple[str, int] | None = None
        self.tcp_address: tuple[str, int] | None = None
        self.last_rx = 0.0  # time.monotonic() of the last bytes received
        self._loop: asyncio.AbstractEventLoop | None = None
        self._core: _Core | None = None
        self._queue: queue.Queue[list[Record] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._seq = itertools.count(1)

    @classmethod
    def from_settings(cls, settings: Any, on_batch: OnBatch, **kwargs: Any) -> SyslogListener:
        """From :class:`soc.config.SyslogSettings` (``udp``, ``tcp``, ``max_message_bytes``)."""
        kwargs.setdefault("max_frame_bytes", 4 * settings.max_message_bytes)
        return cls(on_batch, udp=settings.udp or None, tcp=settings.tcp or None, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            raise RuntimeError("listener already started")
        self.boot_id = uuid.uuid4().hex
        self._seq = itertools.count(1)
        ready = threading.Event()
        failure: list[BaseException] = []
        loop_thread = threading.Thread(
            target=self._run_loop, args=(ready, failure), name="soc-syslog-loop", daemon=True)
        deliver = threading.Thread(target=self._deliver, name="soc-syslog-deliver", daemon=True)
        loop_thread.start()
        ready.wait()
        if failure:
            loop_thread.join()
            raise failure[0]
        deliver.start()
        self._threads = [loop_thread, deliver]
        if self._core is not None and self._core.udp is not None:
            self._core.udp.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop receiving, deliver everything received, join both threads."""
        if not self._threads or self._loop is None or self._core is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._core.shutdown(), self._loop)
        try:
            fut.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            for t in self._threads:
                t.join(timeout)
            self._threads = []

    def __enter__(self) -> SyslogListener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- shared by the TCP loop and the UDP thread ---------------------------------------------
    def make_record(self, frame: Frame, peer: str, origin: str, received: datetime) -> Record:
        raw = frame.raw
        if frame.truncated_from is not None:
            self.counters.truncate(frame.reason or "too_long")
            origin = mark_truncated(origin, len(raw), frame.truncated_from)
        event_id = stream_event_id(self.source_name, self.boot_id, next(self._seq), raw)
        return Record(raw, event_id, received, origin, peer)

    def deliver(self, batch: list[Record] | None) -> None:
        """Queue a batch for ``on_batch`` (``None`` ends the delivery thread)."""
        self._queue.put(batch)

    def queue_size(self) -> int:
        return self._queue.qsize()

    def _run_loop(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._core = core = _Core(self, loop)
        try:
            loop.run_until_complete(core.open())
        except BaseException as exc:  # bind errors go back to start()'s caller
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _deliver(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                self.on_batch(batch)
            except Exception:
                log.exception("syslog on_batch failed; %d records lost", len(batch))
                self.counters.drop("on_batch_error", len(batch))
            core, loop = self._core, self._loop
            if core is not None and loop is not None and core.paused and \
                    self._queue.qsize() <= self.max_pending_batches // 2:
                loop.call_soon_threadsafe(core.resume)


class _Core:
    """Everything that runs in the loop thread."""

    def __init__(self, listener: SyslogListener, loop: asyncio.AbstractEventLoop) -> None:
        self.lst = listener
        self.loop = loop
        self.counters = listener.counters
        self.batch = Batch(key=listener.source_name)
        self.timer: asyncio.TimerHandle | None = None
        self.conns: set[_TcpConn] = set()
        self.paused = False
        self.server: asyncio.AbstractServer | None = None
        self.udp: UdpReceiver | None = None
        self.sweeper: asyncio.Task[None] | None = None

    async def open(self) -> None:
        lst = self.lst
        if lst.udp:
            sock = udp_socket(*lst.udp, lst.udp_rcvbuf)
            self.udp = UdpReceiver(lst, sock)  # started by SyslogListener.start
            lst.udp_address = sock.getsockname()[:2]
        if lst.tcp:
            try:
                self.server = await self.loop.create_server(
                    lambda: _TcpConn(self), lst.tcp[0], lst.tcp[1], ssl=lst.ssl_context,
                    reuse_address=True, backlog=1024)
            except OSError as exc:
                if self.udp:
                    self.udp.sock.close()
                raise OSError(exc.errno, f"cannot listen on tcp {lst.tcp[0]}:{lst.tcp[1]}: "
                              f"{exc.strerror}") from exc
            lst.tcp_address = self.server.sockets[0].getsockname()[:2]
            self.sweeper = self.loop.create_task(self._sweep())

    # -- records --------------------------------------------------------------------------------
    def emit(self, frame: Frame, peer: str, origin: str, received: datetime) -> None:
        self.batch.append(self.lst.make_record(frame, peer, origin, received))
        if len(self.batch) >= self.lst.batch_size:
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(self.lst.batch_delay, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.batch:
            return
        self.lst.deliver(self.batch)
        self.batch = Batch(key=self.lst.source_name)
        if not self.paused and self.lst.queue_size() >= self.lst.max_pending_batches:
            self.paused = True
            self.counters.paused += 1
            for conn in self.conns:
                conn.pause()

    def resume(self) -> None:
        self.paused = False
        for conn in self.conns:
            conn.resume()

    # -- housekeeping ---------------------------------------------------------------------------
    async def _sweep(self) -> None:
        idle = self.lst.idle_timeout
        while True:
            await asyncio.sleep(max(0.05, min(idle / 4, 5.0)))
            now = time.monotonic()
            for conn in [c for c in self.conns if c.reading and now - c.last > idle]:
                self.counters.idle_closed += 1
                conn.transport.abort()

    async def shutdown(self) -> None:
        try:
            if self.server is not None:
                self.server.close()
            grace_end = time.monotonic() + self.lst.stop_grace
            self.lst.last_rx = time.monotonic()
            while time.monotonic() < grace_end and time.monotonic() - self.lst.last_rx < 0.1:
                if self.paused:
                    self.resume()  # the delivery thread keeps draining
                await asyncio.sleep(0.02)
            if self.sweeper is not None:
                self.sweeper.cancel()
            if self.udp is not None:
                self.udp.stop()
                if self.udp.is_alive():
                    await asyncio.to_thread(self.udp.join)
            for conn in list(self.conns):
                conn.transport.abort()
            for _ in range(100):  # connection_lost callbacks flush the framers
                if not self.conns:
                    break
                await asyncio.sleep(0.01)
        finally:
            self.flush()
            self.lst.deliver(None)  # ends the delivery thread


class _TcpConn(asyncio.Protocol):
    def __init__(self, core: _Core) -> None:
        self.core = core
        self.framer = SyslogFramer(core.lst.max_frame_bytes)
        self.last = time.monotonic()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.ip, self.origin = "unknown", "tcp"
        self.reading = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        core = self.core
        self.transport = transport  # type: ignore[assignment]
        self.ip, port = peer_of(transport.get_extra_info("peername"))
        kind = "tls" if transport.get_extra_info("sslcontext") is not None else "tcp"
        self.origin = where(kind, self.ip, port)
        if len(core.conns) >= core.lst.max_connections:
            core.counters.drop("too_many_connections")
            transport.abort()
            return
        core.conns.add(self)
        core.counters.connections_total += 1
        core.counters.connections_open = len(core.conns)
        if core.paused:
            self.pause()

    def data_received(self, data: bytes) -> None:
        core = self.core
        self.last = core.lst.last_rx = time.monotonic()
        frames = self.framer.feed(data)
        core.counters.add(len(frames), len(data))
        if frames:
            received = now_utc()
            for frame in frames:
                core.emit(frame, self.ip, self.origin, received)
        self._count_empty()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost flushes

    def connection_lost(self, exc: Exception | None) -> None:
        core = self.core
        if self not in core.conns:
            return
        core.conns.discard(self)
        core.counters.connections_open = len(core.conns)
        received = now_utc()
        frames = self.framer.close()
        core.counters.add(len(frames))
        for frame in frames:
            core.emit(frame, self.ip, self.origin, received)
        self._count_empty()

    def _count_empty(self) -> None:
        if self.framer.empty:
            self.core.counters.drop("empty", self.framer.empty)
            self.framer.empty = 0

    def pause(self) -> None:
        if self.reading and not self.transport.is_closing():
            self.transport.pause_reading()
            self.reading = False

    def resume(self) -> None:
        if not self.reading and not self.transport.is_closing():
            self.transport.resume_reading()
            self.reading = True
            self.last = time.monotonic()  # a paused connection was not idle
