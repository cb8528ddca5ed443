"""Syslog to Kafka: the syslog listener publishes raw messages to the log topic instead of
writing a local store, so devices that only speak syslog reach the scaled pipeline.

Each received message becomes one record in the wire format of :mod:`soc.kafka.messages`:
value = the message bytes exactly as received (no framing), key = the agency id: the one the
client certificate names on a mutual-TLS listener (:mod:`soc.ingest.sources.tls`), else the one
resolved from the sender's address through ``ingest/agencies.yml`` (longest prefix; the
``unknown`` agency when no network matches), headers ``soc.peer`` (the sender's IP) and ``soc.source`` (the
source name), and the record timestamp = the time the listener received it, which the worker
uses as the receive time (RFC 3164 year inference, ``event.created``).

The producer uses ``acks=all`` with idempotence and unbounded retries within a delivery
timeout; every batch the listener delivers is flushed before the next one is taken, so when
Kafka is slow the listener's own backpressure engages (TCP reading pauses, UDP beyond its
queue is counted as dropped). Stopping flushes everything received. Syslog itself is
at-most-once (no acknowledgement to the sender); from Kafka on, the path is at-least-once with
idempotent writes. Records Kafka refused after the delivery timeout are logged and counted in
``failed``. The producer uses the ``kafka:`` settings' TLS/SASL options
(:func:`soc.kafka.config.security_options`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from soc.agencies import AgencyTree, load_agencies
from soc.ingest import Record
from soc.ingest.sources.syslog import SyslogListener
from soc.ingest.sources.tls import TlsEndpoint
from soc.kafka.config import client_options
from soc.kafka.messages import H_PEER, H_SOURCE

log = logging.getLogger("soc.kafka.relay")


class SyslogRelay:
    """A :class:`SyslogListener` whose batches go to a Kafka topic."""

    def __init__(self, bootstrap: str, topic: str, *, udp: str | None = None, tcp: str | None = None,
                 tls: TlsEndpoint | None = None, source_name: str = "syslog", agencies: AgencyTree | None = None,
                 max_frame_bytes: int = 4 * 65536, producer: Any = None, security: dict[str, Any] | None = None,
                 **listener_options: Any) -> None:
        self.topic = topic
        self.source_name = source_name
        self.agencies = agencies or load_agencies()
        self._resolve: Callable[[str | None], tuple[str, str] | None] = self.agencies.resolver()
        self.producer = producer or self._producer(bootstrap, security)
        self.listener = SyslogListener(self.publish, udp=udp, tcp=tcp, tls=tls, source_name=source_name,
                                       max_frame_bytes=max_frame_bytes, **listener_options)
        self.sent = 0
        self.failed = 0
        self._lock = threading.Lock()

    @staticmethod
    def _producer(bootstrap: str, security: dict[str, Any] | None = None) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(**client_options(bootstrap, security, client_id="soc-syslog-relay", acks="all",
                                              enable_idempotence=True, retries=2**31 - 1, linger_ms=5,
                                              delivery_timeout_ms=120_000, max_request_size=4 * 1024 * 1024))

    def key_for(self, peer: str | None, agency: str | None = None) -> bytes:
        """The record key: the agency a client certificate gave (mutual TLS), else the one whose
        network holds ``peer``, else the unknown agency."""
        if agency:
            return agency.encode()
        found = self._resolve(peer)
        return (found[0] if found else self.agencies.unknown.id).encode()

    def publish(self, records: list[Record]) -> None:
        """The listener's ``on_batch``: send every record, then wait for Kafka's acknowledgements."""
        source = self.source_name.encode()
        futures = []
        for record in records:
            headers = [(H_SOURCE, source)]
            if record.peer:
                headers.append((H_PEER, record.peer.encode()))
            futures.append(self.producer.send(
                self.topic, key=self.key_for(record.peer, record.agency), value=record.raw, headers=headers,
                timestamp_ms=int(record.received.timestamp() * 1000)))
        self.producer.flush()
        ok = bad = 0
        for future in futures:
            if future.is_done and future.succeeded():
                ok += 1
            else:
                bad += 1
        with self._lock:
            self.sent += ok
            self.failed += bad
        if bad:
            log.error("Kafka did not acknowledge %d syslog messages (they are lost; see the broker)", bad)

    def start(self) -> SyslogRelay:
        self.listener.start()
        return self

    def stop(self) -> None:
        """Stop listening, publish everything received, flush and close the producer."""
        try:
            self.listener.stop()
        finally:
            self.producer.flush()
            self.producer.close()

    @property
    def udp_address(self) -> tuple[str, int] | None:
        return self.listener.udp_address

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return self.listener.tcp_address

    @property
    def tls_address(self) -> tuple[str, int] | None:
        return self.listener.tls_address
