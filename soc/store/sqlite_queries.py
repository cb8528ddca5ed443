"""Querying events in the embedded store: detection predicates over a time window and
datasets, one at a time or many in one scan (with the keyword prefilter of
:mod:`soc.store.sqlite_keywords`), events by id, and counts."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import orjson

from soc.model import Event, iso
from soc.store.base import Bucket, Match, StoreError, Window
from soc.store.sqlite_keywords import fold_ascii, keyword_requirement, literal_finder
from soc.store.sqlite_schema import _FIELD_COLUMN, SQLiteHost
from soc.store.sqlite_sql import quote_ident


class EventQueries(SQLiteHost):
    """Matching, reading and counting events; a part of :class:`~soc.store.sqlite.SQLiteStore`."""

    _id_indexed: bool
    """Whether ``events`` has an index on ``id`` (a scratch store builds it on first use)."""
    _finders: list[re.Pattern[str]]
    """The literal finders of the prefilter, by number (the SQL function takes the number)."""
    _finder_ids: dict[frozenset[str], int]

    def _where_window(self, window: Window) -> tuple[list[str], list[Any]]:
        column = _FIELD_COLUMN.get(window.field)
        if column not in ("ts", "ingested"):
            raise StoreError(f"windows run on @timestamp or event.ingested, not {window.field!r}")
        clauses, params = [], []
        if window.start is not None:
            clauses.append(f"{column} >= ?")
            params.append(window.start)
        if window.end is not None:
            clauses.append(f"{column} < ?")
            params.append(window.end)
        if window.ingested_before is not None:
            clauses.append("ingested < ?")
            params.append(window.ingested_before)
        return clauses, params

    @staticmethod
    def _where_agencies(agencies: Collection[str] | None, clauses: list[str], params: list[Any]) -> bool:
        """Add the agency filter (ids bound as parameters); False when nothing can match."""
        if agencies is None:
            return True
        if not agencies:
            return False
        values = sorted(agencies)
        clauses.append(f"agency IN ({', '.join('?' * len(values))})")
        params.extend(values)
        return True

    def _match_clauses(self, where: Any, datasets: Sequence[str] | None, window: Window,
                       agencies: Collection[str] | None = None) -> tuple[list[str], list[Any]] | None:
        clauses, params = self._where_window(window)
        if datasets is not None:
            if not datasets:
                return None
            clauses.append(f"dataset IN ({', '.join('?' * len(datasets))})")
            params.extend(datasets)
        if not self._where_agencies(agencies, clauses, params):
            return None
        if where:
            clauses.append(f"({where})")
        return clauses, params

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window, *,
                      agencies: Collection[str] | None = None) -> int:
        built = self._match_clauses(where, datasets, window, agencies)
        if built is None:
            return 0
        clauses, params = built
        (count,) = self._conn().execute(
            f"SELECT COUNT(*) FROM events WHERE {' AND '.join(clauses) or '1'}", params).fetchone()
        return int(count)

    def find_matches(
        self,
        where: Any,
        datasets: Sequence[str] | None,
        window: Window,
        fields: Sequence[str],
        limit: int,
        *,
        agencies: Collection[str] | None = None,
    ) -> list[Match]:
        self.prepare_fields(fields)
        built = self._match_clauses(where, datasets, window, agencies)
        if built is None:
            return []
        clauses, params = built
        columns = ", ".join(quote_ident(_FIELD_COLUMN.get(f, f)) for f in fields)
        sql = (f"SELECT id, ts, agency{', ' + columns if columns else ''} FROM events"
               f" WHERE {' AND '.join(clauses) or '1'} ORDER BY ts, id LIMIT ?")
        params.append(limit)
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"query failed: {error}") from error
        return [Match(row[0], row[1], row[2], dict(zip(fields, row[3:], strict=True))) for row in rows]

    def aggregate_matches(self, where: Any, datasets: Sequence[str] | None, window: Window,
                          group_by: Sequence[str], *, sum_field: str | None = None,
                          bucket_seconds: int | None = None,
                          agencies: Collection[str] | None = None) -> list[Bucket]:
        """One ``GROUP BY`` over the matching events (see :meth:`Store.aggregate_matches`)."""
        self.prepare_fields([*group_by, *([sum_field] if sum_field else [])])
        built = self._match_clauses(where, datasets, window, agencies)
        if built is None:
            return []
        clauses, params = built
        columns = ["agency", *(quote_ident(_FIELD_COLUMN.get(f, f)) for f in group_by)]
        bucket = f"CAST(ts / {int(bucket_seconds)} AS INTEGER)" if bucket_seconds else "0"
        # TOTAL: a float, 0.0 for no rows; CAST of text that is no number gives 0.0 (adds nothing)
        total = f"TOTAL(CAST({quote_ident(_FIELD_COLUMN.get(sum_field, sum_field))} AS REAL))" if sum_field else "0"
        sql = (f"SELECT {', '.join(columns)}, {bucket} AS soc_bucket, COUNT(*), MIN(ts), MAX(ts), {total}"
               f" FROM events WHERE {' AND '.join(clauses) or '1'} GROUP BY {', '.join(columns)}, soc_bucket")
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"aggregation failed: {error}") from error
        width = len(group_by)
        return [Bucket(row[0], tuple(row[1:1 + width]), int(row[2 + width]), float(row[3 + width]),
                       float(row[4 + width]), float(row[5 + width]),
                       float(row[1 + width] * bucket_seconds) if bucket_seconds else None) for row in rows]

    #: predicates evaluated per pass (one SQLite result column each)
    MANY_CHUNK = 64
    #: keyword atoms from which a prefiltered pass pays: one LIKE costs SQLite ~0.07 us per
    #: row, one call of :meth:`_has_literal` ~3 us
    PREFILTER_MIN_ATOMS = 40

    def _has_literal(self, message: Any, finder: int) -> int:
        if message is None:
            return 0
        if not isinstance(message, str):
            return 1  # not text: no prefilter, the exact predicates decide
        return 1 if self._finders[finder].search(fold_ascii(message)) else 0

    def _finder(self, literals: frozenset[str]) -> int:
        with self._columns_lock:
            if literals not in self._finder_ids:
                self._finders.append(literal_finder(literals))
                self._finder_ids[literals] = len(self._finders) - 1
            return self._finder_ids[literals]

    def _passes(self, wheres: Sequence[Any]) -> list[tuple[list[int], str | None]]:
        """The predicates (by index) evaluated together, each group with its prefilter clause."""
        needs = [keyword_requirement(w) if isinstance(w, str) else None for w in wheres]
        keyword = [i for i, n in enumerate(needs) if n is not None]
        atoms = sum(wheres[i].upper().count(" LIKE ") for i in keyword)
        if atoms < self.PREFILTER_MIN_ATOMS:
            return [(list(range(len(wheres))), None)]
        literals = frozenset().union(*(needs[i] for i in keyword))  # type: ignore[arg-type]
        gate = f"soc_has_literal(message, {self._finder(literals)})"
        rest = [i for i, n in enumerate(needs) if n is None]
        return [(rest, None), (keyword, gate)] if rest else [(keyword, gate)]

    def find_matches_many(
        self,
        wheres: Sequence[Any],
        datasets: Sequence[str] | None,
        window: Window,
        fields: Sequence[str],
        limit: int,
        *,
        agencies: Collection[str] | None = None,
    ) -> list[list[Match]]:
        self.prepare_fields(fields)
        out: list[list[Match]] = [[] for _ in wheres]
        columns = ", ".join(quote_ident(_FIELD_COLUMN.get(f, f)) for f in fields)
        for members, gate in self._passes(wheres):
            for start in range(0, len(members), self.MANY_CHUNK):
                chunk = members[start:start + self.MANY_CHUNK]
                built = self._match_clauses(" OR ".join(f"({wheres[i]})" for i in chunk), datasets, window,
                                            agencies)
                if built is None:
                    return out
                clauses, params = built
                if gate is not None:
                    clauses.insert(len(clauses) - 1, gate)  # before the predicates
                flags = ", ".join(f"CASE WHEN ({wheres[i]}) THEN 1 ELSE 0 END" for i in chunk)
                sql = (f"SELECT id, ts, agency, {flags}{', ' + columns if columns else ''} FROM events"
                       f" WHERE {' AND '.join(clauses)} ORDER BY ts, id")
                width = len(chunk)
                try:
                    cursor = self._conn().execute(sql, params)
                    for row in cursor:
                        match: Match | None = None
                        for column, i in enumerate(chunk, start=3):
                            if row[column] and len(out[i]) < limit:
                                if match is None:
                                    match = Match(row[0], row[1], row[2],
                                                  dict(zip(fields, row[3 + width:], strict=True)))
                                out[i].append(match)
                except sqlite3.Error as error:
                    raise StoreError(f"query failed: {error}") from error
        return out

    def get_events(self, ids: Sequence[str], *, agencies: Collection[str] | None = None) -> list[Event]:
        out: list[Event] = []
        scope: list[str] = []
        scope_params: list[Any] = []
        if not self._where_agencies(agencies, scope, scope_params):
            return out
        conn = self._conn()
        if not self._id_indexed:
            with self._columns_lock:
                conn.execute("CREATE INDEX IF NOT EXISTS events_id ON events (id)")
                self._id_indexed = True
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            rows = conn.execute(
                "SELECT id, ts, ingested, dataset, agency, message, original, doc FROM events"
                f" WHERE id IN ({', '.join('?' * len(chunk))}){''.join(' AND ' + c for c in scope)}",
                [*chunk, *scope_params]).fetchall()
            for id_, ts, ingested, dataset, agency, message, original, doc in rows:
                event: Event = orjson.loads(doc)
                event.update({"_id": id_, "@timestamp": iso(datetime.fromtimestamp(ts).astimezone()),
                              "event.ingested": iso(datetime.fromtimestamp(ingested).astimezone()),
                              "event.dataset": dataset})
                if agency is not None:
                    event["organization.id"] = agency
                if message is not None:
                    event["message"] = message
                if original is not None:
                    event["event.original"] = original
                out.append(event)
        order = {id_: i for i, id_ in enumerate(ids)}
        out.sort(key=lambda e: order[e["_id"]])
        return out

    def count_events(self, window: Window | None = None, group_by: str | None = None, *,
                     agencies: Collection[str] | None = None) -> dict[str, int]:
        clauses, params = self._where_window(window) if window else ([], [])
        if not self._where_agencies(agencies, clauses, params):
            return {"": 0} if group_by is None else {}
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        if group_by is None:
            (total,) = self._conn().execute(f"SELECT COUNT(*) FROM events{where}", params).fetchone()
            return {"": total}
        self.prepare_fields([group_by])
        column = quote_ident(_FIELD_COLUMN.get(group_by, group_by))
        rows = self._conn().execute(
            f"SELECT {column}, COUNT(*) FROM events{where} GROUP BY 1", params).fetchall()
        return {str(key): count for key, count in rows}
