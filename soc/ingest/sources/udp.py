"""The UDP half of the syslog listener: one thread in a blocking ``recvfrom`` loop.

A dedicated thread rather than the asyncio loop: asyncio wakes its selector once per datagram,
which caps a Python receiver near 40-140k datagrams/s and loses bursts; a blocking loop drains
the socket buffer several times faster (see ``benchmarks/syslog_listener.py``). The thread builds
records and batches itself (``batch_size`` records or ``batch_delay`` seconds, checked at least
every 50 ms) and puts them on the listener's delivery queue, so ``on_batch`` is still called from
the one delivery thread. One datagram is one message (RFC 5426): one trailing ``\\n`` or
``\\r\\n`` is removed, an empty datagram is counted as ``dropped["empty"]``, a datagram longer
than ``max_frame_bytes`` is cut and marked (``truncated["too_long"]``), and while the delivery
queue holds twice ``max_pending_batches`` datagrams are dropped and counted
(``dropped["backpressure"]``) instead of piling up in memory.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from datetime import datetime
from typing import Protocol

from soc.ingest import Record
from soc.ingest.sources.base import Batch, SourceCounters
from soc.ingest.sources.framing import Frame
from soc.model import now_utc

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform == "linux" else None)
TICK = 0.05


def udp_socket(host: str, port: int, rcvbuf: int) -> socket.socket:
    """A bound UDP socket with a receive buffer of ``rcvbuf`` bytes (or the most allowed)."""
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    for opt in (SO_RCVBUFFORCE, socket.SO_RCVBUF):  # FORCE needs CAP_NET_ADMIN
        if opt is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, rcvbuf)
            break
        except OSError:
            continue
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on udp {host}:{port}: {exc.strerror}") from exc
    sock.settimeout(TICK)
    return sock


def peer_of(addr: object) -> tuple[str, int]:
    """``(ip, port)`` of a socket address; IPv4-mapped IPv6 addresses as plain IPv4."""
    if not isinstance(addr, tuple) or len(addr) < 2:
        return "unknown", 0
    ip = str(addr[0])
    return (ip[7:] if ip.startswith("::ffff:") else ip), int(addr[1])


def where(kind: str, ip: str, port: int) -> str:
    return f"{kind} [{ip}]:{port}" if ":" in ip else f"{kind} {ip}:{port}"


class UdpListener(Protocol):
    """What :class:`UdpReceiver` needs of the listener it feeds
    (:class:`~soc.ingest.sources.syslog.SyslogListener`)."""

    source_name: str
    max_frame_bytes: int
    max_pending_batches: int
    batch_size: int
    batch_delay: float
    last_rx: float
    """``time.monotonic()`` of the last bytes received; the receiver sets it."""

    @property
    def counters(self) -> SourceCounters: ...

    def queue_size(self) -> int: ...

    def make_record(self, frame: Frame, peer: str, origin: str, received: datetime) -> Record: ...

    def deliver(self, batch: list[Record] | None) -> None: ...


class UdpReceiver(threading.Thread):
    def __init__(self, listener: UdpListener, sock: socket.socket) -> None:
        super().__init__(name="soc-syslog-udp", daemon=True)
        self.lst = listener
        self.sock = sock
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        lst = self.lst
        counters = lst.counters
        sock, max_len = self.sock, lst.max_frame_bytes
        batch: list[Record] = []
        first = 0.0
        n = nbytes = 0
        origins: dict[tuple[str, int], tuple[str, str]] = {}
        overload = 2 * lst.max_pending_batches
        try:
            while not self._halt.is_set():  # the listener stops us once the senders are quiet
                try:
                    data, addr = sock.recvfrom(65536)
                except TimeoutError:
                    data = None
                except OSError as exc:
                    counters.error(f"udp_{type(exc).__name__}")
                    data = None
                now = time.monotonic()
                if data is not None:
                    nbytes += len(data)
                    lst.last_rx = now
                    if data.endswith(b"\n"):
                        data = data[:-2] if data.endswith(b"\r\n") else data[:-1]
                    if not data:
                        counters.drop("empty")
                    elif lst.queue_size() >= overload:
                        counters.drop("backpressure")
                    else:
                        frame = Frame(data) if len(data) <= max_len else Frame(
                            data[:max_len], len(data), "too_long")
                        key = addr if isinstance(addr, tuple) else ("unknown", 0)
                        peer = origins.get(key)
                        if peer is None:
                            ip, port = peer_of(addr)
                            peer = origins[key] = (ip, where("udp", ip, port))
                            if len(origins) > 10_000:
                                origins.clear()
                        if not batch:
                            first = now
                        batch.append(lst.make_record(frame, peer[0], peer[1], now_utc()))
                        n += 1
                if batch and (len(batch) >= lst.batch_size or now - first >= lst.batch_delay):
                    counters.add(n, nbytes)
                    n = nbytes = 0
                    lst.deliver(Batch(batch, key=lst.source_name))
                    batch = []
        finally:
            counters.add(n, nbytes)
            if batch:
                lst.deliver(Batch(batch, key=lst.source_name))
            sock.close()
