"""``soc audit list|verify|checkpoint|export`` through the real CLI on SQLite and the real
OpenSearch, with the checkpoint a signed monthly summary carries: removing the newest records
shows against it, and so do an edited snapshot and a changed report file."""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from soc.access import Principal
from soc.audit import AUDIT, AuditTrail, canonical
from soc.audit.record import seq_id
from soc.cli import app
from soc.config import load_settings
from soc.export.reports import Reports
from soc.export.snapshot import SNAPSHOTS
from soc.store import open_configured_store
from soc.store.base import Store
from tests.test_export_fixtures import CONTACT, REPORTER, SIGNATORY

runner = CliRunner()
ALICE = Principal(name="alice", roles=frozenset({"analyst"}), agency="so-yte")
ALICE_CI = Principal(name="alice", roles=frozenset({"analyst"}), kind="token", token="ci")


@pytest.fixture(params=["sqlite", pytest.param("opensearch", marks=pytest.mark.search)])
def configured(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A soc.yml over SQLite or the real OpenSearch, with a signing certificate."""
    config: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "reporting": {"reporter": REPORTER, "contact": CONTACT, "signatory": SIGNATORY,
                      "certificate": str(tmp_path / "pki" / "cert.pem"),
                      "private_key": str(tmp_path / "pki" / "key.pem")},
    }
    search = None
    if request.param == "sqlite":
        config["store_url"] = f"sqlite:///{tmp_path / 'soc.db'}"
    else:
        from tests.search_helpers import open_search_store, store_url

        http, prefix = request.getfixturevalue("opensearch_url"), request.getfixturevalue("unique_name")
        config["store_url"] = store_url(http)
        config["kafka"] = {"index_prefix": prefix, "index_replicas": 0}
        search = open_search_store(http, prefix)
    (tmp_path / "soc.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("SOC_CONFIG", str(tmp_path / "soc.yml"))
    monkeypatch.setattr(getpass, "getuser", lambda: "root")
    monkeypatch.chdir(tmp_path)
    keygen = runner.invoke(app, ["report", "keygen", "--cert", "pki/cert.pem", "--key", "pki/key.pem",
                                 "--name", "SOC Nghệ An (TEST)"])
    assert keygen.exit_code == 0, keygen.output
    yield tmp_path
    if search is not None:
        from tests.search_helpers import drop

        drop(search)


def _store() -> Store:
    return open_configured_store(load_settings())


def _invoke(*args: str) -> Any:
    return runner.invoke(app, ["audit", *args])


def test_list_verify_checkpoint_and_export(configured: Path) -> None:
    store = _store()
    trail = AuditTrail(store)
    trail.record(ALICE, "login", ("users", "alice"), ip="10.0.5.20")
    trail.record(ALICE_CI, "alert.status", ("alerts", "a-1"), {"status": {"old": "new", "new": "closed"}})
    trail.record("scheduler", "rule.run")
    trail.record(None, "login.failed", ("users", "mallory"), {"reason": "invalid"})
    trail.record(ALICE, "export.events", None, {"rows": 120, "format": "csv"})

    listed = _invoke("list")
    assert listed.exit_code == 0 and "5 of 5 audit records" in listed.output, listed.output
    mine = _invoke("list", "--actor", "alice", "--json")
    assert [json.loads(line)["seq"] for line in mine.output.splitlines()] == [5, 2, 1]  # her token too
    only = _invoke("list", "--action", "login", "--action", "login.failed", "--limit", "1")
    assert "1 of 2 audit records" in only.output, only.output

    ok = _invoke("verify")
    assert ok.exit_code == 0 and "OK: 5 records, chain intact" in ok.output, ok.output
    checkpoint = _invoke("checkpoint")
    assert checkpoint.exit_code == 0, checkpoint.output
    line = json.loads(checkpoint.output.strip().splitlines()[-1])
    assert line["seq"] == 5 and line["by"] == "local:root"
    kept = (configured / "data" / "audit-checkpoints.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(k)["hash"] for k in kept] == [line["hash"]]

    out = configured / "exports" / "audit.jsonl"
    exported = _invoke("export", "--out", str(out))
    assert exported.exit_code == 0 and "wrote 5 audit records" in exported.output, exported.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    records, last = lines[:-1], lines[-1]
    prev = "0" * 64
    for body in records:  # what an auditor checks with the documented canonical form
        assert hashlib.sha256(canonical(body)).hexdigest() == body["hash"] and body["prev"] == prev
        prev = body["hash"]
    assert last["verification"]["ok"] is True and last["export"]["records"] == 5
    assert last["export"]["by"] == "local:root"
    done = _invoke("list", "--action", "export.audit", "--json")
    (record,) = [json.loads(x) for x in done.output.splitlines()]
    assert record["seq"] == 6 and record["details"]["records"] == 5 and record["details"]["verified"] is True
    store.close()


def test_signed_summaries_carry_the_checkpoint_verify_checks(configured: Path) -> None:
    store = _store()
    trail = AuditTrail(store)
    for n in range(7):
        trail.record(ALICE, "incident.update", ("incidents", f"INC-{n}"))
    built = runner.invoke(app, ["report", "build", "--summary", "monthly", "--period", "2026-11"])
    assert built.exit_code == 0, built.output
    report_no = "TH-NA-01-monthly-2026-11"
    folder = configured / "data" / "reports" / report_no
    document = json.loads((folder / f"{report_no}.json").read_bytes())
    # the head when the summary was captured: the build itself is audited after that (local:root)
    head = trail.get(7)
    assert document["audit_checkpoint"] == {"seq": 7, "hash": head.hash, "at": head.at}
    assert trail.get(8).actor.label == "local:root"
    assert (folder / f"{report_no}.json.p7s").is_file()
    stix = json.loads((folder / f"{report_no}.stix.json").read_bytes())
    assert head.hash in json.dumps(stix)  # the STIX rendering carries it too

    trail.record(ALICE, "report.sign", ("report_snapshots", report_no))
    checked = _invoke("verify", "--verbose")
    assert checked.exit_code == 0 and "1 checkpoint agree" in checked.output, checked.output
    assert f"signed report {report_no}" in checked.output

    for seq in range(AuditTrail(store).head().seq, 6, -1):  # the newest records removed, from 7 on
        assert store.delete(AUDIT, seq_id(seq))
    removed = _invoke("verify")
    assert removed.exit_code == 1, removed.output
    assert f"record 7 was removed: signed report {report_no} names record 7" in removed.output

    # hiding it by editing the snapshot's checkpoint in the store does not help: the signed file counts
    snap = store.get(SNAPSHOTS, report_no)
    assert snap is not None
    six = store.get(AUDIT, seq_id(6))
    assert six is not None
    store.put(SNAPSHOTS, report_no, {**snap.body, "audit_checkpoint": {"seq": 6, "hash": six.body["hash"],
                                                                       "at": six.body["at"]}})
    edited = _invoke("verify", "--verbose")
    assert edited.exit_code == 1
    assert "record 7 was removed" in edited.output and "the snapshot was edited" in edited.output

    # a changed report file: its signature fails, and that is reported
    path = folder / f"{report_no}.json"
    path.write_bytes(path.read_bytes().replace(b'"seq": 7', b'"seq": 6'))
    changed = _invoke("verify", "--verbose")
    assert changed.exit_code == 1 and "does not verify" in changed.output, changed.output
    store.close()


def test_a_summary_of_an_empty_trail_has_no_checkpoint(tmp_path: Path) -> None:
    """Summaries built before the trail existed (or of an empty one) render as they did."""
    from tests.test_export_fixtures import make_settings

    settings = make_settings(tmp_path, signing=False)
    store = open_configured_store(settings, f"sqlite:///{tmp_path / 'soc.db'}")
    built = Reports(store, settings).build_summary("monthly", "2026-11", built_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    data = json.loads((built.directory / f"{built.report_no}.json").read_bytes())
    assert "audit_checkpoint" not in data
    store.close()


def test_the_running_service_appends_checkpoints_that_verify_then_checks(tmp_path: Path) -> None:
    from soc.app import App
    from soc.audit import checkpoint_file
    from soc.service import Service

    settings = load_settings(data_dir=tmp_path / "data")
    with App(settings) as root:
        service = Service(root)
        service.checkpoint_audit()  # an empty trail: nothing to keep, no file
        assert not checkpoint_file(settings).exists()
        root.audit.record(Principal.local("lan"), "alert.acknowledge", ("alert", "a-1"))
        service.checkpoint_audit()
        lines = checkpoint_file(settings).read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["seq"] == 1 and json.loads(lines[0])["by"] == "system:service"
        service.store.close()
