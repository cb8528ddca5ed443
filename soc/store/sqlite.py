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

Keyword rules (SigmaHQ's Linux rules: dozens of ``message LIKE '%...%'`` each) dominate a scan
that evaluates many rules at once. :meth:`SQLiteStore.find_matches_many` therefore runs the
predicates that *require* some literal in ``message`` (see :func:`keyword_requirement`) in a
pass of their own, gated by one call per row that looks for any of those literals at once (a
regular expression over the ASCII-lowercased message, see :func:`literal_finder`): rows without any of them
cannot match and skip every ``LIKE``; the rows with one are evaluated by the exact predicates, so
the result is the same.

A *scratch* store (``durable=False``: one-shot hunts) skips the journal and fsyncs and has no
time or dataset indexes: it is loaded once and then scanned whole, where a sequential scan beats
an index walk and maintaining three indexes would cost a third of the load. Nor has it a unique
index on ``id`` (inserting random 32-character keys into a b-tree bigger than the cache costs
several microseconds per event): the ids it holds are kept in a Python set instead (about
100 bytes per event), which keeps writes idempotent; an ``id`` index is built on the first
:meth:`SQLiteStore.get_events`.

Documents (alerts, rule state, incidents...) live in a ``docs`` table keyed by
``(collection, id)`` with a version for compare-and-set.

Each thread gets its own connection (SQLite connections are not shared across threads); WAL
lets readers run while a writer commits, and ``busy_timeout`` makes writers queue rather than
fail.

The store is put together from one module per job: :mod:`.sqlite_schema` (the tables and hot
columns), :mod:`.sqlite_sql` (quoting, JSON paths, SQL functions, transactions),
:mod:`.sqlite_keywords` (the keyword prefilter), :mod:`.sqlite_events` (writing events),
:mod:`.sqlite_queries` (matching, reading and counting them), :mod:`.sqlite_search` (event
search: pages, histograms, top values), :mod:`.sqlite_docs` (document collections) and
:mod:`.sqlite_doc_query` with :mod:`.sqlite_doc_fields` (document queries, and the indexed field
tables of the big collections); this module opens the database and its connections and adds columns.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from soc.store.base import StoreMissing
from soc.store.sqlite_doc_fields import ensure_field_tables, register_doc_functions
from soc.store.sqlite_doc_query import DocSearch
from soc.store.sqlite_docs import SQLiteDocuments
from soc.store.sqlite_events import EventWriting
from soc.store.sqlite_keywords import fold_ascii, keyword_requirement, literal_finder
from soc.store.sqlite_queries import EventQueries
from soc.store.sqlite_schema import _FIELD_COLUMN, _INDEXES, _SCHEMA, HOT_FIELDS
from soc.store.sqlite_search import EventSearch, register_search_functions
from soc.store.sqlite_sql import (
    _field_sql,
    _json_get,
    _regexp,
    _transaction,
    json_extract_sql,
    quote_ident,
)

__all__ = ["HOT_FIELDS", "SQLiteStore", "fold_ascii", "json_extract_sql", "keyword_requirement", "literal_finder",
           "quote_ident"]


def _load_schema(conn: sqlite3.Connection) -> None:
    """Have SQLite (re)load a changed schema now, in a plain statement. When another connection
    (another process, or a ``prepare_fields``) changed the schema, SQLite 3.40 reloading it while
    it compiles a write to ``docs`` -- whose nested triggers insert into the FTS5 table of the
    alerts' free text -- fails with "no such table: docs" (the statement after it succeeds).
    Touching the FTS5 table first costs ~9 us per store call."""
    try:
        conn.execute(_TOUCH_TEXT).fetchall()
    except sqlite3.OperationalError:
        pass  # a store without the alerts' free-text table (before it is created)


_TOUCH_TEXT = "SELECT 1 FROM doc_text_alerts LIMIT 0"


class SQLiteStore(EventWriting, EventQueries, EventSearch, SQLiteDocuments, DocSearch):
    """Embedded store. ``path`` may be ``":memory:"`` only for single-threaded use (hunts)."""

    dialect = "sqlite"
    #: the options of :func:`soc.store.open_store` this store takes (it has no indices or replicas)
    OPENING_OPTIONS = frozenset({"durable", "numeric_fields", "create"})

    @classmethod
    def from_url(cls, url: str, *, create: bool = True, **options: Any) -> SQLiteStore:
        """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy convention);
        ``create=False`` raises :class:`soc.store.StoreMissing` instead of creating a new file."""
        from soc.catalog import default_catalog

        parts = urlsplit(url)
        path = parts.netloc + parts.path[1:] if parts.path.startswith("/") else parts.netloc + parts.path
        if not create and path and path != ":memory:" and not Path(path).exists():
            raise StoreMissing(f"no store at {path}")
        options.setdefault("numeric_fields", default_catalog().numeric_fields)
        return cls(path or ":memory:", **options)

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
        conn.executescript(_SCHEMA if durable else _SCHEMA.replace(" NOT NULL UNIQUE,", " NOT NULL,"))
        if durable:
            conn.executescript(_INDEXES)
        ensure_field_tables(conn)
        #: scratch store: the ids written (instead of a unique index), and whether ``id`` is indexed
        self._ids: set[str] | None = None if durable else {r[0] for r in conn.execute("SELECT id FROM events")}
        self._id_indexed = durable
        self._columns = {row[1] for row in conn.execute("PRAGMA table_xinfo(events)")}
        self._add_hot_columns(conn)
        self._inserts: dict[tuple[bool, ...], str] = {}
        self._finders: list[re.Pattern[str]] = []
        self._finder_ids: dict[frozenset[str], int] = {}
        self._materialised = False  # see materialise_fields

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
                conn.execute(f"UPDATE events SET {quote_ident(field)} = {_field_sql(field)}"
                             f" WHERE {_field_sql(field)} IS NOT NULL")
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
            conn.create_function("soc_has_literal", 2, self._has_literal, deterministic=True)
            conn.create_function("soc_json_get", 2, _json_get, deterministic=True)
            register_search_functions(conn)
            register_doc_functions(conn)
            self._local.conn = conn
        _load_schema(conn)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def prepare_fields(self, fields: Iterable[str]) -> None:
        # sorted: of two names that differ only in case (one column in SQLite), the same one gets
        # the column in every process, not the first of a set in hash order
        missing = sorted({f for f in fields if f not in _FIELD_COLUMN and f not in self._columns})
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
                    f"GENERATED ALWAYS AS ({_field_sql(field)}) VIRTUAL"
                )
                self._columns.add(field)

    def materialise_fields(self, fields: Iterable[str]) -> list[str]:
        """Turn ``fields`` into real columns filled now from the documents, in one pass; returns
        those made. For a store whose events are all written and that many rules then scan (a
        hunt's scratch store): a rule reads a virtual column by parsing the row's JSON document
        again, for every rule and row; a real column holds the value, read once per event here.
        Each column holds exactly what its virtual column would give: the same expression
        (:func:`_field_sql`), the same declared type and collation. Fields that already have a
        column, and fields whose names differ only in case from another field or column (SQLite
        names ignore case: which of them gets the column is left to :meth:`prepare_fields`, as
        before), are left as they are. Writing events afterwards is refused (the new columns
        would stay empty)."""
        taken = {c.lower() for c in self._columns} | {c.lower() for c in _FIELD_COLUMN}
        wanted = sorted(set(fields))
        lowered = [f.lower() for f in wanted]
        chosen = [f for f, low in zip(wanted, lowered, strict=True) if low not in taken and lowered.count(low) == 1]
        if not chosen:
            return []
        with self._columns_lock:
            conn = self._conn()
            with _transaction(conn, immediate=True):
                for field in chosen:
                    conn.execute(f"ALTER TABLE events ADD COLUMN {quote_ident(field)} {self._column_type(field)}")
                conn.execute("UPDATE events SET " + ", ".join(f"{quote_ident(f)} = {_field_sql(f)}" for f in chosen))
            self._columns.update(chosen)
            self._materialised = True
        return chosen

    def refresh(self) -> None:
        """Writes are visible to new reads at once in SQLite."""
