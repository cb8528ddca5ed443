"""The shapes every stage agrees on: events, parse results, alerts, identities.

Events travel as plain ``dict``s with flat, dotted ECS keys (``"source.ip"``, ``"user.name"``)
because that is what the hot ingest path can afford and what both stores index directly:
SQLite keeps them in a JSON document (and hot ones in real columns), Elasticsearch/OpenSearch
accept dotted keys as object paths. Nothing nests except list values.

The time model is explicit (see ``docs/ARCHITECTURE.md``):

- ``@timestamp``      when it happened, ISO 8601 UTC with a ``Z``;
- ``event.created``   when this service first received it (UTC);
- ``event.ingested``  when the store wrote it (set by the store, UTC) -- detection
  watermarks run on this field, so late data is never skipped;
- ``soc.time.raw``    the timestamp text exactly as it appeared in the line;
- ``soc.time.zone``   how the zone was decided: ``in_line`` | ``source`` (the source's
  configured zone) | ``received`` (no usable time in the line: receive time used);
- ``soc.time.year``   how the year was decided: ``in_line`` | ``inferred`` (RFC 3164:
  nearest to the receive time) | ``received``;
- ``event.timezone``  the zone name used for naive timestamps;
- ``soc.time.future`` true when the event claims to be from more than the allowed skew
  in the future (flagged, still stored).

Every event also carries ``organization.id``/``organization.name`` (the sending agency),
``event.dataset`` (what kind of log it is; decides which Sigma rules apply),
``event.original`` (the raw line), ``soc.parse.status`` (``parsed`` | ``partial`` | ``failed``)
and, for anything not fully parsed, ``soc.parse.error``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from soc.clock import system_clock

Event = dict[str, Any]
"""A normalized event: flat dotted ECS keys plus ``_id`` (the deterministic event id)."""

PARSED = "parsed"
PARTIAL = "partial"
FAILED = "failed"
PARSE_STATUSES = (PARSED, PARTIAL, FAILED)


@dataclass(slots=True)
class Parsed:
    """What a parser extracted from one line, before normalization.

    ``fields`` holds flat ECS keys. ``timestamp`` is the event time as found: aware when the
    line carried a zone or offset, naive when it did not (the normalizer then applies the
    source's zone). ``year_missing`` marks RFC 3164-style stamps whose year the parser
    filled in provisionally (the normalizer infers it). ``status`` says how much was
    understood; ``error`` why not everything was.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None
    raw_time: str | None = None
    year_missing: bool = False
    status: str = PARSED
    error: str | None = None

    def degrade(self, status: str, error: str) -> None:
        """Lower the status (never raise it) and keep the first reason."""
        order = {PARSED: 0, PARTIAL: 1, FAILED: 2}
        if order[status] > order[self.status]:
            self.status = status
        if self.error is None:
            self.error = error


def _digest(*parts: object) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def file_event_id(path: str, offset: int) -> str:
    """Id of the line that starts at byte ``offset`` of the file at real path ``path``."""
    return _digest("file", path, offset)


def kafka_event_id(topic: str, partition: int, offset: int) -> str:
    """Id of the Kafka record at ``topic``/``partition``/``offset``."""
    return _digest("kafka", topic, partition, offset)


def stream_event_id(source: str, boot: str, sequence: int, raw: bytes | str) -> str:
    """Id of a line received from a stream (syslog socket): listener boot id, sequence, content."""
    return _digest("stream", source, boot, sequence, raw)


def record_event_id(path: str, record_id: int | str) -> str:
    """Id of a record inside a structured file (an .evtx record, a JSON array element)."""
    return _digest("record", path, record_id)


def alert_id_for_events(rule_id: str, rule_version: str, event_ids: list[str]) -> str:
    """Single-event rules: the same rule version over the same events is the same alert."""
    return _digest("alert", rule_id, rule_version, *sorted(event_ids))


def alert_id_for_group(rule_id: str, group_key: str, window_start: str) -> str:
    """Threshold/correlation rules: one alert per rule, group and episode start."""
    return _digest("alert-group", rule_id, group_key, window_start)


def now_utc() -> datetime:
    """The system clock (receive and ingest stamps); see :mod:`soc.clock` for comparisons."""
    return system_clock()


def iso(ts: datetime) -> str:
    """ISO 8601 UTC with millisecond precision and a ``Z``: the one timestamp text format."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso` (accepts any ISO 8601 text with a zone)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
