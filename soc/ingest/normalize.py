"""Normalize: a parse result + where it came from -> the stored event dict.

This is where the time model of :mod:`soc.model` is applied, exactly:

- ``@timestamp``: the event time in UTC (``soc.model.iso`` format). A line's zone or offset
  is used as written (``soc.time.zone: in_line``); a naive time is read in the source's
  zone (``source``, and ``event.timezone`` names it); no usable time -> the receive time
  (``received``).
- ``soc.time.year``: ``in_line``; ``inferred`` for RFC 3164 stamps without a year: the year
  that puts the event nearest to the receive time in the source's zone (a ``Dec 31 23:59``
  line received on ``Jan 1`` belongs to the previous year; ``Feb 29`` only ever lands on a
  leap year); ``received`` when the receive time was used.
- ``event.created``: when this service received the record (``Record.received``).
- ``soc.time.future``: the event claims to be more than ``max_future_skew`` after it was
  received (flagged and tagged ``_time_future``, still stored as it is).
- ``soc.time.raw``: the timestamp text as it appeared.

Also: ``_id`` (``Record.event_id``), ``event.original``, ``event.kind`` (``event``, or
``pipeline_error`` for failed parses), ``event.dataset`` (the source's forced dataset, else
the parser's, else ``generic.text``), ``organization.id/name`` (the agency, fixed or
resolved from the peer address), ``soc.source``, ``soc.parse.status/error/parser``,
``log.source.address`` (the peer), ``soc.decode.error`` + ``soc.raw_b64`` for bytes that were
not valid UTF-8, and ``tags`` (``_parse_partial``, ``_parse_failed``, ``_decode_error``,
``_time_future``, ``_time_invalid``).

Speed: zone offsets are cached per (zone, hour) - valid because the cache is only used for
hours whose offset is the same at both ends - and timestamps are formatted with
``datetime.isoformat`` (identical output to ``soc.model.iso`` for years 1000-9999, which a
test checks), so normalizing costs a few microseconds. ``normalize`` takes ownership of
``parsed.fields`` and returns it as the event (no copy).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from soc.config import DEFAULT_TIMEZONE
from soc.ingest import Record
from soc.ingest.decode import INVALID_UTF8
from soc.model import FAILED, PARTIAL, Event, Parsed, iso

AgencyResolver = Callable[[str | None], "tuple[str | None, str | None] | None"]
"""peer address (``10.0.0.5`` or ``10.0.0.5:514``) -> (agency id, agency name), or None."""


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What normalization needs to know about the source a record came from.

    ``agency_id``/``agency_name`` name the sending agency; ``agency_resolver`` (when set)
    is asked first with the record's peer address, for listeners shared by many agencies.
    ``zone`` applies to timestamps without a zone. ``dataset`` forces ``event.dataset``
    (a source that only carries one kind of log). ``max_future_skew`` is how far past the
    receive time an event may claim to be before it is flagged.
    """

    source: str
    agency_id: str | None = None
    agency_name: str | None = None
    agency_resolver: AgencyResolver | None = None
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    dataset: str | None = None
    max_future_skew: timedelta = timedelta(hours=1)

    def agency(self, peer: str | None) -> tuple[str | None, str | None]:
        """(id, name) of the agency that sent a record from ``peer``."""
        if self.agency_resolver is not None and peer:
            try:
                found = self.agency_resolver(peer)
            except Exception:  # noqa: BLE001  (a broken resolver must not stop ingest)
                found = None
            if found:
                return found
        return self.agency_id, self.agency_name


# ---- zone offsets and formatting ------------------------------------------------------------

_HOUR = timedelta(hours=1)
_LAST_SECOND = timedelta(minutes=59, seconds=59)
_LOCAL_OFFSETS: dict[tuple[tzinfo, int, int, int, int], timedelta] = {}
_UTC_OFFSETS: dict[tuple[tzinfo, datetime], timedelta] = {}
_CACHE_MAX = 65536


def _local_to_utc(local: datetime, zone: tzinfo) -> datetime:
    """Naive wall-clock ``local`` in ``zone`` -> naive UTC. Ambiguous/missing DST times
    resolve as zoneinfo does with ``fold=0``."""
    key = (zone, local.year, local.month, local.day, local.hour)
    offset = _LOCAL_OFFSETS.get(key)
    if offset is None:
        hour = local.replace(minute=0, second=0, microsecond=0)
        offset = hour.replace(tzinfo=zone).utcoffset() or timedelta(0)
        if (hour + _LAST_SECOND).replace(tzinfo=zone).utcoffset() != offset:  # DST change inside
            exact = local.replace(tzinfo=zone).utcoffset() or timedelta(0)
            return local - exact
        if len(_LOCAL_OFFSETS) >= _CACHE_MAX:
            _LOCAL_OFFSETS.clear()
        _LOCAL_OFFSETS[key] = offset
    return local - offset


def _utc_to_local(utc: datetime, zone: tzinfo) -> datetime:
    """Naive UTC -> naive wall clock in ``zone``."""
    hour = utc.replace(minute=0, second=0, microsecond=0)
    key = (zone, hour)
    offset = _UTC_OFFSETS.get(key)
    if offset is None:
        offset = hour.replace(tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0)
        end = (hour + _LAST_SECOND).replace(tzinfo=UTC).astimezone(zone).utcoffset()
        if end != offset:
            exact = utc.replace(tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0)
            return utc + exact
        if len(_UTC_OFFSETS) >= _CACHE_MAX:
            _UTC_OFFSETS.clear()
        _UTC_OFFSETS[key] = offset
    return utc + offset


def format_utc(utc: datetime) -> str:
    """Naive-UTC (or aware) datetime -> the ``soc.model.iso`` text, fast."""
    if utc.tzinfo is not None:
        return iso(utc)
    if 1000 <= utc.year <= 9999:
        return utc.isoformat(timespec="milliseconds") + "Z"
    return iso(utc.replace(tzinfo=UTC))


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _near(naive: datetime, year: int, limit: datetime) -> bool:
    try:
        return abs(naive.replace(year=year) - limit) < timedelta(days=1)
    except ValueError:  # Feb 29 in a common year
        return False


_YEAR_CACHE: dict[tuple[int, int, int, int, int], int] = {}
#: how far past the receive time an RFC 3164 stamp may fall and still count as this year's
#: (clock skew between devices; a line stamped "Jan 1 00:00:02" received on Dec 31 23:59)
_FUTURE_TOLERANCE = timedelta(days=2)


def infer_year(stamp: datetime, received_local: datetime) -> datetime:
    """``stamp`` (month/day/time valid, year provisional) with the most recent year that does
    not put it in the future of ``received_local`` (naive, same zone as ``stamp``'s wall
    clock), allowing :data:`_FUTURE_TOLERANCE` of clock skew.

    Logs describe the past: a line "Mar 27 13:06:56" read in November is from this March, and
    read in February it is from last March (never from the coming one). Around New Year the
    tolerance gives "Dec 31 23:59" received on Jan 1 the previous year and "Jan 1 00:00"
    received on Dec 31 the next one. ``Feb 29`` takes the latest leap year that fits."""
    key = (stamp.month, stamp.day, received_local.year, received_local.month, received_local.day)
    year = _YEAR_CACHE.get(key)
    if year is not None:
        return stamp.replace(year=year)
    naive = stamp.replace(tzinfo=None)
    limit = received_local + _FUTURE_TOLERANCE
    year = received_local.year + 1
    while True:
        try:
            if naive.replace(year=year) <= limit:
                break
        except ValueError:  # Feb 29 in a common year
            pass
        year -= 1
    # cached per receive day only when no time of that day could choose another year: neither
    # the chosen year nor the next one (rejected now, taken later that day) is near the limit
    if not (_near(naive, year, limit) or _near(naive, year + 1, limit)):
        if len(_YEAR_CACHE) >= _CACHE_MAX:
            _YEAR_CACHE.clear()
        _YEAR_CACHE[key] = year
    return stamp.replace(year=year)


# ---- the event ------------------------------------------------------------------------------


_LAST_RECEIVED: tuple[datetime | None, tzinfo | None, datetime, str, datetime] = (None, None, datetime.min, "", datetime.min)


def _received(received: datetime, zone: tzinfo) -> tuple[datetime, str, datetime]:
    """(naive UTC, ``event.created`` text, naive wall clock in ``zone``) of a receive time.

    Sources stamp whole batches with one ``received`` object, so the last result is kept
    (one tuple, replaced atomically: safe under threads); Kafka gives each record its own
    object, equal for the records produced in the same millisecond (compared as UTC times only:
    equality of other aware times ignores ``fold``)."""
    global _LAST_RECEIVED
    last = _LAST_RECEIVED
    if last[1] is zone and (last[0] is received or (received.tzinfo is UTC and last[0] == received
                                                    and last[0].tzinfo is UTC)):  # type: ignore[union-attr]
        return last[2], last[3], last[4]
    if received.tzinfo is UTC:
        utc = received.replace(tzinfo=None)
    elif received.tzinfo is not None:
        utc = received.astimezone(UTC).replace(tzinfo=None)
    else:
        utc = received  # naive receive times are taken as UTC
    result = (utc, format_utc(utc), _utc_to_local(utc, zone))
    _LAST_RECEIVED = (received, zone, *result)
    return result


def _apply_time(event: Event, parsed: Parsed, received_utc: datetime, received_local: datetime, ctx: SourceContext) -> datetime:
    """Set the ``soc.time.*`` fields; returns the naive UTC event time."""
    ts = parsed.timestamp
    if parsed.raw_time:
        event["soc.time.raw"] = parsed.raw_time
    if ts is None:
        event["soc.time.zone"] = "received"
        event["soc.time.year"] = "received"
        return received_utc
    if ts.tzinfo is None:
        zone = ctx.zone
        if parsed.year_missing:
            year = received_local.year
            if ts.month < received_local.month and not (ts.month == 1 and received_local.month == 12) \
                    and (ts.month != 2 or ts.day != 29 or _is_leap(year)):
                ts = ts.replace(year=year)  # an earlier month of this year: the common case
            else:
                ts = infer_year(ts, received_local)
            event["soc.time.year"] = "inferred"
        else:
            event["soc.time.year"] = "in_line"
        event["soc.time.zone"] = "source"
        event["event.timezone"] = getattr(zone, "key", None) or str(zone)
        return _local_to_utc(ts, zone)
    if parsed.year_missing:
        ts = infer_year(ts, _utc_to_local(received_utc, ts.tzinfo))
        event["soc.time.year"] = "inferred"
    else:
        event["soc.time.year"] = "in_line"
    event["soc.time.zone"] = "in_line"
    offset = ts.utcoffset()
    return ts.replace(tzinfo=None) - offset if offset else ts.replace(tzinfo=None)


_TIME_CACHE: tuple[datetime | None, tzinfo | None, timedelta | None, dict[tuple[datetime, str | None, bool], tuple[dict[str, object], bool]]] = (None, None, None, {})


def _cached_time(parsed: Parsed, ts: datetime, received: datetime, ctx: SourceContext) -> tuple[dict[str, object], bool] | None:
    """The time fields (``soc.time.*``, ``event.timezone``, ``@timestamp``, ``event.created``, in
    the order :func:`normalize` sets them) and the future flag of a naive event time, cached per
    (time, raw text, year missing) for one receive time, zone and skew: they depend on nothing
    else, and the lines of a batch share one receive time and often one stamp. None when the
    time cannot be applied (the caller's general path reports why)."""
    global _TIME_CACHE
    zone = ctx.zone
    skew = ctx.max_future_skew
    cache = _TIME_CACHE
    if cache[0] is not received or cache[1] is not zone or cache[2] is not skew:
        cache = (received, zone, skew, {})
        _TIME_CACHE = cache  # one tuple, replaced atomically: safe under threads
    entries = cache[3]
    key = (ts, parsed.raw_time, parsed.year_missing)
    hit = entries.get(key)
    if hit is not None:
        return hit
    received_utc, created, received_local = _received(received, zone)
    fields: dict[str, object] = {}
    try:
        when = _apply_time(fields, parsed, received_utc, received_local, ctx)
        fields["@timestamp"] = format_utc(when)
    except (ValueError, OverflowError, OSError, TypeError):
        return None
    fields["event.created"] = created
    hit = (fields, when - received_utc > skew)
    if len(entries) >= _CACHE_MAX:
        entries.clear()
    entries[key] = hit
    return hit


_ReceivedState = tuple[datetime | None, tzinfo | None, datetime, str, int, int, int]
_StableKey = tuple[datetime, str | None, bool, tzinfo, int, int, int]
_RECEIVED_STATE: _ReceivedState = (None, None, datetime.min, "", 0, 0, 0)
#: (naive time, raw text, year missing, zone, receive year, month, day) -> (time fields without
#: ``event.created``, naive UTC event time), for times whose fields depend on the receive time
#: only through its date in the zone (a year in the line; a year-less stamp in an earlier month
#: of the receive year, or in its month but not two days after the receive day, where the hour
#: decides the :func:`infer_year` tolerance); False: look in the per-receive-time
#: cache instead. Kafka stamps every record with its own receive time, so this is the cache
#: that holds for them.
_STABLE_TIMES: dict[_StableKey, tuple[dict[str, object], datetime] | bool] = {}


def _received_state(received: datetime, zone: tzinfo) -> _ReceivedState:
    global _RECEIVED_STATE
    utc, created, local = _received(received, zone)
    state = (received, zone, utc, created, local.year, local.month, local.day)
    _RECEIVED_STATE = state  # one tuple, replaced atomically: safe under threads
    return state


def _stable_time(parsed: Parsed, ts: datetime, key: _StableKey, state: _ReceivedState,
                 ctx: SourceContext) -> tuple[dict[str, object], datetime] | bool:
    """Compute and remember a :data:`_STABLE_TIMES` entry."""
    year, month, day = state[4], state[5], state[6]
    stable = not parsed.year_missing or (ts.month < month and not (ts.month == 1 and month == 12)
                                         and (ts.month != 2 or ts.day != 29 or _is_leap(year)))
    if not stable and ts.month == month and not (month == 2 and ts.day == 29):
        # same month: with the 2-day tolerance a stamp up to the day after the receive day is
        # this year's and one 3+ days after it last year's, whatever the time of the receive
        # day; only 2 days after it does the year depend on the hour
        stable = ts.day != day + 2
    entry: tuple[dict[str, object], datetime] | bool = False
    if stable:
        received_utc, _created, received_local = _received(state[0], state[1])  # type: ignore[arg-type]
        fields: dict[str, object] = {}
        try:
            when = _apply_time(fields, parsed, received_utc, received_local, ctx)
            fields["@timestamp"] = format_utc(when)
            entry = (fields, when)
        except (ValueError, OverflowError, OSError, TypeError):
            return False  # reported by the general path, not cached
    if len(_STABLE_TIMES) >= _CACHE_MAX:
        _STABLE_TIMES.clear()
    _STABLE_TIMES[key] = entry
    return entry


def normalize(parsed: Parsed, raw_text: str, record: Record, ctx: SourceContext, decode_flags: int = 0) -> Event:
    """The stored event for one record. Never raises for any ``Parsed`` a parser returns."""
    event: Event = parsed.fields
    tags: list[str] = []
    ts = parsed.timestamp
    if ts is not None and ts.tzinfo is None and not ts.fold:
        received = record.received
        zone = ctx.zone
        state = _RECEIVED_STATE
        if state[0] is not received or state[1] is not zone:
            state = _received_state(received, zone)
        key = (ts, parsed.raw_time, parsed.year_missing, zone, state[4], state[5], state[6])
        stable = _STABLE_TIMES.get(key)
        if stable is None:
            stable = _stable_time(parsed, ts, key, state, ctx)
        if stable:
            fields, when = stable  # type: ignore[misc]
            event.update(fields)
            event["event.created"] = state[3]
            if when - state[2] > ctx.max_future_skew:
                event["soc.time.future"] = True
                tags.append("_time_future")
        else:
            hit = _cached_time(parsed, ts, received, ctx)
            if hit is not None:
                event.update(hit[0])
                if hit[1]:
                    event["soc.time.future"] = True
                    tags.append("_time_future")
            else:
                _uncached_time(event, parsed, record, ctx, tags)
    else:
        _uncached_time(event, parsed, record, ctx, tags)
    event["_id"] = record.event_id
    event["event.original"] = raw_text
    event["event.dataset"] = ctx.dataset or event.get("event.dataset") or "generic.text"
    status = parsed.status
    event["event.kind"] = "pipeline_error" if status == FAILED else "event"
    event["soc.parse.status"] = status
    if parsed.error:
        event["soc.parse.error"] = parsed.error
    event.setdefault("soc.parse.parser", "unknown")
    if status == PARTIAL:
        tags.append("_parse_partial")
    elif status == FAILED:
        tags.append("_parse_failed")
        event.setdefault("message", raw_text)
    event["soc.source"] = ctx.source
    peer = record.peer
    if ctx.agency_resolver is not None and peer:
        agency_id, agency_name = ctx.agency(peer)
    else:
        agency_id, agency_name = ctx.agency_id, ctx.agency_name
    if agency_id is not None:
        event["organization.id"] = agency_id
    if agency_name is not None:
        event["organization.name"] = agency_name
    if peer:
        event["log.source.address"] = peer
    if decode_flags & INVALID_UTF8:
        event["soc.decode.error"] = True
        event["soc.raw_b64"] = base64.b64encode(record.raw).decode("ascii")
        tags.append("_decode_error")
    if tags:
        event["tags"] = tags
    return event


def _uncached_time(event: Event, parsed: Parsed, record: Record, ctx: SourceContext, tags: list[str]) -> None:
    """The time fields of an event whose time is not cached (see :func:`_cached_time`)."""
    received_utc, created, received_local = _received(record.received, ctx.zone)
    try:
        when = _apply_time(event, parsed, received_utc, received_local, ctx)
        stamp = format_utc(when)
    except (ValueError, OverflowError, OSError, TypeError) as exc:
        when = received_utc
        stamp = created
        event["soc.time.zone"] = "received"
        event["soc.time.year"] = "received"
        event["soc.time.error"] = f"{type(exc).__name__}: {exc}"
        tags.append("_time_invalid")
    event["@timestamp"] = stamp
    event["event.created"] = created
    if when - received_utc > ctx.max_future_skew:
        event["soc.time.future"] = True
        tags.append("_time_future")
