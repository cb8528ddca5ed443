"""The alert workflow (issue #10, item 4): acknowledge, assign, close with a reason, reopen with
the history kept; compare-and-set under concurrent writers -- on SQLite and on the real
OpenSearch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.access import Forbidden, Principal
from soc.alerts import (
    AlertChange,
    AlertNotFound,
    AlertWorkflow,
    AlertWorkflowError,
    InvalidTransition,
    status_of,
)
from soc.alerts.model import HISTORY
from soc.alerts.query import AlertQuery, Cursor, scan
from soc.clock import Clock
from soc.model import iso
from soc.store.base import Store
from soc.store.sqlite import SQLiteStore

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
ANALYST = Principal("an", roles=frozenset({"analyst"}))
READER = Principal("binh", roles=frozenset({"auditor"}))


class Ticking:
    """A clock that moves one second each time it is read (times are distinct and ordered)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(seconds=1)
            return self.now


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The workflow tests on both stores."""
    if request.param == "sqlite":
        store: Store = SQLiteStore(tmp_path / "soc.db")
        yield store
        store.close()
        return
    from tests.search_helpers import drop, open_search_store

    search = open_search_store(request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name"))
    yield search
    drop(search)


def make_alert(alert_id: str, *, first_seen: datetime = T0, agency: str = "so-tttt", rule: str = "rule-ssh",
               level: str = "high", host: str = "web01", user: str = "root", source_ip: str = "203.0.113.9",
               status: str = "new", title: str = "SSH Brute Force") -> dict[str, Any]:
    """An alert as the detection engine records it (status ``new``)."""
    moment = iso(first_seen)
    return {"id": alert_id, "kind": "correlation", "status": status, "agency": agency,
            "rule": {"id": rule, "title": title, "level": level, "version": "1"},
            "@timestamp": moment, "first_seen": moment, "last_seen": moment, "detected_at": moment,
            "event_count": 3, "event_ids": [f"{alert_id}-e1"], "group": {"source.ip": source_ip},
            "group_key": f"agency={agency}|source.ip={source_ip}",
            "entities": {"host.name": [host], "user.name": [user], "source.ip": [source_ip]}}


def seed(store: Store, *alerts: dict[str, Any]) -> list[str]:
    for alert in alerts:
        assert store.create("alerts", alert["id"], alert)
    store.refresh()
    return [a["id"] for a in alerts]


def history(store: Store, alert_id: str) -> list[dict[str, Any]]:
    store.refresh()
    return sorted((d.body for d in store.find(HISTORY, {"alert_id": alert_id}, limit=10_000)),
                  key=lambda e: e["seq"])


# -- lifecycle -----------------------------------------------------------------------------------
def test_lifecycle_with_reasons_and_reopen_keeping_the_history(any_store: Store) -> None:
    seed(any_store, make_alert("a1"))
    flow = AlertWorkflow(any_store, clock=Ticking())
    assert status_of(flow.get(ANALYST, "a1")) == "open"  # "new" reads as open

    acked = flow.acknowledge(ANALYST, "a1", note="looking")
    assert acked.changed and acked.alert["status"] == "acknowledged"
    first_ack = acked.alert["acknowledged_at"]
    assert flow.acknowledge(ANALYST, "a1").changed is False  # already acknowledged: no entry

    assigned = flow.assign(ANALYST, "a1", "chi")
    assert assigned.alert["assignee"] == "chi" and assigned.alert["status"] == "acknowledged"
    closed = flow.close(ANALYST, "a1", reason="false_positive", note="scanner of the SOC")
    assert closed.alert["status"] == "closed" and closed.alert["close_reason"] == "false_positive"
    assert closed.alert["closed_by"] == "an" and closed.alert["closed_at"] > first_ack
    with pytest.raises(InvalidTransition, match="reopen it first"):
        flow.acknowledge(ANALYST, "a1")

    reopened = flow.reopen(ANALYST, "a1", note="it was not the scanner")
    assert reopened.alert["status"] == "open" and "close_reason" not in reopened.alert
    assert reopened.alert["reopen_count"] == 1
    again = flow.acknowledge(ANALYST, "a1")
    assert again.alert["acknowledged_at"] == first_ack  # the first acknowledgement counts (MTTA)
    flow.close(ANALYST, "a1", reason="true_positive", note="blocked at the firewall")
    flow.assign(ANALYST, "a1", None)

    entries = history(any_store, "a1")
    assert [(e["action"], e["from"], e["to"]) for e in entries] == [
        ("ack", "open", "acknowledged"), ("assign", "acknowledged", "acknowledged"),
        ("close", "acknowledged", "closed"), ("reopen", "closed", "open"), ("ack", "open", "acknowledged"),
        ("close", "acknowledged", "closed"), ("assign", "closed", "closed")]
    assert [e["seq"] for e in entries] == list(range(1, 8))
    assert entries[2]["reason"] == "false_positive" and entries[2]["note"] == "scanner of the SOC"  # never lost
    assert entries[3]["note"] == "it was not the scanner" and entries[1]["assignee_to"] == "chi"
    assert entries[6]["assignee_from"] == "chi" and entries[6]["assignee_to"] is None
    assert all(e["actor"] == "an" and e["agency"] == "so-tttt" and e["job"] is None for e in entries)
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    assert flow.history(READER, "a1") == entries
    assert any_store.get("alerts", "a1").body["status"] == "closed"  # type: ignore[union-attr]


def test_history_entries_are_create_only_and_a_lost_entry_is_written_later(any_store: Store) -> None:
    seed(any_store, make_alert("a1"))
    flow = AlertWorkflow(any_store, clock=Ticking())
    flow.acknowledge(ANALYST, "a1")
    # a process that stopped after writing the alert, before writing its history entry
    assert any_store.delete(HISTORY, "a1:000001")
    assert [e["seq"] for e in flow.history(ANALYST, "a1")] == [1]  # read from the alert itself
    flow.assign(ANALYST, "a1", "chi")  # the next change writes it first
    assert [e["seq"] for e in history(any_store, "a1")] == [1, 2]
    assert any_store.create(HISTORY, "a1:000002", {"id": "x"}) is False


@pytest.mark.parametrize(("change", "message"), [
    (AlertChange("close"), "needs a reason"),
    (AlertChange("close", reason="because"), "unknown close reason"),
    (AlertChange("close", reason="other"), "'other' needs a note"),
    (AlertChange("close", reason="other", note="   "), "'other' needs a note"),
    (AlertChange("ack", reason="benign"), "only given when closing"),
    (AlertChange("assign", assignee=" "), "assignee is empty"),
    (AlertChange("close", reason="benign", note="x" * 4001), "at most 4000"),
])
def test_reason_and_note_are_required(tmp_path: Path, change: AlertChange, message: str) -> None:
    store = SQLiteStore(tmp_path / "soc.db")
    seed(store, make_alert("a1"))
    flow = AlertWorkflow(store)
    with pytest.raises(AlertWorkflowError, match=message):
        flow.change(ANALYST, "a1", change)
    assert store.get("alerts", "a1").body["status"] == "new"  # type: ignore[union-attr]
    assert history(store, "a1") == []
    flow.close(ANALYST, "a1", reason="other", note="a test alert")  # with a note it is fine
    store.close()


def test_permissions_and_unknown_alerts(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "soc.db")
    seed(store, make_alert("a1"))
    flow = AlertWorkflow(store)
    with pytest.raises(Forbidden, match="alerts:write"):
        flow.acknowledge(READER, "a1")
    agency_user = Principal("it-so", roles=frozenset({"agency"}), agency="so-tttt")
    with pytest.raises(Forbidden):
        flow.close(agency_user, "a1", reason="benign")
    with pytest.raises(AlertNotFound, match="no alert 'nope'"):
        flow.acknowledge(ANALYST, "nope")
    assert flow.reopen(ANALYST, "a1").changed is False  # open already
    local = Principal.local("root")
    assert flow.acknowledge(local, "a1").history["actor"] == "local:root"  # type: ignore[index]
    with pytest.raises(InvalidTransition, match="only a closed alert"):
        flow.reopen(ANALYST, "a1")
    store.close()


def test_concurrent_writers_never_lose_a_change(any_store: Store) -> None:
    """Two threads change the same alert at once: every change is applied to what the other
    wrote (compare-and-set and retry), each with its own history entry."""
    seed(any_store, make_alert("a1"))
    flow = AlertWorkflow(any_store, clock=Ticking())
    rounds = 15
    errors: list[BaseException] = []

    def assigner() -> None:
        try:
            for n in range(rounds):
                flow.assign(ANALYST, "a1", f"user{n}")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def closer() -> None:
        try:
            for n in range(rounds):
                flow.close(Principal("dung", roles=frozenset({"analyst"})), "a1", reason="benign", note=f"round {n}")
                flow.reopen(Principal("dung", roles=frozenset({"analyst"})), "a1")
        except BaseException as error:  # pragma: no cover
            errors.append(error)

    threads = [threading.Thread(target=assigner), threading.Thread(target=closer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    alert = any_store.get("alerts", "a1").body  # type: ignore[union-attr]
    entries = history(any_store, "a1")
    assert len(entries) == 3 * rounds == alert["history_seq"]  # nothing lost, nothing doubled
    assert [e["seq"] for e in entries] == list(range(1, 3 * rounds + 1))
    assert [e["assignee_to"] for e in entries if e["action"] == "assign"] == [f"user{n}" for n in range(rounds)]
    assert [e["note"] for e in entries if e["action"] == "close"] == [f"round {n}" for n in range(rounds)]
    assert alert["assignee"] == f"user{rounds - 1}" and alert["status"] == "open"
    assert alert["reopen_count"] == rounds
    statuses = [e["to"] for e in entries if e["action"] != "assign"]
    assert statuses == ["closed", "open"] * rounds  # the status moves in the order the changes won


# -- the query and its pages -----------------------------------------------------------------------
def test_scan_pages_through_ties_without_loss_or_repeat(any_store: Store) -> None:
    """Keyset pages by (first_seen, id) -- more alerts share one time than a page holds -- and
    by id; the cursor can be saved and resumed."""
    alerts = [make_alert(f"t{n:02d}", first_seen=T0 + timedelta(minutes=n // 7)) for n in range(23)]
    seed(any_store, *alerts)
    since = AlertQuery(since=iso(T0), until=iso(T0 + timedelta(hours=1)))
    seen = [d.id for docs, _ in scan(any_store, since, page=3) for d in docs]
    assert seen == [a["id"] for a in alerts]
    plain = [d.id for docs, _ in scan(any_store, AlertQuery(), page=4) for d in docs]
    assert plain == sorted(a["id"] for a in alerts)
    pages = scan(any_store, since, page=5)
    first, cursor = next(pages)
    again = Cursor.from_dict(cursor.as_dict())
    rest = [d.id for docs, _ in scan(any_store, since, page=5, cursor=again) for d in docs]
    assert [d.id for d in first] + rest == seen
    later = AlertQuery(since=iso(T0 + timedelta(minutes=1)), until=iso(T0 + timedelta(minutes=3)))
    assert [d.id for docs, _ in scan(any_store, later, page=2) for d in docs] == [f"t{n:02d}" for n in range(7, 21)]


def test_query_filters(any_store: Store) -> None:
    seed(any_store, make_alert("q1", host="WEB01", user="root"),
         make_alert("q2", host="db01", user="Admin", level="critical", agency="so-yte"),
         make_alert("q3", host="db01", user="an", rule="rule-web", title="SQL Injection", status="closed"),
         make_alert("q4", host="mail01", source_ip="198.51.100.7", first_seen=T0 + timedelta(days=1)))

    def ids(query: AlertQuery) -> list[str]:
        return [d.id for docs, _ in scan(any_store, query.check()) for d in docs if query.matches(d.body)]

    assert ids(AlertQuery(status="open")) == ["q1", "q2", "q4"]
    assert ids(AlertQuery(status=["closed"])) == ["q3"]
    assert ids(AlertQuery(host="web01")) == ["q1"]  # without case
    assert ids(AlertQuery(user="admin", agency="so-yte")) == ["q2"]
    assert ids(AlertQuery(level=["critical", "medium"])) == ["q2"]
    assert ids(AlertQuery(rule="rule-web")) == ["q3"]
    assert ids(AlertQuery(source_ip="198.51.100.7")) == ["q4"]
    assert ids(AlertQuery(since=iso(T0 + timedelta(hours=1)))) == ["q4"]
    assert ids(AlertQuery(until=iso(T0 + timedelta(hours=1)), host="db01")) == ["q2", "q3"]
    assert ids(AlertQuery(text="sql inj")) == ["q3"]
    assert ids(AlertQuery(fields={"group.source.ip": "198.51.100.7"})) == ["q4"]
    assert ids(AlertQuery(fields={"entities.host.name": "DB01", "rule.title": "ssh brute force"})) == ["q2"]
    assert ids(AlertQuery(ids=["q1", "q3", "zz"])) == ["q1", "q3"]
    with pytest.raises(AlertWorkflowError, match="unknown alert status"):
        AlertQuery(status="done").check()
    with pytest.raises(AlertWorkflowError, match="unknown alert query field"):
        AlertQuery.from_dict({"colour": "red"})
    assert AlertQuery.from_dict(AlertQuery(host="x", fields={"a": "b"}).as_dict()) == AlertQuery(host="x", fields={"a": "b"})


def clock_at(moment: datetime) -> Clock:
    return lambda: moment
