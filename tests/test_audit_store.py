"""AuditedStore on SQLite and the real OpenSearch: every document write through it is recorded
under its principal with the changed fields (values only for small scalars that are no secret),
events are counted, unaudited collections and failed writes leave no record; composed over a
principal's ScopedStore as the application does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.access import Forbidden, Principal, Scope
from soc.audit import NOT_AUDITED, AuditedStore, AuditRecord, AuditTrail, changes, verify
from soc.store import open_store
from soc.store.base import Conflict, Store
from soc.store.scoped import ScopedStore

ALICE = Principal(name="alice", roles=frozenset({"analyst"}), agency="so-yte")


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        sqlite = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
        yield sqlite
        sqlite.close()
        return
    from tests.search_helpers import drop, open_search_store

    search = open_search_store(request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name"))
    yield search
    drop(search)


def _records(store: Store) -> list[AuditRecord]:
    return list(AuditTrail(store).records())


def test_document_writes_are_recorded_with_their_changes(store: Store) -> None:
    trail = AuditTrail(store)
    audited = AuditedStore(store, trail, ALICE, ip="10.0.5.20", user_agent="soc-web")
    alert = {"id": "a-1", "agency": "so-yte", "status": "new", "assignee": None, "event_ids": ["e1", "e2"],
             "message": "x" * 300}
    assert audited.create("alerts", "a-1", alert)
    assert not audited.create("alerts", "a-1", alert)  # create-only: nothing written, nothing recorded
    doc = audited.get("alerts", "a-1")
    assert doc is not None
    audited.put("alerts", "a-1", {**doc.body, "status": "acknowledged", "assignee": "alice",
                                  "event_ids": ["e1", "e2", "e3"]}, expected_version=doc.version)
    same = audited.get("alerts", "a-1")
    assert same is not None
    audited.put("alerts", "a-1", same.body)  # no change: no record
    with pytest.raises(Conflict):  # a lost compare-and-set records nothing
        audited.put("alerts", "a-1", {**same.body, "status": "closed"}, expected_version=doc.version)
    assert audited.delete("alerts", "a-1")
    assert not audited.delete("alerts", "a-1")

    created, updated, deleted = _records(store)
    assert [r.action for r in (created, updated, deleted)] == ["alerts.create", "alerts.update", "alerts.delete"]
    for record in (created, updated, deleted):
        assert record.actor.label == "alice" and record.actor.agency == "so-yte"
        assert (record.target and str(record.target)) == "alerts/a-1"
        assert (record.ip, record.user_agent) == ("10.0.5.20", "soc-web")
    assert created.details["fields"] == sorted(alert)
    assert created.details["values"] == {"id": {"old": None, "new": "a-1"}, "agency": {"old": None, "new": "so-yte"},
                                         "status": {"old": None, "new": "new"}, "assignee": {"old": None, "new": None}}
    assert updated.details == {"fields": ["assignee", "event_ids", "status"],  # event_ids: a list, name only
                               "values": {"assignee": {"old": None, "new": "alice"},
                                          "status": {"old": "new", "new": "acknowledged"}}}
    assert deleted.details["fields"] == sorted(alert) and deleted.details["values"]["status"] == {
        "old": "acknowledged", "new": None}
    assert verify(store).ok


def test_secrets_events_and_unaudited_collections(store: Store) -> None:
    trail = AuditTrail(store)
    audited = AuditedStore(store, trail, Principal.local("root"))
    audited.create("users", "bob", {"name": "bob", "password_hash": "$argon2id$...", "roles": ["analyst"]})
    audited.put("users", "bob", {"name": "bob", "password_hash": "$argon2id$new", "roles": ["analyst"]})
    for collection in sorted(NOT_AUDITED - {"audit"}):
        audited.create(collection, "x", {"holder": "me"})
        audited.put(collection, "x", {"holder": "you"})
        audited.delete(collection, "x")
    events = [{"_id": f"ev-{n}", "@timestamp": "2026-12-07T01:00:00.000Z", "event.dataset": "linux.sshd",
               "organization.id": "so-yte", "message": "m"} for n in range(3)]
    assert audited.write_events(events).created == 3
    assert audited.write_events(events).created == 0  # a replay stores nothing: nothing to record
    records = _records(store)
    assert [r.action for r in records] == ["users.create", "users.update", "events.write"]
    assert records[0].actor.label == "local:root" and records[0].actor.kind == "local"
    assert "password_hash" in records[0].details["fields"] and "password_hash" not in records[0].details["values"]
    assert records[1].details == {"fields": ["password_hash"], "values": {}}
    assert records[2].details == {"created": 3, "existing": 0, "rejected": 0, "retryable": 0}
    assert records[2].target is not None and records[2].target.type == "events"


def test_composed_over_a_scoped_store(store: Store) -> None:
    """The application's composition: AuditedStore(ScopedStore(base, scope), AuditTrail(base), principal)."""
    trail = AuditTrail(store)  # over the store itself: a scoped principal may not write the trail
    view = AuditedStore(ScopedStore(store, Scope(frozenset({"so-yte"}))), trail, ALICE)
    assert view.dialect == store.dialect and isinstance(view, Store)
    assert view.create("alerts", "mine", {"id": "mine", "agency": "so-yte", "status": "new"})
    with pytest.raises(Forbidden):
        view.create("alerts", "theirs", {"id": "theirs", "agency": "so-tc", "status": "new"})
    with pytest.raises(Forbidden):
        view.put("exceptions", "e-1", {"id": "e-1"})
    assert [r.action for r in _records(store)] == ["alerts.create"]
    assert view.get("alerts", "mine") is not None


def test_system_components_and_the_identity_hook(store: Store) -> None:
    trail = AuditTrail(store)
    trail.record("system:outbox", "report.send", ("report_snapshots", "TH-1"), {"recipient": "mps"})
    trail.hook(None, "login.failed", {"user": "mallory", "source_ip": "203.0.113.9", "reason": "invalid"})
    sent, failed = _records(store)
    assert sent.actor.label == "system:outbox" and sent.actor.kind == "system"
    assert failed.actor.label == "anonymous" and failed.ip == "203.0.113.9"
    assert failed.target is not None and str(failed.target) == "users/mallory"
    assert failed.details == {"user": "mallory", "reason": "invalid"}


def test_changes() -> None:
    assert changes({"a": 1, "b": "x", "c": [1]}, {"a": 2, "b": "x", "c": [2], "d": 1.5}) == {
        "fields": ["a", "c", "d"], "values": {"a": {"old": 1, "new": 2}, "d": {"old": None, "new": 1.5}}}
    assert changes({"api_token": "s3cret"}, {"api_token": "n3w"})["values"] == {}
