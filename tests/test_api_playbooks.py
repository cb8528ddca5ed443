"""The playbook routes of the API (issue #10, item 5) on SQLite: definitions with the files that
failed to load, runs by hand and dry runs, runs listed in keyset pages and read with their steps
and record, approvals decided only by the approvers (403 otherwise, the approval stays pending),
and what a caller without the permission or outside the province scope gets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc.app import App
from soc.config import PlaybookSettings, Settings
from tests.api_fixtures import Api, app_settings, every_page, make_root
from tests.scope_helpers import A

PLAYBOOKS: list[dict[str, Any]] = [
    {"id": "echo", "title": "Echo", "inputs": {"word": {"type": "string", "required": True},
                                                "times": {"type": "integer", "default": 1}},
     "steps": [{"id": "say", "action": "core.echo", "args": {"said": "{{ inputs.word }}", "n": "{{ inputs.times }}"}}]},
    {"id": "ask", "title": "Ask first", "steps": [
        {"id": "ok", "action": "approval.wait", "args": {"prompt": "chặn địa chỉ? / block it?",
                                                         "approvers": ["role:responder", "giang"]}},
        {"id": "after", "action": "core.echo", "args": {"approved": "{{ steps.ok.output.approved }}"}}]},
    {"id": "scheduled-only", "title": "Only on schedule", "trigger": {"manual": False},
     "steps": [{"id": "say", "action": "core.echo", "args": {"x": 1}}]},
]


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for doc in PLAYBOOKS:
        (folder / f"{doc['id']}.yml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    (folder / "broken.yml").write_text("id: broken\ntitle: B\nsteps: []\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", playbooks=PlaybookSettings(folder=folder))
    app = make_root(tmp_path, app_settings(tmp_path, settings))
    yield app
    app.close()


@pytest.fixture
def api(root: App) -> Api:
    return Api(root)


def test_definitions_and_the_files_that_failed(api: Api) -> None:
    page = api.as_user("analyst").ok("get", "/playbooks")
    assert [p["id"] for p in page["items"]] == ["ask", "echo", "scheduled-only"]
    echo = next(p for p in page["items"] if p["id"] == "echo")
    assert echo["inputs"]["word"]["required"] is True and echo["steps"] == [
        {"id": "say", "action": "core.echo", "title": ""}]
    assert page["total"] == 3 and len(page["errors"]) == 1 and "broken" in page["errors"][0]


def test_a_run_by_hand_a_dry_run_and_the_run_with_its_record(api: Api) -> None:
    responder = api.as_user("responder")
    run = responder.ok("post", "/playbooks/echo/run", {"inputs": {"word": "xin chào", "times": "3"}})
    assert run["status"] == "succeeded" and run["created"] is True and run["dry_run"] is False
    assert run["actor"] == f"{responder.name} (token api-test)" and run["inputs"] == {"word": "xin chào", "times": 3}
    assert run["steps"][0]["output"] == {"said": "xin chào", "n": 3}
    shown = responder.ok("get", f"/playbooks/runs/{run['id']}")
    assert shown["steps"][0]["status"] == "succeeded" and shown["approval"] is None
    assert {r["event"] for r in shown["record"] if r["kind"] == "run"} >= {"created", "started"}
    assert any(r["kind"] == "step" and r["step_id"] == "say" for r in shown["record"])
    dry = responder.ok("post", "/playbooks/echo/run", {"inputs": {"word": "x"}, "dry_run": True})
    assert dry["dry_run"] is True and dry["status"] == "succeeded" and dry["id"] != run["id"]
    again = responder.ok("post", "/playbooks/echo/run", {"inputs": {"word": "y"}, "key": "k1"})
    same = responder.ok("post", "/playbooks/echo/run", {"inputs": {"word": "y"}, "key": "k1"})
    assert again["created"] is True and same["created"] is False and same["id"] == again["id"]


def test_bad_runs_are_refused(api: Api) -> None:
    responder = api.as_user("responder")
    assert responder.post("/playbooks/nope/run", {}).status_code == 404
    assert responder.post("/playbooks/echo/run", {}).status_code == 400  # word is required
    assert "input" in responder.post("/playbooks/echo/run", {"inputs": {"word": "a", "bad": 1}}).json()["detail"]
    refused = responder.post("/playbooks/scheduled-only/run", {})
    assert refused.status_code == 400 and "by hand" in refused.json()["detail"]
    assert responder.post("/playbooks/echo/run", {"inputs": {"word": "a"}, "alert_ids": ["none"]}).status_code == 404
    assert responder.post("/playbooks/echo/run", {"inputs": {"word": "a"}, "incident_id": "none"}).status_code == 404
    assert responder.get("/playbooks/runs/not-a-run").status_code == 404


def test_runs_in_pages_with_filters(api: Api) -> None:
    responder = api.as_user("responder")
    made = [responder.ok("post", "/playbooks/echo/run", {"inputs": {"word": str(n)}})["id"] for n in range(5)]
    waiting = responder.ok("post", "/playbooks/ask/run", {})["id"]
    listed = every_page(responder, "/playbooks/runs", limit=2)
    assert [r["id"] for r in listed] == list(reversed([*made, waiting]))  # newest first, none repeated
    page = responder.ok("get", "/playbooks/runs", params={"status": "waiting"})
    assert [r["id"] for r in page["items"]] == [waiting] and page["total"] == 1 and page["total_exact"]
    page = responder.ok("get", "/playbooks/runs", params={"playbook_id": "echo", "limit": 3})
    assert page["total"] == 5 and len(page["items"]) == 3 and page["next"]
    assert responder.get("/playbooks/runs", params={"cursor": "not-a-cursor"}).status_code == 400
    assert responder.ok("get", "/playbooks/runs", params={"since": "1h"})["total"] == 6
    assert responder.ok("get", "/playbooks/runs", params={"until": "2020-01-01"})["total"] == 0


def test_only_an_approver_decides_and_the_run_goes_on(api: Api) -> None:
    responder, admin = api.as_user("responder"), api.as_user("admin")
    run = responder.ok("post", "/playbooks/ask/run", {})
    assert run["status"] == "waiting" and run["approval"]["status"] == "pending"
    assert run["approval"]["approvers"] == ["role:responder", "giang"]
    refused = admin.post(f"/playbooks/runs/{run['id']}/approve", {"comment": "ok"})
    assert refused.status_code == 403 and "not among the approvers" in refused.json()["detail"]
    assert admin.ok("get", f"/playbooks/runs/{run['id']}")["approval"]["status"] == "pending"
    done = responder.ok("post", f"/playbooks/runs/{run['id']}/approve", {"comment": "đồng ý"})
    assert done["status"] == "succeeded" and done["steps"][1]["output"] == {"approved": True}
    again = responder.post(f"/playbooks/runs/{run['id']}/approve", {})
    assert again.status_code == 400 and "does not wait" in again.json()["detail"]
    named = api.as_user("responder", name="giang")
    other = responder.ok("post", "/playbooks/ask/run", {})
    rejected = named.ok("post", f"/playbooks/runs/{other['id']}/reject", {"comment": "không"})
    assert rejected["status"] == "succeeded" and rejected["steps"][0]["output"]["decision"] == "rejected"
    assert rejected["steps"][0]["output"]["by"] == "giang (token api-test)"
    assert responder.post("/playbooks/runs/nope/approve", {}).status_code == 404


def test_permissions_and_scope(api: Api) -> None:
    analyst, agency_user, auditor = api.as_user("analyst"), api.as_user("agency", agency=A), api.as_user("auditor")
    responder = api.as_user("responder")
    run = responder.ok("post", "/playbooks/ask/run", {})
    assert analyst.post("/playbooks/echo/run", {"inputs": {"word": "a"}}).status_code == 403  # playbooks:run
    assert analyst.post(f"/playbooks/runs/{run['id']}/approve", {}).status_code == 403  # playbooks:approve
    assert agency_user.get("/playbooks").status_code == 403  # playbooks:read
    assert auditor.ok("get", "/playbooks/runs")["total"] == 1
    scoped = api.as_user("responder", agency=A)  # runs belong to no agency
    assert scoped.ok("get", "/playbooks/runs")["items"] == []
    assert scoped.get(f"/playbooks/runs/{run['id']}").status_code == 404
    assert scoped.post(f"/playbooks/runs/{run['id']}/approve", {}).status_code == 404
    assert scoped.post("/playbooks/echo/run", {"inputs": {"word": "a"}}).status_code == 403
