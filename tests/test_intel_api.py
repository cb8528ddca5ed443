"""``/api/v1/intel``: feeds with status, indicators listed, added, revoked, a hunt run -- writes in
the audit trail under the caller's name; agency-scoped callers see and change nothing; the CLI
over the same store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc.app import App
from soc.audit import AUDIT
from soc.config_intel import FeedSettings, IntelSettings
from tests.api_helpers import A, add_user, bearer, client, settings_for, token_of


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    (tmp_path / "list.txt").write_text("198.51.100.7\nbad.example\n")
    intel = IntelSettings(feeds=[FeedSettings(name="mail-list", kind="list", path=tmp_path / "list.txt")])
    app = App(settings_for(tmp_path, intel=intel))
    add_user(app, "lead", ["analyst"])
    add_user(app, "agent", ["agency"], agency=A)
    yield app
    app.close()


def test_intel_routes(root: App) -> None:
    http = client(root)
    lead = bearer(token_of(root, "lead", ["intel:*"]))
    reader = bearer(token_of(root, "lead", ["alerts:read"]))
    agent = bearer(token_of(root, "agent", ["alerts:read"]))

    assert http.get("/api/v1/intel/feeds", headers=reader).status_code == 403
    feeds = http.get("/api/v1/intel/feeds", headers=lead).json()["items"]
    assert [(f["name"], f["polls"]) for f in feeds] == [("mail-list", 0)]
    polled = http.post("/api/v1/intel/feeds/mail-list/poll", headers=lead).json()
    assert polled["last_taken"] == 2 and polled["last_error"] is None
    assert http.post("/api/v1/intel/feeds/nope/poll", headers=lead).status_code == 404

    added = http.post("/api/v1/intel/indicators", headers=lead,
                      json={"value": "https://phish.example/login", "confidence": 95, "tlp": "red", "note": "kit"})
    assert added.status_code == 201, added.text
    assert added.json()["type"] == "url" and added.json()["live"] is True
    bad = http.post("/api/v1/intel/indicators", headers=lead, json={"value": "999.1.1.1", "type": "ipv4"})
    assert bad.status_code == 400

    listed = http.get("/api/v1/intel/indicators", headers=lead, params={"live": "true"}).json()
    assert {i["value"] for i in listed["items"]} == {"198.51.100.7", "bad.example", "https://phish.example/login"}
    one = http.get("/api/v1/intel/indicators/198.51.100.7", headers=lead).json()
    assert one["sources"] == ["mail-list"]
    revoked = http.post(f"/api/v1/intel/indicators/{one['id']}/revoke", headers=lead, json={"reason": "CDN"}).json()
    assert revoked["revoked"] is True and revoked["live"] is False
    assert http.post("/api/v1/intel/indicators/nope.example/revoke", headers=lead).status_code == 404

    hunted = http.post("/api/v1/intel/hunt", headers=lead, json={}).json()
    assert hunted["indicators"] == 2  # the live new ones (the revoked one is not hunted)
    assert http.post("/api/v1/intel/hunt", headers=lead).json()["indicators"] == 0  # hunted once
    assert http.get("/api/v1/intel/feeds", headers=lead).json()["matching"] is None  # no cycle ran yet

    # an agency-scoped caller sees no indicators and changes none (they are province-wide)
    scoped = bearer(token_of(root, "agent", ["alerts:read"]))
    assert http.get("/api/v1/intel/indicators", headers=agent).status_code == 403
    assert http.get("/api/v1/intel/indicators", headers=scoped).status_code == 403

    actions = {d.body.get("action") for d in root.base_store.iter_all(AUDIT)}
    # the poll and the hunt as the caller's actions; the indicator added and revoked as changes
    assert {"intel.poll", "intel.hunt", "intel_indicators.create", "intel_indicators.update"} <= actions

def test_cli_over_the_same_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from soc.cli.main import app as cli

    (tmp_path / "soc.yml").write_text(f"data_dir: {tmp_path / 'data'}\n"
                                      f"intel:\n  feeds:\n    - name: mail-list\n      kind: list\n"
                                      f"      path: {tmp_path / 'list.txt'}\n")
    (tmp_path / "list.txt").write_text("198.51.100.7\n")
    monkeypatch.setenv("SOC_CONFIG", str(tmp_path / "soc.yml"))
    runner = CliRunner()
    result = runner.invoke(cli, ["intel", "poll", "mail-list"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["intel", "add", "evil.example", "--tlp", "red", "--note", "<b>not markup</b>"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["intel", "indicators", "--json"])
    assert result.exit_code == 0 and '"evil.example"' in result.output and '"198.51.100.7"' in result.output
    result = runner.invoke(cli, ["intel", "revoke", "198.51.100.7", "--reason", "CDN"])
    assert result.exit_code == 0 and "revoked" in result.output
    result = runner.invoke(cli, ["intel", "revoke", "203.0.113.9"])
    assert result.exit_code == 2 and "no indicator" in result.output
    result = runner.invoke(cli, ["intel", "feeds", "--json"])
    assert result.exit_code == 0 and '"mail-list"' in result.output and '"last_taken": 1' in result.output
    result = runner.invoke(cli, ["intel", "hunt", "--json"])
    assert result.exit_code == 0 and '"indicators": 1' in result.output  # evil.example (the other is revoked)
    result = runner.invoke(cli, ["intel", "hunt", "--cycle"])
    assert result.exit_code == 0 and "matched 0 new events" in result.output
