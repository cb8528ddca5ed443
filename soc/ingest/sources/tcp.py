"""The stream half of the syslog listener: TCP connections (RFC 6587 framing) and connections to
the TLS port (RFC 5425), in the listener's asyncio loop.

:class:`TcpConnection` frames one connection's bytes into messages and hands them to the
listener's core (which batches them), pausing when the core says the delivery queue is full.
:class:`TlsAccept` takes a new connection to the TLS port and runs the TLS handshake itself
(``loop.start_tls``) rather than letting asyncio do it, because asyncio drops a failed server-side
handshake silently: here every refused client -- no certificate, an untrusted or expired one,
one no agency lists (:meth:`soc.ingest.sources.tls.TlsEndpoint.admit`) -- is logged with its
address and the reason and counted in ``counters.refused``, and nothing it sent is read. An
admitted client becomes a :class:`TcpConnection` whose messages carry its certified agency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Protocol

from soc.ingest.sources.framing import Frame, SyslogFramer
from soc.ingest.sources.tls import Admission, TlsEndpoint, handshake_refusal
from soc.ingest.sources.udp import peer_of, where
from soc.model import now_utc

__all__ = ["StreamCore", "TcpConnection", "TlsAccept"]

log = logging.getLogger("soc.ingest.sources.syslog")


class _Listener(Protocol):
    source_name: str
    max_frame_bytes: int
    max_connections: int
    last_rx: float
    tls: TlsEndpoint | None


class _Counters(Protocol):
    connections_open: int
    connections_total: int

    def add(self, received: int = 0, nbytes: int = 0) -> None: ...

    def drop(self, reason: str, n: int = 1) -> None: ...

    def refuse(self, reason: str) -> None: ...


class StreamCore(Protocol):
    """What the connections need of the listener's loop-side core
    (``soc.ingest.sources.syslog._Core``)."""

    lst: _Listener
    loop: asyncio.AbstractEventLoop
    counters: _Counters
    conns: set[TcpConnection]
    handshakes: set[asyncio.Task[None]]
    paused: bool

    def emit(self, frame: Frame, peer: str, origin: str, received: datetime, agency: str | None = None) -> None: ...


class TlsAccept(asyncio.Protocol):
    """A new connection to the TLS port: the handshake, then admission or refusal (module
    docstring). The connection limit counts handshakes in progress too."""

    def __init__(self, core: StreamCore) -> None:
        self.core = core

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        core = self.core
        if len(core.conns) + len(core.handshakes) >= core.lst.max_connections:
            core.counters.drop("too_many_connections")
            transport.abort()  # type: ignore[attr-defined]
            return
        transport.pause_reading()  # type: ignore[attr-defined]  (start_tls resumes it)
        task = core.loop.create_task(self.handshake(transport))  # type: ignore[arg-type]
        core.handshakes.add(task)
        task.add_done_callback(core.handshakes.discard)

    async def handshake(self, raw: asyncio.Transport) -> None:
        core = self.core
        tls = core.lst.tls
        assert tls is not None
        ip, port = peer_of(raw.get_extra_info("peername"))
        conn = TcpConnection(core, pending=True)
        try:
            transport = await core.loop.start_tls(raw, conn, tls.context, server_side=True,
                                                  ssl_handshake_timeout=tls.handshake_timeout)
        except asyncio.CancelledError:  # the listener stops
            raw.abort()
            raise
        except Exception as error:  # noqa: BLE001  (TLS errors, a reset, the handshake timeout)
            self.refuse(ip, port, handshake_refusal(error))
            raw.abort()
            return
        if transport is None:  # the client went away as the handshake ended
            return
        admission = tls.admit(transport.get_extra_info("peercert"))
        if admission.refused is not None:
            self.refuse(ip, port, admission.refused)
            transport.abort()
            return
        conn.admit(transport, admission)

    def refuse(self, ip: str, port: int, refusal: tuple[str, str]) -> None:
        """Count and log a refused client (never its data: nothing was read)."""
        self.core.counters.refuse(refusal[0])
        log.warning("syslog %r: refused TLS client %s: %s", self.core.lst.source_name,
                    where("", ip, port).strip(), refusal[1])


class TcpConnection(asyncio.Protocol):
    """One TCP (or admitted TLS) connection: RFC 6587 frames -> the core's batches."""

    def __init__(self, core: StreamCore, *, pending: bool = False) -> None:
        self.core = core
        self.framer = SyslogFramer(core.lst.max_frame_bytes)
        self.last = time.monotonic()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.ip, self.origin = "unknown", "tcp"
        self.reading = True
        self.agency: str | None = None
        #: TLS: bytes that arrived between the end of the handshake and the admission, and
        #: whether the connection ended then (``early`` is ``None`` once admitted, or for TCP)
        self.early: list[bytes] | None = [] if pending else None
        self.lost_early = False

    def admit(self, transport: asyncio.Transport, admission: Admission) -> None:
        """A TLS client was admitted: read it as a TCP connection whose messages carry its agency."""
        early, self.early = self.early or [], None
        self.connection_made(transport)
        if self not in self.core.conns:
            return
        self.agency = admission.agency
        if admission.name:
            self.origin = f"{self.origin} cert {admission.name}"
        for data in early:
            self.data_received(data)
        if self.lost_early:
            self.connection_lost(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        core = self.core
        self.transport = transport  # type: ignore[assignment]
        self.ip, port = peer_of(transport.get_extra_info("peername"))
        kind = "tls" if transport.get_extra_info("sslcontext") is not None else "tcp"
        self.origin = where(kind, self.ip, port)
        if len(core.conns) >= core.lst.max_connections:
            core.counters.drop("too_many_connections")
            transport.abort()  # type: ignore[attr-defined]
            return
        core.conns.add(self)
        core.counters.connections_total += 1
        core.counters.connections_open = len(core.conns)
        if core.paused:
            self.pause()

    def data_received(self, data: bytes) -> None:
        if self.early is not None:
            self.early.append(data)
            return
        core = self.core
        self.last = core.lst.last_rx = time.monotonic()
        frames = self.framer.feed(data)
        core.counters.add(len(frames), len(data))
        if frames:
            received = now_utc()
            for frame in frames:
                core.emit(frame, self.ip, self.origin, received, self.agency)
        self._count_empty()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost flushes

    def connection_lost(self, exc: Exception | None) -> None:
        if self.early is not None:
            self.lost_early = True
            return
        core = self.core
        if self not in core.conns:
            return
        core.conns.discard(self)
        core.counters.connections_open = len(core.conns)
        received = now_utc()
        frames = self.framer.close()
        core.counters.add(len(frames))
        for frame in frames:
            core.emit(frame, self.ip, self.origin, received, self.agency)
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
