"""Criticality in the queue: the security level (Decree 85/2016) of the system an alert is about,
from the asset inventory, recorded on each alert the detection engine raises, with the alert's
risk (severity rank × level); the queue filters on the level and sorts by risk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soc.alerts import priority
from soc.alerts.priority import AlertPriority, AssetInventory, risk_of
from soc.app import App
from soc.config import PlaybookSettings, Settings
from soc.detect.compiler import compile_rules
from soc.detect.engine import ALERTS, DetectionEngine
from soc.detect.rules import load_rules
from soc.hunt import ingest_files
from soc.store.base import Window
from soc.store.sqlite import SQLiteStore
from tests.api_seed_helpers import A, Api, alert_body, api_fixture
from tests.conftest import ROOT, shared
from tests.console_alert_helpers import console, row_ids, total

INVENTORY = """
systems:
  - {name: Cổng dịch vụ công, agency: xa-a, level: 3, hosts: [dvc-web01, dichvucong.tinh.gov.vn], ips: [10.4.10.0/28]}
  - {name: Quản lý văn bản, agency: xa-a, level: 4, hosts: [qlvb-app01], ips: [10.1.20.0/24, 203.0.113.9]}
  - {name: Máy chủ thử, level: 2, hosts: [LabSZ]}
  - {name: no level here, hosts: [ghost]}
  - {name: bad address, level: 5, ips: [not-an-address]}
"""


def test_the_inventory_names_the_most_critical_system_an_alert_is_about(tmp_path: Path) -> None:
    path = tmp_path / "assets.yml"
    path.write_text(INVENTORY, encoding="utf-8")
    inventory = AssetInventory.load(path)
    assert [s.name for s in inventory.systems] == ["Cổng dịch vụ công", "Quản lý văn bản", "Máy chủ thử", "bad address"]
    assert inventory.host("DVC-WEB01").level == 3  # type: ignore[union-attr]
    assert inventory.host("dvc-web01.tinh.gov.vn").level == 3  # type: ignore[union-attr]
    assert inventory.host("ghost") is None and inventory.host("") is None
    assert inventory.address("10.1.20.7").level == 4 and inventory.address("10.4.10.99") is None  # type: ignore[union-attr]
    # hosts and target addresses count, in the entities and in a correlation's group; the attacker's address does not
    both = {"entities": {"host.name": ["dvc-web01"], "destination.ip": ["203.0.113.9"], "source.ip": ["10.1.20.5"]}}
    assert inventory.system_of(both).name == "Quản lý văn bản"  # type: ignore[union-attr]
    assert inventory.system_of({"entities": {"source.ip": ["10.1.20.5"]}}) is None
    assert inventory.system_of({"group": {"host.name": "labsz"}}).level == 2  # type: ignore[union-attr]
    assert AssetInventory.load(tmp_path / "missing.yml").systems == []


def test_alerts_are_given_their_level_and_risk_and_the_file_is_reread(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(priority, "RECHECK_SECONDS", 0.0)
    path = tmp_path / "assets.yml"
    enrich = AlertPriority(path)
    alert: dict[str, Any] = {"rule": {"level": "high"}, "entities": {"host.name": ["qlvb-app01"]}}
    enrich(alert)
    assert "asset" not in alert and alert["risk"] == 4 == risk_of("high", None)  # no inventory: level 1
    path.write_text(INVENTORY, encoding="utf-8")
    enrich(alert)
    assert alert["asset"] == {"level": 4, "system": "Quản lý văn bản"} and alert["risk"] == 16
    path.write_text(INVENTORY.replace("level: 4", "level: 5"), encoding="utf-8")
    os.utime(path, (path.stat().st_mtime + 5, path.stat().st_mtime + 5))
    enrich(alert)
    assert alert["asset"]["level"] == 5 and alert["risk"] == 20
    critical = {"rule": {"level": "critical"}, "entities": {"host.name": ["nowhere"]}}
    enrich(critical)
    assert critical["risk"] == 5 and "asset" not in critical


def test_the_detection_engine_records_them_on_real_alerts(tmp_path: Path) -> None:
    path = tmp_path / "assets.yml"
    path.write_text(INVENTORY, encoding="utf-8")
    store = SQLiteStore(tmp_path / "soc.db")
    ingest_files(store, [shared("loghub", "OpenSSH", "OpenSSH_2k.log")], fmt="auto", timezone="UTC", agency=A,
                 progress=False)
    rules = compile_rules(load_rules([ROOT / "detections" / "linux" / "ssh" / "ssh_brute_force.yml"]))
    engine = DetectionEngine(store, rules, enrich=AlertPriority(path))
    for detection in rules.runnable():
        engine.run(detection, Window(None, None, "@timestamp"))
    alerts = [d.body for d in store.find(ALERTS, limit=100_000)]
    assert alerts
    for alert in alerts:  # every event of this log is host LabSZ: level 2
        assert alert["asset"] == {"level": 2, "system": "Máy chủ thử"}
        assert alert["risk"] == risk_of(alert["rule"]["level"], 2)
    store.close()
    # the service's engine reads the inventory of the playbook data folder
    app = App(Settings(data_dir=tmp_path, playbooks=PlaybookSettings(data_dir=tmp_path)), store_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert app.alert_priority.path == path and app.acting_as(app.principal or _nobody()).alert_priority is app.alert_priority
    app.close()


def _nobody() -> Any:
    from soc.access import Principal

    return Principal("nobody")


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    for made in api_fixture(request, tmp_path_factory.mktemp("console-priority"), seeded=False):
        levels = {0: ("low", None), 1: ("high", 2), 2: ("critical", 1), 3: ("medium", 4), 4: ("high", 5), 5: ("low", 3)}
        for i, (level, criticality) in levels.items():
            body = alert_body(A, i)
            body["rule"] = {**body["rule"], "level": level}
            if criticality:
                body["asset"] = {"level": criticality, "system": f"hệ thống cấp {criticality}"}
            body["risk"] = risk_of(level, criticality)
            made.store.create("alerts", body["id"], body)
        made.store.refresh()
        yield made


def test_the_queue_filters_on_the_level_and_sorts_by_risk(api: Api) -> None:
    soc = console(api, "soc")
    by_risk = soc.get("/alerts?sort=-risk")
    # risks: 0 low/-: 2, 1 high/2: 8, 2 critical/1: 5, 3 medium/4: 12, 4 high/5: 20, 5 low/3: 6
    assert row_ids(by_risk.text) == [f"al-{A}-{i:03d}" for i in (4, 3, 1, 5, 2, 0)]
    assert "hệ thống cấp 5" in by_risk.text and "CĐ5" in by_risk.text
    at_least_4 = soc.get("/alerts?criticality=4&sort=-risk")
    assert row_ids(at_least_4.text) == [f"al-{A}-{i:03d}" for i in (4, 3)] and total(at_least_4.text) == 2
    assert '<option value="4" selected' in at_least_4.text
    grouped = soc.get("/alerts?criticality=3&group=rule.level")
    assert "Nhóm" in grouped.text and total(grouped.text) == 3
    # the API takes the same filter (any of the levels given)
    listed = api["soc"].get("/api/v1/alerts", params={"criticality": [2, 3]}).json()
    assert sorted(a["id"] for a in listed["items"]) == [f"al-{A}-{i:03d}" for i in (1, 5)]
    assert api["soc"].get("/api/v1/alerts", params={"criticality": 7}).status_code == 400
