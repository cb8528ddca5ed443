"""Which alerts a bulk change applies to: a query, not a page.

An :class:`AlertQuery` is split in two: the exact-value filters the store can apply
(``status``, ``rule.id``, ``agency``, ``rule.level`` and the time range on ``first_seen``) go to
``store.find`` -- so the scope wrapper the caller's store may be adds its agency filter -- and the
rest (host, user, source address, group-by values, free text) is checked on each alert read
(:meth:`AlertQuery.matches`). :meth:`AlertQuery.matches` also checks the store's part, so an
alert re-read after a concurrent change is judged by the whole query again.

:func:`scan` reads every alert of a query in pages of a stable order without holding them all:
by ``(first_seen, id)`` when the query has a time range, else by ``id``, with a
:class:`Cursor` (keyset pagination: a page starts strictly after the last alert of the one
before, whatever was written meanwhile), so a job can store the cursor and resume from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from soc.alerts.model import ALERTS, AlertWorkflowError, status_of
from soc.store.base import Doc, Store
from soc.text import alert_text, fold

__all__ = ["CRITICALITY_FIELD", "TIME_FIELDS", "AlertQuery", "Cursor", "lookup", "scan"]

#: the alert times a query may select on
TIME_FIELDS = ("first_seen", "last_seen", "detected_at")
#: the security level (1-5, Decree 85/2016) of the system an alert is about (:mod:`soc.alerts.priority`)
CRITICALITY_FIELD = "asset.level"
#: entity fields each named filter looks at (in ``entities`` and in ``group``)
_ENTITY_FIELDS = {"host": ("host.name",), "user": ("user.name", "user.target.name"), "source_ip": ("source.ip",)}
_AFTER = "\x00"  # s + _AFTER is the smallest text greater than s (the store compares text bytewise)


def lookup(source: Mapping[str, Any], name: str) -> Any:
    """The value of a dotted field in a body whose keys are nested (``rule.id``), flat
    (``entities`` -> ``{"host.name": [...]}``) or a mix; ``None`` when absent."""
    if name in source:
        return source[name]
    head = name
    while "." in head:
        head = head.rpartition(".")[0]
        child = source.get(head)
        if isinstance(child, Mapping):
            return lookup(child, name[len(head) + 1:])
    return None


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def _same(a: Any, b: Any) -> bool:
    return str(a).casefold() == str(b).casefold()


def _as_list(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if v]


@dataclass(frozen=True)
class AlertQuery:
    """Alerts matching every filter given (a list: any of its values). ``since``/``until``
    are ISO UTC text bounding ``time_field`` as ``[since, until)``; ``fields`` holds
    exact values of any alert field (``group.source.ip``, ``entities.host.name``, ``rule.title``:
    the values of a grouped view), compared without case; ``text`` is a substring of the
    alert's id, rule, message, agency, entities, group, assignee or notes, compared without
    case and without diacritics (``dang nhap`` finds ``đăng nhập``: :func:`soc.text.fold`);
    ``criticality`` is any of the security levels (1-5) of the affected system the alert
    records (:data:`CRITICALITY_FIELD`, set by :mod:`soc.alerts.priority` when it is raised)."""

    status: str | list[str] | None = None
    rule: str | list[str] | None = None
    agency: str | list[str] | None = None
    level: str | list[str] | None = None
    host: str | None = None
    user: str | None = None
    source_ip: str | None = None
    since: str | None = None
    until: str | None = None
    time_field: str = "first_seen"
    text: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    ids: list[str] | None = None
    criticality: list[int] | None = None

    def check(self) -> AlertQuery:
        """This query when its values are usable, else :class:`AlertWorkflowError`."""
        if self.time_field not in TIME_FIELDS:
            raise AlertWorkflowError(f"alerts are selected by time on {', '.join(TIME_FIELDS)}, not {self.time_field!r}")
        for status in _as_list(self.status):
            if status not in ("open", "new", "acknowledged", "closed"):
                raise AlertWorkflowError(f"unknown alert status {status!r}: use open, acknowledged or closed")
        for level in self.criticality or ():
            if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5:
                raise AlertWorkflowError(f"criticality {level!r}: a security level from 1 to 5 (Decree 85/2016)")
        if self.since and self.until and self.since >= self.until:
            raise AlertWorkflowError(f"the time range is empty: {self.since} is not before {self.until}")
        return self

    @property
    def empty(self) -> bool:
        """True when nothing narrows the query (it selects every alert in scope)."""
        return not any((self.status, self.rule, self.agency, self.level, self.host, self.user, self.source_ip,
                        self.since, self.until, self.text, self.fields, self.ids is not None, self.criticality))

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {} and v != ""}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertQuery:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise AlertWorkflowError(f"unknown alert query field(s) {', '.join(sorted(unknown))}: use {', '.join(sorted(known))}")
        return cls(**dict(data)).check()

    # -- the store's part ------------------------------------------------------------------
    def where(self) -> dict[str, Any]:
        """The exact-value filters for ``store.find`` (``open`` also finds ``new``)."""
        where: dict[str, Any] = {}
        statuses = _as_list(self.status)
        if statuses:
            wanted = set(statuses) | ({"new"} if "open" in statuses else set())
            where["status"] = sorted(wanted)
        for name, value in (("rule.id", self.rule), ("agency", self.agency), ("rule.level", self.level)):
            values = _as_list(value)
            if values:
                where[name] = values if len(values) > 1 else values[0]
        if self.ids is not None:
            where["id"] = list(self.ids)
        if self.criticality:
            levels = sorted(set(self.criticality))
            where[CRITICALITY_FIELD] = levels if len(levels) > 1 else levels[0]
        return where

    # -- the whole query, on one alert -------------------------------------------------------
    def matches(self, alert: Mapping[str, Any]) -> bool:
        """Whether ``alert`` satisfies every filter (the store's part too)."""
        statuses = _as_list(self.status)
        if statuses and status_of(dict(alert)) not in {"open" if s == "new" else s for s in statuses}:
            return False
        for name, value in (("rule.id", self.rule), ("agency", self.agency), ("rule.level", self.level)):
            if _as_list(value) and lookup(alert, name) not in _as_list(value):
                return False
        if self.ids is not None and alert.get("id") not in self.ids:
            return False
        if self.criticality and lookup(alert, CRITICALITY_FIELD) not in self.criticality:
            return False
        moment = alert.get(self.time_field)
        if (self.since and (not moment or moment < self.since)) or (self.until and (not moment or moment >= self.until)):
            return False
        for filter_name, names in _ENTITY_FIELDS.items():
            wanted = getattr(self, filter_name)
            if wanted and not any(_same(v, wanted) for name in names for v in self._entity(alert, name)):
                return False
        for name, wanted in self.fields.items():
            if not any(_same(v, wanted) for v in _values(lookup(alert, name))):
                return False
        return not self.text or fold(self.text) in self._haystack(alert)

    @staticmethod
    def _entity(alert: Mapping[str, Any], name: str) -> list[Any]:
        return [*_values((alert.get("entities") or {}).get(name)), *_values((alert.get("group") or {}).get(name))]

    @staticmethod
    def _haystack(alert: Mapping[str, Any]) -> str:
        return alert_text(alert)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a scan stands: every alert up to ``(value, id)`` in the scan's order is done;
    ``group_done`` says that every alert with ``value`` is done as well."""

    value: str | None = None
    id: str | None = None
    group_done: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "id": self.id, "group_done": self.group_done}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Cursor:
        data = data or {}
        return cls(data.get("value"), data.get("id"), bool(data.get("group_done")))


def scan(store: Store, query: AlertQuery, *, page: int = 500, cursor: Cursor | None = None
         ) -> Iterator[tuple[list[Doc], Cursor]]:
    """Every alert the store's part of ``query`` selects after ``cursor``, page by page, each
    page with the cursor after it. (Callers check :meth:`AlertQuery.matches` on each alert.)"""
    cursor = cursor or Cursor()
    where = query.where()
    if not (query.since or query.until):
        while True:
            start = cursor.id + _AFTER if cursor.id is not None else None
            docs = store.find(ALERTS, where or None, time_field="id", start=start, sort="id", limit=page)
            if not docs:
                return
            cursor = Cursor(docs[-1].id, docs[-1].id, True)
            yield docs, cursor
            if len(docs) < page:
                return
    key = query.time_field
    while True:
        if cursor.value is not None and not cursor.group_done:
            # the rest of the alerts with the same time as the last one, by id
            start = cursor.id + _AFTER if cursor.id is not None else None
            docs = store.find(ALERTS, {**where, key: cursor.value}, time_field="id", start=start, sort="id",
                              limit=page)
            done = len(docs) < page
            cursor = Cursor(cursor.value, docs[-1].id if docs else cursor.id, done)
            if docs:
                yield docs, cursor
            continue
        start = cursor.value + _AFTER if cursor.value is not None else query.since
        docs = store.find(ALERTS, where or None, time_field=key, start=start, end=query.until, sort=key, limit=page)
        if not docs:
            return
        last = docs[-1]
        cursor = Cursor(last.body.get(key), last.id, len(docs) < page)
        yield docs, cursor
        if len(docs) < page:
            return
