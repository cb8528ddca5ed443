"""ECS mappings on the real OpenSearch (issue #14, item 1): every emitted ECS field mapped as the
schema says, ``ecs.version`` on every document, top values with their case, a substring of a
20,000-character command line found, and compiled Sigma rules matching as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from soc.catalog import default_catalog
from soc.model import iso
from soc.store.base import EventQuery, Window
from soc.store.ecs_schema import ecs_schema
from soc.store.search import OpenSearchStore
from soc.store.search_mappings import EXACT_FIELDS, LOWERCASE
from tests.search_helpers import drop, open_search_store
from tests.store_contract import DAY1

pytestmark = pytest.mark.search

LONG_COMMAND = "powershell.exe -enc " + "QUJD" * 5000 + " Invoke-MIMIKATZ -DumpCreds"  # 20,047 characters


def _event(id_: str, **fields: Any) -> dict[str, Any]:
    return {"_id": id_, "@timestamp": iso(DAY1), "event.dataset": "windows.sysmon", **fields}


EVENTS = [
    _event("a1", **{"user.name": "Administrator", "process.command_line": LONG_COMMAND, "message": "process started"}),
    _event("a2", **{"user.name": "Administrator", "process.command_line": "cmd.exe /c whoami", "message": "x"}),
    _event("a3", **{"user.name": "administrator", "message": "Failed password for root"}),
    _event("a4", **{"user.name": "PowerShell", "ecs.version": "8.11.0", "message": "shipped with its own ECS"}),
]


@pytest.fixture
def store(opensearch_url: str, unique_name: str) -> Iterator[OpenSearchStore]:
    store = open_search_store(opensearch_url, unique_name)
    assert store.write_events(EVENTS).created == len(EVENTS)
    store.refresh()
    yield store
    drop(store)


def _flat(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        if "properties" in spec:
            out.update(_flat(spec["properties"], f"{prefix}{name}."))
        else:
            out[prefix + name] = spec
    return out


def test_every_emitted_ecs_field_is_mapped_as_the_schema_says(store: OpenSearchStore) -> None:
    index = f"{store.prefix}-events-{DAY1.strftime('%Y.%m.%d')}"
    mapped = _flat(store.transport.request("GET", f"/{index}/_mapping")[index]["mappings"]["properties"])
    fields = ",".join(default_catalog().field_types)
    caps = store.transport.request("GET", f"/{index}/_field_caps", params={"fields": fields})["fields"]
    schema = ecs_schema()
    compared = []
    for name in default_catalog().field_types:
        spec = schema.spec(name)
        if spec is None or name in EXACT_FIELDS:
            continue
        got = mapped[name]
        assert got["type"] == spec["type"], name
        assert list(caps[name]) == [spec["type"]], name  # what Kibana reads
        assert got.get("ignore_above") == spec.get("ignore_above"), name
        for sub, kind in spec.get("multi_fields", {}).items():
            assert got["fields"][sub]["type"] == kind, name
        if spec["type"] in ("keyword", "wildcard", "match_only_text"):
            assert got["fields"][LOWERCASE]["normalizer"] == "soc_lowercase", name
        compared.append(name)
    assert len(compared) > 100 and {"message", "process.command_line", "url.original", "source.ip"} <= set(compared)


def test_every_document_carries_ecs_version(store: OpenSearchStore) -> None:
    pattern = f"{store.prefix}-events-*"
    resp = store.transport.request("POST", f"/{pattern}/_search", body={
        "size": 10, "query": {"match_all": {}}, "aggs": {"v": {"terms": {"field": "ecs.version"}}}})
    versions = {b["key"]: b["doc_count"] for b in resp["aggregations"]["v"]["buckets"]}
    assert versions == {ecs_schema().version: 3, "8.11.0": 1}  # a shipper's own version is kept
    (mine, shipped) = store.get_events(["a1", "a4"])
    assert "ecs.version" not in mine  # read back as written (as from SQLite)
    assert shipped["ecs.version"] == "8.11.0"


def test_top_values_keep_their_case_for_kibana(store: OpenSearchStore) -> None:
    pattern = f"{store.prefix}-events-*"
    resp = store.transport.request("POST", f"/{pattern}/_search", body={
        "size": 0, "aggs": {"u": {"terms": {"field": "user.name"}}}})
    assert {b["key"]: b["doc_count"] for b in resp["aggregations"]["u"]["buckets"]} == {
        "Administrator": 2, "administrator": 1, "PowerShell": 1}
    # the store's own top values compare without case, as on SQLite (the store contract)
    assert store.top_values(EventQuery(), "user.name", 5) == [("administrator", 3), ("powershell", 1)]


def test_a_substring_of_a_20000_character_command_line_is_found(store: OpenSearchStore) -> None:
    assert len(LONG_COMMAND) > 20_000
    for text in ("invoke-mimikatz -dumpcreds", "Invoke-Mimikatz", "QUJDQUJD"):
        page = store.search_events(EventQuery(text=text))
        assert [e["_id"] for e in page.events] == ["a1"], text
    (event,) = store.get_events(["a1"])
    assert event["process.command_line"] == LONG_COMMAND
    # the wildcard field itself, as Kibana's KQL would query it
    resp = store.transport.request("POST", f"/{store.prefix}-events-*/_search", body={"query": {"wildcard": {
        "process.command_line": {"value": "*Invoke-MIMIKATZ*"}}}})
    assert [h["_id"] for h in resp["hits"]["hits"]] == ["a1"]


def test_filters_and_free_text_stay_case_insensitive(store: OpenSearchStore) -> None:
    page = store.search_events(EventQuery(filters=[("user.name", "equals", "ADMINISTRATOR")]))
    assert sorted(e["_id"] for e in page.events) == ["a1", "a2", "a3"]
    page = store.search_events(EventQuery(filters=[("process.command_line", "prefix", "CMD.exe")]))
    assert [e["_id"] for e in page.events] == ["a2"]
    assert [e["_id"] for e in store.search_events(EventQuery(text="FAILED PASSWORD")).events] == ["a3"]
    has_original = store.search_events(EventQuery(filters=[("event.original", "exists", False)]))
    assert has_original.total == 4


def test_compiled_sigma_rules_match_on_the_lowercase_fields(store: OpenSearchStore) -> None:
    from sigma.collection import SigmaCollection

    from soc.detect.pipelines import build_pipeline
    from soc.detect.search_backend import SocSearchBackend

    rule = SigmaCollection.from_yaml("""
title: t
logsource: {product: windows}
detection:
  admin: {user.name: ADMINISTRATOR, process.command_line|contains: ' /C WHOAMI'}
  failed: ['failed PASSWORD']
  condition: admin or failed
""")
    (query,) = SocSearchBackend(build_pipeline(())).convert(rule)
    found = store.find_matches(query, None, Window(), [], 10)
    assert sorted(m.id for m in found) == ["a2", "a3"]
