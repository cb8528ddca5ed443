"""SQL text for the embedded store: quoted identifiers and string literals, JSON paths into
the ``doc``/``body`` columns that mean the same on every SQLite version, the SQL functions
registered on each connection (``regexp``, ``soc_json_get``) and explicit transactions."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import orjson


def _regexp(pattern: str, value: Any) -> bool:
    if value is None:
        return False
    return _compiled(pattern).search(str(value)) is not None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _sql_string(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """``name`` as an SQL identifier (backticks, as pySigma's SQLite backend writes them)."""
    return "`" + name.replace("`", "``") + "`"


#: object keys a quoted JSON path step (``."key"``) spells literally on every SQLite: no ``"``,
#: no backslash, no control character. SQLite before 3.45 ends such a step at the first ``"``
#: whatever precedes it and compares keys as written in the JSON text; later versions decode
#: JSON escapes in both. ``.``, ``[``, ``$``, ``'``... are plain text inside the quotes.
_PLAIN_KEY = re.compile(r'[^"\\\x00-\x1f]*')


def json_extract_sql(column: str, keys: Sequence[str]) -> str:
    """SQL for the value at ``keys`` (object keys, outermost first) of the JSON in ``column``:
    ``json_extract(doc, '$."user.name"')``; keys a JSON path cannot spell the same way on every
    SQLite go to :func:`_json_get` instead, as a JSON array of keys. Either way each key is data
    inside a string literal: nothing in a field name can end the literal or the path step."""
    if all(_PLAIN_KEY.fullmatch(key) for key in keys):
        path = "$" + "".join(f'."{key}"' for key in keys)
        return f"json_extract({column}, {_sql_string(path)})"
    return f"soc_json_get({column}, {_sql_string(orjson.dumps(list(keys)).decode())})"


def _field_sql(field: str) -> str:
    """The value of the flat dotted key ``field`` (``user.name``) of an event's ``doc``."""
    return json_extract_sql("doc", [field])


def _doc_field_sql(field: str) -> str:
    """The value of a (possibly nested, dot-separated) field of a document ``body``."""
    return json_extract_sql("body", field.split("."))


def _json_get(text: str | None, keys: str) -> Any:
    """SQL function ``soc_json_get(json, keys)``: ``json_extract`` by a JSON array of object keys."""
    if text is None:
        return None
    value: Any = orjson.loads(text)
    for key in orjson.loads(keys):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


class _transaction:
    """``BEGIN``/``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection, immediate: bool = False):
        self.conn, self.begin = conn, "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(self.begin)
        return self.conn

    def __exit__(self, kind: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if kind else "COMMIT")


def rebuild_when_changed(conn: sqlite3.Connection, key: str, definition: Sequence[str], triggers: Sequence[str],
                         build: Callable[[], None]) -> None:
    """Tables derived from others and kept by ``triggers``: ``build`` (drop and create them, fill
    them) runs in one immediate transaction when their ``definition`` changed (its fingerprint is
    kept in ``doc_fields_meta`` under ``key``) or one of their triggers is gone (a table they hang
    on was rebuilt). Checked again under the write lock, so processes opening the store together
    build once; the triggers are dropped first, ``build`` creates them again."""
    fingerprint = hashlib.blake2b("\n".join(definition).encode(), digest_size=8).hexdigest()
    marks = ", ".join("?" * len(triggers))

    def current() -> bool:
        have = conn.execute("SELECT fingerprint FROM doc_fields_meta WHERE collection = ?", (key,)).fetchone()
        present = conn.execute(f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})",
                               tuple(triggers)).fetchone()[0]
        return have is not None and have[0] == fingerprint and present == len(triggers)

    if current():
        return
    with _transaction(conn, immediate=True):
        if current():
            return
        for name in triggers:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        build()
        conn.execute("INSERT OR REPLACE INTO doc_fields_meta (collection, fingerprint) VALUES (?, ?)",
                     (key, fingerprint))
