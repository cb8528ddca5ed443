"""Document queries in the embedded store (:mod:`soc.store.doc_query`): a page of documents by
keyset, and counts in total or per group, all through one ``WHERE`` built from the query.

**Only parameters.** Every value -- filter values, free text, agency ids, field paths (as JSON
arrays of their parts), the collection, the cursor's sort values -- is a bound parameter. The
SQL text is assembled from fixed fragments and the quoted column names of the field tables
(:data:`soc.store.sqlite_doc_fields.PROJECTED`, constants of this module).

**Fields.** ``id`` is the ``docs.id`` column. A field of a collection's field table is its
column, a listed field of its values table the rows for it there (both indexed:
:mod:`.sqlite_doc_fields`). Any other field is read from the body with
``json_each(soc_doc_values(body, ?))`` -- every value of the field, a list's elements one by one
-- with the JSON type of each value checked, so text, numbers and booleans compare as the
search engine's keyword, double and boolean fields do.

**Case.** As in event search: ASCII text through ``COLLATE NOCASE`` and ``LIKE`` (wildcards in
the value escaped), other text through ``soc_lower``/``soc_starts``/``soc_contains``, which
lowercase as the search engine does.

**Keyset pages.** ``ORDER BY`` the sort expressions (``NULL`` first ascending, last
descending, as the search engine's ``missing``), then ``id``; the next page is the rows
strictly after the cursor's sort values, spelled out key by key so that ``NULL`` sorts as the
smallest value. Descending pages after a non-missing first key are read in two steps (the
rows with a first key up to the cursor's through an index range, then those without one) so
that an index on the first key serves them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from soc.store.base import Doc, OwnedBy, StoreError
from soc.store.doc_query import (
    ID_FIELD,
    DocFilter,
    DocPage,
    DocQuery,
    check_doc_field,
    decode_doc_cursor,
    encode_doc_cursor,
    forms,
    group_sizes,
)
from soc.store.sqlite_doc_fields import LISTED, PROJECTED, field_table, leads_to, values_table
from soc.store.sqlite_doc_groups import group_counts
from soc.store.sqlite_doc_host_totals import host_totals
from soc.store.sqlite_doc_rollups import rollup_counts
from soc.store.sqlite_doc_text import (
    ALERT_TEXT,
    HOST_KEY,
    host_counts,
    many_hold,
    text_count,
    text_sql,
)
from soc.store.sqlite_schema import SQLiteHost
from soc.store.sqlite_search import _like
from soc.store.sqlite_sql import quote_ident

__all__ = ["DocSearch"]

_EACH = "json_each(soc_doc_values(d.body, ?))"


class _Source:
    """How one query reads its collection: the field table (alias ``f``) when the collection has
    one, joined to ``docs`` (alias ``d``) when bodies are needed."""

    def __init__(self, collection: str):
        self.collection = collection
        self.table = field_table(collection)
        self.columns = set(PROJECTED.get(collection, ()))
        self.values = values_table(collection)
        self.listed = set(LISTED.get(collection, ()))
        self.bodies = False  # set when an expression reads ``d.body``
        self.used: set[str] = set()  # the field-table columns expressions read
        self.id = "f.id" if self.table else "d.id"
        self.walk_text = False  # a page of many alerts holding a free text: walk the order (sqlite_doc_text)

    def column(self, field: str) -> str | None:
        """The SQL of a field held in a column (``id`` or a field-table column), else None."""
        if field == ID_FIELD:
            return "f.id" if self.table else "d.id"
        if field in self.columns:
            self.used.add(field)
            return "f." + quote_ident(field)
        return None

    def holding(self, field: str, test: str, params: list[Any]) -> tuple[str, list[Any]]:
        """The documents with a value ``v`` of a listed field (values table) passing ``test``."""
        return f"{self.id} IN (SELECT v.id FROM {self.values} AS v WHERE v.field = ? AND {test})", [field, *params]

    def each(self, field: str) -> tuple[str, list[Any]]:
        """``json_each`` over the values of a body field and its parameter."""
        self.bodies = True
        return _EACH, [orjson.dumps(field.split(".")).decode()]

    def from_(self, bodies: bool) -> tuple[str, list[Any]]:
        """The ``FROM``/join text and the first ``WHERE`` conditions."""
        if self.table is None:
            return "docs AS d", ["d.collection = ?", self.collection]
        if not bodies:
            return f"{self.table} AS f", []
        # CROSS JOIN: the field table drives (its indexes give the order and the filters)
        literal = "'" + self.collection.replace("'", "''") + "'"
        return f"{self.table} AS f CROSS JOIN docs AS d ON d.collection = {literal} AND d.id = f.id", []


# -- conditions -----------------------------------------------------------------------------------
def _ci_text(expr: str, values: Sequence[str]) -> tuple[list[str], list[Any]]:
    """``expr`` equals one of ``values`` ignoring case (never NULL for text, NULL otherwise)."""
    parts: list[str] = []
    params: list[Any] = []
    ascii_ = [v for v in values if v.isascii()]
    other = [v.lower() for v in values if not v.isascii()]
    if len(ascii_) == 1:
        parts.append(f"{expr} = ? COLLATE NOCASE")
    elif ascii_:
        parts.append(f"{expr} COLLATE NOCASE IN ({', '.join('?' * len(ascii_))})")
    params.extend(ascii_)
    if other:
        parts.append(f"soc_lower({expr}) IN ({', '.join('?' * len(other))})")
        params.extend(other)
    return parts, params


def _equals(expr: str, kind: str | None, f: DocFilter) -> tuple[str, list[Any]]:
    """Any value of ``f`` equals ``expr`` (``kind``: the JSON type expression, ``None`` for a column)."""
    texts = [forms(v) for v in f.values]
    parts: list[str] = []
    params: list[Any] = []
    if f.exact:
        values = list(dict.fromkeys(v.text for v in texts))
        parts.append(f"{expr} = ?" if len(values) == 1 else f"{expr} IN ({', '.join('?' * len(values))})")
        params.extend(values)
    else:
        more, more_params = _ci_text(expr, [v.text for v in texts])
        parts.extend(more)
        params.extend(more_params)
    if kind is not None and parts:
        parts = [f"({kind} = 'text' AND ({' OR '.join(parts)}))"]
    numbers = list(dict.fromkeys(v.number for v in texts if v.number is not None))
    if numbers:
        guard = f"{kind} IN ('integer', 'real') AND " if kind is not None else ""
        parts.append(f"({guard}{expr} IN ({', '.join('?' * len(numbers))}))")
        params.extend(numbers)
    booleans = {v.boolean for v in texts if v.boolean is not None}
    if booleans and kind is not None:
        parts.append(f"{kind} IN ({', '.join(repr(str(b).lower()) for b in sorted(booleans))})")
    return "(" + " OR ".join(parts) + ")", params


def _prefix(expr: str, f: DocFilter) -> tuple[str, list[Any]]:
    value = f.value
    if f.exact:
        return f"substr({expr}, 1, ?) = ?", [len(value), value]
    if value.isascii():
        return f"{expr} LIKE ? ESCAPE '\\'", [_like(value) + "%"]
    return f"soc_starts({expr}, ?)", [value.lower()]


def _contains(expr: str, text: str) -> tuple[str, list[Any]]:
    if text.isascii():
        return f"{expr} LIKE ? ESCAPE '\\'", ["%" + _like(text) + "%"]
    return f"soc_contains({expr}, ?)", [text.lower()]


def _range(expr: str, bounds: tuple[Any, Any]) -> tuple[str, list[Any]]:
    """Numbers compare with numbers, text with text: SQLite orders every number before every
    text, so ``>= ''`` keeps text only and ``< ''`` numbers only."""
    gte, lt = bounds
    text = isinstance(gte if gte is not None else lt, str)
    low = gte if gte is not None else ("" if text else None)
    high = lt if lt is not None else (None if text else "")
    parts, params = [], []
    if low is not None:
        parts.append(f"{expr} >= ?")
        params.append(low)
    if high is not None:
        parts.append(f"{expr} < ?")
        params.append(high)
    return " AND ".join(parts), params


def _value_test(f: DocFilter, expr: str, kind: str | None) -> tuple[str, list[Any]]:
    """One value (``expr``, JSON type ``kind`` or a column's) satisfying ``f`` (not ``exists``)."""
    text_only = f"{kind} = 'text'" if kind is not None else f"typeof({expr}) = 'text'"
    if f.op == "prefix":
        sql, params = _prefix(expr, f)
        return f"({text_only} AND {sql})", params
    if f.op == "range":
        sql, params = _range(expr, f.value)
        if kind is not None:  # booleans are 1 and 0 in json_each
            text = isinstance(f.value[0] if f.value[0] is not None else f.value[1], str)
            wanted = "'text'" if text else "'integer', 'real'"
            sql = f"{kind} IN ({wanted}) AND {sql}"
        return f"({sql})", params
    return _equals(expr, kind, f)


def filter_sql(f: DocFilter, source: _Source) -> tuple[str, list[Any]]:
    """SQL for one filter; never NULL (so that NOT of it is what it says)."""
    if f.op == "not_equals":
        sql, params = filter_sql(DocFilter(f.field, "equals", f.value), source)
        return f"NOT {sql}", params
    column = source.column(f.field)
    if column is not None:
        if f.op == "exists":
            return f"({column} IS {'NOT ' if f.value else ''}NULL)", []
        sql, params = _value_test(f, column, None)
        return f"coalesce({sql}, 0)", params
    if f.field in source.listed:
        if f.op == "exists":
            sql, params = source.holding(f.field, "1", [])
            return (sql if f.value else f"NOT {sql}"), params
        return source.holding(f.field, *_value_test(f, "v.value", "v.type"))
    each, params = source.each(f.field)
    if f.op == "exists":
        return f"{'' if f.value else 'NOT '}EXISTS (SELECT 1 FROM {each})", params
    sql, more = _value_test(f, "j.value", "j.type")
    return f"EXISTS (SELECT 1 FROM {each} AS j WHERE {sql})", [*params, *more]


def _text_sql(query: DocQuery, source: _Source) -> tuple[str, list[Any]]:
    assert query.text is not None
    parts, params = [], []
    for name in query.text_fields:
        if name == ALERT_TEXT and source.table == "doc_fields_alerts":  # the alerts' folded text (FTS5)
            sql, more = text_sql(source.id, query.text, walk=source.walk_text)
            parts.append(sql)
            params.extend(more)
            continue
        column = source.column(name)
        if column is not None:
            sql, more = _contains(column, query.text)
            parts.append(f"coalesce(typeof({column}) = 'text' AND {sql}, 0)")
            params.extend(more)
            continue
        if name in source.listed:
            sql, more = _contains("v.value", query.text)
            sql, more = source.holding(name, f"v.type = 'text' AND {sql}", more)
            parts.append(sql)
            params.extend(more)
            continue
        each, more = source.each(name)
        sql, rest = _contains("j.value", query.text)
        parts.append(f"EXISTS (SELECT 1 FROM {each} AS j WHERE j.type = 'text' AND {sql})")
        params.extend([*more, *rest])
    return "(" + " OR ".join(parts) + ")", params


def _owned_sql(owned_by: OwnedBy, source: _Source) -> tuple[str, list[Any]] | None:
    if not owned_by.agencies or not owned_by.fields:
        return None
    values = sorted(owned_by.agencies)
    marks = ", ".join("?" * len(values))
    parts, params = [], []
    for name in owned_by.fields:
        check_doc_field(name, "owner field")
        column = source.column(name)
        if column is not None:
            parts.append(f"coalesce({column} IN ({marks}), 0)")
            params.extend(values)
            continue
        if name in source.listed:
            sql, more = source.holding(name, f"v.type = 'text' AND v.value IN ({marks})", values)
            parts.append(sql)
            params.extend(more)
            continue
        each, more = source.each(name)
        parts.append(f"EXISTS (SELECT 1 FROM {each} AS j WHERE j.type = 'text' AND j.value IN ({marks}))")
        params.extend([*more, *values])
    return "(" + " OR ".join(parts) + ")", params


def where_sql(query: DocQuery, source: _Source, owned_by: OwnedBy | None) -> tuple[list[str], list[Any]] | None:
    """The conditions of a query (without the collection and the cursor); ``None`` when nothing
    can match."""
    clauses: list[str] = []
    params: list[Any] = []
    if owned_by is not None:
        owned = _owned_sql(owned_by, source)
        if owned is None:
            return None
        clauses.append(owned[0])
        params.extend(owned[1])
    if query.text is not None:
        sql, more = _text_sql(query, source)
        clauses.append(sql)
        params.extend(more)
    for f in query.filters:
        column = source.column(f.field) if f.op not in ("not_equals", "exists", "prefix") else None
        # without coalesce() an index may serve a range, or one value of a field whose index goes on with
        # the sort field; others are tested on the rows of an index walk in the sort order (with an index
        # for "open", SQLite reads and sorts every open alert first: 16.8 s, not 27 ms, at 200k alerts)
        # the id is never NULL: its primary key serves a lookup of a few ids in any order
        if column is not None and (f.op == "range" or f.field == ID_FIELD or len(f.values) == 1
                                   and leads_to(source.collection, f.field, query.sort[0])):
            sql, more = _value_test(f, column, None)
        else:
            sql, more = filter_sql(f, source)
        clauses.append(sql)
        params.extend(more)
    return clauses, params


def _text_alone(query: DocQuery, source: _Source, clauses: list[str]) -> bool:
    """Whether the alerts' free text is a query's only condition (its count: the text table's)."""
    return (source.table == "doc_fields_alerts" and query.text is not None and query.text_fields == (ALERT_TEXT,)
            and len(clauses) == 1 and not query.filters)


# -- keyset ---------------------------------------------------------------------------------------
def _after(keys: list[tuple[str, list[Any]]], values: list[Any], descending: bool, i: int = 0) -> tuple[str, list[Any]]:
    """Rows strictly after ``values`` in the order of ``keys`` (``NULL`` the smallest)."""
    expr, expr_params = keys[i]
    value = values[i]
    if value is None:
        beyond, beyond_params = ("0", []) if descending else (f"{expr} IS NOT NULL", list(expr_params))
        same, same_params = f"{expr} IS NULL", list(expr_params)
    else:
        beyond = f"({expr} < ? OR {expr} IS NULL)" if descending else f"{expr} > ?"
        beyond_params = [*expr_params, value, *expr_params] if descending else [*expr_params, value]
        same, same_params = f"{expr} = ?", [*expr_params, value]
    if i == len(keys) - 1:
        return beyond, beyond_params
    rest, rest_params = _after(keys, values, descending, i + 1)
    return f"({beyond} OR ({same} AND {rest}))", [*beyond_params, *same_params, *rest_params]


class DocSearch(SQLiteHost):
    """:meth:`query_documents` and :meth:`count_documents`; a part of
    :class:`~soc.store.sqlite.SQLiteStore`."""

    def _doc_run(self, sql: str, params: list[Any]) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"document query failed: {error}") from error

    def query_documents(self, query: DocQuery, *, owned_by: OwnedBy | None = None) -> DocPage:
        """One page of the documents matching ``query`` (see :class:`~soc.store.base.Store`)."""
        after = decode_doc_cursor(query, "sqlite") if query.cursor else None
        source = _Source(query.collection)
        if query.text is not None and ALERT_TEXT in query.text_fields and source.table == "doc_fields_alerts":
            source.walk_text = many_hold(self._doc_run, query.text)
        built = where_sql(query, source, owned_by)
        if built is None:
            return DocPage([], None, 0)
        clauses, params = built
        keys = [self._sort_key(source, name, query.descending) for name in query.sort]
        counted_bodies = source.bodies
        direction = "DESC" if query.descending else "ASC"
        order = ", ".join(f"{expr} {direction}" for expr, _ in keys)
        order_params = [p for _, ps in keys for p in ps]
        select = ", ".join(expr for expr, _ in keys)
        from_, first = source.from_(True)
        base = [*first[:1], *clauses]
        base_params = [*first[1:], *params]

        def page(extra: list[str], extra_params: list[Any], limit: int) -> list[Any]:
            where = " AND ".join([*base, *extra]) or "1"
            return self._doc_run(f"SELECT d.id, d.version, d.body, {select} FROM {from_} WHERE {where} "
                                 f"ORDER BY {order} LIMIT ?",
                                 [*order_params, *base_params, *extra_params, *order_params, limit])

        want = query.size + 1
        if after is None:
            rows = page([], [], want)
        else:
            sql, more = _after(keys, after, query.descending)
            first_expr, first_params = keys[0]
            if after[0] is None or not query.descending:
                bound = [] if after[0] is None else [f"{first_expr} >= ?"]
                bound_params = [] if after[0] is None else [*first_params, after[0]]
                rows = page([*bound, sql], [*bound_params, *more], want)
            else:  # the rows up to the cursor's first key through its index, then those without one
                rows = page([f"{first_expr} <= ?", sql], [*first_params, after[0], *more], want)
                if len(rows) < want and query.sort[0] != ID_FIELD:
                    rows += page([f"{first_expr} IS NULL"], list(first_params), want - len(rows))
        more_rows = len(rows) > query.size
        rows = rows[:query.size]
        total, exact = len(rows), not more_rows and after is None
        if not exact and query.track_total:
            if source.walk_text:  # a count starts from the alerts holding the text
                source.walk_text = False
                clauses, params = where_sql(query, source, owned_by) or (clauses, params)
            total, exact = self._doc_total(query, source, counted_bodies, clauses, params)
        cursor = encode_doc_cursor("sqlite", query, list(rows[-1][3:])) if more_rows else None
        return DocPage([Doc(r[0], r[1], orjson.loads(r[2])) for r in rows], cursor, total, exact)

    @staticmethod
    def _sort_key(source: _Source, name: str, descending: bool) -> tuple[str, list[Any]]:
        column = source.column(name)
        if column is not None:
            return column, []
        source.bodies = True
        return "soc_doc_sort(d.body, ?, ?)", [orjson.dumps(name.split(".")).decode(), int(descending)]

    def _doc_total(self, query: DocQuery, source: _Source, bodies: bool, clauses: list[str],
                   params: list[Any]) -> tuple[int, bool]:
        if _text_alone(query, source, clauses):
            count = text_count(self._doc_run, query.text or "", query.track_total)
            return (query.track_total, False) if count > query.track_total else (count, True)
        from_, first = source.from_(bodies)
        where = " AND ".join([*first[:1], *clauses]) or "1"
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {from_} WHERE {where} LIMIT ?)"
        count = int(self._doc_run(sql, [*first[1:], *params, query.track_total + 1])[0][0])
        return (query.track_total, False) if count > query.track_total else (count, True)

    def _edge_count(self, query: DocQuery, group_by: Sequence[str], size: int,
                    owned_by: OwnedBy | None) -> list[tuple[tuple[Any, ...], int]]:
        return self.count_documents(query, group_by, size=size, owned_by=owned_by)

    def count_documents(self, query: DocQuery, group_by: Sequence[str] = (), *, size: int | Sequence[int] = 100,
                        owned_by: OwnedBy | None = None) -> list[tuple[tuple[Any, ...], int]]:
        """How many documents match ``query``, in total or per group (see :class:`~soc.store.base.Store`)."""
        fields, sizes = group_sizes(group_by, size)
        rolled = rollup_counts(self._doc_run, self._edge_count, _value_test, query, fields, sizes, owned_by)
        if rolled is not None:  # alerts by agency, rule, level, status (and time): from the totals
            return rolled
        if HOST_KEY in fields:  # alerts by rule and host: from the host table
            hosts = host_totals(self._doc_run, query, fields, sizes, owned_by)  # the common case: kept totals
            if hosts is None:
                hosts = host_counts(self._doc_run, _value_test, query, fields, sizes, owned_by)
            if hosts is None:
                raise ValueError(f"{HOST_KEY} groups alerts by rule and host, filtered on "
                                 "rule, status, agency, level and first_seen only")
            return hosts
        source = _Source(query.collection)
        built = where_sql(query, source, owned_by)
        if not fields:
            if built is None:
                return [((), 0)]
            if _text_alone(query, source, built[0]):
                return [((), text_count(self._doc_run, query.text or ""))]
            from_, first = source.from_(source.bodies)
            where = " AND ".join([*first[:1], *built[0]]) or "1"
            return [((), int(self._doc_run(f"SELECT COUNT(*) FROM {from_} WHERE {where}",
                                           [*first[1:], *built[1]])[0][0]))]
        if built is None:
            return []
        return group_counts(self._doc_run, source, built, fields, sizes)
