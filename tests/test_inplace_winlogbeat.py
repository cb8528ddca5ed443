"""Logs already in the cluster, queried in place (issue #14, item 3), on the real OpenSearch.

The documents are real Windows events (OTRF Security-Datasets, ``../shared/data/otrf``: Empire
running ``net localgroup Administrators``, collected as NXLog JSON) reshaped exactly as Winlogbeat
8 writes them -- ``winlog.channel``, ``winlog.event_id`` as a keyword string, ``event.code``,
``winlog.event_data.*`` strings, ``host.name``, ``message`` -- into a ``winlogbeat-test-*`` index
mapped like Winlogbeat's template (keywords, case kept, no normalizer). A SigmaHQ rule
(``../shared/data/sigma``), compiled for the ``dsl-inplace`` dialect, fires on them through the
detection engine, and the alert lands in the service's own alerts.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from soc.config import Settings
from soc.detect.compiler import compile_rules
from soc.detect.engine import ALERTS, DetectionEngine
from soc.detect.rules import load_rules
from soc.store.base import EventQuery, Window
from soc.store.search import OpenSearchStore
from soc.store.search_sources import InPlaceEvents, SearchSource
from tests.conftest import shared
from tests.search_helpers import drop, open_search_store

pytestmark = pytest.mark.search

DATASET = ("otrf", "datasets", "atomic", "windows", "discovery", "host",
           "empire_shell_net_localgroup_administrators.zip")
RULE = ("sigma", "rules", "windows", "process_creation", "proc_creation_win_net_groups_and_accounts_recon.yml")
#: NXLog's own keys: the record's metadata, which Winlogbeat puts outside event_data
_NXLOG = {"EventTime", "Hostname", "Keywords", "EventType", "SeverityValue", "Severity", "EventID", "SourceName",
          "ProviderGuid", "Version", "Task", "OpcodeValue", "RecordNumber", "ExecutionProcessID", "ProcessID",
          "ThreadID", "Channel", "Domain", "AccountName", "UserID", "AccountType", "Category", "Opcode",
          "EventReceivedTime", "SourceModuleName", "SourceModuleType", "Message", "tags", "port", "@version",
          "@timestamp", "host"}
#: the part of Winlogbeat 8's index template these documents touch
WINLOGBEAT_MAPPINGS = {
    "dynamic_templates": [
        {"winlog.event_data": {"path_match": "winlog.event_data.*", "match_mapping_type": "string",
                               "mapping": {"type": "keyword", "ignore_above": 1024}}},
        {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}},
    ],
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "match_only_text"},
        "event": {"properties": {"code": {"type": "keyword"}, "provider": {"type": "keyword"},
                                 "kind": {"type": "keyword"}}},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "winlog": {"properties": {
            "channel": {"type": "keyword"}, "event_id": {"type": "keyword"}, "provider_name": {"type": "keyword"},
            "computer_name": {"type": "keyword"}, "record_id": {"type": "keyword"}, "api": {"type": "keyword"},
            "event_data": {"type": "object"}}},
    },
}


def winlogbeat(record: dict[str, Any]) -> dict[str, Any]:
    """One NXLog record as Winlogbeat 8 ships it."""
    data = {k: str(v) for k, v in record.items() if k not in _NXLOG and v is not None}
    return {
        "@timestamp": record["@timestamp"],
        "agent": {"type": "winlogbeat", "version": "8.17.0"},
        "ecs": {"version": "8.0.0"},
        "event": {"code": str(record["EventID"]), "provider": record["SourceName"], "kind": "event"},
        "host": {"name": record["Hostname"]},
        "message": record.get("Message", ""),
        "winlog": {"api": "wineventlog", "channel": record["Channel"], "event_id": str(record["EventID"]),
                   "provider_name": record["SourceName"], "computer_name": record["Hostname"],
                   "record_id": str(record["RecordNumber"]), "event_data": data},
    }


@pytest.fixture
def winlogbeat_index(opensearch_url: str, unique_name: str) -> Iterator[tuple[OpenSearchStore, str, int]]:
    store = open_search_store(opensearch_url, unique_name)
    index = f"winlogbeat-test-{unique_name}-2020.09.04"
    archive = zipfile.ZipFile(shared(*DATASET))
    records = [json.loads(line) for line in archive.read(archive.namelist()[0]).decode().splitlines()]
    try:
        store.transport.request("PUT", f"/{index}", body={"settings": {"number_of_replicas": 0},
                                                          "mappings": WINLOGBEAT_MAPPINGS})
        lines = b"".join(b'{"index":{}}\n' + orjson.dumps(winlogbeat(r)) + b"\n" for r in records)
        resp = store.transport.request("POST", f"/{index}/_bulk", params={"refresh": "true"}, body=lines, ndjson=True)
        assert not resp["errors"]
        yield store, f"winlogbeat-test-{unique_name}-*", len(records)
    finally:
        store.transport.request("DELETE", f"/{index}", params={"ignore_unavailable": True})
        drop(store)


def test_a_sigma_rule_fires_on_winlogbeat_documents_in_place(winlogbeat_index: tuple[OpenSearchStore, str, int],
                                                             tmp_path: Path) -> None:
    store, pattern, total = winlogbeat_index
    shutil.copy(shared(*RULE), tmp_path / "rule.yml")  # a real SigmaHQ rule (DRL 1.1: Florian Roth et al.)
    rules = compile_rules(load_rules([tmp_path]), dialect="dsl-inplace")
    (detection,) = rules.detections.values()
    assert detection.runnable, detection.report.as_dict()
    source = SearchSource.from_settings(Settings(search_sources=[{"name": "wlb", "index": pattern,
                                                                  "agency": "so-a"}]).search_sources[0])
    view = InPlaceEvents(store, source)
    window = Window(None, None, "@timestamp")
    matches = view.find_matches(detection.where, detection.datasets, window,
                                ["winlog.event_data.CommandLine", "winlog.event_data.Image"], 100)
    # Sysmon EID 1 of net.exe and net1.exe: "... localgroup Administrators" (the rule spells it
    # ' administrator', lower case: matched without case, as Sigma means)
    assert sorted(m.fields["winlog.event_data.Image"] for m in matches) == [
        "C:\\Windows\\System32\\net.exe", "C:\\Windows\\System32\\net1.exe"]
    assert all("localgroup Administrators" in m.fields["winlog.event_data.CommandLine"] for m in matches)
    assert {m.agency for m in matches} == {"so-a"}
    assert view.count_matches(detection.where, detection.datasets, window) == 2
    assert view.count_matches({"match_all": {}}, None, window) == total

    result = DetectionEngine(view, rules).run(detection, window)
    assert (result.matches, len(result.created), result.error) == (2, 2, None)
    store.refresh()
    alerts = store.find(ALERTS)
    assert sorted(a.body["event_ids"][0] for a in alerts) == sorted(m.id for m in matches)
    again = DetectionEngine(view, rules).run(detection, window)  # ids stable: the same alerts, not new ones
    assert (len(again.created), again.existing) == (0, 2)
    (event,) = view.get_events([matches[0].id])
    assert event["winlog.event_id"] == "1" and event["_id"] == matches[0].id


def test_event_search_in_place(winlogbeat_index: tuple[OpenSearchStore, str, int]) -> None:
    store, pattern, _ = winlogbeat_index
    view = InPlaceEvents(store, SearchSource("wlb", pattern))
    page = view.search_events(EventQuery(filters=[("winlog.event_id", "equals", "1"),
                                                  ("winlog.channel", "equals", "Microsoft-Windows-Sysmon/Operational")],
                                         size=50))
    images = {e.get("winlog.event_data.Image") for e in page.events}
    assert "C:\\Windows\\System32\\net.exe" in images and page.total == len(page.events)
    assert all(e["event.code"] == "1" for e in page.events)
    text = view.search_events(EventQuery(text="localgroup Administrators", size=50))
    assert text.total >= 2 and all("localgroup" in e["message"].lower() for e in text.events)


def test_the_service_schedules_rules_on_search_sources(winlogbeat_index: tuple[OpenSearchStore, str, int],
                                                       tmp_path: Path) -> None:
    """``search_sources`` in the settings: the application builds one runner per source with the
    rules of its datasets, whose watermarks live apart from the store's own rule state."""
    from soc.app import App
    from soc.detect.scheduler import RULE_STATE, Timing

    store, pattern, _ = winlogbeat_index
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    shutil.copy(shared(*RULE), rules_dir / "rule.yml")
    settings = Settings(search_sources=[{"name": "wlb", "index": pattern}], rule_dirs=[rules_dir],
                        data_dir=tmp_path / "data")
    app = App(settings, store_url="opensearch://" + store.transport.endpoint.hosts[0].split("://", 1)[1],
              store_options={"prefix": store.prefix, "replicas": 0}, rule_dirs=[rules_dir])
    try:
        timing = Timing(settle=0, overlap=0, initial_lookback=10 * 365 * 86400.0)  # the data is from 2020
        ((runner, detections),) = app.search_source_runners(timing=timing, owner="t")
        assert [d.info.id for d in detections] == ["d95de845-b83c-4a9a-8a6a-4fc802ebf6c0"]
        (result,) = runner.run_all_once(detections)
        assert (result.matches, len(result.created)) == (2, 2)
        again = runner.run_all_once(detections)  # the next window starts at the watermark: no new alerts
        assert sum(len(r.created) for r in again) == 0
        store.refresh()
        state = store.get(f"{RULE_STATE}.wlb", detections[0].info.id)
        assert state is not None and state.body["watermark"] > 0
        assert store.get(RULE_STATE, detections[0].info.id) is None  # the store's own watermark is not touched
    finally:
        app.close()


def test_soc_events_search_in_place(winlogbeat_index: tuple[OpenSearchStore, str, int],
                                    monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from soc.cli import app

    store, pattern, _ = winlogbeat_index
    monkeypatch.setenv("SOC_STORE_URL", "opensearch://" + store.transport.endpoint.hosts[0].split("://", 1)[1])
    monkeypatch.setenv("SOC_KAFKA__INDEX_PREFIX", store.prefix)
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOC_SEARCH_SOURCES", json.dumps([{"name": "wlb", "index": pattern}]))
    result = CliRunner().invoke(app, ["events", "search", "winlog.event_id=1", "--source", "wlb",
                                      "--format", "jsonl", "--limit", "100"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert events and all(e["winlog.event_id"] == "1" and e["_id"].startswith("wlb:") for e in events)
    assert any(e.get("winlog.event_data.Image", "").endswith("net1.exe") for e in events)
    unknown = CliRunner().invoke(app, ["events", "search", "--source", "nope"])
    assert unknown.exit_code != 0 and "no search source 'nope'" in unknown.output
