"""Syslog listeners: UDP (RFC 5426), TCP with RFC 6587 framing, TLS (RFC 5425) on its own port.

Usage::

    listener = SyslogListener(on_batch, udp="0.0.0.0:5514", tcp="0.0.0.0:5514",
                              tls=TlsEndpoint("0.0.0.0:6514", context, mutual=True, agency_of=...))
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

**TLS** (:mod:`.tls`): the ``tls`` endpoint's port runs the TLS handshake itself
(``loop.start_tls``), so a refused client -- no certificate, one of another CA, an expired one, one
no agency lists under mutual TLS -- is logged with its address and the reason and counted in
``counters.refused``; nothing it sent is read. An admitted client's messages carry the agency its
certificate names (``Record.agency``), and ``origin`` ends with ``cert NAME``.

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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from soc.ingest import Record
from soc.ingest.sources.base import Batch, MiB, SourceCounters, mark_truncated
from soc.ingest.sources.framing import Frame
from soc.ingest.sources.tcp import TcpConnection, TlsAccept
from soc.ingest.sources.tls import TlsEndpoint, server_context
from soc.ingest.sources.udp import UdpReceiver, udp_socket
from soc.model import stream_event_id

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
    refused: dict[str, int] = field(default_factory=dict)
    """TLS clients refused, by reason (``no_certificate``, ``untrusted_certificate``,
    ``expired_certificate``, ``no_agency``, ``handshake_failed``...)."""

    def refuse(self, reason: str) -> None:
        with self._lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        snap = SourceCounters.snapshot(self)
        snap.update(
            connections_open=self.connections_open,
            connections_total=self.connections_total,
            idle_closed=self.idle_closed,
            paused=self.paused,
            refused=dict(self.refused),
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
    """A TLS server context for RFC 5425 (TLS 1.2 or later, modern ciphers) from a PEM certificate
    and key, without client certificates (:func:`.tls.server_context` for mutual TLS)."""
    return server_context(certfile, keyfile)


class SyslogListener:
    """UDP, TCP and/or TLS syslog listener that hands batches of records to ``on_batch``."""

    def __init__(
        self,
        on_batch: OnBatch,
        *,
        udp: str | None = None,
        tcp: str | None = None,
        tls: TlsEndpoint | None = None,
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
        if udp is None and tcp is None and tls is None:
            raise ValueError("a syslog listener needs a udp, a tcp or a tls address")
        self.on_batch = on_batch
        self.udp = parse_address(udp) if udp else None
        self.tcp = parse_address(tcp) if tcp else None
        self.tls = tls
        self.tls_listen = parse_address(tls.address, 6514) if tls else None
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
        self.tls_address: tuple[str, int] | None = None
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
    def make_record(self, frame: Frame, peer: str, origin: str, received: datetime,
                    agency: str | None = None) -> Record:
        raw = frame.raw
        if frame.truncated_from is not None:
            self.counters.truncate(frame.reason or "too_long")
            origin = mark_truncated(origin, len(raw), frame.truncated_from)
        event_id = stream_event_id(self.source_name, self.boot_id, next(self._seq), raw)
        return Record(raw, event_id, received, origin, peer, agency)

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
        self.conns: set[TcpConnection] = set()
        self.paused = False
        self.server: asyncio.AbstractServer | None = None
        self.tls_server: asyncio.AbstractServer | None = None
        self.handshakes: set[asyncio.Task[None]] = set()
        self.udp: UdpReceiver | None = None
        self.sweeper: asyncio.Task[None] | None = None

    async def open(self) -> None:
        lst = self.lst
        if lst.udp:
            sock = udp_socket(*lst.udp, lst.udp_rcvbuf)
            self.udp = UdpReceiver(lst, sock)  # started by SyslogListener.start
            lst.udp_address = sock.getsockname()[:2]
        try:
            if lst.tcp:
                self.server = await self._listen("tcp", lst.tcp, lambda: TcpConnection(self), lst.ssl_context)
                lst.tcp_address = self.server.sockets[0].getsockname()[:2]
            if lst.tls_listen:
                self.tls_server = await self._listen("tls", lst.tls_listen, lambda: TlsAccept(self))
                lst.tls_address = self.tls_server.sockets[0].getsockname()[:2]
        except OSError:
            if self.udp:
                self.udp.sock.close()
            if self.server is not None:
                self.server.close()
            raise
        if self.server is not None or self.tls_server is not None:
            self.sweeper = self.loop.create_task(self._sweep())

    async def _listen(self, kind: str, address: tuple[str, int], factory: Callable[[], asyncio.Protocol],
                      ssl_context: ssl.SSLContext | None = None) -> asyncio.AbstractServer:
        try:
            return await self.loop.create_server(factory, address[0], address[1], ssl=ssl_context,
                                                 reuse_address=True, backlog=1024)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {kind} {address[0]}:{address[1]}: {exc.strerror}") from exc

    # -- records --------------------------------------------------------------------------------
    def emit(self, frame: Frame, peer: str, origin: str, received: datetime, agency: str | None = None) -> None:
        self.batch.append(self.lst.make_record(frame, peer, origin, received, agency))
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
            for server in (self.server, self.tls_server):
                if server is not None:
                    server.close()
            for task in list(self.handshakes):
                task.cancel()
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
