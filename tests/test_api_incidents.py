"""``/api/v1/incidents``: list with filters, keyset pages and totals, open from alerts, read,
edit, lifecycle, assignee, notes, verdict, merge, split and the timeline -- on SQLite; and on
both stores, a user of agency A never sees or changes an incident of agency B."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from soc.incidents.model import ReportRecord
from tests.api_seed_helpers import A_CHILD, A, Api, B, api_fixture
from tests.scope_helpers import STORE_KINDS

URL = "/api/v1/incidents"


@pytest.fixture(params=["sqlite"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A fresh seeded store per test (the tests here change incidents)."""
    yield from api_fixture(request, tmp_path_factory.mktemp("api-incidents"))


@pytest.fixture(scope="module", params=STORE_KINDS)
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from api_fixture(request, tmp_path_factory.mktemp("api-incidents-scope"))


def listed(api: Api, user: str, **params: Any) -> list[str]:
    answer = api[user].get(URL, params=params)
    assert answer.status_code == 200, answer.text
    return [i["id"] for i in answer.json()["items"]]


# -- list, open, read ------------------------------------------------------------------------
def test_list_filters_pages_and_totals(api: Api) -> None:
    mine, theirs = api.seeded["incident_a"], api.seeded["incident_b"]
    child = api["soc"].post(URL, json={"alert_ids": [api.seeded["alerts"][A_CHILD][0]]}).json()["id"]
    everything = api["soc"].get(URL).json()
    assert everything["total"] == 3 and everything["total_exact"] and everything["next"] is None
    assert [i["id"] for i in everything["items"]] == [child, theirs, mine]  # most recently updated first
    item = everything["items"][0]
    assert "history" not in item and item["history_count"] == 1 and item["notes_count"] == 0
    first = api["soc"].get(URL, params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["total"] == 3 and first["next"]
    rest = api["soc"].get(URL, params={"limit": 2, "cursor": first["next"]}).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == [child, theirs, mine] and rest["next"] is None
    assert listed(api, "soc", sort="created_at") == [mine, theirs, child]
    assert listed(api, "soc", agency=A) == [mine]
    assert listed(api, "soc", agency=[A_CHILD, B]) == [child, theirs]
    assert listed(api, "soc", status="triage") == []
    assert listed(api, "soc", severity="high") == [child, theirs, mine]
    assert listed(api, "soc", since="2h") == [child, theirs, mine]
    assert api["soc"].get(URL, params={"status": "open"}).status_code == 422
    assert api["soc"].get(URL, params={"sort": "title"}).status_code == 400


def test_open_from_alerts_and_read(api: Api) -> None:
    alerts = api.seeded["alerts"]
    opened = api["ana"].post(URL, json={"alert_ids": [alerts[A_CHILD][0], alerts[A_CHILD][1]],
                                        "title": "Brute force on the child", "severity": "critical"})
    assert opened.status_code == 201, opened.text
    incident = opened.json()
    assert incident["title"] == "Brute force on the child" and incident["severity"] == "critical"
    assert incident["alert_ids"] == alerts[A_CHILD][:2] and incident["agencies"] == [A_CHILD]
    assert incident["created_by"] == "ana (token test)" and incident["allowed_next"][0] == "triage"
    assert "notify_due" in incident and incident["serious"] is False
    again = api["ana"].post(URL, json={"alert_ids": [alerts[A_CHILD][0]]})
    assert again.json()["id"] == incident["id"]  # the incident the alert is in
    joined = api["ana"].post(URL, json={"alert_ids": [alerts[A][4]]}).json()
    assert joined["id"] == api.seeded["incident_a"]  # same agency, a shared entity: grouped
    read = api["reader"].get(f"{URL}/{incident['id']}").json()
    assert read["history"][0]["action"] == "opened"
    assert api["soc"].post(URL, json={"alert_ids": ["al-unknown"]}).status_code == 404
    assert api["soc"].post(URL, json={"alert_ids": []}).status_code == 422
    assert api["soc"].post(URL, json={"alert_ids": [alerts[A][5]], "incident_type": "nonsense"}).status_code == 400
    assert api["reader"].post(URL, json={"alert_ids": [alerts[A][5]]}).status_code == 403
    assert api["soc"].get(f"{URL}/inc-unknown").status_code == 404


# -- changes ---------------------------------------------------------------------------------
def test_edit_lifecycle_assignee_notes_verdict(api: Api) -> None:
    path = f"{URL}/{api.seeded['incident_a']}"
    edited = api["ana"].patch(path, json={"title": "SSH brute force on xa-a", "severity": "critical",
                                          "incident_type": "unauthorized_access", "summary": "root guessed",
                                          "impacts": ["loss_of_control"],
                                          "affected_systems": [{"name": "Cổng dịch vụ công", "level": 4}]})
    assert edited.status_code == 200, edited.text
    incident = edited.json()
    assert incident["title"] == "SSH brute force on xa-a" and incident["severity"] == "critical"
    assert incident["serious"] is True and set(incident["pinned"]) == {"title", "severity", "incident_type"}
    for bad in ({}, {"title": None}, {"impacts": ["boredom"]}, {"incident_type": "nonsense"}):
        assert api["ana"].patch(path, json=bad).status_code == 400, bad
    assert api["ana"].patch(path, json={"severity": "apocalyptic"}).status_code == 422
    triage = api["ana"].post(f"{path}/status", json={"status": "triage", "note": "looking"}).json()
    assert triage["status"] == "triage" and triage["notes"][-1]["text"] == "looking"
    backwards = api["ana"].post(f"{path}/status", json={"status": "new"})
    assert backwards.status_code == 400 and "can go to" in backwards.json()["detail"]
    resolved = api["ana"].post(f"{path}/status", json={"status": "resolved"}).json()
    assert resolved["response_ended_at"] and resolved["closing_due"]
    assert api["ana"].post(f"{path}/assign", json={"assignee": "ana"}).json()["assignee"] == "ana"
    assert api["ana"].post(f"{path}/assign", json={"assignee": None}).json()["assignee"] is None
    note = api["it-a"].post(f"{path}/notes", json={"text": "we reset the root password"})  # incidents:comment
    assert note.status_code == 201 and note.json()["notes"][-1]["author"] == "it-a (token test)"
    assert api["it-a"].post(f"{path}/status", json={"status": "closed"}).status_code == 403
    assert api["reader"].post(f"{path}/notes", json={"text": "x"}).status_code == 403
    assert api["ana"].post(f"{path}/notes", json={"text": ""}).status_code == 422
    assert api["ana"].post(f"{path}/verdict", json={"verdict": "true_positive"}).json()["verdict"] == "true_positive"
    assert api["ana"].post(f"{path}/verdict", json={"verdict": "maybe"}).status_code == 422
    actions = [h["action"] for h in api["ana"].get(path).json()["history"]]
    assert actions == ["opened", "edit", "status", "status", "assign", "assign", "note", "verdict"]


def test_merge_and_split(api: Api) -> None:
    alerts, target = api.seeded["alerts"], api.seeded["incident_a"]
    child = api["ana"].post(URL, json={"alert_ids": alerts[A_CHILD]}).json()
    api["ana"].post(f"{URL}/{child['id']}/notes", json={"text": "seen on the child"})
    merged = api["ana"].post(f"{URL}/{target}/merge", json={"sources": [child["id"]]})
    assert merged.status_code == 200, merged.text
    assert merged.json()["alert_ids"] == alerts[A][:2] + alerts[A_CHILD]
    assert set(merged.json()["agencies"]) == {A, A_CHILD}
    assert any("seen on the child" in n["text"] for n in merged.json()["notes"])
    source = api["ana"].get(f"{URL}/{child['id']}").json()
    assert source["merged_into"] == target and source["status"] == "closed" and source["allowed_next"] == []
    assert api["ana"].post(f"{URL}/{target}/merge", json={"sources": [target]}).status_code == 400
    split = api["ana"].post(f"{URL}/{target}/split", json={"alert_ids": alerts[A_CHILD], "title": "The child"})
    assert split.status_code == 201, split.text
    assert split.json()["alert_ids"] == alerts[A_CHILD] and split.json()["title"] == "The child"
    assert api["ana"].get(f"{URL}/{target}").json()["alert_ids"] == alerts[A][:2]
    assert api["ana"].post(f"{URL}/{target}/split", json={"alert_ids": ["al-elsewhere"]}).status_code == 400


def test_timeline_merges_everything_in_time_order(api: Api) -> None:
    incident_id = api.seeded["incident_a"]
    first_alert = api.seeded["alerts"][A][0]
    path = f"{URL}/{incident_id}"
    assert api["ana"].post(f"/api/v1/alerts/{first_alert}/acknowledge", json={"note": "on it"}).status_code == 200
    api["ana"].post(f"{path}/status", json={"status": "triage"})
    api["it-a"].post(f"{path}/notes", json={"text": "patched " * 50})
    api["it-a"].post(f"/api/v1/tasks/{api.seeded['task_a']}/acknowledge")
    # a national report built and delivered (as the export engine records them)
    api.app.incidents.record_report(incident_id, ReportRecord(kind="initial", report_no="R-1",
                                                              built_at="2025-03-02T01:00:00.000Z"), actor="seed")
    owners = {"owner_agencies": [A]}
    api.store.create("report_outbox", "R-1--cert", {
        "id": "R-1--cert", "report_no": "R-1", "recipient": "cert", "incident_id": incident_id,
        "created_at": "2025-03-02T01:00:00.000Z", "status": "delivered", **owners,
        "attempts_log": [{"at": "2025-03-02T01:00:01.000Z", "ok": False, "error": "503"},
                         {"at": "2025-03-02T01:05:00.000Z", "ok": True}]})
    api.store.create("report_receipts", "R-1--cert", {
        "id": "R-1--cert", "report_no": "R-1", "recipient": "cert", "channel": "https",
        "delivered_at": "2025-03-02T01:05:00.000Z", "receipt": {"id": "rcpt-9"}, "late": False, **owners})
    answer = api["ana"].get(f"{path}/timeline")
    assert answer.status_code == 200, answer.text
    timeline = answer.json()
    items = timeline["items"]
    assert timeline["total"] == len(items) and timeline["next"] is None
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    kinds = [i["kind"] for i in items]
    assert kinds[:2] == ["alert", "alert"]  # the alerts came first
    assert {"alert", "alert_change", "incident", "note", "task", "report", "delivery"} <= set(kinds)
    change = next(i for i in items if i["kind"] == "alert_change")
    assert change["alert_id"] == first_alert and change["actor"] == "ana (token test)" and change["note"] == "on it"
    assert [i["action"] for i in items if i["kind"] == "task"] == ["created", "acknowledged"]
    note = next(i for i in items if i["kind"] == "note")
    assert note["text"] == "patched " * 50 and len(note["summary"]) == 200
    assert not any(i["kind"] == "incident" and i["action"] == "note" for i in items)  # once, as the note
    deliveries = [(i["action"], i["at"]) for i in items if i["kind"] == "delivery"]
    assert deliveries == [("failed", "2025-03-02T01:00:01.000Z"), ("delivered", "2025-03-02T01:05:00.000Z")]
    assert next(i for i in items if i["kind"] == "report")["report_no"] == "R-1"
    assert api["ana"].get(f"{URL}/inc-unknown/timeline").status_code == 404


# -- agency scope, on both stores --------------------------------------------------------------
def test_a_user_of_a_never_sees_or_changes_bs_incidents(both: Api) -> None:
    mine, theirs = both.seeded["incident_a"], both.seeded["incident_b"]
    assert listed(both, "ana") == [mine]
    assert both["ana"].get(URL).json()["total"] == 1
    assert listed(both, "ana", agency=B) == []
    assert set(listed(both, "soc")) == {mine, theirs}
    assert listed(both, "bob") == [theirs] and listed(both, "it-b") == [theirs]
    before = both["bob"].get(f"{URL}/{theirs}").json()
    unknown = both["ana"].get(f"{URL}/inc-unknown").json()
    for method, suffix, body in (("get", "", None), ("get", "/timeline", None),
                                 ("patch", "", {"title": "mine now"}), ("post", "/status", {"status": "triage"}),
                                 ("post", "/assign", {"assignee": "ana"}), ("post", "/notes", {"text": "hi"}),
                                 ("post", "/verdict", {"verdict": "benign"}),
                                 ("post", "/merge", {"sources": [mine]}),
                                 ("post", "/split", {"alert_ids": before["alert_ids"][:1]})):
        answer = both["ana"].request(method, f"{URL}/{theirs}{suffix}", json=body)
        assert answer.status_code == 404, (method, suffix, answer.text)
        assert answer.json().keys() == unknown.keys()
    assert both["it-a"].post(f"{URL}/{theirs}/notes", json={"text": "hi"}).status_code == 404
    # B's incident as a merge source, B's alert to open from: unknown too
    assert both["ana"].post(f"{URL}/{mine}/merge", json={"sources": [theirs]}).status_code == 404
    assert both["ana"].post(URL, json={"alert_ids": [both.seeded["alerts"][B][3]]}).status_code == 404
    after = both["bob"].get(f"{URL}/{theirs}").json()
    assert after == before  # nothing changed
    # A's incident timeline holds nothing of B's
    items = both["ana"].get(f"{URL}/{mine}/timeline").json()["items"]
    assert items and not any("so-b" in str(i) for i in items)
