"""``soc incidents`` and ``soc exceptions`` through the real CLI on a SQLite data directory."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from soc.cli import app
from soc.incidents.service import ALERTS
from soc.model import iso
from soc.store.sqlite import SQLiteStore


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(getpass, "getuser", lambda: "an.nguyen")  # the shell user: local:an.nguyen
    monkeypatch.chdir(tmp_path)  # no soc.yml of the checkout
    return {"SOC_DATA_DIR": str(tmp_path / "data"), "SOC_STORE_URL": "", "SOC_TIMEZONE": "Asia/Ho_Chi_Minh", "COLUMNS": "250"}


def soc(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def alert(number: int, detected: datetime) -> dict[str, Any]:
    moment = iso(detected - timedelta(minutes=10))
    return {"id": f"alert-{number}", "kind": "correlation", "agency": "so-tttt",
            "rule": {"id": "0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21", "title": "SSH Brute Force From One Source",
                     "level": "high", "tags": ["attack.credential-access", "attack.t1110.001"], "author": "SOC project"},
            "first_seen": moment, "last_seen": moment, "@timestamp": moment, "detected_at": iso(detected),
            "event_count": 12, "event_ids": [], "group": {"source.ip": "203.0.113.7"}, "group_key": "",
            "entities": {"source.ip": ["203.0.113.7"], "host.name": ["portal-01"]}}


def test_incident_commands(env: dict[str, str]) -> None:
    detected = datetime.now(UTC) - timedelta(days=6)  # the initial report is a day late
    store = SQLiteStore(Path(env["SOC_DATA_DIR"]) / "soc.db")
    for number in (1, 2, 3):
        store.create(ALERTS, f"alert-{number}", alert(number, detected))
    store.close()
    opened = soc(env, "incidents", "open", "alert-1", "alert-2")
    incident_id = opened.split()[1].rstrip(":")
    assert "2 alerts" in opened and "+07" in opened
    listed = soc(env, "incidents", "list")
    assert incident_id in listed and "OVERDUE" in listed and "Asia/Ho_Chi_Minh" in listed
    assert incident_id in soc(env, "incidents", "list", "--overdue")
    soc(env, "incidents", "status", incident_id, "triage", "--note", "checking with the agency")
    soc(env, "incidents", "assign", incident_id, "tran.thi.b")
    soc(env, "incidents", "update", incident_id, "--system", "Cổng dịch vụ công tỉnh:4", "--impact",
        "service_interrupted", "--summary", "Dò mật khẩu SSH vào cổng dịch vụ công")
    shown = soc(env, "incidents", "show", incident_id)
    for text in ("serious (Decision 05/2017): YES", "Cổng dịch vụ công tỉnh", "OVERDUE", "Truy cập trái phép",
                 "tran.thi.b", "an.nguyen", "checking with the agency", "times in Asia/Ho_Chi_Minh"):
        assert text in shown, text
    data = json.loads(soc(env, "incidents", "show", incident_id, "--json"))
    assert data["overdue"] == ["initial"] and data["serious"] is True and data["status"] == "triage"
    split = soc(env, "incidents", "split", incident_id, "alert-2", "--title", "second source")
    new_id = split.split()[2].rstrip(":")
    soc(env, "incidents", "merge", incident_id, new_id)
    soc(env, "incidents", "verdict", incident_id, "true_positive")
    again = soc(env, "incidents", "open", "alert-3")
    assert incident_id in again  # grouped with the open incident of the same source
    bad = CliRunner().invoke(app, ["incidents", "status", incident_id, "new"], env=env)
    assert bad.exit_code == 2 and "it can go to" in bad.output
    assert "soc incidents list" in CliRunner().invoke(app, ["incidents", "--help"], env=env).output


def test_exception_commands(env: dict[str, str]) -> None:
    added = soc(env, "exceptions", "add", "--rule", "0b8e3f4c-2a6d-4e71-8c1f-5d9b7a3e6c21", "--where",
                "source.ip cidr 10.0.5.0/24", "--owner", "Phòng CNTT Sở Y tế", "--reason", "backup job",
                "--expires", "30d")
    exception_id = added.split()[1].rstrip(":")
    assert "source.ip cidr 10.0.5.0/24" in added and "+07" in added
    assert exception_id in soc(env, "exceptions", "list")
    soc(env, "exceptions", "disable", exception_id, "--note", "job fixed")
    assert exception_id not in soc(env, "exceptions", "list")
    assert exception_id in soc(env, "exceptions", "list", "--all")
    shown = soc(env, "exceptions", "show", exception_id)
    assert "disabled" in shown and "an.nguyen  add" in shown and "an.nguyen  disable  job fixed" in shown
    typo = CliRunner().invoke(app, ["exceptions", "add", "--rule", "0b8e3f4c-typo", "--where", "source.ip=1.2.3.4",
                                    "--owner", "soc", "--reason", "r"], env=env)
    assert typo.exit_code == 0 and "no rule has the id '0b8e3f4c-typo'" in typo.output
    refused = CliRunner().invoke(app, ["exceptions", "add", "--all-rules", "--owner", "x", "--reason", "y"], env=env)
    assert refused.exit_code == 2 and "would silence" in refused.output
