"""Document collections in the embedded store: the ``docs`` table keyed by ``(collection, id)``
with a version for compare-and-set. An :class:`~soc.store.base.OwnedBy` filter is an ``EXISTS``
over ``json_each`` of each owner field (a string gives one row, a list one per element), with
the JSON path and the agency ids bound as parameters. ``find`` reads the fields a collection's
field table holds (alerts: status, agency, rule, times...; alert history: the alert and its
sequence) from that table, whose indexes serve the filter and the order; other fields from the
body."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from soc.errors import SocError
from soc.store.base import Conflict, Doc, DocWrite, OwnedBy, StoreError
from soc.store.sqlite_doc_fields import PROJECTED, field_table
from soc.store.sqlite_schema import SQLiteHost
from soc.store.sqlite_sql import _PLAIN_KEY, _doc_field_sql, _transaction, quote_ident


def _columns(collection: str, fields: list[str]) -> dict[str, str]:
    """The fields ``find`` reads from the collection's field table: projected field -> its column
    (the same value as ``json_extract`` of the body, kept by triggers; :mod:`.sqlite_doc_fields`)."""
    projected = PROJECTED.get(collection, ())
    return {field: "f." + quote_ident(field) for field in fields if field in projected}


def owned_by_sql(owned_by: OwnedBy) -> tuple[str, list[Any]] | None:
    """The SQL condition and its parameters for ``owned_by``; None when nothing can match."""
    if not owned_by.agencies or not owned_by.fields:
        return None
    values = sorted(owned_by.agencies)
    marks = ", ".join("?" * len(values))
    clauses, params = [], []
    for field in owned_by.fields:
        keys = field.split(".")
        if not all(key and _PLAIN_KEY.fullmatch(key) for key in keys):
            raise StoreError(f"owner field {field!r}: use plain dotted names")
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(body, ?) WHERE json_each.value IN ({marks}))")
        params.extend(["$" + "".join(f'."{key}"' for key in keys), *values])
    return "(" + " OR ".join(clauses) + ")", params


class SQLiteDocuments(SQLiteHost):
    """The document half of the store protocol; a part of :class:`~soc.store.sqlite.SQLiteStore`."""

    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        conn = self._conn()
        cursor = conn.execute(
            "INSERT OR IGNORE INTO docs (collection, id, version, body) VALUES (?, ?, 1, ?)",
            (collection, id, orjson.dumps(body).decode()))
        return cursor.rowcount == 1

    def create_documents(self, collection: str, docs: Sequence[tuple[str, dict[str, Any]]]
                         ) -> list[bool | SocError]:
        """One transaction: the ids already stored are read (500 at a time), the others inserted
        with one ``executemany``; a body that is no JSON is that document's error."""
        results: list[bool | SocError] = [False] * len(docs)
        rows: list[tuple[str, str, str]] = []
        chosen: dict[str, int] = {}  # id -> the position of its first document
        for i, (id_, body) in enumerate(docs):
            try:
                text = orjson.dumps(body).decode()
            except (TypeError, orjson.JSONEncodeError) as error:
                results[i] = StoreError(f"{collection}/{id_}: create failed: {error}")
                continue
            if id_ not in chosen:
                chosen[id_] = i
                rows.append((collection, id_, text))
        if not rows:
            return results
        conn = self._conn()
        with _transaction(conn, immediate=True):
            stored: set[str] = set()
            ids = list(chosen)
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                stored.update(r[0] for r in conn.execute(
                    f"SELECT id FROM docs WHERE collection = ? AND id IN ({', '.join('?' * len(part))})",
                    [collection, *part]))
            conn.executemany("INSERT INTO docs (collection, id, version, body) VALUES (?, ?, 1, ?)",
                             [row for row in rows if row[1] not in stored])
        for id_, i in chosen.items():
            results[i] = id_ not in stored
        return results

    def put_documents(self, collection: str, writes: Sequence[DocWrite]) -> list[int | SocError]:
        """One transaction: the current versions are read (500 ids at a time), each write checked
        against the version before it (a compare-and-set that loses writes nothing), the rest
        written with one ``executemany``."""
        results: list[int | SocError] = []
        texts: list[str | None] = []
        for write in writes:
            try:
                texts.append(orjson.dumps(write.body).decode())
            except (TypeError, orjson.JSONEncodeError) as error:
                texts.append(None)
                results.append(StoreError(f"{collection}/{write.id}: write failed: {error}"))
            else:
                results.append(0)
        if not any(text is not None for text in texts):
            return results
        conn = self._conn()
        with _transaction(conn, immediate=True):
            current: dict[str, int] = {}
            ids = list(dict.fromkeys(w.id for w in writes))
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                current.update(conn.execute(
                    f"SELECT id, version FROM docs WHERE collection = ? AND id IN ({', '.join('?' * len(part))})",
                    [collection, *part]).fetchall())
            rows: dict[str, tuple[str, str, int, str]] = {}  # the last write of each id
            for i, (write, text) in enumerate(zip(writes, texts, strict=True)):
                if text is None:
                    continue
                version = current.get(write.id, 0)
                if write.expected_version is not None and write.expected_version != version:
                    results[i] = Conflict(f"{collection}/{write.id}: expected version {write.expected_version}, "
                                          f"found {version}")
                    continue
                current[write.id] = results[i] = version + 1
                rows[write.id] = (collection, write.id, version + 1, text)
            conn.executemany(
                "INSERT INTO docs (collection, id, version, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, body = excluded.body",
                list(rows.values()))
        return results

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
        owned_by: OwnedBy | None = None,
    ) -> list[Doc]:
        columns = _columns(collection, [*(where or {}), *([time_field] if time_field else []), *([sort] if sort else [])])
        clauses, params = ["d.collection = ?"], [collection]
        if owned_by is not None:
            owners = owned_by_sql(owned_by)
            if owners is None:
                return []
            clauses.append(owners[0])
            params.extend(owners[1])
        for field, value in (where or {}).items():
            path = columns.get(field) or _doc_field_sql(field)
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
            clauses.append(f"{columns.get(time_field) or _doc_field_sql(time_field)} >= ?")
            params.append(start)
        if time_field and end is not None:
            clauses.append(f"{columns.get(time_field) or _doc_field_sql(time_field)} < ?")
            params.append(end)
        order = ""
        if sort:
            order = f" ORDER BY {columns.get(sort) or _doc_field_sql(sort)} {'DESC' if descending else 'ASC'}, d.id"
        source = "docs AS d"
        if columns:  # the field table drives: its indexes give the order and the filters
            source = f"{field_table(collection)} AS f CROSS JOIN docs AS d ON d.id = f.id"
            order = order or " ORDER BY d.id"  # the order of the table itself otherwise
        sql = f"SELECT d.id, d.version, d.body FROM {source} WHERE {' AND '.join(clauses)}{order} LIMIT ?"
        params.append(limit)
        return [Doc(r[0], r[1], orjson.loads(r[2])) for r in self._conn().execute(sql, params)]

    def iter_all(self, collection: str, *, owned_by: OwnedBy | None = None) -> Iterator[Doc]:
        where, params = "collection = ?", [collection]
        if owned_by is not None:
            owners = owned_by_sql(owned_by)
            if owners is None:
                return
            where += f" AND {owners[0]}"
            params.extend(owners[1])
        cursor = self._conn().execute(f"SELECT id, version, body FROM docs WHERE {where} ORDER BY id", params)
        for id_, version, body in cursor:
            yield Doc(id_, version, orjson.loads(body))
