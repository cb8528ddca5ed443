"""Ingest: source -> decode -> parse -> normalize -> sink(store).

Stage contracts (each stage is a small module with one job):

``sources/``   produce :class:`Record` batches (raw bytes of one message, its deterministic event id,
               receive time, peer address). Framing (RFC 6587 octet counting / newlines, file lines,
               .evtx records, JSON arrays) is the source's job; a source never parses content.
``decode``     bytes -> str. Invalid UTF-8 is decoded with replacement and flagged, the exact bytes
               kept (base64) so nothing is lost.
``parsers/``   str -> :class:`soc.model.Parsed`. A parser never raises: what it cannot understand it
               reports through ``Parsed.status``/``Parsed.error``.
``extract/``   message-level extraction for known programs (sshd, sudo, su, pam, account tools...):
               adds ECS fields (``source.ip``, ``user.name``, ``event.action``, ``event.outcome``).
``values``     small helpers the parsers and the extractors share (addresses, ports, key=value tokens).
``normalize``  Parsed + source context -> the stored event dict (time model, agency, dataset, ids).
``pipeline``   runs the stages over a batch, counts parsed / partial / failed / dead-lettered, and
               hands events to a sink. Bad input never raises out of here.
``stages``     which decode/parse/normalize stages a source gets (per record, per file).
``sink``       event batches into the store, retried while it is down; returns once all is settled.
``registry``   the source types (``type:`` of ``ingest/sources/*.yml``) and their factories.
``flow``       the topology: each source on its thread, stages, sink, acknowledgement after storing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Record"]


@dataclass(slots=True)
class Record:
    """One raw message as a source delivered it.

    ``raw`` is the message without framing (no trailing newline, no octet count).
    ``event_id`` is deterministic from where the message came from (see ``soc.model``), so a
    replay of the same file or Kafka offsets yields the same ids. ``peer`` is the sender's
    address for network sources (used to find the agency). ``origin`` is a human-readable
    location for error messages and dead letters (``path:offset``, ``topic/partition/offset``,
    ``udp 10.0.0.5:514``). ``agency`` is the agency id the transport itself authenticated (a
    client certificate under mutual TLS, :mod:`soc.ingest.sources.tls`): it overrides the
    source's agency and the one found from ``peer``.
    """

    raw: bytes
    event_id: str
    received: datetime
    origin: str
    peer: str | None = None
    agency: str | None = None
