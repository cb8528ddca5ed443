"""The embedded store keeps working when another connection changes the schema under it.

Several processes share one SQLite file (``soc run``, ``soc detect``, the console), and the store
changes its own schema (a rule reading a new field adds a column to ``events``; opening a newer
version rebuilds the field tables). SQLite 3.40 reloading a changed schema while it compiles a
write to ``docs`` -- whose nested triggers insert into the FTS5 table of the alerts' free text --
failed with "no such table: docs"; the store now has the schema reloaded first."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from soc.store.sqlite import SQLiteStore

ALERT = {"status": "new", "rule": {"id": "r-1", "level": "high"}, "first_seen": "2026-12-01T00:00:00Z",
         "agency": "xa-a", "entities": {"host.name": ["WS01"]}}


@pytest.mark.parametrize("alert_first", [False, True])
def test_the_first_write_after_another_connection_changed_the_schema(tmp_path: Path, alert_first: bool) -> None:
    path = tmp_path / "soc.db"
    store, other = SQLiteStore(path), SQLiteStore(path)
    try:
        if alert_first:
            assert other.create("alerts", "a-1", ALERT)
        raw = sqlite3.connect(path)
        raw.execute("ALTER TABLE events ADD COLUMN extra_field TEXT")  # as a new rule's field would
        raw.commit()
        raw.close()
        assert store.create("exceptions", "e-1", {"owner": "soc"})
        assert store.create("alerts", "a-2", {**ALERT, "entities": {"host.name": ["db01"]}})
        assert store.get("alerts", "a-2") is not None and store.get("exceptions", "e-1") is not None
    finally:
        store.close()
        other.close()


def test_an_alert_of_an_unexpected_shape_is_still_written(tmp_path: Path) -> None:
    """The text and host tables are kept by triggers that call Python: an exception there would
    refuse the write. A ``rule`` that is a plain string, entities that are a list, a body
    that is a list: all stored; the text index holds what can be read."""
    store = SQLiteStore(tmp_path / "soc.db")
    try:
        assert store.create("alerts", "odd-1", {"id": "odd-1", "rule": "r1", "status": "open", "entities": ["x"],
                                                "group": {"host.name": {"nested": 1}}, "first_seen": "2026-12-01T00:00:00Z"})
        assert store.create("alerts", "odd-2", {"id": "odd-2", "rule": {"id": "r2"}, "entities": {"host.name": "WS9"}})
        assert store.get("alerts", "odd-1") is not None and store.get("alerts", "odd-2") is not None
        store.put("alerts", "odd-1", {"id": "odd-1", "rule": None, "status": "closed"})
        assert store.get("alerts", "odd-1").body["status"] == "closed"
    finally:
        store.close()
