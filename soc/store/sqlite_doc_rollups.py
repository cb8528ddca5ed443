"""Hourly totals of the alerts in the embedded store, so that the dashboard's counts over a month
read a few thousand totals instead of a million index entries.

The oversight dashboard counts the alerts of a range (by ``first_seen``) per bucket and level, per
status, per agency (:mod:`soc.oversight.figures`); at 1,000,000 alerts each such count read a
month of the field table's time index (0.5-0.8 s each on the loaded 2-core machine, 2.4 s per
dashboard). Three tables hold the number of alerts per hour of ``first_seen`` (its first 13
characters, ``2026-12-07T08``): per ``rule.level`` and ``status``, one also per ``agency`` (for
an agency's user, or a count per agency) and one without (the analyst's); and per ``rule.id``
(the analyst's top rules; an agency's are counted through the field table's agency index); and
one of every time per ``agency``, ``rule.id``, ``rule.level`` and ``status`` (the queue's groups
and counts without a time range: at 1,000,000 alerts some 45,000 totals, not a million rows) --
kept by triggers on the field table in the same transaction as every alert write (a changed
alert: its old row counted out, its new one in).

**When they answer.** :func:`rollup_counts` answers a ``count_documents`` of the alerts that
filters only on those fields (``equals``/``in``), in the user's agencies or not: without a time
range from the totals of every time, grouped by up to three of them; with a ``first_seen``
range, grouped by at most one of them, the whole hours of the range from the
totals, the parts of an hour at either end through the field table as before -- the same
answer, because an hour's totals count exactly the alerts whose ``first_seen`` text lies in it.
That holds for the one time format the service writes (:func:`soc.model.iso`,
``2026-12-07T08:15:00.000Z``); while any alert has another ``first_seen`` text, the totals do not
answer (it is counted under a marker, and the marker's count is checked first). Ranges in a zone
with a whole-hour offset (Asia/Ho_Chi_Minh: the dashboard's days) start and end on whole hours.

Rows whose count fell to zero stay (a later alert of the same hour reuses them); answers skip them.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from soc.store.base import OwnedBy
from soc.store.doc_query import MAX_GROUP_BUCKETS, MAX_GROUP_SIZE, DocFilter, DocQuery, number_key
from soc.store.sqlite_sql import rebuild_when_changed

__all__ = ["DIMENSIONS", "ROLLED", "ensure_rollups", "rollup_counts"]

#: the collection with hourly totals, and the fields they are per (besides the hour)
ROLLED = "alerts"
DIMENSIONS = ("agency", "rule.level", "status", "rule.id")
_AGENCIES = "doc_hours_alerts"  # (hour, agency, level, status) -> n
_ALL = "doc_hours_alerts_all"  # (hour, level, status) -> n
_RULES = "doc_hours_alerts_rules"  # (hour, rule) -> n
_TOTALS = "doc_totals_alerts"  # (agency, rule, level, status) -> n, of every time
_COLUMNS = {"agency": "agency", "rule.level": "level", "status": "status", "rule.id": "rule"}
#: the hour of a canonical ``first_seen`` text; another text: the marker x'' (the totals do not
#: answer while it counts any alert); none: x'01' (never in a range)
_CANONICAL = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'"
_OTHER = "x''"


def _hour(row: str) -> str:
    value = f'{row}."first_seen"'
    return (f"CASE WHEN {value} IS NULL THEN x'01' WHEN typeof({value}) = 'text' AND length({value}) = 24 "
            f"AND {value} GLOB {_CANONICAL} THEN substr({value}, 1, 13) ELSE {_OTHER} END")


def _keyed(row: str, column: str) -> str:
    return f"coalesce({row}.{column}, x'')"  # NULL as an empty blob: a key column holds no NULL


def _ddl() -> tuple[list[str], list[str], list[str]]:
    """The tables, the statements filling them from the field table, and the triggers."""
    tables = [f"CREATE TABLE {_AGENCIES} (hour NOT NULL, agency NOT NULL, level NOT NULL, status NOT NULL, "
              "n INTEGER NOT NULL, PRIMARY KEY (agency, hour, level, status)) WITHOUT ROWID",
              f"CREATE INDEX {_AGENCIES}_hour ON {_AGENCIES} (hour, agency, level, status, n)",
              f"CREATE TABLE {_ALL} (hour NOT NULL, level NOT NULL, status NOT NULL, n INTEGER NOT NULL, "
              "PRIMARY KEY (hour, level, status)) WITHOUT ROWID",
              f"CREATE TABLE {_RULES} (hour NOT NULL, rule NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (hour, rule)) "
              "WITHOUT ROWID",
              f"CREATE TABLE {_TOTALS} (agency NOT NULL, rule NOT NULL, level NOT NULL, status NOT NULL, "
              "n INTEGER NOT NULL, PRIMARY KEY (agency, rule, level, status)) WITHOUT ROWID"]
    source = {"agency": _keyed("f", "agency"), "level": _keyed("f", '"rule.level"'), "status": _keyed("f", "status"),
              "rule": _keyed("f", '"rule.id"')}
    fill = [f"INSERT INTO {_AGENCIES} (hour, agency, level, status, n) SELECT {_hour('f')}, {source['agency']}, "
            f"{source['level']}, {source['status']}, COUNT(*) FROM doc_fields_alerts AS f GROUP BY 1, 2, 3, 4",
            f"INSERT INTO {_ALL} (hour, level, status, n) SELECT hour, level, status, SUM(n) FROM {_AGENCIES} "
            "GROUP BY 1, 2, 3",
            f"INSERT INTO {_RULES} (hour, rule, n) SELECT {_hour('f')}, {source['rule']}, COUNT(*) "
            "FROM doc_fields_alerts AS f GROUP BY 1, 2",
            f"INSERT INTO {_TOTALS} (agency, rule, level, status, n) SELECT {source['agency']}, {source['rule']}, "
            f"{source['level']}, {source['status']}, COUNT(*) FROM doc_fields_alerts AS f GROUP BY 1, 2, 3, 4"]
    triggers = []
    for event, row, step in (("INSERT", "new", "+ 1"), ("DELETE", "old", "- 1")):
        hour, agency = _hour(row), _keyed(row, "agency")
        level, status, rule = _keyed(row, '"rule.level"'), _keyed(row, "status"), _keyed(row, '"rule.id"')
        if step == "+ 1":
            body = (f"INSERT INTO {_AGENCIES} (hour, agency, level, status, n) VALUES ({hour}, {agency}, {level}, "
                    f"{status}, 1) ON CONFLICT DO UPDATE SET n = n + 1; "
                    f"INSERT INTO {_ALL} (hour, level, status, n) VALUES ({hour}, {level}, {status}, 1) "
                    "ON CONFLICT DO UPDATE SET n = n + 1; "
                    f"INSERT INTO {_RULES} (hour, rule, n) VALUES ({hour}, {rule}, 1) ON CONFLICT DO UPDATE SET n = n + 1; "
                    f"INSERT INTO {_TOTALS} (agency, rule, level, status, n) VALUES ({agency}, {rule}, {level}, "
                    f"{status}, 1) ON CONFLICT DO UPDATE SET n = n + 1;")
        else:
            body = (f"UPDATE {_AGENCIES} SET n = n - 1 WHERE agency = {agency} AND hour = {hour} AND level = {level} "
                    f"AND status = {status}; UPDATE {_ALL} SET n = n - 1 WHERE hour = {hour} AND level = {level} "
                    f"AND status = {status}; UPDATE {_RULES} SET n = n - 1 WHERE hour = {hour} AND rule = {rule}; "
                    f"UPDATE {_TOTALS} SET n = n - 1 WHERE agency = {agency} AND rule = {rule} AND level = {level} "
                    f"AND status = {status};")
        triggers.append(f"CREATE TRIGGER {_AGENCIES}_{event.lower()} AFTER {event} ON doc_fields_alerts "
                        f"BEGIN {body} END")
    return tables, fill, triggers


def ensure_rollups(conn: sqlite3.Connection) -> None:
    """Create (or rebuild, when their definition changed or the field table was rebuilt without
    them) the hourly totals, filled from the field table. Called after the field tables exist."""
    tables, fill, triggers = _ddl()

    def build() -> None:
        for table in (_AGENCIES, _ALL, _RULES, _TOTALS):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in [*tables, *fill, *triggers]:
            conn.execute(statement)

    rebuild_when_changed(conn, f"rollup:{ROLLED}", [*tables, *triggers],
                         (f"{_AGENCIES}_insert", f"{_AGENCIES}_delete"), build)


# -- answering ----------------------------------------------------------------------------------
Run = Callable[[str, list[Any]], list[Any]]
Count = Callable[[DocQuery, Sequence[str], int, OwnedBy | None], list[tuple[tuple[Any, ...], int]]]
#: (filter, column expression, None) -> the SQL of the filter on that column and its parameters
Test = Callable[[DocFilter, str, None], tuple[str, list[Any]]]
_HOUR_START = ":00:00.000Z"
_TIME_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def _canonical(bound: Any) -> bool:
    return isinstance(bound, str) and _TIME_TEXT.fullmatch(bound) is not None


def _next_hour(hour: str) -> str | None:
    """The hour after ``hour`` (``2026-12-07T23`` -> ``2026-12-08T00``), as text."""
    try:
        moment = datetime.strptime(hour, "%Y-%m-%dT%H") + timedelta(hours=1)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H")


def _whole_hours(gte: Any, lt: Any) -> tuple[str | None, str | None] | None:
    """The first and the end (excluded) whole hour of ``[gte, lt)``; ``None`` when none is whole
    or a bound is not the service's time text."""
    for bound in (gte, lt):
        if bound is not None and not _canonical(bound):
            return None
    first = None
    if gte is not None:
        first = gte[:13] if gte[13:] == _HOUR_START else _next_hour(gte[:13])
        if first is None:
            return None
    end = lt[:13] if lt is not None else None
    if first is not None and end is not None and first >= end:
        return None
    return first, end


def _order(value: Any) -> tuple[int, Any]:
    return (1, value) if isinstance(value, str) else (0, value)


def _conditions(test: Test, others: list[DocFilter], owned_by: OwnedBy | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for f in others:
        sql, more = test(f, f"nullif({_COLUMNS[f.field]}, x'')", None)
        clauses.append(f"coalesce({sql}, 0)")
        params.extend(more)
    if owned_by is not None:
        values = sorted(owned_by.agencies)
        clauses.append(f"agency IN ({', '.join('?' * len(values))})")
        params.extend(values)
    return clauses, params


def _of_every_time(run: Run, test: Test, fields: tuple[str, ...], sizes: tuple[int, ...], others: list[DocFilter],
                   owned_by: OwnedBy | None) -> list[tuple[tuple[Any, ...], int]] | None:
    """A count without a time range, from the totals of every time: in total, or nested groups
    ranked as :mod:`soc.store.sqlite_doc_groups` ranks them (a document without a value of a
    deeper field counts in the groups above it)."""
    clauses, params = _conditions(test, others, owned_by)
    where = " AND ".join(clauses) or "1"
    if not fields:
        return [((), int(run(f"SELECT coalesce(SUM(n), 0) FROM {_TOTALS} WHERE {where}", params)[0][0]))]
    columns = ", ".join(f"nullif({_COLUMNS[name]}, x'')" for name in fields)
    rows = run(f"SELECT {columns}, SUM(n) FROM {_TOTALS} WHERE {where} GROUP BY {columns} HAVING SUM(n) > 0", params)
    totals: list[dict[tuple[Any, ...], int]] = [{} for _ in fields]
    for row in rows:
        for depth in range(len(fields)):
            if row[depth] is None:
                break
            prefix = tuple(row[:depth + 1])
            totals[depth][prefix] = totals[depth].get(prefix, 0) + int(row[-1])
    chosen: list[tuple[Any, ...]] = [()]
    ranked: list[dict[tuple[Any, ...], list[tuple[tuple[Any, ...], int]]]] = []
    buckets = 0
    for depth, size in enumerate(sizes):
        children: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], int]]] = {}
        for prefix, n in totals[depth].items():
            children.setdefault(prefix[:-1], []).append((prefix, n))
        level: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], int]]] = {}
        for parent in chosen:
            level[parent] = sorted(children.get(parent, ()), key=lambda item: (-item[1], _order(item[0][-1])))[:size]
        ranked.append(level)
        chosen = [prefix for items in level.values() for prefix, _ in items]
        buckets += len(chosen)
    if buckets > MAX_GROUP_BUCKETS:
        return None  # the store's own count says why
    out: list[tuple[tuple[Any, ...], int]] = []

    def walk(parent: tuple[Any, ...], depth: int) -> None:
        for prefix, n in ranked[depth].get(parent, ()):
            if depth == len(fields) - 1:
                out.append((tuple(number_key(v) for v in prefix), n))
            else:
                walk(prefix, depth + 1)

    walk((), 0)
    return out


def _table(fields: tuple[str, ...], others: list[DocFilter], owned_by: OwnedBy | None) -> str | None:
    """The totals that hold the fields a count names (``None``: none does)."""
    named = {*fields, *(f.field for f in others)}
    if "rule.id" in named:
        return _RULES if named == {"rule.id"} and owned_by is None else None
    return _AGENCIES if owned_by is not None or "agency" in named else _ALL


def rollup_counts(run: Run, count: Count, test: Test, query: DocQuery, fields: tuple[str, ...],
                  sizes: tuple[int, ...], owned_by: OwnedBy | None) -> list[tuple[tuple[Any, ...], int]] | None:
    """``count_documents`` of ``query`` from the hourly totals and the field table (see the module
    docstring), or ``None`` when the totals cannot answer it. ``count`` is the store's own count
    (for the parts of an hour at either end of the range), ``test`` the SQL of a filter on a
    column (so that the filters compare as on the field table)."""
    if query.collection != ROLLED or query.text is not None or not set(fields) <= set(DIMENSIONS):
        return None
    ranges = [f for f in query.filters if f.field == "first_seen" and f.op == "range"]
    others = [f for f in query.filters if not (f.field == "first_seen" and f.op == "range")]
    if any(f.field not in DIMENSIONS or f.op not in ("equals", "in", "contains_any") for f in others):
        return None
    if owned_by is not None and (not owned_by.agencies or tuple(owned_by.fields) != ("agency",)):
        return None
    if not ranges:
        return _of_every_time(run, test, fields, sizes, others, owned_by)
    if len(ranges) != 1 or len(fields) > 1:
        return None
    gte, lt = ranges[0].value
    whole = _whole_hours(gte, lt)
    if whole is None:
        return None
    if run(f"SELECT 1 FROM {_ALL} WHERE hour = {_OTHER} AND n > 0 LIMIT 1", []):
        return None  # some alert's first_seen is not the service's time text
    first, end = whole
    table = _table(fields, others, owned_by)
    if table is None:
        return None
    clauses, params = ["typeof(hour) = 'text'"], []
    if first is not None:
        clauses.append("hour >= ?")
        params.append(first)
    if end is not None:
        clauses.append("hour < ?")
        params.append(end)
    more_clauses, more_params = _conditions(test, others, owned_by)
    clauses += more_clauses
    params += more_params
    group = f"nullif({_COLUMNS[fields[0]]}, x'')" if fields else "NULL"
    rows = run(f"SELECT {group}, SUM(n) FROM {table} WHERE {' AND '.join(clauses)} GROUP BY 1", params)
    totals: dict[Any, int] = {}
    for value, n in rows:
        if fields and value is None:
            continue
        totals[value] = totals.get(value, 0) + int(n)
    edges = []
    if gte is not None and gte != f"{first}{_HOUR_START}":
        edges.append((gte, f"{first}{_HOUR_START}"))
    if lt is not None and lt != f"{end}{_HOUR_START}":
        edges.append((f"{end}{_HOUR_START}", lt))
    for low, high in edges:
        narrowed = dataclasses.replace(query, filters=(*others, DocFilter("first_seen", "range", (low, high))))
        found = count(narrowed, fields, MAX_GROUP_SIZE, owned_by)
        if fields and len(found) >= MAX_GROUP_SIZE:
            return None  # too many groups to add up here
        for key, n in found:
            value = key[0] if fields else None
            totals[value] = totals.get(value, 0) + n
    if not fields:
        return [((), totals.get(None, 0))]
    ranked = sorted(((v, n) for v, n in totals.items() if n > 0), key=lambda item: (-item[1], _order(item[0])))
    return [((number_key(v),), n) for v, n in ranked[:sizes[0]]]
