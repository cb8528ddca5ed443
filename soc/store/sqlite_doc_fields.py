"""What makes document queries fast in the embedded store: *field tables* of the big
collections, and the SQL functions that read any field of a document body.

**Field tables.** The ``alerts`` collection grows to a million documents, and the console
filters, sorts, pages and groups them by a few fields (:data:`PROJECTED`). An index on a
``json_extract`` expression over ``docs`` serves a selective filter, but SQLite (3.40 here)
never uses such an index -- nor one on a virtual generated column -- as a *covering* index: every
counted or grouped row is read from ``docs`` and its JSON parsed again (measured at 200,000
alerts: 0.5 s to count alerts per agency, 1.2 s per agency and rule). So those fields are
copied into real columns of a narrow table, ``doc_fields_alerts (id, status, agency, ...)``,
kept by triggers on ``docs`` in the same transaction as every write (whoever writes, with
whatever version of this code), and indexed (:data:`INDEXES`): counts and group-bys read only
those indexes, pages walk an index in sort order and read the 50 bodies they return. The
alerts' history (looked up by alert) and the incidents (listed by status, newest first) have
field tables too; ``find`` reads them as well (:mod:`.sqlite_docs`). benchmarks/console.py
measures the console's queries at 1,000,000 alerts (README, "Console speed").

A field listed here must be a scalar at its nested path in every document of the collection
(the alert writers guarantee it): the column holds ``NULL`` for a list or an object, and a
flat dotted key (``{"rule.id": ..}``) is not seen. Every other field is read from the body.

When :data:`PROJECTED`, :data:`INDEXES` or :data:`LISTED` change, opening the store rebuilds
the tables once (their fingerprint is kept in ``doc_fields_meta``): in one transaction (a crash
leaves the old tables, and the next opening starts again), filled from the documents in
batches of :data:`FILL_BATCH` with the progress logged (at 1,000,000 alerts it takes minutes).

**Reading a body.** ``soc_doc_values(body, keys)`` is the JSON array of the values of a dotted
field (:func:`soc.store.doc_query.body_values`: dots as nesting or inside keys, lists
flattened) -- the way the search engine indexes a body, so both stores see the same values;
``soc_doc_sort(body, keys, descending)`` the value a document sorts by. ``keys`` is the JSON
array of the field's parts, a bound parameter. The body last parsed is kept, so several
conditions on one row parse it once.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from functools import lru_cache
from typing import Any

import orjson

from soc.store.doc_query import body_values, sort_value
from soc.store.sqlite_doc_rollups import ensure_rollups
from soc.store.sqlite_doc_text import ensure_text_tables, register_text_functions
from soc.store.sqlite_sql import _doc_field_sql, _transaction, quote_ident

__all__ = ["FILL_BATCH", "INDEXES", "LISTED", "PROJECTED", "ensure_field_tables", "field_table", "leads_to",
           "register_doc_functions", "values_table"]

log = logging.getLogger(__name__)

#: documents filled per statement when a field table is rebuilt (progress is logged after each)
FILL_BATCH = 50_000
#: collection -> the body fields copied into its field table (scalars at their nested path)
PROJECTED: dict[str, tuple[str, ...]] = {
    "alerts": ("status", "agency", "rule.id", "rule.level", "first_seen", "last_seen", "detected_at",
               "assignee", "risk", "asset.level", "incident_id"),
    "alert_history": ("alert_id", "seq", "at", "agency"),
    "incidents": ("status", "severity", "agency", "assignee", "incident_type", "updated_at", "discovered_at",
                  "created_at"),
}
#: collection -> index name -> its columns (``NOCASE``: for case-insensitive equality)
INDEXES: dict[str, dict[str, tuple[str, ...]]] = {
    "alerts": {
        # pages walk "seen" newest first; the dashboard counts a time range by status, agency, level
        # and rule from it alone. Group-bys of the queue (with its status and time filters) read the
        # others alone, in the order of their first two fields (no sort of a million rows)
        "seen": ("first_seen", "status", "agency", "rule.level", "rule.id"),
        "status": ("status", "rule.level", "agency", "first_seen"),
        "agency": ("agency", "rule.id", "status NOCASE", "first_seen"),
        "rule": ("rule.id", "first_seen", "status", "agency"),
        "rule_status": ("rule.id", "status", "agency", "first_seen"),
        "level": ("rule.level", "agency", "status", "first_seen"),
        "assignee": ("assignee NOCASE", "first_seen"),
        "risk": ("risk", "first_seen"),
        "incident": ("incident_id", "first_seen"),
    },
    "alert_history": {"alert": ("alert_id", "seq")},
    "incidents": {"updated": ("updated_at",), "discovered": ("discovered_at",), "created": ("created_at",)},
}
#: the entity fields an alert lists (``soc.detect.engine.ENTITY_FIELDS``) and its group values
_ENTITIES = ("host.name", "source.ip", "destination.ip", "user.name", "user.target.name", "process.name",
             "url.domain", "event.action", "event.outcome")
#: collection (one with a field table) -> list fields kept one value per row in its values table:
#: field -> the keys of its one place in the body
LISTED: dict[str, dict[str, tuple[str, ...]]] = {
    "alerts": {**{f"entities.{name}": ("entities", name) for name in _ENTITIES},
               **{f"group.{name}": ("group", name)
                  for name in ("host.name", "source.ip", "user.name", "user.target.name")}},
}


def field_table(collection: str) -> str | None:
    """The field table of a collection, or ``None`` when it has none."""
    return f"doc_fields_{collection}" if collection in PROJECTED else None


def leads_to(collection: str, field: str, then: str) -> bool:
    """Whether an index of the collection's field table starts with ``field``, then ``then``."""
    return any(tuple(c.partition(" ")[0] for c in spec[:2]) == (field, then) for spec in INDEXES.get(collection, {}).values())


def values_table(collection: str) -> str | None:
    """The values table of a collection, or ``None`` when it has none."""
    return f"doc_values_{collection}" if collection in LISTED else None


def _value(row: str, field: str) -> str:
    """The column value of ``field`` of a body (``row`` is ``new``, ``docs``...): ``NULL`` for a
    list or an object."""
    path = _doc_field_sql(field).replace("(body,", f"({row}.body,", 1)
    kind = path.replace("json_extract(", "json_type(", 1)
    return f"CASE WHEN {kind} IN ('array', 'object') THEN NULL ELSE {path} END"


def _listed_rows(row: str, collection: str) -> str:
    """``SELECT field, value, type, id`` of every value of the listed fields of a body (one row per
    distinct value; texts, numbers and booleans): of the trigger's ``new`` row, or (``row`` is
    ``docs``) of every stored document of the collection."""
    source, only = ("docs, ", f"docs.collection = {_literal(collection)} AND {_BATCH_RANGE} AND ") \
        if row == "docs" else ("", "")
    parts = []
    for field, keys in LISTED[collection].items():
        path = "$" + "".join(f'."{key}"' for key in keys)
        parts.append(f"SELECT {_literal(field)}, j.value, j.type, {row}.id FROM {source}json_each({row}.body, "
                     f"{_literal(path)}) AS j WHERE {only}j.type IN ('text', 'integer', 'real', 'true', 'false') "
                     "AND typeof(j.key) != 'text'")
    return " UNION ".join(parts)


#: the documents of one batch of a fill (``:low`` excluded, ``:high`` included)
_BATCH_RANGE = "docs.id > :low AND docs.id <= :high"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ddl(collection: str) -> tuple[list[str], list[str], list[str]]:
    """The tables, the statements that fill them from the stored documents, and the triggers
    and indexes of a collection's field (and values) table."""
    table, fields = f"doc_fields_{collection}", PROJECTED[collection]
    columns = ", ".join(quote_ident(f) for f in fields)
    literal = _literal(collection)
    # not INSERT OR REPLACE: the conflict handling of the statement that fires a trigger wins
    upsert = (f"DELETE FROM {table} WHERE id = new.id; INSERT INTO {table} (id, {columns}) VALUES "
              f"(new.id, {', '.join(_value('new', f) for f in fields)})")
    remove = f"DELETE FROM {table} WHERE id = old.id"
    tables = [f"CREATE TABLE {table} (id TEXT PRIMARY KEY NOT NULL, {columns}) WITHOUT ROWID"]
    fill = [f"INSERT INTO {table} (id, {columns}) SELECT id, {', '.join(_value('docs', f) for f in fields)} "
            f"FROM docs WHERE collection = {literal} AND {_BATCH_RANGE}"]
    rest = []
    values = values_table(collection)
    if values is not None:
        tables.append(f"CREATE TABLE {values} (field TEXT NOT NULL, value, type TEXT NOT NULL, id TEXT NOT NULL)")
        fill.append(f"INSERT INTO {values} (field, value, type, id) {_listed_rows('docs', collection)}")
        upsert += (f"; DELETE FROM {values} WHERE id = new.id; INSERT INTO {values} (field, value, type, id) "
                   f"{_listed_rows('new', collection)}")
        remove += f"; DELETE FROM {values} WHERE id = old.id"
        rest += [f"CREATE INDEX {values}_value ON {values} (field, value COLLATE NOCASE, type, id)",
                 f"CREATE INDEX {values}_id ON {values} (id, field)"]
    rest += [
        f"CREATE TRIGGER {table}_insert AFTER INSERT ON docs WHEN new.collection = {literal} BEGIN {upsert}; END",
        f"CREATE TRIGGER {table}_update AFTER UPDATE ON docs WHEN new.collection = {literal} BEGIN {upsert}; END",
        f"CREATE TRIGGER {table}_delete AFTER DELETE ON docs WHEN old.collection = {literal} BEGIN {remove}; END",
    ]
    for name, spec in INDEXES.get(collection, {}).items():
        parts = []
        for column in spec:
            field, _, collation = column.partition(" ")
            parts.append(quote_ident(field) + (f" COLLATE {collation}" if collation else ""))
        rest.append(f"CREATE INDEX {table}_{name} ON {table} ({', '.join(parts)})")
    return tables, fill, rest


def _fingerprint(collection: str) -> str:
    """What a collection's tables are (not how they are filled)."""
    tables, _, rest = _ddl(collection)
    return hashlib.blake2b("\n".join([*tables, *rest]).encode(), digest_size=8).hexdigest()


def ensure_field_tables(conn: sqlite3.Connection) -> None:
    """Create (or rebuild, when their definition changed) the field tables, their triggers and
    indexes, filled from the documents already stored."""
    conn.execute("CREATE TABLE IF NOT EXISTS doc_fields_meta (collection TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)")
    wanted = {c: _fingerprint(c) for c in PROJECTED}
    have = dict(conn.execute("SELECT collection, fingerprint FROM doc_fields_meta").fetchall())
    if all(have.get(c) == f for c, f in wanted.items()):
        ensure_rollups(conn)
        ensure_text_tables(conn)
        return
    with _transaction(conn, immediate=True):
        have = dict(conn.execute("SELECT collection, fingerprint FROM doc_fields_meta").fetchall())
        for collection, fingerprint in wanted.items():
            if have.get(collection) == fingerprint:
                continue
            table = f"doc_fields_{collection}"
            triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'docs'"
                                    " AND substr(name, 1, ?) = ?", (len(table) + 1, table + "_")).fetchall()
            for (name,) in triggers:
                conn.execute(f"DROP TRIGGER IF EXISTS {quote_ident(name)}")
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"DROP TABLE IF EXISTS doc_values_{collection}")
            tables, fill, rest = _ddl(collection)
            for statement in tables:
                conn.execute(statement)
            _fill(conn, collection, fill)
            for statement in rest:
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO doc_fields_meta (collection, fingerprint) VALUES (?, ?)",
                         (collection, fingerprint))
    ensure_rollups(conn)  # after the field tables: a rebuilt field table lost the triggers of the totals
    ensure_text_tables(conn)  # the same for the free text and the hosts


def _fill(conn: sqlite3.Connection, collection: str, statements: list[str]) -> None:
    """Run the fill statements over the collection's documents, :data:`FILL_BATCH` at a time
    (by id), logging the progress of a big collection."""
    total = conn.execute("SELECT COUNT(*) FROM docs WHERE collection = ?", (collection,)).fetchone()[0]
    started, done, low = time.monotonic(), 0, ""
    while done < total:
        row = conn.execute("SELECT id FROM docs WHERE collection = ? AND id > ? ORDER BY id LIMIT 1 OFFSET ?",
                           (collection, low, FILL_BATCH - 1)).fetchone()
        high = row[0] if row is not None else conn.execute(
            "SELECT max(id) FROM docs WHERE collection = ?", (collection,)).fetchone()[0]
        for statement in statements:
            conn.execute(statement, {"low": low, "high": high})
        done = min(total, done + FILL_BATCH) if row is not None else total
        low = high
        if total > FILL_BATCH:
            log.info("field tables of %s: %d of %d documents filled (%.0f s)", collection, done, total,
                     time.monotonic() - started)


# -- SQL functions ------------------------------------------------------------------------------
_parsed: tuple[str, Any] = ("", None)


def _body(text: str) -> Any:
    """A parsed body, from the last one when it is the same text (one row, several conditions)."""
    global _parsed
    last = _parsed
    if last[0] == text and last[1] is not None:
        return last[1]
    body = orjson.loads(text)
    _parsed = (text, body)
    return body


@lru_cache(maxsize=1024)
def _parts(keys: str) -> tuple[str, ...]:
    return tuple(orjson.loads(keys))


def _doc_values(text: Any, keys: str) -> str | None:
    if not isinstance(text, str):
        return None
    values = body_values(_body(text), _parts(keys))
    return orjson.dumps(values).decode() if values else None


def _doc_sort(text: Any, keys: str, descending: int) -> Any:
    if not isinstance(text, str):
        return None
    return sort_value(body_values(_body(text), _parts(keys)), bool(descending))


def register_doc_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions document queries use, on one connection."""
    conn.create_function("soc_doc_values", 2, _doc_values, deterministic=True)
    conn.create_function("soc_doc_sort", 3, _doc_sort, deterministic=True)
    register_text_functions(conn)
