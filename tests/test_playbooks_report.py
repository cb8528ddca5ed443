"""The initial-report playbook for serious incidents, through the real export module: a
critical incident opens -> the playbook waits for a leader's approval -> approved, the Mẫu 03
report is built, signed, queued in the outbox and delivered to a drop folder; the incident
records the report and a note. Also: a summary period that cannot be parsed fails the step
without retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.access import Principal
from soc.config import PlaybookSettings
from soc.playbooks import RUNS, PlaybookRunner, load_playbooks
from soc.store.base import Store
from tests.test_playbooks import ROOT, _open_sqlite, output, run_doc, step

pytest.importorskip("soc.export.reports")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = _open_sqlite(tmp_path / "soc.db")
    yield s
    s.close()


def test_serious_incident_initial_report_after_approval(tmp_path: Path, store: Store) -> None:
    from soc.export import outbox
    from tests.test_export_fixtures import incident as make_incident
    from tests.test_export_fixtures import make_settings, seed

    drop = tmp_path / "drop"
    settings = make_settings(tmp_path, recipients=[{"name": "ncsc", "channel": "drop", "endpoint": str(drop)}])
    inc = seed(store, make_incident(severity="critical"))
    playbooks, errors = load_playbooks(ROOT / "playbooks")
    assert not errors
    runner = PlaybookRunner(store, playbooks, settings=settings, config=PlaybookSettings(folder=ROOT / "playbooks"))

    started = runner.on_incident_event(inc.model_dump(mode="json"), "opened")
    assert len(started) == 1
    assert runner.on_incident_event(inc.model_dump(mode="json"), "updated", detail="x") == []  # once per incident
    run_id = started[0]
    assert run_doc(store, run_id)["status"] == "waiting"
    assert list(store.iter_all("report_snapshots")) == []  # nothing built before the approval

    runner.approve(run_id, by=Principal("pho-giam-doc", roles=frozenset({"responder"})), comment="đồng ý gửi")
    body = run_doc(store, run_id)
    assert body["status"] == "succeeded", body["error"] or body["steps"]
    report = output(body, "report")
    assert report["entries"] and report["files"] and report["signatures"]
    assert all(Path(f).is_file() for f in report["files"] + report["signatures"])
    delivered = outbox.deliver_due(store, settings)
    assert delivered and all(d.get("status") == "delivered" for d in delivered), delivered
    assert any(drop.rglob("*.json"))
    stored = store.get("incidents", inc.id).body  # type: ignore[union-attr]
    assert [r["kind"] for r in stored["reports"]] == ["initial"]
    assert any("phê duyệt bởi pho-giam-doc" in n["text"] for n in stored["notes"])


def test_report_errors_are_not_retried(tmp_path: Path, store: Store) -> None:
    from tests.test_export_fixtures import make_settings

    playbooks, _ = load_playbooks(ROOT / "playbooks")
    runner = PlaybookRunner(store, playbooks, settings=make_settings(tmp_path, signing=False),
                            config=PlaybookSettings(folder=ROOT / "playbooks"))
    run_id, _ = runner.start("monthly-summary", {"type": "manual"}, "bad-period", inputs={"period": "November"})
    body = run_doc(store, run_id)
    assert body["status"] == "failed"
    assert step(body, "report")["attempts"] == 1 and "monthly period" in step(body, "report")["error"]
    run_id, _ = runner.start("monthly-summary", {"type": "manual"}, "no-recipient", inputs={"period": "2026-11"})
    body = run_doc(store, run_id)
    assert body["status"] == "failed" and "built but not sent" in step(body, "report")["error"]
    assert json.loads(store.get(RUNS, run_id).body["trigger_json"]) == {"type": "manual"}  # type: ignore[union-attr]
