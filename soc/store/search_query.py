"""Query building for the search store: pure functions from store arguments to query DSL.

Shared by OpenSearch and Elasticsearch (the DSL below is the same on both), and testable
without a server. Times in :class:`~soc.store.base.Window` are epoch seconds; stored times
(``@timestamp``, ``event.ingested``) are whole milliseconds, so a bound ``t`` becomes the
smallest whole millisecond ``>= t`` and the half-open window ``[start, end)`` selects exactly
the events SQLite selects with ``ts >= start AND ts < end``.

Agency filters (:mod:`soc.store.scoped`) are ``terms`` clauses on exact keyword fields
(``organization.id``; document fields are exact keywords): the ids are terms, never query
text, and a ``terms`` clause on a list-valued field matches when any element does.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from soc.store.base import OwnedBy, StoreError, Window
from soc.store.ecs_schema import ecs_schema
from soc.store.search_mappings import DOC_ID_FIELD, ECS_VERSION_FIELD, ID_FIELD

TIME_FIELDS = ("@timestamp", "event.ingested")
#: hits per request (the default index.max_result_window)
PAGE = 10_000
#: event-time windows of up to this many days query their day indices by name
MAX_DAY_LIST = 31
#: the total order of events: event time, then the event id (SQLite: ``ORDER BY ts, id``)
EVENT_SORT = ({"@timestamp": {"order": "asc"}}, {ID_FIELD: {"order": "asc"}})


def ms(seconds: float) -> int:
    """Epoch seconds -> the smallest whole millisecond >= it."""
    return math.ceil(round(seconds * 1000, 3))


def epoch(value: Any) -> float | None:
    """Epoch seconds of a stored time: ISO text or epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return value / 1000.0
    dt = datetime.fromisoformat(str(value))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def canonical(text: str) -> bool:
    """True for :func:`soc.model.iso` output (``2025-01-31T08:15:00.123Z``)."""
    return len(text) == 24 and text[4] == "-" and text[10] == "T" and text[19] == "." and text[23] == "Z"


def lookup(source: Mapping[str, Any], name: str) -> Any:
    """Value of a dotted field in a ``_source`` whose keys are flat (``"user.name"``), nested
    (``{"user": {"name": ...}}``) or any mix of the two; ``None`` when absent."""
    if name in source:
        return source[name]
    head = name
    while "." in head:
        head = head.rpartition(".")[0]
        child = source.get(head)
        if isinstance(child, Mapping):
            return lookup(child, name[len(head) + 1:])
    return None


def strip_store_fields(event: dict[str, Any]) -> None:
    """Drop what the store itself added to an event's document (``ecs.version`` when it is the
    store's own), so events read back as they were written, as from SQLite."""
    if event.get(ECS_VERSION_FIELD) == ecs_schema().version:
        del event[ECS_VERSION_FIELD]


def flatten(source: Mapping[str, Any], parent: str = "") -> dict[str, Any]:
    """Nested objects -> flat dotted keys (events are flat; a foreign writer may nest)."""
    out: dict[str, Any] = {}
    for key, value in source.items():
        name = f"{parent}.{key}" if parent else key
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def where_clause(where: Any) -> dict[str, Any] | None:
    """A compiled rule predicate as one DSL clause. Accepts a clause dict, a request body
    ``{"query": clause}``, a list of alternatives (OR), or Lucene text (run as
    ``query_string``); ``None`` means everything."""
    if where is None or where == "" or where == {}:
        return None
    if isinstance(where, str):
        return {"query_string": {"query": where}}
    if isinstance(where, Mapping):
        return dict(where["query"]) if set(where) == {"query"} else dict(where)
    if isinstance(where, (list, tuple)):
        clauses = [c for c in map(where_clause, where) if c]
        return {"bool": {"should": clauses, "minimum_should_match": 1}} if clauses else None
    raise StoreError(f"the dsl dialect takes a query DSL clause (dict) or a Lucene query string, "
                     f"not {type(where).__name__}")


def window_filters(window: Window | None) -> list[dict[str, Any]]:
    """Range filters of a window on event time or ingest time (plus ``ingested_before``)."""
    if window is None:
        return []
    if window.field not in TIME_FIELDS:
        raise StoreError(f"windows run on @timestamp or event.ingested, not {window.field!r}")
    filters = []
    bounds = {k: ms(v) for k, v in (("gte", window.start), ("lt", window.end)) if v is not None}
    if bounds:
        filters.append({"range": {window.field: {**bounds, "format": "epoch_millis"}}})
    if window.ingested_before is not None:
        filters.append({"range": {"event.ingested": {"lt": ms(window.ingested_before), "format": "epoch_millis"}}})
    return filters


def agency_filters(agencies: Collection[str] | None) -> list[dict[str, Any]] | None:
    """The event agency filter (``organization.id`` among ``agencies``) as a list of at most
    one clause; ``None`` when nothing can match (no agencies)."""
    if agencies is None:
        return []
    if not agencies:
        return None
    return [{"terms": {"organization.id": sorted(agencies)}}]


def owned_by_filters(owned_by: OwnedBy | None) -> list[dict[str, Any]] | None:
    """A document :class:`OwnedBy` filter as a list of at most one clause (any owner field
    holding any of the agencies); ``None`` when nothing can match."""
    if owned_by is None:
        return []
    if not owned_by.agencies or not owned_by.fields:
        return None
    values = sorted(owned_by.agencies)
    should = [{"terms": {field: values}} for field in owned_by.fields]
    return [should[0] if len(should) == 1 else {"bool": {"should": should, "minimum_should_match": 1}}]


def match_query(where: Any, datasets: Sequence[str] | None, window: Window | None,
                agencies: Collection[str] | None = None) -> dict[str, Any] | None:
    """The rule query: window, dataset terms, agency terms and the predicate in one bool
    filter (no scoring). ``None`` when nothing can match (an empty dataset or agency list)."""
    filters = window_filters(window)
    if datasets is not None:
        if not datasets:
            return None
        filters.append({"terms": {"event.dataset": list(datasets)}})
    scope = agency_filters(agencies)
    if scope is None:
        return None
    filters.extend(scope)
    clause = where_clause(where)
    if clause:
        filters.append(clause)
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}


def day_index(prefix: str, day: datetime) -> str:
    return f"{prefix}-events-{day.strftime('%Y.%m.%d')}"


def events_target(prefix: str, window: Window | None) -> str:
    """The day indices an event-time window can touch (short windows), else all event
    indices. Ingest-time windows need all: late events live in their (old) day's index."""
    pattern = f"{prefix}-events-*"
    if window is None or window.field != "@timestamp" or window.start is None or window.end is None:
        return pattern
    first = datetime.fromtimestamp(window.start, UTC)
    last = datetime.fromtimestamp(max(window.start, window.end - 0.001), UTC)
    days = (last.date() - first.date()).days + 1
    if days > MAX_DAY_LIST:
        return pattern
    return ",".join(day_index(prefix, first + timedelta(days=i)) for i in range(days))


def doc_query(where: Mapping[str, Any] | None, time_field: str | None, start: str | None,
              end: str | None, owned_by: OwnedBy | None = None) -> dict[str, Any] | None:
    """Exact-value filters on (nested, dotted) document fields; ``None`` = nothing matches.
    A list value means any of; ``None`` means missing or null (as SQLite's ``IS NULL``)."""
    filters = owned_by_filters(owned_by)
    if filters is None:
        return None
    for name, value in (where or {}).items():
        if isinstance(value, (list, tuple, set, frozenset)):
            if not value:
                return None
            filters.append({"terms": {name: list(value)}})
        elif value is None:
            filters.append({"bool": {"must_not": {"exists": {"field": name}}}})
        else:
            filters.append({"term": {name: value}})
    if time_field and (start is not None or end is not None):
        bounds = {k: v for k, v in (("gte", start), ("lt", end)) if v is not None}
        filters.append({"range": {time_field: bounds}})
    return {"bool": {"filter": filters}}


def doc_sort(sort: str | None, descending: bool) -> list[dict[str, Any]]:
    """Sort by a body field (missing values first ascending, last descending, as SQLite's
    NULLs), then by document id so that the order is total and pages never overlap."""
    order: list[dict[str, Any]] = [{DOC_ID_FIELD: {"order": "asc"}}]
    if sort:
        order.insert(0, {sort: {"order": "desc" if descending else "asc", "unmapped_type": "keyword",
                                "missing": "_last" if descending else "_first"}})
    return order
