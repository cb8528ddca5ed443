"""What the alert queue shows: its URL parameters, the page of alerts, and the groups.

Every filter lives in the URL (``/alerts?status=open&level=high&group=rule.id``), so a view can
be bookmarked, shared, saved (:mod:`soc.web.console.saved_views`) and posted back with a bulk
action (the form carries the query string in ``q``): the list, its groups, the "N matching"
count and the bulk change all read the same :class:`~soc.alerts.AlertQuery`
(:class:`soc.web.api.alert_filters.AlertFilters`, the API's own), inside the user's agency scope.

Parameters: ``status``, ``level``, ``rule``, ``agency`` (repeatable: any of), ``host``,
``user``, ``source_ip``, ``text`` (no case, no diacritics), ``field`` (``FIELD=VALUE``,
repeatable), ``since``/``until`` (:mod:`soc.timeexpr`), ``criticality`` (the affected system's
security level at least 1-5), ``sort`` (:data:`SORTS`), ``group`` (up to three of
:data:`GROUPS`, repeatable, in order), ``limit`` and ``cursor`` (keyset pages).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from soc.alerts import AlertQuery
from soc.alerts.priority import RISK_FIELD, SEVERITY_RANK
from soc.store.base import DocQuery, Store
from soc.web.api.alert_filters import GROUP_FIELDS, AlertFilters, doc_list, group_levels
from soc.web.api.doclist import TRACK_TOTAL, DocList, doc_page
from soc.web.api.paging import Page

__all__ = ["GROUPS", "LIMITS", "SORTS", "STATUSES", "GroupNode", "QueueParams", "bucket_items", "group_tree",
           "parse_params", "queue_page"]

STATUSES = ("open", "acknowledged", "closed")
LEVELS = tuple(SEVERITY_RANK)
#: sort -> (store sort fields before the time field, time field, newest first)
SORTS: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "-first_seen": ((), "first_seen", True), "first_seen": ((), "first_seen", False),
    "-last_seen": ((), "last_seen", True), "-detected_at": ((), "detected_at", True),
    "-risk": ((RISK_FIELD,), "first_seen", True),
}
GROUPS = ("agency", "rule.title", "rule.id", "rule.level", "host.name", "user.name", "source.ip", "status",
          "assignee")
LIMITS = (25, 50, 100, 200)
#: buckets shown per level of a grouping
GROUP_SIZE = 50
_SINGLE = {"host": 256, "user": 256, "source_ip": 64, "text": 256, "since": 64, "until": 64}
_MULTI = {"status": 10, "level": 10, "rule": 200, "agency": 200, "field": 20, "group": 3}
#: a grouped field -> the URL parameter its value becomes (``field``: ``FIELD=VALUE``)
GROUP_PARAMS = {"agency": "agency", "rule.id": "rule", "rule.level": "level", "status": "status",
                "host.name": "host", "user.name": "user", "source.ip": "source_ip", "rule.title": "field:rule.title",
                "assignee": "field:assignee"}
#: parameters that are not filters (a position, a notice shown once after an action)
NOT_FILTERS = ("cursor", "job", "incident", "added", "exception", "closed_job", "view_saved")


@dataclass(frozen=True)
class QueueParams:
    """The queue's URL parameters, checked."""

    items: tuple[tuple[str, str], ...]  # the filter, sort and grouping parameters as given (URL order)
    filters: AlertFilters
    criticality: int | None
    sort: str
    group: tuple[str, ...]
    limit: int
    cursor: str | None

    def query(self, zone: Any, clock: Any) -> AlertQuery:
        return self.filters.query(zone, clock, time_field=SORTS[self.sort][1])

    @property
    def query_string(self) -> str:
        """Filters, sort, grouping and page size (no cursor): the view's URL query."""
        return urlencode(self.items)

    def url(self, **changes: Any) -> str:
        """The queue URL of these parameters with some replaced (``None`` removes one)."""
        items = [(k, v) for k, v in self.items if k not in changes]
        for key, value in changes.items():
            if value is None or value == "" or value == ():
                continue
            for one in value if isinstance(value, (list, tuple)) else [value]:
                items.append((key, str(one)))
        query = urlencode(items)
        return f"/alerts?{query}" if query else "/alerts"

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.items if k == name]

    def value(self, name: str) -> str:
        found = self.values(name)
        return found[0] if found else ""

    @property
    def filtered(self) -> bool:
        return any(k not in ("sort", "group", "limit") for k, _ in self.items)


def parse_params(pairs: Iterable[tuple[str, str]]) -> QueueParams:
    """The checked parameters of ``pairs`` (a query string's); blanks are dropped, anything
    invalid is a :class:`ValueError` (a 400 page saying what)."""
    items: list[tuple[str, str]] = []
    for key, raw in pairs:
        value = raw.strip()
        if not value or key in NOT_FILTERS:
            continue
        if key in _SINGLE:
            if len(value) > _SINGLE[key]:
                raise ValueError(f"{key}: at most {_SINGLE[key]} characters")
            items = [(k, v) for k, v in items if k != key]
        elif key in _MULTI:
            if (key, value) in items:
                continue
            if sum(1 for k, _ in items if k == key) >= _MULTI[key] or len(value) > 300:
                raise ValueError(f"{key}: too many values")
        elif key not in ("criticality", "sort", "limit"):
            continue  # unknown parameters are ignored (old links, other pages' parameters)
        items.append((key, value))
    single = {k: v for k, v in items}
    multi: dict[str, list[str]] = {k: [v for key, v in items if key == k] for k in _MULTI}
    for status in multi["status"]:
        if status not in STATUSES:
            raise ValueError(f"status {status[:40]!r}: use {', '.join(STATUSES)}")
    for level in multi["level"]:
        if level not in LEVELS:
            raise ValueError(f"level {level[:40]!r}: use {', '.join(LEVELS)}")
    for name in multi["group"]:
        if name not in GROUPS:
            raise ValueError(f"group {name[:60]!r}: use up to three of {', '.join(GROUPS)}")
    criticality = None
    if "criticality" in single:
        if single["criticality"] not in ("1", "2", "3", "4", "5"):
            raise ValueError("criticality: a security level from 1 to 5 (Decree 85/2016)")
        criticality = int(single["criticality"])
    sort = single.get("sort", "-first_seen")
    if sort not in SORTS:
        raise ValueError(f"sort {sort[:40]!r}: use one of {', '.join(SORTS)}")
    limit = int(single["limit"]) if single.get("limit", "").isdigit() else 50
    if limit not in LIMITS:
        raise ValueError(f"limit: one of {', '.join(map(str, LIMITS))}")
    filters = AlertFilters(multi["status"], multi["rule"], multi["agency"], multi["level"], single.get("host"),
                           single.get("user"), single.get("source_ip"), single.get("text"), multi["field"],
                           single.get("since"), single.get("until"),
                           tuple(range(criticality, 6)) if criticality else ())
    return QueueParams(tuple(items), filters, criticality, sort, tuple(multi["group"]), limit, None)


@dataclass(frozen=True)
class RankedList(DocList):
    """A document list sorted on ``ranks`` first, then on its time field (newest first)."""

    ranks: tuple[str, ...] = ()

    def query(self, *, size: int, cursor: str | None = None, track_total: int = TRACK_TOTAL) -> DocQuery:
        base = super().query(size=size, cursor=cursor, track_total=track_total)
        return dataclasses.replace(base, sort=(*self.ranks, self.sort))


def queue_page(store: Store, params: QueueParams, query: AlertQuery, cursor: str | None,
               show: Any = lambda body: body) -> Page:
    """One page of the queue in the chosen order after ``cursor``."""
    ranks, _, descending = SORTS[params.sort]
    spec = doc_list(query, descending)
    if ranks:
        spec = RankedList(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}, ranks=ranks)
    return doc_page(store, spec, limit=params.limit, cursor=cursor, show=show)


@dataclass
class GroupNode:
    """A group of the queue: its values down to this level, how many alerts, its subgroups."""

    field: str
    value: Any
    count: int
    items: list[tuple[str, str]]  # the queue parameters selecting exactly this group
    children: list[GroupNode] = dataclasses.field(default_factory=list)

    @property
    def query_string(self) -> str:
        return urlencode(self.items)


def bucket_items(items: Sequence[tuple[str, str]], fields: Sequence[str], values: Sequence[Any]
                 ) -> list[tuple[str, str]]:
    """The queue parameters ``items`` narrowed to one group's values (no grouping: its list)."""
    out = [(k, v) for k, v in items if k != "group"]
    for name, value in zip(fields, values, strict=True):
        target = GROUP_PARAMS[name]
        if target.startswith("field:"):
            field = target.removeprefix("field:")
            out = [(k, v) for k, v in out if not (k == "field" and v.partition("=")[0].strip() == field)]
            out.append(("field", f"{field}={value}"))
        else:
            out = [(k, v) for k, v in out if k != target]
            out.append((target, str(value)))
    return out


def _key(field: str, value: Any) -> Any:
    return str(value).casefold() if GROUP_FIELDS[field][2] else value


def group_tree(store: Store, params: QueueParams, query: AlertQuery) -> tuple[list[GroupNode], int, bool]:
    """The nested groups of ``params.group`` (each level counted by the store or, all levels in
    one pass, by reading the alerts: :func:`soc.web.api.alert_filters.group_levels`), the number of matching
    alerts, and whether every count is exact."""
    fields = list(params.group)
    levels = group_levels(store, query, fields, sizes=[min(GROUP_SIZE ** d, 1000) for d in range(1, len(fields) + 1)])
    exact = all(level["total_exact"] for level in levels)
    total = levels[0]["total"]
    nodes: dict[tuple[Any, ...], GroupNode] = {}
    roots: list[GroupNode] = []
    for depth, level in enumerate(levels, start=1):
        for bucket in level["buckets"]:
            values = [bucket["values"][f] for f in fields[:depth]]
            key = tuple(_key(f, v) for f, v in zip(fields[:depth], values, strict=True))
            parent = nodes.get(key[:-1]) if depth > 1 else None
            if depth > 1 and (parent is None or len(parent.children) >= GROUP_SIZE):
                continue  # its parent is not shown (beyond the biggest groups)
            node = GroupNode(fields[depth - 1], values[-1], bucket["count"],
                             bucket_items(params.items, fields[:depth], values))
            nodes[key] = node
            (parent.children if parent else roots).append(node)
            if depth == 1 and len(roots) >= GROUP_SIZE:
                break
    return roots, total, exact
