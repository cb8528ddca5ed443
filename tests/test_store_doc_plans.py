"""How the embedded store answers the console's alert queries: the query plans that keep them fast
at a million alerts (benchmarks/console.py measures them; README "Console speed").

SQLite has no statistics here (the store never runs ``ANALYZE``), so the plan follows from the
indexes of the alerts' field table and from how a filter is written. Each plan below was once
worse, measured at 200,000 or 1,000,000 alerts: the open alerts newest first read and sorted
every open alert, body and all (16.8 s at 200,000, now 27 ms); a month's alerts counted per rule
sorted a million rows (0.8 s, now 0.19 s); an alert's history scanned the whole history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from soc.store import sqlite as sqlite_store
from soc.store import sqlite_doc_groups, sqlite_doc_query
from soc.store.base import DocQuery, OwnedBy
from soc.store.sqlite import SQLiteStore


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SQLiteStore:
    made = SQLiteStore(Path(tmp_path_factory.mktemp("plans")) / "soc.db")
    for i in range(60):
        made.create("alerts", f"a{i:03d}", {"id": f"a{i:03d}", "agency": ("xa-a", "xa-b")[i % 2],
                                             "status": ("new", "acknowledged", "closed")[i % 3],
                                             "rule": {"id": f"r{i % 4}", "level": ("low", "high")[i % 2]},
                                             "first_seen": f"2026-12-{1 + i % 28:02d}T08:00:00.000Z",
                                             "risk": i % 25, "incident_id": f"inc-{i % 5}"})
    return made


def plans(store: SQLiteStore, run: Any) -> list[str]:
    """The query plan of each statement ``run`` makes, one text each."""
    seen: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(seen.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    return [" | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + s)) for s in seen
            if s.startswith("SELECT") and s != sqlite_store._TOUCH_TEXT]  # the schema touch of every call


def no_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts of a time range through the field table, as when the hourly totals cannot answer
    (the parts of an hour at the ends of a range; tests/test_console_speed_dashboard.py)."""
    monkeypatch.setattr(sqlite_doc_query, "rollup_counts", lambda *args: None)


def page(**query: Any) -> DocQuery:
    return DocQuery("alerts", sort=query.pop("sort", ("first_seen",)), order="desc", size=10, **query)


@pytest.mark.parametrize("query", [
    page(filters=(("status", "in", ["new", "open"]),)),                       # the queue
    page(filters=(("status", "in", ["new", "open"]), ("agency", "in", ["xa-a"]))),
    page(filters=(("status", "in", ["new", "open"]),), sort=("risk", "first_seen")),  # by risk
    page(filters=(("rule.id", "equals", "r1"),)),                            # one rule's alerts
    page(filters=(("incident_id", "equals", "inc-2"),), sort=("first_seen",)),  # the first of an incident's
])
def test_a_page_walks_an_index_in_its_order_and_reads_only_its_bodies(store: SQLiteStore, query: DocQuery) -> None:
    first = plans(store, lambda: store.query_documents(query))[0]
    assert "TEMP B-TREE FOR ORDER BY" not in first, first  # no sort of every matching row
    assert "SCAN d" not in first and "SEARCH d USING PRIMARY KEY" in first, first


def test_a_page_of_one_agency_user_walks_the_time_index(store: SQLiteStore) -> None:
    query = page(filters=(("status", "in", ["new", "open"]),))
    first = plans(store, lambda: store.query_documents(query, owned_by=OwnedBy(("agency",), frozenset({"xa-b"}))))[0]
    assert "TEMP B-TREE FOR ORDER BY" not in first, first


@pytest.mark.parametrize("fields", [("rule.id",), ("rule.id", "status"), ("agency", "rule.id"), ("rule.level", "agency"),
                                    ("status", "rule.level"), ("agency",), ("status",)])
@pytest.mark.parametrize("filters", [(), (("status", "in", ["new", "open"]),),
                                     (("first_seen", "range", ("2026-12-01T00:00:00Z", "2026-12-31T00:00:00Z")),)])
@pytest.mark.parametrize("scoped", [False, True])
def test_group_counts_of_many_rows_read_one_index_in_its_order(store: SQLiteStore, fields: tuple[str, ...],
                                                              filters: Any, scoped: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_doc_groups, "MANY_ROWS", 2)  # these 60 alerts are "many"
    no_totals(monkeypatch)
    owned = OwnedBy(("agency",), frozenset({"xa-a"})) if scoped else None
    counted = plans(store, lambda: store.count_documents(DocQuery("alerts", filters=filters), fields, size=50,
                                                          owned_by=owned))
    grouped = [p for p in counted if "GROUP BY" in p or "COVERING INDEX" in p][-1]
    assert "USING COVERING INDEX" in grouped, counted
    assert "TEMP B-TREE" not in grouped, counted  # the groups come in order: no sort
    assert "docs" not in grouped, counted  # and no body is read


def test_group_counts_of_few_rows_are_sqlites_own_plan(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A day of alerts through the time index, sorted, rather than every alert in a grouping
    index's order (0.1 s each for 30 days at 1,000,000 alerts)."""
    no_totals(monkeypatch)
    day = (("first_seen", "range", ("2026-12-03T00:00:00Z", "2026-12-04T00:00:00Z")),)
    counted = plans(store, lambda: store.count_documents(DocQuery("alerts", filters=day), ("rule.level",)))
    assert any("doc_fields_alerts_seen (first_seen>? AND first_seen<?)" in p for p in counted), counted


def test_the_counts_are_those_of_the_bodies(store: SQLiteStore) -> None:
    """Reading an index in its order changes the plan, never the answer."""
    got = store.count_documents(DocQuery("alerts", filters=(("status", "in", ["new", "open"]),)), ("rule.id", "status"))
    bodies = [d.body for d in store.iter_all("alerts") if d.body["status"] in ("new", "open")]
    wanted: dict[tuple[str, str], int] = {}
    for body in bodies:
        key = (body["rule"]["id"], body["status"])
        wanted[key] = wanted.get(key, 0) + 1
    assert sorted(got) == sorted(wanted.items())
