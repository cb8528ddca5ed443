"""Totals per rule and host of the alerts in the embedded store, so that the queue grouped by rule
and host reads each rule's biggest hosts instead of grouping the whole host table.

The host table (:mod:`soc.store.sqlite_doc_text`) holds one row per alert and distinct host;
at 1,000,000 alerts some 2,000,000 rows in 569,153 (rule, host) groups, and grouping all of them
for the queue's "group by rule, then host" took 2.4 s p50, 3.8 s p95 on the loaded 2-core machine.
Here triggers on the host table keep, in the same transaction as every alert write, per
``(state, rule, host)``: the number of rows ``n``, the ``first_seen || char(1) || id`` of the
newest alert (``newest``) and that alert's spelling of the host (``spelled``, the spelling a
group shows) -- a deleted newest row looks its successor up in the host table's index -- and per
``(state, rule)`` (``host`` the empty blob) the sum of its groups, by which rules are ranked. The
``state`` is every alert (the empty blob), or the alerts of one of the console's status choices:
"open" (``new`` and ``open``, the blob ``open``), ``acknowledged`` or ``closed``. An index on
``(state, rule, n DESC, spelled)`` gives each rule's biggest hosts in the order the answer ranks
them, so a group-by reads about ``rules x hosts asked`` index entries. Made here too: the host
table's covering index by ``first_seen`` (:data:`TIME_INDEX`), through which a group-by of a
short time range (the queue's "last 24 hours") reads the rows of that range only.

**When they answer.** :func:`host_totals` answers a count grouped by ``(rule.id, HOST_KEY)``
without free text, agency scope or any filter but one of those status choices; anything else
goes to the host table's ``GROUP BY`` as before. A status filter compares ignoring case there, so
while any alert has a status outside the four the service writes (counted under the state
``x'02'``) a status-filtered count is not answered here.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from soc.store.base import OwnedBy
from soc.store.doc_query import DocQuery, number_key
from soc.store.sqlite_sql import rebuild_when_changed

__all__ = ["TIME_INDEX", "ensure_host_totals", "host_totals"]

log = logging.getLogger(__name__)

_HOSTS = "doc_hosts_alerts"  # the host table of soc.store.sqlite_doc_text
_TOTALS = "doc_host_totals_alerts"  # (state, rule, host) -> n, newest, spelled
_TRIGGERS = (f"{_TOTALS}_insert", f"{_TOTALS}_delete")
#: the host table's rows by ``first_seen`` (covering): the groups of a short time range read its rows
#: alone (:func:`soc.store.sqlite_doc_text.host_counts`), not the whole rule index
TIME_INDEX = f"{_HOSTS}_time"
_HOST_KEY = "@host"  # soc.store.sqlite_doc_text.HOST_KEY (that module imports nothing from here)
#: the console's status choices: the filter's values -> the state holding them
_STATES: dict[frozenset[str], Any] = {frozenset({"new", "open"}): b"open", frozenset({"acknowledged"}): "acknowledged",
                                      frozenset({"closed"}): "closed"}
_ODD = "x'02'"  # a status outside the service's four (a status filter may match it ignoring case)


def _state(row: str) -> str:
    status = f"{row}.status"
    return (f"CASE WHEN {status} IS NULL THEN x'01' WHEN typeof({status}) <> 'text' THEN {_ODD} "
            f"WHEN {status} IN ('new', 'open') THEN x'6f70656e' WHEN {status} IN ('acknowledged', 'closed') "
            f"THEN {status} ELSE {_ODD} END")


def _newest(row: str) -> str:
    return f"(coalesce({row}.first_seen, '') || char(1) || {row}.id)"  # as host_counts picks a spelling


def _ddl() -> tuple[list[str], list[str], list[str]]:
    """The table, the statements filling it from the host table, and its index and triggers."""
    tables = [f"CREATE TABLE {_TOTALS} (state NOT NULL, rule NOT NULL, host NOT NULL, n INTEGER NOT NULL, newest, "
              "spelled, PRIMARY KEY (state, rule, host)) WITHOUT ROWID"]
    fill = []
    for state in ("x''", _state("h")):
        # the bare column "spelled" comes from the row of max(): the newest alert of the group
        fill.append(f"INSERT INTO {_TOTALS} (state, rule, host, n, newest, spelled) SELECT {state}, h.\"rule.id\", "
                    f"h.host, COUNT(*), max({_newest('h')}), h.spelled FROM {_HOSTS} AS h "
                    f"WHERE h.\"rule.id\" IS NOT NULL GROUP BY 1, 2, 3")
    fill.append(f"INSERT INTO {_TOTALS} (state, rule, host, n) SELECT state, rule, x'', SUM(n) FROM {_TOTALS} "
                "GROUP BY state, rule")
    insert, delete = [], []
    for state in ("x''", _state("new")):
        insert.append(f"INSERT INTO {_TOTALS} (state, rule, host, n, newest, spelled) VALUES ({state}, "
                      f"new.\"rule.id\", new.host, 1, {_newest('new')}, new.spelled) ON CONFLICT DO UPDATE SET "
                      "n = n + 1, spelled = CASE WHEN newest IS NULL OR excluded.newest > newest THEN excluded.spelled "
                      "ELSE spelled END, newest = CASE WHEN newest IS NULL OR excluded.newest > newest "
                      "THEN excluded.newest ELSE newest END; "
                      f"INSERT INTO {_TOTALS} (state, rule, host, n) VALUES ({state}, new.\"rule.id\", x'', 1) "
                      "ON CONFLICT DO UPDATE SET n = n + 1;")
    for state, same in (("x''", ""), (_state("old"), f" AND {_state('h')} = {_state('old')}")):
        where = f"state = {state} AND rule = old.\"rule.id\""
        successor = (f"SELECT {_newest('h')}, h.spelled FROM {_HOSTS} AS h WHERE h.\"rule.id\" = old.\"rule.id\" "
                     f"AND h.host = old.host{same} ORDER BY 1 DESC LIMIT 1")
        delete.append(f"UPDATE {_TOTALS} SET n = n - 1 WHERE {where} AND host = old.host; "
                      f"UPDATE {_TOTALS} SET (newest, spelled) = ({successor}) WHERE {where} AND host = old.host "
                      f"AND newest = {_newest('old')}; "
                      f"UPDATE {_TOTALS} SET n = n - 1 WHERE {where} AND host = x'';")
    rest = [f"CREATE INDEX {_TOTALS}_top ON {_TOTALS} (state, rule, n DESC, spelled)",
            f"CREATE INDEX {TIME_INDEX} ON {_HOSTS} (first_seen, \"rule.id\", host, status, agency, \"rule.level\", "
            "spelled)",
            f"CREATE TRIGGER {_TRIGGERS[0]} AFTER INSERT ON {_HOSTS} WHEN new.\"rule.id\" IS NOT NULL "
            f"BEGIN {' '.join(insert)} END",
            f"CREATE TRIGGER {_TRIGGERS[1]} AFTER DELETE ON {_HOSTS} WHEN old.\"rule.id\" IS NOT NULL "
            f"BEGIN {' '.join(delete)} END"]
    return tables, fill, rest


def ensure_host_totals(conn: sqlite3.Connection) -> None:
    """Create (or rebuild, when their definition changed or the host table was rebuilt without
    their triggers) the totals, filled from the host table. Called after the host table exists."""
    tables, fill, rest = _ddl()

    def build() -> None:
        conn.execute(f"DROP TABLE IF EXISTS {_TOTALS}")
        conn.execute(f"DROP INDEX IF EXISTS {TIME_INDEX}")
        started = time.monotonic()
        for statement in tables:
            conn.execute(statement)
        for step, statement in enumerate(fill, 1):
            conn.execute(statement)
            log.info("totals per rule and host of alerts: step %d of %d filled (%.0f s)", step, len(fill),
                     time.monotonic() - started)
        for statement in rest:
            conn.execute(statement)

    rebuild_when_changed(conn, "host-totals:alerts", [*tables, *fill, *rest], _TRIGGERS, build)


# -- answering ----------------------------------------------------------------------------------
Run = Callable[[str, list[Any]], list[Any]]


def _order(value: Any) -> tuple[int, Any]:
    return (1, value) if isinstance(value, str) else (0, value)


def _wanted_state(query: DocQuery) -> tuple[bool, Any] | None:
    """``(filtered on status, the state)`` of a query the totals answer, else ``None``."""
    if not query.filters:
        return False, b""
    if len(query.filters) != 1:
        return None
    f = query.filters[0]
    if f.field != "status" or f.op not in ("equals", "in", "contains_any"):
        return None
    values = f.values
    if not values or not all(isinstance(v, str) for v in values):
        return None
    state = _STATES.get(frozenset(values))
    return None if state is None else (True, state)


def host_totals(run: Run, query: DocQuery, fields: tuple[str, ...], sizes: tuple[int, ...],
                owned_by: OwnedBy | None) -> list[tuple[tuple[Any, ...], int]] | None:
    """``count_documents`` of alerts grouped by ``(rule.id, HOST_KEY)`` from the totals, exactly
    as :func:`soc.store.sqlite_doc_text.host_counts` counts them; ``None`` when they cannot answer."""
    if query.collection != "alerts" or query.text is not None or fields != ("rule.id", _HOST_KEY) or owned_by is not None:
        return None
    wanted = _wanted_state(query)
    if wanted is None:
        return None
    filtered, state = wanted
    if filtered and run(f"SELECT 1 FROM {_TOTALS} WHERE state = {_ODD} AND n > 0 LIMIT 1", []):
        return None  # some alert's status may match the filter ignoring case
    sums = run(f"SELECT rule, n FROM {_TOTALS} WHERE state = ? AND host = x'' AND n > 0", [state])
    rules = sorted(((rule, int(n)) for rule, n in sums), key=lambda item: (-item[1], _order(item[0])))[:sizes[0]]
    out: list[tuple[tuple[Any, ...], int]] = []
    for rule, _ in rules:
        rows = run(f"SELECT spelled, n FROM {_TOTALS} INDEXED BY {_TOTALS}_top WHERE state = ? AND rule = ? "
                   "AND host <> x'' AND n > 0 ORDER BY n DESC, spelled LIMIT ?", [state, rule, sizes[1]])
        # SQLite's order is the answer's: numbers before text, text by code point (UTF-8 bytes)
        key = number_key(rule)
        out.extend(((key, number_key(spelled)), int(n)) for spelled, n in rows)
    return out
