"""The tables of the embedded store (:mod:`soc.store.sqlite`): ``events`` with its real
columns -- the base columns and :data:`HOT_FIELDS` -- and ``docs``, the indexes a durable store
keeps, the columns a written row fills; and :class:`SQLiteHost`, what the parts of
:class:`~soc.store.sqlite.SQLiteStore` share of it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from typing import Protocol

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


class SQLiteHost(Protocol):
    """What the parts of :class:`~soc.store.sqlite.SQLiteStore` (:mod:`.sqlite_events`,
    :mod:`.sqlite_queries`, :mod:`.sqlite_docs`) need of the store they are mixed into: this
    thread's connection, the lock for changes of its columns, and the ids a scratch store holds."""

    _columns_lock: threading.Lock
    _ids: set[str] | None
    """Scratch store: the ids written (instead of a unique index); None for a durable store."""

    def _conn(self) -> sqlite3.Connection: ...

    def prepare_fields(self, fields: Iterable[str]) -> None: ...
