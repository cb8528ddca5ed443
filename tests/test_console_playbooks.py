"""The playbook pages of the console (issue #11, item 5): definitions and the files that failed
to load, a run by hand and a dry run, a run with its steps and record shown as text, approvals
decided only by an approver (the 403 page otherwise, and the approval stays pending), the runs
a scoped user does not see, and the steps of a run that acted on an incident in its timeline
(the console's and the API's)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc.app import App
from soc.config import PlaybookSettings, Settings
from soc.playbooks import APPROVALS, RUNS
from tests.api_fixtures import app_settings, make_root
from tests.console_helpers import console_user
from tests.scope_helpers import STORE_KINDS, A, B, close_kind, open_kind
from tests.test_export_fixtures import alert, incident, seed

PLAYBOOKS: list[dict[str, Any]] = [
    {"id": "echo", "title": "Nhắc lại / echo", "inputs": {"word": {"type": "string", "required": True}},
     "steps": [{"id": "say", "action": "core.echo", "args": {"said": "{{ inputs.word }}"}}]},
    {"id": "ask", "title": "Hỏi trước / ask first", "steps": [
        {"id": "ok", "action": "approval.wait", "args": {"prompt": "Chặn địa chỉ <script>x</script>?",
                                                         "approvers": ["role:responder", "giang"]}},
        {"id": "after", "action": "core.echo", "args": {"approved": "{{ steps.ok.output.approved }}"}}]},
    {"id": "note-it", "title": "Ghi chú sự cố / note the incident", "steps": [
        {"id": "note", "action": "incident.note",
         "args": {"incident_id": "{{ trigger.incident.id }}", "text": "Kịch bản đã kiểm tra / checked"}}]},
]


def make_app(tmp_path: Path, store: Any = None) -> App:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    for doc in PLAYBOOKS:
        (folder / f"{doc['id']}.yml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    (folder / "broken.yml").write_text("id: broken\ntitle: B\nsteps: []\n", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", playbooks=PlaybookSettings(folder=folder))
    app = make_root(tmp_path, app_settings(tmp_path, settings), store=store)
    seed(app.base_store, incident("INC-P", agency=A, agencies=[A], alert_ids=["AL-P"]),
         [alert("AL-P", first="2026-11-30T01:00:00.000Z", agency=A, incident="INC-P")])
    return app


@pytest.fixture
def root(tmp_path: Path) -> Iterator[App]:
    app = make_app(tmp_path)
    yield app
    app.close()


@pytest.fixture(params=STORE_KINDS)
def any_root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    """The application over SQLite, and over the real OpenSearch."""
    store = open_kind(request.param, request, tmp_path)
    app = make_app(tmp_path, store)
    try:
        yield app
    finally:
        close_kind(store)


def run_id(answer: Any) -> str:
    assert answer.status_code == 303, answer.text
    return re.match(r"/playbooks/runs/([0-9a-f]+)\?done=", answer.headers["location"]).group(1)


def test_definitions_runs_by_hand_and_dry_runs(root: App) -> None:
    responder = console_user(root, "responder", name="phong")
    page = responder.get("/playbooks")
    assert page.status_code == 200
    assert "Nhắc lại / echo" in page.text and "broken" in page.text  # the file that failed to load
    definition = responder.get("/playbooks/echo")
    assert 'name="input.word"' in definition.text
    refused = responder.post("/playbooks/echo/run", {"input.word": ""})
    assert refused.status_code == 400 and "required" in html.unescape(refused.text)
    done = run_id(responder.post("/playbooks/echo/run", {"input.word": "xin chào"}))
    run = root.base_store.get(RUNS, done).body  # type: ignore[union-attr]
    assert run["status"] == "succeeded" and run["actor"] == "phong" and run["dry_run"] is False
    shown = responder.get(f"/playbooks/runs/{done}")
    assert "Thành công" in shown.text and '"said": "xin chào"' in html.unescape(shown.text)  # text, not \\u escapes
    dry = run_id(responder.post("/playbooks/echo/run", {"input.word": "thử", "dry_run": "on"}))
    assert root.base_store.get(RUNS, dry).body["dry_run"] is True  # type: ignore[union-attr]
    listed = responder.get("/playbooks?playbook=echo").text
    assert listed.count('href="/playbooks/runs/') == 2
    analyst = console_user(root, "analyst")
    assert analyst.post("/playbooks/echo/run", {"input.word": "x"}).status_code == 403  # playbooks:run


def test_only_an_approver_decides_and_the_run_goes_on(root: App) -> None:
    responder = console_user(root, "responder")
    waiting = run_id(responder.post("/playbooks/ask/run", {}))
    key = f"{waiting}:ok"
    assert root.base_store.get(APPROVALS, key).body["status"] == "pending"  # type: ignore[union-attr]
    listed = responder.get("/playbooks")
    assert f"/playbooks/runs/{waiting}#decide" in listed.text
    assert "Chặn địa chỉ &lt;script&gt;x&lt;/script&gt;?" in listed.text  # the prompt is text
    outsider = console_user(root, "admin", name="binh")  # may approve, but is not among the approvers
    refused = outsider.post(f"/playbooks/runs/{waiting}/approve", {"comment": "ok"})
    assert refused.status_code == 403 and "not among the approvers" in refused.text
    analyst = console_user(root, "analyst")  # no playbooks:approve at all
    assert analyst.post(f"/playbooks/runs/{waiting}/approve", {}).status_code == 403
    assert root.base_store.get(APPROVALS, key).body["status"] == "pending"  # type: ignore[union-attr]
    approver = console_user(root, ["admin"], name="giang")
    decided = approver.post(f"/playbooks/runs/{waiting}/reject", {"comment": "không chặn"})
    assert decided.status_code == 303 and decided.headers["location"].endswith("done=rejected")
    approval = root.base_store.get(APPROVALS, key).body  # type: ignore[union-attr]
    assert (approval["status"], approval["decided_by"], approval["comment"]) == ("rejected", "giang", "không chặn")
    run = root.base_store.get(RUNS, waiting).body  # type: ignore[union-attr]
    assert run["status"] == "succeeded"
    page = approver.get(f"/playbooks/runs/{waiting}")
    assert "Quyết định bởi giang" in page.text and 'formaction="/playbooks/runs/' not in page.text
    again = approver.post(f"/playbooks/runs/{waiting}/approve", {})
    assert again.status_code == 400 and "does not wait" in again.text


def test_a_scoped_user_sees_no_run(root: App) -> None:
    responder = console_user(root, "responder")
    waiting = run_id(responder.post("/playbooks/ask/run", {}))
    scoped = console_user(root, "responder", agency=A)
    assert f"/playbooks/runs/{waiting}" not in scoped.get("/playbooks").text
    assert scoped.get(f"/playbooks/runs/{waiting}").status_code == 404
    assert scoped.post(f"/playbooks/runs/{waiting}/approve", {}).status_code == 404
    assert scoped.post("/playbooks/echo/run", {"input.word": "a"}).status_code == 403


def test_the_steps_of_a_run_on_an_incident_are_in_its_timeline(any_root: App) -> None:
    root = any_root
    responder = console_user(root, "responder")
    made = run_id(responder.post("/playbooks/note-it/run", {"incident_id": "INC-P"}))
    incident_found = root.incidents.get("INC-P")
    assert incident_found is not None and incident_found.notes[-1].author == f"playbook:note-it/{made[:8]}"
    page = responder.get("/incidents/INC-P")
    entry = re.search(r'<li class="tl tl-playbook">(.*?)</li>', page.text, re.S)
    assert entry and f"/playbooks/runs/{made}" in entry.group(1) and "note · Thành công" in entry.group(1)
    api = responder.client.get("/api/v1/incidents/INC-P/timeline").json()["items"]
    runs = [e for e in api if e["kind"] == "playbook"]
    assert len(runs) == 1 and runs[0]["run_id"] == made and runs[0]["steps"][0]["status"] == "succeeded"
    scoped = console_user(root, "responder", agency=A)  # runs belong to no agency
    mine = scoped.get("/incidents/INC-P")
    assert mine.status_code == 200 and "tl-playbook" not in mine.text and "Kịch bản đã kiểm tra" in mine.text
    assert "INC-P" in scoped.get("/incidents").text
    other = console_user(root, "responder", agency=B)
    assert other.get("/incidents/INC-P").status_code == 404 and "INC-P" not in other.get("/incidents").text
