"""Event search: pages of events, a histogram, top values, one event, and exports.

**Filters** (every route below but ``/events/{id}``): repeat ``filter=FIELD:OP:VALUE``, all
must hold. ``OP`` is ``eq`` (equal, ignoring case for text; the same field twice: any of the
values), ``ne`` (not equal; also events without the field), ``prefix`` (starts with), ``in``
(any of a JSON array: ``user.name:in:["root","admin"]``), ``cidr`` (an IP field in a network:
``source.ip:cidr:10.0.0.0/8``), ``gte`` / ``lt`` (numbers or times; both on one field make one
range) and ``exists`` (``host.name:exists`` or ``host.name:exists:false``). The value is
everything after the second colon (IPv6 addresses and times keep theirs). Field names and
values are checked by :mod:`soc.store.event_query` (400 naming the bad one); a value is never
query text.

``text`` is a substring of the message or the original line, ignoring case and diacritics; ``since`` /
``until`` select on ``time_field`` (``@timestamp``, the event time, or ``event.ingested``) with
the forms of :mod:`soc.timeexpr` (``15m``, ``2h``, ``7d``, ``yesterday``, ISO 8601; no zone: the
analyst's); ``agency`` (repeatable) narrows to those agencies -- never beyond the caller's
scope, which the store applies inside every query.

Pages are newest first (``order=asc``: oldest first), keyset-paged with the store's cursor.
Exports (``events:export``) stream CSV or JSON of up to :data:`EXPORT_MAX_ROWS` events and are
recorded in the audit trail (``export.events``) before the first byte is sent.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from soc.model import iso
from soc.store.base import EventQuery, FieldFilter
from soc.store.event_query import INTERVALS, MAX_FILTERS, MAX_TOP_SIZE
from soc.web.api.doclist import Since, Until, time_range
from soc.web.api.paging import Cursor, Limit, Page
from soc.web.deps import Caller, client_ip, need
from soc.web.problems import NotFound

__all__ = ["EXPORT_MAX_ROWS", "EventFilters", "parse_filters", "router"]

router = APIRouter(prefix="/events", tags=["events"])

#: most events one export streams
EXPORT_MAX_ROWS = 100_000
#: events read per page while exporting
EXPORT_PAGE = 1000
#: the CSV columns when none are named
DEFAULT_COLUMNS = ("@timestamp", "organization.id", "event.dataset", "host.name", "user.name", "source.ip",
                   "event.action", "event.outcome", "message", "_id")
_OPS = {"eq": "equals", "ne": "not_equals", "prefix": "prefix", "in": "in", "cidr": "cidr", "exists": "exists"}
FILTER_HELP = ("FIELD:OP:VALUE, repeatable; OP is eq, ne, prefix, in (a JSON array), cidr, gte, lt or exists "
               "(value true or false, default true)")


def _filter_error(spec: str, why: str) -> ValueError:
    return ValueError(f"filter {spec[:200]!r}: {why}; use {FILTER_HELP}")


def parse_filters(specs: list[str]) -> list[FieldFilter]:
    """``filter=FIELD:OP:VALUE`` parameters as checked filters (:class:`ValueError` naming a bad one)."""
    if len(specs) > MAX_FILTERS:
        raise ValueError(f"at most {MAX_FILTERS} filters")
    equal: dict[str, list[str]] = {}
    bounds: dict[str, dict[str, str]] = {}
    out: list[FieldFilter] = []
    for spec in specs:
        name, _, rest = spec.partition(":")
        op, _, value = rest.partition(":")
        op = op.strip().lower()
        name = name.strip()
        if not name or not op:
            raise _filter_error(spec, "give a field and an operator")
        if op == "eq":
            equal.setdefault(name, []).append(value)
        elif op in ("gte", "lt"):
            bounds.setdefault(name, {})[op] = value
        elif op == "exists":
            if value.strip().lower() not in ("", "true", "false"):
                raise _filter_error(spec, "exists takes true or false")
            out.append(FieldFilter(name, "exists", value.strip().lower() != "false"))
        elif op == "in":
            try:
                values = json.loads(value)
            except ValueError:
                values = None
            if not isinstance(values, list) or not all(isinstance(v, (str, int, float)) for v in values):
                raise _filter_error(spec, 'in takes a JSON array of values (["root","admin"])')
            out.append(FieldFilter(name, "in", values))
        elif op in _OPS:
            out.append(FieldFilter(name, _OPS[op], value))
        else:
            raise _filter_error(spec, f"unknown operator {op[:20]!r}")
    for name, values in equal.items():
        out.append(FieldFilter(name, "equals", values[0]) if len(values) == 1 else FieldFilter(name, "in", values))
    out.extend(FieldFilter(name, "range", spec) for name, spec in bounds.items())
    return out


@dataclass(frozen=True)
class EventFilters:
    """The filter parameters shared by the search, histogram, top values and export routes."""

    filters: list[str]
    text: str | None
    since: str | None
    until: str | None
    agency: list[str]
    time_field: str

    def query(self, who: Caller, **extra: Any) -> EventQuery:
        """The store query (``extra``: order, size, cursor) with times in the analyst's zone."""
        window = time_range(self.since, self.until, who.services.settings.zone, who.services.clock)
        return EventQuery(filters=tuple(parse_filters(self.filters)), text=self.text, start=window.start,
                          end=window.end, time_field=self.time_field,
                          agencies=frozenset(self.agency) if self.agency else None, **extra)

    def described(self) -> dict[str, Any]:
        """The filters as the audit trail records them."""
        return {"filters": self.filters, "text": self.text, "since": self.since, "until": self.until,
                "agency": self.agency, "time_field": self.time_field}


def event_filters(
    filter: list[str] = Query([], description=FILTER_HELP),
    text: str | None = Query(None, max_length=256, description="free text in the message or original line"),
    since: str | None = Since,
    until: str | None = Until,
    agency: list[str] = Query([], description="only these agencies (repeatable; within your scope)"),
    time_field: Literal["@timestamp", "event.ingested"] = Query("@timestamp", description="the time since/until "
                                                                "select on"),
) -> EventFilters:
    """The filter parameters (a route dependency)."""
    return EventFilters(list(filter), text, since, until, list(agency), time_field)


Filters = Depends(event_filters)


@router.get("", summary="Search events (newest first, keyset pages)")
def search_events(filters: EventFilters = Filters, order: Literal["desc", "asc"] = Query("desc"),
                  limit: int = Limit, cursor: str | None = Cursor,
                  who: Caller = need("events:read")) -> dict[str, Any]:
    page = who.services.store.search_events(filters.query(who, order=order, size=limit, cursor=cursor))
    return Page(list(page.events), page.cursor, page.total, page.total_exact).body()


@router.get("/histogram", summary="How many events match, per interval")
def histogram(filters: EventFilters = Filters,
              interval: str = Query("1h", description=f"one of {', '.join(INTERVALS)}"),
              zone: str | None = Query(None, max_length=64, description="IANA zone the buckets follow "
                                       "(default: the analyst's)"),
              who: Caller = need("events:read")) -> dict[str, Any]:
    zone_name = zone or who.services.settings.timezone
    buckets = who.services.store.event_histogram(filters.query(who), interval, zone=zone_name)
    return {"interval": interval, "zone": zone_name, "total": sum(n for _, n in buckets),
            "buckets": [{"start": start.isoformat(), "count": count} for start, count in buckets]}


@router.get("/top", summary="The most frequent values of a field among matching events")
def top_values(filters: EventFilters = Filters, field: str = Query(..., max_length=256),
               size: int = Query(10, ge=1, le=MAX_TOP_SIZE), who: Caller = need("events:read")) -> dict[str, Any]:
    values = who.services.store.top_values(filters.query(who), field, size)
    return {"field": field, "values": [{"value": value, "count": count} for value, count in values]}


def _cell(value: Any) -> str:
    """A CSV cell: lists joined, and text a spreadsheet would run as a formula made inert."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join("" if v is None else str(v) for v in value)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _rows(who: Caller, query: EventQuery, first: list[dict[str, Any]], cursor: str | None,
          max_rows: int) -> Iterator[dict[str, Any]]:
    sent = 0
    events = first
    while True:
        for event in events:
            if sent >= max_rows:
                return
            sent += 1
            yield event
        if cursor is None or sent >= max_rows:
            return
        page = who.services.store.search_events(replace(query, cursor=cursor))
        events, cursor = list(page.events), page.cursor


def _csv(rows: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for n, event in enumerate(rows, start=1):
        writer.writerow([_cell(event.get(c)) for c in columns])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for n, event in enumerate(rows):
        yield ("," if n else "") + "\n" + json.dumps(event, ensure_ascii=False, default=str)
    yield "\n]\n"


@router.get("/export", summary="Export matching events as CSV or JSON (streamed, audited)")
def export_events(request: Request, filters: EventFilters = Filters,
                  format: Literal["csv", "json"] = Query("csv"),
                  fields: str | None = Query(None, max_length=4000, description="CSV columns, comma-separated "
                                             f"(default: {', '.join(DEFAULT_COLUMNS)})"),
                  order: Literal["desc", "asc"] = Query("desc"),
                  max_rows: int = Query(10_000, ge=1, le=EXPORT_MAX_ROWS, description="most events exported"),
                  who: Caller = need("events:export")) -> StreamingResponse:
    columns = [c.strip() for c in fields.split(",") if c.strip()] if fields else list(DEFAULT_COLUMNS)
    if len(columns) > 200:
        raise ValueError("at most 200 columns")
    query = filters.query(who, order=order, size=min(EXPORT_PAGE, max_rows))
    first = who.services.store.search_events(query)  # a bad filter answers 400 before anything is sent
    rows = min(first.total, max_rows)
    who.services.audit.record(who.principal, "export.events", ("events", None), {
        **filters.described(), "format": format, "columns": columns if format == "csv" else None,
        "order": order, "max_rows": max_rows, "matched": first.total, "matched_exact": first.total_exact,
        "rows": rows}, ip=client_ip(request), user_agent=request.headers.get("user-agent"))
    stream = _rows(who, query, list(first.events), first.cursor, max_rows)
    stamp = iso(who.services.clock()).replace(":", "").replace("-", "")[:15]
    name = f"events-{stamp}.{format}"
    body = _csv(stream, columns) if format == "csv" else _json(stream)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    return StreamingResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Total-Count": str(first.total),
        "X-Export-Rows": str(rows)})


@router.get("/{event_id}", summary="One event (404 when unknown or outside your agencies)")
def get_event(event_id: str, who: Caller = need("events:read")) -> dict[str, Any]:
    found = who.services.store.get_events([event_id])
    if not found:
        raise NotFound(f"no event {event_id!r}")
    return dict(found[0])
