"""The wire format of the log topic: what one Kafka record means, and how it becomes a
:class:`~soc.ingest.Record` plus the context to normalize it with.

A record on the log topic is **one raw log message**:

* **value** -- the message bytes exactly as the device sent them (no envelope, no framing);
* **key** -- the sending agency's id (``ingest/agencies.yml``), optionally followed by ``/`` and
  anything the producer likes (``so-tttt/fw01``) to spread one large agency over several
  partitions while keeping each device's messages in order. The agency is the part before the
  first ``/``. Without a key the agency comes from the ``soc.agency`` header, else from the
  ``soc.peer`` address (by network), else it is the ``unknown`` agency;
* **headers** (all optional, UTF-8 text): ``soc.agency``, ``soc.peer`` (the original sender's
  address, set by the syslog relay), ``soc.source`` (source name, default ``kafka:<topic>``),
  ``soc.format`` (a parser name or ``auto``), ``soc.timezone`` (zone of naive timestamps,
  default the service's).

The event id is :func:`soc.model.kafka_event_id` of the record's topic, partition and offset,
and the receive time is the record's own timestamp (the producer's create time), not the
worker's clock: re-reading the same offset -- after a crash, a rebalance or a dead-letter
replay -- rebuilds exactly the same event, down to the inferred year of an RFC 3164 stamp, so
it lands in the same day index under the same id and a create-only write stores it once.

What makes a record *malformed* (dead-lettered before parsing, see :func:`inspect`): no value
(a tombstone), a key or header that is not UTF-8, an unknown agency, an unknown format, an
unknown time zone. A value that merely fails to parse is **not** malformed: it is stored as an
``event.kind: pipeline_error`` event with its raw text (DESIGN section 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from soc.agencies import AgencyTree
from soc.errors import SocError
from soc.ingest import Record
from soc.ingest.normalize import SourceContext
from soc.ingest.parsers import PARSERS
from soc.ingest.sourcedefs import agency_context
from soc.model import kafka_event_id

H_AGENCY = "soc.agency"
H_PEER = "soc.peer"
H_SOURCE = "soc.source"
H_FORMAT = "soc.format"
H_TIMEZONE = "soc.timezone"
KNOWN_HEADERS = (H_AGENCY, H_PEER, H_SOURCE, H_FORMAT, H_TIMEZONE)


class Malformed(SocError, ValueError):
    """A record that cannot be turned into an event whatever its content; the message is the
    dead-letter reason."""


@dataclass(frozen=True, slots=True)
class Coordinates:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class ContextKey:
    """What decides how a record is normalized (records with equal keys share one pipeline)."""

    agency: str | None  # None: resolve from the peer address
    source: str
    fmt: str
    zone: str


def _text(raw: bytes | None, what: str) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"malformed record: the {what} is not UTF-8 ({raw[:40]!r})") from None


def header_map(headers: list[tuple[str, bytes]] | None) -> dict[str, bytes]:
    """The soc.* headers of a record (first value wins)."""
    out: dict[str, bytes] = {}
    for name, value in headers or ():
        if name in KNOWN_HEADERS and name not in out:
            out[name] = value
    return out


@lru_cache(maxsize=256)
def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def inspect(topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None,
            agencies: AgencyTree, default_zone: str, *, default_agency: str | None = None,
            default_source: str | None = None, default_format: str = "auto") -> tuple[ContextKey, str | None]:
    """(context key, peer) of a record, or :class:`Malformed` with the reason.

    The ``default_*`` values stand in for a missing key or header (the embedded service's
    ``kafka`` source passes its definition's agency, name and format); without them a record
    with no key, no ``soc.agency`` and no ``soc.peer`` is from the ``unknown`` agency."""
    if value is None:
        raise Malformed("malformed record: no value (a tombstone or an empty produce); nothing to store")
    h = header_map(headers) if headers else {}
    agency = _text(key, "key")
    if agency:
        agency = agency.split("/", 1)[0]
    else:
        agency = _text(h.get(H_AGENCY), f"{H_AGENCY} header") or default_agency or None
    peer = _text(h.get(H_PEER), f"{H_PEER} header") or None
    if agency is not None:
        try:
            agencies.by_id(agency)
        except ValueError:
            raise Malformed(f"malformed record: unknown agency {agency!r} in the key; add it to "
                            "ingest/agencies.yml, then replay the dead letters") from None
    elif peer is None:
        agency = agencies.unknown.id
    fmt = _text(h.get(H_FORMAT), f"{H_FORMAT} header") or default_format
    if fmt != "auto" and fmt not in PARSERS:
        raise Malformed(f"malformed record: unknown format {fmt!r} in the {H_FORMAT} header "
                        f"(use auto, {', '.join(PARSERS)})")
    zone = _text(h.get(H_TIMEZONE), f"{H_TIMEZONE} header") or default_zone
    if zone != default_zone and not _zone_ok(zone):
        raise Malformed(f"malformed record: unknown time zone {zone!r} in the {H_TIMEZONE} header")
    source = _text(h.get(H_SOURCE), f"{H_SOURCE} header") or default_source or f"kafka:{topic}"
    return ContextKey(agency, source, fmt, zone), peer


def to_record(topic: str, partition: int, offset: int, timestamp_ms: int | None, value: bytes,
              peer: str | None) -> Record:
    """The pipeline record of a Kafka record: id and receive time from the record itself."""
    if timestamp_ms is None or timestamp_ms < 0:
        timestamp_ms = 0
    received = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return Record(raw=value, event_id=kafka_event_id(topic, partition, offset), received=received,
                  origin=f"{topic}/{partition}/{offset}", peer=peer)


def context_for(key: ContextKey, agencies: AgencyTree, dataset: str | None = None) -> SourceContext:
    """The normalization context of records with this key (``agency`` None: by the sender's
    network, as the syslog listener does)."""
    return agency_context(agencies, source=key.source, agency=key.agency, zone=key.zone, dataset=dataset)
