"""Writing events to the embedded store: one ``executemany`` per set of non-NULL columns (see
:mod:`soc.store.sqlite`), idempotent by ``id``, and purging old events."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from itertools import compress
from operator import is_not
from typing import Any

import orjson

from soc.model import Event, parse_iso
from soc.store.base import StoreError, WriteResult
from soc.store.sqlite_schema import _COLUMN_KEYS, _NONES, _ROW_COLUMNS, HOT_FIELDS, SQLiteHost
from soc.store.sqlite_sql import _transaction, quote_ident


def _bindable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(orjson.dumps(v).decode() if isinstance(v, (list, dict, tuple)) else v for v in row)


class EventWriting(SQLiteHost):
    """Writing and purging events; a part of :class:`~soc.store.sqlite.SQLiteStore`."""

    _inserts: dict[tuple[bool, ...], str]
    """The INSERT statement per set of present columns."""
    _materialised: bool
    """Fields were made real columns (:meth:`SQLiteStore.materialise_fields`): no more writes."""

    def _insert_sql(self, present: tuple[bool, ...]) -> str:
        sql = self._inserts.get(present)
        if sql is None:
            names = [quote_ident(c) for c, p in zip(_ROW_COLUMNS, present, strict=True) if p]
            sql = f"INSERT OR IGNORE INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            self._inserts[present] = sql
        return sql

    def write_events(self, events: Sequence[Event]) -> WriteResult:
        if self._materialised:
            raise StoreError("this store's fields were materialised for scanning: it takes no more events")
        now = time.time()
        groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
        rejected: list[tuple[str, str]] = []
        dumps = orjson.dumps
        hot = HOT_FIELDS
        nones = _NONES
        known = self._ids
        fresh: set[str] = set()
        duplicates = 0
        for event in events:
            if known is not None:
                event_id = event.get("_id")
                if event_id in known or event_id in fresh:
                    duplicates += 1
                    continue
            try:
                ts = event.get("_ts")
                if ts is None:
                    ts = parse_iso(event["@timestamp"]).timestamp()
                doc = dict(event)
                for key in _COLUMN_KEYS:
                    doc.pop(key, None)
                row = (event["_id"], ts, now, event.get("event.dataset") or "generic.text",
                       event.get("organization.id"), event.get("message"), event.get("event.original"),
                       dumps(doc).decode(), *map(event.get, hot))
            except (KeyError, TypeError, ValueError, orjson.JSONEncodeError) as error:
                rejected.append((str(event.get("_id")), f"{type(error).__name__}: {error}"))
                continue
            if known is not None:
                fresh.add(row[0])
            present = tuple(map(is_not, row, nones))
            bucket = groups.get(present)
            if bucket is None:
                bucket = groups[present] = []
            bucket.append(tuple(compress(row, present)))
        conn = self._conn()
        written = 0
        with _transaction(conn):
            before = conn.total_changes
            for present, rows in groups.items():
                sql = self._insert_sql(present)
                written += len(rows)
                try:
                    conn.executemany(sql, rows)
                except sqlite3.ProgrammingError:  # a list or object in a hot field: store it as JSON
                    conn.executemany(sql, [_bindable(row) for row in rows])
            created = conn.total_changes - before
        if known is not None:
            known.update(fresh)  # only once committed
        return WriteResult(created=created, existing=written - created + duplicates, rejected=rejected)

    def purge_events(self, older_than: float) -> int:
        conn = self._conn()
        with _transaction(conn):
            if self._ids is None:
                cursor = conn.execute("DELETE FROM events WHERE ts < ?", (older_than,))
                return cursor.rowcount
            gone = [r[0] for r in conn.execute("DELETE FROM events WHERE ts < ? RETURNING id", (older_than,))]
        self._ids.difference_update(gone)
        return len(gone)
