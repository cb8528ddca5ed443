"""Which alerts a request means, and alerts counted in groups.

:class:`AlertFilters` are the query parameters of ``GET /alerts`` and ``GET /alerts/groups``;
:class:`QueryBody` the same filters in the body of ``POST /alerts/bulk``. Both become an
:class:`~soc.alerts.AlertQuery` -- the query a bulk change runs -- so a list, its groups and a
bulk change over them select the same alerts.

**Groups** (:func:`group_alerts`) count the alerts a query matches per combination of values of
up to three fields (:data:`GROUP_FIELDS`). Each bucket carries its ``query``: the request's
filters narrowed to the bucket's values, ready for ``POST /alerts/bulk`` (or as list filters),
selecting exactly the bucket's alerts. Entity fields compare as the filters do -- ignoring case,
in the alert's ``entities`` and correlation ``group``; ``user.name`` is the ``user`` filter (the
user or the target user) -- and an alert with several hosts counts in each host's bucket. Alerts
without a value of a grouped field are in no bucket (``total`` counts every matching alert).
The store counts the groups of :data:`STORE_GROUPS` of a query it can run whole (status, rule,
agency, level, time); otherwise the alerts are read (up to :data:`MAX_GROUP_SCAN`) -- except
by rule and host, or by host, which a store keeping the alerts' hosts counts
(:data:`soc.store.sqlite_doc_text.HOST_KEY`: each alert once per host ignoring case, a bucket
showing the spelling of its newest alert, as the reading shows the first alert read).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from soc.alerts import AlertQuery, status_of
from soc.alerts.query import lookup
from soc.clock import Clock
from soc.model import parse_iso
from soc.store.base import Store
from soc.store.sqlite_doc_text import HOST_KEY, TEXT_DIALECTS
from soc.text import fold
from soc.timeexpr import TimeRange
from soc.web.api.doclist import DocList, Since, Until, iter_docs, time_range

__all__ = ["GROUP_FIELDS", "MAX_GROUP_SCAN", "SORTS", "AlertFilters", "QueryBody", "alert_filters",
           "doc_list", "group_alerts", "group_levels"]

#: the orders of a list: the time field, newest first with a leading ``-``
SORTS = ("-first_seen", "first_seen", "-last_seen", "last_seen", "-detected_at", "detected_at")
#: alerts read at most to count groups the store cannot count (beyond: ``total_exact`` false)
MAX_GROUP_SCAN = 100_000
#: fields the store counts groups of itself (exact values, as the filters compare them)
STORE_GROUPS = frozenset({"agency", "rule.id", "rule.level", "status"})


def _entity(name: str) -> Callable[[dict[str, Any]], list[Any]]:
    names = ("user.name", "user.target.name") if name == "user.name" else (name,)

    def values(alert: dict[str, Any]) -> list[Any]:
        found: list[Any] = []
        for bag in (alert.get("entities") or {}, alert.get("group") or {}):
            for field in names:
                value = bag.get(field)
                found.extend(value if isinstance(value, list) else [] if value is None else [value])
        return found

    return values


#: groupable field -> (values of an alert, the AlertQuery filter a value becomes, compared ignoring case)
GROUP_FIELDS: dict[str, tuple[Callable[[dict[str, Any]], list[Any]], str, bool]] = {
    "agency": (lambda a: [a.get("agency")], "agency", False),
    "rule.id": (lambda a: [lookup(a, "rule.id")], "rule", False),
    "rule.level": (lambda a: [lookup(a, "rule.level")], "level", False),
    "rule.title": (lambda a: [lookup(a, "rule.title")], "fields:rule.title", True),
    "status": (lambda a: [status_of(a)], "status", False),
    "assignee": (lambda a: [a.get("assignee")], "fields:assignee", True),
    "host.name": (_entity("host.name"), "host", True),
    "user.name": (_entity("user.name"), "user", True),
    "source.ip": (_entity("source.ip"), "source_ip", True),
}


@dataclass(frozen=True)
class AlertFilters:
    """The filter parameters of the alert list and its groups."""

    status: list[str]
    rule: list[str]
    agency: list[str]
    level: list[str]
    host: str | None
    user: str | None
    source_ip: str | None
    text: str | None
    field: list[str]
    since: str | None
    until: str | None
    criticality: tuple[int, ...] = ()

    def query(self, zone: Any, clock: Clock, time_field: str = "first_seen") -> AlertQuery:
        """The :class:`AlertQuery` these parameters mean (times in the analyst's ``zone``)."""
        since, until = time_range(self.since, self.until, zone, clock).bounds()
        fields: dict[str, str] = {}
        for spec in self.field:
            name, sep, value = spec.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"field {spec[:200]!r}: use FIELD=VALUE (rule.title=..., entities.host.name=...)")
            fields[name.strip()] = value
        return AlertQuery(status=self.status or None, rule=self.rule or None, agency=self.agency or None,
                          level=self.level or None, host=self.host, user=self.user, source_ip=self.source_ip,
                          since=since, until=until, time_field=time_field, text=self.text, fields=fields,
                          criticality=sorted(set(self.criticality)) or None).check()


def alert_filters(
    status: list[str] = Query([], description="open, acknowledged or closed (repeatable)"),
    rule: list[str] = Query([], description="rule id (repeatable)"),
    agency: list[str] = Query([], description="agency id (repeatable; within your scope)"),
    level: list[str] = Query([], description="rule level (repeatable)"),
    host: str | None = Query(None, max_length=256, description="a host the alert is about"),
    user: str | None = Query(None, max_length=256, description="a user (or target user) the alert is about"),
    source_ip: str | None = Query(None, max_length=64, description="a source address the alert is about"),
    text: str | None = Query(None, max_length=256, description="substring of id, rule, message, entities, "
                             "assignee, notes (without case or diacritics)"),
    field: list[str] = Query([], description="FIELD=VALUE of any alert field, ignoring case (repeatable): "
                             "rule.title=..., entities.host.name=..., group.source.ip=..."),
    since: str | None = Since,
    until: str | None = Until,
    criticality: list[int] = Query([], description="security level 1-5 (Decree 85/2016) of the affected "
                                   "system, from the asset inventory (repeatable: any of)"),
) -> AlertFilters:
    """The filter parameters (a route dependency)."""
    for security_level in criticality:
        if not 1 <= security_level <= 5:
            raise ValueError(f"criticality {security_level}: a security level from 1 to 5")
    return AlertFilters(list(status), list(rule), list(agency), list(level), host, user, source_ip, text,
                        list(field), since, until, tuple(criticality))


#: entity filter -> the alert fields it looks in (one store query each: :mod:`soc.web.api.doc_union`)
ENTITY_PLACES = {"host": ("entities.host.name", "group.host.name"),
                 "source_ip": ("entities.source.ip", "group.source.ip"),
                 "user": ("entities.user.name", "entities.user.target.name", "group.user.name",
                          "group.user.target.name")}


def doc_list(query: AlertQuery, descending: bool) -> DocList:
    """The alerts of ``query`` as a document list sorted on its time field: the first entity
    filter (host, source address, user) asked of the store in each of its places, the free text
    asked of a store that keeps the alerts' folded text, whatever else the store cannot ask tested
    on each alert read (:meth:`AlertQuery.matches`)."""
    entity = next((name for name in ENTITY_PLACES if getattr(query, name)), None)
    alternatives = tuple((place, "equals", getattr(query, entity)) for place in ENTITY_PLACES[entity]) if entity else ()
    rest = any(getattr(query, name) for name in ENTITY_PLACES if name != entity) or query.fields
    post = rest or query.text
    window = TimeRange(parse_iso(query.since) if query.since else None, parse_iso(query.until) if query.until else None)
    text_keep = replace(query, text=None).matches if rest else None
    return DocList("alerts", query.where(), query.time_field, descending, window,
                   keep=query.matches if post else None, alternatives=alternatives,
                   text=fold(query.text) if query.text else None, text_keep=text_keep)


class QueryBody(BaseModel):
    """Which alerts a bulk change applies to (the filters of the list; times as ``since``/``until``)."""

    status: list[str] | None = Field(None, max_length=10)
    rule: list[str] | None = Field(None, max_length=500)
    agency: list[str] | None = Field(None, max_length=500)
    level: list[str] | None = Field(None, max_length=10)
    host: str | None = Field(None, max_length=256)
    user: str | None = Field(None, max_length=256)
    source_ip: str | None = Field(None, max_length=64)
    text: str | None = Field(None, max_length=256)
    fields: dict[str, str] = Field(default_factory=dict, max_length=20)
    since: str | None = Field(None, max_length=64)
    until: str | None = Field(None, max_length=64)
    time_field: Literal["first_seen", "last_seen", "detected_at"] = "first_seen"
    ids: list[str] | None = Field(None, max_length=10_000)
    criticality: list[int] | None = Field(None, max_length=5)

    def query(self, zone: Any, clock: Clock) -> AlertQuery:
        since, until = time_range(self.since, self.until, zone, clock).bounds()
        return AlertQuery(status=self.status or None, rule=self.rule or None, agency=self.agency or None,
                          level=self.level or None, host=self.host, user=self.user, source_ip=self.source_ip,
                          since=since, until=until, time_field=self.time_field, text=self.text,
                          fields=dict(self.fields), ids=self.ids, criticality=self.criticality or None).check()


def _values(alert: dict[str, Any], field: str) -> list[tuple[Any, Any]]:
    """``(grouping key, value shown)`` of each distinct value of ``field`` (none when it has none)."""
    read, _, folded = GROUP_FIELDS[field]
    seen: dict[Any, Any] = {}
    for value in read(alert):
        if value in (None, ""):
            continue
        key = str(value).casefold() if folded else value
        seen.setdefault(key, value)
    return list(seen.items())


def _combinations(alert: dict[str, Any], fields: list[str]) -> Iterable[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    combos: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = [((), ())]
    for field in fields:
        combos = [(keys + (k,), shown + (v,)) for keys, shown in combos for k, v in _values(alert, field)]
    return combos


def _bucket_query(base: dict[str, Any], fields: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
    query = dict(base)
    narrowed = dict(query.get("fields") or {})
    for field, value in zip(fields, values, strict=True):
        target = GROUP_FIELDS[field][1]
        if target.startswith("fields:"):
            narrowed[target.removeprefix("fields:")] = str(value)
        else:
            query[target] = [value] if target in ("status", "rule", "agency", "level") else value
    if narrowed:
        query["fields"] = narrowed
    return query


def _counted_by_the_store(store: Store, query: AlertQuery, fields: list[str]
                          ) -> tuple[int, dict[tuple[Any, ...], int], bool]:
    """The store's group-by counts (fields it holds as the filters compare them); ``new``
    counts as ``open``."""
    doc_query = doc_list(query, descending=True).query(size=1)
    total = store.count_documents(doc_query)[0][1]
    per_level = {1: 1000, 2: 255, 3: 40}[len(fields)]
    counts: dict[tuple[Any, ...], int] = {}
    found = store.count_documents(doc_query, fields, size=per_level)
    for key, count in found:
        key = tuple("open" if f == "status" and v == "new" else v for f, v in zip(fields, key, strict=True))
        counts[key] = counts.get(key, 0) + count
    return total, counts, len(found) < per_level ** len(fields)


def _counted_by_reading(store: Store, query: AlertQuery, levels: list[list[str]]
                        ) -> tuple[int, list[dict[tuple[Any, ...], int]], list[dict[tuple[Any, ...], tuple[Any, ...]]],
                                   bool]:
    """The counts of every level of ``levels`` in one reading of the alerts."""
    counts: list[dict[tuple[Any, ...], int]] = [{} for _ in levels]
    shown: list[dict[tuple[Any, ...], tuple[Any, ...]]] = [{} for _ in levels]
    matched = 0
    for read, doc in enumerate(iter_docs(store, doc_list(query, descending=True), batch=1000), start=1):
        if read > MAX_GROUP_SCAN:
            return matched, counts, shown, False
        if not query.matches(doc.body):
            continue
        matched += 1
        for fields, level_counts, level_shown in zip(levels, counts, shown, strict=True):
            for keys, values in _combinations(doc.body, fields):
                level_counts[keys] = level_counts.get(keys, 0) + 1
                level_shown.setdefault(keys, values)
    return matched, counts, shown, True


def _answer(query: AlertQuery, fields: list[str], matched: int, counts: dict[tuple[Any, ...], int],
            shown: dict[tuple[Any, ...], tuple[Any, ...]], exact: bool, size: int) -> dict[str, Any]:
    base = query.as_dict()
    # only groups counting at least the size-th biggest count can be among the first: sorting
    # those alone gives the same first buckets (the store may count some 300,000 groups)
    least = heapq.nlargest(size, counts.values())[-1] if len(counts) > size > 0 else None
    candidates = counts if least is None else [k for k, n in counts.items() if n >= least]
    ordered = sorted(candidates, key=lambda k: (-counts[k], [str(v) for v in shown[k]]))
    buckets = [{"values": dict(zip(fields, shown[k], strict=True)), "count": counts[k],
                "query": _bucket_query(base, fields, shown[k])} for k in ordered[:size]]
    return {"by": fields, "total": matched, "total_exact": exact, "buckets": buckets,
            "buckets_total": len(counts)}


#: the query fields the host counts of the store filter on
_HOST_FILTERS = frozenset({"status", "rule.id", "agency", "rule.level"})


def _hosts_by_the_store(store: Store, query: AlertQuery, fields: list[str]) -> bool:
    """Whether the store counts these groups by host (see the module docstring)."""
    post = any((query.host, query.user, query.source_ip, query.text, query.fields))
    return (not post and fields in (["rule.id", "host.name"], ["host.name"]) and query.time_field == "first_seen"
            and set(query.where()) <= _HOST_FILTERS and getattr(store, "dialect", None) in TEXT_DIALECTS)


def _hosts_counted_by_the_store(store: Store, query: AlertQuery, fields: list[str], size: int
                                ) -> tuple[int, dict[tuple[Any, ...], int], dict[tuple[Any, ...], tuple[Any, ...]], bool]:
    """The store's counts per (rule,) host: each alert once per host, hosts compared ignoring case
    (of each rule its ``size`` biggest hosts: the ``size`` biggest groups are among them)."""
    doc_query = doc_list(query, descending=True).query(size=1)
    total = store.count_documents(doc_query)[0][1]
    size = min(size, 1000)
    sizes = [1000, size] if len(fields) == 2 else [size]
    found = store.count_documents(doc_query, [*fields[:-1], HOST_KEY], size=sizes)
    counts: dict[tuple[Any, ...], int] = {}
    shown: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for values, count in found:
        key = (*values[:-1], str(values[-1]).casefold())
        counts[key] = counts.get(key, 0) + count
        shown.setdefault(key, tuple(values))
    per_parent: dict[tuple[Any, ...], int] = {}
    for key in counts:
        per_parent[key[:-1]] = per_parent.get(key[:-1], 0) + 1
    return total, counts, shown, len(per_parent) < 1000 and all(n < size for n in per_parent.values())


def _by_the_store(query: AlertQuery, fields: list[str]) -> bool:
    post = any((query.host, query.user, query.source_ip, query.text, query.fields))
    return not post and set(fields) <= STORE_GROUPS


def group_alerts(store: Store, query: AlertQuery, fields: list[str], *, size: int) -> dict[str, Any]:
    """Counts of the alerts ``query`` matches per combination of ``fields`` values (see the
    module docstring), most first, at most ``size`` buckets."""
    if _by_the_store(query, fields):
        matched, counts, exact = _counted_by_the_store(store, query, fields)
        return _answer(query, fields, matched, counts, {key: key for key in counts}, exact, size)
    if _hosts_by_the_store(store, query, fields):
        matched, counts, shown, exact = _hosts_counted_by_the_store(store, query, fields, size)
        return _answer(query, fields, matched, counts, shown, exact, size)
    matched, all_counts, all_shown, exact = _counted_by_reading(store, query, [fields])
    return _answer(query, fields, matched, all_counts[0], all_shown[0], exact, size)


def group_levels(store: Store, query: AlertQuery, fields: list[str], *, sizes: list[int]) -> list[dict[str, Any]]:
    """:func:`group_alerts` of ``fields[:1]``, ``fields[:2]``... (nested groups with a count at
    every level): counted by the store when it can count them all, else in one reading of the
    alerts for every level."""
    levels = [fields[:depth] for depth in range(1, len(fields) + 1)]
    if _by_the_store(query, fields) or all(_by_the_store(query, level) or _hosts_by_the_store(store, query, level)
                                           for level in levels):
        return [group_alerts(store, query, level, size=size) for level, size in zip(levels, sizes, strict=True)]
    matched, counts, shown, exact = _counted_by_reading(store, query, levels)
    return [_answer(query, level, matched, c, s, exact, size)
            for level, c, s, size in zip(levels, counts, shown, sizes, strict=True)]
