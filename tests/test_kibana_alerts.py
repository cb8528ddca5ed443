"""Alerts Kibana can read and the migration of existing indices (issue #14, item 2), on the real
OpenSearch: an alert the detection engine writes is found through ``_field_caps`` with a date
``@timestamp`` and the ``kibana.alert.*`` fields; ``soc store reindex`` moves an event index of
the old mapping to the ECS one with every event kept, and rebuilds the alerts copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from soc.detect.compiler import RuleSet, compile_rules
from soc.detect.engine import ALERTS, DetectionEngine
from soc.detect.rules import load_rules
from soc.model import iso
from soc.store.base import Window
from soc.store.ecs_schema import ecs_schema
from soc.store.search import OpenSearchStore
from soc.store.search_alerts_index import alerts_index
from soc.store.search_docs import decode_version
from soc.store.search_reindex import needs_reindex, reindex
from tests.search_helpers import drop, open_search_store
from tests.store_contract import DAY1

pytestmark = pytest.mark.search

RULE = """
title: Root password failures
id: 4b1c7a9e-0d5e-4c36-9d2a-6f1f0d7c2b11
status: test
description: a failed password for root
author: soc tests
level: high
tags: [attack.credential-access]
logsource: {product: linux, service: sshd}
detection:
  keywords: ['Failed password for ROOT']
  condition: keywords
"""


def _event(id_: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"_id": id_, "@timestamp": iso(DAY1), "event.dataset": "linux.sshd", "organization.id": "so-a",
            "message": message, **fields}


EVENTS = [_event("e1", "Failed password for root from 10.0.0.1 port 22 ssh2", **{"user.name": "Root"}),
          _event("e2", "Failed password for root from 10.0.0.2 port 22 ssh2"),
          _event("e3", "Accepted password for alice from 10.0.0.3 port 22 ssh2")]


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    (tmp_path / "rule.yml").write_text(RULE, encoding="utf-8")
    return compile_rules(load_rules([tmp_path]), dialect="dsl")


@pytest.fixture
def store(opensearch_url: str, unique_name: str) -> Iterator[OpenSearchStore]:
    store = open_search_store(opensearch_url, unique_name)
    yield store
    drop(store)


def _copies(store: OpenSearchStore) -> dict[str, dict[str, Any]]:
    index = alerts_index(store.prefix)
    store.transport.request("POST", f"/{index}/_refresh")
    hits = store.transport.request("POST", f"/{index}/_search", body={"size": 100})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def test_an_alert_of_the_service_is_readable_by_kibana(store: OpenSearchStore, rules: RuleSet) -> None:
    assert store.write_events(EVENTS).created == 3
    store.refresh()
    (detection,) = rules.detections.values()
    result = DetectionEngine(store, rules).run(detection, Window())
    assert len(result.created) == 2
    index = alerts_index(store.prefix)
    store.transport.request("POST", f"/{index}/_refresh")
    caps = store.transport.request("GET", f"/{index}/_field_caps", params={
        "fields": "@timestamp,first_seen,event.kind,ecs.version,kibana.*"})["fields"]
    types = {name: next(iter(spec)) for name, spec in caps.items()}
    assert types["@timestamp"] == "date" and types["kibana.alert.original_time"] == "date"
    assert types["kibana.alert.risk_score"] == "float" and types["first_seen"] == "date"
    for name in ("kibana.alert.uuid", "kibana.alert.rule.name", "kibana.alert.rule.uuid", "kibana.alert.rule.rule_id",
                 "kibana.alert.severity", "kibana.alert.workflow_status", "kibana.alert.reason",
                 "kibana.alert.ancestors.id", "event.kind", "ecs.version"):
        assert types[name] == "keyword", name
    copies = _copies(store)
    assert set(copies) == {a["id"] for a in result.created}
    for alert_id, copy in copies.items():
        alert = copy["kibana"]["alert"]
        assert alert["uuid"] == alert_id and copy["event"]["kind"] == "signal"
        assert alert["rule"]["name"] == "Root password failures"
        assert alert["rule"]["rule_id"] == alert["rule"]["uuid"] == "4b1c7a9e-0d5e-4c36-9d2a-6f1f0d7c2b11"
        assert (alert["severity"], alert["risk_score"], alert["workflow_status"]) == ("high", 73, "open")
        assert alert["original_time"] == iso(DAY1) and "Root password failures" in alert["reason"]
        assert copy["status"] == "new" and copy["agency"] == "so-a"  # the project's own fields next to them
        (ancestor,) = alert["ancestors"]
        assert ancestor["index"] == f"{store.prefix}-events-*"
        (event,) = store.get_events([ancestor["id"]])  # the pivot to the event
        assert event["message"].startswith("Failed password for root")
    # a time-based query, as a Kibana data view on @timestamp makes it
    resp = store.transport.request("POST", f"/{index}/_search", body={"query": {"range": {"@timestamp": {
        "gte": "2025-03-01T00:00:00Z", "lt": "2025-03-02T00:00:00Z"}}}, "size": 0, "track_total_hits": True})
    assert resp["hits"]["total"]["value"] == 2
    # the document API of the alerts collection is unchanged
    doc = store.get(ALERTS, result.created[0]["id"])
    assert doc is not None and "kibana" not in doc.body and doc.body["@timestamp"] == iso(DAY1)


def test_the_copy_follows_updates_and_never_goes_back(store: OpenSearchStore) -> None:
    body = {"id": "a1", "kind": "event", "@timestamp": iso(DAY1), "first_seen": iso(DAY1), "last_seen": iso(DAY1),
            "detected_at": iso(DAY1), "status": "new", "event_ids": ["e1"], "event_count": 1, "agency": None,
            "rule": {"id": "r1", "title": "T", "level": "informational"}}
    assert store.create(ALERTS, "a1", body)
    first = store.get(ALERTS, "a1")
    assert first is not None
    store.put(ALERTS, "a1", {**body, "status": "acknowledged"}, expected_version=first.version)
    assert _copies(store)["a1"]["kibana"]["alert"]["workflow_status"] == "acknowledged"
    seq_no, term = decode_version(first.version)
    store._copy_alert("a1", body, {"_seq_no": seq_no, "_primary_term": term})  # a late, older copy
    copy = _copies(store)["a1"]["kibana"]["alert"]
    assert (copy["workflow_status"], copy["severity"], copy["risk_score"]) == ("acknowledged", "low", 0)
    assert store.delete(ALERTS, "a1")
    assert _copies(store) == {}


OLD_KEYWORD = {"type": "keyword", "normalizer": "soc_lowercase", "ignore_above": 8191}
OLD_MAPPING = {  # the event mapping before the ECS types: every string a lowercase keyword
    "settings": {"index": {"number_of_replicas": 0, "mapping.ignore_malformed": True,
                           "analysis": {"normalizer": {"soc_lowercase": {"type": "custom", "filter": ["lowercase"]}}}}},
    "mappings": {"dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": OLD_KEYWORD}}],
                 "properties": {"@timestamp": {"type": "date"}, "message": OLD_KEYWORD,
                                "user": {"properties": {"name": OLD_KEYWORD}},
                                "event": {"properties": {"dataset": {"type": "keyword"},
                                                         "ingested": {"type": "date"}}},
                                "soc": {"properties": {"id": {"type": "keyword"}}}}},
}


def test_reindex_moves_old_event_indices_with_nothing_lost(opensearch_url: str, unique_name: str,
                                                            rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    index = f"{unique_name}-events-{DAY1.strftime('%Y.%m.%d')}"
    first = open_search_store(opensearch_url, unique_name)
    try:
        first.transport.request("DELETE", f"/_index_template/{unique_name}-events")  # as before the ECS types
        first.transport.request("PUT", f"/{index}", body=OLD_MAPPING)
        assert first.write_events(EVENTS).created == 3
        first.refresh()
        store = open_search_store(opensearch_url, unique_name)  # installs the current templates
        before = store.get_events(["e1", "e2", "e3"])
        mapping = store.transport.request("GET", f"/{index}/_mapping")[index]["mappings"]
        assert needs_reindex(mapping)
        (detection,) = rules.detections.values()
        assert store.find_matches(detection.where, detection.datasets, Window(), [], 10) == []  # no message.lc yet
        assert store.create(ALERTS, "a1", {"id": "a1", "@timestamp": iso(DAY1), "status": "new",
                                           "rule": {"id": "r", "title": "T", "level": "low"}, "event_ids": ["e1"]})
        store.transport.request("DELETE", f"/{alerts_index(store.prefix)}")  # alerts written before the copy

        monkeypatch.setenv("SOC_STORE_URL", "opensearch://" + opensearch_url.split("://", 1)[1])
        monkeypatch.setenv("SOC_KAFKA__INDEX_PREFIX", unique_name)
        from soc.cli import app

        dry = CliRunner().invoke(app, ["store", "reindex", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert f"{index}: would reindex 3 documents" in dry.output
        moved = {m.index: (m.action, m.documents) for m in reindex(store)}
        assert moved == {index: ("reindexed", 3), alerts_index(unique_name): ("copied", 1)}

        mapping = store.transport.request("GET", f"/{index}/_mapping")[index]["mappings"]
        assert not needs_reindex(mapping) and mapping["properties"]["message"]["type"] == "match_only_text"
        assert store.get_events(["e1", "e2", "e3"]) == before  # every event, every field, the same ids
        found = store.find_matches(detection.where, detection.datasets, Window(), [], 10)
        assert sorted(m.id for m in found) == ["e1", "e2"]
        raw = store.transport.request("POST", f"/{index}/_search", body={"query": {"term": {
            "ecs.version": ecs_schema().version}}, "size": 0, "track_total_hits": True})
        assert raw["hits"]["total"]["value"] == 3
        assert store.transport.request("GET", f"/_cat/indices/{unique_name}-migrating-*",
                                       params={"format": "json"}) == []  # the temporary copy is gone
        again = CliRunner().invoke(app, ["store", "reindex"])
        assert again.exit_code == 0, again.output
        assert f"{index}: current" in again.output
    finally:
        drop(first)
