"""The embedded store: one SQLite database file in WAL mode.

Events live in one table. The columns every query needs are real columns (``id``, event time
``ts`` and ingest time ``ingested`` as epoch seconds, ``dataset``, ``agency``, ``message``,
``original``); the whole event is also kept as a JSON document ``doc`` with flat dotted keys.
A field a detection rule names (``user.name``, ``winlog.event_data.Image``) is a column of that
exact name, declared ``COLLATE NOCASE`` because Sigma matches case-insensitively, or ``NUMERIC``
for numeric fields so that ``EventID: 4625`` and ``sc-status >= 500`` compare as numbers:

* the fields most rules read (:data:`HOT_FIELDS`) are real columns filled at write time --
  reading a JSON document costs about a microsecond per row and field, a column nothing;
* any other field becomes a *virtual generated column* over ``doc``, added on first use
  (:meth:`prepare_fields`).

So the SQL that pySigma generates runs unchanged, and the table never needs a migration when
rules change.

Writing binds only the values an event has: a row is inserted by a statement naming just its
non-NULL columns (binding ``None`` through :mod:`sqlite3` costs as much as a whole column of text,
and most hot fields are absent from most events), one ``executemany`` per column set.

A *scratch* store (``durable=False``: one-shot hunts) skips the journal and fsyncs and has no
time or dataset indexes: it is loaded once and then scanned whole, where a sequential scan beats
an index walk and maintaining three indexes would cost a third of the load.

Documents (alerts, rule state, incidents...) live in a ``docs`` table keyed by
``(collection, id)`` with a version for compare-and-set.

Each thread gets its own connection (SQLite connections are not shared across threads); WAL
lets readers run while a writer commits, and ``busy_timeout`` makes writers queue rather than
fail.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from itertools import compress
from operator import is_not
from pathlib import Path
from typing import Any

import orjson

from soc.model import Event, iso, parse_iso
from soc.store.base import Conflict, Doc, Match, StoreError, Window, WriteResult

# Keys kept in real columns rather than in the JSON document.
_COLUMN_KEYS = {"_id", "_ts", "@timestamp", "event.ingested", "event.dataset", "organization.id",
                "message", "event.original"}
_BASE_COLUMNS = {"rowid", "id", "ts", "ingested", "dataset", "agency", "message", "original", "doc"}
# Fields queried through a real column rather than the document.
_FIELD_COLUMN = {"@timestamp": "ts", "event.ingested": "ingested", "event.dataset": "dataset",
                 "organization.id": "agency", "message": "message", "event.original": "original",
                 "_id": "id"}

#: fields most detection rules read: stored as real columns (see the module docstring)
HOT_FIELDS = (
    "event.action", "event.outcome", "event.code", "event.severity", "log.level",
    "host.name", "process.name", "process.executable", "process.command_line",
    "user.name", "user.target.name", "group.name",
    "source.ip", "source.port", "destination.ip", "destination.port", "network.transport",
    "url.original", "url.path", "url.query", "http.request.method", "http.response.status_code",
    "user_agent.original", "http.request.referrer", "rule.name",
    "winlog.event_id", "winlog.channel", "winlog.provider_name", "auditd.type",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id        TEXT NOT NULL UNIQUE,
    ts        REAL NOT NULL,
    ingested  REAL NOT NULL,
    dataset   TEXT NOT NULL,
    agency    TEXT,
    message   TEXT COLLATE NOCASE,
    original  TEXT COLLATE NOCASE,
    doc       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS events_ingested ON events (ingested);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_dataset_ts ON events (dataset, ts);
"""
#: the columns of a row as :meth:`SQLiteStore.write_events` builds it
_ROW_COLUMNS = ("id", "ts", "ingested", "dataset", "agency", "message", "original", "doc", *HOT_FIELDS)
_NONES = (None,) * len(_ROW_COLUMNS)


def _regexp(pattern: str, value: Any) -> bool:
    if value is None:
        return False
    return _compiled(pattern).search(str(value)) is not None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _json_path(field: str) -> str:
    """JSON path of a flat dotted key (``$."user.name"``) or of a nested document path."""
    return '$."' + field.replace('"', '\\"') + '"'


def _doc_path(field: str) -> str:
    """JSON path of a (possibly nested, dot-separated) field in a document body."""
    return "$." + ".".join('"' + part.replace('"', '\\"') + '"' for part in field.split("."))


def _bindable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(orjson.dumps(v).decode() if isinstance(v, (list, dict, tuple)) else v for v in row)


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class SQLiteStore:
    """Embedded store. ``path`` may be ``":memory:"`` only for single-threaded use (hunts)."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, durable: bool = True, numeric_fields: Iterable[str] = ()):
        self.path = str(path)
        self.durable = durable
        self._numeric = set(numeric_fields)
        self._local = threading.local()
        self._columns_lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._columns: set[str] = set()
        conn = self._conn()
        conn.executescript(_SCHEMA)
        if durable:
            conn.executescript(_INDEXES)
        self._columns = {row[1] for row in conn.execute("PRAGMA table_xinfo(events)")}
        self._add_hot_columns(conn)
        self._inserts: dict[tuple[bool, ...], str] = {}

    def _column_type(self, field: str) -> str:
        return "NUMERIC" if field in self._numeric else "TEXT COLLATE NOCASE"

    def _add_hot_columns(self, conn: sqlite3.Connection) -> None:
        """Real columns for :data:`HOT_FIELDS`; on a database made before a field became hot,
        the column is added and filled from the documents."""
        for field in HOT_FIELDS:
            if field in self._columns:
                continue
            with _transaction(conn, immediate=True):
                conn.execute(f"ALTER TABLE events ADD COLUMN {quote_ident(field)} {self._column_type(field)}")
                conn.execute(f"UPDATE events SET {quote_ident(field)} = json_extract(doc, '{_json_path(field)}')"
                             f" WHERE json_extract(doc, '{_json_path(field)}') IS NOT NULL")
            self._columns.add(field)

    # -- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 60000")
            if self.durable:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            else:  # one-shot hunts: the database is scratch space
                conn.execute("PRAGMA journal_mode = OFF")
                conn.execute("PRAGMA synchronous = OFF")
                conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -131072")  # 128 MiB
            conn.create_function("regexp", 2, _regexp, deterministic=True)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- events --------------------------------------------------------------------------------
    def _insert_sql(self, present: tuple[bool, ...]) -> str:
        sql = self._inserts.get(present)
        if sql is None:
            names = [quote_ident(c) for c, p in zip(_ROW_COLUMNS, present, strict=True) if p]
            sql = f"INSERT OR IGNORE INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            self._inserts[present] = sql
        return sql

    def write_events(self, events: Sequence[Event]) -> WriteResult:
        now = time.time()
        groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
        rejected: list[tuple[str, str]] = []
        dumps = orjson.dumps
        hot = HOT_FIELDS
        nones = _NONES
        for event in events:
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
        return WriteResult(created=created, existing=written - created, rejected=rejected)

    def prepare_fields(self, fields: Iterable[str]) -> None:
        missing = [f for f in fields if f not in _FIELD_COLUMN and f not in self._columns]
        if not missing:
            return
        with self._columns_lock:
            conn = self._conn()
            self._columns = {row[1] for row in conn.execute("PRAGMA table_xinfo(events)")}
            for field in missing:
                if field in self._columns or field.lower() in {c.lower() for c in self._columns}:
                    continue
                kind = self._column_type(field)
                conn.execute(
                    f"ALTER TABLE events ADD COLUMN {quote_ident(field)} {kind} "
                    f"GENERATED ALWAYS AS (json_extract(doc, '{_json_path(field)}')) VIRTUAL"
                )
                self._columns.add(field)

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

    def _match_clauses(self, where: Any, datasets: Sequence[str] | None,
                       window: Window) -> tuple[list[str], list[Any]] | None:
        clauses, params = self._where_window(window)
        if datasets is not None:
            if not datasets:
                return None
            clauses.append(f"dataset IN ({', '.join('?' * len(datasets))})")
            params.extend(datasets)
        if where:
            clauses.append(f"({where})")
        return clauses, params

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window) -> int:
        built = self._match_clauses(where, datasets, window)
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
    ) -> list[Match]:
        self.prepare_fields(fields)
        built = self._match_clauses(where, datasets, window)
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

    #: predicates evaluated per pass (one SQLite result column each)
    MANY_CHUNK = 64

    def find_matches_many(
        self,
        wheres: Sequence[Any],
        datasets: Sequence[str] | None,
        window: Window,
        fields: Sequence[str],
        limit: int,
    ) -> list[list[Match]]:
        self.prepare_fields(fields)
        out: list[list[Match]] = [[] for _ in wheres]
        columns = ", ".join(quote_ident(_FIELD_COLUMN.get(f, f)) for f in fields)
        for start in range(0, len(wheres), self.MANY_CHUNK):
            chunk = list(wheres[start:start + self.MANY_CHUNK])
            built = self._match_clauses(" OR ".join(f"({w})" for w in chunk), datasets, window)
            if built is None:
                return out
            clauses, params = built
            flags = ", ".join(f"CASE WHEN ({w}) THEN 1 ELSE 0 END" for w in chunk)
            sql = (f"SELECT id, ts, agency, {flags}{', ' + columns if columns else ''} FROM events"
                   f" WHERE {' AND '.join(clauses)} ORDER BY ts, id")
            width = len(chunk)
            try:
                cursor = self._conn().execute(sql, params)
                for row in cursor:
                    match: Match | None = None
                    for i in range(width):
                        if row[3 + i] and len(out[start + i]) < limit:
                            if match is None:
                                match = Match(row[0], row[1], row[2],
                                              dict(zip(fields, row[3 + width:], strict=True)))
                            out[start + i].append(match)
            except sqlite3.Error as error:
                raise StoreError(f"query failed: {error}") from error
        return out

    def get_events(self, ids: Sequence[str]) -> list[Event]:
        out: list[Event] = []
        conn = self._conn()
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            rows = conn.execute(
                "SELECT id, ts, ingested, dataset, agency, message, original, doc FROM events"
                f" WHERE id IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
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

    def count_events(self, window: Window | None = None, group_by: str | None = None) -> dict[str, int]:
        clauses, params = self._where_window(window) if window else ([], [])
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        if group_by is None:
            (total,) = self._conn().execute(f"SELECT COUNT(*) FROM events{where}", params).fetchone()
            return {"": total}
        self.prepare_fields([group_by])
        column = quote_ident(_FIELD_COLUMN.get(group_by, group_by))
        rows = self._conn().execute(
            f"SELECT {column}, COUNT(*) FROM events{where} GROUP BY 1", params).fetchall()
        return {str(key): count for key, count in rows}

    def purge_events(self, older_than: float) -> int:
        conn = self._conn()
        with _transaction(conn):
            cursor = conn.execute("DELETE FROM events WHERE ts < ?", (older_than,))
        return cursor.rowcount

    # -- documents -----------------------------------------------------------------------------
    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        conn = self._conn()
        cursor = conn.execute(
            "INSERT OR IGNORE INTO docs (collection, id, version, body) VALUES (?, ?, 1, ?)",
            (collection, id, orjson.dumps(body).decode()))
        return cursor.rowcount == 1

    def get(self, collection: str, id: str) -> Doc | None:
        row = self._conn().execute(
            "SELECT version, body FROM docs WHERE collection = ? AND id = ?", (collection, id)).fetchone()
        return Doc(id, row[0], orjson.loads(row[1])) if row else None

    def put(self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None) -> int:
        text = orjson.dumps(body).decode()
        conn = self._conn()
        with _transaction(conn, immediate=True):
            row = conn.execute("SELECT version FROM docs WHERE collection = ? AND id = ?",
                               (collection, id)).fetchone()
            current = row[0] if row else 0
            if expected_version is not None and expected_version != current:
                raise Conflict(f"{collection}/{id}: expected version {expected_version}, found {current}")
            conn.execute(
                "INSERT INTO docs (collection, id, version, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, body = excluded.body",
                (collection, id, current + 1, text))
        return current + 1

    def delete(self, collection: str, id: str) -> bool:
        cursor = self._conn().execute("DELETE FROM docs WHERE collection = ? AND id = ?", (collection, id))
        return cursor.rowcount == 1

    def find(
        self,
        collection: str,
        where: dict[str, Any] | None = None,
        *,
        time_field: str | None = None,
        start: str | None = None,
        end: str | None = None,
        sort: str | None = None,
        descending: bool = False,
        limit: int = 1000,
    ) -> list[Doc]:
        clauses, params = ["collection = ?"], [collection]
        for field, value in (where or {}).items():
            path = f"json_extract(body, '{_doc_path(field)}')"
            if isinstance(value, (list, tuple, set)):
                values = list(value)
                if not values:
                    return []
                clauses.append(f"{path} IN ({', '.join('?' * len(values))})")
                params.extend(values)
            elif value is None:
                clauses.append(f"{path} IS NULL")
            else:
                clauses.append(f"{path} = ?")
                params.append(value)
        if time_field and start is not None:
            clauses.append(f"json_extract(body, '{_doc_path(time_field)}') >= ?")
            params.append(start)
        if time_field and end is not None:
            clauses.append(f"json_extract(body, '{_doc_path(time_field)}') < ?")
            params.append(end)
        order = ""
        if sort:
            order = f" ORDER BY json_extract(body, '{_doc_path(sort)}') {'DESC' if descending else 'ASC'}, id"
        sql = f"SELECT id, version, body FROM docs WHERE {' AND '.join(clauses)}{order} LIMIT ?"
        params.append(limit)
        return [Doc(r[0], r[1], orjson.loads(r[2])) for r in self._conn().execute(sql, params)]

    def iter_all(self, collection: str) -> Iterator[Doc]:
        cursor = self._conn().execute(
            "SELECT id, version, body FROM docs WHERE collection = ? ORDER BY id", (collection,))
        for id_, version, body in cursor:
            yield Doc(id_, version, orjson.loads(body))

    def refresh(self) -> None:
        """Writes are visible to new reads at once in SQLite."""


class _transaction:
    """``BEGIN``/``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection, immediate: bool = False):
        self.conn, self.begin = conn, "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(self.begin)
        return self.conn

    def __exit__(self, kind: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if kind else "COMMIT")
