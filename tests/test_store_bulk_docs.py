"""Bulk document writes beyond the store contract (tests/store_contract.py): the Kibana copies
of alerts written in bulk and a document the engine refuses (real OpenSearch); the scoped and
audited views keep their per-document checks and records; the indicator book and the TAXII
objects write a feed page or an envelope in one bulk call, and a merge that loses its race to
another writer is merged again (SQLite and OpenSearch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soc.access import Forbidden, Principal, Scope
from soc.audit import AuditedStore, AuditTrail
from soc.intel.book import INDICATORS, IndicatorBook, Item
from soc.intel.indicators import indicator_id, normalize
from soc.intel.taxii_objects import OBJECTS, TaxiiObjects
from soc.model import iso
from soc.store.base import DocWrite, Store, StoreError
from soc.store.scoped import ScopedStore
from soc.store.search import OpenSearchStore
from soc.store.search_alerts_index import alerts_index
from soc.store.sqlite import SQLiteStore
from tests.search_helpers import drop, open_search_store

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ALICE = Principal(name="alice", roles=frozenset({"analyst"}), agency="so-a")


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        sqlite: Any = SQLiteStore(tmp_path / "soc.db")
        yield sqlite
        sqlite.close()
        return
    search = open_search_store(request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name"))
    yield search
    drop(search)


@pytest.fixture
def search(opensearch_url: str, unique_name: str) -> Iterator[OpenSearchStore]:
    store = open_search_store(opensearch_url, unique_name)
    yield store
    drop(store)


class Counting:
    """A real store that counts the document calls made through it and can let another writer
    in between a bulk write's read and the write (``before_bulk``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: dict[str, int] = {}
        self.before_bulk: Any = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if name in ("create", "put", "get", "create_documents", "put_documents"):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                if name == "put_documents" and self.before_bulk is not None:
                    before, self.before_bulk = self.before_bulk, None
                    before()
                return attribute(*args, **kwargs)
            return counted
        return attribute


def _alert(id_: str, status: str) -> dict[str, Any]:
    return {"id": id_, "kind": "event", "@timestamp": iso(NOW), "first_seen": iso(NOW), "last_seen": iso(NOW),
            "detected_at": iso(NOW), "status": status, "event_ids": ["e1"], "event_count": 1, "agency": "so-a",
            "rule": {"id": "r1", "title": "T", "level": "high"}}


@pytest.mark.search
def test_alerts_written_in_bulk_keep_their_kibana_copies(search: OpenSearchStore) -> None:
    assert search.create_documents("alerts", [("a1", _alert("a1", "new")), ("a2", _alert("a2", "new"))]) == [True, True]
    first = search.get("alerts", "a1")
    assert first is not None
    [version] = search.put_documents("alerts", [DocWrite("a1", _alert("a1", "acknowledged"), first.version)])
    assert isinstance(version, int) and version > first.version
    index = alerts_index(search.prefix)
    search.transport.request("POST", f"/{index}/_refresh")
    hits = search.transport.request("POST", f"/{index}/_search", body={"size": 10})["hits"]["hits"]
    status = {h["_id"]: h["_source"]["kibana"]["alert"]["workflow_status"] for h in hits}
    assert status == {"a1": "acknowledged", "a2": "open"}


@pytest.mark.search
def test_a_document_the_engine_refuses_is_that_documents_error(search: OpenSearchStore) -> None:
    assert search.create("incidents", "i0", {"size": {"bytes": 1}})  # maps `size` as an object
    results = search.create_documents("incidents", [("i1", {"size": {"bytes": 2}}), ("i2", {"size": 2}),
                                                    ("i3", {"size": {"bytes": 3}})])
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], StoreError) and "incidents/i2" in str(results[1])
    assert "mapper_parsing_exception" in str(results[1]) or "document_parsing_exception" in str(results[1])
    assert search.get("incidents", "i2") is None and search.get("incidents", "i3") is not None


def test_a_scoped_view_checks_every_document(store: Store) -> None:
    store.create("alerts", "theirs", {"agency": "so-b", "status": "new"})
    view = ScopedStore(store, Scope(frozenset({"so-a"})))
    results = view.create_documents("alerts", [("mine", {"agency": "so-a"}), ("other", {"agency": "so-b"}),
                                               ("theirs", {"agency": "so-a"})])
    assert results[0] is True and all(isinstance(r, Forbidden) for r in results[1:])
    assert store.get("alerts", "other") is None
    doc = store.get("alerts", "mine")
    assert doc is not None
    puts = view.put_documents("alerts", [DocWrite("mine", {"agency": "so-a", "status": "closed"}, doc.version),
                                         DocWrite("theirs", {"agency": "so-b", "status": "closed"})])
    assert isinstance(puts[0], int) and isinstance(puts[1], Forbidden)
    assert [d.body.get("status") for d in (store.get("alerts", "mine"), store.get("alerts", "theirs"))
            if d is not None] == ["closed", "new"]
    assert isinstance(view.put_documents("rule_state", [DocWrite("r", {})])[0], Forbidden)  # no agency's
    unscoped = ScopedStore(store, Scope(None))
    assert unscoped.create_documents("rule_state", [("r", {"n": 1})]) == [True]


def test_the_audited_view_records_each_document_as_single_writes_do(store: Store) -> None:
    trail = AuditTrail(store)
    audited = AuditedStore(store, trail, ALICE)
    assert audited.create_documents("alerts", [("a1", {"agency": "so-a", "status": "new"}),
                                               ("a1", {"agency": "so-a", "status": "x"})]) == [True, False]
    doc = audited.get("alerts", "a1")
    assert doc is not None
    results = audited.put_documents("alerts", [
        DocWrite("a1", {"agency": "so-a", "status": "acknowledged"}, doc.version),
        DocWrite("a1", {"agency": "so-a", "status": "closed"}, doc.version),  # stale: nothing recorded
        DocWrite("a2", {"agency": "so-a", "status": "new"}),
        DocWrite("a2", {"agency": "so-a", "status": "new"}),  # no change: nothing recorded
    ])
    assert isinstance(results[0], int) and isinstance(results[2], int) and isinstance(results[3], int)
    audited.put_documents("rule_state", [DocWrite("r", {"n": 1})])  # not audited
    records = list(trail.records())
    assert [(r.action, str(r.target)) for r in records] == [
        ("alerts.create", "alerts/a1"), ("alerts.update", "alerts/a1"), ("alerts.create", "alerts/a2")]
    assert records[1].details["values"] == {"status": {"old": "new", "new": "acknowledged"}}


def _items(values: Sequence[str], **options: Any) -> list[Item]:
    return [Item(normalize("ipv4", v), **options) for v in values]


def test_a_feed_page_is_read_and_written_in_bulk(store: Store) -> None:
    counting = Counting(store)
    book = IndicatorBook(counting, clock=lambda: NOW)  # type: ignore[arg-type]
    values = [f"192.0.2.{i}" for i in range(1, 201)]
    assert book.take("a", _items(values)) == {"new": 200, "updated": 0, "unchanged": 0, "unmatchable": 0,
                                              "invalid": 0}
    assert counting.calls == {"put_documents": 1}  # no single read or write
    assert book.take("b", _items(values[:150], confidence=90)) == {
        "new": 0, "updated": 150, "unchanged": 0, "unmatchable": 0, "invalid": 0}
    assert counting.calls == {"put_documents": 2}
    doc = store.get(INDICATORS, indicator_id("ipv4", "192.0.2.1"))
    assert doc is not None and doc.body["sources"] == ["a", "b"] and doc.body["confidence"] == 90


def test_a_merge_that_loses_its_race_is_merged_again(store: Store) -> None:
    counting = Counting(store)
    book = IndicatorBook(counting, clock=lambda: NOW)  # type: ignore[arg-type]
    values = [f"198.51.100.{i}" for i in range(1, 41)]
    assert book.take("a", _items(values[:20]))["new"] == 20
    other = IndicatorBook(store, clock=lambda: NOW)
    # another writer takes one stored and one new value between this page's read and its write
    counting.before_bulk = lambda: other.take("c", _items([values[0], values[30]]))
    counts = book.take("b", _items(values))
    assert counts == {"new": 19, "updated": 21, "unchanged": 0, "unmatchable": 0, "invalid": 0}
    for value, sources in ((values[0], ["a", "b", "c"]), (values[30], ["b", "c"]), (values[35], ["b"])):
        doc = store.get(INDICATORS, indicator_id("ipv4", value))
        assert doc is not None and doc.body["sources"] == sources


def test_a_taxii_envelope_is_one_bulk_create(store: Store) -> None:
    counting = Counting(store)
    objects = TaxiiObjects(counting, clock=lambda: NOW)  # type: ignore[arg-type]
    envelope = [{"type": "indicator", "spec_version": "2.1", "id": f"indicator--{n:08d}-0000-4000-8000-000000000000",
                 "created": "2026-02-01T00:00:00.000Z", "modified": "2026-02-01T00:00:00.000Z",
                 "pattern": f"[ipv4-addr:value = '203.0.113.{n}']", "pattern_type": "stix",
                 "valid_from": "2026-02-01T00:00:00Z"} for n in range(1, 101)]
    result = objects.add("c1", envelope)
    assert len(result.successes) == 100 and not result.failures
    assert counting.calls.get("create_documents") == 1 and "create" not in counting.calls
    store.refresh()
    assert len(store.find(OBJECTS, {"collection_id": "c1"})) == 100
    assert len(objects.add("c1", envelope).successes) == 100  # posted again: nothing new
    store.refresh()
    assert len(store.find(OBJECTS, {"collection_id": "c1"})) == 100
