"""Event search in the embedded store (:mod:`soc.store.event_query`): a page of events by keyset,
a histogram and top values, all through one ``WHERE`` built from the query.

**Only parameters.** Every value -- filter values, free text, agency ids, JSON paths, times,
the cursor's position -- is a bound parameter; the SQL text is assembled from fixed fragments
and the quoted names of catalogued numeric fields only (:func:`soc.store.sqlite_sql.quote_ident`
of a name :func:`~soc.store.event_query.field_kind` accepted).

**Fields.** Store columns (``ts``, ``ingested``, ``dataset``, ``agency``, ``message``,
``original``, ``id``) are compared directly. Numeric fields of the catalogue are their
``NUMERIC`` column (added on first use like a rule field: the catalogue is a fixed list, so a
search never grows the table with names a user made up). Every other field is read from the
event's JSON document with ``json_each`` -- so a list value matches when any element does, as
on the search engine -- and compared as text (numbers in their JSON spelling, booleans as
``true``/``false``).

**Case.** Text compares case-insensitively: an ASCII value through ``COLLATE NOCASE`` or
``LIKE`` (both ASCII-case-insensitive, and ``LIKE`` wildcards in the value escaped); a value
with other letters through the Python functions registered here (``soc_lower`` and friends),
which lowercase as the search engine's normalizer does (``Đ`` finds ``đ``). Free text also
ignores diacritics (:func:`soc.text.fold`: ``dang nhap`` finds ``Đăng nhập``): text that is all
ASCII is matched by ``LIKE`` against the folded needle, and only text with other characters
is folded, by a Python function.

**Counting.** Totals are exact (``COUNT(*)`` over the same ``WHERE`` without the cursor).
"""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from soc.model import Event, iso, parse_iso
from soc.store.base import StoreError
from soc.store.event_query import (
    MAX_BUCKETS,
    MAX_TOP_SIZE,
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
from soc.store.sqlite_schema import _FIELD_COLUMN, HOT_FIELDS, SQLiteHost
from soc.store.sqlite_sql import quote_ident
from soc.text import fold

__all__ = ["EventSearch", "register_search_functions"]

#: a JSON value of ``json_each`` as the text the search engine would index for it
_TEXT_VALUE = ("(CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL"
               " ELSE CAST(j.value AS TEXT) END)")
_EACH = "json_each(events.doc, ?) AS j"
_ROW = "id, ts, ingested, dataset, agency, message, original, doc"


def _path(field: str) -> str:
    """The JSON path of a flat dotted key (a checked field name: no quote or backslash)."""
    return f'$."{field}"'


def _col(name: str) -> str:
    """A column of ``events``, qualified (``json_each`` has columns ``id``, ``key``, ``value``...)."""
    return "events." + quote_ident(name)


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- SQL functions ------------------------------------------------------------------------------
def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _contains(value: Any, needle: str) -> int:
    return int(isinstance(value, str) and needle in value.lower())


def _fold_contains(value: Any, needle: str) -> int:
    """``needle`` (folded) is in ``value`` once case and diacritics are set aside -- asked only
    of text that ``LIKE`` did not match, so text that is all ASCII (whose folding is its lower
    case, which ``LIKE`` compared) is answered at once."""
    return int(isinstance(value, str) and not value.isascii() and needle in fold(value))


def _starts(value: Any, needle: str) -> int:
    return int(isinstance(value, str) and value.lower().startswith(needle))


@lru_cache(maxsize=65536)
def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


_MAPPED = 0xFFFF << 32


def _as_v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """An address as the 128-bit number the search engine keeps (IPv4 as IPv4-mapped IPv6)."""
    return int(address) + (_MAPPED if address.version == 4 else 0)


@lru_cache(maxsize=1024)
def _networks(spec: str) -> tuple[tuple[int, int], ...]:
    """``(first, last)`` 128-bit numbers of each network (IPv4 networks as IPv4-mapped ones)."""
    out = []
    for text in orjson.loads(spec):
        network = ipaddress.ip_network(text, strict=False)
        first = _as_v6(network.network_address)
        out.append((first, first + network.num_addresses - 1))
    return tuple(out)


def _ip_in(value: Any, spec: str) -> int:
    """``soc_ip_in(value, '["10.0.0.0/8", ...]')``: the value is an address in one of the
    networks, compared as the search engine does (so ``::/0`` holds every IPv4 address too)."""
    address = _address(value) if isinstance(value, str) else None
    if address is None:
        return 0
    number = _as_v6(address)
    return int(any(first <= number <= last for first, last in _networks(spec)))


def _ip_text(value: Any) -> str | None:
    address = _address(value) if isinstance(value, str) else None
    return None if address is None else str(address)


def _ip_key(value: Any) -> str | None:
    """Sort key of an address as the search engine orders them (IPv4 as IPv4-mapped IPv6)."""
    address = _address(value) if isinstance(value, str) else None
    return None if address is None else f"{_as_v6(address):032x}"


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_iso(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _bucket(ts: float, seconds: int, zone: str) -> float:
    """Start (epoch seconds) of the histogram bucket of ``ts``: local midnight for days,
    otherwise the local wall clock rounded down to a multiple of ``seconds``."""
    tz = _zone(zone)
    local = datetime.fromtimestamp(ts, tz)
    if seconds == 86400:
        return datetime(local.year, local.month, local.day, tzinfo=tz).timestamp()
    offset = local.utcoffset() or timedelta(0)
    shift = offset.total_seconds()
    return (ts + shift) // seconds * seconds - shift


_zone = lru_cache(maxsize=64)(histogram_zone)


def register_search_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions event search uses, on one connection."""
    for name, arity, function in (("soc_lower", 1, _lower), ("soc_contains", 2, _contains),
                                  ("soc_fold_contains", 2, _fold_contains),
                                  ("soc_starts", 2, _starts), ("soc_ip_in", 2, _ip_in),
                                  ("soc_ip_text", 1, _ip_text), ("soc_ip_key", 1, _ip_key),
                                  ("soc_epoch", 1, _epoch), ("soc_bucket", 3, _bucket)):
        conn.create_function(name, arity, function, deterministic=True)


# -- conditions ---------------------------------------------------------------------------------
def _text_condition(expr: str, op: str, value: str) -> tuple[str, list[Any]]:
    """``expr`` (text or NULL) equals / starts with / contains ``value``, ignoring case."""
    if value.isascii():
        if op == "equals":
            return f"{expr} = ? COLLATE NOCASE", [value]
        pattern = _like(value) + "%" if op == "prefix" else "%" + _like(value) + "%"
        return f"{expr} LIKE ? ESCAPE '\\'", [pattern]
    function = {"equals": None, "prefix": "soc_starts", "contains": "soc_contains"}[op]
    if function is None:
        return f"soc_lower({expr}) = ?", [value.lower()]
    return f"{function}({expr}, ?)", [value.lower()]


def _free_text(expr: str, text: str) -> tuple[str, list[Any]]:
    """``expr`` (text or NULL) contains ``text`` ignoring case and diacritics: ``LIKE`` with the
    folded text first (exact for text that is all ASCII, which folds to its lower case), then
    :func:`_fold_contains` for the rest."""
    needle = fold(text)
    return f"({expr} LIKE ? ESCAPE '\\' OR soc_fold_contains({expr}, ?))", ["%" + _like(needle) + "%", needle]


def _any_of(expr: str, op: str, values: tuple[str, ...]) -> tuple[str, list[Any]]:
    """``expr`` equals (or starts with) any of ``values``, ignoring case: equality as one
    ``IN`` for the ASCII values and one for the others."""
    if op == "equals" and len(values) > 1:
        ascii_ = [v for v in values if v.isascii()]
        other = [v.lower() for v in values if not v.isascii()]
        parts, params = [], []
        if ascii_:
            parts.append(f"{expr} COLLATE NOCASE IN ({', '.join('?' * len(ascii_))})")
            params.extend(ascii_)
        if other:
            parts.append(f"soc_lower({expr}) IN ({', '.join('?' * len(other))})")
            params.extend(other)
        return "(" + " OR ".join(parts) + ")", params
    parts, params = [], []
    for value in values:
        sql, more = _text_condition(expr, op, value)
        parts.append(sql)
        params.extend(more)
    return ("(" + " OR ".join(parts) + ")" if len(parts) > 1 else parts[0]), params


class EventSearch(SQLiteHost):
    """:meth:`search_events`, :meth:`event_histogram`, :meth:`top_values`; a part of
    :class:`~soc.store.sqlite.SQLiteStore`."""

    def _number_column(self, field: str) -> str:
        self.prepare_fields([field])
        return _col(field)

    def _field_condition(self, f: FieldFilter) -> tuple[str, list[Any]]:
        """SQL for one filter; never NULL (so that NOT of it is what it says)."""
        if f.op == "not_equals":
            sql, params = self._field_condition(FieldFilter(f.field, "equals", f.value))
            return f"NOT ({sql})", params
        column = _FIELD_COLUMN.get(f.field)
        if f.kind == "time":
            assert column is not None
            if f.op == "range":
                return self._range(_col(column), f.value)
            return ("1" if f.value else "0"), []
        if f.kind == "number":
            expr = self._number_column(f.field)
            if f.op == "exists":
                return f"({expr} IS {'NOT ' if f.value else ''}NULL)", []
            if f.op == "range":
                sql, params = self._range(expr, f.value)
                return f"(typeof({expr}) IN ('integer', 'real') AND {sql})", params
            values = f.value if f.op == "in" else (f.value,)
            return f"coalesce({expr} IN ({', '.join('?' * len(values))}), 0)", list(values)
        if f.kind == "exact" or column is not None:
            return self._column_condition(column or f.field, f)
        return self._doc_condition(f)

    @staticmethod
    def _value_condition(f: FieldFilter, text: str, raw: str) -> tuple[str, list[Any]]:
        """One value of a document field -- ``text`` as text or NULL, ``raw`` as stored --
        satisfying ``f`` (``exists``: true for any value)."""
        if f.op == "exists":
            return f"{text} IS NOT NULL", []
        if f.kind == "date":
            return EventSearch._range(f"soc_epoch({raw})", f.value)
        if f.kind == "ip":
            networks = [f.value] if f.op == "cidr" else list(f.value if f.op == "in" else (f.value,))
            return f"soc_ip_in({raw}, ?)", [orjson.dumps(networks).decode()]
        return _any_of(text, "prefix" if f.op == "prefix" else "equals", f.value if f.op == "in" else (f.value,))

    def _doc_condition(self, f: FieldFilter) -> tuple[str, list[Any]]:
        """A filter on a field of the JSON document: any of its values (a list's elements)
        satisfies it. A hot field is read from its column, and from the document only where the
        column holds a list (as JSON text, starting with ``[``)."""
        inner, inner_params = self._value_condition(f, _TEXT_VALUE, "j.value")
        sql = f"EXISTS (SELECT 1 FROM {_EACH} WHERE {inner})"
        params = [_path(f.field), *inner_params]
        if f.field in HOT_FIELDS:
            col = _col(f.field)
            scalar, scalar_params = self._value_condition(f, col, col)
            sql = f"coalesce(CASE WHEN substr({col}, 1, 1) = '[' THEN {sql} ELSE {scalar} END, 0)"
            params.extend(scalar_params)
        if f.op == "exists" and not f.value:
            sql = f"NOT {sql}"
        return sql, params

    @staticmethod
    def _column_condition(column: str, f: FieldFilter) -> tuple[str, list[Any]]:
        """A filter on a store column: exact for store-owned keys, text for message/original."""
        expr = _col(column)
        if f.op == "exists":
            return f"({expr} IS {'NOT ' if f.value else ''}NULL)", []
        values = f.value if f.op == "in" else (f.value,)
        if f.kind != "exact":
            sql, params = _any_of(expr, "prefix" if f.op == "prefix" else "equals", values)
            return f"coalesce({sql}, 0)", params
        if f.op == "prefix":
            return f"coalesce(substr({expr}, 1, ?) = ?, 0)", [len(f.value), f.value]
        return f"coalesce({expr} IN ({', '.join('?' * len(values))}), 0)", list(values)

    @staticmethod
    def _range(expr: str, bounds: tuple[Any, Any]) -> tuple[str, list[Any]]:
        parts, params = [], []
        for bound, sign in zip(bounds, (">=", "<"), strict=True):
            if bound is not None:
                parts.append(f"{expr} {sign} ?")
                params.append(bound)
        return "(" + " AND ".join(parts) + ")", params

    def _where(self, query: EventQuery, agencies: Collection[str] | None) -> tuple[list[str], list[Any]] | None:
        """The conditions of a query (without the cursor); ``None`` when nothing can match."""
        clauses: list[str] = []
        params: list[Any] = []
        scope = query_agencies(query, agencies)
        if scope is not None:
            if not scope:
                return None
            clauses.append(f"events.agency IN ({', '.join('?' * len(scope))})")
            params.extend(sorted(scope))
        column = _col(_FIELD_COLUMN[query.time_field])
        for bound, sign in ((query.start, ">="), (query.end, "<")):
            if bound is not None:
                clauses.append(f"{column} {sign} ?")
                params.append(bound)
        if query.text is not None:
            message, more = _free_text("events.message", query.text)
            original, rest = _free_text("events.original", query.text)
            clauses.append(f"({message} OR {original})")
            params.extend([*more, *rest])
        for f in query.filters:
            sql, more = self._field_condition(f)
            clauses.append(sql)
            params.extend(more)
        return clauses, params

    def _run(self, sql: str, params: list[Any]) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"event search failed: {error}") from error

    def search_events(self, query: EventQuery, *, agencies: Collection[str] | None = None) -> EventPage:
        """One page of events matching ``query`` (see :class:`~soc.store.base.Store`)."""
        after = decode_cursor(query.cursor, "sqlite", query.order) if query.cursor else None
        built = self._where(query, agencies)
        if built is None:
            return EventPage([], None, 0)
        clauses, params = built
        where = " AND ".join(clauses) or "1"
        direction = "DESC" if query.order == "desc" else "ASC"
        page_clauses, page_params = list(clauses), list(params)
        if after is not None:
            page_clauses.append(f"(events.ts, events.id) {'<' if query.order == 'desc' else '>'} (?, ?)")
            page_params.extend(after)
        rows = self._run(f"SELECT {_ROW} FROM events WHERE {' AND '.join(page_clauses) or '1'}"
                         f" ORDER BY ts {direction}, id {direction} LIMIT ?", [*page_params, query.size + 1])
        more = len(rows) > query.size
        rows = rows[:query.size]
        if not more and after is None:
            total = len(rows)
        else:
            total = int(self._run(f"SELECT COUNT(*) FROM events WHERE {where}", params)[0][0])
        cursor = encode_cursor("sqlite", rows[-1][1], rows[-1][0], query.order) if more else None
        return EventPage([_event(row) for row in rows], cursor, total)

    def event_histogram(self, query: EventQuery, interval: str, *, zone: str = "UTC",
                        agencies: Collection[str] | None = None) -> list[tuple[datetime, int]]:
        """Events matching ``query`` per bucket of ``@timestamp`` (see :class:`~soc.store.base.Store`)."""
        seconds = interval_seconds(interval)
        tz = histogram_zone(zone)
        built = self._where(query, agencies)
        if built is None:
            return []
        clauses, params = built
        rows = self._run(f"SELECT soc_bucket(events.ts, ?, ?), COUNT(*) FROM events WHERE {' AND '.join(clauses) or '1'}"
                         f" GROUP BY 1 ORDER BY 1 LIMIT ?", [seconds, tz.key, *params, MAX_BUCKETS + 1])
        if len(rows) > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS:,} buckets: choose a longer interval or a shorter time range")
        return [(datetime.fromtimestamp(b, tz), int(n)) for b, n in rows]

    def top_values(self, query: EventQuery, field: str, size: int = 10, *,
                   agencies: Collection[str] | None = None) -> list[tuple[Any, int]]:
        """The most frequent values of ``field`` among events matching ``query``."""
        kind = top_field(field)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_TOP_SIZE:
            raise ValueError(f"size {size!r}: 1 to {MAX_TOP_SIZE} values")
        built = self._where(query, agencies)
        if built is None:
            return []
        clauses, params = built
        where = " AND ".join(clauses) or "1"
        column = _FIELD_COLUMN.get(field)
        if kind == "number":
            expr = self._number_column(field)
            sql = (f"SELECT {expr}, COUNT(*) FROM events WHERE {where} AND typeof({expr}) IN ('integer', 'real')"
                   f" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?")
        elif column is not None:
            expr = _col(column) if kind == "exact" else f"soc_lower({_col(column)})"
            sql = (f"SELECT {expr}, COUNT(*) FROM events WHERE {where} AND {expr} IS NOT NULL"
                   f" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?")
        else:
            value, order = ("soc_ip_text(j.value)", "soc_ip_key(v)") if kind == "ip" else (f"soc_lower({_TEXT_VALUE})", "v")
            rows = f"SELECT DISTINCT events.rowid AS r, {value} AS v FROM events, {_EACH} WHERE {where}"
            if field in HOT_FIELDS:  # the column, and the document where the column holds a list
                col = _col(field)
                scalar = f"soc_ip_text({col})" if kind == "ip" else f"soc_lower({col})"
                rows = (f"SELECT events.rowid AS r, {scalar} AS v FROM events WHERE {where} AND {col} IS NOT NULL"
                        f" AND substr({col}, 1, 1) != '[' UNION {rows} AND substr({col}, 1, 1) = '['")
                params = [*params, _path(field), *params]
            else:
                params = [_path(field), *params]
            sql = f"SELECT v, COUNT(*) FROM ({rows}) WHERE v IS NOT NULL GROUP BY v ORDER BY 2 DESC, {order} LIMIT ?"
        return [(v, int(n)) for v, n in self._run(sql, [*params, size])]


def _event(row: tuple[Any, ...]) -> Event:
    """An event as :meth:`~soc.store.sqlite.SQLiteStore.get_events` returns it."""
    id_, ts, ingested, dataset, agency, message, original, doc = row
    event: Event = orjson.loads(doc)
    event.update({"_id": id_, "@timestamp": iso(datetime.fromtimestamp(ts, UTC)),
                  "event.ingested": iso(datetime.fromtimestamp(ingested, UTC)), "event.dataset": dataset})
    for key, value in (("organization.id", agency), ("message", message), ("event.original", original)):
        if value is not None:
            event[key] = value
    return event
