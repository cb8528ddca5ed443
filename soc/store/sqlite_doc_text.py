"""The alerts' free text and their hosts, kept ready for the console in the embedded store.

**Free text.** The console's free-text filter (:meth:`soc.alerts.AlertQuery.matches`) looks for
a substring of an alert's id, rule id and title, message, agency, assignee, close note and
every entity and correlation group value, without case and diacritics (:func:`soc.text.fold`).
Tested in Python on each alert read, a page read up to 20,000 alerts and its count 10,000 more
(0.98 s p50, 2.6 s p95 at 1,000,000 alerts). Here that folded text (:func:`alert_text`, the
same parts joined the same way) is kept per alert in an FTS5 table with the ``trigram``
tokenizer -- a phrase of three characters or more (trigrams one after the other) is exactly a
substring, looked up in its index; a shorter one reads the stored texts -- so the filter and its
count are a lookup (a count of the text alone: the FTS table's own). A page of a rare text starts
from the alerts holding it; of a common one (:data:`WALK_FROM`) it walks the list's order and
looks each alert's row up among them, and stops after the page. It is asked for as the pseudo text field :data:`ALERT_TEXT` of the
``alerts`` collection (``DocQuery(text=fold(text), text_fields=(ALERT_TEXT,))``); the search
engine has no such field, so the API asks it only of a store whose dialect is in
:data:`TEXT_DIALECTS` (elsewhere the text is still tested on each alert read).

**Hosts.** Grouping alerts by host counts each alert once per host, its hosts being the values
of ``entities.host.name`` and ``group.host.name`` compared ignoring case (``str.casefold``).
``doc_hosts_alerts`` holds one row per alert and distinct host (its folded key and the first
spelling the alert has of it), next to copies of the alert's rule, status, agency, level and
``first_seen``; :func:`host_counts` answers the count per rule and host (or per host) of a query
filtering on those fields with one ``GROUP BY`` over its index (by time when a lower time bound
leaves few rows: :data:`FEW_IN_TIME`), a group showing the spelling of its newest alert. It is
asked for as the pseudo group field :data:`HOST_KEY`; the common case (no filter, or one of the
console's status choices) is answered from totals instead (:mod:`soc.store.sqlite_doc_host_totals`).

Both are kept by triggers on the field table ``doc_fields_alerts`` (whose rows are rewritten
with every alert write), in the same transaction, and rebuilt on opening when their definition
changed (:func:`ensure_text_tables`, progress logged), as are the totals per rule and host of
:mod:`soc.store.sqlite_doc_host_totals` kept from the host table. The triggers call the SQL functions
``soc_alert_text`` and ``soc_host_keys`` (:func:`register_text_functions`), which every
connection of the store registers: a connection without them cannot write alerts.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from soc.store.base import OwnedBy
from soc.store.doc_query import DocFilter, DocQuery, number_key
from soc.store.sqlite_doc_host_totals import TIME_INDEX, ensure_host_totals
from soc.store.sqlite_sql import rebuild_when_changed
from soc.text import alert_text

__all__ = ["ALERT_TEXT", "FEW_IN_TIME", "HOST_KEY", "TEXT_DIALECTS", "WALK_FROM", "alert_text", "ensure_text_tables", "host_counts",
           "host_keys", "many_hold", "register_text_functions", "text_count", "text_sql"]

log = logging.getLogger(__name__)

#: the pseudo text field of an alert's folded free text (embedded store only)
ALERT_TEXT = "@alert_text"
#: the pseudo group field of an alert's hosts, compared ignoring case (embedded store only)
HOST_KEY = "@host"
#: the store dialects that answer :data:`ALERT_TEXT` and :data:`HOST_KEY`
TEXT_DIALECTS = frozenset({"sqlite"})
_COLLECTION = "alerts"
_TEXT = "doc_text_alerts"  # FTS5 (text), rowid -> _KEYS.n
_KEYS = "doc_text_keys_alerts"  # (n, id)
_HOSTS = "doc_hosts_alerts"  # (id, host, spelled, rule, status, agency, level, first_seen)
#: the version of what the functions compute (part of the fingerprint: a change rebuilds)
_VERSION = "1"
_FILL_BATCH = 50_000
_HOST_FIELDS = ("rule.id", "status", "agency", "rule.level", "first_seen")


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def host_keys(alert: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(key, first spelling)`` of each distinct host of an alert (as the console groups them)."""
    seen: dict[str, Any] = {}
    for bag in (alert.get("entities") or {}, alert.get("group") or {}):
        if not isinstance(bag, Mapping):
            continue
        for value in _values(bag.get("host.name")):
            if value in (None, "") or isinstance(value, (dict, list, bool)):
                continue
            seen.setdefault(str(value).casefold(), value)
    return list(seen.items())


def _sql_alert_text(text: Any) -> str | None:
    """Called by a trigger on every alert write: never raises (an exception would refuse the
    write); a body it cannot read has no text."""
    try:
        body = orjson.loads(text) if isinstance(text, str) else None
        return alert_text(body) if isinstance(body, dict) else None
    except Exception:  # noqa: BLE001
        return None


def _sql_host_keys(text: Any) -> str:
    """Called by a trigger on every alert write: never raises; a body it cannot read has no host."""
    try:
        body = orjson.loads(text) if isinstance(text, str) else None
        return orjson.dumps(host_keys(body) if isinstance(body, dict) else []).decode()
    except Exception:  # noqa: BLE001
        return "[]"


def register_text_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the triggers of these tables call, on one connection."""
    conn.create_function("soc_alert_text", 1, _sql_alert_text, deterministic=True)
    conn.create_function("soc_host_keys", 1, _sql_host_keys, deterministic=True)


# -- tables -------------------------------------------------------------------------------------
def _ddl() -> tuple[list[str], list[str], list[str]]:
    """The tables, the fill statements (per batch of field-table ids) and the triggers and indexes."""
    body = "(SELECT d.body FROM docs AS d WHERE d.collection = 'alerts' AND d.id = {row}.id)"
    copies = ", ".join(f'"{name}"' for name in _HOST_FIELDS)
    tables = [f"CREATE VIRTUAL TABLE {_TEXT} USING fts5(text, tokenize = 'trigram case_sensitive 1')",
              f"CREATE TABLE {_KEYS} (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE)",
              f"CREATE TABLE {_HOSTS} (id TEXT NOT NULL, host TEXT NOT NULL, spelled, {copies}, "
              "PRIMARY KEY (id, host)) WITHOUT ROWID"]
    batch = "f.id > :low AND f.id <= :high"
    fill = [f"INSERT INTO {_KEYS} (id) SELECT f.id FROM doc_fields_alerts AS f WHERE {batch} ORDER BY f.id",
            f"INSERT INTO {_TEXT} (rowid, text) SELECT k.n, soc_alert_text(d.body) FROM doc_fields_alerts AS f "
            f"JOIN {_KEYS} AS k ON k.id = f.id JOIN docs AS d ON d.collection = 'alerts' AND d.id = f.id WHERE {batch}",
            f"INSERT INTO {_HOSTS} (id, host, spelled, {copies}) SELECT f.id, json_extract(h.value, '$[0]'), "
            f"json_extract(h.value, '$[1]'), {', '.join(f'f.{c}' for c in copies.split(', '))} "
            "FROM doc_fields_alerts AS f JOIN docs AS d ON d.collection = 'alerts' AND d.id = f.id, "
            f"json_each(soc_host_keys(d.body)) AS h WHERE {batch}"]
    new_body = body.format(row="new")
    insert = (f"INSERT INTO {_KEYS} (id) VALUES (new.id); "
              f"INSERT INTO {_TEXT} (rowid, text) VALUES ((SELECT n FROM {_KEYS} WHERE id = new.id), "
              f"soc_alert_text({new_body})); "
              f"INSERT INTO {_HOSTS} (id, host, spelled, {copies}) SELECT new.id, json_extract(h.value, '$[0]'), "
              f"json_extract(h.value, '$[1]'), {', '.join(f'new.{c}' for c in copies.split(', '))} "
              f"FROM json_each(soc_host_keys({new_body})) AS h;")
    delete = (f"DELETE FROM {_TEXT} WHERE rowid = (SELECT n FROM {_KEYS} WHERE id = old.id); "
              f"DELETE FROM {_KEYS} WHERE id = old.id; DELETE FROM {_HOSTS} WHERE id = old.id;")
    rest = [f"CREATE INDEX {_HOSTS}_rule ON {_HOSTS} (\"rule.id\", host, status, agency, \"rule.level\", first_seen, "
            "spelled)",
            f"CREATE TRIGGER {_HOSTS}_insert AFTER INSERT ON doc_fields_alerts BEGIN {insert} END",
            f"CREATE TRIGGER {_HOSTS}_delete AFTER DELETE ON doc_fields_alerts BEGIN {delete} END"]
    return tables, fill, rest


_TRIGGERS = (f"{_HOSTS}_insert", f"{_HOSTS}_delete")


def ensure_text_tables(conn: sqlite3.Connection) -> None:
    """Create (or rebuild, when their definition changed or the field table was rebuilt without
    their triggers) the free-text and host tables, filled from the stored alerts. Called after
    the field tables exist."""
    tables, fill, rest = _ddl()

    def build() -> None:
        for table in (_TEXT, _KEYS, _HOSTS):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in tables:
            conn.execute(statement)
        _fill(conn, fill)
        for statement in rest:
            conn.execute(statement)

    rebuild_when_changed(conn, f"text:{_COLLECTION}", [_VERSION, *tables, *fill, *rest], _TRIGGERS, build)
    ensure_host_totals(conn)  # after the host table: a rebuilt one lost the triggers of its totals


def _fill(conn: sqlite3.Connection, statements: list[str]) -> None:
    total = conn.execute("SELECT COUNT(*) FROM doc_fields_alerts").fetchone()[0]
    started, done, low = time.monotonic(), 0, ""
    while done < total:
        row = conn.execute("SELECT id FROM doc_fields_alerts WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?",
                           (low, _FILL_BATCH - 1)).fetchone()
        high = row[0] if row is not None else conn.execute("SELECT max(id) FROM doc_fields_alerts").fetchone()[0]
        for statement in statements:
            conn.execute(statement, {"low": low, "high": high})
        done = min(total, done + _FILL_BATCH) if row is not None else total
        low = high
        if total > _FILL_BATCH:
            log.info("free text and hosts of alerts: %d of %d filled (%.0f s)", done, total,
                     time.monotonic() - started)


# -- answering ----------------------------------------------------------------------------------
Run = Callable[[str, list[Any]], list[Any]]


#: from this many alerts holding a text on, a page walks the list's order and looks each alert up
#: in them (the first page ends soon); fewer: the page starts from them (a rare text)
WALK_FROM = 5_000


def _phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def text_sql(id_column: str, text: str, *, walk: bool = False) -> tuple[str, list[Any]]:
    """The condition "the alert ``id_column`` holds the folded ``text``" and its parameters
    (``walk``: keep SQLite from starting from the alerts holding it, see :data:`WALK_FROM`)."""
    # each alert walked: its row looked up among the rows holding the text (integers, read once)
    row = f"(SELECT k.n FROM {_KEYS} AS k WHERE k.id = {id_column})"
    if len(text) >= 3:  # a phrase of trigrams, one after the other: exactly a substring
        if walk:
            return f"{row} IN (SELECT rowid FROM {_TEXT} WHERE {_TEXT} MATCH ?)", [_phrase(text)]
        return (f"{id_column} IN (SELECT k.id FROM {_TEXT} AS t JOIN {_KEYS} AS k ON k.n = t.rowid "
                f"WHERE {_TEXT} MATCH ?)"), [_phrase(text)]
    if walk:
        return f"{row} IN (SELECT rowid FROM {_TEXT} WHERE instr(text, ?) > 0)", [text]
    return (f"{id_column} IN (SELECT k.id FROM {_TEXT} AS t JOIN {_KEYS} AS k ON k.n = t.rowid "
            "WHERE instr(t.text, ?) > 0)"), [text]


def text_count(run: Run, text: str, limit: int | None = None) -> int:
    """How many alerts hold ``text`` (up to ``limit`` + 1), from the text table alone."""
    where, params = (f"{_TEXT} MATCH ?", [_phrase(text)]) if len(text) >= 3 else ("instr(text, ?) > 0", [text])
    if limit is None:
        return int(run(f"SELECT COUNT(*) FROM {_TEXT} WHERE {where}", params)[0][0])
    return int(run(f"SELECT COUNT(*) FROM (SELECT 1 FROM {_TEXT} WHERE {where} LIMIT ?)", [*params, limit + 1])[0][0])


def many_hold(run: Run, text: str) -> bool:
    """Whether :data:`WALK_FROM` alerts or more hold ``text`` (a short text: assumed)."""
    if len(text) < 3:
        return True
    found = run(f"SELECT COUNT(*) FROM (SELECT 1 FROM {_TEXT} WHERE {_TEXT} MATCH ? LIMIT ?)", [_phrase(text), WALK_FROM])
    return int(found[0][0]) >= WALK_FROM


#: (filter, column expression, None) -> the SQL of the filter on that column and its parameters
Test = Callable[[DocFilter, str, None], tuple[str, list[Any]]]


def _order(value: Any) -> tuple[int, Any]:
    return (1, value) if isinstance(value, str) else (0, value)


#: up to this many host rows in a query's time range, its groups read them by time (:data:`TIME_INDEX`)
FEW_IN_TIME = 200_000


def _index(run: Run, test: Test, query: DocQuery) -> str:
    """The host table's index a group-by reads: by time when the range since a lower bound holds
    few rows (counted through that index, up to :data:`FEW_IN_TIME`), else by rule."""
    for f in query.filters:
        if f.field == "first_seen" and f.op == "range" and f.value[0] is not None:
            sql, params = test(f, 'h."first_seen"', None)
            found = run(f"SELECT COUNT(*) FROM (SELECT 1 FROM {_HOSTS} AS h INDEXED BY {TIME_INDEX} WHERE {sql} "
                        "LIMIT ?)", [*params, FEW_IN_TIME + 1])
            if int(found[0][0]) <= FEW_IN_TIME:
                return TIME_INDEX
    return f"{_HOSTS}_rule"


def host_counts(run: Run, test: Test, query: DocQuery, fields: tuple[str, ...], sizes: tuple[int, ...],
                owned_by: OwnedBy | None) -> list[tuple[tuple[Any, ...], int]] | None:
    """``count_documents`` of alerts grouped by ``(rule.id, HOST_KEY)`` or ``(HOST_KEY,)`` from the
    host table: every group counted (no bucket limit), the ``sizes[0]`` rules with the biggest sums
    of their groups, within each its ``sizes[1]`` biggest hosts; ``None`` when the query filters on
    something the table does not hold (or has free text)."""
    if query.collection != _COLLECTION or query.text is not None or fields not in (("rule.id", HOST_KEY), (HOST_KEY,)):
        return None
    clauses, params = [], []
    for f in query.filters:
        if f.field not in _HOST_FIELDS or f.op not in ("equals", "in", "contains_any", "range"):
            return None
        sql, more = test(f, f'h."{f.field}"', None)
        clauses.append(f"coalesce({sql}, 0)" if f.op != "range" else sql)
        params.extend(more)
    if owned_by is not None:
        if not owned_by.agencies or tuple(owned_by.fields) != ("agency",):
            return None
        values = sorted(owned_by.agencies)
        clauses.append(f"h.agency IN ({', '.join('?' * len(values))})")
        params.extend(values)
    where = " AND ".join(clauses) or "1"
    index = _index(run, test, query)
    lead = 'h."rule.id", ' if len(fields) == 2 else ""
    extra = 'AND h."rule.id" IS NOT NULL ' if lead else ""
    # the bare column "spelled" comes from the row of max(): the newest alert of the group
    grouped = (f"SELECT {lead}COUNT(*) AS n, max(coalesce(h.first_seen, '') || char(1) || h.id), h.spelled "
               f"FROM {_HOSTS} AS h INDEXED BY {index} WHERE {where} {extra}GROUP BY {lead}h.host")
    if not lead:
        rows = run(f"SELECT spelled, n FROM ({grouped}) ORDER BY n DESC, spelled LIMIT ?", [*params, sizes[0]])
        return [((number_key(v),), int(n)) for v, n in rows]
    # each rule's biggest hosts and the sum of all its groups, ranked in SQL (there can be 500,000 groups)
    rows = run(f'SELECT "rule.id", spelled, n, total FROM (SELECT "rule.id", spelled, n, SUM(n) OVER '
               '(PARTITION BY "rule.id") AS total, ROW_NUMBER() OVER (PARTITION BY "rule.id" ORDER BY n DESC, spelled) '
               f"AS r FROM ({grouped})) WHERE r <= ?", [*params, sizes[1]])
    per_rule: dict[Any, int] = {}
    hosts: dict[Any, list[tuple[Any, int]]] = {}
    for rule, spelled, n, total in rows:
        per_rule[rule] = int(total)  # rules ranked by the sum of their (rule, host) counts
        hosts.setdefault(rule, []).append((spelled, int(n)))
    out: list[tuple[tuple[Any, ...], int]] = []
    rules = sorted(per_rule.items(), key=lambda item: (-item[1], _order(item[0])))[:sizes[0]]
    for rule, _ in rules:  # every group counted: no search engine's bucket limit (MAX_GROUP_BUCKETS) here
        chosen = sorted(hosts[rule], key=lambda item: (-item[1], _order(item[0])))[:sizes[1]]
        out.extend(((number_key(rule), number_key(spelled)), n) for spelled, n in chosen)
    return out
