"""``find`` in the embedded store reads the fields a collection's field table holds from that
table (``soc.store.sqlite_docs``): the answers must be exactly those of reading the bodies, and
the lookups the console makes on large collections must go through an index, not a scan of
every document (measured by benchmarks/console.py: an alert's history went from a scan of the
whole ``alert_history`` collection to one index lookup)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from soc.store import sqlite as sqlite_store
from soc.store.base import OwnedBy
from soc.store.sqlite import SQLiteStore
from soc.store.sqlite_doc_fields import PROJECTED

AGENCIES = ("xa-a", "xa-b", "so-c")
STATUSES = ("new", "open", "acknowledged", "closed")


def alert(rng: random.Random, i: int) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"a{i:04d}", "agency": rng.choice(AGENCIES), "status": rng.choice(STATUSES),
                            "rule": {"id": f"r{rng.randrange(5)}", "level": rng.choice(("low", "high"))},
                            "first_seen": f"2026-12-0{rng.randrange(1, 8)}T0{rng.randrange(10)}:00:00.000Z",
                            "risk": rng.randrange(1, 26)}
    if rng.random() < 0.3:
        body.pop("risk")  # a missing value sorts first (ascending), as in the body
    if rng.random() < 0.5:
        body["assignee"] = rng.choice(("an", "binh"))
    return body


def history(rng: random.Random, i: int, seq: int) -> dict[str, Any]:
    return {"id": f"a{i:04d}:{seq:06d}", "alert_id": f"a{i:04d}", "seq": seq, "agency": rng.choice(AGENCIES),
            "at": f"2026-12-07T0{rng.randrange(10)}:{rng.randrange(60):02d}:00.000Z", "action": "ack"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SQLiteStore:
    """The same documents in collections with a field table (alerts, alert_history) and in
    copies without one (read from the bodies)."""
    made = SQLiteStore(Path(tmp_path_factory.mktemp("find")) / "soc.db")
    rng = random.Random(5)
    for i in range(300):
        body = alert(rng, i)
        made.create("alerts", body["id"], body)
        made.create("alerts_plain", body["id"], body)
        for seq in range(1, rng.randrange(1, 4)):
            entry = history(rng, i, seq)
            made.create("alert_history", entry["id"], entry)
            made.create("alert_history_plain", entry["id"], entry)
    return made


def test_the_console_collections_have_field_tables() -> None:
    assert {"status", "agency", "rule.id", "first_seen", "risk"} <= set(PROJECTED["alerts"])
    assert {"alert_id", "seq", "at"} <= set(PROJECTED["alert_history"])


CASES: list[dict[str, Any]] = [
    {"where": {"status": ["new", "open"]}, "sort": "first_seen", "descending": True},
    {"where": {"agency": "xa-a", "rule.id": ["r1", "r2"]}, "sort": "risk", "descending": True},
    {"where": {"status": "closed"}, "sort": "risk"},
    {"where": {"rule.level": "high"}, "time_field": "first_seen", "start": "2026-12-03", "end": "2026-12-05T05",
     "sort": "first_seen"},
    {"where": {"assignee": None}, "sort": "first_seen", "limit": 7},
    {"where": {"status": "open"}, "owned_by": OwnedBy(("agency",), frozenset({"xa-a", "so-c"})), "sort": "first_seen",
     "descending": True, "limit": 20},
    {"where": {"agency": "xa-b"}, "owned_by": OwnedBy(("agency",), frozenset({"xa-a"}))},
    {"sort": "risk", "descending": True, "limit": 50},
    {"where": {"status": "new", "assignee": "an"}},
]


@pytest.mark.parametrize("case", CASES)
def test_find_over_the_field_table_answers_what_the_bodies_say(store: SQLiteStore, case: dict[str, Any]) -> None:
    got = store.find("alerts", **case)
    wanted = store.find("alerts_plain", **case)
    assert [(d.id, d.body) for d in got] == [(d.id, d.body) for d in wanted]
    assert got or case.get("owned_by")  # the cases select something (but the one outside the scope)


@pytest.mark.parametrize("case", [
    {"where": {"alert_id": "a0007"}, "sort": "seq"},
    {"where": {"alert_id": [f"a{i:04d}" for i in range(0, 300, 3)]}, "sort": "at", "limit": 100_000},
    {"where": {"alert_id": "a0011"}, "owned_by": OwnedBy(("agency",), frozenset({"xa-a"})), "sort": "seq"},
])
def test_an_alerts_history_is_found_the_same(store: SQLiteStore, case: dict[str, Any]) -> None:
    got = store.find("alert_history", **case)
    wanted = store.find("alert_history_plain", **case)
    assert [(d.id, d.body) for d in got] == [(d.id, d.body) for d in wanted]


def plan(store: SQLiteStore, run: Any) -> str:
    """The query plan of the statement ``run`` makes."""
    seen: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(seen.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    statement = next(s for s in seen if s.startswith("SELECT") and s != sqlite_store._TOUCH_TEXT)
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement))


def test_an_alerts_history_is_an_index_lookup_not_a_scan(store: SQLiteStore) -> None:
    shown = plan(store, lambda: store.find("alert_history", {"alert_id": "a0007"}, sort="seq"))
    assert "USING COVERING INDEX doc_fields_alert_history_alert (alert_id=?)" in shown, shown
    assert "SCAN" not in shown.replace("SCAN json_each", ""), shown


def test_alerts_in_time_order_walk_an_index(store: SQLiteStore) -> None:
    shown = plan(store, lambda: store.find("alerts", {"status": ["new", "open"]}, sort="first_seen", limit=50))
    assert "doc_fields_alerts" in shown and "USING" in shown and "INDEX" in shown, shown
    assert "SEARCH d USING PRIMARY KEY" in shown, shown  # the bodies: one lookup per row found
