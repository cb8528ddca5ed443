"""Event search on the search engine (:mod:`soc.store.event_query`): a page of events by
``search_after``, a ``date_histogram`` and a ``terms`` aggregation, all over one bool filter
built from the query.

**Only DSL values.** Every value is a ``term``/``terms``/``prefix``/``range`` value, a ``match``
query text (fields the catalogue does not list: ``lenient``, so a text value on a numeric field
matches nothing instead of failing) or a ``wildcard`` pattern with ``*``, ``?`` and ``\\``
escaped (free text). Never ``query_string``: nothing a user types is parsed as Lucene syntax.

**Case.** Catalogue string fields keep their case in ECS types and carry an ``lc`` keyword
multi-field with the lowercase normalizer (:mod:`.search_mappings`); filters on them query
``<field>.lc`` (:func:`~soc.store.search_mappings.match_field`), where the engine applies the
normalizer to ``term``, ``terms``, ``prefix``, ``match`` and ``wildcard`` values too: the same
case-insensitive comparison as SQLite. Fields outside the catalogue are lowercase keywords
themselves. ``event.dataset``, ``organization.id`` and the event id (``soc.id``) are exact
keywords. Top values are counted on ``<field>.lc`` too, as SQLite counts them (without case);
Kibana, which counts on the ECS field itself, shows them with their case.

**Long values.** Free text also looks at the catalogue's ECS ``wildcard`` fields
(``process.command_line``, ``url.original``...) with a case-insensitive ``wildcard`` query on the
wildcard field itself, which indexes values of any length: a substring of a 20,000-character
command line is found (SQLite's free text looks at ``message`` and ``event.original`` only).

**Diacritics.** Free text also ignores them (``dang nhap`` finds ``Đăng nhập``): ``message`` and
``event.original`` carry a ``folded`` sub-field (lowercase and ASCII folding,
:data:`soc.store.search_mappings.FOLDED`) searched with the folded text. Event indices created
before that sub-field existed lack it; there the free text still finds the text as typed (the
clause on the field itself), diacritics included.

**Counting.** ``track_total_hits`` up to :data:`TOTAL_LIMIT`: beyond it the total is a lower
bound (``EventPage.total_exact`` is ``False``). Top values are a ``terms`` aggregation: exact
while every daily index holds fewer distinct values than its ``shard_size``, otherwise close.

**Limits of the engine, not of the query.** Values longer than the keyword ``ignore_above``
(8,191 characters for ``lc``) are kept in ``_source`` but not indexed there: no filter or top
value sees them (SQLite does), free text only on the wildcard fields. A prefix on a field the catalogue does not list and the engine mapped
as a number (in some daily index) is refused with :class:`ValueError`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Protocol

from soc.model import Event
from soc.store.base import StoreError, Window
from soc.store.event_query import (
    MAX_BUCKETS,
    MAX_TOP_SIZE,
    TEXT_FIELDS,
    EventPage,
    EventQuery,
    FieldFilter,
    decode_cursor,
    encode_cursor,
    histogram_zone,
    interval_seconds,
    query_agencies,
    top_field,
)
from soc.store.search_client import HTTPError
from soc.store.search_mappings import (
    FOLDED,
    ID_FIELD,
    LOWERCASE,
    event_fields,
    exists_field,
    match_field,
)
from soc.store.search_query import events_target, flatten, ms
from soc.text import fold

__all__ = ["TOTAL_LIMIT", "EventSearching", "filter_clause", "search_filters", "text_clause"]

#: events counted at most for a page's total (``track_total_hits``)
TOTAL_LIMIT = 100_000
_EXACT = {"_id": ID_FIELD}


def _field(name: str) -> str:
    return _EXACT.get(name) or match_field(name)


def _wildcard(text: str) -> str:
    """``*text*`` with the wildcard syntax of ``text`` escaped."""
    return "*" + text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?") + "*"


def _equals(f: FieldFilter, values: tuple[Any, ...]) -> dict[str, Any]:
    name = _field(f.field)
    if f.kind == "unknown":  # the engine mapped it from the first value it saw: any type
        should = [{"match": {name: {"query": v, "lenient": True}}} for v in values]
        return should[0] if len(should) == 1 else {"bool": {"should": should, "minimum_should_match": 1}}
    return {"term": {name: values[0]}} if len(values) == 1 else {"terms": {name: list(values)}}


def _range(name: str, bounds: tuple[Any, Any], times: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for key, bound in zip(("gte", "lt"), bounds, strict=True):
        if bound is not None:
            spec[key] = ms(bound) if times else bound
    if times:
        spec["format"] = "epoch_millis"
    return {"range": {name: spec}}


def filter_clause(f: FieldFilter) -> dict[str, Any]:
    """The DSL clause of one checked filter (see :mod:`soc.store.event_query` for the operators)."""
    name = _field(f.field)
    if f.op == "not_equals":
        return {"bool": {"must_not": [filter_clause(FieldFilter(f.field, "equals", f.value))]}}
    if f.op == "exists":
        clause = {"exists": {"field": _EXACT.get(f.field) or exists_field(f.field)}}
        return clause if f.value else {"bool": {"must_not": [clause]}}
    if f.op == "range":
        return _range(name, f.value, f.kind in ("time", "date"))
    if f.op == "prefix":
        return {"prefix": {name: {"value": f.value}}}
    if f.op == "cidr":
        return {"term": {name: f.value}}
    return _equals(f, f.value if f.op == "in" else (f.value,))


def text_clause(text: str) -> dict[str, Any]:
    """Free text: a substring of ``message`` or ``event.original`` ignoring case and diacritics
    (see **Diacritics** above)."""
    pattern, folded = _wildcard(text), _wildcard(fold(text))
    should: list[dict[str, Any]] = [
        {"wildcard": {f"{name}.{suffix}": {"value": value}}} for name in TEXT_FIELDS
        for suffix, value in ((LOWERCASE, pattern), (FOLDED, folded))]
    should.extend({"wildcard": {name: {"value": pattern, "case_insensitive": True}}} for name in _wildcard_fields())
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _wildcard_fields() -> list[str]:
    """The catalogue's fields of the ECS ``wildcard`` type (see **Long values**)."""
    return sorted(name for name, m in event_fields().items() if m.get("type") == "wildcard")


def search_filters(query: EventQuery, agencies: Collection[str] | None) -> list[dict[str, Any]] | None:
    """The bool filter clauses of a query (without the cursor); ``None`` when nothing can match."""
    filters: list[dict[str, Any]] = []
    scope = query_agencies(query, agencies)
    if scope is not None:
        if not scope:
            return None
        filters.append({"terms": {"organization.id": sorted(scope)}})
    if query.start is not None or query.end is not None:
        filters.append(_range(query.time_field, (query.start, query.end), True))
    if query.text is not None:
        filters.append(text_clause(query.text))
    filters.extend(filter_clause(f) for f in query.filters)
    return filters


def _target(prefix: str, query: EventQuery) -> str:
    window = Window(query.start, query.end, query.time_field)
    return events_target(prefix, window)


def _event(hit: Mapping[str, Any]) -> Event:
    """An event as :meth:`~soc.store.search_base.SearchStore.get_events` returns it."""
    src = dict(hit.get("_source") or {})
    event: Event = flatten(src) if any(isinstance(v, Mapping) for v in src.values()) else src
    event.pop(ID_FIELD, None)
    event["_id"] = hit["_id"]
    return event


class _SearchHost(Protocol):
    prefix: str
    _events_pattern: str

    def _search(self, target: str | None, body: dict[str, Any], what: str = "search") -> dict[str, Any]: ...

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
              ndjson: bool = False, timeout: float | None = None, what: str = "request") -> Any: ...


class EventSearching(_SearchHost):
    """:meth:`search_events`, :meth:`event_histogram`, :meth:`top_values`; mixed into
    :class:`~soc.store.search_base.SearchStore`."""

    def _query(self, query: EventQuery, agencies: Collection[str] | None) -> dict[str, Any] | None:
        filters = search_filters(query, agencies)
        if filters is None:
            return None
        self._check_prefixes(query)
        return {"bool": {"filter": filters}} if filters else {"match_all": {}}

    def _check_prefixes(self, query: EventQuery) -> None:
        """A prefix on a field the catalogue does not list: refused when the engine mapped it as
        anything but a keyword (the engine would fail the whole search)."""
        for f in query.filters:
            if f.op != "prefix" or f.kind != "unknown":
                continue
            try:
                caps = self._call("GET", f"/{self._events_pattern}/_field_caps",
                                  params={"fields": f.field, "ignore_unavailable": True, "allow_no_indices": True},
                                  what="reading field types")
            except HTTPError as error:
                raise StoreError(f"reading the type of {f.field} failed: {error}") from error
            types = set((caps.get("fields") or {}).get(f.field) or {})
            if types - {"keyword", "text", "wildcard", "constant_keyword"}:
                raise ValueError(f"{f.field} holds {', '.join(sorted(types))} values in the store: a prefix "
                                 "needs a text field")

    def search_events(self, query: EventQuery, *, agencies: Collection[str] | None = None) -> EventPage:
        """One page of events matching ``query`` (see :class:`~soc.store.base.Store`)."""
        after = decode_cursor(query.cursor, "dsl", query.order) if query.cursor else None
        clause = self._query(query, agencies)
        if clause is None:
            return EventPage([], None, 0)
        body: dict[str, Any] = {
            "query": clause, "size": query.size + 1, "track_total_hits": TOTAL_LIMIT,
            "sort": [{"@timestamp": {"order": query.order}}, {ID_FIELD: {"order": query.order}}],
            "_source": {"excludes": [ID_FIELD]}}
        if after is not None:
            body["search_after"] = list(after)
        resp = self._search(_target(self.prefix, query), body, "event search")
        hits = resp["hits"]["hits"]
        more = len(hits) > query.size
        hits = hits[:query.size]
        total = resp["hits"].get("total") or {}
        count, exact = int(total.get("value", 0)), total.get("relation", "eq") == "eq"
        cursor = None
        if more:
            ts, id_ = hits[-1]["sort"]
            cursor = encode_cursor("dsl", ts, id_, query.order)
        return EventPage([_event(hit) for hit in hits], cursor, max(count, len(hits)), exact)

    def event_histogram(self, query: EventQuery, interval: str, *, zone: str = "UTC",
                        agencies: Collection[str] | None = None) -> list[tuple[datetime, int]]:
        """Events matching ``query`` per bucket of ``@timestamp`` (see :class:`~soc.store.base.Store`)."""
        interval_seconds(interval)
        tz = histogram_zone(zone)
        clause = self._query(query, agencies)
        if clause is None:
            return []
        spec: dict[str, Any] = {"field": "@timestamp", "time_zone": tz.key, "min_doc_count": 1}
        spec["calendar_interval" if interval == "1d" else "fixed_interval"] = interval
        body = {"query": clause, "size": 0, "track_total_hits": False, "aggs": {"h": {"date_histogram": spec}}}
        try:
            resp = self._search(_target(self.prefix, query), body, "event histogram")
        except StoreError as error:
            if "too_many_buckets" in str(error):
                raise ValueError(f"too many buckets: choose a longer interval or a shorter time range ({error})") \
                    from error
            raise
        buckets = ((resp.get("aggregations") or {}).get("h") or {}).get("buckets") or []
        if len(buckets) > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS:,} buckets: choose a longer interval or a shorter time range")
        return [(datetime.fromtimestamp(b["key"] / 1000, tz), int(b["doc_count"])) for b in buckets]

    def top_values(self, query: EventQuery, field: str, size: int = 10, *,
                   agencies: Collection[str] | None = None) -> list[tuple[Any, int]]:
        """The most frequent values of ``field`` among events matching ``query``."""
        top_field(field)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_TOP_SIZE:
            raise ValueError(f"size {size!r}: 1 to {MAX_TOP_SIZE} values")
        clause = self._query(query, agencies)
        if clause is None:
            return []
        terms = {"field": _field(field), "size": size, "shard_size": min(max(size * 10, 1000), 10_000),
                 "order": [{"_count": "desc"}, {"_key": "asc"}]}
        body = {"query": clause, "size": 0, "track_total_hits": False, "aggs": {"t": {"terms": terms}}}
        resp = self._search(_target(self.prefix, query), body, f"top values of {field}")
        buckets = ((resp.get("aggregations") or {}).get("t") or {}).get("buckets") or []
        return [(b["key"], int(b["doc_count"])) for b in buckets]
